"""Comments through the API: who may write, edit, delete and read them; the thread with the
review comments; bad input; pagination."""

from __future__ import annotations

import uuid

import httpx
import pytest

from taskstream.comments import service
from taskstream.enums import UserRole
from taskstream.errors import ConflictError
from taskstream.principal import Principal
from tests.integration.comments.support import (
    Crew,
    count_rows,
    delete_task,
    make_task,
    review,
    same_not_found,
)

COUNT_COMMENTS = "SELECT count(*) FROM comments WHERE task_id = CAST(:task AS uuid)"


async def post(client: httpx.AsyncClient, user, task_id: str, body: object) -> httpx.Response:
    return await client.post(f"/tasks/{task_id}/comments", json=body, headers=user.headers)


async def thread(client: httpx.AsyncClient, user, task_id: str, **params) -> dict:
    response = await client.get(f"/tasks/{task_id}/comments", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_thread_holds_comments_and_review_comments_oldest_first(
    client, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew, assignee=crew.member)
    first = await post(client, crew.member, task_id, {"body": "Draft is up"})
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["kind"] == "comment" and made["body"] == "Draft is up"
    assert made["authorId"] == crew.member.id and made["authorName"] == "Mel"
    assert made["taskId"] == task_id and made["editedAt"] is None and made["verdict"] is None
    await review(session_factory, crew.member, crew.maintainer, task_id, "Needs a summary")
    last = await post(client, crew.owner, task_id, {"body": "Agreed  \u2014 \U0001f680"})
    assert last.status_code == 201, last.text

    page = await thread(client, crew.viewer, task_id)  # viewers read
    assert page["nextCursor"] is None
    items = page["items"]
    assert [(i["kind"], i["body"]) for i in items] == [
        ("comment", "Draft is up"),
        ("review", "Needs a summary"),
        ("comment", "Agreed  \u2014 \U0001f680"),
    ]
    assert items[1]["verdict"] == "request_changes"
    assert items[1]["authorId"] == crew.maintainer.id and items[1]["authorName"] == "Maya"


async def test_roles_and_strangers(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    for user in (crew.owner, crew.maintainer, crew.member):
        response = await post(client, user, task_id, {"body": f"from {user.id}"})
        assert response.status_code == 201, response.text
    viewer = await post(client, crew.viewer, task_id, {"body": "can I?"})
    assert viewer.status_code == 403, viewer.text

    random_id = str(uuid.uuid4())
    same_not_found(
        await post(client, crew.stranger, task_id, {"body": "hi"}),
        await post(client, crew.stranger, random_id, {"body": "hi"}),
    )
    same_not_found(
        await client.get(f"/tasks/{task_id}/comments", headers=crew.stranger.headers),
        await client.get(f"/tasks/{random_id}/comments", headers=crew.stranger.headers),
    )
    assert (
        "from"
        not in (await client.get(f"/tasks/{task_id}/comments", headers=crew.stranger.headers)).text
    )
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 3
    anonymous = await client.get(f"/tasks/{task_id}/comments")
    assert anonymous.status_code == 401


async def test_bad_bodies_are_422_and_write_nothing(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    cases = [
        {"body": "nul \x00 inside"},
        {"body": "x" * 10_001},
        {"body": ""},
        {"body": " \n\t "},
        {"body": 42},
        {"body": None},
        {},
        [],
    ]
    for body in cases:
        response = await post(client, crew.member, task_id, body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    nul = await post(client, crew.member, task_id, {"body": "a\x00"})
    assert [e["path"] for e in nul.json()["errors"]] == ["body"]
    assert (await post(client, crew.member, task_id, {"body": "x" * 10_000})).status_code == 201
    not_json = await client.post(
        f"/tasks/{task_id}/comments",
        content=b'{"body": "unterminated',
        headers={**crew.member.headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1


async def test_too_many_mentions_are_refused(client, crew: Crew, session_factory, api_settings):
    task_id = await make_task(session_factory, crew)
    limit = api_settings.comments.max_mentions
    many = " ".join(f"<@{uuid.uuid4()}>" for _ in range(limit + 1))
    response = await post(client, crew.member, task_id, {"body": many})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "body"
    # the same person mentioned many times is one mention
    again = " ".join([f"<@{crew.viewer.id}>"] * (limit + 5))
    assert (await post(client, crew.member, task_id, {"body": again})).status_code == 201
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1


async def test_only_the_author_edits(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    made = (await post(client, crew.member, task_id, {"body": "first"})).json()
    path = f"/comments/{made['id']}"
    for user in (crew.member2, crew.maintainer, crew.owner, crew.viewer):
        refused = await client.patch(path, json={"body": "hijack"}, headers=user.headers)
        assert refused.status_code == 403, (user, refused.text)
    random_path = f"/comments/{uuid.uuid4()}"
    same_not_found(
        await client.patch(path, json={"body": "x"}, headers=crew.stranger.headers),
        await client.patch(random_path, json={"body": "x"}, headers=crew.stranger.headers),
    )
    for bad in ({"body": "a\x00b"}, {"body": ""}, {"body": "y" * 10_001}, {}):
        response = await client.patch(path, json=bad, headers=crew.member.headers)
        assert response.status_code == 422, (bad, response.text)

    edited = await client.patch(path, json={"body": "second"}, headers=crew.member.headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == "second" and edited.json()["editedAt"] is not None
    assert edited.json()["createdAt"] == made["createdAt"]
    items = (await thread(client, crew.owner, task_id))["items"]
    assert [(i["body"], i["editedAt"] is not None) for i in items] == [("second", True)]


async def test_deleting(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    mine = (await post(client, crew.member, task_id, {"body": "mine"})).json()
    theirs = (await post(client, crew.member2, task_id, {"body": "theirs"})).json()
    owners = (await post(client, crew.owner, task_id, {"body": "owner's"})).json()

    # another member and a viewer may not; a stranger gets the 404 of a random id
    for user in (crew.member2, crew.viewer):
        refused = await client.delete(f"/comments/{mine['id']}", headers=user.headers)
        assert refused.status_code == 403, refused.text
    same_not_found(
        await client.delete(f"/comments/{mine['id']}", headers=crew.stranger.headers),
        await client.delete(f"/comments/{uuid.uuid4()}", headers=crew.stranger.headers),
    )
    # the author may; a maintainer may delete a member's comment, and the owner's too
    assert (
        await client.delete(f"/comments/{mine['id']}", headers=crew.member.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/comments/{theirs['id']}", headers=crew.maintainer.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/comments/{owners['id']}", headers=crew.maintainer.headers)
    ).status_code == 204
    assert (await thread(client, crew.owner, task_id))["items"] == []
    # gone for every route; the rows stay (soft delete) for the audit trail
    again = await client.delete(f"/comments/{mine['id']}", headers=crew.member.headers)
    assert again.status_code == 404
    edit = await client.patch(
        f"/comments/{mine['id']}", json={"body": "back"}, headers=crew.member.headers
    )
    assert edit.status_code == 404
    deleted = f"{COUNT_COMMENTS} AND deleted_at IS NOT NULL"
    assert await count_rows(session_factory, deleted, task=task_id) == 3


async def test_a_deleted_task_takes_no_comments(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    made = (await post(client, crew.member, task_id, {"body": "before"})).json()
    await delete_task(session_factory, crew.owner, task_id)
    refused = await post(client, crew.member, task_id, {"body": "after"})
    same_not_found(refused, await post(client, crew.member, str(uuid.uuid4()), {"body": "x"}))
    listed = await client.get(f"/tasks/{task_id}/comments", headers=crew.member.headers)
    assert listed.status_code == 404
    edit = await client.patch(
        f"/comments/{made['id']}", json={"body": "x"}, headers=crew.member.headers
    )
    assert edit.status_code == 404
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1


async def test_a_task_not_applied_yet_is_404_like_every_read(client, crew: Crew):
    # No consumer runs in this test session: the create is accepted and never applied.
    created = await client.post(
        "/tasks", json={"title": "queued", "projectId": crew.project_id}, headers=crew.owner.headers
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["taskId"]
    response = await post(client, crew.owner, task_id, {"body": "too early"})
    assert response.status_code == 404
    assert (await client.get(f"/tasks/{task_id}", headers=crew.owner.headers)).status_code == 404


async def test_pages_are_stable_and_complete(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew, assignee=crew.member)
    for i in range(4):
        assert (await post(client, crew.member, task_id, {"body": f"c{i}"})).status_code == 201
    await review(session_factory, crew.member, crew.maintainer, task_id, None)  # no comment
    for i in range(4, 7):
        assert (await post(client, crew.owner, task_id, {"body": f"c{i}"})).status_code == 201
    everything = (await thread(client, crew.member, task_id, limit=200))["items"]
    assert len(everything) == 8
    assert [i["body"] for i in everything] == [
        *(f"c{i}" for i in range(4)),
        None,
        *(f"c{i}" for i in range(4, 7)),
    ]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await thread(client, crew.member, task_id, **params)
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [i["id"] for i in everything]
    # a page asked again is the same page
    first = await thread(client, crew.member, task_id, limit=3)
    assert [i["id"] for i in first["items"]] == seen[:3]

    for bad in ({"limit": 0}, {"limit": "x"}, {"cursor": "not-a-cursor"}, {"cursor": "\x00"}):
        response = await client.get(
            f"/tasks/{task_id}/comments", params=bad, headers=crew.member.headers
        )
        assert response.status_code == 422, (bad, response.text)


async def test_a_retried_comment_with_an_idempotency_key_is_written_once(
    client, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew)
    headers = {**crew.member.headers, "Idempotency-Key": f"comment-{uuid.uuid4()}"}
    first = await client.post(f"/tasks/{task_id}/comments", json={"body": "once"}, headers=headers)
    again = await client.post(f"/tasks/{task_id}/comments", json={"body": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1


async def test_an_archived_project_takes_no_comment_writes_but_keeps_its_thread(
    client, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew)
    made = (await post(client, crew.member, task_id, {"body": "before"})).json()
    archived = await client.post(f"/projects/{crew.project_id}/archive", headers=crew.owner.headers)
    assert archived.status_code == 200, archived.text
    try:
        refused = [
            await post(client, crew.member, task_id, {"body": "after"}),
            await client.patch(
                f"/comments/{made['id']}", json={"body": "x"}, headers=crew.member.headers
            ),
            await client.delete(f"/comments/{made['id']}", headers=crew.member.headers),
        ]
        for response in refused:
            assert response.status_code == 409, response.text
            assert response.json()["type"].endswith("project-archived")
        page = await thread(client, crew.viewer, task_id)
        assert [i["body"] for i in page["items"]] == ["before"]
        assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1
    finally:
        unarchived = await client.post(
            f"/projects/{crew.project_id}/unarchive", headers=crew.owner.headers
        )
        assert unarchived.status_code == 200, unarchived.text


async def test_an_author_demoted_to_viewer_no_longer_edits(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    made = (await post(client, crew.member2, task_id, {"body": "before"})).json()
    demoted = await client.patch(
        f"/projects/{crew.project_id}/members/{crew.member2.id}",
        json={"role": "viewer"},
        headers=crew.owner.headers,
    )
    assert demoted.status_code == 200, demoted.text
    # a viewer writes no comments, so neither rewrites an old one
    edited = await client.patch(
        f"/comments/{made['id']}", json={"body": "after"}, headers=crew.member2.headers
    )
    assert edited.status_code == 403, edited.text
    items = (await thread(client, crew.owner, task_id))["items"]
    assert [i["body"] for i in items] == ["before"]


async def test_a_comment_id_reused_on_another_task_is_a_conflict(
    client, crew: Crew, session_factory
):
    """A retry finds its comment by id; the same id sent for another task (an Idempotency-Key
    reused after its record lapsed) must not answer with a comment of the first task."""
    first_task = await make_task(session_factory, crew)
    second_task = await make_task(session_factory, crew)
    author = Principal(user_id=uuid.UUID(crew.member.id), role=UserRole.MEMBER)
    comment_id = uuid.uuid4()
    async with session_factory() as session:
        made = await service.add_comment(
            session, author, uuid.UUID(first_task), "first", comment_id=comment_id, max_mentions=5
        )
    assert str(made.task_id) == first_task
    async with session_factory() as session:
        with pytest.raises(ConflictError):
            await service.add_comment(
                session,
                author,
                uuid.UUID(second_task),
                "second",
                comment_id=comment_id,
                max_mentions=5,
            )
    assert await count_rows(session_factory, COUNT_COMMENTS, task=second_task) == 0
