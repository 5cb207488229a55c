"""Concurrent duplicates and races on one comment: 4xx or success, never a 500, never a
partial write."""

from __future__ import annotations

import asyncio
import uuid

from taskstream.comments.service import add_comment
from taskstream.enums import UserRole
from taskstream.principal import Principal
from tests.integration.comments.support import Crew, count_rows, make_task, outbox_events

COUNT_COMMENTS = "SELECT count(*) FROM comments WHERE task_id = CAST(:task AS uuid)"


async def test_concurrent_posts_with_one_idempotency_key_write_one_comment(
    served, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew)
    headers = {**crew.member.headers, "Idempotency-Key": f"dup-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(
            served.post(f"/tasks/{task_id}/comments", json={"body": "once"}, headers=headers)
            for _ in range(4)
        )
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    assert 201 in statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1
    events = await outbox_events(session_factory, task_id, "task.commented")
    assert len(events) == 1


async def test_the_same_comment_id_written_twice_at_once_is_one_comment(
    crew: Crew, session_factory, api_settings
):
    """What an Idempotency-Key retry does when the replay record was lost: the derived id
    collides and the second write returns the first comment."""
    task_id = await make_task(session_factory, crew)
    author = Principal(user_id=uuid.UUID(crew.member.id), role=UserRole.MEMBER)
    comment_id = uuid.uuid4()

    async def write():
        async with session_factory() as session:
            return await add_comment(
                session,
                author,
                uuid.UUID(task_id),
                f"<@{crew.viewer.id}> hello",
                comment_id=comment_id,
                max_mentions=api_settings.comments.max_mentions,
            )

    first, second = await asyncio.gather(write(), write())
    assert first.id == second.id == comment_id
    assert await count_rows(session_factory, COUNT_COMMENTS, task=task_id) == 1
    events = await outbox_events(session_factory, task_id, "task.commented", "task.mentioned")
    assert sorted(e.type for e in events) == ["task.commented", "task.mentioned"]
    history = "SELECT count(*) FROM task_events WHERE task_id = CAST(:task AS uuid)"
    assert await count_rows(session_factory, history, task=task_id) == 2  # created, commented


async def test_racing_edits_and_deletes_settle_cleanly(served, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew)
    for _ in range(3):
        made = await served.post(
            f"/tasks/{task_id}/comments", json={"body": "v0"}, headers=crew.member.headers
        )
        assert made.status_code == 201, made.text
        path = f"/comments/{made.json()['id']}"
        responses = await asyncio.gather(
            served.patch(path, json={"body": "v1"}, headers=crew.member.headers),
            served.delete(path, headers=crew.member.headers),
            served.delete(path, headers=crew.maintainer.headers),
            served.patch(path, json={"body": "v2"}, headers=crew.member.headers),
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses[0::3]) <= {200, 404}, [r.text for r in responses]
        assert sorted(statuses[1:3]) == [204, 404], [r.text for r in responses]
    deleted = f"{COUNT_COMMENTS} AND deleted_at IS NOT NULL"
    assert await count_rows(session_factory, deleted, task=task_id) == 3
    events = await outbox_events(session_factory, task_id, "task.comment_deleted")
    assert len(events) == 3
