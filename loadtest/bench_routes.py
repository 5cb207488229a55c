"""The bench app (``create_bench_app``, served by loadtest/bench_api.py): the product's app plus
reference routes that exist only here, never in the app `taskstream api` serves.

They frame POST /tasks from both sides in the same run, each step adding one cost:
``/bench/noop`` is the server's bare 202 (the ceiling; the body is not read);
``/bench/decode`` reads and decodes the body; ``/bench/await`` also waits for an
acknowledgement that costs nothing (futures released together by a 1 ms timer: no broker, no
I/O), the least any request that must wait for a broker can cost; ``/bench/publish`` decodes
the body and publishes one command with acks=all and nothing else (the floor of this
HTTP + Kafka stack, before auth, limits and Redis). ``GET /bench/limited`` passes the member
rate limit keyed by the client address and answers the server's clock
(loadtest/bench_ratelimit.py counts accepted hits per limiter window with it).
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid

import msgspec
from litestar import Litestar, MediaType, get, post
from litestar.datastructures import State
from litestar.status_codes import HTTP_202_ACCEPTED

from taskstream.app import create_app
from taskstream.enums import TaskPriority
from taskstream.messages import Actor, CreateTask, new_command

BENCH_ACTOR = Actor(user_id=uuid.UUID(int=0))
BENCH_PROJECT = uuid.UUID(int=0)


# unauthenticated, unlimited, undocumented 202s: only the work each handler does is measured
bench_post = functools.partial(
    post,
    status_code=HTTP_202_ACCEPTED,
    exclude_from_auth=True,
    security=[{}],
    opt={"rate_limit": None},
    include_in_schema=False,
)


class BenchTask(msgspec.Struct):
    title: str
    priority: TaskPriority = TaskPriority.MEDIUM


@bench_post("/bench/noop")
async def bench_noop() -> dict[str, str]:
    """The benchmark's ceiling: the same server answering 202 without doing anything."""
    return {"status": "accepted"}


@bench_post("/bench/decode")
async def bench_decode(data: BenchTask) -> dict[str, str]:
    """Read and decode the body, nothing else."""
    return {"status": "accepted"}


class FreeAcks:
    """Acknowledgements that cost nothing: the waiters of each ``interval_s`` are released
    together by one timer (a broker round trip with zero broker CPU, batched like producer
    acks). No timer runs while nobody waits, so the other routes pay nothing for it."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self._waiting: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._waiting:
            loop.call_later(self.interval_s, self._release)
        self._waiting.append(future)
        return future

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)


FREE_ACKS = FreeAcks()


@bench_post("/bench/await")
async def bench_await(data: BenchTask) -> dict[str, str]:
    """Decode the body and wait for a free acknowledgement (no broker, no I/O)."""
    await FREE_ACKS.wait()
    return {"status": "accepted"}


@bench_post("/bench/publish")
async def bench_publish(data: BenchTask, state: State) -> dict[str, str]:
    """The stack's floor: decode the body and publish one command (acks=all), nothing else."""
    payload = CreateTask(project_id=BENCH_PROJECT, title=data.title, priority=data.priority)
    command = new_command(payload, actor=BENCH_ACTOR, task_id=uuid.uuid4())
    await state.publisher.publish([command], "bench")
    return {"commandId": str(command.command_id)}


@get(
    "/bench/limited",
    exclude_from_auth=True,
    security=[{}],
    opt={"rate_limit": "member"},
    include_in_schema=False,
    media_type=MediaType.TEXT,
)
async def bench_limited() -> str:
    """Counted by the member limit of the client address; answers the server's clock, so a
    benchmark can tell which limiter window accepted the request."""
    return f"{time.time():.6f}"


BENCH_ROUTES = [bench_noop, bench_decode, bench_await, bench_publish, bench_limited]


def create_bench_app() -> Litestar:
    """The product's app plus the ``/bench/*`` reference routes (``--factory`` for granian).

    The routes opt out of authentication themselves (``exclude_from_auth``) and say which rate
    limit applies (``rate_limit`` opt), so the product's guard needs no public path for them."""
    app = create_app()
    for route in BENCH_ROUTES:
        app.register(route)
    return app
