"""The attachment routes and the processing stages on both stores (local directory, moto S3),
with the stages run in this process; Kafka, the consumer process and the notification chain
are in test_end_to_end.py."""

from __future__ import annotations

import io
import time
import uuid

from PIL import Image

from taskstream.attachments.links import LinkSigner
from tests.integration.attachments.pipeline import EICAR, MAX_UPLOAD, PipelineEnv, sha
from tests.integration.http_support import join_project


async def test_upload_is_scanned_deduplicated_compressed_and_stored(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    data = b"meeting notes, line after line\n" * 500
    response = await env.upload(user, task, data, name="notes.txt")
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["state"] == "received"
    assert response.headers["location"] == f"/attachments/{accepted['id']}"
    queued = await env.client.get(f"/attachments/{accepted['id']}", headers=user.headers)
    assert queued.json()["state"] == "received"
    assert queued.json()["downloadable"] is False

    await env.processor.process(uuid.UUID(accepted["id"]))
    body = (await env.client.get(f"/attachments/{accepted['id']}", headers=user.headers)).json()
    assert body["state"] == "stored"
    assert body["progress"] == body["stages"] == 4
    assert body["sha256"] == sha(data)
    assert body["size"] == len(data)
    assert body["version"] == 1
    assert body["compression"] == "gzip"  # text pays
    assert body["storedSize"] < len(data) // 5
    download = await env.client.get(f"/attachments/{accepted['id']}/content", headers=user.headers)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-length"] == str(len(data))
    # staging is gone once stored
    assert await env.store.size(f"staging/{accepted['id']}") is None


async def test_same_content_twice_is_stored_once_and_deleted_with_its_last_use(
    env: PipelineEnv,
) -> None:
    user, task = await env.user_with_task()
    data = bytes(range(256)) * 40  # binary, stored as is
    first = await env.upload_and_process(
        user, task, data, name="a.bin", content_type="application/octet-stream"
    )
    second = await env.upload_and_process(
        user, task, data, name="b.bin", content_type="application/octet-stream"
    )
    assert first["state"] == second["state"] == "stored"
    blobs = await env.rows(
        "SELECT b.id, b.refcount, b.storage_key FROM attachment_blobs b WHERE b.project_id = :p",
        p=uuid.UUID(user.personal_project_id),
    )
    assert len(blobs) == 1
    assert blobs[0].refcount == 2
    key = blobs[0].storage_key
    assert await env.store.size(key) == len(data)

    assert (
        await env.client.delete(f"/attachments/{first['id']}", headers=user.headers)
    ).status_code == 204
    assert (await env.rows("SELECT refcount FROM attachment_blobs WHERE id = :i", i=blobs[0].id))[
        0
    ].refcount == 1
    assert await env.store.size(key) == len(data)
    still = await env.client.get(f"/attachments/{second['id']}/content", headers=user.headers)
    assert still.content == data

    assert (
        await env.client.delete(f"/attachments/{second['id']}", headers=user.headers)
    ).status_code == 204
    assert await env.rows("SELECT 1 FROM attachment_blobs WHERE id = :i", i=blobs[0].id) == []
    assert await env.store.size(key) is None
    gone = await env.client.get(f"/attachments/{second['id']}", headers=user.headers)
    assert gone.status_code == 404


async def test_versions_are_listed_and_each_downloads(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    contents = [f"version {n} of the plan\n".encode() * 10 for n in (1, 2, 3)]
    ids = [
        (
            await env.upload_and_process(
                user, task, data, name="plan.md", content_type="text/markdown"
            )
        )["id"]
        for data in contents
    ]
    await env.upload_and_process(user, task, b"other file", name="other.txt")
    listing = await env.client.get(
        f"/tasks/{task}/attachments", headers=user.headers, params={"limit": 2}
    )
    assert listing.status_code == 200
    page = listing.json()
    assert len(page["items"]) == 2
    assert page["nextCursor"]
    rest = await env.client.get(
        f"/tasks/{task}/attachments", headers=user.headers, params={"cursor": page["nextCursor"]}
    )
    items = page["items"] + rest.json()["items"]
    plan = [i for i in items if i["name"] == "plan.md"]
    assert [i["version"] for i in plan] == [1, 2, 3]
    assert [i["id"] for i in plan] == ids
    assert next(i for i in items if i["name"] == "other.txt")["version"] == 1
    for attachment_id, data in zip(ids, contents, strict=True):
        got = await env.client.get(f"/attachments/{attachment_id}/content", headers=user.headers)
        assert got.content == data


async def test_eicar_is_quarantined_and_never_downloadable(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    response = await env.upload(
        user, task, EICAR, name="eicar.com", content_type="application/octet-stream"
    )
    attachment_id = response.json()["id"]
    before = await env.client.get(f"/attachments/{attachment_id}/content", headers=user.headers)
    assert before.status_code == 409  # not scanned yet
    await env.processor.process(uuid.UUID(attachment_id))
    body = (await env.client.get(f"/attachments/{attachment_id}", headers=user.headers)).json()
    assert body["state"] == "quarantined"
    assert "Eicar" in body["stateReason"] or "EICAR" in body["stateReason"].upper()
    assert body["downloadable"] is False
    download = await env.client.get(f"/attachments/{attachment_id}/content", headers=user.headers)
    assert download.status_code == 409
    assert download.headers["content-type"] == "application/problem+json"
    link = await env.client.post(
        f"/attachments/{attachment_id}/download-link", headers=user.headers
    )
    assert link.status_code == 409
    assert await env.store.size(f"staging/{attachment_id}") is None
    assert await env.store.size(f"quarantine/{attachment_id}") == len(EICAR)
    assert await env.rows("SELECT 1 FROM attachment_blobs WHERE sha256 = :s", s=sha(EICAR)) == []
    events = await env.rows(
        "SELECT event_type FROM outbox WHERE aggregate_id = :a", a=uuid.UUID(attachment_id)
    )
    assert [e.event_type for e in events] == ["attachment.quarantined"]


async def test_range_requests(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    binary = bytes(range(256)) * 16
    text_data = b"0123456789abcdef" * 256  # stored gzipped; ranges still address the original
    for data, kind in ((binary, "application/octet-stream"), (text_data, "text/plain")):
        stored = await env.upload_and_process(
            user, task, data, name=f"r.{kind[-3:]}", content_type=kind
        )
        url = f"/attachments/{stored['id']}/content"
        part = await env.client.get(url, headers={**user.headers, "Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.content == data[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
        tail = await env.client.get(url, headers={**user.headers, "Range": "bytes=-10"})
        assert tail.status_code == 206
        assert tail.content == data[-10:]
        open_end = await env.client.get(
            url, headers={**user.headers, "Range": f"bytes={len(data) - 5}-"}
        )
        assert open_end.content == data[-5:]
        beyond = await env.client.get(url, headers={**user.headers, "Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        ignored = await env.client.get(url, headers={**user.headers, "Range": "lines=1-2"})
        assert ignored.status_code == 200
        assert ignored.content == data


async def test_signed_links_work_without_a_token_until_they_expire(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    data = b"link me" * 100
    stored = await env.upload_and_process(user, task, data, name="linked.txt")
    created = await env.client.post(
        f"/attachments/{stored['id']}/download-link", headers=user.headers
    )
    assert created.status_code == 201
    url = created.json()["url"]
    anonymous = await env.client.get(url)
    assert anonymous.status_code == 200
    assert anonymous.content == data
    ranged = await env.client.get(url, headers={"Range": "bytes=0-6"})
    assert ranged.content == b"link me"

    token = url.rsplit("/", 1)[1]
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert (await env.client.get(f"/attachment-links/{tampered}")).status_code == 404
    signer = LinkSigner(env.settings.auth.jwt_secret.get_secret_value())
    expired = signer.sign(uuid.UUID(stored["id"]), int(time.time()) - 1)
    assert (await env.client.get(f"/attachment-links/{expired}")).status_code == 404
    foreign = LinkSigner("another secret entirely, 32 chars+").sign(
        uuid.UUID(stored["id"]), int(time.time()) + 60
    )
    assert (await env.client.get(f"/attachment-links/{foreign}")).status_code == 404
    assert (await env.client.get("/attachment-links/not-a-token%00")).status_code == 404


async def test_images_are_resized_with_a_thumbnail(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    stored = await env.upload_and_process(
        user, task, out.getvalue(), name="red.png", content_type="image/png"
    )
    assert stored["compression"] == "image"
    assert stored["hasThumbnail"] is True
    got = await env.client.get(f"/attachments/{stored['id']}/content", headers=user.headers)
    assert got.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(got.content)) as served:
        assert max(served.size) == 64  # image_max_px in these tests
    assert stored["sha256"] == sha(out.getvalue())  # the upload's identity, not the re-encoding
    thumb = await env.client.get(f"/attachments/{stored['id']}/thumbnail", headers=user.headers)
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert max(small.size) == 16  # thumbnail_px in these tests
    text_file = await env.upload_and_process(user, task, b"no picture", name="t.txt")
    none = await env.client.get(f"/attachments/{text_file['id']}/thumbnail", headers=user.headers)
    assert none.status_code == 404


async def test_declared_type_contradicted_by_the_bytes_is_served_as_octet_stream(
    env: PipelineEnv,
) -> None:
    user, task = await env.user_with_task()
    pdf = b"%PDF-1.4\n" + b"x" * 200
    stored = await env.upload_and_process(
        user, task, pdf, name="photo.png", content_type="image/png"
    )
    assert stored["declaredType"] == "image/png"
    assert stored["sniffedType"] == "application/pdf"
    assert stored["contentType"] == "application/octet-stream"
    html = await env.upload_and_process(
        user, task, b"<script>alert(1)</script>", name="x.html", content_type="text/html"
    )
    got = await env.client.get(f"/attachments/{html['id']}/content", headers=user.headers)
    assert got.headers["content-type"].startswith("text/plain")
    assert got.headers["content-disposition"].startswith("attachment;")


async def test_names_are_kept_for_display_and_sanitised_for_storage(env: PipelineEnv) -> None:
    user, task = await env.user_with_task()
    for name in (
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "a\x01b\u202e.txt",
        'résumé "final"; x.txt',
    ):
        stored = await env.upload_and_process(user, task, b"content of " + name.encode(), name=name)
        assert stored["name"] == name
        rows = await env.rows(
            "SELECT storage_name FROM attachments WHERE id = :i", i=uuid.UUID(stored["id"])
        )
        safe = rows[0].storage_name
        assert "/" not in safe
        assert "\\" not in safe
        assert ".." not in safe
        assert all(ord(c) >= 0x20 for c in safe)
        got = await env.client.get(f"/attachments/{stored['id']}/content", headers=user.headers)
        disposition = got.headers["content-disposition"]
        assert disposition.isascii()
        assert "filename*=UTF-8''" in disposition
    by_header = await env.client.post(
        f"/tasks/{task}/attachments",
        content=b"named by header",
        headers={
            **user.headers,
            "Content-Type": "text/plain",
            "Content-Disposition": "attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt",
        },
    )
    assert by_header.status_code == 202
    shown = await env.client.get(f"/attachments/{by_header.json()['id']}", headers=user.headers)
    assert shown.json()["name"] == "日本.txt"


async def test_bad_input_is_refused_with_problems(local_env: PipelineEnv) -> None:
    env = local_env
    user, task = await env.user_with_task()
    url = f"/tasks/{task}/attachments"
    headers = {**user.headers, "Content-Type": "application/octet-stream"}

    announced = await env.client.post(
        url, params={"name": "big.bin"}, content=b"x" * (MAX_UPLOAD + 1), headers=headers
    )
    assert announced.status_code == 413
    assert announced.headers["content-type"] == "application/problem+json"

    empty = await env.client.post(url, params={"name": "empty.txt"}, content=b"", headers=headers)
    assert empty.status_code == 422
    nul = await env.client.post(url, params={"name": "a\x00b"}, content=b"x", headers=headers)
    assert nul.status_code in (400, 422)
    unnamed = await env.client.post(url, content=b"x", headers=headers)
    assert unnamed.status_code == 422
    long_name = await env.client.post(
        url, params={"name": "n" * 300}, content=b"x", headers=headers
    )
    assert long_name.status_code in (400, 422)
    unknown = await env.client.post(
        f"/tasks/{uuid.uuid4()}/attachments", params={"name": "a"}, content=b"x", headers=headers
    )
    assert unknown.status_code == 404
    not_uuid = await env.client.post(
        "/tasks/nope/attachments", params={"name": "a"}, content=b"x", headers=headers
    )
    assert not_uuid.status_code == 404
    anonymous = await env.client.post(url, params={"name": "a"}, content=b"x")
    assert anonymous.status_code == 401
    nothing_left = await env.rows(
        "SELECT count(*) AS n FROM attachments WHERE task_id = :t", t=uuid.UUID(task)
    )
    assert nothing_left[0].n == 0
    # nothing refused left bytes behind: every staged object belongs to a recorded upload
    staged = {o.key async for o in env.store.list("staging/")}
    recorded = {r.staging_key for r in await env.rows("SELECT staging_key FROM attachments")}
    assert staged <= recorded


async def test_quota_per_project(local_env: PipelineEnv) -> None:
    env = local_env
    user, task = await env.user_with_task()
    chunk = bytes(range(256)) * 800  # 200 KB, under the file limit
    for n in range(5):  # 1000 KB of a 1024 KB quota
        response = await env.upload(
            user,
            task,
            chunk[n:] + bytes(n),
            name=f"f{n}.bin",
            content_type="application/octet-stream",
        )
        assert response.status_code == 202, response.text
    over = await env.upload(
        user, task, chunk, name="over.bin", content_type="application/octet-stream"
    )
    assert over.status_code == 413
    assert over.json()["type"].endswith("attachment-quota-exceeded")


async def test_strangers_get_404_and_members_403_where_it_applies(local_env: PipelineEnv) -> None:
    env = local_env
    owner, _ = await env.user_with_task("Owner")
    stranger, _ = await env.user_with_task("Stranger")
    member, _ = await env.user_with_task("Member")
    project = await env.client.post("/projects", json={"name": "Team"}, headers=owner.headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    await join_project(env.client, project_id, owner.headers, member.email, member.headers)
    from tests.integration.http_support import insert_task

    task = await insert_task(env.session_factory, project_id, owner.id)
    stored = await env.upload_and_process(owner, task, b"team file" * 10, name="team.txt")
    attachment = stored["id"]
    for method, url in (
        ("GET", f"/attachments/{attachment}"),
        ("GET", f"/attachments/{attachment}/content"),
        ("GET", f"/attachments/{attachment}/thumbnail"),
        ("POST", f"/attachments/{attachment}/download-link"),
        ("DELETE", f"/attachments/{attachment}"),
        ("GET", f"/tasks/{task}/attachments"),
    ):
        response = await env.client.request(method, url, headers=stranger.headers)
        assert response.status_code == 404, (method, url, response.text)
        random_id = await env.client.request(
            method,
            url.replace(attachment, str(uuid.uuid4())).replace(task, str(uuid.uuid4())),
            headers=stranger.headers,
        )
        assert random_id.status_code == 404
    upload = await env.upload(stranger, task, b"x", name="x.txt")
    assert upload.status_code == 404
    assert (
        await env.client.get(f"/attachments/{attachment}/content", headers=member.headers)
    ).status_code == 200
    assert (
        await env.client.delete(f"/attachments/{attachment}", headers=member.headers)
    ).status_code == 403
    assert (await env.client.get("/admin/attachments", headers=owner.headers)).status_code == 403
    assert (
        await env.client.delete(f"/admin/attachments/{attachment}", headers=owner.headers)
    ).status_code == 403
    assert (
        await env.client.delete(f"/attachments/{attachment}", headers=owner.headers)
    ).status_code == 204
    assert (
        await env.client.delete(f"/attachments/{attachment}", headers=owner.headers)
    ).status_code == 404


class _StoreDown:
    """A store that is unreachable for writes (what obstore or the disk reports in an outage)."""

    def __init__(self, real: object) -> None:
        self.real = real

    async def put(self, key: str, chunks: object) -> int:
        from taskstream.attachments.storage import StorageUnavailable

        async for _ in chunks:  # type: ignore[attr-defined]
            raise StorageUnavailable("connection refused")
        raise StorageUnavailable("connection refused")

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


async def test_an_unreachable_store_under_an_upload_is_a_503(local_env: PipelineEnv) -> None:
    from litestar.testing import AsyncTestClient

    from taskstream.app import create_app

    app = create_app(local_env.settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        uploads = app.state.attachment_uploads
        uploads.store = _StoreDown(uploads.store)
        user, task = await local_env.user_with_task()
        response = await client.post(
            f"/tasks/{task}/attachments",
            params={"name": "later.txt"},
            content=b"try again later",
            headers={**user.headers, "Content-Type": "text/plain"},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.headers["content-type"] == "application/problem+json"
    rows = await local_env.rows(
        "SELECT count(*) AS n FROM attachments WHERE task_id = :t", t=uuid.UUID(task)
    )
    assert rows[0].n == 0
