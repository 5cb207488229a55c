"""The apply service against real PostgreSQL: rules, dedupe, audit, outbox, stats, notify."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import transaction
from taskstream.enums import ReviewVerdict, TaskPriority, TaskStatus, UserRole
from taskstream.messages import (
    Actor,
    AssignTask,
    DeleteTask,
    ReviewTask,
    TransitionTask,
    UpdateTask,
    decode_event,
    encode_event,
    new_command,
)
from taskstream.outbox.ids import derived_event_id
from taskstream.tasks.apply import ApplyResult, InboundCommand, apply_task_commands
from taskstream.tasks.read_repository import TaskReadRepository
from taskstream.tasks.repository import COMMANDS_CHANNEL
from tests.integration.consumers.stream_support import (
    Team,
    command_on,
    create_command,
    dsn_of,
    seed_team,
)

Factory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def team(database: str) -> Team:
    return await seed_team(dsn_of(database))


@pytest.fixture
async def pg(database: str):
    conn = await asyncpg.connect(dsn_of(database))
    yield conn
    await conn.close()


async def apply(factory: Factory, commands: list) -> ApplyResult:
    async with transaction(factory) as session:
        return await apply_task_commands(session, commands)


async def test_creates_apply_once_and_duplicates_are_counted(
    session_factory: Factory, team: Team, pg: asyncpg.Connection
) -> None:
    commands = [create_command(team, f"t{i}") for i in range(50)]
    first = await apply(session_factory, [*commands, commands[0], commands[1]])
    assert len(first.applied) == 50
    assert first.duplicates == 2
    again = await apply(session_factory, commands[:10])
    assert again.applied == [] and again.duplicates == 10

    ids = [c.task_id for c in commands]
    assert await pg.fetchval("SELECT count(*) FROM tasks WHERE id = ANY($1)", ids) == 50
    per_command = await pg.fetch(
        "SELECT command_id, count(*) AS n FROM task_events WHERE task_id = ANY($1) "
        "GROUP BY command_id",
        ids,
    )
    assert {r["command_id"] for r in per_command} == {c.command_id for c in commands}
    assert all(r["n"] == 1 for r in per_command)
    statuses = await pg.fetch(
        "SELECT status::text FROM command_statuses WHERE task_id = ANY($1)", ids
    )
    assert [r["status"] for r in statuses] == ["applied"] * 50
    outbox = await pg.fetch(
        "SELECT payload FROM outbox WHERE aggregate_id = ANY($1) AND event_type = 'task.created'",
        ids,
    )
    assert len(outbox) == 50
    event = decode_event(outbox[0]["payload"])
    assert event.project_id == team.project_id
    assert {"taskId", "projectId", "title", "status", "assigneeId", "reviewerId", "createdBy"} <= (
        event.data.keys()
    )


async def test_lifecycle_in_one_batch_applies_in_order(
    session_factory: Factory, team: Team, pg: asyncpg.Connection
) -> None:
    create = create_command(team, "lifecycle")
    task = create.task_id
    reviewer = team.members[1]
    batch = [
        create,
        command_on(team, task, AssignTask(assignee_id=team.members[0])),
        command_on(team, task, TransitionTask(to=TaskStatus.IN_PROGRESS)),
        command_on(team, task, TransitionTask(to=TaskStatus.IN_REVIEW)),  # no reviewer yet
        command_on(team, task, TransitionTask(to=TaskStatus.IN_REVIEW, reviewer_id=reviewer)),
        command_on(
            team,
            task,
            ReviewTask(review_id=uuid.uuid4(), verdict=ReviewVerdict.REQUEST_CHANGES),
            user=reviewer,
        ),
        command_on(team, task, TransitionTask(to=TaskStatus.IN_REVIEW)),
        command_on(
            team,
            task,
            ReviewTask(review_id=uuid.uuid4(), verdict=ReviewVerdict.APPROVE, comment="ok"),
            user=reviewer,
        ),
        command_on(team, task, TransitionTask(to=TaskStatus.TODO)),  # done -> todo refused
        command_on(team, task, UpdateTask(title="renamed", priority=TaskPriority.HIGH)),
    ]
    result = await apply(session_factory, batch)
    assert list(result.rejected) == [batch[3].command_id, batch[8].command_id]
    assert result.rejected[batch[3].command_id] == "in_review needs a reviewer"
    row = await pg.fetchrow("SELECT * FROM tasks WHERE id = $1", task)
    assert row["status"] == "done"
    assert row["title"] == "renamed"
    assert row["assignee_id"] == team.members[0]
    assert row["reviewer_id"] == reviewer
    assert row["completed_at"] is not None
    assert row["version"] == 1 + 7
    events = await pg.fetch(
        "SELECT event_type, before, after FROM task_events WHERE task_id = $1 ORDER BY id", task
    )
    assert [e["event_type"] for e in events] == [
        "task.created",
        "task.assigned",
        "task.status_changed",
        "task.status_changed",
        "task.reviewed",
        "task.status_changed",
        "task.reviewed",
        "task.updated",
    ]
    assert msgspec.json.decode(events[0]["after"])["status"] == "todo"
    assert events[0]["before"] is None
    assert await pg.fetchval("SELECT count(*) FROM task_reviews WHERE task_id = $1", task) == 2
    outbox = await pg.fetch(
        "SELECT event_id, event_type, payload FROM outbox WHERE aggregate_id = $1 ORDER BY id",
        task,
    )
    assert "task.completed" in [t["event_type"] for t in outbox]
    # The event-id contract (uuid5 of cause and type) and the wire form of the payload.
    causes = {c.command_id for c in batch}
    for row in outbox:
        event = decode_event(row["payload"])
        assert event.event_id == row["event_id"]
        assert any(derived_event_id(c, row["event_type"]) == event.event_id for c in causes)
        assert encode_event(event) == row["payload"]
        assert event.data["taskId"] == str(task)
        assert event.data["createdBy"] == str(create.actor.user_id)
    after = msgspec.json.decode(events[-1]["after"])
    assert after["assigneeId"] == str(team.members[0])
    assert after["priority"] == "high"
    reason = await pg.fetchval(
        "SELECT reason FROM command_statuses WHERE command_id = $1", batch[8].command_id
    )
    assert reason == "cannot move a task from done to todo"


async def test_rules_reject_without_blocking_neighbours(
    session_factory: Factory, team: Team, pg: asyncpg.Connection
) -> None:
    base = create_command(team, "base")
    await apply(session_factory, [base])
    missing = uuid.uuid4()
    batch = [
        create_command(team, "ok 1"),
        new_command(  # outsider may not create
            create_command(team).payload,
            actor=Actor(user_id=team.outsider, role=UserRole.MEMBER),
            task_id=uuid.uuid4(),
        ),
        command_on(team, base.task_id, UpdateTask(title="x"), user=team.viewer),  # viewer
        command_on(team, base.task_id, AssignTask(assignee_id=team.outsider)),  # not a member
        command_on(team, missing, UpdateTask(title="x")),  # no such task
        create_command(team, ""),  # empty title
        create_command(team, "y" * 501),  # longer than the column
        command_on(team, base.task_id, DeleteTask(), user=team.members[1]),  # not creator
        create_command(team, "ok 2"),
    ]
    result = await apply(session_factory, batch)
    assert result.applied == [batch[0].command_id, batch[8].command_id]
    assert result.rejected == {
        batch[1].command_id: "actor is not a member of the project",
        batch[2].command_id: "actor may not change tasks in this project",
        batch[3].command_id: "assignee is not a member of the project",
        batch[4].command_id: "task not found",
        batch[5].command_id: "title must not be empty",
        batch[6].command_id: "title longer than 500 characters",
        batch[7].command_id: ("only the creator or a project owner/maintainer may delete a task"),
    }
    rejected = await pg.fetchval(
        "SELECT count(*) FROM command_statuses WHERE status = 'rejected' AND command_id = ANY($1)",
        list(result.rejected),
    )
    assert rejected == 7


async def test_membership_is_rechecked_at_apply_time(
    session_factory: Factory, team: Team, pg: asyncpg.Connection
) -> None:
    member = team.members[0]
    accepted = command_on(team, uuid.uuid4(), create_command(team).payload, user=member)
    await pg.execute(
        "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
        team.project_id,
        member,
    )
    result = await apply(session_factory, [accepted])
    assert result.rejected == {accepted.command_id: "actor is not a member of the project"}


async def test_soft_delete_and_stats(
    session_factory: Factory, team: Team, pg: asyncpg.Connection
) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    creates = [create_command(team, f"s{i}", deadline=past) for i in range(4)]
    t0, t1, t2, _ = (c.task_id for c in creates)
    await apply(session_factory, creates)
    await apply(
        session_factory,
        [
            command_on(team, t0, DeleteTask()),
            command_on(team, t0, UpdateTask(title="after delete")),  # rejected: deleted
            command_on(team, t1, TransitionTask(to=TaskStatus.IN_PROGRESS)),
            command_on(team, t1, TransitionTask(to=TaskStatus.DONE)),
            command_on(team, t2, TransitionTask(to=TaskStatus.CANCELLED)),
        ],
    )
    assert await pg.fetchval("SELECT deleted_at IS NOT NULL FROM tasks WHERE id = $1", t0)
    async with session_factory() as session:
        stats = await TaskReadRepository.from_session(session).project_stats(
            team.project_id, past - timedelta(days=1)
        )
    assert stats is not None
    assert stats.counters["done"] == 1
    assert stats.counters["cancelled"] == 1
    assert stats.counters["deleted"] == 1
    assert stats.overdue == 1  # only the untouched open task with a past deadline
    assert sum(completed for _, _, completed in stats.activity) == 1
    assert sum(created for _, created, _ in stats.activity) >= 4


async def test_a_rolled_back_batch_leaves_nothing_and_notifies_nobody(
    session_factory: Factory, team: Team, pg: asyncpg.Connection, database: str
) -> None:
    heard: list[str] = []
    listener = await asyncpg.connect(dsn_of(database))
    await listener.add_listener(COMMANDS_CHANNEL, lambda *args: heard.append(args[3]))
    command = create_command(team, "rolled back")

    async def crash_before_commit() -> None:
        async with transaction(session_factory) as session:
            await apply_task_commands(session, [InboundCommand(command, "t", 0, 1)])
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash_before_commit()
    assert (
        await pg.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", command.command_id)
        == 0
    )
    assert (await apply(session_factory, [command])).applied == [command.command_id]
    await asyncio.sleep(0.2)  # notifications are delivered asynchronously to the listener
    await listener.close()
    assert any(str(command.command_id) in payload for payload in heard)
