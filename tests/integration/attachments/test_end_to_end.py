"""The whole chain with real processes, on the local store and on the S3 API server:
API (granian) -> Kafka -> `taskstream process-attachments` (clamd, the store, PostgreSQL) ->
outbox -> `taskstream relay` -> RabbitMQ -> `taskstream work` -> notifications, read back
through the API, with the stage progress pushed on the uploader's SSE stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskstream.infra.topics import delete_topics, ensure_topics, topic_names
from taskstream.settings import AttachmentSettings, Settings
from tests.integration.attachments.pipeline import EICAR, limits, sha, with_attachments
from tests.integration.http_support import free_port, insert_task, join_project, register_and_login
from tests.integration.notifications.conftest import Processes, delete_topology, env_for, wait_for

pytestmark = [pytest.mark.slow]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    children = Processes(tmp_path)
    yield children
    children.stop_all()


@pytest.fixture(params=["local", "s3"])
async def chain(
    request: pytest.FixtureRequest, api_settings: Settings, database: str, processes: Processes
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    store: AttachmentSettings = request.getfixturevalue(f"{request.param}_attachment_settings")
    tag = uuid.uuid4().hex[:8]
    settings = with_attachments(api_settings, limits(store), f"e2e{tag}")
    kafka = settings.kafka.model_copy(
        update={
            "task_commands_topic": f"task-commands-a{tag}",
            "task_commands_dlq_topic": f"task-commands-a{tag}.dlq",
            "task_events_topic": f"task-events-a{tag}",
            "consumer_group": f"taskstream-a{tag}",
            "partitions": 2,
        }
    )
    rabbit = settings.rabbit.model_copy(
        update={"events_exchange": f"{settings.rabbit.events_exchange}.a{tag}"}
    )
    api = settings.api.model_copy(update={"port": free_port(), "workers": 1})
    settings = settings.model_copy(update={"kafka": kafka, "rabbit": rabbit, "api": api})
    await ensure_topics(kafka)
    env = env_for(settings)
    processes.start("api", ["api"], env)
    processes.start("attachments", ["process-attachments"], env)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "in_app"], env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as client:

            async def healthy() -> bool:
                try:
                    return (await client.post("/auth/login", json={})).status_code < 500
                except httpx.TransportError:
                    return False

            await wait_for(healthy, what="API up")
            yield client, settings
    finally:
        processes.stop_all()
        await delete_topics(kafka, topic_names(kafka))
        delete_topology(settings)


async def _sse(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    into: list[tuple[str, dict]],
    ready: asyncio.Event,
) -> None:
    async with client.stream(
        "GET", "/notifications/stream", headers=headers, timeout=None
    ) as response:
        assert response.status_code == 200
        ready.set()
        event = "message"
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = line[5:].strip()
                into.append(
                    (event, json.loads(payload) if payload.startswith("{") else {"raw": payload})
                )


async def test_upload_to_notification_on_each_store(
    chain: tuple[httpx.AsyncClient, Settings], session_factory: Any
) -> None:
    client, _ = chain
    uploader = await register_and_login(client, "Uploader")
    assignee = await register_and_login(client, "Assignee")
    project = await client.post("/projects", json={"name": "Docs"}, headers=uploader.headers)
    project_id = project.json()["id"]
    await join_project(client, project_id, uploader.headers, assignee.email, assignee.headers)
    task = await insert_task(session_factory, project_id, uploader.id, assignee_id=assignee.id)

    pushed: list[tuple[str, dict]] = []
    ready = asyncio.Event()
    stream = asyncio.create_task(_sse(client, uploader.headers, pushed, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        data = b"the quarterly report\n" * 2000
        uploaded = await client.post(
            f"/tasks/{task}/attachments",
            params={"name": "report.txt"},
            content=data,
            headers={**uploader.headers, "Content-Type": "text/plain"},
        )
        assert uploaded.status_code == 202, uploaded.text
        attachment_id = uploaded.json()["id"]
        again = await client.post(
            f"/tasks/{task}/attachments",
            params={"name": "copy.txt"},
            content=data,
            headers={**uploader.headers, "Content-Type": "text/plain"},
        )
        infected = await client.post(
            f"/tasks/{task}/attachments",
            params={"name": "eicar.txt"},
            content=EICAR,
            headers={**uploader.headers, "Content-Type": "text/plain"},
        )

        async def state_of(ident: str) -> str | None:
            body = (await client.get(f"/attachments/{ident}", headers=uploader.headers)).json()
            return body["state"] if body["state"] in ("stored", "quarantined", "failed") else None

        assert (
            await wait_for(lambda: state_of(attachment_id), timeout=60, what="stored") == "stored"
        )
        assert (
            await wait_for(lambda: state_of(again.json()["id"]), timeout=60, what="copy stored")
            == "stored"
        )
        assert (
            await wait_for(lambda: state_of(infected.json()["id"]), timeout=60, what="quarantined")
            == "quarantined"
        )
        download = await client.get(
            f"/attachments/{attachment_id}/content", headers=uploader.headers
        )
        assert download.content == data
        assert sha(download.content) == uploaded_sha(
            await client.get(f"/attachments/{attachment_id}", headers=uploader.headers)
        )
        refused = await client.get(
            f"/attachments/{infected.json()['id']}/content", headers=uploader.headers
        )
        assert refused.status_code == 409

        async def inbox_of(user: Any, event_type: str) -> list[dict]:
            items = (await client.get("/notifications", headers=user.headers)).json()["items"]
            return [n for n in items if n["eventType"] == event_type]

        ready_for_uploader = await wait_for(
            lambda: inbox_of(uploader, "attachment.ready"), timeout=60, what="uploader told"
        )
        assert ready_for_uploader[0]["data"]["attachmentId"] in (attachment_id, again.json()["id"])
        await wait_for(
            lambda: inbox_of(assignee, "attachment.ready"), timeout=60, what="assignee told"
        )
        await wait_for(
            lambda: inbox_of(uploader, "attachment.quarantined"), timeout=60, what="quarantine told"
        )
        # same content twice: one blob, two references
        async with session_factory() as session:
            from sqlalchemy import text

            rows = (
                await session.execute(
                    text("SELECT refcount FROM attachment_blobs WHERE project_id = :p"),
                    {"p": uuid.UUID(project_id)},
                )
            ).all()
        assert [r.refcount for r in rows] == [2]

        def progress_of(ident: str) -> list[str]:
            return [
                d["state"]
                for e, d in pushed
                if e == "attachment.progress" and d["attachmentId"] == ident
            ]

        await wait_for(
            lambda: _async(progress_of(attachment_id)[-1:] == ["stored"]),
            timeout=30,
            what=f"SSE progress in {pushed}",
        )
        assert progress_of(attachment_id)[0] == "scanning"
        assert "quarantined" in progress_of(infected.json()["id"])
    finally:
        stream.cancel()
        if stream.done() and not stream.cancelled() and stream.exception():
            raise stream.exception()


def uploaded_sha(response: httpx.Response) -> str:
    return str(response.json()["sha256"])


async def _async(value: Any) -> Any:
    return value
