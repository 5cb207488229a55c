"""Attachment ceilings: what the storage and the scanner can do at most on this machine, so the
pipeline's figures (processing and upload throughput) sit next to them in the same run.

    .venv/bin/python -m loadtest.bench_attachments [--small-files 400] [--large-files 8]

Ceilings, each for small (10 KB) and large (20 MB) files, in MB/s and files/s:
- raw put: ``ObjectStore.put`` of an in-memory body streamed in 1 MiB chunks (the store's
  write ceiling), to the local directory and to an S3 API server (moto, started here on a free
  port unless ``--s3-endpoint`` names another);
- raw copy: ``get`` piped into ``put`` within one store (the ceiling of moving a staged file to
  its final key);
- raw scan: clamd INSTREAM through ``ClamdScanner`` of bodies all different (each file its own
  leading bytes before shared random ones), on the configured clamd when it answers, else a
  private one with the shipped database. clamd caches its verdict per content hash, so one
  body scanned again and again measures that cache, not scanning; uploads are all different.

Pipeline figures go next to these: write ``async def figure(context: BenchContext) ->
list[Figure]`` and append it to ``FIGURES`` (or call ``run([...])``); every figure function
gets the same stores and clamd, and the table prints them together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskstream.attachments.scanner import ClamdScanner
from taskstream.attachments.storage import ObjectStore, open_store
from taskstream.infra.clamav import ClamdAddress, clamd_binary, write_config
from taskstream.settings import AttachmentSettings, Settings

KB = 1000
MB = 1000 * 1000
CHUNK_BYTES = 1024 * 1024
SMALL_BYTES = 10 * KB
LARGE_BYTES = 20 * MB

SCAN_FRAME_BYTES = inspect.signature(ClamdScanner).parameters["chunk_bytes"].default
LARGE_SCAN_FRAMES = sorted({SCAN_FRAME_BYTES, 64 * 1024, 256 * 1024, 1024 * 1024})

Figure = dict[str, Any]


@dataclass
class BenchContext:
    """What every figure function measures against: both stores, clamd, the file counts."""

    stores: dict[str, ObjectStore]
    store_settings: dict[str, AttachmentSettings]
    clamd_address: str
    small_files: int
    large_files: int
    concurrency: int
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> list[tuple[int, int]]:
        """(file size, file count) pairs to measure."""
        return [(SMALL_BYTES, self.small_files), (LARGE_BYTES, self.large_files)]


def figure(
    name: str, target: str, size: int, files: int, concurrency: int, seconds: float
) -> Figure:
    return {
        "figure": name,
        "target": target,
        "size": _size_label(size),
        "files": files,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "mb_per_s": round(size * files / MB / seconds, 1),
        "files_per_s": round(files / seconds, 1),
    }


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for offset in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[offset : offset + CHUNK_BYTES])


async def _timed(jobs: list[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Run ``jobs`` with at most ``concurrency`` at a time; the wall time in seconds."""
    queue = list(reversed(jobs))

    async def lane() -> None:
        while queue:
            await queue.pop()()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


async def raw_put(context: BenchContext) -> list[Figure]:
    """``put`` of in-memory bodies into each store."""
    figures = []
    for kind, store in context.stores.items():
        for size, files in context.sizes():
            body = os.urandom(size)
            prefix = f"bench/{uuid.uuid4().hex}"
            concurrency = _concurrency(context, size)
            jobs = [_put_job(store, f"{prefix}/{n}", body) for n in range(files)]
            seconds = await _timed(jobs, concurrency)
            figures.append(figure("raw put", kind, size, files, concurrency, seconds))
            await _delete_prefix(store, prefix)
    return figures


async def raw_copy(context: BenchContext) -> list[Figure]:
    """``get`` piped into ``put`` within each store (staging -> final)."""
    figures = []
    for kind, store in context.stores.items():
        for size, files in context.sizes():
            prefix = f"bench/{uuid.uuid4().hex}"
            body = os.urandom(size)
            await _timed([_put_job(store, f"{prefix}/src/{n}", body) for n in range(files)], 4)
            concurrency = _concurrency(context, size)
            jobs = [
                _copy_job(store, f"{prefix}/src/{n}", f"{prefix}/dst/{n}") for n in range(files)
            ]
            seconds = await _timed(jobs, concurrency)
            figures.append(figure("raw copy", kind, size, files, concurrency, seconds))
            await _delete_prefix(store, prefix)
    return figures


async def _distinct_chunks(shared: bytes, unique: bytes) -> AsyncIterator[bytes]:
    """``shared`` with its first bytes replaced by ``unique``: a body clamd has never seen
    (its verdict cache is keyed by the whole content's hash), without a copy per file."""
    yield unique
    view = memoryview(shared)
    for offset in range(len(unique), len(view), CHUNK_BYTES):
        yield bytes(view[offset : offset + CHUNK_BYTES])


async def raw_scan(context: BenchContext) -> list[Figure]:
    """clamd INSTREAM of random bodies, every one different (clean verdicts), at the
    scanner's default frame size and, for large files, at larger frames."""
    figures = []
    for size, files in context.sizes():
        shared = os.urandom(size)
        concurrency = _concurrency(context, size)
        frames = [SCAN_FRAME_BYTES] if size <= SMALL_BYTES else [*LARGE_SCAN_FRAMES]
        for frame in frames:
            scanner = ClamdScanner(context.clamd_address, timeout_s=60, chunk_bytes=frame)

            def scan_job(
                scanner: ClamdScanner = scanner, shared: bytes = shared
            ) -> Callable[[], Awaitable[None]]:
                async def scan_one() -> None:
                    # 16 fresh random bytes: distinct across files, frames and runs
                    verdict = await scanner.scan(_distinct_chunks(shared, os.urandom(16)))
                    assert verdict.clean, verdict

                return scan_one

            seconds = await _timed([scan_job() for _ in range(files)], concurrency)
            target = f"clamd, distinct bodies, {frame // 1024} KiB frames"
            figures.append(figure("raw clamd scan", target, size, files, concurrency, seconds))
    return figures


