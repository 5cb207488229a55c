"""Faults, each with the real processing consumer (`taskstream process-attachments` as a child
process): kill -9 mid-file, clamd down then up, the store unreachable then back. After
recovery every attachment reaches a final state exactly once, with no orphaned objects and no
double reference counts."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.attachments.orphans import collect_orphans
from taskstream.attachments.storage import ObjectStore, open_store
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.settings import AttachmentSettings, Settings
from tests.integration.attachments.outage_proxy import OutageProxy
from tests.integration.attachments.pipeline import PipelineEnv, limits, sha, with_attachments
from tests.integration.attachments.support import PrivateClamd, S3Server
from tests.integration.http_support import insert_task, register_and_login
from tests.processes import ChildProcess, taskstream_argv

pytestmark = [pytest.mark.slow, pytest.mark.fault]
MB = 1024 * 1024
FINAL = ("stored", "quarantined", "failed")


class Fixture:
    """A private store, its own topic and group, and the consumer as a child process."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.consumers: list[ChildProcess] = []

    def start_consumer(self) -> ChildProcess:
        env = {**os.environ, **self.settings.as_env(), "TASKSTREAM_LOG_LEVEL": "INFO"}
        log = self.log_dir / f"consumer-{len(self.consumers)}.log"
        child = ChildProcess(taskstream_argv("process-attachments"), env, log).start()
        self.consumers.append(child)
        return child

    def logs(self) -> str:
        return "\n".join(c.output()[-3000:] for c in self.consumers)

    def stop(self) -> None:
        for child in self.consumers:
            child.stop()


@pytest.fixture
async def make_fixture(api_settings: Settings, database: str, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Fixture] = []

    async def make(attachments: AttachmentSettings, **overrides: Any) -> Fixture:
        settings = with_attachments(
            api_settings, limits(attachments, **overrides), f"f{uuid.uuid4().hex[:8]}"
        )
        await ensure_topics(
            settings.kafka, [settings.kafka.attachment_commands_topic], partitions=2
        )
        fixture = Fixture(settings, tmp_path)
        made.append(fixture)
        return fixture

    yield make
    for fixture in made:
        fixture.stop()
        await delete_topics(
            fixture.settings.kafka, [fixture.settings.kafka.attachment_commands_topic]
        )


