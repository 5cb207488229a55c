"""`taskstream dlq list|replay`: inspect and re-publish dead-lettered task commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from taskstream.settings import get_settings


@click.group("dlq")
def dlq() -> None:
    """The task-commands dead-letter topic."""


@dlq.command("list")
def list_dead_letters() -> None:
    """One line per dead letter: id, original position, failure time and error."""
    from taskstream.infra.dead_letters import read_dead_letters  # noqa: PLC0415

    letters = asyncio.run(read_dead_letters(get_settings().kafka))
    for d in letters:
        origin = (
            f"{d.header('x-original-topic')}[{d.header('x-original-partition')}]"
            f"@{d.header('x-original-offset')}"
        )
        click.echo(f"{d.id:>10}  {origin}  {d.header('x-failed-at')}  {d.header('x-error')}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("replay")
@click.option("--id", "ids", multiple=True, help="dead-letter id <partition>:<offset>; all if none")
@click.option(
    "--value-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="replace the message body with this file's bytes (a fixed message; one --id)",
)
def replay(ids: tuple[str, ...], value_file: Path | None) -> None:
    """Re-publish dead letters to the commands topic (applying twice is harmless)."""
    from taskstream.infra.dead_letters import replay_dead_letters  # noqa: PLC0415

    value = value_file.read_bytes() if value_file else None
    try:
        letters = asyncio.run(replay_dead_letters(get_settings().kafka, list(ids) or None, value))
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for d in letters:
        click.echo(f"replayed {d.id}")
    click.echo(f"{len(letters)} replayed")


def register(main: click.Group) -> None:
    main.add_command(dlq)
