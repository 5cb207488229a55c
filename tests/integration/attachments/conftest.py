"""Attachment fixtures: a real S3 API server (moto) with a bucket per session, clamd (the one
`taskstream infra up` started, else a private one), and AttachmentSettings for both stores.

Nothing here skips: a missing clamd or moto fails the test naming the fix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from taskstream.attachments.storage import ObjectStore, open_store
from taskstream.infra.clamav import ClamdAddress
from taskstream.settings import AttachmentSettings, Settings
from tests.conftest import RUN_ID
from tests.integration.attachments.pipeline import env, local_env, s3_env  # noqa: F401
from tests.integration.attachments.support import PrivateClamd, S3Server, ping_blocking


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 API on a free 127.0.0.1 port for the whole session."""
    server = S3Server(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket(f"attachments-{RUN_ID}")


@pytest.fixture(scope="session")
def clamd_address(settings: Settings) -> Iterator[str]:
    """A clamd that detects EICAR: the configured one when it answers (`taskstream infra up`
    started it), else a private one for the session. Fails (never skips) without clamd."""
    configured = ClamdAddress.parse(settings.attachments.clamd_address)
    if configured.port is not None and ping_blocking(configured.port, configured.host or ""):
        yield settings.attachments.clamd_address
        return
    private = PrivateClamd().start()
    yield private.address
    private.stop()


@pytest.fixture(scope="session")
def local_store_settings(tmp_path_factory: pytest.TempPathFactory) -> AttachmentSettings:
    """The local-directory store in a fresh directory (clamd address left at its default)."""
    root: Path = tmp_path_factory.mktemp("attachments")
    return AttachmentSettings(storage_url=root.as_uri())


@pytest.fixture(scope="session")
def s3_store_settings(s3_server: S3Server, s3_bucket: str) -> AttachmentSettings:
    """The S3 store on the session's bucket (clamd address left at its default)."""
    return s3_server.settings(s3_bucket, prefix=RUN_ID)


@pytest.fixture(scope="session")
def local_attachment_settings(
    local_store_settings: AttachmentSettings, clamd_address: str
) -> AttachmentSettings:
    """Everything the pipeline needs on the local store: the store and a live clamd."""
    return local_store_settings.model_copy(update={"clamd_address": clamd_address})


@pytest.fixture(scope="session")
def s3_attachment_settings(
    s3_store_settings: AttachmentSettings, clamd_address: str
) -> AttachmentSettings:
    """Everything the pipeline needs on the S3 API server: the bucket and a live clamd."""
    return s3_store_settings.model_copy(update={"clamd_address": clamd_address})


@pytest.fixture(params=["local", "s3"])
def store_settings(
    request: pytest.FixtureRequest,
) -> AttachmentSettings:
    """Each store in turn (tests that must hold for both)."""
    name = "local_store_settings" if request.param == "local" else "s3_store_settings"
    settings: AttachmentSettings = request.getfixturevalue(name)
    return settings


@pytest.fixture
async def object_store(store_settings: AttachmentSettings) -> AsyncIterator[ObjectStore]:
    store = open_store(store_settings)
    yield store
    await store.close()


@pytest.fixture
def private_clamd() -> Iterator[PrivateClamd]:
    """A clamd of this test's own (shipped database, free port) that it may kill
    (``private_clamd.kill()``) without touching the shared one."""
    clamd = PrivateClamd().start()
    yield clamd
    clamd.stop()


@pytest.fixture
def private_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """An S3 API server of this test's own that it may stop (``private_s3_server.stop()``);
    ``private_s3_server.settings(bucket)`` after ``create_bucket``."""
    server = S3Server(tmp_path).start()
    yield server
    server.stop()
