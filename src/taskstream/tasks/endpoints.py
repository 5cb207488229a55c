"""Task command routes: each validated, authorised and answered 202 once the broker has it.

Every handler parses and calls ``TaskService`` (``service.py``) in one line; the ids of what a
request creates derive from its Idempotency-Key when given, so a retry reproduces them and the
consumer dedupes it. Reads of tasks live in ``read_endpoints.py``; batch validation errors in
``batch.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, delete, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from uuid_utils.compat import uuid7

from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.tasks.batch import batch_validation_handler
from taskstream.tasks.read_endpoints import TaskReadRoutes
from taskstream.tasks.schemas import (
    AssignTaskRequest,
    BatchAccepted,
    BatchCreateTasksRequest,
    CommandAccepted,
    CreateTaskRequest,
    ReviewTaskRequest,
    TransitionTaskRequest,
    UpdateTaskRequest,
)
from taskstream.tasks.service import NewTaskIds, ReviewIds, TaskService
from taskstream.web.dependencies import caller, trace_id_of
from taskstream.web.idempotency import derived_id, idempotency_key

COMMAND_PROBLEMS = problem_responses(403, 409)


def _new_task_ids(request: Request[Any, Any, Any]) -> NewTaskIds:
    """(task id, command id) of the i-th new task: derived from the Idempotency-Key when
    given; random otherwise, with time-ordered task ids (the time tells whether Redis could
    have lost its record, see ``TaskService.authorise_on_task``); a command id needs no time."""
    key = idempotency_key(request.scope)
    if key is None:
        return lambda _index: (uuid7(), uuid.uuid4())
    return lambda index: (derived_id(key, index, "task"), derived_id(key, index, "command"))


def _command_id(request: Request[Any, Any, Any]) -> uuid.UUID | None:
    key = idempotency_key(request.scope)
    return derived_id(key, 0, "command") if key else None


def _review_ids(request: Request[Any, Any, Any]) -> ReviewIds:
    key = idempotency_key(request.scope)
    review_id = derived_id(key, 0, "review") if key else uuid.uuid4()
    return _command_id(request), review_id


def _tasks(state: State) -> TaskService:
    return state.tasks


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
        return await _tasks(request.app.state).create(
            caller(request), data, _new_task_ids(request), trace_id_of(request)
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
        return await _tasks(state).create_batch(
            current_user, data, _new_task_ids(request), trace_id
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
        return await _tasks(state).update(
            current_user, task_id, data, _command_id(request), trace_id
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
        return await _tasks(state).assign(
            current_user, task_id, data, _command_id(request), trace_id
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
        return await _tasks(state).transition(
            current_user, task_id, data, _command_id(request), trace_id
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
        return await _tasks(state).review(
            current_user, task_id, data, _review_ids(request), trace_id
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
        return await _tasks(state).delete(current_user, task_id, _command_id(request), trace_id)
