"""`taskstream relay`, `taskstream work`, `taskstream sweep` and `taskstream dlq-rabbit`."""

from __future__ import annotations

import asyncio

import click

from taskstream.cli.running import run_until_signal
from taskstream.enums import NotificationChannel
from taskstream.settings import get_settings


@click.command("relay")
@click.option("--batch-size", type=int, default=2000, show_default=True)
@click.option(
    "--sweep-interval",
    type=float,
    default=30.0,
    show_default=True,
    help="seconds between overdue-deadline sweeps (0 disables)",
)
def relay(batch_size: int, sweep_interval: float) -> None:
    """Relay the outbox to RabbitMQ and Kafka, and run the overdue sweep."""
    from taskstream.workers.relay import RelayOptions, run_relay  # noqa: PLC0415

    options = RelayOptions(batch_size=batch_size, sweep_interval_s=sweep_interval)
    run_until_signal(lambda stop: run_relay(get_settings(), options, stop))


@click.command("work")
@click.option(
    "--channels",
    default=",".join(c.value for c in NotificationChannel),
    show_default=True,
    help="comma-separated notification channels to consume",
)
def work(channels: str) -> None:
    """Deliver notifications: in-app, email and webhooks from RabbitMQ."""
    from taskstream.workers.worker import run_worker  # noqa: PLC0415

    try:
        chosen = [NotificationChannel(c.strip()) for c in channels.split(",") if c.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--channels") from exc
    run_until_signal(lambda stop: run_worker(get_settings(), chosen, stop))


@click.command("sweep")
def sweep() -> None:
    """Emit task.overdue for tasks past their deadline (once per task), then exit."""
    from taskstream.workers.relay import sweep_once  # noqa: PLC0415

    click.echo(f"marked overdue: {asyncio.run(sweep_once(get_settings()))}")


@click.group("dlq-rabbit")
def dlq_rabbit() -> None:
    """The RabbitMQ dead-letter queue of the notification workers."""


@dlq_rabbit.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
def dlq_list(limit: int) -> None:
    """Show dead letters with their reason (they stay in the queue)."""
    from taskstream.workers.dlq import list_dead_letters  # noqa: PLC0415

    letters = list_dead_letters(get_settings().rabbit, limit)
    for letter in letters:
        click.echo(
            f"{letter.dead_lettered_at or '-'}  {letter.event_type or '-':22} "
            f"{letter.message_id or '-'}  from {letter.original_queue or '-'}: {letter.reason}"
        )
    click.echo(f"{len(letters)} dead letter(s)")


@dlq_rabbit.command("replay")
@click.option("--limit", type=int, default=100, show_default=True)
def dlq_replay(limit: int) -> None:
    """Move dead letters back to the queue they came from."""
    from taskstream.workers.dlq import replay_dead_letters  # noqa: PLC0415

    click.echo(f"replayed: {replay_dead_letters(get_settings().rabbit, limit)}")


@dlq_rabbit.command("purge")
@click.confirmation_option(prompt="Drop every dead letter?")
def dlq_purge() -> None:
    """Drop every dead letter."""
    from taskstream.workers.dlq import purge_dead_letters  # noqa: PLC0415

    click.echo(f"purged: {purge_dead_letters(get_settings().rabbit)}")


def register(main: click.Group) -> None:
    for command in (relay, work, sweep, dlq_rabbit):
        main.add_command(command)
    # `taskstream dlq` (Kafka, owned by the consumers) gains a `rabbit` subgroup when present.
    kafka_dlq = main.commands.get("dlq")
    if isinstance(kafka_dlq, click.Group) and "rabbit" not in kafka_dlq.commands:
        kafka_dlq.add_command(dlq_rabbit, "rabbit")
