"""Task routes: commands answered 202 once the broker has them, and reads from PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.auth.principal import Principal
from taskstream.dependencies import caller, trace_id_of
from taskstream.enums import ProjectRole, TaskPriority, TaskStatus
from taskstream.errors import DomainError, FieldError, NotFoundError, ValidationFailedError
from taskstream.idempotency import derived_id, idempotency_key
from taskstream.messages import (
    AssignTask,
    CommandPayload,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TransitionTask,
    UpdateTask,
)
from taskstream.problems import field_error_from_msgspec, problem_response, problem_responses
from taskstream.projects.service import require_project_role
from taskstream.tasks.commands import CommandGateway, build_command
from taskstream.tasks.models import Task
from taskstream.tasks.reads import TaskFilter, TaskReadRepository
from taskstream.tasks.schemas import (
    AcceptedItem,
    AssignTaskRequest,
    BatchAccepted,
    BatchCreateTasksRequest,
    CommandAccepted,
    CreateTaskRequest,
    ReviewTaskRequest,
    TaskPage,
    TaskResponse,
    TransitionTaskRequest,
    UpdateTaskRequest,
)

DEFAULT_PAGE_SIZE = 50


class _RawBatch(msgspec.Struct):
    tasks: list[msgspec.Raw]


_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)
_item_decoder = msgspec.json.Decoder(CreateTaskRequest, strict=True)


def batch_field_errors(body: bytes) -> list[FieldError]:
    """Every invalid item of a batch body, not just the first one msgspec stops at."""
    try:
        raw = _raw_batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        return [field_error_from_msgspec(exc)]
    except msgspec.DecodeError:
        return [FieldError("$", "is not valid JSON")]
    errors: list[FieldError] = []
    for index, item in enumerate(raw.tasks):
        try:
            _item_decoder.decode(item)
        except msgspec.ValidationError as exc:
            errors.append(field_error_from_msgspec(exc, prefix=f"tasks[{index}]"))
    return errors


def _batch_validation_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    body = ScopeState.from_scope(request.scope).body
    errors = batch_field_errors(body) if isinstance(body, bytes) else []
    if not errors:  # not a body problem after all: report litestar's own findings
        from taskstream.problems import field_errors_from_litestar  # noqa: PLC0415

        errors = field_errors_from_litestar(exc.extra)
    return problem_response(
        422, "Some tasks in the batch are invalid; nothing was published", errors=errors
    )


def _ids(request: Request[Any, Any, Any], index: int = 0) -> tuple[uuid.UUID, uuid.UUID]:
    """(task id, command id): derived from the Idempotency-Key when given, so a retried
    request produces the same ids and the consumer dedupes it; random otherwise."""
    key = idempotency_key(request.scope)
    if key is None:
        return uuid.uuid4(), uuid.uuid4()
    return derived_id(key, index, "task"), derived_id(key, index, "command")


def _command_id(request: Request[Any, Any, Any]) -> uuid.UUID | None:
    key = idempotency_key(request.scope)
    return derived_id(key, 0, "command") if key else None


def _create_payload(data: JSONBody[CreateTaskRequest], project_id: uuid.UUID) -> CreateTask:
    return CreateTask(
        project_id=project_id,
        title=data.title,
        description=data.description,
        priority=data.priority,
        deadline=data.deadline,
        assignee_id=data.assignee_id,
    )


def _task(task: Task) -> TaskResponse:
    return TaskResponse(
        id=task.id,
        project_id=task.project_id,
        title=task.title,
        description=task.description,
        status=task.status,
        priority=task.priority,
        deadline=task.deadline,
        assignee_id=task.assignee_id,
        reviewer_id=task.reviewer_id,
        created_by=task.created_by,
        version=task.version,
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
    )


def encode_cursor(task: Task) -> str:
    raw = msgspec.json.encode([task.created_at, task.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, task_id = msgspec.json.decode(raw, type=tuple[datetime, uuid.UUID])
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValidationFailedError([FieldError("cursor", "is not a valid cursor")]) from exc
    return created_at, task_id


COMMAND_PROBLEMS = problem_responses(403, 409)


async def _submit_one(
    state: State,
    principal: Principal,
    payload: CommandPayload,
    *,
    task_id: uuid.UUID,
    command_id: uuid.UUID | None,
    trace_id: str,
) -> CommandAccepted:
    gateway: CommandGateway = state.commands
    command = build_command(principal, payload, task_id, command_id)
    await gateway.submit([command], trace_id)
    return CommandAccepted(task_id=task_id, command_id=command.command_id)


class TaskController(Controller):
    path = "/tasks"
    tags = ["tasks"]

    @post("/", operation_id="createTask", responses=COMMAND_PROBLEMS, status_code=HTTP_202_ACCEPTED)
    async def create_task(
        self, *, data: JSONBody[CreateTaskRequest], request: Request[Any, Any, Any]
    ) -> CommandAccepted:
        """Queue a new task (default project: the caller's personal one)."""
        # The hot path takes no named dependencies: litestar resolves two or more of them in
        # an anyio task group per request, which cost more than the rest of this handler.
        principal = caller(request)
        state = request.app.state
        project_id = await state.commands.project_for_create(principal, data.project_id)
        task_id, command_id = _ids(request)
        payload = _create_payload(data, project_id)
        return await _submit_one(
            state,
            principal,
            payload,
            task_id=task_id,
            command_id=command_id,
            trace_id=trace_id_of(request),
        )

    @post(
        "/batch",
        operation_id="createTasksBatch",
        responses=COMMAND_PROBLEMS,
        exception_handlers={ValidationException: _batch_validation_handler},
        status_code=HTTP_202_ACCEPTED,
    )
    async def create_tasks_batch(
        self,
        *,
        data: JSONBody[BatchCreateTasksRequest],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> BatchAccepted:
        """Queue up to `api.batch_max_items` new tasks: all accepted, or none (422)."""
        limit = state.settings.api.batch_max_items
        if len(data.tasks) > limit:
            raise ValidationFailedError([FieldError("tasks", f"must hold at most {limit} items")])
        gateway: CommandGateway = state.commands
        project_of: dict[uuid.UUID | None, uuid.UUID | None] = {}
        errors: list[FieldError] = []
        for index, item in enumerate(data.tasks):
            if item.project_id not in project_of:
                try:
                    project_of[item.project_id] = await gateway.project_for_create(
                        current_user, item.project_id
                    )
                except DomainError:
                    project_of[item.project_id] = None
            if project_of[item.project_id] is None:
                errors.append(
                    FieldError(
                        f"tasks[{index}].projectId",
                        "project not found or you may not create tasks in it",
                    )
                )
        if errors:
            raise ValidationFailedError(
                errors, detail="Some tasks in the batch are invalid; nothing was published"
            )
        commands = []
        for index, item in enumerate(data.tasks):
            task_id, command_id = _ids(request, index)
            project_id = project_of[item.project_id]
            assert project_id is not None
            payload = _create_payload(item, project_id)
            commands.append(build_command(current_user, payload, task_id, command_id))
        await gateway.submit(commands, trace_id)
        return BatchAccepted(
            tasks=[AcceptedItem(task_id=c.task_id, command_id=c.command_id) for c in commands]
        )

    @get("/", operation_id="listTasks", responses=problem_responses())
    async def list_tasks(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        project_id: Annotated[uuid.UUID | None, QueryParameter(name="projectId")] = None,
        status: FromQuery[TaskStatus | None] = None,
        assignee_id: Annotated[uuid.UUID | None, QueryParameter(name="assigneeId")] = None,
        priority: FromQuery[TaskPriority | None] = None,
        due_before: Annotated[datetime | None, QueryParameter(name="dueBefore")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> TaskPage:
        """Tasks in the caller's projects, filtered, oldest first, keyset-paginated."""
        if project_id is not None:
            await require_project_role(db_session, current_user, project_id)
        limit = min(limit, state.settings.api.page_limit_max)
        filters = TaskFilter(project_id, status, assignee_id, priority, due_before)
        after = decode_cursor(cursor) if cursor else None
        rows = await TaskReadRepository.from_session(db_session).page(
            filters,
            member_id=None if current_user.is_admin else current_user.user_id,
            after=after,
            limit=limit + 1,
        )
        items: Sequence[Task] = rows[:limit]
        next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
        return TaskPage(items=[_task(t) for t in items], next_cursor=next_cursor)

    @get("/{task_id:uuid}", operation_id="getTask", responses=problem_responses())
    async def get_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> TaskResponse:
        """One task, if the caller is a member of its project (404 otherwise)."""
        task = await TaskReadRepository.from_session(db_session).get(task_id)
        if task is None:
            raise NotFoundError("Task not found")
        try:
            await require_project_role(db_session, current_user, task.project_id)
        except NotFoundError as exc:
            raise NotFoundError("Task not found") from exc
        return _task(task)

    @patch(
        "/{task_id:uuid}",
        operation_id="updateTask",
        responses=COMMAND_PROBLEMS,
        status_code=HTTP_202_ACCEPTED,
    )
    async def update_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[UpdateTaskRequest],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommandAccepted:
        """Queue a change of title, description, priority or deadline."""
        changes = msgspec.structs.asdict(data)
        if all(v is msgspec.UNSET for v in changes.values()):
            raise ValidationFailedError([FieldError("$", "name at least one field to change")])
        await state.commands.authorise_on_task(current_user, task_id)
        payload = UpdateTask(**changes)
        return await _submit_one(
            state,
            current_user,
            payload,
            task_id=task_id,
            command_id=_command_id(request),
            trace_id=trace_id,
        )

    @post(
        "/{task_id:uuid}/assign",
        operation_id="assignTask",
        responses=COMMAND_PROBLEMS,
        status_code=HTTP_202_ACCEPTED,
    )
    async def assign_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[AssignTaskRequest],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommandAccepted:
        """Queue a change of assignee (null: unassign) and optionally reviewer."""
        await state.commands.authorise_on_task(current_user, task_id)
        payload = AssignTask(assignee_id=data.assignee_id, reviewer_id=data.reviewer_id)
        return await _submit_one(
            state,
            current_user,
            payload,
            task_id=task_id,
            command_id=_command_id(request),
            trace_id=trace_id,
        )

    @post(
        "/{task_id:uuid}/transition",
        operation_id="transitionTask",
        responses=COMMAND_PROBLEMS,
        status_code=HTTP_202_ACCEPTED,
    )
    async def transition_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[TransitionTaskRequest],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommandAccepted:
        """Queue a status change; the consumer enforces the workflow rules."""
        await state.commands.authorise_on_task(current_user, task_id)
        payload = TransitionTask(to=data.to, reviewer_id=data.reviewer_id)
        return await _submit_one(
            state,
            current_user,
            payload,
            task_id=task_id,
            command_id=_command_id(request),
            trace_id=trace_id,
        )

    @post(
        "/{task_id:uuid}/reviews",
        operation_id="reviewTask",
        responses=COMMAND_PROBLEMS,
        status_code=HTTP_202_ACCEPTED,
    )
    async def review_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewTaskRequest],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommandAccepted:
        """Queue a review verdict (approve or request_changes) with a comment."""
        await state.commands.authorise_on_task(current_user, task_id)
        key = idempotency_key(request.scope)
        review_id = derived_id(key, 0, "review") if key else uuid.uuid4()
        payload = ReviewTask(review_id=review_id, verdict=data.verdict, comment=data.comment)
        return await _submit_one(
            state,
            current_user,
            payload,
            task_id=task_id,
            command_id=_command_id(request),
            trace_id=trace_id,
        )

    @delete(
        "/{task_id:uuid}",
        operation_id="deleteTask",
        responses=COMMAND_PROBLEMS,
        status_code=HTTP_202_ACCEPTED,
    )
    async def delete_task(
        self,
        *,
        task_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        request: Request[Any, Any, Any],
        state: State,
        trace_id: NamedDependency[str],
    ) -> CommandAccepted:
        """Queue the deletion of a task (maintainer, or the task's creator)."""
        await state.commands.authorise_on_task(current_user, task_id, deleting=True)
        return await _submit_one(
            state,
            current_user,
            DeleteTask(),
            task_id=task_id,
            command_id=_command_id(request),
            trace_id=trace_id,
        )


__all__ = ["ProjectRole", "TaskController"]
