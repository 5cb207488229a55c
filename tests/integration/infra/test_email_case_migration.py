"""The case-insensitive email index refuses to build over existing case-duplicates, loudly,
and changes nothing until they are resolved."""

from __future__ import annotations

import uuid

import asyncpg

from taskstream.infra.probes import asyncpg_dsn
from tests.integration.infra.test_migrations import alembic, scratch_url

__all__ = ["scratch_url"]  # the fixture, shared with the other migration tests


async def _execute(url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_upgrade_refuses_existing_case_duplicates_until_they_are_resolved(
    scratch_url: str,
) -> None:
    assert alembic(scratch_url, "upgrade", "0003").returncode == 0
    insert = "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'D', 'x')"
    first, second = uuid.uuid4(), uuid.uuid4()
    await _execute(scratch_url, insert, first, "Dup@Example.com")
    await _execute(scratch_url, insert, second, "dup@example.com")

    refused = alembic(scratch_url, "upgrade", "head")
    assert refused.returncode != 0
    assert "1 email address(es) belong to more than one user" in refused.stderr
    assert "0003" in alembic(scratch_url, "current").stdout  # nothing half-applied

    await _execute(
        scratch_url, "UPDATE users SET email = 'dup+old@example.com' WHERE id = $1", second
    )
    upgraded = alembic(scratch_url, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
