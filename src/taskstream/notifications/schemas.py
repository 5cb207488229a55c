"""Request and response structs of the notification endpoints (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from taskstream.enums import DeliveryStatus, NotificationChannel
from taskstream.fields import Identifier, RequestStruct, Secret, Url


class Schema(msgspec.Struct, rename="camel", kw_only=True):
    pass


class NotificationOut(Schema):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    title: str
    created_at: datetime
    body: str | None = None
    data: dict[str, Any] | None = None
    read_at: datetime | None = None


class NotificationPage(Schema):
    items: list[NotificationOut]
    unread_count: int
    next_cursor: str | None = None


class ReadAllResult(Schema):
    marked_read: int


class PreferenceItem(RequestStruct):
    event_type: Identifier
    channel: NotificationChannel
    enabled: bool


class Preferences(RequestStruct):
    """Sent by PUT and answered by GET: the request rules apply to both."""

    items: list[PreferenceItem]


class WebhookCreate(RequestStruct):
    url: Url
    events: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=32)]
    # Omitted: the server generates a Standard Webhooks secret and answers it once.
    secret: Secret | None = None


class WebhookOut(Schema):
    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut, omit_defaults=True):
    """The creation answer: ``secret`` only when the server generated it (shown once)."""

    secret: str | None = None


class WebhookAttemptOut(Schema):
    attempt: int
    duration_ms: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None


class WebhookDeliveryOut(Schema):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    attempt_log: list[WebhookAttemptOut] = msgspec.field(default_factory=list)


class LiveNotification(Schema):
    """What the worker publishes for the SSE stream after commit."""

    id: uuid.UUID
    user_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    title: str
    created_at: datetime
    data: dict[str, Any] | None = None


class StreamTicketOut(Schema):
    """A one-time ticket for ``GET /notifications/stream?ticket=``."""

    ticket: str
    # The ticket is refused after this instant (and after its first use).
    expires_at: datetime
    # The stream's URL with the ticket, relative to the API.
    url: str
