"""Request and response structs of the notification endpoints (camelCase JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from taskstream.enums import DeliveryStatus, NotificationChannel
from taskstream.fields import Identifier, RequestStruct, Secret, Url, example

# Values shared by the OpenAPI examples below (wire form).
PROJECT_ID = "0192f1e5-0c3d-7e4f-a1b2-c3d4e5f60718"
TASK_ID = "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6"
EVENT_ID = "5b0c3f1e-8d2a-5e47-9b61-2c4d6e8f0a13"
WEBHOOK_ID = "0192f1e8-4c5d-7e6f-8a90-b1c2d3e4f506"
TICKET = "q4Qm1p0yW3o8H0rj0bZ7eJ9m5xWk2cV1aN6tQe3uRZs"


class Schema(msgspec.Struct, rename="camel", kw_only=True):
    pass


NOTIFICATION_EXAMPLE = {
    "id": "0192f1e8-0a1b-7c2d-8e3f-405162738495",
    "eventId": EVENT_ID,
    "eventType": "task.status_changed",
    "title": "Write the launch announcement: in_progress -> in_review",
    "createdAt": "2026-12-03T17:01:00Z",
    "body": None,
    "data": {
        "taskId": TASK_ID,
        "projectId": PROJECT_ID,
        "title": "Write the launch announcement",
        "from": "in_progress",
        "to": "in_review",
    },
    "readAt": None,
}


@example(NOTIFICATION_EXAMPLE)
class NotificationOut(Schema):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    title: str
    created_at: datetime
    body: str | None = None
    data: dict[str, Any] | None = None
    read_at: datetime | None = None


@example({"items": [NOTIFICATION_EXAMPLE], "unreadCount": 4, "nextCursor": None})
class NotificationPage(Schema):
    items: list[NotificationOut]
    unread_count: int
    next_cursor: str | None = None


@example({"markedRead": 4})
class ReadAllResult(Schema):
    marked_read: int


class PreferenceItem(RequestStruct):
    event_type: Identifier
    channel: NotificationChannel
    enabled: bool


@example(
    {
        "items": [
            {"eventType": "task.assigned", "channel": "email", "enabled": True},
            {"eventType": "task.commented", "channel": "in_app", "enabled": False},
        ]
    }
)
class Preferences(RequestStruct):
    """Sent by PUT and answered by GET: the request rules apply to both."""

    items: list[PreferenceItem]


@example(
    {
        "url": "https://hooks.example.com/taskstream",
        "events": ["task.created", "task.status_changed"],
    }
)
class WebhookCreate(RequestStruct):
    url: Url
    events: Annotated[list[Identifier], msgspec.Meta(min_length=1, max_length=32)]
    # Omitted: the server generates a Standard Webhooks secret and answers it once.
    secret: Secret | None = None


WEBHOOK_EXAMPLE = {
    "id": WEBHOOK_ID,
    "projectId": PROJECT_ID,
    "url": "https://hooks.example.com/taskstream",
    "events": ["task.created", "task.status_changed"],
    "active": True,
    "createdAt": "2026-12-03T17:01:00Z",
}


@example(WEBHOOK_EXAMPLE)
class WebhookOut(Schema):
    id: uuid.UUID
    project_id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


@example({**WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7OCGS0QIEtI="})
class WebhookCreated(WebhookOut, omit_defaults=True):
    """The creation answer: ``secret`` only when the server generated it (shown once)."""

    secret: str | None = None


class WebhookAttemptOut(Schema):
    attempt: int
    duration_ms: int
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None


@example(
    {
        "id": "0192f1e8-5d6e-7f80-9a1b-c2d3e4f50617",
        "eventId": EVENT_ID,
        "eventType": "task.status_changed",
        "status": "delivered",
        "attempts": 2,
        "createdAt": "2026-12-03T17:01:00Z",
        "lastStatusCode": 200,
        "lastError": None,
        "deliveredAt": "2026-12-03T17:01:31Z",
        "attemptLog": [
            {
                "attempt": 1,
                "durationMs": 5000,
                "attemptedAt": "2026-12-03T17:01:01Z",
                "statusCode": None,
                "error": "deadline: no complete response within 5s",
            },
            {
                "attempt": 2,
                "durationMs": 84,
                "attemptedAt": "2026-12-03T17:01:31Z",
                "statusCode": 200,
                "error": None,
            },
        ],
    }
)
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


@example(
    {
        "ticket": TICKET,
        "expiresAt": "2026-12-03T17:02:00Z",
        "url": f"/notifications/stream?ticket={TICKET}",
    }
)
class StreamTicketOut(Schema):
    """A one-time ticket for ``GET /notifications/stream?ticket=``."""

    ticket: str
    # The ticket is refused after this instant (and after its first use).
    expires_at: datetime
    # The stream's URL with the ticket, relative to the API.
    url: str
