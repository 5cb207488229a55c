"""Load-test benchmarks (not tests): batches against raw produce, a sustained open-loop
end-to-end run, and a locust mixed run with its verification.

    .venv/bin/python -m loadtest.bench_loadtest [--only batch,e2e,locust] [--rate 2000]

Everything runs in a throw-away database, topics and consumer group (infra/scratch), under
the default rate limits, with users seeded by `taskstream.loadtesting.seed` (the member
limit is per user, so the open loop spreads its commands over several users).

1. ``POST /tasks/batch`` with 100 and 1000 items (wrk, 16 connections, API only on its own
   topic) next to raw aiokafka produce (acks=all, same message size, same run).
2. End to end: ``--rate`` commands/s (single ``POST /tasks``) offered open loop for
   ``--seconds`` with API, consumer, relay and worker running: maximum consumer lag (sampled
   every 2 s), and the verification of every accepted command (202 -> applied latency from
   server timestamps, missing, duplicated).
3. ``taskstream loadtest run`` (20 users, 60 s, the mixed scenario) against the same pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from taskstream.auth.tokens import TokenCodec
from taskstream.db import create_engine, create_session_factory
from taskstream.infra.lag import group_lag
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.loadtesting.run_files import CommandLog, write_credentials
from taskstream.loadtesting.seed import SeedPlan, seed_password, seed_run
from taskstream.loadtesting.verify import summary, verify_commands, wait_drained
from taskstream.settings import Settings
from tests.integration.http_support import ApiServer
from tests.processes import ROOT, ChildProcess, taskstream_argv

RUN = uuid.uuid4().hex[:8]
USERS = 8


def item(i: int) -> dict[str, str]:
    return {"title": f"benchmark task {i}", "priority": "high"}


def _wrk_batch(url: str, token: str, items: int, seconds: int) -> tuple[float, float, float, int]:
    body = json.dumps({"tasks": [item(i) for i in range(items)]})
    script = (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", file.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(file.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)

    def ms(m: re.Match[str] | None) -> float:
        assert m is not None, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return rps * items, ms(p50), ms(p99), int(bad.group(1)) if bad else 0


async def raw_produce_rate(settings: Settings, topic: str, n: int) -> float:
    """aiokafka acks=all, the API's linger, messages the size of a create command."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        linger_ms=settings.kafka.linger_ms,
        max_batch_size=1 << 20,
    )
    await producer.start()
    value = b"x" * 330  # an encoded CreateTask command is 300-350 bytes
    try:
        started = time.perf_counter()
        for start in range(0, n, 20_000):
            sends = [
                await producer.send(topic, value, key=uuid.uuid4().bytes)
                for _ in range(min(20_000, n - start))
            ]
            await asyncio.gather(*sends)
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


def bench_batches(settings: Settings, token: str, seconds: int) -> list[str]:
    topic = f"{settings.kafka.task_commands_topic}-batch"
    batch_settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"task_commands_topic": topic})}
    )
    asyncio.run(ensure_topics(batch_settings.kafka, [topic]))
    rows = []
    try:
        server = ApiServer(batch_settings, workers=2).start()
        try:
            _wrk_batch(f"{server.url}/tasks/batch", token, 100, 2)  # warm-up
            results = {
                n: _wrk_batch(f"{server.url}/tasks/batch", token, n, seconds) for n in (100, 1000)
            }
        finally:
            server.stop()
        raw = asyncio.run(raw_produce_rate(batch_settings, topic, 300_000))
    finally:
        asyncio.run(delete_topics(batch_settings.kafka, [topic]))
    rows.append(f"raw aiokafka produce (acks=all, 330 B, same run): {raw:,.0f} msg/s")
    for n, (tasks_s, p50, p99, bad) in results.items():
        rows.append(
            f"POST /tasks/batch x{n}: {tasks_s:,.0f} tasks/s = {tasks_s / raw:.0%} of raw produce"
            f" (p50 {p50:.0f} ms, p99 {p99:.0f} ms per request, non-2xx {bad})"
        )
    return rows


