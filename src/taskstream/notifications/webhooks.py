"""Webhooks: subscriptions, signed deliveries and their attempt log.

A delivery is one event to one subscription; its id (uuid5 of event and subscription) is the
``X-Taskstream-Delivery`` header receivers dedupe on. Each POST is signed:
``X-Taskstream-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>`` with the
timestamp (unix seconds) in ``X-Taskstream-Timestamp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import DeliveryStatus, NotificationChannel, ProjectRole
from taskstream.errors import FieldError, NotFoundError, ValidationFailedError
from taskstream.messages import EVENT_TYPES, DomainEvent
from taskstream.notifications.events import event_project_id
from taskstream.notifications.models import WebhookSubscription
from taskstream.notifications.recipients import notification_id
from taskstream.notifications.schemas import (
    WebhookAttemptOut,
    WebhookCreate,
    WebhookDeliveryOut,
    WebhookOut,
)
from taskstream.notifications.webhook_repository import DeliveryTarget, WebhookRepository
from taskstream.principal import Principal
from taskstream.settings import WebhookSettings

DELIVERY_HEADER = "X-Taskstream-Delivery"
EVENT_HEADER = "X-Taskstream-Event"
TIMESTAMP_HEADER = "X-Taskstream-Timestamp"
SIGNATURE_HEADER = "X-Taskstream-Signature"
ATTEMPT_HEADER = "X-Taskstream-Attempt"
ERROR_LIMIT = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``f"{timestamp}." + body``; receivers recompute and compare."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance_s: int = 300
) -> bool:
    """What a receiver does: constant-time compare and refuse stale timestamps (replays)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


# --- subscriptions (HTTP side) --------------------------------------------------------------


def _validate(body: WebhookCreate) -> None:
    errors = []
    parts = urlsplit(body.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(FieldError("url", "must be an absolute http(s) URL"))
    for index, event_type in enumerate(body.events):
        if event_type != "*" and event_type not in EVENT_TYPES:
            errors.append(FieldError(f"events[{index}]", f"unknown event type {event_type!r}"))
    if errors:
        raise ValidationFailedError(errors)


def to_out(subscription: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=subscription.id,
        project_id=subscription.project_id,
        url=subscription.url,
        events=list(subscription.events),
        active=subscription.active,
        created_at=subscription.created_at,
    )


async def _require_maintainer(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID
) -> None:
    from taskstream.projects.service import require_project_role  # noqa: PLC0415 - API-owned

    await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)


async def create_webhook(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, body: WebhookCreate
) -> WebhookOut:
    """Subscribe a URL to some event types of a project (maintainers and owners)."""
    await _require_maintainer(session, principal, project_id)
    _validate(body)
    subscription = await WebhookRepository.from_session(session).add_subscription(
        WebhookSubscription(
            id=uuid.uuid4(),
            project_id=project_id,
            url=body.url,
            events=sorted(set(body.events)),
            secret=body.secret,
            created_by=principal.user_id,
            active=True,
        )
    )
    await session.commit()
    await session.refresh(subscription)
    return to_out(subscription)


async def list_webhooks(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID
) -> list[WebhookOut]:
    """A project's webhook subscriptions (secrets are never returned)."""
    await _require_maintainer(session, principal, project_id)
    return [
        to_out(s) for s in await WebhookRepository.from_session(session).subscriptions(project_id)
    ]


async def delete_webhook(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    """Remove a subscription and its delivery log."""
    await _require_maintainer(session, principal, project_id)
    if not await WebhookRepository.from_session(session).delete_subscription(
        project_id, webhook_id
    ):
        raise NotFoundError("webhook not found")
    await session.commit()


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    webhook_id: uuid.UUID,
    limit: int = 50,
) -> list[WebhookDeliveryOut]:
    """Recent deliveries of one subscription, newest first, each with its attempts."""
    await _require_maintainer(session, principal, project_id)
    repo = WebhookRepository.from_session(session)
    if await repo.subscription(project_id, webhook_id) is None:
        raise NotFoundError("webhook not found")
    return [
        WebhookDeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempt_log=[
                WebhookAttemptOut(
                    attempt=a.attempt,
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                    attempted_at=a.attempted_at,
                )
                for a in attempts
            ],
        )
        for d, attempts in await repo.deliveries(webhook_id, min(max(limit, 1), 200))
    ]


