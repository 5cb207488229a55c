"""One object-store interface over a local directory and S3-compatible storage.

Keys are ``/``-separated relative paths (``staging/<uuid>``, ``objects/<sha256>``). Every store
streams: ``put`` consumes an async iterable of chunks and never holds the whole body, ``get``
yields chunks. A ``put`` is atomic: readers see the previous object (or none) until the new one
is complete, and a failed or cancelled ``put`` leaves nothing visible. Errors other than a
missing object surface as ``StorageUnavailable``: the caller leaves its work pending and
retries later.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from taskstream.settings import AttachmentSettings


class ObjectNotFound(Exception):
    """No object under this key."""


class StorageUnavailable(Exception):
    """The store could not be reached or refused the operation (network, permission, disk):
    nothing was changed that a retry would not repair; retry later."""


class InvalidKey(ValueError):
    """A key that is empty, absolute, has ``.``/``..`` or hidden components, or control
    characters: refused before any I/O (a programming error, not an outage)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStore(Protocol):
    """What the attachment pipeline needs from a store; ``open_store`` picks one by URL."""

    kind: str  # "local" | "s3"

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the stream under ``key`` atomically; the number of bytes stored."""
        ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` (clamped to the object) as chunks; ``ObjectNotFound``
        is raised when iteration starts."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size, ``None`` when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; absent already is fine."""
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (a string prefix, as in S3)."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe relative object key, else ``InvalidKey``."""
    if not key or len(key) > 1024 or key.startswith("/") or key.endswith("/"):
        raise InvalidKey(f"invalid object key {key!r}")
    if any(ord(char) < 0x20 or char in "\x7f\\" for char in key):
        raise InvalidKey(f"invalid object key {key!r}")
    for part in key.split("/"):
        if not part or part.startswith("."):
            raise InvalidKey(f"invalid object key {key!r}")
    return key


def open_store(settings: AttachmentSettings) -> ObjectStore:
    """The store that ``settings.storage_url`` names: ``file:///dir`` or ``s3://bucket/prefix``."""
    if not settings.storage_url:
        raise ValueError("attachments.storage_url is unset (Settings fills in the default)")
    url = urlsplit(settings.storage_url)
    if url.scheme == "file":
        from taskstream.attachments.storage_local import LocalStore  # noqa: PLC0415

        if url.netloc not in ("", "localhost"):
            raise ValueError(f"file URL with a host: {settings.storage_url!r}")
        return LocalStore(unquote(url.path))
    if url.scheme == "s3":
        from taskstream.attachments.storage_s3 import S3ObjectStore  # noqa: PLC0415

        return S3ObjectStore.from_settings(settings)
    raise ValueError(f"unsupported attachments.storage_url {settings.storage_url!r}")
