"""`taskstream infra up|status|down`, `taskstream migrate`, `taskstream topics`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from taskstream import infra as infra_ops
from taskstream.infra.topics import describe_topics, ensure_topics
from taskstream.settings import get_settings


def alembic_config(url: str | None = None) -> object:
    from alembic.config import Config  # noqa: PLC0415 - only the migrate path needs alembic

    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (root / "alembic.ini").exists():
            config = Config(str(root / "alembic.ini"))
            if url:
                config.set_main_option("sqlalchemy.url", url)
            return config
    raise click.ClickException("alembic.ini not found: run from the taskstream checkout")


@click.group("infra")
def infra_group() -> None:
    """Local infrastructure: PostgreSQL, Redis, RabbitMQ and a Kafka broker."""


@infra_group.command("up")
def infra_up() -> None:
    """Use what is running, start what is missing, create the database and topics."""
    try:
        asyncio.run(infra_ops.up(get_settings()))
    except infra_ops.MissingServiceError as exc:
        raise click.ClickException(str(exc)) from exc


@infra_group.command("status")
def infra_status() -> None:
    """Print each dependency, its address and whether it answers (exit 1 if any is down)."""
    if not asyncio.run(infra_ops.status(get_settings())):
        raise SystemExit(1)


@infra_group.command("down")
def infra_down() -> None:
    """Stop only what `infra up` started."""
    infra_ops.down(get_settings())


@click.command("migrate")
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Upgrade the database schema (Alembic)."""
    from alembic import command  # noqa: PLC0415

    command.upgrade(alembic_config(), revision)  # type: ignore[arg-type]


@click.group("topics", invoke_without_command=True)
@click.pass_context
def topics(ctx: click.Context) -> None:
    """Describe the Kafka topics (or `topics create`)."""
    if ctx.invoked_subcommand is None:
        for info in asyncio.run(describe_topics(get_settings().kafka)):
            state = f"{info.partitions} partitions" if info.exists else "MISSING"
            click.echo(f"{info.name:30} {state}")


@topics.command("create")
@click.option(
    "--partitions", type=int, default=None, help="defaults to TASKSTREAM_KAFKA__PARTITIONS"
)
def topics_create(partitions: int | None) -> None:
    """Create missing topics."""
    created = asyncio.run(ensure_topics(get_settings().kafka, partitions=partitions))
    click.echo("created: " + (", ".join(created) or "nothing (all exist)"))


def register(main: click.Group) -> None:
    for command in (infra_group, migrate, topics):
        main.add_command(command)
