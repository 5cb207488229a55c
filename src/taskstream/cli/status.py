"""`taskstream status [--json]`: the whole system at a glance for an operator.

Dependencies (real protocol probes), consumer-group lag per partition, the outbox backlog and
the age of its oldest unsent row, RabbitMQ queue depths and both dead-letter counts. Each part
is collected on its own: one that fails shows its error and the others still report. Exit
status 1 when a dependency is down or a part could not be read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from typing import Any

import click

from taskstream.settings import Settings, get_settings


async def collect_status(settings: Settings, timeout_s: float) -> dict[str, Any]:
    """Every part of the report as plain data (the ``--json`` document)."""
    parts = {
        "dependencies": _dependencies(settings),
        "consumer_lag": _lag(settings, timeout_s),
        "outbox": _outbox(settings),
        "rabbitmq": _queues(settings, timeout_s),
        "task_command_dead_letters": _kafka_dead_letters(settings, timeout_s),
    }
    results = await asyncio.gather(
        *(asyncio.wait_for(part, timeout_s * 2) for part in parts.values()), return_exceptions=True
    )
    report: dict[str, Any] = {}
    for name, result in zip(parts, results, strict=True):
        if isinstance(result, BaseException):
            report[name] = {"error": f"{type(result).__name__}: {result}"[:300]}
        else:
            report[name] = result
    return report


async def _dependencies(settings: Settings) -> dict[str, Any]:
    from taskstream.infra.probes import probe_all  # noqa: PLC0415

    return {
        name: {"ok": r.ok, "address": r.endpoint.address, "detail": r.detail}
        for name, r in (await probe_all(settings)).items()
    }


async def _lag(settings: Settings, timeout_s: float) -> dict[str, Any]:
    from taskstream.infra.lag import group_lag  # noqa: PLC0415

    lag = await group_lag(settings.kafka, timeout_s)
    return {
        "group": lag.group,
        "topic": lag.topic,
        "total": lag.total,
        "partitions": [asdict(p) for p in lag.partitions],
    }


async def _outbox(settings: Settings) -> dict[str, Any]:
    from taskstream.db import create_engine, create_session_factory  # noqa: PLC0415
    from taskstream.outbox.repository import OutboxRepository  # noqa: PLC0415

    engine = create_engine(settings.db, pool_size=1, max_overflow=0)
    try:
        async with create_session_factory(engine)() as session:
            unsent, age = await OutboxRepository.from_session(session).backlog()
    finally:
        await engine.dispose()
    return {"unsent": unsent, "oldest_unsent_age_s": None if age is None else round(age, 3)}


async def _queues(settings: Settings, timeout_s: float) -> dict[str, Any]:
    from taskstream.workers.queue_depths import queue_depths  # noqa: PLC0415
    from taskstream.workers.topology import Topology  # noqa: PLC0415

    source, depths = await asyncio.to_thread(queue_depths, settings.rabbit, timeout_s)
    dlq = Topology.from_settings(settings.rabbit).dlq
    dead = next((d.ready for d in depths if d.queue == dlq), None)
    return {"source": source, "queues": [asdict(d) for d in depths], "dead_letters": dead}


async def _kafka_dead_letters(settings: Settings, timeout_s: float) -> int:
    from taskstream.infra.dead_letters import dead_letter_count  # noqa: PLC0415

    return await dead_letter_count(settings.kafka, timeout_s)


def _healthy(report: dict[str, Any]) -> bool:
    parts_ok = all(not (isinstance(v, dict) and "error" in v) for v in report.values())
    dependencies = report["dependencies"]
    return parts_ok and all(d["ok"] for d in dependencies.values())


def _echo_text(report: dict[str, Any]) -> None:
    def failed(part: Any) -> bool:
        if isinstance(part, dict) and "error" in part:
            click.echo(f"  unavailable: {part['error']}")
            return True
        return False

    click.echo("dependencies")
    if not failed(deps := report["dependencies"]):
        for name, d in deps.items():
            click.echo(
                f"  {name:<9} {'up' if d['ok'] else 'DOWN':<5} {d['address']:<22} {d['detail']}"
            )
    click.echo("consumer lag")
    if not failed(lag := report["consumer_lag"]):
        click.echo(f"  group {lag['group']}  topic {lag['topic']}  total {lag['total']}")
        for p in lag["partitions"]:
            committed = "-" if p["committed"] is None else p["committed"]
            click.echo(
                f"  [{p['partition']}] committed {committed}  end {p['end']}  lag {p['lag']}"
            )
    click.echo("outbox")
    if not failed(outbox := report["outbox"]):
        age = outbox["oldest_unsent_age_s"]
        click.echo(f"  unsent {outbox['unsent']}  oldest {'-' if age is None else f'{age:.1f} s'}")
    click.echo("rabbitmq queues")
    if not failed(rabbit := report["rabbitmq"]):
        for q in rabbit["queues"]:
            if q["ready"] is None:
                click.echo(f"  {q['queue']:<48} (not declared)")
                continue
            unacked = "" if q["unacked"] is None else f"  unacked {q['unacked']}"
            click.echo(
                f"  {q['queue']:<48} ready {q['ready']}{unacked}  consumers {q['consumers']}"
            )
        click.echo(f"  (from {rabbit['source']})")
    click.echo("dead letters")
    commands = report["task_command_dead_letters"]
    notifications = rabbit.get("dead_letters") if "error" not in rabbit else None
    click.echo(
        f"  task commands {commands if isinstance(commands, int) else 'unknown'}  "
        f"notifications {'unknown' if notifications is None else notifications}"
    )


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="one JSON document instead of text")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="seconds per part")
def status(as_json: bool, timeout: float) -> None:
    """Dependencies, consumer lag, outbox backlog, queue depths and dead letters."""
    # a passive declare of a queue not declared yet is an answer here, not a warning
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    report = asyncio.run(collect_status(get_settings(), timeout))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _echo_text(report)
    if not _healthy(report):
        raise SystemExit(1)


def register(main: click.Group) -> None:
    main.add_command(status)
