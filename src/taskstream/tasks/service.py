"""What the task endpoints call: authorise, build command envelopes, publish, record; and the
reads of tasks and project stats.

The API never writes tasks. It checks what it can cheaply (membership, input) and publishes a
``TaskCommand``; the consumer applies it (``apply.py``) and re-checks every rule against the
database, so a stale membership cache here can only let through a command rejected later.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.command_status.records import (
    DEFAULT_ACCEPTED_TTL_S,
    AcceptedRecorder,
    task_project_key,
)
from taskstream.enums import ProjectRole
from taskstream.errors import (
    DomainError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ProjectArchivedError,
    UnavailableError,
    ValidationFailedError,
)
from taskstream.kafka import CommandPublisher
from taskstream.messages import (
    Actor,
    AssignTask,
    CommandPayload,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TaskCommand,
    TransitionTask,
    UpdateTask,
    new_command,
)
from taskstream.principal import Principal
from taskstream.projects.access import ProjectAccessCache
from taskstream.projects.service import require_project_role, role_at_least
from taskstream.tasks.assignees import require_project_members
from taskstream.tasks.listing import Position, TaskFilter, TaskSort
from taskstream.tasks.models import Task
from taskstream.tasks.read_repository import ProjectStatsRow, TaskOwnership, TaskReadRepository
from taskstream.tasks.schemas import (
    AcceptedItem,
    AssignTaskRequest,
    BatchAccepted,
    BatchCreateTasksRequest,
    CommandAccepted,
    CreateTaskRequest,
    ReviewTaskRequest,
    TransitionTaskRequest,
    UpdateTaskRequest,
)

# ids of the i-th new task of a request: (task id, command id)
NewTaskIds = Callable[[int], tuple[uuid.UUID, uuid.UUID]]
# (command id or None for a random one, review id)
ReviewIds = tuple[uuid.UUID | None, uuid.UUID]

logger = logging.getLogger(__name__)

# Task ids derived from an Idempotency-Key (uuid5); random ones are uuid7 (time-ordered).
DERIVED_ID_VERSION = 5
# A task id derived from an Idempotency-Key carries no time: after a Redis restart older than
# this, a create accepted before it has long been applied (consumer lag is seconds).
DERIVED_ID_LOSS_WINDOW = timedelta(minutes=10)
# How far the clocks of the API host that minted a task id and the one reading it may differ.
MINT_CLOCK_SKEW = timedelta(seconds=5)


def minted_at(task_id: uuid.UUID) -> datetime | None:
    """When a uuid7 task id was minted (its first 48 bits are Unix milliseconds)."""
    if task_id.version != 7:
        return None
    return datetime.fromtimestamp((task_id.int >> 80) / 1000, UTC)


@dataclass(slots=True)
class TaskService:
    """The task command service, built once per app (its caches and clients are shared)."""

    publisher: CommandPublisher
    redis: Redis
    access: ProjectAccessCache
    session_factory: async_sessionmaker[AsyncSession]
    recorder: AcceptedRecorder
    accepted_ttl_s: int = DEFAULT_ACCEPTED_TTL_S
    unapplied_wait_s: float = 3.0
    batch_max_items: int = 1000

    async def submit(self, commands: Sequence[TaskCommand], trace_id: str) -> None:
        """Publish and wait for the broker's ack (503 otherwise), then record acceptance."""
        await self.publisher.publish(commands, trace_id)
        await self.recorder.record(commands)

    async def create(
        self, principal: Principal, data: CreateTaskRequest, ids: NewTaskIds, trace_id: str
    ) -> CommandAccepted:
        """Queue a new task in ``data.project_id`` (default: the caller's personal project)."""
        project_id = await self.project_for_create(principal, data.project_id)
        if data.assignee_id is not None:
            await require_project_members(self.access, project_id, {"assigneeId": data.assignee_id})
        task_id, command_id = ids(0)
        return await self._submit_one(
            principal, _create_payload(data, project_id), task_id, command_id, trace_id
        )

    async def create_batch(
        self, principal: Principal, data: BatchCreateTasksRequest, ids: NewTaskIds, trace_id: str
    ) -> BatchAccepted:
        """Queue up to ``batch_max_items`` new tasks: all accepted, or none (422 naming every
        invalid item)."""
        limit = self.batch_max_items
        if len(data.tasks) > limit:
            raise ValidationFailedError([FieldError("tasks", f"must hold at most {limit} items")])
        project_of: dict[uuid.UUID | None, uuid.UUID | None] = {}
        errors: list[FieldError] = []
        for index, item in enumerate(data.tasks):
            if item.project_id not in project_of:
                try:
                    project_of[item.project_id] = await self.project_for_create(
                        principal, item.project_id
                    )
                except ProjectArchivedError:
                    raise  # the whole batch is refused with the project's 409
                except DomainError:
                    project_of[item.project_id] = None
            project_id = project_of[item.project_id]
            if project_id is None:
                errors.append(
                    FieldError(
                        f"tasks[{index}].projectId",
                        "project not found or you may not create tasks in it",
                    )
                )
            elif item.assignee_id is not None:
                try:
                    await require_project_members(
                        self.access, project_id, {f"tasks[{index}].assigneeId": item.assignee_id}
                    )
                except ValidationFailedError as exc:
                    errors += exc.errors
        if errors:
            raise ValidationFailedError(
                errors, detail="Some tasks in the batch are invalid; nothing was published"
            )
        commands = []
        for index, item in enumerate(data.tasks):
            task_id, command_id = ids(index)
            project_id = project_of[item.project_id]
            assert project_id is not None
            payload = _create_payload(item, project_id)
            commands.append(build_command(principal, payload, task_id, command_id))
        await self.submit(commands, trace_id)
        return BatchAccepted(
            tasks=[AcceptedItem(task_id=c.task_id, command_id=c.command_id) for c in commands]
        )

    async def update(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        data: UpdateTaskRequest,
        command_id: uuid.UUID | None,
        trace_id: str,
    ) -> CommandAccepted:
        """Queue a change of title, description, priority or deadline."""
        changes = msgspec.structs.asdict(data)
        if all(v is msgspec.UNSET for v in changes.values()):
            raise ValidationFailedError([FieldError("$", "name at least one field to change")])
        await self.authorise_on_task(principal, task_id)
        return await self._submit_one(
            principal, UpdateTask(**changes), task_id, command_id, trace_id
        )

    async def assign(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        data: AssignTaskRequest,
        command_id: uuid.UUID | None,
        trace_id: str,
    ) -> CommandAccepted:
        """Queue a change of assignee (None: unassign) and optionally reviewer."""
        project_id = await self.authorise_on_task(principal, task_id)
        await require_project_members(
            self.access,
            project_id,
            {"assigneeId": data.assignee_id, "reviewerId": data.reviewer_id},
        )
        payload = AssignTask(assignee_id=data.assignee_id, reviewer_id=data.reviewer_id)
        return await self._submit_one(principal, payload, task_id, command_id, trace_id)

    async def transition(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        data: TransitionTaskRequest,
        command_id: uuid.UUID | None,
        trace_id: str,
    ) -> CommandAccepted:
        """Queue a status change; the consumer enforces the workflow rules."""
        project_id = await self.authorise_on_task(principal, task_id)
        await require_project_members(self.access, project_id, {"reviewerId": data.reviewer_id})
        payload = TransitionTask(to=data.to, reviewer_id=data.reviewer_id)
        return await self._submit_one(principal, payload, task_id, command_id, trace_id)

    async def review(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        data: ReviewTaskRequest,
        ids: ReviewIds,
        trace_id: str,
    ) -> CommandAccepted:
        """Queue a review verdict with a comment; ``ids`` gives (command id, review id)."""
        await self.authorise_on_task(principal, task_id)
        command_id, review_id = ids
        payload = ReviewTask(review_id=review_id, verdict=data.verdict, comment=data.comment)
        return await self._submit_one(principal, payload, task_id, command_id, trace_id)

    async def delete(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        command_id: uuid.UUID | None,
        trace_id: str,
    ) -> CommandAccepted:
        """Queue the deletion of a task (maintainer, or the task's creator)."""
        await self.authorise_on_task(principal, task_id, deleting=True)
        return await self._submit_one(principal, DeleteTask(), task_id, command_id, trace_id)

    async def _submit_one(
        self,
        principal: Principal,
        payload: CommandPayload,
        task_id: uuid.UUID,
        command_id: uuid.UUID | None,
        trace_id: str,
    ) -> CommandAccepted:
        command = build_command(principal, payload, task_id, command_id)
        await self.submit([command], trace_id)
        return CommandAccepted(task_id=task_id, command_id=command.command_id)

    async def project_for_create(
        self, principal: Principal, project_id: uuid.UUID | None
    ) -> uuid.UUID:
        """The project a new task goes to (default: personal), checked for member rights."""
        if project_id is None:
            project_id = await self.access.personal_project(principal.user_id)
        await self.access.role(principal, project_id, ProjectRole.MEMBER)
        return project_id

    async def authorise_on_task(
        self, principal: Principal, task_id: uuid.UUID, *, deleting: bool = False
    ) -> uuid.UUID:
        """Check the caller may send a command about an existing task; returns its project.

        Members may change tasks; deleting needs maintainer, or being the task's creator.
        A task the caller cannot see is 404, exactly like one that does not exist."""
        created_by: uuid.UUID | None = None
        row = await self._ownership(task_id)
        project_id: uuid.UUID | None
        if row is not None:
            project_id, created_by = row.project_id, row.created_by
        else:
            project_id = await self._accepted_task_project(task_id)
        if project_id is None and await self._record_may_be_lost(task_id):
            row = await self._wait_for_row(task_id)
            if row is not None:
                project_id, created_by = row.project_id, row.created_by
        if project_id is None:
            raise NotFoundError("Task not found")
        try:
            role = await self.access.role(principal, project_id, ProjectRole.VIEWER)
        except NotFoundError:
            # The project's "not found" would tell a task that exists from a random id.
            raise NotFoundError("Task not found") from None
        if deleting:
            if role_at_least(role, ProjectRole.MAINTAINER) or (
                created_by == principal.user_id and role_at_least(role, ProjectRole.MEMBER)
            ):
                return project_id
            raise ForbiddenError("Deleting needs the maintainer role or being the task's creator")
        if not role_at_least(role, ProjectRole.MEMBER):
            raise ForbiddenError("This needs the member role in the project")
        return project_id

    async def _ownership(self, task_id: uuid.UUID) -> TaskOwnership | None:
        async with self.session_factory() as session:
            return await TaskReadRepository.from_session(session).ownership(task_id)

    async def _record_may_be_lost(self, task_id: uuid.UUID) -> bool:
        """Whether a task unknown to PostgreSQL and Redis may still be an accepted create
        whose record Redis lost (it keeps nothing across a restart): only when Redis cannot be
        read, or started after the id was minted and within the record's lifetime. Ids this
        API never mints (random v4) are unknown at once."""
        now = datetime.now(UTC)
        lifetime = timedelta(seconds=self.accepted_ttl_s)
        minted = minted_at(task_id)
        if minted is None and task_id.version != DERIVED_ID_VERSION:
            return False
        if minted is not None and minted < now - lifetime:
            return False  # its record would have expired: the create was applied long ago
        try:
            uptime = int((await self.redis.info("server"))["uptime_in_seconds"])
        except (RedisError, OSError, KeyError, ValueError):
            return True
        started = now - timedelta(seconds=uptime)
        if minted is None:
            # Derived from an Idempotency-Key: no time to go by. Only a restart within the
            # last few minutes can have lost a record of a create still waiting to be applied.
            return started > now - DERIVED_ID_LOSS_WINDOW
        return minted <= started + MINT_CLOCK_SKEW

    async def _wait_for_row(self, task_id: uuid.UUID) -> TaskOwnership | None:
        """Wait (bounded) for the consumer to write the task's row; 503 if it does not.
        None: the task was stored and deleted since (a plain 404)."""
        async with self.session_factory() as session:
            if await TaskReadRepository.from_session(session).is_deleted(task_id):
                return None
        deadline = time.monotonic() + self.unapplied_wait_s
        delay = 0.05
        while (row := await self._ownership(task_id)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnavailableError(
                    "This task is not known yet: its create may still be waiting to be "
                    "applied. Retry shortly.",
                    retry_after_s=max(1, round(self.unapplied_wait_s)),
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        return row

    async def _accepted_task_project(self, task_id: uuid.UUID) -> uuid.UUID | None:
        try:
            raw = await self.redis.get(task_project_key(task_id))
        except (RedisError, OSError):
            return None
        return uuid.UUID(raw.decode() if isinstance(raw, bytes) else raw) if raw else None


def build_command(
    principal: Principal,
    payload: CommandPayload,
    task_id: uuid.UUID,
    command_id: uuid.UUID | None = None,
) -> TaskCommand:
    return new_command(
        payload,
        actor=Actor(user_id=principal.user_id, role=principal.role),
        task_id=task_id,
        command_id=command_id,
    )


def _create_payload(data: CreateTaskRequest, project_id: uuid.UUID) -> CreateTask:
    return CreateTask(
        project_id=project_id,
        title=data.title,
        description=data.description,
        priority=data.priority,
        deadline=data.deadline,
        assignee_id=data.assignee_id,
    )


# --- reads ------------------------------------------------------------------------------------


async def list_tasks(
    session: AsyncSession,
    principal: Principal,
    filters: TaskFilter,
    *,
    sort: TaskSort = TaskSort.CREATED_AT,
    after: Position | None,
    limit: int,
) -> tuple[Sequence[Task], bool]:
    """A page of tasks in the caller's projects (all for an admin) matching ``filters``, in
    ``sort`` order after ``after``, and whether more follow. A project filter naming a project
    the caller is not a member of is 404, like a project that does not exist."""
    if filters.project_id is not None:
        await require_project_role(session, principal, filters.project_id)
    rows = await TaskReadRepository.from_session(session).page(
        filters,
        member_id=None if principal.is_admin else principal.user_id,
        sort=sort,
        after=after,
        limit=limit + 1,
    )
    return rows[:limit], len(rows) > limit


async def get_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID) -> Task:
    """One task, if the caller is a member of its project (404 otherwise, like no task)."""
    task = await TaskReadRepository.from_session(session).get(task_id)
    if task is None:
        raise NotFoundError("Task not found")
    try:
        await require_project_role(session, principal, task.project_id)
    except NotFoundError as exc:
        raise NotFoundError("Task not found") from exc
    return task


async def project_stats(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, minutes: int
) -> ProjectStatsRow:
    """Counters of a project the caller is a member of, and its last ``minutes`` of activity."""
    await require_project_role(session, principal, project_id)
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    stats = await TaskReadRepository.from_session(session).project_stats(project_id, since)
    if stats is None:
        raise NotFoundError("Project not found")
    return stats
