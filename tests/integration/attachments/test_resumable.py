"""Resumable uploads (tus semantics) and what only a real server shows: a connection dropped
mid-chunk, a body without Content-Length that grows past the limit."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.attachments.pipeline import CHUNK_MAX, MAX_UPLOAD, PipelineEnv, sha
from tests.integration.http_support import ApiServer, insert_task, register_and_login


async def _open(env: PipelineEnv, user, task: str, data: bytes, name: str = "big.bin") -> dict:
    created = await env.client.post(
        f"/tasks/{task}/attachments/uploads",
        json={"name": name, "length": len(data), "contentType": "application/octet-stream"},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/attachments/uploads/{created.json()['id']}"
    return created.json()


async def _patch(
    env: PipelineEnv, user, upload_id: str, offset: int, chunk: bytes
) -> httpx.Response:
    return await env.client.patch(
        f"/attachments/uploads/{upload_id}",
        content=chunk,
        headers={
            **user.headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


async def test_resumable_upload_in_chunks_gives_the_same_sha256(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    data = bytes((i * 7) % 251 for i in range(150 * 1024))
    upload = await _open(env, user, task, data)
    assert upload["offset"] == 0
    offset = 0
    while offset < len(data):
        chunk = data[offset : offset + 50 * 1024]
        response = await _patch(env, user, upload["id"], offset, chunk)
        assert response.status_code == 200, response.text
        offset += len(chunk)
        assert response.headers["upload-offset"] == str(offset)
        head = await env.client.head(f"/attachments/uploads/{upload['id']}", headers=user.headers)
        assert head.status_code == 200
        assert head.headers["upload-offset"] == str(offset)
        assert head.headers["upload-length"] == str(len(data))
    done = response.json()
    assert done["completed"] is True
    attachment_id = done["attachmentId"]
    await env.processor.process(uuid.UUID(attachment_id))
    body = (await env.client.get(f"/attachments/{attachment_id}", headers=user.headers)).json()
    assert body["state"] == "stored"
    assert body["sha256"] == sha(data)
    got = await env.client.get(f"/attachments/{attachment_id}/content", headers=user.headers)
    assert got.content == data
    # the parts are gone once joined
    assert [o async for o in env.store.list(f"uploads/{upload['id']}/")] == []
    again = await _patch(env, user, upload["id"], len(data), b"more")
    assert again.status_code == 409


async def test_wrong_offsets_and_oversized_chunks_are_refused(local_env: PipelineEnv) -> None:
    env = local_env
    user, task = await env.user_with_task()
    data = b"z" * (100 * 1024)
    upload = await _open(env, user, task, data)
    first = await _patch(env, user, upload["id"], 0, data[:1000])
    assert first.status_code == 200
    behind = await _patch(env, user, upload["id"], 0, data[:1000])
    assert behind.status_code == 409
    assert behind.headers["upload-offset"] == "1000"
    assert behind.json()["type"].endswith("upload-offset-conflict")
    ahead = await _patch(env, user, upload["id"], 5000, data[5000:6000])
    assert ahead.status_code == 409
    too_big = await _patch(env, user, upload["id"], 1000, data[1000 : 1000 + CHUNK_MAX + 1])
    assert too_big.status_code == 413
    missing = await env.client.patch(
        f"/attachments/uploads/{upload['id']}", content=b"x", headers=user.headers
    )
    assert missing.status_code == 422
    bad = await env.client.patch(
        f"/attachments/uploads/{upload['id']}",
        content=b"x",
        headers={**user.headers, "Upload-Offset": "-1"},
    )
    assert bad.status_code == 422
    stranger = await register_and_login(env.client, "Stranger")
    for method in ("HEAD", "GET"):
        seen = await env.client.request(
            method, f"/attachments/uploads/{upload['id']}", headers=stranger.headers
        )
        assert seen.status_code == 404
    assert (await _patch(env, stranger, upload["id"], 1000, b"x")).status_code == 404
    unknown = await env.client.head(f"/attachments/uploads/{uuid.uuid4()}", headers=user.headers)
    assert unknown.status_code == 404
    for body in (
        {"name": "x", "length": 0},
        {"name": "x", "length": MAX_UPLOAD + 1},
        {"name": "a\u0000", "length": 5},
        {"name": "", "length": 5},
        {"length": 5},
        {"name": "x", "length": "many"},
    ):
        refused = await env.client.post(
            f"/tasks/{task}/attachments/uploads", json=body, headers=user.headers
        )
        assert refused.status_code in (413, 422), (body, refused.text)
    # only the first chunk's part is stored
    parts = [o.key async for o in env.store.list(f"uploads/{upload['id']}/")]
    assert len(parts) == 1


@pytest.fixture
def served_local(local_env: PipelineEnv) -> Iterator[ApiServer]:
    server = ApiServer(local_env.settings).start()
    yield server
    server.stop()


def _send_partial(url: str, path: str, headers: dict[str, str], declared: int, body: bytes) -> None:
    """A request that announces ``declared`` bytes, sends ``body`` (fewer) and hangs up."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = [f"PATCH {path} HTTP/1.1", f"Host: {parts.hostname}", f"Content-Length: {declared}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


