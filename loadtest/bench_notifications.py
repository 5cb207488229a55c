"""Notification fan-out benchmark: relay events/s and in-app notifications/s by one worker, each
next to a raw pika ceiling measured in the same run.

    .venv/bin/python -m loadtest.bench_notifications [--events 20000] [--update-benchmarks]

Everything runs against the local services on a private database, exchange and topic, which are
removed afterwards. Figures:
- raw publish: pika (asyncio connection) persistent publishes with pipelined confirms to one
  quorum queue, and the BlockingConnection one-confirm-at-a-time figure for contrast;
- raw fan-out publish: the same pika publishes of the relay's own messages (event bodies and
  properties) to the events exchange, i.e. into the three quorum work queues the relay feeds,
  pipelined like the relay (batches of ``batch_size``, ``pipeline`` in flight): the broker-side
  ceiling for the relay, without PostgreSQL or Kafka;
- relay: ``OutboxRelay.relay_batch`` draining the outbox (claim + RabbitMQ confirms + Kafka
  acks=all + mark sent), in this process;
- raw consume: pika consumer, prefetch as configured, acking each batch, doing nothing else;
- worker: a real ``taskstream work --channels in_app`` process draining the in-app queue
  (decode, recipients, one INSERT per batch, Redis live push, ack).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pika
from taskstream.workers.rabbit import RabbitChannel
from taskstream.workers.relay import OutboxRelay, RelayOptions, event_properties
from taskstream.workers.topology import QUORUM, Topology, declare_topology

from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.messages import DomainEvent, encode_event
from taskstream.outbox.repository import OutboxRepository, PendingEvent
from taskstream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TAG = uuid.uuid4().hex[:8]


def bench_settings() -> Settings:
    return isolated_settings(Settings(), TAG, db_prefix="taskstream_bench_n")


async def seed(settings: Settings) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A project with an owner and 50 members; returns (project, member ids)."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.db.url))
    try:
        users = [uuid.uuid4() for _ in range(51)]
        await conn.executemany(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, 'x')",
            [(u, f"u{i}-{TAG}@bench.test", f"User {i}") for i, u in enumerate(users)],
        )
        project = uuid.uuid4()
        await conn.execute(
            "INSERT INTO projects (id, name, owner_id) VALUES ($1, 'bench', $2)", project, users[0]
        )
        await conn.executemany(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)",
            [(project, u, "owner" if i == 0 else "member") for i, u in enumerate(users)],
        )
        return project, users[1:]
    finally:
        await conn.close()


def assignment_events(project: uuid.UUID, members: list[uuid.UUID], n: int) -> list[DomainEvent]:
    """task.assigned by the owner: assignee, previous assignee and reviewer hear of it (3 each)."""
    now = datetime.now(UTC)
    events = []
    for i in range(n):
        task = uuid.uuid4()
        a, b, c = (members[(i + k) % len(members)] for k in (0, 1, 2))
        events.append(
            DomainEvent(
                event_id=uuid.uuid4(),
                type="task.assigned",
                occurred_at=now,
                aggregate_id=task,
                actor_id=None,
                project_id=project,
                trace_id=uuid.uuid4().hex,
                data={
                    "taskId": str(task),
                    "projectId": str(project),
                    "title": f"bench {i}",
                    "status": "todo",
                    "assigneeId": str(a),
                    "previousAssigneeId": str(b),
                    "reviewerId": str(c),
                    "createdBy": str(a),
                },
            )
        )
    return events


async def raw_publish(settings: Settings, queue: str, body: bytes, n: int, window: int) -> float:
    """Persistent publishes to a quorum queue with ``window`` confirms in flight; msg/s."""
    rabbit = await RabbitChannel(settings.rabbit.url, confirms=True).open()
    await rabbit.declare_queue(queue, QUORUM)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    started = time.perf_counter()
    for start in range(0, n, window):
        waits = [rabbit.publish("", queue, body, props) for _ in range(min(window, n - start))]
        await asyncio.gather(*waits)
    elapsed = time.perf_counter() - started
    await rabbit.close()
    return n / elapsed


async def raw_publish_fanout(
    settings: Settings, topology: Topology, events: list[DomainEvent], options: RelayOptions
) -> float:
    """The relay's messages to the events exchange (3 quorum queues), pipelined like the relay;
    msg/s. The queues are purged afterwards."""
    rabbit = await RabbitChannel(settings.rabbit.url, confirms=True).open()
    await declare_topology(rabbit, topology)
    now = datetime.now(UTC)
    messages = [
        (
            e.type,
            encode_event(e),
            event_properties(
                PendingEvent(0, e.event_id, e.type, e.aggregate_id, b"", e.trace_id, now)
            ),
        )
        for e in events
    ]
    in_flight: deque[asyncio.Future[None]] = deque()
    started = time.perf_counter()
    for start in range(0, len(messages), options.batch_size):
        if len(in_flight) >= options.pipeline:
            await in_flight.popleft()
        batch = messages[start : start + options.batch_size]
        in_flight.append(rabbit.publish_many(topology.exchange, batch))
    await asyncio.gather(*in_flight)
    elapsed = time.perf_counter() - started
    for queue in topology.queues:
        await rabbit.rpc(rabbit.channel.queue_purge, queue=queue)
    await rabbit.close()
    return len(messages) / elapsed


def raw_publish_blocking(settings: Settings, queue: str, body: bytes, n: int) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbit.url))
    channel = connection.channel()
    channel.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)
    started = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", queue, body, props)  # returns after this message's confirm
    elapsed = time.perf_counter() - started
    channel.queue_purge(queue)
    connection.close()
    return n / elapsed


async def raw_consume(settings: Settings, queue: str, n: int) -> float:
    rabbit = await RabbitChannel(settings.rabbit.url, prefetch=settings.rabbit.prefetch).open()
    inbox = await rabbit.consume(queue)
    seen = 0
    started = None
    while seen < n:
        batch = await rabbit.next_batch(inbox, settings.rabbit.prefetch, 0.01)
        started = started or time.perf_counter()
        rabbit.ack(batch[-1].delivery_tag, multiple=True)
        seen += len(batch)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await rabbit.close()
    return n / elapsed


async def run(events_n: int) -> dict[str, float]:
    settings = bench_settings()
    topology = Topology.from_settings(settings.rabbit)
    await create_database(settings, ROOT)
    await ensure_topics(settings.kafka, names=[settings.kafka.task_events_topic])
    engine = create_engine(settings.db)
    factory = create_session_factory(engine)
    results: dict[str, float] = {"events": events_n}
    worker = None
    try:
        project, members = await seed(settings)
        events = assignment_events(project, members, events_n)
        async with transaction(factory) as session:
            for start in range(0, len(events), 2000):
                await OutboxRepository.from_session(session).add(events[start : start + 2000])

        raw_queue = f"{topology.exchange}.raw"
        body = encode_event(events[0])
        results["raw_publish_blocking"] = await asyncio.to_thread(
            raw_publish_blocking,
            settings,
            raw_queue,
            await _declared(settings, raw_queue, body),
            min(3000, events_n),
        )
        results["raw_publish"] = await raw_publish(settings, raw_queue, body, events_n, 500)
        results["raw_consume"] = await raw_consume(settings, raw_queue, events_n)
        options = RelayOptions()
        results["raw_publish_fanout"] = await raw_publish_fanout(
            settings, topology, events, options
        )

        relay = OutboxRelay(settings, factory, options)
        started = time.perf_counter()
        while await relay.drain():
            pass
        results["relay"] = relay.relayed / (time.perf_counter() - started)
        await relay.close()

        expected = 3 * events_n
        worker = subprocess.Popen(  # noqa: ASYNC220 - the real worker process is the subject
            [sys.executable, "-m", "taskstream", "work", "--channels", "in_app"],
            cwd=ROOT,
            env={**os.environ, **settings.as_env(), "TASKSTREAM_LOG_LEVEL": "WARNING"},
        )
        conn = await asyncpg.connect(asyncpg_dsn(settings.db.url))
        first_at = None
        count = 0
        deadline = time.monotonic() + 300
        while count < expected and time.monotonic() < deadline:
            count = await conn.fetchval("SELECT count(*) FROM notifications")
            if count and first_at is None:
                first_at, first_count = time.perf_counter(), count
            await asyncio.sleep(0.05)
        done_at = time.perf_counter()
        await conn.close()
        if count < expected:
            raise RuntimeError(f"worker made {count}/{expected} notifications in time")
        assert first_at is not None
        results["worker_notifications"] = (count - first_count) / (done_at - first_at)
        results["worker_events"] = results["worker_notifications"] / 3
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        await engine.dispose()
        _delete_rabbit(settings, topology)
        await drop_database(settings)
        await delete_topics(settings.kafka, [settings.kafka.task_events_topic])
    return results


async def _declared(settings: Settings, queue: str, body: bytes) -> bytes:
    rabbit = await RabbitChannel(settings.rabbit.url).open()
    await rabbit.declare_queue(queue, QUORUM)
    await rabbit.close()
    return body


def _delete_rabbit(settings: Settings, topology: Topology) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbit.url))
    channel = connection.channel()
    for queue in [*topology.queues, f"{topology.exchange}.raw"]:
        channel.queue_delete(queue)
    channel.exchange_delete(topology.exchange)
    connection.close()


def markdown(r: dict[str, float]) -> str:
    def f(x: float) -> str:
        return f"{x:,.0f}"

    return "\n".join(
        [
            f"`python -m loadtest.bench_notifications` ({int(r['events']):,} task.assigned events,"
            f" 3 recipients each; median of {int(r['repeat'])} runs; one process each; 2 cores,"
            f" all services local; load average {r['load']:.1f} at the end).",
            "",
            "| Figure | Rate | Ceiling in the same run | Ratio |",
            "|---|---:|---|---:|",
            f"| Relay: outbox -> RabbitMQ (confirms) + Kafka (acks=all), events/s | "
            f"{f(r['relay'])} | raw pika publish, pipelined confirms: {f(r['raw_publish'])}/s | "
            f"{r['relay'] / r['raw_publish']:.0%} |",
            f"| (same relay figure) | | raw pika fan-out publish of the relay's messages to the"
            f" events exchange (3 quorum queues), pipelined like the relay:"
            f" {f(r['raw_publish_fanout'])}/s | {r['relay'] / r['raw_publish_fanout']:.0%} |",
            f"| In-app worker: notifications/s (events/s) | {f(r['worker_notifications'])} "
            f"({f(r['worker_events'])}) | raw pika consume, prefetch 200: "
            f"{f(r['raw_consume'])} msg/s | {r['worker_events'] / r['raw_consume']:.0%} of msgs |",
            f"| For contrast: BlockingConnection, one confirm at a time | "
            f"{f(r['raw_publish_blocking'])} msg/s | | |",
            "",
            "Targets: relay >= 5,000 events/s and worker >= 5,000 notifications/s.",
        ]
    )


def update_benchmarks(section: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    pattern = re.compile(r"(## Notifications\n)(.*?)(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: m.group(1) + "\n" + section + "\n", text)
    else:
        text = text.rstrip() + "\n\n## Notifications\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument(
        "--update-benchmarks",
        action="store_true",
        help="rewrite the '## Notifications' section of BENCHMARKS.md",
    )
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415 - the CLI runs relay and worker on uvloop too

        runner: Callable[[Coroutine[Any, Any, dict[str, float]]], dict[str, float]] = uvloop.run
    except ImportError:
        runner = asyncio.run
    runs = []
    for index in range(args.repeat):
        runs.append(runner(run(args.events)))
        print(
            f"run {index + 1}: " + ", ".join(f"{k}={v:,.0f}" for k, v in runs[-1].items()),
            flush=True,
        )
    # Each figure's median; the ceilings were measured in the same runs, next to it.
    results = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    results["repeat"] = args.repeat
    results["load"] = os.getloadavg()[0]
    section = markdown(results)
    print(section)
    if args.update_benchmarks:
        update_benchmarks(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
