"""Property: whatever a producer puts on the commands topic, one real consumer process brings
the lag to zero and every command to a final state (applied, rejected or dead-lettered), with
no restart. Commands of every type with adversarial values (NUL and other control characters,
huge strings, datetimes at and beyond the representable range in any UTC offset, unknown
users and projects, admin actors that skip the membership rules so the values reach
PostgreSQL) are published straight to the topic, bypassing the API's validation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskstream.enums import ReviewVerdict, TaskPriority, TaskStatus, UserRole
from taskstream.infra.dead_letters import read_dead_letters
from taskstream.messages import (
    Actor,
    AssignTask,
    CommandPayload,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TransitionTask,
    UpdateTask,
    encode_command,
    new_command,
)
from taskstream.settings import Settings
from tests.integration.consumers.stream_support import (
    Lane,
    Team,
    consumer_process,
    produce,
    seed_team,
    wait_for_zero_lag,
)
from tests.processes import ChildProcess

pytestmark = [pytest.mark.slow, pytest.mark.fault]

EXAMPLES = 30
SETTLE_S = 30.0

_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
DATETIMES = st.one_of(
    st.datetimes(timezones=_offsets),  # years 1..9999 in any offset: the edges overflow UTC
    st.sampled_from(
        [
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC),
        ]
    ),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
TEXTS = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from("\x00\x01\x7f\u202e\ufeff\u00e9\U0001f600 ab"), max_size=12),
    st.integers(400, 70_000).map(lambda n: "t" * n),
    st.just(" "),
)


@dataclass
class World:
    lane: Lane
    team: Team
    consumer: ChildProcess


@pytest.fixture(scope="module")
def world(
    settings: Settings,
    settings_env: dict[str, str],
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    lane = asyncio.run(Lane.create(settings, settings_env, database))
    team = asyncio.run(seed_team(lane.dsn))
    log = tmp_path_factory.mktemp("property") / "consumer.log"
    consumer = consumer_process(lane.env, log).start()
    yield World(lane, team, consumer)
    assert consumer.terminate() == 0
    assert consumer.exits == [0]  # one process all along: nothing needed a restart


def _payloads(draw: st.DrawFn, team: Team, *, create: bool) -> CommandPayload:
    users = st.one_of(st.sampled_from([team.owner, *team.members, team.viewer]), st.uuids())
    maybe = st.one_of(st.none(), users)
    kinds = ["create", "update", "assign", "transition", "review", "delete"]
    kind = "create" if create else draw(st.sampled_from(kinds))
    if kind == "create":
        project = team.project_id if draw(st.integers(0, 9)) else draw(st.uuids())
        return CreateTask(
            project_id=project,
            title=draw(TEXTS),
            description=draw(st.one_of(st.none(), TEXTS)),
            priority=draw(st.sampled_from(TaskPriority)),
            deadline=draw(st.one_of(st.none(), DATETIMES)),
            assignee_id=draw(maybe),
        )
    if kind == "update":
        fields = draw(st.sets(st.sampled_from(["title", "description", "priority", "deadline"])))
        values = {
            "title": TEXTS,
            "description": st.one_of(st.none(), TEXTS),
            "priority": st.sampled_from(TaskPriority),
            "deadline": st.one_of(st.none(), DATETIMES),
        }
        return UpdateTask(**{f: draw(values[f]) for f in fields})
    if kind == "assign":
        return AssignTask(assignee_id=draw(maybe), reviewer_id=draw(maybe))
    if kind == "transition":
        return TransitionTask(to=draw(st.sampled_from(TaskStatus)), reviewer_id=draw(maybe))
    if kind == "review":
        return ReviewTask(
            review_id=draw(st.uuids()),
            verdict=draw(st.sampled_from(ReviewVerdict)),
            comment=draw(st.one_of(st.none(), TEXTS)),
        )
    return DeleteTask()


@st.composite
def records(draw: st.DrawFn, team: Team) -> list[tuple[bytes, bytes, uuid.UUID | None]]:
    """(key, value, command id or None for bytes that are not a command) in publish order:
    mostly commands that pass the rules (so their values reach PostgreSQL), some that don't."""
    tasks = [uuid.uuid4() for _ in range(3)]
    out: list[tuple[bytes, bytes, uuid.UUID | None]] = []
    writers = [team.owner, team.owner, *team.members]
    for index in range(draw(st.integers(1, 14))):
        task_id = tasks[index] if index < len(tasks) else draw(st.sampled_from(tasks))
        key = str(task_id).encode()
        if draw(st.integers(0, 19)) == 0:  # now and then, bytes that are no command at all
            out.append((key, draw(st.binary(min_size=1, max_size=64)), None))
            continue
        stranger = draw(st.integers(0, 9)) == 0
        actor = Actor(
            user_id=draw(st.uuids()) if stranger else draw(st.sampled_from(writers)),
            role=draw(st.sampled_from(UserRole)),
        )
        payload = _payloads(draw, team, create=index < len(tasks))
        command = new_command(payload, actor=actor, task_id=task_id)
        if draw(st.integers(0, 9)) == 0:
            command = msgspec.structs.replace(command, occurred_at=draw(DATETIMES))
        out.append((key, encode_command(command), command.command_id))
    return out


async def _finished(lane: Lane, ids: list[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Command ids with a status row, and command ids found in the dead-letter topic."""
    conn = await asyncpg.connect(lane.dsn)
    try:
        rows = await conn.fetch(
            "SELECT command_id FROM command_statuses WHERE command_id = ANY($1)", ids
        )
    finally:
        await conn.close()
    dead: set[uuid.UUID] = set()
    for letter in await read_dead_letters(lane.kafka, timeout_s=5):
        try:
            dead.add(uuid.UUID(msgspec.json.decode(letter.value or b"")["commandId"]))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            continue
    return {r["command_id"] for r in rows}, dead


async def _publish_and_settle(
    world: World, batch: list[tuple[bytes, bytes, uuid.UUID | None]]
) -> None:
    lane = world.lane
    await produce(
        lane.kafka.bootstrap_servers,
        lane.kafka.task_commands_topic,
        [(key, value, []) for key, value, _ in batch],
    )
    ids = [command_id for _, _, command_id in batch if command_id is not None]
    await wait_for_zero_lag(lane.kafka, timeout=SETTLE_S)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while True:
        settled, dead = await _finished(lane, ids)
        missing = set(ids) - settled - dead
        if not missing or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert not missing, f"{len(missing)} command(s) never reached a final state"
    assert not settled & dead, "a command both recorded and dead-lettered"


def test_any_command_reaches_a_final_state_without_a_restart(world: World) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(batch=records(world.team))
    def publish_any(batch: list[tuple[bytes, bytes, uuid.UUID | None]]) -> None:
        asyncio.run(_publish_and_settle(world, batch))
        assert world.consumer.alive()

    publish_any()
    assert "Traceback" not in Path(world.consumer.log).read_text()
