"""S3-compatible object storage through obstore (Rust's ``object_store`` under asyncio).

Why obstore: it streams both ways without Python-side buffering (``put_async`` takes an async
iterable and runs a multipart upload, ``get_async(...).stream()`` yields ranged bodies), its
HTTP, signing and retry loop run in Rust outside the GIL, and a completed multipart upload is
S3's own atomic commit. aiobotocore streams too but signs and parses every part in Python;
s3fs adds fsspec's file emulation on top of aiobotocore (see docs/attachments.md for figures).

Small bodies skip multipart: the first ``PART_BYTES`` are buffered, and a stream that ends
within them is sent in one PUT (one request instead of three).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store

from taskstream.attachments.storage import (
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
    check_key,
)

if TYPE_CHECKING:
    from taskstream.settings import AttachmentSettings

# S3's minimum part size is 5 MiB; parts in flight per put bound the memory a put holds.
PART_BYTES = 5 * 1024 * 1024
PARTS_IN_FLIGHT = 4
READ_CHUNK_BYTES = 1024 * 1024
# How long a cancelled put waits for obstore to abort its multipart upload.
ABORT_WAIT_S = 5.0
# A store that does not answer fails the call within seconds; the pipeline retries the stage
# later, so long in-client retry loops would only hold the consumer.
_RETRY = {
    "max_retries": 2,
    "retry_timeout": timedelta(seconds=10),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
}
# obstore raises Python's FileNotFoundError (or its own NotFoundError) for a missing object,
# other OSErrors (PermissionError, ConnectionError, TimeoutError) or its BaseError otherwise.
_NOT_FOUND = (FileNotFoundError, NotFoundError)
_UNAVAILABLE = (BaseError, OSError)
_CLIENT = {"connect_timeout": timedelta(seconds=3), "timeout": timedelta(seconds=60)}


class S3ObjectStore:
    kind = "s3"

    def __init__(self, store: S3Store) -> None:
        self._store = store

    @classmethod
    def from_settings(cls, settings: AttachmentSettings) -> S3ObjectStore:
        """A store for ``s3://bucket[/prefix]`` with the credentials and endpoint in settings;
        unset credentials fall back to the standard AWS environment and instance metadata."""
        url = urlsplit(settings.storage_url or "")
        if not url.netloc:
            raise ValueError(f"S3 storage URL without a bucket: {settings.storage_url!r}")
        config: dict[str, Any] = {"region": settings.s3_region}
        if settings.s3_endpoint:
            config["endpoint"] = settings.s3_endpoint
        if settings.s3_access_key_id:
            config["access_key_id"] = settings.s3_access_key_id
        secret = settings.s3_secret_access_key
        if secret is not None and secret.get_secret_value():
            config["secret_access_key"] = secret.get_secret_value()
        client = dict(_CLIENT, allow_http=settings.s3_allow_http)
        prefix = url.path.strip("/") or None
        try:
            store = S3Store(
                url.netloc,
                prefix=prefix,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=_RETRY,  # type: ignore[arg-type]
            )
        except BaseError as error:  # a configuration mistake: refuse at start
            raise ValueError(f"attachments S3 settings: {error}".splitlines()[0]) from error
        return cls(store)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        iterator = aiter(chunks)
        head: list[bytes] = []
        buffered = 0
        async for chunk in iterator:
            head.append(chunk)
            buffered += len(chunk)
            if buffered > PART_BYTES:
                break
        else:
            try:
                await obstore.put_async(self._store, key, b"".join(head), use_multipart=False)
            except _UNAVAILABLE as error:
                raise StorageUnavailable(f"S3 put {key}: {error}") from error
            return buffered
        counted = _Counted(head, iterator)
        upload = asyncio.ensure_future(
            obstore.put_async(
                self._store,
                key,
                counted,
                use_multipart=True,
                chunk_size=PART_BYTES,
                max_concurrency=PARTS_IN_FLIGHT,
            )
        )
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            # obstore aborts a multipart upload when its source raises, not when the awaiting
            # task is cancelled: make the source raise, and wait for the abort to be sent.
            counted.abort()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(upload, ABORT_WAIT_S)
            raise
        except _UNAVAILABLE as error:
            raise StorageUnavailable(f"S3 put {key}: {error}") from error
        return counted.size

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        if end is not None and end <= start:
            if await self.size(key) is None:
                raise ObjectNotFound(key)
            return
        options: dict[str, Any] = {}
        if end is not None:
            options["range"] = (start, end)  # an end past the object is clamped by S3
        elif start > 0:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options)  # type: ignore[arg-type]
        except _NOT_FOUND as error:
            raise ObjectNotFound(key) from error
        except _UNAVAILABLE as error:
            # S3 refuses a range that starts at or past the end (416): that is an empty slice
            if start > 0:
                size = await self.size(key)
                if size is None:
                    raise ObjectNotFound(key) from error
                if start >= size:
                    return
            raise StorageUnavailable(f"S3 get {key}: {error}") from error
        try:
            async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                yield bytes(chunk)
        except _UNAVAILABLE as error:
            raise StorageUnavailable(f"S3 get {key}: {error}") from error

    async def size(self, key: str) -> int | None:
        check_key(key)
        try:
            meta = await obstore.head_async(self._store, key)
        except _NOT_FOUND:
            return None
        except _UNAVAILABLE as error:
            raise StorageUnavailable(f"S3 head {key}: {error}") from error
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        check_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except _NOT_FOUND:
            return
        except _UNAVAILABLE as error:
            raise StorageUnavailable(f"S3 delete {key}: {error}") from error

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        # object_store lists by path (whole segments); S3 semantics are a string prefix, so
        # list the prefix's directory and filter.
        directory = prefix.rpartition("/")[0] or None
        try:
            async for batch in obstore.list(self._store, directory, chunk_size=1000):
                for meta in batch:
                    key = meta["path"]
                    if key.startswith(prefix):
                        yield ObjectInfo(key=key, size=meta["size"], modified=meta["last_modified"])
        except _UNAVAILABLE as error:
            raise StorageUnavailable(f"S3 list {prefix}: {error}") from error

    async def close(self) -> None:
        return None  # obstore's connection pool goes with the store object


class UploadCancelled(Exception):
    """Raised into obstore's read of the source when the put is cancelled."""


class _Counted:
    """The buffered head then the rest of the stream, counting the bytes that pass; ``abort``
    makes it raise at once, even while it waits for the source."""

    def __init__(self, head: list[bytes], rest: AsyncIterator[bytes]) -> None:
        self._head = head
        self._rest = rest
        self._aborted = asyncio.Event()
        self.size = 0

    def abort(self) -> None:
        self._aborted.set()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        head, self._head = self._head, []
        while head:
            chunk = head.pop(0)
            self.size += len(chunk)
            yield chunk
        aborted = asyncio.ensure_future(self._aborted.wait())
        try:
            while True:
                following = asyncio.ensure_future(anext(self._rest))
                await asyncio.wait({following, aborted}, return_when=asyncio.FIRST_COMPLETED)
                if aborted.done():
                    following.cancel()
                    raise UploadCancelled
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    return
                self.size += len(chunk)
                yield chunk
        finally:
            aborted.cancel()
