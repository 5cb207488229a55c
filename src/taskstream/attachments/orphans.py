"""Objects in the store that nothing needs any more, and rows that never reached Kafka.

An object is an orphan when it is older than ``upload_session_ttl_s`` (so nothing still being
written is touched) and:

- ``staging/<id>``: no attachment in a processing state has it (the row finished, failed,
  was deleted, or the API died before recording it);
- ``uploads/<session>/<part>``: no open, unexpired upload session lists it;
- ``blobs/...``: no blob row names it (a deletion that died after its commit, or the loser
  of two identical uploads racing);
- ``quarantine/<id>``: the attachment is not (or no longer) quarantined.

A row still ``received`` after ``stale_after_s`` was recorded, but its command was probably
never acknowledged (the API died between the commit and the publish). With ``delete`` its
``attachment.uploaded`` command is published again when its staging object is complete (the
processing is idempotent per attachment and stage, so a second copy of a command that did
arrive is harmless); only a row whose staging object is missing or short is marked
``failed``, since nothing could ever process it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.attachments.commands import UPLOADED, encode_uploaded
from taskstream.attachments.models import Attachment
from taskstream.attachments.repository import AttachmentRepository
from taskstream.attachments.storage import ObjectInfo, ObjectStore, open_store
from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.enums import AttachmentState
from taskstream.kafka.publisher import CommandPublisher
from taskstream.settings import Settings

PREFIXES = ("staging/", "uploads/", "blobs/", "quarantine/")
# Sends ``attachment.uploaded`` for one attachment and returns once the broker acknowledged it.
Requeue = Callable[[Attachment], Awaitable[None]]


@dataclass
class OrphanReport:
    objects: list[ObjectInfo] = field(default_factory=list)
    # stale ``received`` rows whose staging object is complete: their command is sent again
    requeued: list[uuid.UUID] = field(default_factory=list)
    # stale ``received`` rows without their complete staging object: marked failed
    lost: list[uuid.UUID] = field(default_factory=list)

    @property
    def orphan_bytes(self) -> int:
        return sum(item.size for item in self.objects)


async def find_orphans(settings: Settings, *, delete: bool, stale_after_s: int) -> OrphanReport:
    """Scan the configured store against the configured database (with ``delete``, stale
    rows' commands go to the configured attachment command topic)."""
    engine = create_engine(settings.db, pool_size=1, max_overflow=1)
    store = open_store(settings.attachments)
    publisher = CommandPublisher(settings.kafka)
    topic = settings.kafka.attachment_commands_topic

    async def requeue(attachment: Attachment) -> None:
        command = encode_uploaded(attachment.id, attachment.project_id)
        await publisher.publish_records(
            topic, [(str(attachment.id).encode(), command, UPLOADED)], ""
        )

    try:
        if delete:
            await publisher.start()
        return await collect_orphans(
            store,
            create_session_factory(engine),
            settings.attachments.upload_session_ttl_s,
            delete=delete,
            stale_after_s=stale_after_s,
            requeue=requeue,
        )
    finally:
        await publisher.stop()
        await store.close()
        await engine.dispose()


async def collect_orphans(
    store: ObjectStore,
    session_factory: async_sessionmaker[AsyncSession],
    ttl_s: int,
    *,
    delete: bool,
    stale_after_s: int | None = None,
    requeue: Requeue | None = None,
) -> OrphanReport:
    """The orphans of ``store`` (deleted too when ``delete``) and the ``received`` rows
    older than ``stale_after_s`` (default ``ttl_s``); with ``delete`` these are requeued
    through ``requeue``, or failed when their bytes are gone."""
    cutoff = datetime.now(UTC) - timedelta(seconds=ttl_s)
    report = OrphanReport()
    async with session_factory() as session:
        repo = AttachmentRepository.from_session(session)
        staging = await repo.live_staging_keys()
        parts = await repo.live_part_keys()
        blobs = await repo.blob_keys()
        quarantined = {f"quarantine/{i}" for i in await repo.quarantined_ids()}
        stale = await repo.stale_received(ttl_s if stale_after_s is None else stale_after_s)
    needed = staging | parts | blobs | quarantined
    for prefix in PREFIXES:
        async for item in store.list(prefix):
            modified = item.modified if item.modified.tzinfo else item.modified.replace(tzinfo=UTC)
            if item.key not in needed and modified < cutoff:
                report.objects.append(item)
    for row in stale:
        complete = await store.size(row.staging_key) == row.size
        (report.requeued if complete else report.lost).append(row.id)
    if delete:
        for item in report.objects:
            await store.delete(item.key)
        await _settle_stale(store, session_factory, stale, report, requeue)
    return report


async def _settle_stale(
    store: ObjectStore,
    session_factory: async_sessionmaker[AsyncSession],
    stale: Sequence[Attachment],
    report: OrphanReport,
    requeue: Requeue | None,
) -> None:
    requeued = set(report.requeued)
    for row in stale:
        if row.id in requeued:
            if requeue is None:
                raise ValueError("stale rows to requeue, but no way to publish their commands")
            await requeue(row)
            continue
        async with transaction(session_factory) as session:
            repo = AttachmentRepository.from_session(session)
            # only if still untouched: a processor that picked it up meanwhile decides
            if await repo.move_state(row.id, AttachmentState.RECEIVED, AttachmentState.FAILED):
                await repo.set_state(row.id, AttachmentState.FAILED, "the uploaded content is lost")
        await store.delete(row.staging_key)
