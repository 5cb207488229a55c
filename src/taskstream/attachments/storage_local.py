"""The embedded object store: a directory (by default under the state directory).

A put writes a hidden temporary file in the key's own directory, fsyncs it, renames it over the
key and fsyncs the directory, so the object appears whole or not at all, also across a crash
(a crash leaves at most a hidden ``.tmp-*`` file, which ``list`` never shows). File I/O runs in
worker threads, one call per chunk, so the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from taskstream.attachments.storage import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
    check_key,
)

_T = TypeVar("_T")

READ_CHUNK_BYTES = 1024 * 1024
TEMP_PREFIX = ".tmp-"


class LocalStore:
    kind = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        """The file of ``key``, refusing any key that would leave the root."""
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"object key escapes the store: {key!r}")
        return path

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        path = self.path_of(key)
        temp = path.parent / f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex}"
        try:
            fd = await asyncio.to_thread(_create, temp)
        except OSError as error:
            raise StorageUnavailable(f"cannot create {temp}: {error}") from error
        written = 0
        try:
            async for chunk in chunks:
                if chunk:
                    await _in_thread(_write_all, fd, chunk)
                    written += len(chunk)
            await _in_thread(_commit, fd, temp, path)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, fd, temp))
            raise
        return written

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFound(key) from error
        except OSError as error:
            raise StorageUnavailable(f"cannot open {path}: {error}") from error
        try:
            remaining = None if end is None else max(0, end - start)
            if start:
                file.seek(start)
            while remaining is None or remaining > 0:
                want = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
                chunk = await _in_thread(file.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def size(self, key: str) -> int | None:
        path = self.path_of(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise StorageUnavailable(f"cannot stat {path}: {error}") from error
        return stat.st_size if path.is_file() else None

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return
        except OSError as error:
            raise StorageUnavailable(f"cannot delete {path}: {error}") from error

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        directory, _, _ = prefix.rpartition("/")
        base = self.path_of(directory) if directory else self.root
        try:
            found = await asyncio.to_thread(_walk, base, self.root, prefix)
        except OSError as error:
            raise StorageUnavailable(f"cannot list {base}: {error}") from error
        for info in found:
            yield info

    async def close(self) -> None:
        return None


async def _in_thread(function: Callable[..., _T], *args: object) -> _T:
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as error:
        raise StorageUnavailable(str(error)) from error


def _create(temp: Path) -> int:
    temp.parent.mkdir(parents=True, exist_ok=True)
    return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def _commit(fd: int, temp: Path, path: Path) -> None:
    os.fsync(fd)
    os.close(fd)
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _discard(fd: int, temp: Path) -> None:
    with contextlib.suppress(OSError):  # already closed by a commit that failed after it
        os.close(fd)
    temp.unlink(missing_ok=True)


def _walk(base: Path, root: Path, prefix: str) -> list[ObjectInfo]:
    found: list[ObjectInfo] = []
    if not base.is_dir():
        return found
    for directory, subdirectories, files in os.walk(base):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if not key.startswith(prefix):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # deleted while listing
            modified = datetime.fromtimestamp(stat.st_mtime, UTC)
            found.append(ObjectInfo(key=key, size=stat.st_size, modified=modified))
    found.sort(key=lambda info: info.key)
    return found
