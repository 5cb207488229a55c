"""A project with one user per role, and tasks driven through the real command applier, for
the comment and history tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.db import transaction
from taskstream.enums import ReviewVerdict, TaskStatus, UserRole
from taskstream.messages import (
    Actor,
    AssignTask,
    CommandPayload,
    CreateTask,
    DeleteTask,
    DomainEvent,
    ReviewTask,
    TransitionTask,
    decode_event,
    new_command,
)
from taskstream.outbox.models import OutboxEvent
from taskstream.tasks.apply import apply_task_commands
from tests.integration.http_support import PASSWORD, ApiUser, join_project, register_and_login

Factory = async_sessionmaker[AsyncSession]


@dataclass
class Crew:
    """A shared project: an owner, a maintainer, two members and a viewer; and a stranger
    (a registered user who is not a member)."""

    project_id: str
    owner: ApiUser
    maintainer: ApiUser
    member: ApiUser
    member2: ApiUser
    viewer: ApiUser
    stranger: ApiUser

    @property
    def members(self) -> list[ApiUser]:
        return [self.owner, self.maintainer, self.member, self.member2, self.viewer]


async def make_crew(client: httpx.AsyncClient) -> Crew:
    owner = await register_and_login(client, "Olive")
    created = await client.post("/projects", json={"name": "Launch"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    people: dict[str, ApiUser] = {}
    for name, role in [
        ("Maya", "maintainer"),
        ("Mel", "member"),
        ("Max", "member"),
        ("Vic", "viewer"),
    ]:
        user = await register_and_login(client, name)
        await join_project(client, project_id, owner.headers, user.email, user.headers, role)
        people[name] = user
    stranger = await register_and_login(client, "Stan")
    return Crew(
        project_id,
        owner,
        people["Maya"],
        people["Mel"],
        people["Max"],
        people["Vic"],
        stranger,
    )


async def run(factory: Factory, actor: ApiUser, task_id: str, payload: CommandPayload) -> None:
    """Apply one command as the consumer would; it must be applied, not rejected."""
    command = new_command(
        payload, actor=Actor(user_id=uuid.UUID(actor.id)), task_id=uuid.UUID(task_id)
    )
    async with transaction(factory) as session:
        result = await apply_task_commands(session, [command])
    assert result.applied == [command.command_id], result.rejected


async def make_task(
    factory: Factory,
    crew: Crew,
    title: str = "Write the launch post",
    *,
    assignee: ApiUser | None = None,
    reviewer: ApiUser | None = None,
    project_id: str | None = None,
    creator: ApiUser | None = None,
) -> str:
    """A task created (and assigned) through the applier, so its audit rows are real."""
    task_id = str(uuid.uuid4())
    creator = creator or crew.owner
    payload = CreateTask(project_id=uuid.UUID(project_id or crew.project_id), title=title)
    await run(factory, creator, task_id, payload)
    if assignee is not None or reviewer is not None:
        await run(
            factory,
            creator,
            task_id,
            AssignTask(
                assignee_id=uuid.UUID(assignee.id) if assignee else None,
                reviewer_id=uuid.UUID(reviewer.id) if reviewer else None,
            ),
        )
    return task_id


async def review(
    factory: Factory, assignee: ApiUser, reviewer: ApiUser, task_id: str, comment: str | None
) -> None:
    """Move the task to review and have the reviewer ask for changes with a comment."""
    await run(factory, assignee, task_id, TransitionTask(to=TaskStatus.IN_PROGRESS))
    await run(
        factory,
        assignee,
        task_id,
        TransitionTask(to=TaskStatus.IN_REVIEW, reviewer_id=uuid.UUID(reviewer.id)),
    )
    await run(
        factory,
        reviewer,
        task_id,
        ReviewTask(review_id=uuid.uuid4(), verdict=ReviewVerdict.REQUEST_CHANGES, comment=comment),
    )


async def delete_task(factory: Factory, actor: ApiUser, task_id: str) -> None:
    await run(factory, actor, task_id, DeleteTask())


async def make_admin(client: httpx.AsyncClient, factory: Factory) -> ApiUser:
    """A registered user promoted to admin, logged in again so the token carries the role."""
    user = await register_and_login(client, "Ada")
    async with transaction(factory) as session:
        await session.execute(
            text("UPDATE users SET role = CAST(:role AS user_role) WHERE id = :id"),
            {"role": UserRole.ADMIN.value, "id": user.id},
        )
    login = await client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    user.token = login.json()["accessToken"]
    return user


async def outbox_events(factory: Factory, task_id: str, *types: str) -> list[DomainEvent]:
    """The task's events of these types in the outbox, in the order they were written."""
    async with factory() as session:
        rows = await session.execute(
            select(OutboxEvent.payload)
            .where(
                OutboxEvent.aggregate_id == uuid.UUID(task_id), OutboxEvent.event_type.in_(types)
            )
            .order_by(OutboxEvent.id)
        )
        return [decode_event(payload) for payload in rows.scalars()]


async def count_rows(factory: Factory, sql: str, **params: Any) -> int:
    async with factory() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


def same_not_found(response: httpx.Response, baseline: httpx.Response) -> None:
    """A hidden thing answers exactly like a random id: status and problem body, apart from
    ``instance`` (the request path)."""
    assert response.status_code == 404, response.text
    assert baseline.status_code == 404, baseline.text
    mine = {k: v for k, v in response.json().items() if k != "instance"}
    theirs = {k: v for k, v in baseline.json().items() if k != "instance"}
    assert mine == theirs
    assert response.headers["content-type"].startswith("application/problem+json")
