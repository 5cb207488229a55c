"""Stream-consumer benchmark: `python -m loadtest.bench_consumer`.

1. Apply rate: pre-fill a fresh topic with create commands, start one `taskstream consume`
   process (`--processes N`: N in the group) and time from the first applied command to the
   last (group join excluded).
2. Ceiling, same run: raw asyncpg inserting the same rows per command (inbox, task, audit row,
   outbox event, command status) in transactions of one batch each, data prepared beforehand.
3. End to end: a steady offered load of `POST /tasks` against a real `taskstream api` process;
   latency from the 202 arriving at the client to the apply transaction's NOTIFY arriving at
   the client (a LISTEN connection), p50/p99.

Uses its own database, topics and group; prints a markdown table.

``--realistic-text`` gives every task a Zipf-distributed title and description
(``loadtest/task_text.py``) instead of "bench task N", and ``--search-index`` swaps the task
indexes of migration 0008 (``none``: without them; ``sorts``: without the full-text index;
``trgm``: a pg_trgm index in its place), so the write cost of an index shows in the apply rate.
``--skip-e2e`` leaves out part 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from loadtest.task_text import TaskText
from taskstream.command_status.records import COMMANDS_CHANNEL
from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.kafka import new_producer
from taskstream.messages import (
    Actor,
    CreateTask,
    DomainEvent,
    encode_command,
    encode_event,
    new_command,
)
from taskstream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RUN = uuid.uuid4().hex[:8]

SORT_INDEXES = (
    "ix_tasks_project_id_updated_at_id",
    "ix_tasks_project_id_priority_id",
    "ix_tasks_project_deadline",
)
TRIGRAM_INDEX = (
    "CREATE INDEX ix_tasks_search_trgm ON tasks USING gin "
    "((title || ' ' || coalesce(description, '')) gin_trgm_ops)"
)


async def swap_search_indexes(dsn: str, variant: str) -> None:
    """Adjust the migrated indexes of ``tasks`` to ``variant`` (see the module docstring)."""
    if variant == "migrated":
        return
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP INDEX ix_tasks_search")
        if variant == "none":
            for name in SORT_INDEXES:
                await conn.execute(f"DROP INDEX {name}")
        elif variant == "trgm":
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await conn.execute(TRIGRAM_INDEX)
    finally:
        await conn.close()


def texts(n: int, realistic: bool) -> list[tuple[str, str | None]]:
    """(title, description) of the i-th benchmark task."""
    if not realistic:
        return [(f"bench task {i}", None) for i in range(n)]
    draw = TaskText()
    return [(draw.title(), draw.description()) for _ in range(n)]


def bench_settings(partitions: int) -> Settings:
    """Own database, topics, group and counters; limits no benchmark client reaches."""
    base = isolated_settings(Settings(), RUN, db_prefix="taskstream_bench")
    limits = base.limits.model_copy(
        update={
            "member": "100000/second",
            "anonymous": "100000/minute",
            "login": "100000/minute",
            "registration": "100000/hour",
        }
    )
    kafka = base.kafka.model_copy(update={"partitions": partitions})
    return base.model_copy(update={"kafka": kafka, "limits": limits})


async def seed_project(dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    user, project = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'bench', 'x')",
        user,
        f"{user}@bench.example",
    )
    await conn.execute(
        "INSERT INTO projects (id, name, owner_id) VALUES ($1, 'b', $2)", project, user
    )
    await conn.execute(
        "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'owner')",
        project,
        user,
    )
    await conn.close()
    return user, project


async def prefill(
    settings: Settings,
    user: uuid.UUID,
    project: uuid.UUID,
    n: int,
    text: list[tuple[str, str | None]],
) -> float:
    producer = new_producer(settings.kafka, linger_ms=10)
    await producer.start()
    actor = Actor(user_id=user)
    started = time.perf_counter()
    try:
        pending = []
        for i in range(n):
            title, description = text[i]
            command = new_command(
                CreateTask(project_id=project, title=title, description=description),
                actor=actor,
                task_id=uuid.uuid4(),
            )
            pending.append(
                await producer.send(
                    settings.kafka.task_commands_topic,
                    encode_command(command),
                    key=str(command.task_id).encode(),
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - started)


def spawn(settings: Settings, *argv: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env()}
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "taskstream", *argv],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


async def measure_apply_rate(dsn: str, n: int, timeout_s: float) -> tuple[float, float]:
    """(commands/s from first to last applied, seconds until the first was applied)."""
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    first_at = first_count = None
    try:
        while True:
            count = await conn.fetchval("SELECT count(*) FROM command_statuses")
            now = time.perf_counter()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= n:
                assert first_at is not None
                assert first_count is not None
                return (count - first_count) / (now - first_at), first_at - started
            if now - started > timeout_s:
                raise TimeoutError(f"only {count} of {n} applied")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def ceiling(
    dsn: str,
    user: uuid.UUID,
    project: uuid.UUID,
    batch: int,
    text: list[tuple[str, str | None]],
) -> float:
    """Raw asyncpg, the same five rows per command, one transaction per batch."""
    now = datetime.now(UTC)
    n = len(text)
    batches = []
    for start in range(0, n, batch):
        size = min(batch, n - start)
        titles = [title for title, _ in text[start : start + size]]
        descriptions = [description for _, description in text[start : start + size]]
        commands = [uuid.uuid4() for _ in range(size)]
        tasks = [uuid.uuid4() for _ in range(size)]
        after = '{"title":"bench","status":"todo","priority":"medium","version":1}'
        payloads = [
            encode_event(
                DomainEvent(
                    event_id=uuid.uuid4(),
                    type="task.created",
                    occurred_at=now,
                    aggregate_id=t,
                    actor_id=user,
                    project_id=project,
                    data={"taskId": str(t), "projectId": str(project), "title": "bench"},
                )
            )
            for t in tasks
        ]
        batches.append((commands, tasks, after, payloads, titles, descriptions))
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        for commands, tasks, after, payloads, titles, descriptions in batches:
            size = len(commands)
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO inbox (consumer, message_id) SELECT 'ceiling', m "
                    "FROM unnest($1::uuid[]) m ON CONFLICT DO NOTHING",
                    commands,
                )
                await conn.execute(
                    "INSERT INTO tasks (id, project_id, title, description, created_by) "
                    "SELECT t, $2, title, description, $3 "
                    "FROM unnest($1::uuid[], $4::text[], $5::text[]) AS u(t, title, description)",
                    tasks,
                    project,
                    user,
                    titles,
                    descriptions,
                )
                await conn.execute(
                    "INSERT INTO task_events (task_id, project_id, command_id, actor_id, "
                    "event_type, after) SELECT t, $3, c, $4, 'task.created', $5::jsonb "
                    "FROM unnest($1::uuid[], $2::uuid[]) AS u(t, c)",
                    tasks,
                    commands,
                    project,
                    user,
                    after,
                )
                await conn.execute(
                    "INSERT INTO outbox (event_id, event_type, aggregate_id, payload) "
                    "SELECT gen_random_uuid(), 'task.created', t, p "
                    "FROM unnest($1::uuid[], $2::bytea[]) AS u(t, p)",
                    tasks,
                    payloads,
                )
                await conn.execute(
                    "INSERT INTO command_statuses (command_id, command_type, task_id, actor_id, "
                    "status, accepted_at) SELECT c, 'task.create', t, $3, 'applied', now() "
                    "FROM unnest($1::uuid[], $2::uuid[]) AS u(c, t)",
                    commands,
                    tasks,
                    user,
                )
                await conn.execute(
                    "INSERT INTO project_stats (project_id, todo) VALUES ($1, $2) "
                    "ON CONFLICT (project_id) DO UPDATE SET todo = project_stats.todo + $2",
                    project,
                    size,
                )
    finally:
        await conn.close()
    return n / (time.perf_counter() - started)


async def end_to_end(settings: Settings, rate: int, seconds: float, log_dir: Path) -> list[float]:
    """Latencies (s) from the 202 to the NOTIFY of the applying transaction."""
    port = 18000 + int(RUN[:3], 16) % 1000
    api = spawn(settings, "api", "--port", str(port), "--workers", "1", log=log_dir / "api.log")
    base = f"http://127.0.0.1:{port}"
    applied: dict[str, float] = {}
    accepted: dict[str, float] = {}
    codes: dict[int, int] = {}
    listener = await asyncpg.connect(asyncpg_dsn(settings.db.url))

    def on_notify(_c: object, _p: int, _ch: str, payload: str) -> None:
        at = time.perf_counter()
        for command_id in payload.split(","):
            applied.setdefault(command_id, at)

    await listener.add_listener(COMMANDS_CHANNEL, on_notify)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            for _ in range(100):
                try:
                    if (await client.get("/health/ready")).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            email = f"bench-{RUN}@example.com"
            body = {"name": "Bench", "email": email, "password": "correct horse 42 battery"}
            registered = await client.post("/auth/register", json=body)
            assert registered.status_code == 201, registered.text
            login = await client.post("/auth/login", json=body)
            headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}

            async def one(i: int) -> None:
                response = await client.post("/tasks", json={"title": f"e2e {i}"}, headers=headers)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    accepted[response.json()["commandId"]] = time.perf_counter()

            # Warm-up: the consumer has joined its group once a first command is applied.
            await one(-1)
            warm_deadline = time.perf_counter() + 60
            while not set(accepted) <= set(applied) and time.perf_counter() < warm_deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            accepted.clear()
            codes.clear()
            total = int(rate * seconds)
            started = time.perf_counter()
            requests = []
            for i in range(total):  # open loop: requests go out on schedule
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                requests.append(asyncio.create_task(one(i)))
            await asyncio.gather(*requests)
            deadline = time.perf_counter() + 60
            while not set(accepted) <= set(applied) and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await listener.close()
        api.terminate()
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            api.kill()
    print(f"e2e responses by status: {codes}", file=sys.stderr)
    # The NOTIFY can reach us before the 202 does (the response is still in flight): count
    # those as 0 ms rather than negative.
    return sorted(max(0.0, applied[c] - t) for c, t in accepted.items() if c in applied)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def e2e_only(args: argparse.Namespace) -> None:
    settings = bench_settings(args.partitions)
    log_dir = ROOT / ".taskstream" / f"bench-consumer-{RUN}"
    log_dir.mkdir(parents=True, exist_ok=True)
    await create_database(settings, ROOT)
    await ensure_topics(settings.kafka)
    consumer = spawn(settings, "consume", log=log_dir / "consumer.log")
    try:
        lat = await end_to_end(settings, args.e2e_rate, args.e2e_seconds, log_dir)
        print(len(lat), lat and (pct(lat, 0.5), pct(lat, 0.99)))
    finally:
        consumer.terminate()
        consumer.wait(30)
        await drop_database(settings)
        await delete_topics(settings.kafka, topic_names(settings.kafka))


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--processes", type=int, default=1, help="consumer processes in the group (scaling out)"
    )
    parser.add_argument("--e2e-rate", type=int, default=200)
    parser.add_argument("--e2e-seconds", type=float, default=20)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--realistic-text", action="store_true")
    parser.add_argument(
        "--search-index", choices=("migrated", "none", "sorts", "trgm"), default="migrated"
    )
    args = parser.parse_args()
    settings = bench_settings(args.partitions)
    log_dir = ROOT / ".taskstream" / f"bench-consumer-{RUN}"
    log_dir.mkdir(parents=True, exist_ok=True)
    await create_database(settings, ROOT)
    dsn = asyncpg_dsn(settings.db.url)
    consumers: list[subprocess.Popen[bytes]] = []
    try:
        await ensure_topics(settings.kafka)
        await swap_search_indexes(dsn, args.search_index)
        user, project = await seed_project(dsn)
        text = texts(args.commands, args.realistic_text)
        produce_rate = await prefill(settings, user, project, args.commands, text)
        consumers = [
            spawn(settings, "consume", log=log_dir / f"consumer-{index}.log")
            for index in range(args.processes)
        ]
        rate, join_s = await measure_apply_rate(dsn, args.commands, timeout_s=600)
        ceiling_rate = await ceiling(dsn, user, project, settings.kafka.max_batch_size, text)
        latencies = (
            []
            if args.skip_e2e
            else await end_to_end(settings, args.e2e_rate, args.e2e_seconds, log_dir)
        )
    finally:
        for consumer in consumers:
            consumer.terminate()
        for consumer in consumers:
            consumer.wait(30)
        await drop_database(settings)
        await delete_topics(settings.kafka, topic_names(settings.kafka))
    offered = int(args.e2e_rate * args.e2e_seconds)
    print(f"| commands pre-filled | {args.commands} ({args.partitions} partitions) |")
    print(f"| pre-fill produce rate (acks=all) | {produce_rate:,.0f} msg/s |")
    print(f"| group join until first apply | {join_s:.1f} s |")
    who = "one consumer process" if args.processes == 1 else f"{args.processes} consumer processes"
    print(f"| **apply rate, {who}** | **{rate:,.0f} commands/s** |")
    print(f"| raw asyncpg ceiling, same rows | {ceiling_rate:,.0f} commands/s |")
    print(f"| apply rate / ceiling | {rate / ceiling_rate:.0%} |")
    print(f"| task indexes, text | {args.search_index}, realistic={args.realistic_text} |")
    if args.skip_e2e:
        return 0
    load = f"{args.e2e_rate}/s for {args.e2e_seconds:.0f} s ({offered} POST /tasks)"
    print(f"| e2e offered load | {load} |")
    if latencies:
        print(f"| e2e 202 -> applied, p50 | {pct(latencies, 0.5) * 1000:.0f} ms |")
        print(f"| e2e 202 -> applied, p99 | {pct(latencies, 0.99) * 1000:.0f} ms |")
        print(f"| e2e applied / accepted | {len(latencies)} / {offered} |")
        print(f"| e2e mean | {statistics.mean(latencies) * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