async def test_a_dropped_connection_loses_only_the_unfinished_chunk(
    local_env: PipelineEnv, served_local: ApiServer
) -> None:
    env = local_env
    async with httpx.AsyncClient(base_url=served_local.url, timeout=30) as http:
        user = await register_and_login(http, "Resumer")
        task = await insert_task(env.session_factory, user.personal_project_id, user.id)
        data = bytes((i * 13) % 256 for i in range(120 * 1024))
        created = await http.post(
            f"/tasks/{task}/attachments/uploads",
            json={"name": "resumed.bin", "length": len(data)},
            headers=user.headers,
        )
        upload_id = created.json()["id"]
        ok = await http.patch(
            f"/attachments/uploads/{upload_id}",
            content=data[: 40 * 1024],
            headers={**user.headers, "Upload-Offset": "0"},
        )
        assert ok.status_code == 200
        # the second chunk: 60 KB announced, 25 KB sent, then the connection drops
        await asyncio.to_thread(
            _send_partial,
            served_local.url,
            f"/attachments/uploads/{upload_id}",
            {
                **user.headers,
                "Upload-Offset": str(40 * 1024),
                "Content-Type": "application/offset+octet-stream",
            },
            60 * 1024,
            data[40 * 1024 : 65 * 1024],
        )

        async def offset() -> int:
            head = await http.head(f"/attachments/uploads/{upload_id}", headers=user.headers)
            return int(head.headers["upload-offset"])

        assert await offset() == 40 * 1024  # the partial chunk was discarded wholly
        position = await offset()
        while position < len(data):
            chunk = data[position : position + 60 * 1024]
            response = await http.patch(
                f"/attachments/uploads/{upload_id}",
                content=chunk,
                headers={**user.headers, "Upload-Offset": str(position)},
            )
            assert response.status_code == 200, response.text
            position += len(chunk)
        attachment_id = response.json()["attachmentId"]
        await env.processor.process(uuid.UUID(attachment_id))
        body = (await http.get(f"/attachments/{attachment_id}", headers=user.headers)).json()
        assert body["sha256"] == sha(data)
        assert (
            await http.get(f"/attachments/{attachment_id}/content", headers=user.headers)
        ).content == data


async def test_a_body_without_length_is_refused_once_it_crosses_the_limit(
    local_env: PipelineEnv, served_local: ApiServer
) -> None:
    env = local_env
    async with httpx.AsyncClient(base_url=served_local.url, timeout=30) as http:
        user = await register_and_login(http, "Streamer")
        task = await insert_task(env.session_factory, user.personal_project_id, user.id)

        async def endless() -> AsyncIterator[bytes]:
            for _ in range(MAX_UPLOAD // 1024 * 4):
                yield b"y" * 1024

        try:
            response = await http.post(
                f"/tasks/{task}/attachments",
                params={"name": "endless.bin"},
                content=endless(),
                headers={**user.headers, "Content-Type": "application/octet-stream"},
            )
        except httpx.HTTPError:
            response = None  # the server may close while the client still sends: also a refusal
        if response is not None:
            assert response.status_code == 413
        rows = await env.rows(
            "SELECT count(*) AS n FROM attachments WHERE task_id = :t", t=uuid.UUID(task)
        )
        assert rows[0].n == 0
        # the big request did not take the process down; a normal upload goes through
        fine = await http.post(
            f"/tasks/{task}/attachments",
            params={"name": "ok.txt"},
            content=b"ok",
            headers={**user.headers, "Content-Type": "text/plain"},
        )
        assert fine.status_code == 202, fine.text


async def test_two_chunks_at_one_offset_at_once_land_once(
    local_env: PipelineEnv, served_local: ApiServer
) -> None:
    env = local_env
    async with httpx.AsyncClient(base_url=served_local.url, timeout=30) as http:
        user = await register_and_login(http, "Racer")
        task = await insert_task(env.session_factory, user.personal_project_id, user.id)
        data = bytes(range(256)) * 200
        created = await http.post(
            f"/tasks/{task}/attachments/uploads",
            json={"name": "raced.bin", "length": len(data)},
            headers=user.headers,
        )
        upload_id = created.json()["id"]

        async def send(chunk: bytes) -> httpx.Response:
            return await http.patch(
                f"/attachments/uploads/{upload_id}",
                content=chunk,
                headers={**user.headers, "Upload-Offset": "0"},
            )

        answers = await asyncio.gather(*(send(data[:20_000]) for _ in range(4)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409, 409, 409], [a.text for a in answers]
        head = await http.head(f"/attachments/uploads/{upload_id}", headers=user.headers)
        assert head.headers["upload-offset"] == "20000"
        parts = [o.key async for o in env.store.list(f"uploads/{upload_id}/")]
        assert len(parts) == 1  # the losers' parts were deleted