async def _upload_via_service(
    env: PipelineEnv, settings: Settings, files: list[bytes]
) -> tuple[str, list[str]]:
    """Uploads through the in-process API (the env's app has its own topic, so the uploads
    are published on ``settings``' topic by a second app)."""
    from litestar.testing import AsyncTestClient

    from taskstream.app import create_app

    app = create_app(settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        user = await register_and_login(client, "Faulty")
        task = await insert_task(env.session_factory, user.personal_project_id, user.id)
        ids = []
        for n, data in enumerate(files):
            response = await client.post(
                f"/tasks/{task}/attachments",
                params={"name": f"file-{n}.bin"},
                content=data,
                headers={**user.headers, "Content-Type": "application/octet-stream"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return task, ids


async def _states(factory: async_sessionmaker[AsyncSession], ids: list[str]) -> dict[str, str]:
    async with factory() as session:
        rows = (
            await session.execute(
                text("SELECT id::text, state::text FROM attachments WHERE id::text = ANY(:ids)"),
                {"ids": ids},
            )
        ).all()
    return dict(rows)


async def _until(check: Any, timeout_s: float, what: str, fixture: Fixture) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} not reached within {timeout_s}s; consumer logs:\n{fixture.logs()}")
        await asyncio.sleep(0.05)


async def _assert_settled_once(
    factory: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    ids: list[str],
    files: list[bytes],
) -> None:
    """Final exactly once: one announcement each, refcounts equal to the live references,
    the content intact, and nothing in the store that no row needs."""
    async with factory() as session:
        events = (
            await session.execute(
                text(
                    "SELECT aggregate_id::text, count(*) FROM outbox"
                    " WHERE aggregate_id::text = ANY(:ids) GROUP BY 1"
                ),
                {"ids": ids},
            )
        ).all()
        counts = (
            await session.execute(
                text(
                    "SELECT b.id, b.refcount, count(a.id) AS refs FROM attachment_blobs b"
                    " LEFT JOIN attachments a ON a.blob_id = b.id AND a.deleted_at IS NULL"
                    " WHERE b.id IN (SELECT blob_id FROM attachments WHERE id::text = ANY(:ids))"
                    " GROUP BY b.id, b.refcount"
                ),
                {"ids": ids},
            )
        ).all()
        shas = dict(
            (
                await session.execute(
                    text("SELECT id::text, sha256 FROM attachments WHERE id::text = ANY(:ids)"),
                    {"ids": ids},
                )
            ).all()
        )
    assert dict(events) == dict.fromkeys(ids, 1)
    assert counts
    assert all(row.refcount == row.refs for row in counts), counts
    assert sorted(shas.values()) == sorted(sha(f) for f in files)
    report = await collect_orphans(store, factory, 0, delete=False)
    assert report.objects == [], [o.key for o in report.objects]


async def test_kill_9_mid_file_then_every_attachment_settles_once(
    local_env: PipelineEnv,
    make_fixture: Any,
    local_attachment_settings: AttachmentSettings,
    tmp_path: Path,
) -> None:
    private = local_attachment_settings.model_copy(
        update={"storage_url": (tmp_path / "store").as_uri()}
    )
    fixture: Fixture = await make_fixture(
        private, max_upload_bytes=64 * MB, project_quota_bytes=1024 * MB
    )
    files = [os.urandom(6 * MB) for _ in range(4)] + [os.urandom(1 * MB)] * 2  # two identical
    _, ids = await _upload_via_service(local_env, fixture.settings, files)
    first = fixture.start_consumer()

    async def mid_file() -> bool:
        states = await _states(local_env.session_factory, ids)
        return any(s in ("scanning", "deduplicating", "compressing") for s in states.values())

    await _until(mid_file, 60, "an attachment in processing", fixture)
    first.kill()
    assert first.exits == [-9]
    fixture.start_consumer()

    async def all_final() -> bool:
        states = await _states(local_env.session_factory, ids)
        return len(states) == len(ids) and all(s in FINAL for s in states.values())

    await _until(all_final, 120, "every attachment final", fixture)
    assert set((await _states(local_env.session_factory, ids)).values()) == {"stored"}
    store = open_store(fixture.settings.attachments)
    try:
        await _assert_settled_once(local_env.session_factory, store, ids, files)
    finally:
        await store.close()


async def test_clamd_down_keeps_attachments_scanning_until_it_is_back(
    s3_env: PipelineEnv, make_fixture: Any, s3_attachment_settings: AttachmentSettings
) -> None:
    clamd = PrivateClamd()  # not started yet: its port refuses connections
    fixture: Fixture = await make_fixture(
        s3_attachment_settings.model_copy(update={"clamd_address": clamd.address})
    )
    files = [b"scanned only when clamd is back " * 100, b"second file " * 100]
    _, ids = await _upload_via_service(s3_env, fixture.settings, files)
    fixture.start_consumer()
    try:

        async def waiting() -> bool:
            # one waits in scanning; one behind it on the same partition may still be received
            states = set((await _states(s3_env.session_factory, ids)).values())
            return (
                "scanning" in states
                and states <= {"received", "scanning"}
                and ("waits" in fixture.logs())
            )

        await _until(waiting, 60, "attachments waiting in scanning", fixture)
        for attachment_id in ids:  # nothing is served unscanned
            row = await s3_env.rows(
                "SELECT blob_id FROM attachments WHERE id = :i", i=uuid.UUID(attachment_id)
            )
            assert row[0].blob_id is None
        clamd.start()

        async def stored() -> bool:
            return set((await _states(s3_env.session_factory, ids)).values()) == {"stored"}

        await _until(stored, 90, "stored after clamd is back", fixture)
        await _assert_settled_once(s3_env.session_factory, s3_env.store, ids, files)
    finally:
        clamd.stop()


@pytest.fixture
async def s3_behind_proxy(
    s3_server: S3Server, s3_bucket: str
) -> AsyncIterator[tuple[OutageProxy, AttachmentSettings]]:
    """The session's S3 server, seen by the consumer through a proxy the test can cut."""
    proxy = await OutageProxy("127.0.0.1", s3_server.port).start()
    settings = s3_server.settings(s3_bucket, prefix=f"outage-{uuid.uuid4().hex[:8]}")
    yield proxy, settings
    await proxy.stop()


async def test_storage_unreachable_then_back(
    s3_env: PipelineEnv,
    make_fixture: Any,
    s3_behind_proxy: tuple[OutageProxy, AttachmentSettings],
    clamd_address: str,
) -> None:
    proxy, direct = s3_behind_proxy
    fixture: Fixture = await make_fixture(
        direct.model_copy(update={"clamd_address": clamd_address})
    )
    files = [b"survives an outage " * 200, b"survives an outage " * 200, b"another one " * 50]
    # uploads go straight to S3 (the in-process app runs on its own loop, not the proxy's)
    _, ids = await _upload_via_service(s3_env, fixture.settings, files)
    fixture.settings = fixture.settings.model_copy(
        update={
            "attachments": fixture.settings.attachments.model_copy(
                update={"s3_endpoint": f"http://127.0.0.1:{proxy.port}"}
            )
        }
    )
    proxy.take_down()
    fixture.start_consumer()

    async def stuck() -> bool:
        states = await _states(s3_env.session_factory, ids)
        return all(s not in FINAL for s in states.values()) and "waits" in fixture.logs()

    await _until(stuck, 60, "attachments waiting for the store", fixture)
    proxy.bring_back()

    async def stored() -> bool:
        return set((await _states(s3_env.session_factory, ids)).values()) == {"stored"}

    await _until(stored, 120, "stored after the store is back", fixture)
    store = open_store(fixture.settings.attachments)
    try:
        await _assert_settled_once(s3_env.session_factory, store, ids, files)
    finally:
        await store.close()
