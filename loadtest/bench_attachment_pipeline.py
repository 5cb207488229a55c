"""The attachment pipeline's own figures, measured in the run of ``bench_attachments`` next to
its raw ceilings (same stores, same clamd):

- API upload: ``POST /tasks/{id}/attachments`` against ``taskstream api`` (granian, one worker)
  streaming each body, through staging, the row and the acknowledged Kafka command; compare
  with "raw put" (a streamed write to the same store);
- processing: ``AttachmentProcessor.process`` (scan, deduplicate, compress, store, the
  database and the outbox) of the staged uploads, run in this process with the consumer's
  parallelism; compare with "raw clamd scan" + "raw copy". The Kafka hop (one small record per
  file) is not in this figure.

Bodies are random (incompressible, no two alike): stored as they are, no deduplication hit,
which is the pipeline's worst case in storage work; the scan ceiling it is compared with
(bench_attachments.raw_scan) scans distinct bodies too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from taskstream.attachments.processing import AttachmentProcessor
from taskstream.attachments.scanner import ClamdScanner
from taskstream.db import create_engine, create_session_factory
from taskstream.infra.probes import asyncpg_dsn
from taskstream.infra.scratch import create_database, drop_database, isolated_settings
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.settings import AttachmentSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench horse 42 battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(store: AttachmentSettings, clamd: str, tag: str) -> Settings:
    base = isolated_settings(Settings(), tag, db_prefix="taskstream_bench_att")
    attachments = store.model_copy(
        update={
            "clamd_address": clamd,
            "max_upload_bytes": 64 * 1024 * 1024,
            "project_quota_bytes": 100 * 1024**3,
        }
    )
    limits = base.limits.model_copy(update={"enabled": False})
    api = base.api.model_copy(update={"port": _free_port(), "workers": 1})
    return base.model_copy(update={"attachments": attachments, "limits": limits, "api": api})


class _Api:
    def __init__(self, settings: Settings, log: Path) -> None:
        env = {**os.environ, **settings.as_env(), "TASKSTREAM_LOG_LEVEL": "WARNING"}
        self.url = f"http://127.0.0.1:{settings.api.port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "taskstream", "api"], env=env, stdout=out, stderr=out
            )

    async def wait(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(150):
                try:
                    if (await client.post("/auth/login", json={})).status_code < 500:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("taskstream api did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


async def _user_and_task(
    client: httpx.AsyncClient, settings: Settings
) -> tuple[dict[str, str], str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    registered = await client.post(
        "/auth/register", json={"name": "Bench", "email": email, "password": PASSWORD}
    )
    registered.raise_for_status()
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    body = registered.json()
    task_id = str(uuid.uuid4())
    connection = await asyncpg.connect(asyncpg_dsn(settings.db.url))
    try:
        await connection.execute(
            "INSERT INTO tasks (id, project_id, created_by, title) VALUES ($1, $2, $3, 'bench')",
            uuid.UUID(task_id),
            uuid.UUID(body["personalProjectId"]),
            uuid.UUID(body["id"]),
        )
    finally:
        await connection.close()
    return {"Authorization": f"Bearer {login.json()['accessToken']}"}, task_id


async def _body(shared: bytes, index: int, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A distinct body per file: a unique prefix and the shared random bytes."""
    yield index.to_bytes(16, "big")
    view = memoryview(shared)
    for offset in range(16, len(view), chunk):
        yield bytes(view[offset : offset + chunk])


async def _timed(jobs: list[Any], concurrency: int) -> float:
    queue = list(reversed(jobs))

    async def lane() -> None:
        while queue:
            await queue.pop()()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


def _upload_job(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: str,
    shared: bytes,
    index: int,
    ids: list[str],
) -> Any:
    async def send() -> None:
        response = await client.post(
            f"/tasks/{task_id}/attachments",
            params={"name": f"bench-{index}.bin"},
            content=_body(shared, index),
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(shared)),
            },
        )
        response.raise_for_status()
        ids.append(response.json()["id"])

    return send


def _process_job(processor: AttachmentProcessor, ident: str) -> Any:
    async def run() -> None:
        state = await processor.process(uuid.UUID(ident))
        assert state is not None
        assert state.value == "stored", state

    return run


async def pipeline_figures(context: Any) -> list[dict[str, Any]]:
    """API upload and processing throughput on each store (``BenchContext`` of
    bench_attachments)."""
    from loadtest.bench_attachments import SMALL_BYTES, figure  # noqa: PLC0415

    figures: list[dict[str, Any]] = []
    for kind, store_settings in context.store_settings.items():
        tag = f"{kind}{uuid.uuid4().hex[:6]}"
        settings = _settings(store_settings, context.clamd_address, tag)
        await create_database(settings, ROOT)
        await ensure_topics(settings.kafka, [settings.kafka.attachment_commands_topic])
        api = _Api(settings, Path(f"/tmp/ts-bench-att-api-{tag}.log"))
        engine = create_engine(settings.db, pool_size=context.concurrency + 2)
        try:
            await api.wait()
            async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
                headers, task_id = await _user_and_task(client, settings)
                for size, files in context.sizes():
                    shared = os.urandom(size)
                    concurrency = context.concurrency if size <= SMALL_BYTES else 1
                    ids: list[str] = []

                    seconds = await _timed(
                        [
                            _upload_job(client, headers, task_id, shared, n, ids)
                            for n in range(files)
                        ],
                        concurrency,
                    )
                    figures.append(figure("API upload", kind, size, files, concurrency, seconds))
                    processor = AttachmentProcessor(
                        settings.attachments,
                        context.stores[kind],
                        ClamdScanner(context.clamd_address, timeout_s=60),
                        create_session_factory(engine),
                    )

                    seconds = await _timed([_process_job(processor, i) for i in ids], concurrency)
                    figures.append(
                        figure("pipeline processing", kind, size, files, concurrency, seconds)
                    )
        finally:
            api.stop()
            await engine.dispose()
            await delete_topics(settings.kafka, [settings.kafka.attachment_commands_topic])
            await drop_database(settings)
    return figures