async def pipeline(context: BenchContext) -> list[Figure]:
    """The pipeline's figures: API upload and processing (bench_attachment_pipeline.py)."""
    from loadtest.bench_attachment_pipeline import pipeline_figures  # noqa: PLC0415

    return await pipeline_figures(context)


FIGURES: list[Callable[[BenchContext], Awaitable[list[Figure]]]] = [
    raw_put,
    raw_copy,
    raw_scan,
    pipeline,
]


def _concurrency(context: BenchContext, size: int) -> int:
    # Small files are latency-bound: measured with the pipeline's parallelism. Large ones are
    # bandwidth-bound: one at a time shows the per-stream ceiling.
    return context.concurrency if size <= SMALL_BYTES else 1


def _put_job(store: ObjectStore, key: str, body: bytes) -> Callable[[], Awaitable[object]]:
    return lambda: store.put(key, _chunks(body))


def _copy_job(store: ObjectStore, source: str, target: str) -> Callable[[], Awaitable[object]]:
    return lambda: store.put(target, store.get(source))


async def _delete_prefix(store: ObjectStore, prefix: str) -> None:
    keys = [info.key async for info in store.list(prefix)]
    for key in keys:
        await store.delete(key)


def _size_label(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout_s}s")


async def _http_ok(url: str) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            return False

    return await asyncio.to_thread(get)


async def _clamd_pings(address: str) -> bool:
    return await ClamdScanner(address, timeout_s=2).ping()


async def _spawn(argv: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=out)


@contextlib.asynccontextmanager
async def _servers(args: argparse.Namespace, workdir: Path) -> AsyncIterator[tuple[str, str]]:
    """(S3 endpoint, clamd address): given or configured ones, else private ones stopped on
    exit."""
    started: list[asyncio.subprocess.Process] = []
    try:
        endpoint = args.s3_endpoint
        if endpoint is None:
            port = _free_port()
            argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            started.append(await _spawn(argv, workdir / "moto.log"))
            endpoint = f"http://127.0.0.1:{port}"
            await _wait(lambda: _http_ok(f"{endpoint}/moto-api/"), "moto_server")
        clamd = Settings().attachments.clamd_address
        if not await _clamd_pings(clamd):
            binary = clamd_binary()
            if binary is None:
                raise SystemExit("clamd is not installed: apt-get install -y clamav-daemon")
            clamd = f"tcp://127.0.0.1:{_free_port()}"
            config = write_config(
                ClamdAddress.parse(clamd),
                directory=workdir / "clamd",
                database_dir=None,
                max_upload_bytes=100 * 1024 * 1024,
            )
            argv = [binary, "--config-file", str(config)]
            started.append(await _spawn(argv, workdir / "clamd.log"))
            await _wait(lambda: _clamd_pings(clamd), "clamd")
        yield endpoint, clamd
    finally:
        for process in started:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


def _bucket(endpoint: str, name: str) -> None:
    request = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass


async def run(
    args: argparse.Namespace,
    figure_functions: list[Callable[[BenchContext], Awaitable[list[Figure]]]] | None = None,
) -> list[Figure]:
    """Every figure function against fresh stores; the figures in order."""
    workdir = Path(tempfile.mkdtemp(prefix="ts-bench-attachments-", dir="/tmp"))
    try:
        async with _servers(args, workdir) as (endpoint, clamd):
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            if args.s3_endpoint is None:
                _bucket(endpoint, bucket)
            settings = {
                "local": AttachmentSettings(storage_url=(workdir / "store").as_uri()),
                "s3": AttachmentSettings(
                    storage_url=args.s3_url or f"s3://{bucket}",
                    s3_endpoint=endpoint,
                    s3_allow_http=endpoint.startswith("http://"),
                    s3_access_key_id=args.s3_access_key_id,
                    s3_secret_access_key=args.s3_secret_access_key,
                ),
            }
            stores = {kind: open_store(value) for kind, value in settings.items()}
            context = BenchContext(
                stores=stores,
                store_settings=settings,
                clamd_address=clamd,
                small_files=args.small_files,
                large_files=args.large_files,
                concurrency=args.concurrency,
            )
            figures: list[Figure] = []
            for function in figure_functions or FIGURES:
                figures += await function(context)
            for store in stores.values():
                await store.close()
            return figures
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def markdown(figures: list[Figure]) -> str:
    lines = [
        "| Figure | Target | File size | Files | Concurrency | MB/s | files/s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for item in figures:
        lines.append(
            f"| {item['figure']} | {item['target']} | {item['size']} | {item['files']} "
            f"| {item['concurrency']} | {item['mb_per_s']:,} | {item['files_per_s']:,} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=400)
    parser.add_argument("--large-files", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--s3-endpoint", help="an S3 API to measure instead of a private moto")
    parser.add_argument("--s3-url", help="s3://bucket[/prefix] on --s3-endpoint")
    parser.add_argument("--s3-access-key-id", default="bench")
    parser.add_argument("--s3-secret-access-key", default="bench")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    figures = asyncio.run(run(args))
    load_after = os.getloadavg()
    print(
        f"attachments ceilings, {started:%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) "
        f"before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}"
    )
    print(markdown(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
