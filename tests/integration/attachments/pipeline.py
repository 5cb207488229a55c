"""Fixtures and helpers of the attachment pipeline tests (imported by the test modules; the
store and clamd fixtures come from conftest.py).

``pipeline_env`` gives, per store (local directory, moto S3), settings with small limits and
an attachment command topic of its own, the in-process app and a processor that runs the
pipeline stages in the test's own process (the Kafka consumer and the whole chain run as real
processes in test_end_to_end.py and test_faults.py)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.app import create_app
from taskstream.attachments.processing import AttachmentProcessor
from taskstream.attachments.scanner import ClamdScanner
from taskstream.attachments.storage import ObjectStore, open_store
from taskstream.infra.clamav import EICAR
from taskstream.infra.topics import delete_topics, ensure_topics
from taskstream.settings import AttachmentSettings, Settings
from tests.conftest import RUN_ID
from tests.integration.http_support import ApiUser, insert_task, register_and_login

KB = 1024
MAX_UPLOAD = 256 * KB
QUOTA = 1024 * KB
CHUNK_MAX = 64 * KB
__all__ = ["EICAR"]


def limits(attachments: AttachmentSettings, **overrides: Any) -> AttachmentSettings:
    return attachments.model_copy(
        update={
            "max_upload_bytes": MAX_UPLOAD,
            "project_quota_bytes": QUOTA,
            "chunk_max_bytes": CHUNK_MAX,
            "image_max_px": 64,
            "thumbnail_px": 16,
            **overrides,
        }
    )


def with_attachments(settings: Settings, attachments: AttachmentSettings, tag: str) -> Settings:
    kafka = settings.kafka.model_copy(
        update={
            "attachment_commands_topic": f"attachment-commands-{RUN_ID}-{tag}",
            "attachment_commands_dlq_topic": f"attachment-commands-{RUN_ID}-{tag}.dlq",
            "attachments_consumer_group": f"taskstream-attachments-{RUN_ID}-{tag}",
        }
    )
    return settings.model_copy(update={"attachments": attachments, "kafka": kafka})


@dataclass
class PipelineEnv:
    name: str
    settings: Settings
    client: httpx.AsyncClient
    store: ObjectStore
    processor: AttachmentProcessor
    session_factory: async_sessionmaker[AsyncSession]

    async def user_with_task(self, name: str = "Uploader") -> tuple[ApiUser, str]:
        user = await register_and_login(self.client, name)
        task_id = await insert_task(self.session_factory, user.personal_project_id, user.id)
        return user, task_id

    async def upload(
        self,
        user: ApiUser,
        task_id: str,
        data: bytes,
        name: str = "notes.txt",
        content_type: str = "text/plain",
    ) -> httpx.Response:
        return await self.client.post(
            f"/tasks/{task_id}/attachments",
            params={"name": name},
            content=data,
            headers={**user.headers, "Content-Type": content_type},
        )

    async def upload_and_process(
        self, user: ApiUser, task_id: str, data: bytes, **kw: Any
    ) -> dict[str, Any]:
        response = await self.upload(user, task_id, data, **kw)
        assert response.status_code == 202, response.text
        attachment_id = uuid.UUID(response.json()["id"])
        await self.processor.process(attachment_id)
        got = await self.client.get(f"/attachments/{attachment_id}", headers=user.headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.session_factory() as session:
            return list((await session.execute(text(sql), params)).all())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _env(
    name: str,
    api_settings: Settings,
    attachments: AttachmentSettings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[PipelineEnv]:
    settings = with_attachments(api_settings, limits(attachments), name)
    await ensure_topics(settings.kafka, [settings.kafka.attachment_commands_topic], partitions=2)
    store = open_store(settings.attachments)
    scanner = ClamdScanner(settings.attachments.clamd_address, timeout_s=30)
    processor = AttachmentProcessor(settings.attachments, store, scanner, session_factory)
    app = create_app(settings)
    try:
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
            yield PipelineEnv(name, settings, client, store, processor, session_factory)
    finally:
        await store.close()
        await delete_topics(settings.kafka, [settings.kafka.attachment_commands_topic])


@pytest.fixture(scope="session")
async def local_env(
    api_settings: Settings,
    database: str,
    topics: object,
    local_attachment_settings: AttachmentSettings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[PipelineEnv]:
    async for env in _env("local", api_settings, local_attachment_settings, session_factory):
        yield env


@pytest.fixture(scope="session")
async def s3_env(
    api_settings: Settings,
    database: str,
    topics: object,
    s3_attachment_settings: AttachmentSettings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[PipelineEnv]:
    async for env in _env("s3", api_settings, s3_attachment_settings, session_factory):
        yield env


@pytest.fixture(params=["local", "s3"])
def env(request: pytest.FixtureRequest) -> PipelineEnv:
    """Each store in turn."""
    found: PipelineEnv = request.getfixturevalue(f"{request.param}_env")
    return found


async def wait_until(predicate: Any, timeout_s: float = 60, interval_s: float = 0.2) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {value!r})")
        await asyncio.sleep(interval_s)
