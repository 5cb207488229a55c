"""Both object stores against the same expectations: streamed, atomic, ranged, idempotent
deletes, prefix listing; the S3 store against a real S3 API server (moto), never a mock."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from taskstream.attachments.storage import (
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    StorageUnavailable,
    open_store,
)
from taskstream.attachments.storage_local import LocalStore
from taskstream.settings import AttachmentSettings
from tests.integration.attachments.support import S3Server, unique_key

MiB = 1024 * 1024


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def generated(total: int, chunk: int = MiB) -> AsyncIterator[bytes]:
    """``total`` deterministic bytes, made a chunk at a time (never all at once)."""
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    for offset in range(0, total, chunk):
        yield block[: min(chunk, total - offset)]


async def read_all(store: ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.get(key, start, end)])


def peak_rss_reset() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) and return the current RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


async def test_put_then_get_returns_the_same_bytes(object_store: ObjectStore) -> None:
    key = unique_key()
    data = bytes(range(256)) * 1000
    assert await object_store.put(key, chunks_of(data)) == len(data)
    assert await read_all(object_store, key) == data
    assert await object_store.size(key) == len(data)


async def test_a_50_mb_stream_is_stored_without_holding_it(object_store: ObjectStore) -> None:
    key = unique_key("large")
    total = 50 * MiB
    expected = hashlib.sha256()
    async for chunk in generated(total):
        expected.update(chunk)
    gc.collect()
    rss_before = peak_rss_reset()
    tracemalloc.start()
    try:
        size = await object_store.put(key, generated(total))
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = peak_rss() - rss_before
    assert size == total
    # Python holds at most the buffered head of a multipart upload (5 MiB) and a few chunks;
    # the whole process (Rust's part buffers included) far less than the 50 MB body.
    assert python_peak < 12 * MiB, python_peak
    assert rss_growth < 40 * MiB, rss_growth
    digest = hashlib.sha256()
    async for chunk in object_store.get(key):
        digest.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()
    await object_store.delete(key)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (0, None), (1, 1000), (999, 1000), (999, None), (500, 2000), (1000, None), (0, 0)],
)
async def test_ranged_get_at_the_edges(
    object_store: ObjectStore, start: int, end: int | None
) -> None:
    key = unique_key("range")
    data = hashlib.sha256(b"x").digest() * 31 + b"12345678"  # 1000 bytes
    assert len(data) == 1000
    await object_store.put(key, chunks_of(data, 333))
    assert await read_all(object_store, key, start, end) == data[start:end]


async def test_a_missing_object(object_store: ObjectStore) -> None:
    key = unique_key("missing")
    assert await object_store.size(key) is None
    with pytest.raises(ObjectNotFound):
        await read_all(object_store, key)
    with pytest.raises(ObjectNotFound):
        await read_all(object_store, key, 10, 20)


async def test_put_replaces_an_object_whole(object_store: ObjectStore) -> None:
    key = unique_key("replace")
    await object_store.put(key, chunks_of(b"a" * 10_000))
    await object_store.put(key, chunks_of(b"b" * 7))
    assert await read_all(object_store, key) == b"b" * 7


class SourceBroke(Exception):
    pass


async def breaking(after_bytes: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in generated(after_bytes * 2, 256 * 1024):
        if sent >= after_bytes:
            raise SourceBroke
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("after_bytes", [256 * 1024, 12 * MiB], ids=["small", "multipart"])
async def test_a_failed_put_leaves_nothing_visible(
    object_store: ObjectStore, after_bytes: int
) -> None:
    prefix = unique_key("atomic")
    key = f"{prefix}/object"
    with pytest.raises(SourceBroke):
        await object_store.put(key, breaking(after_bytes))
    assert await object_store.size(key) is None
    assert [info async for info in object_store.list(prefix)] == []


async def stalling(after_bytes: int, reached: asyncio.Event) -> AsyncIterator[bytes]:
    """``after_bytes`` bytes, then waits forever (a client that stops sending)."""
    async for chunk in generated(after_bytes, 256 * 1024):
        yield chunk
    reached.set()
    await asyncio.Event().wait()


async def cancel_put(store: ObjectStore, key: str, after_bytes: int) -> None:
    reached = asyncio.Event()
    put = asyncio.create_task(store.put(key, stalling(after_bytes, reached)))
    await asyncio.wait_for(reached.wait(), 60)
    await asyncio.sleep(0.2)  # let the store send what it has
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put


@pytest.mark.parametrize("after_bytes", [256 * 1024, 12 * MiB], ids=["small", "multipart"])
async def test_a_cancelled_put_leaves_nothing_visible(
    object_store: ObjectStore, after_bytes: int
) -> None:
    prefix = unique_key("cancel")
    await cancel_put(object_store, f"{prefix}/object", after_bytes)
    assert await object_store.size(f"{prefix}/object") is None
    assert [info async for info in object_store.list(prefix)] == []


async def test_s3_leaves_no_incomplete_multipart_upload(
    s3_server: S3Server, s3_bucket: str, s3_store_settings: AttachmentSettings
) -> None:
    """A broken source and a cancelled put both abort their multipart upload (no hidden
    parts left to pay for)."""
    store = open_store(s3_store_settings)
    prefix = unique_key("mpu")
    with pytest.raises(SourceBroke):
        await store.put(f"{prefix}/broken", breaking(12 * MiB))
    await cancel_put(store, f"{prefix}/cancelled", 12 * MiB)
    assert [key for key in s3_server.incomplete_uploads(s3_bucket) if prefix in key] == []


async def test_a_failed_put_keeps_the_previous_version(object_store: ObjectStore) -> None:
    key = unique_key("keep")
    await object_store.put(key, chunks_of(b"old"))
    with pytest.raises(SourceBroke):
        await object_store.put(key, breaking(256 * 1024))
    assert await read_all(object_store, key) == b"old"


async def test_delete_is_idempotent(object_store: ObjectStore) -> None:
    key = unique_key("delete")
    await object_store.put(key, chunks_of(b"gone soon"))
    await object_store.delete(key)
    await object_store.delete(key)
    assert await object_store.size(key) is None
    await object_store.delete(unique_key("never-existed"))


async def test_list_by_string_prefix(object_store: ObjectStore) -> None:
    base = unique_key("list")
    keys = [f"{base}/a/1", f"{base}/a/2", f"{base}/ab", f"{base}/b/1"]
    for key in keys:
        await object_store.put(key, chunks_of(key.encode()))
    listed = {info.key: info for info in [i async for i in object_store.list(f"{base}/a")]}
    assert sorted(listed) == [f"{base}/a/1", f"{base}/a/2", f"{base}/ab"]
    assert listed[f"{base}/ab"].size == len(f"{base}/ab")
    assert listed[f"{base}/ab"].modified.tzinfo is not None
    assert [i.key async for i in object_store.list(f"{base}/b/")] == [f"{base}/b/1"]
    assert [i async for i in object_store.list(f"{base}/nothing")] == []


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "a/./b",
        ".hidden",
        "a/.tmp-x",
        "",
        "trailing/",
        "nul\x00byte",
        "new\nline",
        "back\\slash",
    ],
)
async def test_keys_that_could_escape_or_hide_are_refused(
    object_store: ObjectStore, key: str
) -> None:
    with pytest.raises(InvalidKey):
        await object_store.put(key, chunks_of(b"x"))
    with pytest.raises(InvalidKey):
        await object_store.size(key)
    with pytest.raises(InvalidKey):
        await read_all(object_store, key)
    with pytest.raises(InvalidKey):
        await object_store.delete(key)


async def test_local_store_refuses_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalStore(root)
    with pytest.raises(InvalidKey):
        await store.put("link/file", chunks_of(b"x"))
    assert list(outside.iterdir()) == []


async def test_local_store_leaves_no_temporary_file(
    local_store_settings: AttachmentSettings,
) -> None:
    store = open_store(local_store_settings)
    assert isinstance(store, LocalStore)
    key = unique_key("temp")
    await store.put(key, chunks_of(b"data"))
    with pytest.raises(SourceBroke):
        await store.put(f"{key}-broken", breaking(256 * 1024))
    siblings = sorted(p.name for p in store.path_of(key).parent.iterdir())
    assert siblings == [key.rpartition("/")[2]]


async def test_local_store_unwritable_is_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "readonly"
    root.mkdir()
    store = LocalStore(root)
    root.chmod(0o500)
    try:
        if _is_root():
            # root writes anyway: a file where the key's directory should be fails for anyone
            (root / "blocked").write_bytes(b"")
            key = "blocked/file"
        else:
            key = "file"
        with pytest.raises(StorageUnavailable):
            await store.put(key, chunks_of(b"x"))
    finally:
        root.chmod(0o700)


def _is_root() -> bool:
    return os.geteuid() == 0


@pytest.mark.fault
async def test_s3_server_down_is_storage_unavailable(private_s3_server: S3Server) -> None:
    server = private_s3_server
    bucket = server.create_bucket("down-test")
    store = open_store(server.settings(bucket))
    key = unique_key("down")
    await store.put(key, chunks_of(b"before the outage"))
    server.stop()
    with pytest.raises(StorageUnavailable):
        await store.put(unique_key("down"), chunks_of(b"during"))
    with pytest.raises(StorageUnavailable):
        await store.put(unique_key("down"), generated(12 * MiB))
    with pytest.raises(StorageUnavailable):
        await read_all(store, key)
    with pytest.raises(StorageUnavailable):
        await store.size(key)
    with pytest.raises(StorageUnavailable):
        await store.delete(key)
    with pytest.raises(StorageUnavailable):
        [info async for info in store.list("down")]
    await store.close()
