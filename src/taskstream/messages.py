"""Contracts on the wire: task commands on Kafka and domain events on RabbitMQ/Kafka.

Every message is a versioned envelope; the payload is decoded by ``(type, version)`` so a
consumer can refuse (dead-letter) what it does not understand instead of guessing. JSON field
names are camelCase.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from taskstream.enums import ReviewVerdict, TaskPriority, TaskStatus, UserRole


class WireStruct(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=False):
    """Base of every wire contract: camelCase JSON, keyword-only construction."""


class Actor(WireStruct):
    user_id: uuid.UUID
    role: UserRole = UserRole.MEMBER


# --- command payloads -----------------------------------------------------------------------


class CreateTask(WireStruct):
    project_id: uuid.UUID
    title: str
    description: str | None = None
    priority: TaskPriority = TaskPriority.MEDIUM
    deadline: datetime | None = None
    assignee_id: uuid.UUID | None = None


class UpdateTask(WireStruct):
    """Only the fields present change; an explicit null clears a nullable field."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    priority: TaskPriority | msgspec.UnsetType = msgspec.UNSET
    deadline: datetime | msgspec.UnsetType | None = msgspec.UNSET


class AssignTask(WireStruct):
    assignee_id: uuid.UUID | None
    reviewer_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET


class TransitionTask(WireStruct):
    to: TaskStatus
    reviewer_id: uuid.UUID | None = None


class ReviewTask(WireStruct):
    review_id: uuid.UUID
    verdict: ReviewVerdict
    comment: str | None = None


class DeleteTask(WireStruct):
    pass


CommandPayload = CreateTask | UpdateTask | AssignTask | TransitionTask | ReviewTask | DeleteTask

# (type, version) -> payload struct. A message naming anything else is dead-lettered.
COMMAND_TYPES: Final[dict[tuple[str, int], type[WireStruct]]] = {
    ("task.create", 1): CreateTask,
    ("task.update", 1): UpdateTask,
    ("task.assign", 1): AssignTask,
    ("task.transition", 1): TransitionTask,
    ("task.review", 1): ReviewTask,
    ("task.delete", 1): DeleteTask,
}
COMMAND_TYPE_OF: Final[dict[type[WireStruct], str]] = {v: k[0] for k, v in COMMAND_TYPES.items()}
COMMAND_VERSION: Final = 1


class CommandEnvelope(WireStruct):
    command_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    actor: Actor
    task_id: uuid.UUID
    payload: msgspec.Raw


class TaskCommand(WireStruct):
    """A decoded command: the envelope with its typed payload."""

    command_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    actor: Actor
    task_id: uuid.UUID
    payload: CommandPayload


class UnknownCommandError(ValueError):
    """The envelope names a command type or version this code does not know."""


_json_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(CommandEnvelope)
_payload_decoders: dict[tuple[str, int], msgspec.json.Decoder[Any]] = {
    key: msgspec.json.Decoder(cls) for key, cls in COMMAND_TYPES.items()
}


def new_command(
    payload: CommandPayload,
    *,
    actor: Actor,
    task_id: uuid.UUID,
    command_id: uuid.UUID | None = None,
) -> TaskCommand:
    """Wrap a payload in a fresh envelope (version and type taken from the registry)."""
    return TaskCommand(
        command_id=command_id or uuid.uuid4(),
        type=COMMAND_TYPE_OF[type(payload)],
        version=COMMAND_VERSION,
        occurred_at=datetime.now(UTC),
        actor=actor,
        task_id=task_id,
        payload=payload,
    )


def encode_command(command: TaskCommand) -> bytes:
    return _json_encoder.encode(command)


def decode_command(raw: bytes) -> TaskCommand:
    """Decode and validate a command; raises ``msgspec.ValidationError``/``DecodeError`` or
    ``UnknownCommandError`` for anything that must go to the dead-letter topic."""
    envelope = _envelope_decoder.decode(raw)
    decoder = _payload_decoders.get((envelope.type, envelope.version))
    if decoder is None:
        raise UnknownCommandError(f"unknown command {envelope.type!r} version {envelope.version}")
    return TaskCommand(
        command_id=envelope.command_id,
        type=envelope.type,
        version=envelope.version,
        occurred_at=envelope.occurred_at,
        actor=envelope.actor,
        task_id=envelope.task_id,
        payload=decoder.decode(envelope.payload),
    )


# --- domain events --------------------------------------------------------------------------

EVENT_TYPES: Final = (
    "user.created",
    "project.created",
    "project.member_added",
    "task.created",
    "task.updated",
    "task.assigned",
    "task.status_changed",
    "task.review_requested",
    "task.reviewed",
    "task.completed",
    "task.deleted",
    "task.overdue",
    "task.commented",
    "task.mentioned",
    "task.comment_edited",
    "task.comment_deleted",
    "user.password_changed",
    "user.password_reset_requested",
    "project.updated",
    "project.archived",
    "project.unarchived",
    "project.deleted",
    "project.restored",
    "project.ownership_transferred",
    "project.member_role_changed",
    "project.member_invited",
    "attachment.ready",
    "attachment.quarantined",
    "attachment.failed",
    "project.member_removed",
)
EVENT_VERSION: Final = 1


class DomainEvent(WireStruct):
    """A fact that happened, published by the outbox relay to RabbitMQ and Kafka."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    aggregate_id: uuid.UUID
    version: int = EVENT_VERSION
    actor_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    # The trace context of the cause: a W3C traceparent (events written by older versions
    # hold a bare trace id); read it with ``taskstream.observability.tracing.TraceContext.parse``.
    trace_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


_event_decoder = msgspec.json.Decoder(DomainEvent)


def encode_event(event: DomainEvent) -> bytes:
    return _json_encoder.encode(event)


def decode_event(raw: bytes) -> DomainEvent:
    return _event_decoder.decode(raw)


COMMAND_TYPE_HEADER: Final = "x-command-type"
