"""The delivery tables: the consumer inbox (a message applied once) and the transactional outbox
(an event written with its cause, sent after commit by the relay)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from taskstream.db import Base, created_at_column


class InboxEntry(Base):
    """A message id a consumer has applied; the primary key makes redelivery a no-op."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    topic: Mapped[str | None] = mapped_column(String(255))
    partition: Mapped[int | None] = mapped_column(Integer)
    offset: Mapped[int | None] = mapped_column(BigInteger)
    processed_at: Mapped[datetime] = created_at_column()


class OutboxEvent(Base):
    """A domain event written in the same transaction as its cause, sent later by the relay."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[uuid.UUID]
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # The cause's trace context as a W3C traceparent (55 characters; older rows: a bare id).
    trace_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