# --- delivery (worker side) -----------------------------------------------------------------


def delivery_id(event_id: uuid.UUID, subscription_id: uuid.UUID) -> uuid.UUID:
    return notification_id(event_id, subscription_id, NotificationChannel.WEBHOOK)


async def plan_deliveries(session: AsyncSession, event: DomainEvent) -> list[DeliveryTarget]:
    """Create the deliveries of an event (idempotent) and return those still to attempt."""
    project_id = event_project_id(event)
    if project_id is None:
        return []
    repo = WebhookRepository.from_session(session)
    subscriptions = await repo.matching_subscriptions(project_id, event.type)
    if not subscriptions:
        return []
    ids = [delivery_id(event.event_id, s.id) for s in subscriptions]
    await repo.ensure_deliveries(
        [
            {
                "id": did,
                "subscription_id": s.id,
                "event_id": event.event_id,
                "event_type": event.type,
                "status": DeliveryStatus.PENDING,
            }
            for did, s in zip(ids, subscriptions, strict=True)
        ]
    )
    return await pending_targets(session, ids)


async def pending_targets(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID], *, include_dead: bool = False
) -> list[DeliveryTarget]:
    """Deliveries among ``delivery_ids`` not yet delivered (nor dead, unless replayed)."""
    wanted = {DeliveryStatus.PENDING, DeliveryStatus.RETRYING}
    if include_dead:
        wanted.add(DeliveryStatus.DEAD)
    targets = await WebhookRepository.from_session(session).targets(delivery_ids)
    return [t for t in targets if t.status in wanted]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


async def attempt_delivery(
    client: httpx.AsyncClient,
    target: DeliveryTarget,
    event_type: str,
    body: bytes,
    limits: WebhookSettings,
) -> AttemptResult:
    """POST the event once, signed; any 2xx counts as delivered.

    The whole attempt (connect, send, response head, reading at most ``max_response_bytes`` of
    the body) ends at ``attempt_deadline_s``: httpx's own timeouts are per operation, so a
    receiver sending a byte every second would otherwise hold the attempt forever.
    """
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "taskstream-webhooks/1",
        "Accept-Encoding": "identity",  # the capped read below takes raw bytes, never inflated
        DELIVERY_HEADER: str(target.delivery_id),
        EVENT_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(target.secret, timestamp, body),
        ATTEMPT_HEADER: str(target.attempts + 1),
    }
    timeout = httpx.Timeout(limits.attempt_deadline_s, connect=limits.connect_timeout_s)
    started = time.perf_counter()

    def elapsed_ms() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        async with asyncio.timeout(limits.attempt_deadline_s):
            request = client.build_request(
                "POST", target.url, content=body, headers=headers, timeout=timeout
            )
            response = await client.send(request, stream=True)
            try:
                if response.is_success:
                    return AttemptResult(True, response.status_code, None, elapsed_ms())
                head = await _read_capped(response, limits.max_response_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        error = f"deadline: no complete response within {limits.attempt_deadline_s:g}s"
        return AttemptResult(False, None, error, elapsed_ms())
    except httpx.HTTPError as exc:
        return AttemptResult(
            False, None, f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT], elapsed_ms()
        )
    text = head.decode("utf-8", errors="replace")[:200]
    return AttemptResult(
        False, response.status_code, f"HTTP {response.status_code}: {text}", elapsed_ms()
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read (the connection is closed)."""
    chunks: list[bytes] = []
    size = 0
    if limit <= 0:
        return b""
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


async def record_attempt(
    session: AsyncSession, target: DeliveryTarget, result: AttemptResult, max_attempts: int
) -> tuple[DeliveryStatus, int]:
    """Log the attempt and move the delivery to delivered, retrying or dead."""
    return await WebhookRepository.from_session(session).record_attempt(
        target.delivery_id,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        delivered=result.delivered,
        max_attempts=max_attempts,
    )
