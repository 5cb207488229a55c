"""SQL for webhook subscriptions, deliveries and attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from taskstream.db import Repository
from taskstream.enums import DeliveryStatus
from taskstream.notifications.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from taskstream.projects.models import Project


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """A delivery still to be attempted, with where and how to sign it."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    status: DeliveryStatus
    attempts: int


class WebhookRepository(Repository):
    async def add_subscription(self, subscription: WebhookSubscription) -> WebhookSubscription:
        self.session.add(subscription)
        await self.session.flush()
        return subscription

    async def count_for_update(self, project_id: uuid.UUID) -> int:
        """The project's subscriptions, counted under its row lock (held to commit)."""
        await self.session.execute(
            select(Project.id).where(Project.id == project_id).with_for_update()
        )
        stmt = select(func.count()).where(WebhookSubscription.project_id == project_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def subscriptions(self, project_id: uuid.UUID) -> list[WebhookSubscription]:
        stmt = (
            select(WebhookSubscription)
            .where(WebhookSubscription.project_id == project_id)
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def subscription(
        self, project_id: uuid.UUID, webhook_id: uuid.UUID
    ) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(
            WebhookSubscription.id == webhook_id, WebhookSubscription.project_id == project_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete_subscription(self, project_id: uuid.UUID, webhook_id: uuid.UUID) -> bool:
        stmt = delete(WebhookSubscription).where(
            WebhookSubscription.id == webhook_id, WebhookSubscription.project_id == project_id
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def matching_subscriptions(
        self, project_id: uuid.UUID, event_type: str
    ) -> list[WebhookSubscription]:
        stmt = select(WebhookSubscription).where(
            WebhookSubscription.project_id == project_id,
            WebhookSubscription.active.is_(True),
            or_(
                WebhookSubscription.events.any_() == event_type,
                WebhookSubscription.events.any_() == literal("*"),
            ),
        )
        return list((await self.session.scalars(stmt)).all())

    async def ensure_deliveries(self, rows: Sequence[dict[str, object]]) -> None:
        """Create pending deliveries; ones that exist (a redelivered event) stay as they are."""
        if rows:
            stmt = insert(WebhookDelivery).values(list(rows)).on_conflict_do_nothing()
            await self.session.execute(stmt)

    async def targets(self, delivery_ids: Sequence[uuid.UUID]) -> list[DeliveryTarget]:
        stmt = (
            select(
                WebhookDelivery.id,
                WebhookDelivery.subscription_id,
                WebhookSubscription.url,
                WebhookSubscription.secret,
                WebhookDelivery.status,
                WebhookDelivery.attempts,
            )
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id.in_(list(delivery_ids)), WebhookSubscription.active.is_(True))
        )
        return [DeliveryTarget(*row) for row in (await self.session.execute(stmt)).all()]

    async def record_attempt(
        self,
        delivery_id: uuid.UUID,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        delivered: bool,
        max_attempts: int,
    ) -> tuple[DeliveryStatus, int]:
        """Count one attempt and move the delivery on; returns (new status, attempts so far).

        The row lock serialises two workers that hold the same delivery after a redelivery.
        """
        locked = select(WebhookDelivery.attempts).where(WebhookDelivery.id == delivery_id)
        previous = (await self.session.execute(locked.with_for_update())).scalar_one()
        attempts = previous + 1
        if delivered:
            status = DeliveryStatus.DELIVERED
        elif attempts >= max_attempts:
            status = DeliveryStatus.DEAD
        else:
            status = DeliveryStatus.RETRYING
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                attempts=attempts,
                status=status,
                last_status_code=status_code,
                last_error=error,
                updated_at=func.now(),
                delivered_at=func.now() if delivered else None,
            )
        )
        self.session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempt=attempts,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        await self.session.flush()
        return status, attempts

    async def deliveries(
        self, subscription_id: uuid.UUID, limit: int
    ) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
        stmt = (
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
        deliveries = list((await self.session.scalars(stmt)).all())
        if not deliveries:
            return []
        attempts_stmt = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.id)
        )
        by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
        for attempt in (await self.session.scalars(attempts_stmt)).all():
            by_delivery[attempt.delivery_id].append(attempt)
        return [(d, by_delivery[d.id]) for d in deliveries]

    async def set_status(self, delivery_id: uuid.UUID, status: DeliveryStatus) -> None:
        await self.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(status=status)
        )
