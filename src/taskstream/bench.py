"""Routes mounted only by ``create_bench_app`` (loadtest/bench_api.py), never in production.

They frame POST /tasks from both sides in the same run: ``/bench/noop`` is the server's bare
202 (the ceiling); ``/bench/publish`` decodes the body and publishes one command with acks=all
and nothing else (the floor of this HTTP + Kafka stack, before auth, limits and Redis).
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import post
from litestar.datastructures import State
from litestar.status_codes import HTTP_202_ACCEPTED

from taskstream.enums import TaskPriority
from taskstream.messages import Actor, CreateTask, new_command

BENCH_ACTOR = Actor(user_id=uuid.UUID(int=0))
BENCH_PROJECT = uuid.UUID(int=0)


class BenchTask(msgspec.Struct):
    title: str
    priority: TaskPriority = TaskPriority.MEDIUM


@post(
    "/bench/noop",
    operation_id="benchNoop",
    status_code=HTTP_202_ACCEPTED,
    exclude_from_auth=True,
    security=[{}],
    opt={"rate_limit": None},
    include_in_schema=False,
)
async def bench_noop() -> dict[str, str]:
    """The benchmark's ceiling: the same server answering 202 without doing anything."""
    return {"status": "accepted"}


@post(
    "/bench/publish",
    operation_id="benchPublish",
    status_code=HTTP_202_ACCEPTED,
    exclude_from_auth=True,
    security=[{}],
    opt={"rate_limit": None},
    include_in_schema=False,
)
async def bench_publish(data: BenchTask, state: State) -> dict[str, str]:
    """The stack's floor: decode the body and publish one command (acks=all), nothing else."""
    payload = CreateTask(project_id=BENCH_PROJECT, title=data.title, priority=data.priority)
    command = new_command(payload, actor=BENCH_ACTOR, task_id=uuid.uuid4())
    await state.publisher.publish([command], "bench")
    return {"commandId": str(command.command_id)}


BENCH_ROUTES = [bench_noop, bench_publish]
