"""Emails are unique whatever their case, in the database itself, and looked up by its index."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from taskstream.auth.repository import UserRepository
from tests.integration.http_support import PASSWORD


async def test_concurrent_registrations_differing_in_case_give_one_201_and_one_409(served):
    for _ in range(6):
        local = f"Case-{uuid.uuid4().hex[:10]}"
        bodies = [
            {"name": "Case", "email": f"{local}@Example.com", "password": PASSWORD},
            {"name": "Case", "email": f"{local.lower()}@example.COM", "password": PASSWORD},
        ]
        responses = await asyncio.gather(*(served.post("/auth/register", json=b) for b in bodies))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.headers["content-type"].startswith("application/problem+json")


async def test_an_email_registered_in_one_case_logs_in_in_any_case(client):
    email = f"Mixed-{uuid.uuid4().hex[:8]}@Example.com"
    created = await client.post(
        "/auth/register", json={"name": "Mixed", "email": email, "password": PASSWORD}
    )
    assert created.status_code == 201
    assert created.json()["email"] == email  # the address is kept as typed
    login = await client.post("/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert login.status_code == 200


async def test_the_database_refuses_a_case_duplicate(session_factory):
    email = f"raw-{uuid.uuid4().hex[:8]}@example.com"
    insert = text(
        "INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, 'Raw', 'x')"
    )
    async with session_factory() as session:
        await session.execute(insert, {"id": uuid.uuid4(), "email": email})
        await session.commit()
        with pytest.raises(IntegrityError, match="uq_users_email_lower"):
            await session.execute(insert, {"id": uuid.uuid4(), "email": email.upper()})


async def test_email_lookups_use_the_lower_email_index(session_factory, engine):
    """EXPLAIN the very statements the repository sends: the index must serve them."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM users" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with session_factory() as session:
            users = UserRepository.from_session(session)
            await users.get_active_by_email("Someone@Example.com")
            await users.email_taken("Someone@Example.com")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert len(sent) == 2
    async with engine.connect() as conn:
        # On a small table the planner may prefer a scan; forbidding it shows the index matches
        # the expression these statements compare with.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in sent:
            plan = (await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all()
            assert any("uq_users_email_lower" in row[0] for row in plan), plan
        await conn.rollback()
