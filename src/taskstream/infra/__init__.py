"""`taskstream infra`: make PostgreSQL, Redis, RabbitMQ, Kafka and clamd reachable, or say
how."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg

from taskstream.infra.clamav import INSTALL_HINT, clamd_binary
from taskstream.infra.local import (
    MissingServiceError,
    StateDir,
    pid_alive,
    start_clamd,
    start_local,
    stop_started,
)
from taskstream.infra.probes import (
    ProbeResult,
    asyncpg_dsn,
    clamd_endpoint,
    endpoints,
    probe,
    probe_all,
    probe_clamd,
)
from taskstream.infra.topics import ensure_topics
from taskstream.settings import Settings

# clamd loads its databases before it listens: seconds with the shipped one, up to a minute
# with freshclam's full set.
READY_TIMEOUT_S = {
    "kafka": 15.0,
    "redis": 15.0,
    "postgres": 30.0,
    "rabbitmq": 60.0,
    "clamd": 90.0,
}

__all__ = [
    "MissingServiceError",
    "ProbeResult",
    "down",
    "ensure_clamd",
    "ensure_database",
    "status",
    "up",
]

Report = Callable[[str], None]


async def _wait_ready(settings: Settings, name: str) -> ProbeResult:
    deadline = time.monotonic() + READY_TIMEOUT_S[name]
    while True:
        result = await (probe_clamd(settings) if name == "clamd" else probe(settings, name))
        if result.ok or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def ensure_database(settings: Settings) -> bool:
    """Create the configured database if it does not exist; returns True if created."""
    name = settings.db.database_name
    conn = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def up(settings: Settings, report: Report = print) -> None:
    """Make every dependency reachable (idempotent); raise MissingServiceError naming the fix."""
    state = StateDir(settings.infra.state_dir)
    started = state.load()
    current = await probe_all(settings)
    for name, result in current.items():
        if result.ok:
            owner = "started by taskstream" if name in started else "already running"
            report(f"{name:9} {result.endpoint.address:22} up ({owner}): {result.detail}")
            continue
        record = started.get(name)
        if record is not None and pid_alive(record):
            ready = await _wait_ready(settings, name)  # started earlier, still booting
        else:
            report(f"{name:9} {result.endpoint.address:22} down: starting it locally")
            record = start_local(name, result.endpoint, settings.infra.state_dir.resolve())
            started[name] = record
            state.save(started)
            ready = await _wait_ready(settings, name)
        if not ready.ok:
            raise MissingServiceError(
                name, ready.endpoint, f"started but not answering: {ready.detail}"
            )
        report(f"{name:9} {ready.endpoint.address:22} up (started by taskstream): {ready.detail}")
    if await ensure_database(settings):
        report(f"postgres  created database {settings.db.database_name}")
    created = await ensure_topics(settings.kafka)
    for topic in created:
        report(f"kafka     created topic {topic} ({settings.kafka.partitions} partitions)")
    await ensure_clamd(settings, state, started, report)


async def ensure_clamd(
    settings: Settings, state: StateDir, started: dict[str, dict[str, object]], report: Report
) -> None:
    """clamd is optional for everything but attachments: when it cannot be started, say how to
    install it and go on (attachments wait in ``scanning`` meanwhile)."""
    result = await probe_clamd(settings)
    address = result.endpoint.address
    if result.ok:
        owner = "started by taskstream" if "clamd" in started else "already running"
        report(f"clamd     {address:22} up ({owner}): {result.detail}")
        return
    record = started.get("clamd")
    if record is None or not pid_alive(record):
        if clamd_binary() is None:
            report(f"clamd     {address:22} DOWN: {INSTALL_HINT}")
            return
        report(f"clamd     {address:22} down: starting it locally")
        record = start_clamd(
            result.endpoint,
            address=settings.attachments.clamd_address,
            database_dir=settings.attachments.clamav_database_dir,
            max_upload_bytes=settings.attachments.max_upload_bytes,
            state=settings.infra.state_dir.resolve(),
        )
        started["clamd"] = record
        state.save(started)
    ready = await _wait_ready(settings, "clamd")
    if not ready.ok:
        raise MissingServiceError(
            "clamd",
            ready.endpoint,
            f"started but not answering: {ready.detail} (see {record['log']})",
        )
    report(f"clamd     {address:22} up (started by taskstream): {ready.detail}")


async def status(settings: Settings, report: Report = print) -> bool:
    """Print each dependency and whether it answers; True when all do."""
    started = StateDir(settings.infra.state_dir).load()
    results = await probe_all(settings)
    results["clamd"] = await probe_clamd(settings)
    for name, result in results.items():
        state = "up" if result.ok else "DOWN"
        owner = " (started by taskstream)" if name in started else ""
        report(f"{name:9} {result.endpoint.address:22} {state}{owner}: {result.detail}")
    return all(r.ok for r in results.values())


def down(settings: Settings, report: Report = print) -> None:
    """Stop only what ``up`` started."""
    state = StateDir(settings.infra.state_dir)
    started = state.load()
    if not started:
        report("nothing was started by taskstream")
    addresses = {**endpoints(settings), "clamd": clamd_endpoint(settings)}
    for name, record in list(started.items()):
        stop_started(name, record)
        report(f"{name:9} {addresses[name].address:22} stopped")
        del started[name]
        state.save(started)
