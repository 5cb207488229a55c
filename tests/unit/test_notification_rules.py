"""Pure notification rules: recipients, preferences, ids, signatures, decoding, backoff."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from taskstream.workers.topology import Topology

from taskstream.enums import NotificationChannel
from taskstream.messages import DomainEvent, encode_event
from taskstream.notifications.events import PoisonEventError, decode_notification_event
from taskstream.notifications.recipients import candidate_recipients, notification_id, wants
from taskstream.notifications.texts import render_title
from taskstream.notifications.webhooks import sign, verify
from taskstream.settings import RabbitSettings

OWNER, MAINT, ALICE, BOB, CAROL = (uuid.uuid4() for _ in range(5))


def event(event_type: str, actor: uuid.UUID | None, **data: object) -> DomainEvent:
    return DomainEvent(
        event_id=uuid.uuid4(),
        type=event_type,
        occurred_at=datetime.now(UTC),
        aggregate_id=uuid.uuid4(),
        actor_id=actor,
        data={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in data.items()},
    )


@pytest.mark.parametrize(
    ("event_type", "actor", "data", "expected"),
    [
        ("task.created", OWNER, {"assigneeId": ALICE}, {MAINT}),
        ("task.assigned", OWNER, {"assigneeId": BOB, "previousAssigneeId": ALICE}, {ALICE, BOB}),
        ("task.assigned", BOB, {"assigneeId": BOB}, set()),
        ("task.review_requested", ALICE, {"assigneeId": ALICE, "reviewerId": CAROL}, {CAROL}),
        ("task.reviewed", CAROL, {"assigneeId": ALICE, "createdBy": OWNER}, {ALICE, OWNER}),
        ("task.completed", BOB, {"assigneeId": BOB, "createdBy": OWNER}, {OWNER, MAINT}),
        ("task.overdue", None, {"assigneeId": ALICE}, {ALICE, OWNER, MAINT}),
        ("project.member_added", OWNER, {"userId": CAROL}, {CAROL}),
        ("project.created", OWNER, {}, set()),
    ],
)
def test_recipients_by_role_without_the_actor(event_type, actor, data, expected) -> None:
    assert candidate_recipients(event(event_type, actor, **data), {OWNER, MAINT}) == expected


def test_preferences_override_channel_defaults() -> None:
    prefs = {(ALICE, "task.assigned"): False, (ALICE, "task.updated"): True}
    assert not wants(prefs, ALICE, "task.assigned", NotificationChannel.IN_APP)
    assert wants(prefs, ALICE, "task.updated", NotificationChannel.EMAIL)  # explicit opt-in
    assert not wants({}, ALICE, "task.updated", NotificationChannel.EMAIL)  # default off
    assert wants({}, ALICE, "task.assigned", NotificationChannel.EMAIL)  # default on
    assert wants({}, BOB, "task.updated", NotificationChannel.IN_APP)


def test_notification_id_is_deterministic_per_event_recipient_channel() -> None:
    event_id = uuid.uuid4()
    same = notification_id(event_id, ALICE, NotificationChannel.IN_APP)
    assert same == notification_id(event_id, ALICE, NotificationChannel.IN_APP)
    assert same != notification_id(event_id, BOB, NotificationChannel.IN_APP)
    assert same != notification_id(event_id, ALICE, NotificationChannel.EMAIL)


def test_signature_verifies_and_rejects_tampering_and_replays() -> None:
    body = b'{"type":"task.created"}'
    now = int(time.time())
    signature = sign("secret-0123456789abcdef", now, body)
    assert signature.startswith("sha256=")
    assert verify("secret-0123456789abcdef", str(now), body, signature)
    assert not verify("secret-0123456789abcdef", str(now), body + b" ", signature)
    assert not verify("other-secret-0123456789", str(now), body, signature)
    old = now - 3600
    assert not verify(
        "secret-0123456789abcdef", str(old), body, sign("secret-0123456789abcdef", old, body)
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "undecodable"),
        (b'{"eventId": "x"}', "undecodable"),
    ],
)
def test_undecodable_messages_are_poison(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonEventError, match=reason):
        decode_notification_event(raw)


def test_unknown_type_or_version_is_poison() -> None:
    unknown = event("task.exploded", OWNER)
    with pytest.raises(PoisonEventError, match="unknown event type"):
        decode_notification_event(encode_event(unknown))
    future = event("task.created", OWNER)
    future.version = 2
    with pytest.raises(PoisonEventError, match="unsupported version"):
        decode_notification_event(encode_event(future))


def test_titles_render_and_tolerate_missing_fields() -> None:
    assert render_title(event("task.assigned", OWNER, title="Ship")) == "Task assigned: Ship"
    assert render_title(event("task.status_changed", OWNER)) == "?: ? -> ?"


def test_retry_delays_grow_exponentially_with_one_queue_per_delay() -> None:
    topology = Topology.from_settings(
        RabbitSettings(events_exchange="ex", webhook_max_attempts=4, webhook_base_delay_ms=500)
    )
    assert [topology.retry_delay_ms(n) for n in (1, 2, 3)] == [500, 1000, 2000]
    assert topology.delay_queue(2) == "ex.webhook.delay.1000ms"
    assert topology.queues == [
        "ex.in_app",
        "ex.webhook",
        "ex.email",
        "ex.webhook.delay.500ms",
        "ex.webhook.delay.1000ms",
        "ex.webhook.delay.2000ms",
        "ex.dlq",
    ]
