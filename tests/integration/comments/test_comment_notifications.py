"""What a comment tells whom: task.commented to the assignee, reviewer and creator (never the
author), task.mentioned to mentioned project members only, through the outbox rows the
comment wrote and the in-app delivery the notification worker runs, read back through the
API."""

from __future__ import annotations

import uuid

import httpx

from taskstream.db import transaction
from taskstream.enums import NotificationChannel
from taskstream.messages import DomainEvent
from taskstream.notifications.service import deliver_in_app, resolve_recipients
from tests.integration.comments.support import Crew, Factory, make_task, outbox_events

COMMENT_EVENTS = ("task.commented", "task.mentioned", "task.comment_edited", "task.comment_deleted")


async def deliver(factory: Factory, events: list[DomainEvent]) -> dict[str, set[str]]:
    """Run the in-app delivery on ``events``; who got a notification, per event type."""
    async with transaction(factory) as session:
        created = await deliver_in_app(session, events)
    by_type: dict[str, set[str]] = {}
    kinds = {e.event_id: e.type for e in events}
    for notification in created:
        by_type.setdefault(kinds[notification.event_id], set()).add(str(notification.user_id))
    return by_type


async def inbox(client: httpx.AsyncClient, user) -> list[dict]:
    response = await client.get("/notifications", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_commented_reaches_assignee_reviewer_and_creator_not_the_author(
    client, crew: Crew, session_factory
):
    task_id = await make_task(
        session_factory, crew, "Ship", assignee=crew.member, reviewer=crew.maintainer
    )
    # the author is the assignee: the reviewer and the creator (owner) hear of it, not Mel
    made = await client.post(
        f"/tasks/{task_id}/comments", json={"body": "Done?"}, headers=crew.member.headers
    )
    assert made.status_code == 201, made.text
    events = await outbox_events(session_factory, task_id, *COMMENT_EVENTS)
    assert [e.type for e in events] == ["task.commented"]
    event = events[0]
    assert event.actor_id == uuid.UUID(crew.member.id)
    assert event.data["assigneeId"] == crew.member.id
    assert event.data["reviewerId"] == crew.maintainer.id
    assert event.data["createdBy"] == crew.owner.id
    assert event.data["commentId"] == made.json()["id"]
    assert await deliver(session_factory, events) == {
        "task.commented": {crew.maintainer.id, crew.owner.id}
    }
    [notification] = [
        n for n in await inbox(client, crew.owner) if n["eventType"] == "task.commented"
    ]
    assert notification["title"] == "New comment on Ship"
    assert notification["data"]["taskId"] == task_id
    assert notification["data"]["commentId"] == made.json()["id"]
    assert notification["data"]["actorId"] == crew.member.id
    assert [n for n in await inbox(client, crew.member) if n["eventType"] == "task.commented"] == []
    # a redelivered event notifies nobody twice
    assert await deliver(session_factory, events) == {}


async def test_a_mentioned_reviewer_hears_once_through_the_mention(
    client, crew: Crew, session_factory
):
    task_id = await make_task(
        session_factory, crew, "Ship", assignee=crew.member, reviewer=crew.maintainer
    )
    body = f"<@{crew.maintainer.id}> please have a look"
    made = await client.post(
        f"/tasks/{task_id}/comments", json={"body": body}, headers=crew.member.headers
    )
    assert made.status_code == 201, made.text
    events = await outbox_events(session_factory, task_id, *COMMENT_EVENTS)
    commented = next(e for e in events if e.type == "task.commented")
    assert commented.data["mentionedIds"] == [crew.maintainer.id]
    # the creator (owner) hears of the comment; the reviewer only of the mention
    assert await deliver(session_factory, events) == {
        "task.commented": {crew.owner.id},
        "task.mentioned": {crew.maintainer.id},
    }


async def test_mentions_notify_current_members_only(client, crew: Crew, session_factory):
    task_id = await make_task(session_factory, crew, "Plan", creator=crew.member)
    body = (
        f"<@{crew.viewer.id}> and <@{crew.maintainer.id}>, see this; also <@{crew.stranger.id}>,"
        f" <@{uuid.uuid4()}>, myself <@{crew.member.id}>, <@not-a-uuid>, @{crew.member2.id}"
        f" and again <@{crew.viewer.id}>"
    )
    made = await client.post(
        f"/tasks/{task_id}/comments", json={"body": body}, headers=crew.member.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["body"] == body  # stored as written; a client renders the tokens
    events = await outbox_events(session_factory, task_id, *COMMENT_EVENTS)
    mentioned = [e.data["userId"] for e in events if e.type == "task.mentioned"]
    assert mentioned == [crew.viewer.id, crew.maintainer.id]
    # the author created the task and is not assigned: nobody else is named on it
    assert await deliver(session_factory, events) == {
        "task.mentioned": {crew.viewer.id, crew.maintainer.id}
    }
    # a mention asks for attention: email too, by default (the email worker's recipients)
    async with session_factory() as session:
        by_email = await resolve_recipients(session, events, NotificationChannel.EMAIL)
    assert {str(r.user_id) for e in events for r in by_email[e.event_id]} == {
        crew.viewer.id,
        crew.maintainer.id,
    }
    titles = [n["title"] for n in await inbox(client, crew.viewer)]
    assert "You were mentioned on Plan" in titles
    assert [
        n for n in await inbox(client, crew.stranger) if n["eventType"].startswith("task.")
    ] == []


async def test_an_edit_mentions_only_people_not_mentioned_before(
    client, crew: Crew, session_factory
):
    task_id = await make_task(session_factory, crew, "Edit me", creator=crew.member)
    made = (
        await client.post(
            f"/tasks/{task_id}/comments",
            json={"body": f"cc <@{crew.viewer.id}>"},
            headers=crew.member.headers,
        )
    ).json()
    path = f"/comments/{made['id']}"
    for body in (f"cc <@{crew.viewer.id}> <@{crew.owner.id}>", f"cc <@{crew.owner.id}>"):
        edited = await client.patch(path, json={"body": body}, headers=crew.member.headers)
        assert edited.status_code == 200, edited.text
    deleted = await client.delete(path, headers=crew.member.headers)
    assert deleted.status_code == 204
    events = await outbox_events(session_factory, task_id, *COMMENT_EVENTS)
    assert [(e.type, e.data.get("userId")) for e in events] == [
        ("task.commented", None),
        ("task.mentioned", crew.viewer.id),
        ("task.comment_edited", None),
        ("task.mentioned", crew.owner.id),
        ("task.comment_edited", None),
        ("task.comment_deleted", None),
    ]
    # edits and deletes notify nobody in-app (webhook subscribers may take them)
    assert await deliver(session_factory, events) == {
        "task.mentioned": {crew.viewer.id, crew.owner.id}
    }
