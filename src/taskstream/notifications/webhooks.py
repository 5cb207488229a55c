"""Webhooks: subscriptions, signed deliveries and their attempt log.

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` is the
delivery id (uuid5 of event and subscription, stable across retries: receivers dedupe on it),
``webhook-timestamp`` is unix seconds and ``webhook-signature`` is
``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}." + body)>``, so the signature covers the id
and a captured request cannot be replayed under another id. The key is the base64-decoded part
of a ``whsec_...`` secret (what the API generates); a free-form secret chosen by the client is
used as its UTF-8 bytes (receivers using the ``standardwebhooks`` library pass
``"whsec_" + base64(secret)``).

Deprecated, sent for one more release: ``X-Taskstream-Delivery``, ``X-Taskstream-Event``,
``X-Taskstream-Attempt``, ``X-Taskstream-Timestamp`` and ``X-Taskstream-Signature:
sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>`` (which does not cover the id).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.enums import DeliveryStatus, NotificationChannel, ProjectRole
from taskstream.errors import (
    FieldError,
    NotFoundError,
    ValidationFailedError,
    WebhookQuotaExceededError,
)
from taskstream.messages import EVENT_TYPES, DomainEvent
from taskstream.notifications.events import event_project_id
from taskstream.notifications.models import WebhookSubscription
from taskstream.notifications.recipients import notification_id
from taskstream.notifications.schemas import (
    WebhookAttemptOut,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookOut,
)
from taskstream.notifications.webhook_repository import DeliveryTarget, WebhookRepository
from taskstream.notifications.webhook_targets import TargetRefusedError, WebhookTargetPolicy
from taskstream.observability.tracing import TRACEPARENT_HEADER
from taskstream.principal import Principal
from taskstream.projects.service import require_project_role
from taskstream.settings import Settings, WebhookSettings

WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
# Deprecated headers (see the module docstring).
DELIVERY_HEADER = "X-Taskstream-Delivery"
EVENT_HEADER = "X-Taskstream-Event"
TIMESTAMP_HEADER = "X-Taskstream-Timestamp"
SIGNATURE_HEADER = "X-Taskstream-Signature"
ATTEMPT_HEADER = "X-Taskstream-Attempt"


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: decoded ``whsec_`` base64, else the secret's own bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` over ``f"{id}.{timestamp}." + body`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Deprecated ``sha256=<hex>`` over ``f"{timestamp}." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, tolerance_s: int = 300
) -> bool:
    """What a receiver of the deprecated headers does: constant-time compare, no stale ones."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


# --- subscriptions (HTTP side) --------------------------------------------------------------


async def _validate(body: WebhookCreate, policy: WebhookTargetPolicy) -> None:
    errors = []
    if (refusal := await policy.registration_refusal(body.url)) is not None:
        errors.append(FieldError("url", refusal))
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
    await require_project_role(session, principal, project_id, ProjectRole.MAINTAINER)


async def create_webhook(
    session: AsyncSession,
    principal: Principal,
    project_id: uuid.UUID,
    body: WebhookCreate,
    settings: Settings,
) -> WebhookCreated:
    """Subscribe a public URL to some event types of a project (maintainers and owners).

    Without a ``secret`` in the request one is generated (``whsec_`` + base64) and answered
    once; it is stored as given (HMAC needs it) and never returned again.
    """
    await _require_maintainer(session, principal, project_id)
    await _validate(body, WebhookTargetPolicy.from_settings(settings))
    repo = WebhookRepository.from_session(session)
    # Counted under the project's row lock so concurrent creations cannot pass the quota.
    if await repo.count_for_update(project_id) >= settings.webhooks.max_per_project:
        raise WebhookQuotaExceededError(
            f"a project has at most {settings.webhooks.max_per_project} webhooks"
        )
    generated = generate_secret() if body.secret is None else None
    subscription = await repo.add_subscription(
        WebhookSubscription(
            id=uuid.uuid4(),
            project_id=project_id,
            url=body.url,
            events=sorted(set(body.events)),
            secret=generated or body.secret,
            created_by=principal.user_id,
            active=True,
        )
    )
    await session.commit()
    await session.refresh(subscription)
    out = to_out(subscription)
    return WebhookCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, secret=generated)


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
    *,
    traceparent: str | None = None,
) -> AttemptResult:
    """POST the event once, signed; any 2xx counts as delivered. ``traceparent`` (W3C) lets
    the receiver join the trace of the command that caused the event.

    ``client`` is :func:`~taskstream.notifications.webhook_targets.webhook_client`: it refuses
    non-public targets after resolving them and connects to the address it checked. The whole
    attempt ends at ``attempt_deadline_s`` (httpx's timeouts are per operation, so a receiver
    trickling bytes would otherwise hold it). No response body is read: the attempt log keeps
    the status and a reason of our own wording, never what the target answered.
    """
    timestamp = int(time.time())
    message_id = str(target.delivery_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "taskstream-webhooks/1",
        WEBHOOK_ID_HEADER: message_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: sign_standard(target.secret, message_id, timestamp, body),
        DELIVERY_HEADER: message_id,
        EVENT_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(target.secret, timestamp, body),
        ATTEMPT_HEADER: str(target.attempts + 1),
    }
    if traceparent is not None:
        headers[TRACEPARENT_HEADER] = traceparent
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
            await response.aclose()
    except TimeoutError:
        error = f"deadline: no complete response within {limits.attempt_deadline_s:g}s"
        return AttemptResult(False, None, error, elapsed_ms())
    except httpx.HTTPError as exc:
        return AttemptResult(False, None, failure_reason(exc), elapsed_ms())
    if response.is_success:
        return AttemptResult(True, response.status_code, None, elapsed_ms())
    return AttemptResult(False, response.status_code, f"HTTP {response.status_code}", elapsed_ms())


def failure_reason(exc: httpx.HTTPError) -> str:
    """A short reason in our words: no text from the target or the resolver reaches the log."""
    if isinstance(exc, TargetRefusedError):
        return f"refused: {exc.reason}"[:200]
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol error"
    return type(exc).__name__


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
