"""In-app notifications and preferences: the rules the worker and the endpoints share."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import NotificationChannel
from taskstream.errors import FieldError, NotFoundError, ValidationFailedError
from taskstream.fields import parse_storable_datetime
from taskstream.messages import EVENT_TYPES, DomainEvent
from taskstream.notifications.events import event_project_id
from taskstream.notifications.models import Notification
from taskstream.notifications.recipients import (
    ACCOUNT_NOTICES,
    DEFAULTS,
    USER_CHANNELS,
    candidate_recipients,
    notification_id,
    wants,
)
from taskstream.notifications.repository import NewNotification, NotificationRepository
from taskstream.notifications.schemas import (
    LiveNotification,
    NotificationOut,
    NotificationPage,
    PreferenceItem,
    Preferences,
)
from taskstream.notifications.texts import render_data, render_title
from taskstream.principal import Principal


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: uuid.UUID
    email: str


async def resolve_recipients(
    session: AsyncSession, events: Sequence[DomainEvent], channel: NotificationChannel
) -> dict[uuid.UUID, list[Recipient]]:
    """Recipients per event id for one channel: roles, minus the actor, deleted users, people
    who are no longer members of the event's project, and anyone whose preferences switch
    this (event type, channel) off. Four queries per batch.

    Membership is read here, when the notification goes out, not when the event was written:
    someone removed from a project in between hears nothing more about it, even about tasks
    they created or are still named on.
    """
    repo = NotificationRepository.from_session(session)
    project_ids = {p for e in events if (p := event_project_id(e)) is not None}
    managers = await repo.project_managers(project_ids)
    candidates = {
        e.event_id: candidate_recipients(
            e, managers.get(event_project_id(e) or uuid.UUID(int=0), ())
        )
        for e in events
    }
    everyone = set().union(*candidates.values()) if candidates else set()
    members = await repo.current_members(project_ids, everyone)
    for event in events:
        if (project_id := event_project_id(event)) is not None:
            candidates[event.event_id] = {
                u for u in candidates[event.event_id] if (project_id, u) in members
            }
    everyone = set().union(*candidates.values()) if candidates else set()
    emails = await repo.active_users(everyone)
    preferences = await repo.preferences(emails.keys(), channel)
    return {
        e.event_id: [
            Recipient(user_id, emails[user_id])
            for user_id in sorted(candidates[e.event_id])
            if user_id in emails and wants(preferences, user_id, e.type, channel)
        ]
        for e in events
    }


async def deliver_in_app(
    session: AsyncSession, events: Sequence[DomainEvent]
) -> list[LiveNotification]:
    """Create the in-app notifications of a batch of events in the caller's transaction.

    Ids are uuid5(event, recipient, channel), so a redelivered event inserts nothing; the
    returned list holds only notifications created now (the ones to push live after commit).
    """
    recipients = await resolve_recipients(session, events, NotificationChannel.IN_APP)
    rows = [
        NewNotification(
            id=notification_id(event.event_id, r.user_id, NotificationChannel.IN_APP),
            user_id=r.user_id,
            event_id=event.event_id,
            event_type=event.type,
            title=render_title(event),
            data=render_data(event),
        )
        for event in events
        for r in recipients[event.event_id]
    ]
    if not rows:
        return []
    return await NotificationRepository.from_session(session).insert_notifications(rows)


# --- reading --------------------------------------------------------------------------------


def position(created_at: datetime, notification_id_: uuid.UUID) -> str:
    """A notification's place in the order of a user's notifications, (created_at, id), as an
    opaque string: the page cursor of ``GET /notifications`` and the SSE event id."""
    raw = f"{created_at.isoformat()}|{notification_id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_cursor(notification: Notification) -> str:
    return position(notification.created_at, notification.id)


def decode_cursor(cursor: str, field: str = "cursor") -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) of a ``position``; 422 at ``field`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, last_id = raw.partition("|")
        # a crafted cursor must not reach SQL with a datetime PostgreSQL cannot take
        return parse_storable_datetime(created_at), uuid.UUID(last_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailedError([FieldError(field, f"invalid {field}")]) from exc


def to_out(notification: Notification) -> NotificationOut:
    return NotificationOut(
        id=notification.id,
        event_id=notification.event_id,
        event_type=notification.event_type,
        title=notification.title,
        body=notification.body,
        data=notification.data,
        created_at=notification.created_at,
        read_at=notification.read_at,
    )


async def list_notifications(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int = 50,
    unread_only: bool = False,
    cursor: str | None = None,
) -> NotificationPage:
    """The caller's notifications, newest first; ``nextCursor`` continues after the last item.
    ``limit`` is the page size (web/pagination.py decides it from the request)."""
    repo = NotificationRepository.from_session(session)
    before = decode_cursor(cursor) if cursor else None
    rows = await repo.page(
        principal.user_id, limit=limit + 1, unread_only=unread_only, before=before
    )
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
    return NotificationPage(
        items=[to_out(n) for n in items],
        next_cursor=next_cursor,
        unread_count=await repo.unread_count(principal.user_id),
    )


async def notifications_after(
    session: AsyncSession, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID], limit: int
) -> list[LiveNotification]:
    """The user's notifications that come after ``after`` in (created_at, id) order, oldest
    first, in the shape of the live push: what a reconnecting stream missed."""
    rows = await NotificationRepository.from_session(session).after(user_id, after, limit)
    return [
        LiveNotification(
            id=n.id,
            user_id=n.user_id,
            event_id=n.event_id,
            event_type=n.event_type,
            title=n.title,
            created_at=n.created_at,
            data=n.data,
        )
        for n in rows
    ]


async def mark_read(
    session: AsyncSession, principal: Principal, notification_id_: uuid.UUID
) -> NotificationOut:
    """Mark one of the caller's notifications read (idempotent); others' ids are 404."""
    row = await NotificationRepository.from_session(session).mark_read(
        principal.user_id, notification_id_
    )
    if row is None:
        raise NotFoundError("notification not found")
    await session.commit()
    return to_out(row)


async def mark_all_read(session: AsyncSession, principal: Principal) -> int:
    """Mark every unread notification of the caller read; returns how many changed."""
    count = await NotificationRepository.from_session(session).mark_all_read(principal.user_id)
    await session.commit()
    return count


# --- preferences ----------------------------------------------------------------------------


async def get_preferences(session: AsyncSession, principal: Principal) -> Preferences:
    """The effective matrix (event type x channel), defaults filled in."""
    explicit = await NotificationRepository.from_session(session).user_preferences(
        principal.user_id
    )
    return Preferences(
        items=[
            PreferenceItem(
                event_type=event_type,
                channel=channel,
                enabled=explicit.get((event_type, channel), event_type in DEFAULTS[channel]),
            )
            for event_type in EVENT_TYPES
            if event_type not in ACCOUNT_NOTICES  # always emailed, not a preference
            for channel in USER_CHANNELS
        ]
    )


async def put_preferences(
    session: AsyncSession, principal: Principal, update: Preferences
) -> Preferences:
    """Store explicit choices (others keep their defaults) and return the effective matrix."""
    errors = []
    for index, item in enumerate(update.items):
        if item.event_type not in EVENT_TYPES:
            errors.append(FieldError(f"items[{index}].eventType", "unknown event type"))
        elif item.event_type in ACCOUNT_NOTICES:
            errors.append(FieldError(f"items[{index}].eventType", "is always emailed"))
        if item.channel not in USER_CHANNELS:
            errors.append(FieldError(f"items[{index}].channel", "not a per-user channel"))
    if errors:
        raise ValidationFailedError(errors)
    choices = {(i.event_type, i.channel): i.enabled for i in update.items}
    await NotificationRepository.from_session(session).upsert_preferences(
        principal.user_id, [(e, c, enabled) for (e, c), enabled in choices.items()]
    )
    await session.commit()
    return await get_preferences(session, principal)
