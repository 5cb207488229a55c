"""Objects in the store that nothing needs any more, and rows that never reached Kafka.

An object is an orphan when it is older than ``upload_session_ttl_s`` (so nothing still being
written is touched) and:

- ``staging/<id>``: no attachment in a processing state has it (the row finished, failed,
  was deleted, or the API died before recording it);
- ``uploads/<session>/<part>``: no open, unexpired upload session lists it;
- ``blobs/...``: no blob row names it (a deletion that died after its commit, or the loser
  of two identical uploads racing);
- ``quarantine/<id>``: the attachment is not (or no longer) quarantined.

A row still ``received`` after the TTL was recorded but its command never acknowledged (the
API died in between): it is reported, and with ``--delete`` marked ``failed``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.attachments.repository import AttachmentRepository
from taskstream.attachments.storage import ObjectInfo, ObjectStore, open_store
from taskstream.db import create_engine, create_session_factory, transaction
from taskstream.enums import AttachmentState
from taskstream.settings import Settings

PREFIXES = ("staging/", "uploads/", "blobs/", "quarantine/")


@dataclass
class OrphanReport:
    objects: list[ObjectInfo] = field(default_factory=list)
    stale_rows: list[uuid.UUID] = field(default_factory=list)

    @property
    def orphan_bytes(self) -> int:
        return sum(item.size for item in self.objects)


async def find_orphans(settings: Settings, *, delete: bool) -> OrphanReport:
    """Scan the configured store against the configured database."""
    engine = create_engine(settings.db, pool_size=1, max_overflow=1)
    store = open_store(settings.attachments)
    try:
        return await collect_orphans(
            store,
            create_session_factory(engine),
            settings.attachments.upload_session_ttl_s,
            delete=delete,
        )
    finally:
        await store.close()
        await engine.dispose()


async def collect_orphans(
    store: ObjectStore,
    session_factory: async_sessionmaker[AsyncSession],
    ttl_s: int,
    *,
    delete: bool,
) -> OrphanReport:
    """The orphans of ``store`` (deleted too when ``delete``)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=ttl_s)
    report = OrphanReport()
    async with session_factory() as session:
        repo = AttachmentRepository.from_session(session)
        staging = await repo.live_staging_keys()
        parts = await repo.live_part_keys()
        blobs = await repo.blob_keys()
        quarantined = {f"quarantine/{i}" for i in await repo.quarantined_ids()}
        stale = await repo.stale_received(ttl_s)
    needed = staging | parts | blobs | quarantined
    for prefix in PREFIXES:
        async for item in store.list(prefix):
            modified = item.modified if item.modified.tzinfo else item.modified.replace(tzinfo=UTC)
            if item.key not in needed and modified < cutoff:
                report.objects.append(item)
    report.stale_rows = [row.id for row in stale]
    if delete:
        for item in report.objects:
            await store.delete(item.key)
        for row in stale:
            async with transaction(session_factory) as session:
                await AttachmentRepository.from_session(session).set_state(
                    row.id, AttachmentState.FAILED, "never queued for processing"
                )
            await store.delete(row.staging_key)
    return report