class RawClient:
    """One keep-alive HTTP/1.1 connection sending POST /tasks (httpx is too slow for 2k/s)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def create(self, i: int) -> tuple[int, dict[str, str]]:
        body = json.dumps(item(i)).encode()
        self.writer.write(
            (
                f"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {self.token}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        payload = await self.reader.readexactly(length)
        return int(head[9:12]), json.loads(payload) if payload else {}


async def open_loop(
    port: int, tokens: list[str], rate: int, seconds: int, run_dir: Path
) -> dict[str, float]:
    log = CommandLog(run_dir)
    idle: asyncio.Queue[RawClient] = asyncio.Queue()
    for i in range(128):
        client = RawClient(port, tokens[i % len(tokens)])
        await client.open()
        idle.put_nowait(client)
    codes: dict[int, int] = {}
    late: list[float] = []

    async def one(i: int, due: float) -> None:
        client = await idle.get()
        late.append(time.perf_counter() - due)
        status, body = await client.create(i)
        idle.put_nowait(client)
        codes[status] = codes.get(status, 0) + 1
        if status == 202:
            log.record(body["commandId"], body["taskId"], "e2e")

    started = time.perf_counter()
    pending = []
    for i in range(rate * seconds):
        due = started + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    log.close()
    late.sort()
    return {
        "offered_per_s": rate * seconds / elapsed,
        "codes": codes,  # type: ignore[dict-item]
        "late_p99_ms": late[int(0.99 * len(late))] * 1000,
    }


async def sample_lag(settings: Settings, stop: asyncio.Event, seen: list[int]) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError, OSError):
            seen.append((await group_lag(settings.kafka, timeout_s=5)).total)
        await asyncio.sleep(2)


async def bench_e2e(
    settings: Settings, port: int, tokens: list[str], rate: int, seconds: int, run_dir: Path
) -> list[str]:
    # warm-up (not measured): the consumer joins its group, pools and caches fill
    await open_loop(port, tokens, 100, 3, run_dir.parent / "warm-up")
    warm_engine = create_engine(settings.db, pool_size=2)
    try:
        await wait_drained(settings, create_session_factory(warm_engine), 60)
    finally:
        await warm_engine.dispose()
    stop, lags = asyncio.Event(), []
    sampler = asyncio.create_task(sample_lag(settings, stop, lags))
    loop = await open_loop(port, tokens, rate, seconds, run_dir)
    engine = create_engine(settings.db, pool_size=2)
    try:
        sessions = create_session_factory(engine)
        drain = await wait_drained(settings, sessions, 180)
        stop.set()
        await sampler
        from taskstream.loadtesting.run_files import read_recorded  # noqa: PLC0415

        result = await verify_commands(sessions, read_recorded(run_dir), drain)
    finally:
        await engine.dispose()
    return [
        f"offered {loop['offered_per_s']:,.0f} commands/s for {seconds} s (open loop, 128"
        f" connections, {len(tokens)} users; send lateness p99 {loop['late_p99_ms']:.0f} ms);"
        f" responses {loop['codes']}",
        f"max consumer lag (sampled every 2 s): {max(lags, default=0):,}",
        *summary(result).splitlines(),
    ]


async def prepare(settings: Settings, results: Path) -> list[str]:
    await create_database(settings, ROOT)
    await ensure_topics(settings.kafka)
    engine = create_engine(settings.db, pool_size=2)
    try:
        plan = SeedPlan(RUN, USERS, 2, 3)
        password = seed_password(settings.auth.jwt_secret.get_secret_value(), RUN)
        credentials = await seed_run(
            create_session_factory(engine), TokenCodec(settings.auth), plan, password
        )
    finally:
        await engine.dispose()
    write_credentials(results / RUN, credentials)
    return [u.access_token for u in credentials.users]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="batch,e2e,locust")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch-seconds", type=int, default=10)
    parser.add_argument("--locust-time", default="60s")
    args = parser.parse_args()
    only = set(args.only.split(","))
    settings = isolated_settings(Settings(), RUN, db_prefix="taskstream_bench")
    env = {**os.environ, **settings.as_env()}
    results = Path(tempfile.mkdtemp(prefix="bench-loadtest-"))
    report: list[str] = []
    tokens = asyncio.run(prepare(settings, results))
    children: list[ChildProcess] = []
    try:
        if "batch" in only:
            report += [
                "",
                "## POST /tasks/batch",
                *bench_batches(settings, tokens[0], args.batch_seconds),
            ]
        if only & {"e2e", "locust"}:
            api = ApiServer(settings, workers=2).start()
            children = [
                ChildProcess(taskstream_argv(name), env, results / f"{name}.log").start()
                for name in ("consume", "relay", "work")
            ]
            try:
                if "e2e" in only:
                    report += [
                        "",
                        f"## end to end, {args.rate}/s open loop",
                        *asyncio.run(
                            bench_e2e(
                                settings, api.port, tokens, args.rate, args.seconds, results / "e2e"
                            )
                        ),
                    ]
                if "locust" in only:
                    out = subprocess.run(
                        taskstream_argv(
                            "loadtest",
                            "run",
                            "--host",
                            api.url,
                            "--users",
                            "20",
                            "--spawn-rate",
                            "5",
                            "--time",
                            args.locust_time,
                            "--results-dir",
                            str(results),
                        ),
                        env=env,
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        timeout=600,
                        check=False,
                    )
                    tail = out.stdout[out.stdout.rfind("== ") :].splitlines()
                    report += ["", f"## locust mixed run (exit {out.returncode})", *tail]
            finally:
                api.stop()
    finally:
        for child in children:
            child.stop()
        asyncio.run(drop_database(settings))
        asyncio.run(
            delete_topics(
                settings.kafka,
                [
                    settings.kafka.task_commands_topic,
                    settings.kafka.task_commands_dlq_topic,
                    settings.kafka.task_events_topic,
                ],
            )
        )
    print("\n".join(report))
    print(f"\nlogs and run directories: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
