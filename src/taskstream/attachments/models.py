"""Attachments, the deduplicated blobs they point at, and resumable upload sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from taskstream.db import Base, created_at_column, pg_enum
from taskstream.enums import AttachmentState, UploadSessionState


class Blob(Base):
    """One stored copy of some content within a project: every attachment with the same
    SHA-256 in the project points here; the object goes when ``refcount`` reaches zero."""

    __tablename__ = "attachment_blobs"
    __table_args__ = (UniqueConstraint("project_id", "sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    # bytes of the object in the store (after compression); the content's own size is on
    # each attachment
    stored_size: Mapped[int] = mapped_column(BigInteger)
    # none | gzip | image (re-encoded): how the stored bytes relate to the uploaded ones
    compression: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(255))
    refcount: Mapped[int] = mapped_column(Integer)
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = created_at_column()


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        Index(None, "task_id", "created_at"),
        Index(None, "project_id"),
        Index(None, "blob_id"),
        # versions of one name on one task are numbered once each
        Index(
            "uq_attachments_task_name_version",
            "task_id",
            "display_name",
            "version",
            unique=True,
            postgresql_where=text("version IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # as the uploader gave it (shown, and in Content-Disposition's filename*)
    display_name: Mapped[str] = mapped_column(String(255))
    # no separators, dot-dot or control characters: safe in a key or a file system
    storage_name: Mapped[str] = mapped_column(String(255))
    declared_type: Mapped[str | None] = mapped_column(String(255))
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    # what a download is served as (see service.served_type)
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[AttachmentState] = mapped_column(
        pg_enum(AttachmentState, "attachment_state"),
        server_default=AttachmentState.RECEIVED.value,
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    staging_key: Mapped[str] = mapped_column(String(512))
    blob_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("attachment_blobs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UploadSession(Base):
    """A resumable upload: chunks arrive as part objects at increasing offsets."""

    __tablename__ = "attachment_upload_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(255))
    declared_type: Mapped[str | None] = mapped_column(String(255))
    declared_length: Mapped[int] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # part object keys in offset order (appended with the offset in one statement)
    parts: Mapped[list[str]] = mapped_column(ARRAY(String(512)), server_default="{}")
    state: Mapped[UploadSessionState] = mapped_column(
        pg_enum(UploadSessionState, "upload_session_state"),
        server_default=UploadSessionState.OPEN.value,
    )
    attachment_id: Mapped[uuid.UUID | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
