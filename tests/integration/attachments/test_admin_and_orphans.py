"""Admins across projects, and `taskstream attachments orphans` finding what nothing needs."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import text

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
