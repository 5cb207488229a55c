"""`taskstream dlq list|replay`: inspect and re-publish dead-lettered task commands (or, with
``--attachments``, attachment commands)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from click._termui_impl import ProgressBar

from taskstream.settings import KafkaSettings, get_settings

ATTACHMENTS = click.option(
    "--attachments",
    is_flag=True,
    help="the attachment commands' dead-letter topic instead of the task commands'",
)


def _kafka(attachments: bool) -> KafkaSettings:
    from taskstream.infra.dead_letters import attachment_dead_letters  # noqa: PLC0415

    kafka = get_settings().kafka
    return attachment_dead_letters(kafka) if attachments else kafka


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topics of task commands (and, --attachments, attachment commands)."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--after", metavar="PARTITION:OFFSET", help="start after this dead-letter id")
@ATTACHMENTS
def list_dead_letters(limit: int, after: str | None, attachments: bool) -> None:
    """One line per dead letter: id, original position, failure time and error; a page of
    ``--limit`` at a time (the last line says how to get the next)."""
    from taskstream.infra.dead_letters import read_dead_letters  # noqa: PLC0415

    try:
        letters = asyncio.run(read_dead_letters(_kafka(attachments), limit=limit, after=after))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--after") from exc
    for d in letters:
        origin = (
            f"{d.header('x-original-topic')}[{d.header('x-original-partition')}]"
            f"@{d.header('x-original-offset')}"
        )
        click.echo(f"{d.id:>10}  {origin}  {d.header('x-failed-at')}  {d.header('x-error')}")
    click.echo(f"{len(letters)} dead letter(s)")
    if len(letters) == limit:
        more = " --attachments" if attachments else ""
        click.echo(f"more: taskstream dlq list{more} --limit {limit} --after {letters[-1].id}")


@dlq.command("replay")
@click.option("--id", "ids", multiple=True, help="dead-letter id <partition>:<offset>; all if none")
@click.option(
    "--value-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="replace the message body with this file's bytes (a fixed message; one --id)",
)
@ATTACHMENTS
def replay(ids: tuple[str, ...], value_file: Path | None, attachments: bool) -> None:
    """Re-publish dead letters to the commands topic (applying twice is harmless)."""
    from taskstream.infra.dead_letters import (  # noqa: PLC0415
        DeadLetter,
        dead_letter_count,
        replay_dead_letters,
    )

    settings = _kafka(attachments)
    value = value_file.read_bytes() if value_file else None

    async def run() -> int:
        total = len(ids) if ids else await dead_letter_count(settings)
        # progress on stderr, so that stdout stays the list of what was replayed
        bar: ProgressBar[int]
        with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:

            def advance(page: list[DeadLetter]) -> None:
                bar.update(len(page))

            return await replay_dead_letters(settings, list(ids) or None, value, advance)

    try:
        replayed = asyncio.run(run())
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for letter_id in ids:
        click.echo(f"replayed {letter_id}")
    click.echo(f"{replayed} replayed")


def register(main: click.Group) -> None:
    main.add_command(dlq)
