"""API ingestion benchmark (not a test): POST /tasks against the same server's bare 202.

    .venv/bin/python -m loadtest.bench_api [--seconds 10] [--connections 64] [--workers 2]

Starts `taskstream api` (granian, uvloop, --factory loadtest.bench_routes:create_bench_app,
which adds the unauthenticated ``POST /bench/*`` reference routes; ``/bench/noop`` returns 202
without doing anything) against the real PostgreSQL, Redis and tansu, registers a user and drives
every route at 64 keep-alive connections, going through all of them twice and reporting the
better round of each. Between the ceiling and POST /tasks sit three reference routes, each
adding one cost (bench_routes.py): reading the body, waiting for an acknowledgement that costs
nothing, and a real acks=all publish.

POST /tasks does everything it does in production: JWT verification, the user-status and
membership caches, a Redis rate-limit hit, msgspec validation, publishing to a per-run
``task-commands-bench-*`` topic with acks=all and waiting for the ack, and the pipelined Redis
"accepted" record. Only the member limit is raised (so the limiter is still called per request
but does not reject the load).

Load generator: wrk (C, one thread per core, `apt-get install wrk`); it competes with the
server for the 2 cores, which is why the ceiling is measured the same way in the same run.
Without wrk a small asyncio raw-HTTP/1.1 generator is used (less efficient; noted in output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.settings import Settings, get_settings
from tests.integration.http_support import PASSWORD, ApiServer

BODY = json.dumps({"title": "benchmark task", "priority": "high"})

# name -> (path, label); each row adds one cost to the one above it (loadtest/bench_routes.py)
ROUTES = {
    "noop": ("/bench/noop", "ceiling: bare 202, body not read"),
    "decode": ("/bench/decode", "+ read and decode the body"),
    "await": ("/bench/await", "+ wait for a free 1 ms ack: no broker, no I/O"),
    "publish": ("/bench/publish", "floor: decode + acks=all publish only"),
    "tasks": ("/tasks", "everything production does"),
}


@dataclass
class Result:
    route: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    generator: str


def _wrk(url: str, token: str | None, seconds: int, connections: int) -> Result:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if token:
        headers += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    script = f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\n{headers}'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", file.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(file.name).unlink()

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Result(url.rsplit("/", 2)[-1] or url, rps, latency("50"), latency("99"), errors, "wrk")


async def _asyncio_load(url: str, token: str | None, seconds: int, connections: int) -> Result:
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    body = BODY.encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    cuts = statistics.quantiles(latencies, n=100)
    return Result(
        path, len(latencies) / seconds, cuts[49] * 1000, cuts[98] * 1000, errors, "asyncio"
    )


def measure(url: str, token: str | None, seconds: int, connections: int) -> Result:
    if shutil.which("wrk"):
        return _wrk(url, token, seconds, connections)
    return asyncio.run(_asyncio_load(url, token, seconds, connections))


def _bench_settings(linger_ms: int | None = None) -> Settings:
    base = get_settings()
    run = uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(update={"task_commands_topic": f"task-commands-bench-{run}"})
    if linger_ms is not None:
        kafka = kafka.model_copy(update={"linger_ms": linger_ms})
    # the limiter still runs on every request; it just must not reject the benchmark's load
    limits = base.limits.model_copy(
        update={"member": "10000000/second", "registration": "100000/hour", "login": "100000/hour"}
    )
    return base.model_copy(update={"kafka": kafka, "limits": limits})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--linger-ms", type=int, default=None, help="default: kafka.linger_ms")
    args = parser.parse_args()

    settings = _bench_settings(args.linger_ms)
    asyncio.run(ensure_topics(settings.kafka, [settings.kafka.task_commands_topic]))
    server = ApiServer(
        settings, workers=args.workers, factory="loadtest.bench_routes:create_bench_app"
    ).start()
    try:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        httpx.post(
            f"{server.url}/auth/register",
            json={"name": "Bench", "email": email, "password": PASSWORD},
        ).raise_for_status()
        login = httpx.post(f"{server.url}/auth/login", json={"email": email, "password": PASSWORD})
        token = login.json()["accessToken"]
        urls = {name: f"{server.url}{path}" for name, (path, _) in ROUTES.items()}
        tokens = {"tasks": token}
        measure(urls["tasks"], token, 2, args.connections)  # warm caches, producer, pools
        measure(urls["noop"], None, 2, args.connections)
        rounds: dict[str, list[Result]] = {name: [] for name in urls}
        for _ in range(2):
            for name, url in urls.items():
                rounds[name].append(measure(url, tokens.get(name), args.seconds, args.connections))
    finally:
        server.stop()
        asyncio.run(delete_topics(settings.kafka, [settings.kafka.task_commands_topic]))
    best = {name: max(results, key=lambda r: r.rps) for name, results in rounds.items()}
    noop, publish, tasks = best["noop"], best["publish"], best["tasks"]
    ratio = tasks.rps / noop.rps
    print(
        f"\nAPI ingestion: {args.connections} connections, {args.workers} granian workers, "
        f"linger {settings.kafka.linger_ms} ms, "
        f"{args.seconds}s per round, generator {tasks.generator}, best of 2 rounds\n"
    )
    print("| route | req/s | of the ceiling | p50 ms | p99 ms | non-2xx/errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (path, label) in ROUTES.items():
        r = best[name]
        print(
            f"| POST {path} ({label}) | {r.rps:,.0f} | {r.rps / noop.rps:.0%} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    of_publish = tasks.rps / publish.rps
    met = of_publish >= 0.8 and tasks.p99_ms < 50
    print(
        f"\nPOST /tasks = {of_publish:.0%} of /bench/publish (target >= 80%), "
        f"p99 {tasks.p99_ms:.1f} ms (target < 50 ms): {'met' if met else 'NOT met'}"
    )
    print(
        f"POST /tasks = {ratio:.0%} of the bare 202; "
        f"/bench/publish = {publish.rps / noop.rps:.0%} of the bare 202"
    )
    print(
        "all rounds (req/s): "
        + "; ".join(
            f"{name} " + ", ".join(f"{r.rps:,.0f}" for r in results)
            for name, results in rounds.items()
        )
    )
    return 0 if tasks.errors == 0 else 1  # figures are reported, never asserted


if __name__ == "__main__":
    raise SystemExit(main())
