"""A task's audit trail and a project's activity feed, read through the API from the rows the
command applier and the comment service wrote."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import event

from taskstream.comments.repository import CommentRepository
from taskstream.enums import TaskStatus
from taskstream.history.repository import HistoryRepository
from taskstream.messages import TransitionTask, UpdateTask
from tests.integration.comments.support import (
    Crew,
    delete_task,
    make_admin,
    make_task,
    review,
    run,
    same_not_found,
)


async def get_page(client: httpx.AsyncClient, path: str, user, **params) -> dict:
    response = await client.get(path, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def all_pages(client: httpx.AsyncClient, path: str, user, limit: int) -> list[dict]:
    items, cursor = [], None
    while True:
        page = await get_page(
            client, path, user, limit=limit, **({"cursor": cursor} if cursor else {})
        )
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items


async def test_a_tasks_history_says_who_did_what_when_with_before_and_after(
    client, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew, "Draft", assignee=crew.member)
    await run(session_factory, crew.member, task_id, UpdateTask(title="Final draft"))
    await run(session_factory, crew.member, task_id, TransitionTask(to=TaskStatus.IN_PROGRESS))
    comment = await client.post(
        f"/tasks/{task_id}/comments", json={"body": "on it"}, headers=crew.member2.headers
    )
    assert comment.status_code == 201

    page = await get_page(client, f"/tasks/{task_id}/events", crew.viewer)
    assert page["nextCursor"] is None
    items = page["items"]
    assert [(i["type"], i["actorName"]) for i in items] == [
        ("task.created", "Olive"),
        ("task.assigned", "Olive"),
        ("task.updated", "Mel"),
        ("task.status_changed", "Mel"),
        ("task.commented", "Max"),
    ]
    created, assigned, updated, moved, commented = items
    assert created["before"] is None and created["after"]["title"] == "Draft"
    assert assigned["before"]["assigneeId"] is None
    assert assigned["after"]["assigneeId"] == crew.member.id
    assert (updated["before"]["title"], updated["after"]["title"]) == ("Draft", "Final draft")
    assert (moved["before"]["status"], moved["after"]["status"]) == ("todo", "in_progress")
    assert commented["after"] == {"commentId": comment.json()["id"]}
    assert commented["commandId"] is None
    for item in items:
        assert item["taskId"] == task_id and item["projectId"] == crew.project_id
        assert item["taskTitle"] == "Final draft"
        assert item["occurredAt"]
    # a command's row links to its status
    status = await client.get(f"/commands/{moved['commandId']}", headers=crew.member.headers)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "applied"
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)


async def test_history_is_for_members_only(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    for user in crew.members:
        events = await get_page(client, f"/tasks/{task_id}/events", user)
        activity = await get_page(client, f"/projects/{crew.project_id}/activity", user)
        assert [i["type"] for i in events["items"]] == ["task.created"]
        assert [i["taskId"] for i in activity["items"]] == [task_id]
    random_id = uuid.uuid4()
    same_not_found(
        await client.get(f"/tasks/{task_id}/events", headers=crew.stranger.headers),
        await client.get(f"/tasks/{random_id}/events", headers=crew.stranger.headers),
    )
    same_not_found(
        await client.get(f"/projects/{crew.project_id}/activity", headers=crew.stranger.headers),
        await client.get(f"/projects/{random_id}/activity", headers=crew.stranger.headers),
    )
    admin = await make_admin(client, session_factory)
    assert len((await get_page(client, f"/tasks/{task_id}/events", admin))["items"]) == 1
    assert (await client.get(f"/tasks/{task_id}/events")).status_code == 401


async def test_a_deleted_task_keeps_its_history(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew, creator=crew.member)
    await delete_task(session_factory, crew.maintainer, task_id)
    assert (await client.get(f"/tasks/{task_id}", headers=crew.member.headers)).status_code == 404
    items = (await get_page(client, f"/tasks/{task_id}/events", crew.viewer))["items"]
    assert [(i["type"], i["actorName"]) for i in items] == [
        ("task.created", "Mel"),
        ("task.deleted", "Maya"),
    ]
    assert items[1]["after"]["deleted"] is True
    same_not_found(
        await client.get(f"/tasks/{task_id}/events", headers=crew.stranger.headers),
        await client.get(f"/tasks/{uuid.uuid4()}/events", headers=crew.stranger.headers),
    )


async def test_the_project_feed_is_newest_first_with_titles_and_comments(
    client, crew: Crew, session_factory
):
    first = await make_task(session_factory, crew, "First", assignee=crew.member)
    second = await make_task(session_factory, crew, "Second")
    elsewhere = await make_task(
        session_factory, crew, "Elsewhere", project_id=crew.owner.personal_project_id
    )
    await review(session_factory, crew.member, crew.maintainer, first, "tighten it")
    made = await client.post(
        f"/tasks/{second}/comments", json={"body": "hello"}, headers=crew.member.headers
    )
    assert made.status_code == 201
    await client.delete(f"/comments/{made.json()['id']}", headers=crew.member.headers)

    path = f"/projects/{crew.project_id}/activity"
    items = (await get_page(client, path, crew.viewer))["items"]
    assert [(i["taskTitle"], i["type"]) for i in items] == [
        ("Second", "task.comment_deleted"),
        ("Second", "task.commented"),
        ("First", "task.reviewed"),
        ("First", "task.status_changed"),
        ("First", "task.status_changed"),
        ("Second", "task.created"),
        ("First", "task.assigned"),
        ("First", "task.created"),
    ]
    assert elsewhere not in {i["taskId"] for i in items}
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)

    for limit in (1, 3, 7):
        assert await all_pages(client, path, crew.viewer, limit) == items
    events_path = f"/tasks/{first}/events"
    whole = (await get_page(client, events_path, crew.member))["items"]
    assert await all_pages(client, events_path, crew.member, 2) == whole


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "%%%"},
        {"cursor": base64.urlsafe_b64encode(b"-5").decode()},
        {"cursor": base64.urlsafe_b64encode(b"12a").decode()},
        {"cursor": base64.urlsafe_b64encode(b"9" * 40).decode()},
        {"cursor": base64.urlsafe_b64encode("\u0663".encode()).decode()},  # a non-ASCII digit
        {"cursor": "a\x00"},
        {"cursor": "x" * 201},
        {"limit": 0},
        {"limit": -1},
        {"limit": "many"},
    ],
)
async def test_bad_cursors_and_limits_are_422(client, crew: Crew, session_factory, params):
    task_id = await make_task(session_factory, crew)
    for path in (f"/tasks/{task_id}/events", f"/projects/{crew.project_id}/activity"):
        response = await client.get(path, params=params, headers=crew.member.headers)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_large_limit_is_lowered_not_refused(
    client, crew: Crew, session_factory, api_settings
):
    task_id = await make_task(session_factory, crew)
    page = await get_page(client, f"/tasks/{task_id}/events", crew.member, limit=1_000_000)
    assert len(page["items"]) == 1 and page["nextCursor"] is None
    assert api_settings.api.page_limit_max < 1_000_000


async def test_the_feed_and_the_thread_are_served_by_their_indexes(
    crew: Crew, session_factory, engine
):
    """EXPLAIN the very statements the repositories send: the indexes of migration 0007 must
    serve them (a feed that sorts all of a project's events per page would not scale)."""
    task_id = uuid.UUID(await make_task(session_factory, crew))
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM task_events" in statement or "FROM comments" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with session_factory() as session:
            history = HistoryRepository.from_session(session)
            await history.project_page(uuid.UUID(crew.project_id), before=10**9, limit=51)
            await history.task_page(task_id, after=0, limit=51)
            await CommentRepository.from_session(session).thread(
                task_id, after=(datetime.now(UTC), uuid.uuid4()), limit=51
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    expected = [
        "ix_task_events_project_id_id",
        "ix_task_events_task_id_id",
        "ix_comments_task_id_created_at_id",
    ]
    assert len(sent) == len(expected)
    async with engine.connect() as conn:
        # On small tables the planner may prefer a scan; forbidding it shows the index fits.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for (statement, parameters), index in zip(sent, expected, strict=True):
            plan = (await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all()
            assert any(index in row[0] for row in plan), plan
        await conn.rollback()
