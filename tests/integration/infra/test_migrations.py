"""Migrations are the only way the schema is built: they must round-trip and match the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from taskstream.infra.probes import asyncpg_dsn
from taskstream.settings import Settings
from tests.conftest import ROOT


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKSTREAM_DB__URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture
async def scratch_url(settings: Settings, services_up: None):
    name = f"taskstream_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(settings.db.url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield settings.db.with_database(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_check_downgrade_upgrade(scratch_url: str) -> None:
    up = alembic(scratch_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert {"tasks", "outbox", "inbox", "users"} <= await _tables(scratch_url)

    check = alembic(scratch_url, "check")
    assert check.returncode == 0, f"models and migrations differ:\n{check.stdout}{check.stderr}"

    down = alembic(scratch_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert await _tables(scratch_url) <= {"alembic_version"}

    again = alembic(scratch_url, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert "tasks" in await _tables(scratch_url)


async def test_autogenerate_detects_a_drift(scratch_url: str, tmp_path) -> None:
    """`alembic check` really compares: an extra column on the models side is reported."""
    code = (
        "import sqlalchemy as sa\n"
        "from taskstream.models import metadata\n"
        "metadata.tables['tasks'].append_column(sa.Column('drift', sa.Integer))\n"
        "from alembic.config import main\n"
        "main(['check'])\n"
    )
    assert alembic(scratch_url, "upgrade", "head").returncode == 0
    script = tmp_path / "drift.py"
    script.write_text(code)
    env = {**os.environ, "TASKSTREAM_DB__URL": scratch_url}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "add_column" in result.stdout + result.stderr
    assert "drift" in result.stdout + result.stderr
