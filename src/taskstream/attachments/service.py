"""Reading and managing attachments: metadata, lists with versions, downloads (whole or a
byte range, by bearer token or signed link), deletion with the blob's reference count, and
the admins' view across projects.

Only ``stored`` attachments are downloadable; every other state (still processing,
quarantined, failed) answers 409 with the state in the detail, so nothing unscanned or
infected is ever served. A stranger gets 404 for all of it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.attachments.access import (
    attachment_role,
    require_delete_right,
    task_access,
)
from taskstream.attachments.errors import NotDownloadableError, RangeNotSatisfiableError
from taskstream.attachments.links import LinkSigner
from taskstream.attachments.models import Attachment, Blob
from taskstream.attachments.names import content_disposition
from taskstream.attachments.repository import AttachmentRepository
from taskstream.attachments.schemas import (
    STAGES,
    AttachmentOut,
    AttachmentPage,
    DownloadLink,
)
from taskstream.attachments.storage import ObjectNotFound, ObjectStore, StorageUnavailable
from taskstream.db import transaction
from taskstream.enums import AttachmentState, ProjectRole
from taskstream.errors import (
    FieldError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    ValidationFailedError,
)
from taskstream.fields import parse_storable_datetime
from taskstream.principal import Principal
from taskstream.settings import Settings

logger = logging.getLogger(__name__)


def quarantine_key(attachment_id: uuid.UUID) -> str:
    return f"quarantine/{attachment_id}"


def attachment_out(attachment: Attachment, blob: Blob | None = None) -> AttachmentOut:
    state = attachment.state
    progress = STAGES.index(state) if state in STAGES else 0
    if state in (AttachmentState.QUARANTINED, AttachmentState.FAILED):
        progress = len(STAGES) - 1
    return AttachmentOut(
        id=attachment.id,
        task_id=attachment.task_id,
        project_id=attachment.project_id,
        uploader_id=attachment.uploader_id,
        name=attachment.display_name,
        content_type=blob.content_type if blob is not None else attachment.content_type,
        declared_type=attachment.declared_type,
        sniffed_type=attachment.sniffed_type,
        size=attachment.size,
        sha256=attachment.sha256,
        version=attachment.version,
        state=state,
        state_reason=attachment.state_reason,
        progress=progress,
        stages=len(STAGES) - 1,
        created_at=attachment.created_at,
        updated_at=attachment.updated_at,
        downloadable=state is AttachmentState.STORED and blob is not None,
        stored_size=blob.stored_size if blob is not None else None,
        compression=blob.compression if blob is not None else None,
        has_thumbnail=bool(blob is not None and blob.thumbnail_key),
    )


def encode_cursor(attachment: Attachment) -> str:
    raw = f"{attachment.created_at.isoformat()}|{attachment.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return parse_storable_datetime(stamp), uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailedError([FieldError("cursor", "Not a cursor of this list")]) from None


@dataclass(frozen=True, slots=True)
class Download:
    """What a download response needs: headers and the bytes ``[start, end)``."""

    content_type: str
    disposition: str
    size: int
    start: int
    end: int
    partial: bool
    chunks: AsyncIterator[bytes]
    etag: str


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as ``[start, end)``; None means "the whole file" (no header,
    or one this server ignores: several ranges, another unit, bad syntax)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or (not first and last.isdigit())):
        return None
    if last and not last.isdigit():
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - count), size
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return start, end


class AttachmentService:
    """Reads, downloads, links and deletion (uploads: ``uploads.UploadService``)."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        self.settings = settings
        self.store = store
        self.session_factory = session_factory
        self.signer = LinkSigner(settings.auth.jwt_secret.get_secret_value())

    async def _visible(
        self, session: AsyncSession, principal: Principal, attachment_id: uuid.UUID
    ) -> tuple[Attachment, Blob | None, ProjectRole]:
        found = await AttachmentRepository.from_session(session).get_with_blob(attachment_id)
        if found is None:
            raise NotFoundError("Attachment not found")
        role = await attachment_role(session, principal, found[0])
        return found[0], found[1], role

    async def get(self, principal: Principal, attachment_id: uuid.UUID) -> AttachmentOut:
        """The attachment's metadata, state and stage progress."""
        async with self.session_factory() as session:
            attachment, blob, _ = await self._visible(session, principal, attachment_id)
        return attachment_out(attachment, blob)

    async def list_for_task(
        self, principal: Principal, task_id: uuid.UUID, cursor: str | None, limit: int
    ) -> AttachmentPage:
        """The task's attachments, oldest first; every version of a name is its own item."""
        after = decode_cursor(cursor)
        async with self.session_factory() as session:
            await task_access(session, principal, task_id, ProjectRole.VIEWER)
            rows = await AttachmentRepository.from_session(session).list_for_task(
                task_id, after, limit + 1
            )
            blobs = await self._blobs(session, rows[:limit])
        items = [attachment_out(a, blobs.get(a.blob_id)) for a in rows[:limit]]
        return AttachmentPage(
            items=items, next_cursor=encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        )

    async def list_all(
        self,
        principal: Principal,
        cursor: str | None,
        limit: int,
        project_id: uuid.UUID | None,
        state: AttachmentState | None,
    ) -> AttachmentPage:
        """Every project's attachments (admins only)."""
        if not principal.is_admin:
            raise ForbiddenError("Only admins list attachments across projects")
        after = decode_cursor(cursor)
        async with self.session_factory() as session:
            rows = await AttachmentRepository.from_session(session).list_all(
                after, limit + 1, project_id=project_id, state=state
            )
            blobs = await self._blobs(session, rows[:limit])
        items = [attachment_out(a, blobs.get(a.blob_id)) for a in rows[:limit]]
        return AttachmentPage(
            items=items, next_cursor=encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        )

    async def _blobs(
        self, session: AsyncSession, rows: Sequence[Attachment]
    ) -> dict[uuid.UUID | None, Blob]:
        ids = {a.blob_id for a in rows if a.blob_id is not None}
        found: dict[uuid.UUID | None, Blob] = {}
        for blob_id in ids:
            blob = await session.get(Blob, blob_id)
            if blob is not None:
                found[blob_id] = blob
        return found

    # --- downloads -------------------------------------------------------------------------

    async def download(
        self, principal: Principal, attachment_id: uuid.UUID, range_header: str | None
    ) -> Download:
        """The stored content, whole or one byte range."""
        async with self.session_factory() as session:
            attachment, blob, _ = await self._visible(session, principal, attachment_id)
        return await _primed(self._download(attachment, blob, range_header))

    async def thumbnail(self, principal: Principal, attachment_id: uuid.UUID) -> Download:
        """The JPEG thumbnail of a stored image (404 when it has none)."""
        async with self.session_factory() as session:
            attachment, blob, _ = await self._visible(session, principal, attachment_id)
        stored = _require_stored(attachment, blob)
        if not stored.thumbnail_key:
            raise NotFoundError("The attachment has no thumbnail")
        size = await self.store.size(stored.thumbnail_key)
        if size is None:
            raise NotFoundError("The attachment's thumbnail is missing")
        return await _primed(
            Download(
                content_type="image/jpeg",
                disposition=content_disposition(f"{attachment.display_name}.thumb.jpg"),
                size=size,
                start=0,
                end=size,
                partial=False,
                chunks=self.store.get(stored.thumbnail_key),
                etag=f'"{attachment.sha256}-thumb"',
            )
        )

    async def create_link(self, principal: Principal, attachment_id: uuid.UUID) -> DownloadLink:
        """A URL that downloads the attachment without a token until it expires."""
        async with self.session_factory() as session:
            attachment, blob, _ = await self._visible(session, principal, attachment_id)
        _require_stored(attachment, blob)
        expires = int(time.time()) + self.settings.attachments.download_link_ttl_s
        token = self.signer.sign(attachment_id, expires)
        return DownloadLink(
            url=f"/attachment-links/{token}", expires_at=datetime.fromtimestamp(expires, UTC)
        )

    async def download_by_link(self, token: str, range_header: str | None) -> Download:
        """The content a genuine, unexpired link names (404 for anything else)."""
        attachment_id = self.signer.verify(token)
        if attachment_id is None:
            raise NotFoundError("The link is unknown or has expired")
        async with self.session_factory() as session:
            found = await AttachmentRepository.from_session(session).get_with_blob(attachment_id)
        if found is None:
            raise NotFoundError("The link is unknown or has expired")
        return await _primed(self._download(found[0], found[1], range_header))

    def _download(
        self, attachment: Attachment, blob: Blob | None, range_header: str | None
    ) -> Download:
        stored = _require_stored(attachment, blob)
        # an image is served as re-encoded; gzip is undone on the way out
        size = stored.stored_size if stored.compression == "image" else attachment.size
        chosen = parse_range(range_header, size)
        start, end = chosen if chosen is not None else (0, size)
        if stored.compression == "gzip":
            chunks = _gunzip_range(self.store.get(stored.storage_key), start, end)
        else:
            chunks = self.store.get(stored.storage_key, start, end)
        return Download(
            content_type=stored.content_type,
            disposition=content_disposition(attachment.display_name),
            size=size,
            start=start,
            end=end,
            partial=chosen is not None,
            chunks=chunks,
            etag=f'"{attachment.sha256}"',
        )

    # --- deletion --------------------------------------------------------------------------

    async def delete(self, principal: Principal, attachment_id: uuid.UUID) -> None:
        """Delete (uploader, maintainers, owners, admins); the content goes with its last
        reference."""
        async with self.session_factory() as session:
            attachment, _, role = await self._visible(session, principal, attachment_id)
        require_delete_right(principal, role, attachment)
        await self.remove(attachment_id)

    async def purge(self, principal: Principal, attachment_id: uuid.UUID) -> None:
        """Admins delete any attachment in any state."""
        if not principal.is_admin:
            raise ForbiddenError("Only admins purge attachments")
        await self.remove(attachment_id)

    async def remove(self, attachment_id: uuid.UUID) -> None:
        """Mark deleted and drop the blob reference in one transaction; objects no row needs
        any more are deleted after the commit (a crash in between leaves them to
        ``taskstream attachments orphans``)."""
        async with transaction(self.session_factory) as session:
            repo = AttachmentRepository.from_session(session)
            attachment = await repo.get(attachment_id, lock=True)
            if attachment is None or attachment.deleted_at is not None:
                raise NotFoundError("Attachment not found")
            await repo.mark_deleted(attachment_id)
            released = await repo.release_blob(attachment.blob_id) if attachment.blob_id else None
            state, staging = attachment.state, attachment.staging_key
        keys = []
        if released is not None:
            keys.append(released.storage_key)
            if released.thumbnail_key:
                keys.append(released.thumbnail_key)
        if state is AttachmentState.QUARANTINED:
            keys.append(quarantine_key(attachment_id))
        elif state is AttachmentState.FAILED:
            keys.append(staging)
        for key in keys:
            try:
                await self.store.delete(key)
            except StorageUnavailable:
                # the rows are committed: the object is an orphan now, the sweep removes it
                logger.warning("could not delete %s; `taskstream attachments orphans` will", key)
        # in-flight processing sees deleted_at and removes its staging object itself


