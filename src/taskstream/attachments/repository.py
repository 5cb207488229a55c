"""All SQL of attachments, blobs and upload sessions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from taskstream.attachments.models import Attachment, Blob, UploadSession
from taskstream.db import Repository
from taskstream.enums import AttachmentState, UploadSessionState
from taskstream.tasks.models import Task

FINAL_STATES = (AttachmentState.STORED, AttachmentState.QUARANTINED, AttachmentState.FAILED)
# what counts against a project's quota: everything not refused
_COUNTED = (AttachmentState.QUARANTINED, AttachmentState.FAILED)


@dataclass(frozen=True, slots=True)
class TaskPeople:
    task_id: uuid.UUID
    project_id: uuid.UUID
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | None
    created_by: uuid.UUID


class AttachmentRepository(Repository):
    # --- tasks -----------------------------------------------------------------------------

    async def task_people(self, task_id: uuid.UUID) -> TaskPeople | None:
        """The live task's project and the people watching it."""
        row = (
            await self.session.execute(
                select(
                    Task.id, Task.project_id, Task.assignee_id, Task.reviewer_id, Task.created_by
                ).where(Task.id == task_id, Task.deleted_at.is_(None))
            )
        ).one_or_none()
        return None if row is None else TaskPeople(*row)

    async def project_usage(self, project_id: uuid.UUID) -> int:
        """Bytes the project's attachments and open upload sessions hold or reserve."""
        stored = select(func.coalesce(func.sum(Attachment.size), 0)).where(
            Attachment.project_id == project_id,
            Attachment.deleted_at.is_(None),
            Attachment.state.not_in(_COUNTED),
        )
        reserved = select(func.coalesce(func.sum(UploadSession.declared_length), 0)).where(
            UploadSession.project_id == project_id,
            UploadSession.state == UploadSessionState.OPEN,
            UploadSession.expires_at > func.now(),
        )
        used = (
            await self.session.execute(
                select(stored.scalar_subquery() + reserved.scalar_subquery())
            )
        ).scalar_one()
        return int(used)

    # --- attachments -----------------------------------------------------------------------

    async def add(self, attachment: Attachment) -> None:
        self.session.add(attachment)
        await self.session.flush()

    async def get(self, attachment_id: uuid.UUID, *, lock: bool = False) -> Attachment | None:
        stmt = select(Attachment).where(Attachment.id == attachment_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_with_blob(
        self, attachment_id: uuid.UUID
    ) -> tuple[Attachment, Blob | None] | None:
        row = (
            await self.session.execute(
                select(Attachment, Blob)
                .outerjoin(Blob, Blob.id == Attachment.blob_id)
                .where(Attachment.id == attachment_id, Attachment.deleted_at.is_(None))
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def list_for_task(
        self, task_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Attachment]:
        stmt = select(Attachment).where(
            Attachment.task_id == task_id, Attachment.deleted_at.is_(None)
        )
        if after is not None:
            stmt = stmt.where(
                or_(
                    Attachment.created_at > after[0],
                    and_(Attachment.created_at == after[0], Attachment.id > after[1]),
                )
            )
        stmt = stmt.order_by(Attachment.created_at, Attachment.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def list_all(
        self,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        *,
        project_id: uuid.UUID | None = None,
        state: AttachmentState | None = None,
    ) -> Sequence[Attachment]:
        stmt = select(Attachment).where(Attachment.deleted_at.is_(None))
        if project_id is not None:
            stmt = stmt.where(Attachment.project_id == project_id)
        if state is not None:
            stmt = stmt.where(Attachment.state == state)
        if after is not None:
            stmt = stmt.where(
                or_(
                    Attachment.created_at > after[0],
                    and_(Attachment.created_at == after[0], Attachment.id > after[1]),
                )
            )
        stmt = stmt.order_by(Attachment.created_at, Attachment.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def set_state(
        self,
        attachment_id: uuid.UUID,
        state: AttachmentState,
        reason: str | None = None,
        **values: Any,
    ) -> None:
        await self.session.execute(
            update(Attachment)
            .where(Attachment.id == attachment_id)
            .values(state=state, state_reason=reason, updated_at=func.now(), **values)
        )

    async def move_state(
        self, attachment_id: uuid.UUID, from_state: AttachmentState, to_state: AttachmentState
    ) -> bool:
        """Compare-and-set of a live row's state in one statement; False when it is not (or
        no longer) in ``from_state``."""
        moved = await self.session.execute(
            update(Attachment)
            .where(
                Attachment.id == attachment_id,
                Attachment.state == from_state,
                Attachment.deleted_at.is_(None),
            )
            .values(state=to_state, state_reason=None, updated_at=func.now())
            .returning(Attachment.id)
        )
        return moved.scalar_one_or_none() is not None

    async def mark_deleted(self, attachment_id: uuid.UUID) -> None:
        await self.session.execute(
            update(Attachment)
            .where(Attachment.id == attachment_id)
            .values(deleted_at=func.now(), updated_at=func.now())
        )

    async def next_version(self, task_id: uuid.UUID, display_name: str) -> int:
        """The next version number of a name on a task; the transaction holds a lock on the
        (task, name) pair until it ends, so two files stored at once get n+1 and n+2."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"attachment-version:{task_id}:{display_name}"},
        )
        latest = (
            await self.session.execute(
                select(func.coalesce(func.max(Attachment.version), 0)).where(
                    Attachment.task_id == task_id, Attachment.display_name == display_name
                )
            )
        ).scalar_one()
        return int(latest or 0) + 1

    async def live_staging_keys(self) -> set[str]:
        """Staging keys of attachments that processing may still read."""
        rows = await self.session.execute(
            select(Attachment.staging_key).where(Attachment.state.not_in(FINAL_STATES))
        )
        return set(rows.scalars())

    async def quarantined_ids(self) -> set[uuid.UUID]:
        rows = await self.session.execute(
            select(Attachment.id).where(Attachment.state == AttachmentState.QUARANTINED)
        )
        return set(rows.scalars())

    async def stale_received(self, older_than_s: int) -> Sequence[Attachment]:
        """Rows still ``received`` long after their upload: the API died between the commit
        and the publish (the command never reached Kafka)."""
        stmt = select(Attachment).where(
            Attachment.state == AttachmentState.RECEIVED,
            Attachment.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s),
        )
        return (await self.session.execute(stmt)).scalars().all()

    # --- blobs -----------------------------------------------------------------------------

    async def blob_by_hash(
        self, project_id: uuid.UUID, sha256: str, *, lock: bool = False
    ) -> Blob | None:
        stmt = select(Blob).where(Blob.project_id == project_id, Blob.sha256 == sha256)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def reference_blob(self, blob: Blob) -> Blob:
        """Insert the blob with one reference, or add a reference to the project's existing
        blob of the same content; the stored row either way."""
        values = {
            "id": blob.id,
            "project_id": blob.project_id,
            "sha256": blob.sha256,
            "storage_key": blob.storage_key,
            "stored_size": blob.stored_size,
            "compression": blob.compression,
            "content_type": blob.content_type,
            "refcount": 1,
            "thumbnail_key": blob.thumbnail_key,
        }
        stmt = (
            insert(Blob)
            .values(values)
            .on_conflict_do_update(
                index_elements=["project_id", "sha256"],
                set_={"refcount": Blob.refcount + 1},
            )
            .returning(Blob)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def release_blob(self, blob_id: uuid.UUID) -> Blob | None:
        """Drop one reference; the blob row when that was the last one (it is deleted)."""
        remaining = (
            await self.session.execute(
                update(Blob)
                .where(Blob.id == blob_id)
                .values(refcount=Blob.refcount - 1)
                .returning(Blob.refcount)
            )
        ).scalar_one_or_none()
        if remaining is None or remaining > 0:
            return None
        blob = await self.session.get(Blob, blob_id)
        if blob is not None:
            await self.session.delete(blob)
            await self.session.flush()
        return blob

    async def blob_keys(self) -> set[str]:
        rows = await self.session.execute(select(Blob.storage_key, Blob.thumbnail_key))
        keys: set[str] = set()
        for key, thumb in rows:
            keys.add(key)
            if thumb:
                keys.add(thumb)
        return keys

    # --- upload sessions -------------------------------------------------------------------

    async def add_session(self, upload: UploadSession) -> None:
        self.session.add(upload)
        await self.session.flush()

    async def get_session(
        self, session_id: uuid.UUID, *, lock: bool = False
    ) -> UploadSession | None:
        stmt = select(UploadSession).where(UploadSession.id == session_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def advance_session(
        self, session_id: uuid.UUID, expected_offset: int, length: int, part_key: str
    ) -> int | None:
        """Append a part at ``expected_offset``: the new offset, or None when the session has
        moved on (another chunk landed first) or is no longer open."""
        return (
            await self.session.execute(
                update(UploadSession)
                .where(
                    UploadSession.id == session_id,
                    UploadSession.upload_offset == expected_offset,
                    UploadSession.state == UploadSessionState.OPEN,
                )
                .values(
                    upload_offset=UploadSession.upload_offset + length,
                    parts=func.array_append(UploadSession.parts, part_key),
                    updated_at=func.now(),
                )
                .returning(UploadSession.upload_offset)
            )
        ).scalar_one_or_none()

    async def claim_session_completion(
        self, session_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> bool:
        """Mark the session completed by ``attachment_id``; False if another request did."""
        done = await self.session.execute(
            update(UploadSession)
            .where(
                UploadSession.id == session_id,
                UploadSession.state == UploadSessionState.OPEN,
                UploadSession.upload_offset == UploadSession.declared_length,
            )
            .values(
                state=UploadSessionState.COMPLETED,
                attachment_id=attachment_id,
                updated_at=func.now(),
            )
            .returning(UploadSession.id)
        )
        return done.scalar_one_or_none() is not None

    async def live_part_keys(self) -> set[str]:
        """Part keys of open, unexpired sessions (the parts a client may still complete)."""
        rows = await self.session.execute(
            select(func.unnest(UploadSession.parts)).where(
                UploadSession.state == UploadSessionState.OPEN,
                UploadSession.expires_at > func.now(),
            )
        )
        return set(rows.scalars())

    async def live_session_ids(self) -> set[uuid.UUID]:
        rows = await self.session.execute(
            select(UploadSession.id).where(
                UploadSession.state == UploadSessionState.OPEN,
                UploadSession.expires_at > func.now(),
            )
        )
        return set(rows.scalars())
