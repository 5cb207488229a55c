"""Admins across projects, and `taskstream attachments orphans` finding what nothing needs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from taskstream.infra.lag import read_to_end, topic_partitions
from tests.integration.attachments.pipeline import PipelineEnv
from tests.integration.http_support import register_and_login
from tests.processes import taskstream_argv


async def _admin(env: PipelineEnv):
    user = await register_and_login(env.client, "Admin")
    async with env.session_factory() as session:
        await session.execute(
            text("UPDATE users SET role = 'admin' WHERE id = :i"), {"i": uuid.UUID(user.id)}
        )
        await session.commit()
    return await register_and_login_again(env, user)


async def register_and_login_again(env: PipelineEnv, user):
    from tests.integration.http_support import PASSWORD

    login = await env.client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    user.token = login.json()["accessToken"]
    return user


async def test_admins_list_and_purge_across_projects(local_env: PipelineEnv) -> None:
    env = local_env
    owner, task = await env.user_with_task("Owner")
    admin = await _admin(env)
    clean = await env.upload_and_process(owner, task, b"admin may see this" * 20, name="seen.txt")
    infected = await env.upload_and_process(
        owner,
        task,
        __import__("tests.integration.attachments.pipeline", fromlist=["EICAR"]).EICAR,
        name="bad.com",
    )
    listing = await env.client.get(
        "/admin/attachments", headers=admin.headers, params={"projectId": owner.personal_project_id}
    )
    assert listing.status_code == 200
    assert {i["id"] for i in listing.json()["items"]} == {clean["id"], infected["id"]}
    quarantined = await env.client.get(
        "/admin/attachments",
        headers=admin.headers,
        params={"projectId": owner.personal_project_id, "state": "quarantined"},
    )
    assert [i["id"] for i in quarantined.json()["items"]] == [infected["id"]]
    bad_state = await env.client.get(
        "/admin/attachments", headers=admin.headers, params={"state": "nope"}
    )
    assert bad_state.status_code == 400 or bad_state.status_code == 422
    bad_cursor = await env.client.get(
        "/admin/attachments", headers=admin.headers, params={"cursor": "bm90IGEgY3Vyc29y"}
    )
    assert bad_cursor.status_code == 422
    # an admin reads any attachment too
    assert (
        await env.client.get(f"/attachments/{clean['id']}", headers=admin.headers)
    ).status_code == 200
    purged = await env.client.delete(f"/admin/attachments/{infected['id']}", headers=admin.headers)
    assert purged.status_code == 204
    assert await env.store.size(f"quarantine/{infected['id']}") is None
    assert (
        await env.client.get(f"/attachments/{infected['id']}", headers=owner.headers)
    ).status_code == 404
    unknown = await env.client.delete(f"/admin/attachments/{uuid.uuid4()}", headers=admin.headers)
    assert unknown.status_code == 404


def test_orphans_cli_lists_and_deletes_only_what_nothing_needs(
    local_env: PipelineEnv, tmp_path: Path
) -> None:
    root = Path(local_env.settings.attachments.storage_url.removeprefix("file://"))
    orphan = root / "staging" / str(uuid.uuid4())
    part = root / "uploads" / str(uuid.uuid4()) / "0000000000000000-abcd1234"
    for path in (orphan, part):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
        os.utime(path, (1_000_000_000, 1_000_000_000))  # older than any TTL
    env = {**os.environ, **local_env.settings.as_env()}
    listed = subprocess.run(
        taskstream_argv("attachments", "orphans"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"staging/{orphan.name}" in listed.stdout
    assert "uploads/" in listed.stdout
    assert orphan.exists()
    deleted = subprocess.run(
        taskstream_argv("attachments", "orphans", "--delete"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert not orphan.exists()
    assert not part.exists()
    again = subprocess.run(
        taskstream_argv("attachments", "orphans"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"staging/{orphan.name}" not in again.stdout


async def _commands_for(env: PipelineEnv, attachment_id: str) -> int:
    """How many `attachment.uploaded` commands the topic holds for ``attachment_id``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env.settings.kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, env.settings.kafka.attachment_commands_topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records = await read_to_end(consumer, partitions, time.monotonic() + 30)
    finally:
        await consumer.stop()
    return sum(1 for r in records if r.key == attachment_id.encode())


async def test_orphans_cli_requeues_stuck_rows_with_their_bytes_and_fails_the_rest(
    local_env: PipelineEnv,
) -> None:
    """A row left `received` (the API died between its commit and the publish) whose staged
    bytes are complete is queued again and then stored; one whose bytes are gone fails."""
    env = local_env
    user, task = await env.user_with_task("Stuck")
    stuck = []
    for name in ("kept.txt", "lost.txt"):
        response = await env.upload(user, task, f"stuck upload {name}\n".encode() * 50, name=name)
        assert response.status_code == 202, response.text
        stuck.append(response.json()["id"])
    kept, lost = stuck
    async with env.session_factory() as session:
        await session.execute(
            text(
                "UPDATE attachments SET updated_at = now() - interval '2 hours'"
                " WHERE id::text = ANY(:ids)"
            ),
            {"ids": stuck},
        )
        await session.commit()
    await env.store.delete(f"staging/{lost}")
    assert await _commands_for(env, kept) == 1
    cli_env = {**os.environ, **env.settings.as_env()}

    def orphans(*extra: str) -> str:
        done = subprocess.run(
            taskstream_argv("attachments", "orphans", "--stale-after", "3600", *extra),
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = await asyncio.to_thread(orphans)
    assert f"stale  attachment {kept}" in listed
    assert f"lost  attachment {lost}" in listed
    assert await env.rows(
        "SELECT state::text FROM attachments WHERE id::text = ANY(:ids)", ids=stuck
    ) == [("received",), ("received",)]

    settled = await asyncio.to_thread(orphans, "--delete")
    assert f"requeued  attachment {kept}" in settled
    assert f"failed  attachment {lost}" in settled
    assert await _commands_for(env, kept) == 2  # sent again, for the processor to pick up
    assert await _commands_for(env, lost) == 1
    states = dict(
        await env.rows(
            "SELECT id::text, state::text FROM attachments WHERE id::text = ANY(:ids)", ids=stuck
        )
    )
    assert states == {kept: "received", lost: "failed"}

    # the requeued command and the original both reach the processor: one stored attachment
    for _ in range(2):
        await env.processor.process(uuid.UUID(kept))
    got = await env.client.get(f"/attachments/{kept}", headers=user.headers)
    assert got.json()["state"] == "stored"
    assert await env.rows("SELECT count(*) FROM outbox WHERE aggregate_id::text = :i", i=kept) == [
        (1,)
    ]
