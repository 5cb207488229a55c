"""Commands the database can never store, published straight to the topic (as a client that
bypasses the API could): each reaches a final state within seconds and the command after it on
the same task key is applied. A real `taskstream consume` process, real Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import msgspec
import pytest

from taskstream.enums import ReviewVerdict, TaskStatus
from taskstream.infra.dead_letters import read_dead_letters
from taskstream.messages import (
    AssignTask,
    ReviewTask,
    TaskCommand,
    TransitionTask,
    UpdateTask,
    encode_command,
)
from taskstream.settings import Settings
from tests.integration.consumers.stream_support import (
    Lane,
    Team,
    as_message,
    command_on,
    consumer_process,
    create_command,
    produce,
    seed_team,
    wait_for,
    wait_for_zero_lag,
)
from tests.processes import ChildProcess

pytestmark = [pytest.mark.slow, pytest.mark.fault]

# 23:00 at -05:00 on the last day of 9999 is 04:00 UTC in the year 10000: Python cannot convert
# it to UTC and PostgreSQL cannot store it.
BEYOND_UTC = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
# The other end: the first hour of year 1 at +14:00 is still year 0 in UTC.
BEFORE_YEAR_ONE = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=14)))
SETTLE_S = 10.0


async def _statuses(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT command_id, status::text, reason FROM command_statuses "
            "WHERE command_id = ANY($1)",
            ids,
        )
    finally:
        await conn.close()
    return {r["command_id"]: (r["status"], r["reason"]) for r in rows}


async def _send_and_settle(lane: Lane, commands: list[TaskCommand]) -> dict[uuid.UUID, str]:
    """Publish ``commands`` in order on their task keys; wait (bounded) until all are final."""
    started = time.monotonic()
    await produce(
        lane.kafka.bootstrap_servers,
        lane.kafka.task_commands_topic,
        [as_message(c) for c in commands],
    )
    ids = [c.command_id for c in commands]
    await wait_for(lane.dsn, lane.settled(ids, len(ids)), SETTLE_S, "every command final")
    assert time.monotonic() - started < SETTLE_S
    return {k: v[0] for k, v in (await _statuses(lane.dsn, ids)).items()}


async def _started_consumer(lane: Lane, team: Team, tmp_path: Path) -> ChildProcess:
    consumer = consumer_process(lane.env, tmp_path / "consumer.log").start()
    warm = create_command(team, "warm-up")
    await produce(lane.kafka.bootstrap_servers, lane.kafka.task_commands_topic, [as_message(warm)])
    await wait_for(lane.dsn, lane.settled([warm.command_id], 1), 60, "consumer joined")
    return consumer


async def test_unstorable_values_are_rejected_and_the_next_command_applies(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    consumer = await _started_consumer(lane, team, tmp_path)
    try:
        # an existing task in review, reviewed by the second member
        base = create_command(team, "base", assignee_id=team.members[0])
        reviewer = team.members[1]
        setup = [
            base,
            command_on(team, base.task_id, TransitionTask(to=TaskStatus.IN_PROGRESS)),
            command_on(
                team, base.task_id, TransitionTask(to=TaskStatus.IN_REVIEW, reviewer_id=reviewer)
            ),
        ]
        assert set((await _send_and_settle(lane, setup)).values()) == {"applied"}

        poison: list[TaskCommand] = []
        follow: list[TaskCommand] = []
        for fields in (
            {"title": "nul \x00 title"},
            {"title": "ok", "description": "nul \x00 description"},
            {"title": "ok", "deadline": BEYOND_UTC},
            {"title": "ok", "deadline": BEFORE_YEAR_ONE},
        ):
            bad = create_command(team, **fields)  # type: ignore[arg-type]
            poison.append(bad)
            # the same task id, created properly right after: must apply
            good = create_command(team, "fine")
            follow.append(command_on(team, bad.task_id, good.payload))
        on_base = [
            UpdateTask(title="nul \x00 update"),
            UpdateTask(deadline=BEYOND_UTC),
            UpdateTask(description="\x00"),
        ]
        poison += [command_on(team, base.task_id, p) for p in on_base]
        poison.append(
            command_on(
                team,
                base.task_id,
                ReviewTask(review_id=uuid.uuid4(), verdict=ReviewVerdict.APPROVE, comment="\x00"),
                reviewer,
            )
        )
        follow.append(
            command_on(
                team,
                base.task_id,
                ReviewTask(review_id=uuid.uuid4(), verdict=ReviewVerdict.APPROVE, comment="ok"),
                reviewer,
            )
        )
        # Interleaved on their keys: every poison command is followed by a good one.
        outcome = await _send_and_settle(lane, [*poison, *follow])
        assert {outcome[c.command_id] for c in poison} == {"rejected"}
        assert {outcome[c.command_id] for c in follow} == {"applied"}
        reasons = await _statuses(lane.dsn, [c.command_id for c in poison])
        assert all(reason and "could not be stored" in reason for _, reason in reasons.values())

        conn = await asyncpg.connect(lane.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT title, status::text FROM tasks WHERE id = $1", base.task_id
            )
            created = await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE id = ANY($1) AND title = 'fine'",
                [c.task_id for c in poison[:4]],
            )
        finally:
            await conn.close()
        assert row["title"] == "base"  # no poison update leaked into the row
        assert row["status"] == "done"  # the approving review after the poison one applied
        assert created == 4
        await wait_for_zero_lag(lane.kafka, timeout=30)
    finally:
        assert consumer.terminate() == 0


async def test_a_command_that_cannot_even_be_rejected_is_dead_lettered(
    settings: Settings, settings_env: dict[str, str], database: str, tmp_path: Path
) -> None:
    """An envelope whose own fields cannot be stored (its time overflows UTC) cannot be recorded
    as rejected either: it goes to the dead-letter topic, and its neighbours apply."""
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    consumer = await _started_consumer(lane, team, tmp_path)
    try:
        bad = create_command(team, "from the far future")
        raw = msgspec.json.decode(encode_command(bad))
        raw["occurredAt"] = BEYOND_UTC.isoformat()
        raw_bytes = msgspec.json.encode(raw)
        after = command_on(team, bad.task_id, AssignTask(assignee_id=None))
        neighbour = create_command(team, "neighbour")
        key = str(bad.task_id).encode()
        started = time.monotonic()
        await produce(
            lane.kafka.bootstrap_servers,
            lane.kafka.task_commands_topic,
            [(key, raw_bytes, []), as_message(after), as_message(neighbour)],
        )
        ids = [after.command_id, neighbour.command_id]
        await wait_for(lane.dsn, lane.settled(ids, 2), SETTLE_S, "neighbours final")
        await wait_for_zero_lag(lane.kafka, timeout=SETTLE_S)
        assert time.monotonic() - started < SETTLE_S + 5
        letters = await read_dead_letters(lane.kafka)
        assert [d.value for d in letters] == [raw_bytes]
        assert letters[0].header("x-error")
        states = await _statuses(lane.dsn, [bad.command_id, *ids])
        assert bad.command_id not in states
        assert states[neighbour.command_id][0] == "applied"
        assert states[after.command_id] == ("rejected", "task not found")
    finally:
        assert consumer.terminate() == 0
