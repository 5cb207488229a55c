"""`taskstream consume`: run one task-command applier (scale by starting more, up to the
partition count); `taskstream consumers lag`: where the group stands."""

from __future__ import annotations

import asyncio

import click

from taskstream.cli.running import run_until_signal
from taskstream.runtime import tune_gc
from taskstream.settings import get_settings


@click.command("consume")
def consume() -> None:
    """Apply task commands from Kafka to PostgreSQL until SIGTERM/SIGINT."""
    from taskstream.consumers.task_commands import run_applier  # noqa: PLC0415

    settings = get_settings()
    # a batch keeps thousands of small objects alive; the applier collects gen 2 more often
    tune_gc(gen2_threshold=50)

    # on uvloop; SIGTERM/SIGINT: finish the batch, commit, leave the group
    run_until_signal(lambda stop: run_applier(settings, stop))


@click.group("consumers")
def consumers_group() -> None:
    """Inspect the consumer groups (task-command appliers, attachment processors)."""


@consumers_group.command("lag")
@click.option("--timeout", type=float, default=10.0, show_default=True)
def lag(timeout: float) -> None:
    """Committed offset, end offset and lag per partition of each consumer group."""
    from taskstream.infra.lag import consumer_groups, group_lag  # noqa: PLC0415

    settings = get_settings()
    for n, group in enumerate(consumer_groups(settings.kafka)):
        report = asyncio.run(group_lag(settings.kafka, timeout, group))
        if n:
            click.echo("")
        click.echo(f"group {report.group}  topic {report.topic}")
        click.echo(f"{'partition':>9} {'committed':>12} {'end':>12} {'lag':>10}")
        for row in report.partitions:
            committed = "-" if row.committed is None else str(row.committed)
            click.echo(f"{row.partition:>9} {committed:>12} {row.end:>12} {row.lag:>10}")
        click.echo(f"{'total':>9} {'':>12} {'':>12} {report.total:>10}")


def register(main: click.Group) -> None:
    main.add_command(consume)
    main.add_command(consumers_group)
