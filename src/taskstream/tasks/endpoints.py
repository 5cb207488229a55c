"""Task command routes: each validated, authorised and answered 202 once the broker has it.

Reads of tasks live in ``read_endpoints.py``; batch validation in ``batch.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, delete, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from uuid_utils.compat import uuid7

from taskstream.auth.principal import Principal
from taskstream.enums import ProjectRole
from taskstream.errors import DomainError, FieldError, ValidationFailedError
from taskstream.messages import (
    AssignTask,
    CommandPayload,
    CreateTask,
    DeleteTask,
    ReviewTask,
    TransitionTask,
    UpdateTask,
)
from taskstream.problems import problem_responses
from taskstream.tasks.assignees import require_project_members
from taskstream.tasks.batch import batch_validation_handler
from taskstream.tasks.commands import CommandGateway, build_command
from taskstream.tasks.read_endpoints import TaskReadRoutes
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
from taskstream.web.dependencies import caller, trace_id_of
from taskstream.web.idempotency import derived_id, idempotency_key


def _ids(request: Request[Any, Any, Any], index: int = 0) -> tuple[uuid.UUID, uuid.UUID]:
    """(task id, command id): derived from the Idempotency-Key when given, so a retried
    request produces the same ids and the consumer dedupes it; random otherwise."""
    key = idempotency_key(request.scope)
    if key is None:
        # time-ordered task ids: the time tells whether Redis could have lost its record
        # (see CommandGateway.authorise_on_task); a command id needs no time
        return uuid7(), uuid.uuid4()
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


class TaskController(TaskReadRoutes):
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
        if data.assignee_id is not None:
            await require_project_members(
                state.project_access, project_id, {"assigneeId": data.assignee_id}
            )
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
        exception_handlers={ValidationException: batch_validation_handler},
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
                        gateway.access, project_id, {f"tasks[{index}].assigneeId": item.assignee_id}
                    )
                except ValidationFailedError as exc:
                    errors += exc.errors
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
        project_id = await state.commands.authorise_on_task(current_user, task_id)
        await require_project_members(
            state.project_access,
            project_id,
            {"assigneeId": data.assignee_id, "reviewerId": data.reviewer_id},
        )
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
        project_id = await state.commands.authorise_on_task(current_user, task_id)
        await require_project_members(
            state.project_access, project_id, {"reviewerId": data.reviewer_id}
        )
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
