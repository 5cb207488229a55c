"""SQL for in-app notifications, preferences and the people events are about."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from taskstream.auth.models import User
from taskstream.db import Repository
from taskstream.enums import NotificationChannel, ProjectRole
from taskstream.notifications.models import EmailDelivery, Notification, NotificationPreference
from taskstream.notifications.schemas import LiveNotification
from taskstream.projects.models import Project, ProjectMember

INSERT_CHUNK = 5000
_json = msgspec.json.Encoder()

# Arrays instead of a multi-row VALUES: six bind parameters whatever the batch size, so neither
# SQLAlchemy nor PostgreSQL re-plans a statement with thousands of placeholders per batch.
INSERT_NOTIFICATIONS = text(
    """
    INSERT INTO notifications (id, user_id, event_id, event_type, title, data)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:user_ids AS uuid[]), CAST(:event_ids AS uuid[]),
        CAST(:event_types AS varchar[]), CAST(:titles AS varchar[]), CAST(:data AS jsonb[])
    )
    ON CONFLICT (id) DO NOTHING
    RETURNING id, user_id, event_id, event_type, title, data, created_at
    """
)


@dataclass(frozen=True, slots=True)
class NewNotification:
    id: uuid.UUID
    user_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    title: str
    data: dict[str, Any]


class NotificationRepository(Repository):
    # --- recipients -------------------------------------------------------------------------

    async def project_managers(
        self, project_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, set[uuid.UUID]]:
        """Owners and maintainers per project (the project's owner_id included)."""
        managers: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        if not project_ids:
            return managers
        ids = list(project_ids)
        members = select(ProjectMember.project_id, ProjectMember.user_id).where(
            ProjectMember.project_id.in_(ids),
            ProjectMember.role.in_([ProjectRole.OWNER, ProjectRole.MAINTAINER]),
        )
        owners = select(Project.id, Project.owner_id).where(Project.id.in_(ids))
        for project_id, user_id in (await self.session.execute(members.union(owners))).all():
            managers[project_id].add(user_id)
        return managers

    async def current_members(
        self, project_ids: Collection[uuid.UUID], user_ids: Collection[uuid.UUID]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """(project, user) for each of these users who is a member of these projects now."""
        if not project_ids or not user_ids:
            return set()
        rows = await self.session.execute(
            select(ProjectMember.project_id, ProjectMember.user_id).where(
                ProjectMember.project_id.in_(list(project_ids)),
                ProjectMember.user_id.in_(list(user_ids)),
            )
        )
        return {(project_id, user_id) for project_id, user_id in rows.all()}

    async def active_users(self, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Email address of each user that exists and is not deleted."""
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.email).where(
                User.id.in_(list(user_ids)), User.deleted_at.is_(None)
            )
        )
        return dict(rows.all())

    async def preferences(
        self, user_ids: Collection[uuid.UUID], channel: NotificationChannel
    ) -> dict[tuple[uuid.UUID, str], bool]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(
                NotificationPreference.user_id,
                NotificationPreference.event_type,
                NotificationPreference.enabled,
            ).where(
                NotificationPreference.user_id.in_(list(user_ids)),
                NotificationPreference.channel == channel,
            )
        )
        return {(user_id, event_type): enabled for user_id, event_type, enabled in rows.all()}

    # --- in-app notifications ---------------------------------------------------------------

    async def insert_notifications(self, rows: Sequence[NewNotification]) -> list[LiveNotification]:
        """One unnest INSERT per chunk, skipping ids already present (redeliveries); returns
        only the rows created now."""
        created: list[LiveNotification] = []
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            result = await self.session.execute(
                INSERT_NOTIFICATIONS,
                {
                    "ids": [r.id for r in chunk],
                    "user_ids": [r.user_id for r in chunk],
                    "event_ids": [r.event_id for r in chunk],
                    "event_types": [r.event_type for r in chunk],
                    "titles": [r.title for r in chunk],
                    "data": [_json.encode(r.data).decode() for r in chunk],
                },
            )
            created.extend(
                LiveNotification(
                    id=row.id,
                    user_id=row.user_id,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    title=row.title,
                    data=row.data,
                    created_at=row.created_at,
                )
                for row in result
            )
        return created

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        unread_only: bool,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> list[Notification]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        if before is not None:
            created_at, last_id = before
            stmt = stmt.where(
                or_(
                    Notification.created_at < created_at,
                    and_(Notification.created_at == created_at, Notification.id < last_id),
                )
            )
        stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def after(
        self, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID], limit: int
    ) -> list[Notification]:
        """Oldest first, the ones after ``after`` in (created_at, id) order."""
        created_at, last_id = after
        stmt = (
            select(Notification)
            .where(
                Notification.user_id == user_id,
                or_(
                    Notification.created_at > created_at,
                    and_(Notification.created_at == created_at, Notification.id > last_id),
                ),
            )
            .order_by(Notification.created_at, Notification.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def mark_read(
        self, user_id: uuid.UUID, notification_id: uuid.UUID
    ) -> Notification | None:
        stmt = (
            update(Notification)
            .where(Notification.id == notification_id, Notification.user_id == user_id)
            .values(read_at=func.coalesce(Notification.read_at, func.now()))
            .returning(Notification)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def mark_all_read(self, user_id: uuid.UUID) -> int:
        stmt = (
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=func.now())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def unread_count(self, user_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim_email(
        self, delivery_id: uuid.UUID, user_id: uuid.UUID, event_id: uuid.UUID, address: str
    ) -> bool:
        """Record an email as sent in the caller's transaction; False if it already was."""
        stmt = (
            insert(EmailDelivery)
            .values(id=delivery_id, user_id=user_id, event_id=event_id, recipient=address)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(EmailDelivery.id)
        )
        return (await self.session.scalar(stmt)) is not None

    # --- preferences ------------------------------------------------------------------------

    async def user_preferences(
        self, user_id: uuid.UUID
    ) -> dict[tuple[str, NotificationChannel], bool]:
        rows = await self.session.execute(
            select(
                NotificationPreference.event_type,
                NotificationPreference.channel,
                NotificationPreference.enabled,
            ).where(NotificationPreference.user_id == user_id)
        )
        return {(event_type, channel): enabled for event_type, channel, enabled in rows.all()}

    async def upsert_preferences(
        self, user_id: uuid.UUID, choices: Sequence[tuple[str, NotificationChannel, bool]]
    ) -> None:
        if not choices:
            return
        stmt = insert(NotificationPreference).values(
            [
                {"user_id": user_id, "event_type": e, "channel": c, "enabled": enabled}
                for e, c, enabled in choices
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "event_type", "channel"],
            set_={"enabled": stmt.excluded.enabled},
        )
        await self.session.execute(stmt)
