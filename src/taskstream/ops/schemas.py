"""What the dashboard's JSON routes answer (camelCase on the wire, like every route)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class Struct(msgspec.Struct, rename="camel", kw_only=True):
    pass


class PartitionLagOut(Struct):
    partition: int
    committed: int | None
    end: int
    lag: int


class MemberOut(Struct):
    member_id: str
    client_id: str
    host: str
    # None when the broker does not report assignments (tansu)
    partitions: list[int] | None
    lag: int | None


class LagOut(Struct):
    group: str
    topic: str
    total: int | None = None
    # Sum of committed offsets: its rate is the group's apply throughput (commands/s).
    committed_total: int | None = None
    partitions: list[PartitionLagOut] = msgspec.field(default_factory=list)
    group_state: str | None = None
    members: list[MemberOut] = msgspec.field(default_factory=list)
    error: str | None = None


class CommandCounts(Struct):
    applied: int = 0
    rejected: int = 0
    error: str | None = None


class OutboxOut(Struct):
    backlog: int | None = None
    oldest_age_s: float | None = None
    error: str | None = None


class QueueOut(Struct):
    name: str
    kind: str
    messages: int | None
    consumers: int | None


class QueuesOut(Struct):
    queues: list[QueueOut] = msgspec.field(default_factory=list)
    error: str | None = None


class FailingWebhook(Struct):
    subscription_id: uuid.UUID
    project_id: uuid.UUID
    url: str
    active: bool
    retrying: int
    dead: int
    last_failure_at: datetime
    last_status_code: int | None
    last_error: str | None


class WebhooksOut(Struct):
    failing: list[FailingWebhook] = msgspec.field(default_factory=list)
    error: str | None = None


class DependencyOut(Struct):
    status: str  # "up", "down", "degraded" or "unknown"
    detail: str = ""


class Overview(Struct):
    generated_at: datetime
    lag: LagOut
    commands: CommandCounts
    outbox: OutboxOut
    queues: QueuesOut
    webhooks: WebhooksOut
    dependencies: dict[str, DependencyOut]


class DeadLetterOut(Struct):
    id: str
    key: str | None
    original_topic: str | None
    original_partition: str | None
    original_offset: str | None
    failed_at: str | None
    error: str | None
    # The body as text (replaced characters where it is not UTF-8), cut to 2,000 characters.
    value: str | None


class DeadLettersOut(Struct):
    topic: str
    count: int = 0
    letters: list[DeadLetterOut] = msgspec.field(default_factory=list)
    error: str | None = None


class ReplayRequest(Struct):
    # The dead letters to re-publish by id (``partition:offset``); ``all`` for every one.
    ids: list[str] = msgspec.field(default_factory=list)
    all: bool = False


class ReplayResult(Struct):
    replayed: list[str]


class TicketOut(Struct):
    ticket: str
    # Open this (relative to the API) in a browser within ``expires_in`` seconds, once.
    url: str
    expires_in: int
