"""Decoding domain events for the notification workers; anything undecodable is poison."""

from __future__ import annotations

import uuid

import msgspec

from taskstream.messages import EVENT_TYPES, EVENT_VERSION, DomainEvent, decode_event


class PoisonEventError(ValueError):
    """A message no amount of retrying will deliver; it goes to the dead-letter queue."""


def decode_notification_event(raw: bytes) -> DomainEvent:
    """Decode and check an event envelope; raises ``PoisonEventError`` with the reason."""
    try:
        event = decode_event(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PoisonEventError(f"undecodable event: {exc}") from exc
    if event.type not in EVENT_TYPES:
        raise PoisonEventError(f"unknown event type {event.type!r}")
    if event.version != EVENT_VERSION:
        raise PoisonEventError(f"unsupported version {event.version} of {event.type}")
    return event


def event_project_id(event: DomainEvent) -> uuid.UUID | None:
    """The project an event belongs to (the envelope field, else ``data.projectId``)."""
    if event.project_id is not None:
        return event.project_id
    return _uuid(event.data.get("projectId"))


def _uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def data_uuid(event: DomainEvent, key: str) -> uuid.UUID | None:
    return _uuid(event.data.get(key))
