"""The processing pipeline of one attachment: scan -> deduplicate -> compress -> store.

``AttachmentProcessor.process`` reads the row and resumes from its state, so it is idempotent
per attachment and stage: a redelivered command, or one processed again after a crash, redoes
at most the stage it was in, and every stage's object writes go to keys derived from the
attachment id (a redo overwrites the same object with the same bytes). Each state change is
committed, then pushed to the uploader's live stream.

Faults: ``ScannerUnavailable`` (clamd down), ``StorageUnavailable`` and database availability
errors propagate: the consumer retries the same attachment with backoff and commits nothing
past it, and the row stays in its stage (``scanning`` while clamd is down; nothing is served
before ``stored``). A missing staging object, or clamd refusing the file for good, ends the
attachment ``failed``.

Reference counts change only in the transaction that moves the row to ``stored`` (locked, and
only from a non-final state), so a redo can never count a reference twice. Identical content in
a project is stored once: the first upload writes ``blobs/<project>/<attachment>``, later ones
reference that blob (``attachment_blobs``, unique per project and SHA-256).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.attachments.compression import store_final
from taskstream.attachments.models import Attachment, Blob
from taskstream.attachments.repository import FINAL_STATES, AttachmentRepository
from taskstream.attachments.scanner import ClamdScanner, ScannerUnavailable, ScanRefused
from taskstream.attachments.schemas import STAGES
from taskstream.attachments.service import quarantine_key
from taskstream.attachments.storage import ObjectNotFound, ObjectStore
from taskstream.db import transaction
from taskstream.enums import AttachmentState
from taskstream.messages import DomainEvent
from taskstream.notifications.live import user_channel
from taskstream.observability.metrics import ATTACHMENT_SCAN_FAILURES, ATTACHMENT_STAGE_DURATION
from taskstream.outbox.ids import derived_event_id
from taskstream.outbox.repository import OutboxRepository
from taskstream.settings import AttachmentSettings

logger = logging.getLogger(__name__)

PROGRESS_EVENT = "attachment.progress"
_EVENT_OF = {
    AttachmentState.STORED: "attachment.ready",
    AttachmentState.QUARANTINED: "attachment.quarantined",
    AttachmentState.FAILED: "attachment.failed",
}
_encoder = msgspec.json.Encoder()


def blob_key(project_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"blobs/{project_id}/{attachment_id}"


class AttachmentProcessor:
    def __init__(
        self,
        settings: AttachmentSettings,
        store: ObjectStore,
        scanner: ClamdScanner,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        redis: Redis | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scanner = scanner
        self.session_factory = session_factory
        self.redis = redis

    async def process(self, attachment_id: uuid.UUID) -> AttachmentState | None:
        """Run the attachment through its remaining stages; its final state (None: the row
        does not exist or was deleted).

        A stage that moved the row on returns the new state and the loop goes on with the row
        in hand; anything else (a final state, a row someone else moved) reads it again."""
        attachment = await self._load(attachment_id)
        while True:
            if attachment is None:
                return None
            if attachment.deleted_at is not None:
                await self._drop_staging(attachment)
                return None
            state = attachment.state
            if state in FINAL_STATES:
                if state is AttachmentState.STORED:
                    await self.store.delete(attachment.staging_key)  # a redo after the commit
                return state
            moved_to: AttachmentState | None
            with ATTACHMENT_STAGE_DURATION.labels(state.value).time():
                if state is AttachmentState.RECEIVED:
                    moved_to = await self._advance(attachment, AttachmentState.SCANNING)
                elif state is AttachmentState.SCANNING:
                    moved_to = await self._scan(attachment)
                elif state is AttachmentState.DEDUPLICATING:
                    moved_to = await self._deduplicate(attachment)
                else:
                    moved_to = await self._compress_and_store(attachment)
            if moved_to is None:
                attachment = await self._load(attachment_id)
            else:
                attachment.state = moved_to

    async def _load(self, attachment_id: uuid.UUID) -> Attachment | None:
        async with self.session_factory() as session:
            return await AttachmentRepository.from_session(session).get(attachment_id)

    async def fail(self, attachment_id: uuid.UUID, reason: str) -> None:
        """End an attachment ``failed`` (a cause no retry repairs)."""
        async with self.session_factory() as session:
            attachment = await AttachmentRepository.from_session(session).get(attachment_id)
        if attachment is not None and attachment.state not in FINAL_STATES:
            await self._finish(attachment, AttachmentState.FAILED, reason)

    # --- stages ----------------------------------------------------------------------------

    async def _scan(self, attachment: Attachment) -> AttachmentState | None:
        try:
            verdict = await self.scanner.scan(self.store.get(attachment.staging_key))
        except ObjectNotFound:
            if await self.store.size(quarantine_key(attachment.id)) is not None:
                # moved to quarantine, then the process died before the commit
                await self._finish(attachment, AttachmentState.QUARANTINED, "infected")
                return None
            await self._finish(attachment, AttachmentState.FAILED, "the uploaded content is lost")
            return None
        except ScanRefused as error:  # a ScannerUnavailable that no retry repairs
            ATTACHMENT_SCAN_FAILURES.labels("refused").inc()
            await self._finish(attachment, AttachmentState.FAILED, f"not scannable: {error}")
            return None
        except ScannerUnavailable:
            ATTACHMENT_SCAN_FAILURES.labels("unavailable").inc()
            raise
        if verdict.clean:
            return await self._advance(attachment, AttachmentState.DEDUPLICATING)
        target = quarantine_key(attachment.id)
        await self.store.put(target, self.store.get(attachment.staging_key))
        await self.store.delete(attachment.staging_key)
        await self._finish(
            attachment, AttachmentState.QUARANTINED, f"infected: {verdict.signature}"[:500]
        )
        return None

    async def _deduplicate(self, attachment: Attachment) -> AttachmentState | None:
        async with self.session_factory() as session:
            existing = await AttachmentRepository.from_session(session).blob_by_hash(
                attachment.project_id, attachment.sha256
            )
        if existing is None or not await self._store(attachment, existing, written=None):
            # no such content yet, or the blob went (its last reference was deleted) between
            # the look-up and the lock
            return await self._advance(attachment, AttachmentState.COMPRESSING)
        return None

    async def _compress_and_store(self, attachment: Attachment) -> AttachmentState | None:
        key = blob_key(attachment.project_id, attachment.id)
        try:
            final = await store_final(
                self.store,
                attachment.staging_key,
                key,
                content_type=attachment.content_type,
                size=attachment.size,
                settings=self.settings,
            )
        except ObjectNotFound:
            await self._finish(attachment, AttachmentState.FAILED, "the uploaded content is lost")
            return None
        blob = Blob(
            id=attachment.id,  # the blob's first attachment names it
            project_id=attachment.project_id,
            sha256=attachment.sha256,
            storage_key=key,
            stored_size=final.stored_size,
            compression=final.compression,
            content_type=final.content_type,
            thumbnail_key=final.thumbnail_key,
        )
        await self._store(attachment, blob, written=blob)
        return None

    async def _store(self, attachment: Attachment, blob: Blob, written: Blob | None) -> bool:
        """Reference ``blob``, number the version, mark stored and announce it, in one
        transaction; False when a deduplication target vanished before it was locked."""
        kept: Blob | None = None
        async with transaction(self.session_factory) as session:
            repo = AttachmentRepository.from_session(session)
            current = await repo.get(attachment.id, lock=True)
            if current is None or current.deleted_at is not None or current.state in FINAL_STATES:
                pass  # finished or deleted meanwhile: nothing to count
            elif (
                written is None
                and await repo.blob_by_hash(blob.project_id, blob.sha256, lock=True) is None
            ):
                return False
            else:
                kept = await repo.reference_blob(blob)
                version = await repo.next_version(attachment.task_id, attachment.display_name)
                await repo.set_state(
                    attachment.id,
                    AttachmentState.STORED,
                    None,
                    blob_id=kept.id,
                    version=version,
                )
                await self._announce(session, attachment, AttachmentState.STORED, None)
        if written is not None and (kept is None or kept.storage_key != written.storage_key):
            # another upload of the same content won the race: ours is not needed
            await self.store.delete(written.storage_key)
            if written.thumbnail_key:
                await self.store.delete(written.thumbnail_key)
        await self.store.delete(attachment.staging_key)
        if kept is not None:
            await self._push(attachment, AttachmentState.STORED, None)
        return True

    # --- state changes ---------------------------------------------------------------------

    async def _advance(
        self, attachment: Attachment, state: AttachmentState
    ) -> AttachmentState | None:
        """Move the row from the state in hand to ``state``; None when it is no longer in
        that state (someone else moved or deleted it: the caller reads it again)."""
        async with transaction(self.session_factory) as session:
            moved = await AttachmentRepository.from_session(session).move_state(
                attachment.id, attachment.state, state
            )
        if not moved:
            return None
        await self._push(attachment, state, None)
        return state

    async def _finish(
        self, attachment: Attachment, state: AttachmentState, reason: str | None
    ) -> None:
        async with transaction(self.session_factory) as session:
            repo = AttachmentRepository.from_session(session)
            current = await repo.get(attachment.id, lock=True)
            if current is None or current.state in FINAL_STATES:
                return
            await repo.set_state(attachment.id, state, reason)
            if current.deleted_at is None:
                await self._announce(session, attachment, state, reason)
        await self._push(attachment, state, reason)

    async def _announce(
        self,
        session: AsyncSession,
        attachment: Attachment,
        state: AttachmentState,
        reason: str | None,
    ) -> None:
        people = await AttachmentRepository.from_session(session).task_people(attachment.task_id)
        event_type = _EVENT_OF[state]
        data: dict[str, Any] = {
            "attachmentId": str(attachment.id),
            "taskId": str(attachment.task_id),
            "projectId": str(attachment.project_id),
            "uploaderId": str(attachment.uploader_id),
            "name": attachment.display_name,
            "state": state.value,
        }
        if reason:
            data["reason"] = reason
        if people is not None:
            for key, value in (
                ("assigneeId", people.assignee_id),
                ("reviewerId", people.reviewer_id),
                ("createdBy", people.created_by),
            ):
                if value is not None:
                    data[key] = str(value)
        event = DomainEvent(
            event_id=derived_event_id(attachment.id, event_type),
            type=event_type,
            occurred_at=datetime.now(UTC),
            aggregate_id=attachment.id,
            project_id=attachment.project_id,
            data=data,
        )
        await OutboxRepository.from_session(session).add([event])

    async def _push(
        self, attachment: Attachment, state: AttachmentState, reason: str | None
    ) -> None:
        """Tell the uploader's live streams (best effort: the state is in the database)."""
        if self.redis is None:
            return
        progress = STAGES.index(state) if state in STAGES else len(STAGES) - 1
        message = {
            "id": str(uuid.uuid5(attachment.id, state.value)),
            "sseEvent": PROGRESS_EVENT,
            "attachmentId": str(attachment.id),
            "taskId": str(attachment.task_id),
            "state": state.value,
            "progress": progress,
            "stages": len(STAGES) - 1,
            "reason": reason,
        }
        try:
            await self.redis.publish(user_channel(attachment.uploader_id), _encoder.encode(message))
        except Exception as error:  # the stream is a convenience; the row is the truth
            logger.warning("live progress of %s not pushed: %r", attachment.id, error)

    async def _drop_staging(self, attachment: Attachment) -> None:
        await self.store.delete(attachment.staging_key)
