"""Throw-away state for one test session or benchmark run: its own database (built by
`alembic upgrade head`, so migrations are exercised every time), topics, consumer group,
exchange and rate-limit counters, all named after a run id, so concurrent runs never share
anything and a run's leftovers are easy to find and drop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from taskstream.infra.probes import asyncpg_dsn
from taskstream.settings import Settings


def isolated_settings(
    base: Settings, run_id: str, *, db_prefix: str = "taskstream_run"
) -> Settings:
    """``base`` with every shared name (database, topics, group, exchange, limit counters)
    made private to ``run_id``."""
    db = base.db.model_copy(update={"url": base.db.with_database(f"{db_prefix}_{run_id}")})
    kafka = base.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-{run_id}",
            "task_commands_dlq_topic": f"task-commands-{run_id}.dlq",
            "task_events_topic": f"task-events-{run_id}",
            "consumer_group": f"taskstream-{run_id}",
            "attachment_commands_topic": f"attachment-commands-{run_id}",
            "attachment_commands_dlq_topic": f"attachment-commands-{run_id}.dlq",
            "attachments_consumer_group": f"taskstream-attachments-{run_id}",
        }
    )
    rabbit = base.rabbit.model_copy(update={"events_exchange": f"taskstream.events.{run_id}"})
    redis = base.redis.model_copy(update={"limits_key_prefix": f"taskstream-limits-{run_id}"})
    return base.model_copy(update={"db": db, "kafka": kafka, "rabbit": rabbit, "redis": redis})


async def create_database(settings: Settings, project_root: Path) -> None:
    """Create ``settings``' database and migrate it to head (``project_root`` holds
    alembic.ini)."""
    admin = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{settings.db.database_name}"')
    finally:
        await admin.close()
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "upgrade",
        "head",
        cwd=project_root,
        env={**os.environ, **settings.as_env()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await migrate.communicate()
    if migrate.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed:\n{output.decode(errors='replace')}")


async def drop_database(settings: Settings) -> None:
    """Drop ``settings``' database, closing whatever is still connected to it."""
    admin = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{settings.db.database_name}" WITH (FORCE)')
    finally:
        await admin.close()