async def _primed(download: Download) -> Download:
    """The download with its first chunk already read, so that a store that is down (503) or
    an object that is missing (404) is answered as such, before a 200 has been sent."""
    chunks = download.chunks
    try:
        first = await anext(chunks, b"")
    except StorageUnavailable as error:
        raise UnavailableError("The attachment store is unavailable", 5) from error
    except ObjectNotFound:
        raise NotFoundError("The attachment's content is missing") from None

    async def replay() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return dataclasses.replace(download, chunks=replay())


def _require_stored(attachment: Attachment, blob: Blob | None) -> Blob:
    if attachment.state is not AttachmentState.STORED or blob is None:
        raise NotDownloadableError(
            f"The attachment is {attachment.state.value}: only stored attachments download"
        )
    return blob


async def _gunzip_range(chunks: AsyncIterator[bytes], start: int, end: int) -> AsyncIterator[bytes]:
    """The decompressed bytes ``[start, end)`` of a gzip stream."""
    inflater = zlib.decompressobj(wbits=31)
    position = 0
    async for compressed in chunks:
        data = inflater.decompress(compressed)
        if not data:
            continue
        piece_start, piece_end = max(start - position, 0), min(end - position, len(data))
        position += len(data)
        if piece_start < piece_end:
            yield data[piece_start:piece_end]
        if position >= end:
            return
    tail = inflater.flush()
    if tail:
        piece_start, piece_end = max(start - position, 0), min(end - position, len(tail))
        if piece_start < piece_end:
            yield tail[piece_start:piece_end]
