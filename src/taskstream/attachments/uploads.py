"""Taking uploads in: one streamed request, or a resumable session of chunks.

Both stage the bytes in the object store without holding them in memory, computing SHA-256
and the size on the way, then record the row (``received``) and queue ``attachment.uploaded``;
the caller gets the id only after the broker acknowledged the command.

Bounds: ``max_upload_bytes`` per file and ``project_quota_bytes`` per project (live attachments
plus the declared length of open sessions). A declared length (Content-Length, a session's
length) over either is refused before a byte is read; a body that turns out longer is refused
(413) as soon as it crosses the bound, and its partial object is discarded (puts are atomic).
Concurrent uploads are checked against the usage each saw when it started.

A session's chunk is stored as one part object; a connection that drops mid-chunk discards
that chunk wholly (its put never completes), so the offset is always the end of the last whole
chunk and the client resumes from ``HEAD``'s ``Upload-Offset``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from taskstream.attachments.access import task_access
from taskstream.attachments.commands import UPLOADED, encode_uploaded
from taskstream.attachments.errors import (
    OffsetConflictError,
    PayloadTooLargeError,
    QuotaExceededError,
)
from taskstream.attachments.models import Attachment, UploadSession
from taskstream.attachments.names import BadNameError, display_name, storage_name
from taskstream.attachments.repository import AttachmentRepository, TaskPeople
from taskstream.attachments.schemas import (
    AttachmentAccepted,
    CreateUploadRequest,
    UploadSessionOut,
)
from taskstream.attachments.sniff import SNIFF_BYTES, media_type, served_type, sniff
from taskstream.attachments.storage import ObjectNotFound, ObjectStore, StorageUnavailable
from taskstream.db import transaction
from taskstream.enums import AttachmentState, ProjectRole, UploadSessionState
from taskstream.errors import (
    FieldError,
    NotFoundError,
    UnavailableError,
    ValidationFailedError,
)
from taskstream.principal import Principal
from taskstream.settings import Settings

logger = logging.getLogger(__name__)

# Sends encoded (key, value, command type) records to the attachment command topic and returns
# once the broker acknowledged them (CommandPublisher.publish_records bound to the topic).
Enqueue = Callable[[Sequence[tuple[bytes, bytes, str]], str], Awaitable[None]]


def staging_key(attachment_id: uuid.UUID) -> str:
    return f"staging/{attachment_id}"


def part_key(session_id: uuid.UUID, offset: int) -> str:
    return f"uploads/{session_id}/{offset:016d}-{uuid.uuid4().hex[:8]}"


# what the meter hands the store at a time (at most this much of a body is in memory)
WRITE_BYTES = 1024 * 1024


class BodyTooLargeError(Exception):
    """Raised inside a put when the body crosses its bound (aborts the put)."""


@dataclass
class Meter:
    """Counts, hashes and samples a body as it streams past, and stops it at ``limit``."""

    limit: int
    size: int = 0
    head: bytes = b""
    exceeded: bool = False
    _sha: hashlib._Hash = field(default_factory=hashlib.sha256)

    async def pass_through(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """The chunks, counted and hashed, regrouped into pieces of about ``WRITE_BYTES``: an
        HTTP server hands the body over in pieces of a few KiB, and a store pays per write (a
        thread hop, a syscall) rather than per byte."""
        pending = bytearray()
        async for chunk in chunks:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > self.limit:
                self.exceeded = True
                raise BodyTooLargeError
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            self._sha.update(chunk)
            pending += chunk
            if len(pending) >= WRITE_BYTES:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def _name_or_422(raw: str | None) -> str:
    try:
        return display_name(raw or "")
    except BadNameError as error:
        raise ValidationFailedError([FieldError("name", str(error))]) from None


def _empty() -> ValidationFailedError:
    return ValidationFailedError([FieldError("body", "The file is empty (0 bytes)")])


class UploadService:
    """Streams uploads into staging and queues them for processing."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        session_factory: async_sessionmaker[AsyncSession],
        enqueue: Enqueue,
    ) -> None:
        self.settings = settings.attachments
        self.store = store
        self.session_factory = session_factory
        self.enqueue = enqueue

    async def _room(self, people: TaskPeople, declared: int | None) -> tuple[int, bool]:
        """The most bytes this upload may have, and whether the quota (not the file limit)
        sets it; refuses a declared length over either at once."""
        async with self.session_factory() as session:
            used = await AttachmentRepository.from_session(session).project_usage(people.project_id)
        quota_left = max(0, self.settings.project_quota_bytes - used)
        limit = min(self.settings.max_upload_bytes, quota_left)
        if declared is not None and declared > self.settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"Files are limited to {self.settings.max_upload_bytes} bytes"
            )
        if declared is not None and declared > quota_left:
            raise QuotaExceededError(f"The project has {quota_left} bytes of attachment quota left")
        return limit, quota_left < self.settings.max_upload_bytes

    async def _authorise(self, principal: Principal, task_id: uuid.UUID) -> TaskPeople:
        async with self.session_factory() as session:
            return await task_access(session, principal, task_id, ProjectRole.MEMBER)

    async def _stage(
        self, key: str, meter: Meter, chunks: AsyncIterable[bytes], quota: bool
    ) -> None:
        try:
            await self.store.put(key, meter.pass_through(chunks))
        except Exception as error:
            if not meter.exceeded:
                if isinstance(error, StorageUnavailable):
                    raise _store_down() from error
                raise
            await self.store.delete(key)  # atomic puts leave nothing; this is belt and braces
            if quota:
                raise QuotaExceededError(
                    "The upload exceeds the project's attachment quota"
                ) from None
            raise PayloadTooLargeError(
                f"Files are limited to {self.settings.max_upload_bytes} bytes"
            ) from None

    async def upload(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        *,
        raw_name: str | None,
        declared_type: str | None,
        content_length: int | None,
        body: AsyncIterable[bytes],
        trace_id: str,
    ) -> AttachmentAccepted:
        """Stage one streamed body and queue it; 202 once the broker has the command."""
        name = _name_or_422(raw_name)
        people = await self._authorise(principal, task_id)
        if content_length == 0:
            raise _empty()
        limit, quota = await self._room(people, content_length)
        attachment_id = uuid7()
        key = staging_key(attachment_id)
        meter = Meter(limit)
        await self._stage(key, meter, body, quota)
        if meter.size == 0:
            await self.store.delete(key)
            raise _empty()
        return await self._record_and_queue(
            attachment_id,
            people,
            principal,
            name=name,
            declared_type=declared_type,
            meter=meter,
            key=key,
            trace_id=trace_id,
        )

    async def _record_and_queue(
        self,
        attachment_id: uuid.UUID,
        people: TaskPeople,
        principal: Principal,
        *,
        name: str,
        declared_type: str | None,
        meter: Meter,
        key: str,
        trace_id: str,
        upload_session_id: uuid.UUID | None = None,
    ) -> AttachmentAccepted:
        declared = media_type(declared_type) or None
        sniffed = sniff(meter.head)
        attachment = Attachment(
            id=attachment_id,
            task_id=people.task_id,
            project_id=people.project_id,
            uploader_id=principal.user_id,
            display_name=name,
            storage_name=storage_name(name),
            declared_type=declared[:255] if declared else None,
            sniffed_type=sniffed,
            content_type=served_type(declared, sniffed),
            size=meter.size,
            sha256=meter.sha256,
            state=AttachmentState.RECEIVED,
            staging_key=key,
        )
        async with transaction(self.session_factory) as session:
            repo = AttachmentRepository.from_session(session)
            if upload_session_id is not None and not await repo.claim_session_completion(
                upload_session_id, attachment_id
            ):
                # another request completed this session first: its attachment stands
                await self.store.delete(key)
                upload = await repo.get_session(upload_session_id)
                assert upload is not None
                assert upload.attachment_id is not None
                return AttachmentAccepted(
                    id=upload.attachment_id,
                    state=AttachmentState.RECEIVED,
                    location=f"/attachments/{upload.attachment_id}",
                )
            await repo.add(attachment)
        try:
            await self.enqueue(
                [
                    (
                        str(attachment_id).encode(),
                        encode_uploaded(attachment_id, people.project_id),
                        UPLOADED,
                    )
                ],
                trace_id,
            )
        except UnavailableError:
            # never left `received` without a command on its way: fail it and free the bytes
            async with transaction(self.session_factory) as session:
                await AttachmentRepository.from_session(session).set_state(
                    attachment_id, AttachmentState.FAILED, "the message broker was unavailable"
                )
            await self.store.delete(key)
            raise
        return AttachmentAccepted(
            id=attachment_id,
            state=AttachmentState.RECEIVED,
            location=f"/attachments/{attachment_id}",
        )

    # --- resumable sessions ----------------------------------------------------------------

    async def create_session(
        self, principal: Principal, task_id: uuid.UUID, request: CreateUploadRequest
    ) -> UploadSessionOut:
        """Open a resumable upload of ``length`` bytes."""
        name = _name_or_422(request.name)
        if request.length == 0:
            raise ValidationFailedError([FieldError("length", "The file is empty (0 bytes)")])
        people = await self._authorise(principal, task_id)
        await self._room(people, request.length)
        upload = UploadSession(
            id=uuid.uuid4(),
            task_id=people.task_id,
            project_id=people.project_id,
            uploader_id=principal.user_id,
            display_name=name,
            declared_type=media_type(request.content_type) or None,
            declared_length=request.length,
            upload_offset=0,
            parts=[],
            state=UploadSessionState.OPEN,
            expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.upload_session_ttl_s),
        )
        async with transaction(self.session_factory) as session:
            await AttachmentRepository.from_session(session).add_session(upload)
        return _session_out(upload)

    async def _own_session(self, principal: Principal, session_id: uuid.UUID) -> UploadSession:
        async with self.session_factory() as session:
            upload = await AttachmentRepository.from_session(session).get_session(session_id)
        if (
            upload is None
            or upload.uploader_id != principal.user_id
            or (upload.state is UploadSessionState.OPEN and upload.expires_at <= datetime.now(UTC))
        ):
            raise NotFoundError("Upload session not found")
        return upload

    async def session_status(self, principal: Principal, session_id: uuid.UUID) -> UploadSessionOut:
        """Where the upload stands (``HEAD``/``GET``): only its uploader sees it."""
        return _session_out(await self._own_session(principal, session_id))

    async def append(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        offset: int | None,
        body: AsyncIterable[bytes],
        trace_id: str,
    ) -> UploadSessionOut:
        """Append one chunk at ``offset``; the last byte completes the upload and queues it."""
        upload = await self._own_session(principal, session_id)
        if offset is None:
            raise ValidationFailedError([FieldError("Upload-Offset", "The header is required")])
        if upload.state is UploadSessionState.COMPLETED or offset != upload.upload_offset:
            raise OffsetConflictError(upload.upload_offset, upload.declared_length)
        remaining = upload.declared_length - offset
        meter = Meter(min(self.settings.chunk_max_bytes, remaining))
        key = part_key(session_id, offset)
        if remaining > 0:
            try:
                await self.store.put(key, meter.pass_through(body))
            except Exception as error:
                if not meter.exceeded:
                    if isinstance(error, StorageUnavailable):
                        raise _store_down() from error
                    raise
                await self.store.delete(key)
                raise PayloadTooLargeError(
                    f"A chunk may hold at most {meter.limit} bytes here (chunk limit "
                    f"{self.settings.chunk_max_bytes}, {remaining} left of the declared length)"
                ) from None
        if meter.size:
            async with transaction(self.session_factory) as session:
                moved = await AttachmentRepository.from_session(session).advance_session(
                    session_id, offset, meter.size, key
                )
            if moved is None:  # another chunk landed at this offset first
                await self.store.delete(key)
                current = await self._own_session(principal, session_id)
                raise OffsetConflictError(current.upload_offset, current.declared_length)
            upload.upload_offset = moved
            upload.parts = [*upload.parts, key]
        if upload.upload_offset == upload.declared_length:
            accepted = await self._complete(principal, upload, trace_id)
            upload.state = UploadSessionState.COMPLETED
            upload.attachment_id = accepted.id
        return _session_out(upload)

    async def _complete(
        self, principal: Principal, upload: UploadSession, trace_id: str
    ) -> AttachmentAccepted:
        """Join the parts into one staging object (hashing it), record and queue it."""
        people = await self._authorise(principal, upload.task_id)
        attachment_id = uuid7()
        key = staging_key(attachment_id)
        meter = Meter(upload.declared_length)
        try:
            await self.store.put(key, meter.pass_through(self._parts(upload.parts)))
        except (StorageUnavailable, ObjectNotFound) as error:
            raise _store_down() from error
        accepted = await self._record_and_queue(
            attachment_id,
            people,
            principal,
            name=upload.display_name,
            declared_type=upload.declared_type,
            meter=meter,
            key=key,
            trace_id=trace_id,
            upload_session_id=upload.id,
        )
        for part in upload.parts:
            await self.store.delete(part)
        return accepted

    async def _parts(self, keys: Sequence[str]) -> AsyncIterator[bytes]:
        for key in keys:
            async for chunk in self.store.get(key):
                yield chunk


def _store_down() -> UnavailableError:
    """The store failing under an upload is a 503: the client retries the upload (or chunk)."""
    return UnavailableError("The attachment store is unavailable; retry the upload", 5)


def _session_out(upload: UploadSession) -> UploadSessionOut:
    return UploadSessionOut(
        id=upload.id,
        task_id=upload.task_id,
        name=upload.display_name,
        offset=upload.upload_offset,
        length=upload.declared_length,
        expires_at=upload.expires_at,
        completed=upload.state is UploadSessionState.COMPLETED,
        attachment_id=upload.attachment_id,
    )
