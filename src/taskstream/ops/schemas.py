"""What the dashboard's JSON routes answer (camelCase on the wire, like every route)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from taskstream.fields import example


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


@example(
    {
        "generatedAt": "2026-12-03T17:01:00Z",
        "lag": {
            "group": "taskstream-appliers",
            "topic": "task-commands",
            "total": 42,
            "committedTotal": 1875023,
            "partitions": [
                {"partition": 0, "committed": 937500, "end": 937520, "lag": 20},
                {"partition": 1, "committed": 937523, "end": 937545, "lag": 22},
            ],
            "groupState": "Stable",
            "members": [
                {
                    "memberId": "aiokafka-0.12.0-3f1c9a2e",
                    "clientId": "aiokafka-0.12.0",
                    "host": "/10.0.3.17",
                    "partitions": [0, 1],
                    "lag": 42,
                }
            ],
            "error": None,
        },
        "attachmentLag": {
            "group": "taskstream-attachments",
            "topic": "attachment-commands",
            "total": 0,
            "committedTotal": 5120,
            "partitions": [
                {"partition": 0, "committed": 2561, "end": 2561, "lag": 0},
                {"partition": 1, "committed": 2559, "end": 2559, "lag": 0},
            ],
            "groupState": "Stable",
            "members": [],
            "error": None,
        },
        "commands": {"applied": 1874990, "rejected": 33, "error": None},
        "outbox": {"backlog": 3, "oldestAgeS": 0.4, "error": None},
        "queues": {
            "queues": [
                {"name": "taskstream.events.email", "kind": "work", "messages": 0, "consumers": 2},
                {
                    "name": "taskstream.events.dlq",
                    "kind": "dead-letter",
                    "messages": 1,
                    "consumers": 0,
                },
            ],
            "error": None,
        },
        "webhooks": {
            "failing": [
                {
                    "subscriptionId": "0192f1e8-4c5d-7e6f-8a90-b1c2d3e4f506",
                    "projectId": "0192f1e5-0c3d-7e4f-a1b2-c3d4e5f60718",
                    "url": "https://hooks.example.com/taskstream",
                    "active": True,
                    "retrying": 2,
                    "dead": 1,
                    "lastFailureAt": "2026-12-03T16:58:12Z",
                    "lastStatusCode": 503,
                    "lastError": None,
                }
            ],
            "error": None,
        },
        "dependencies": {
            "postgres": {"status": "up", "detail": ""},
            "kafka": {"status": "up", "detail": ""},
            "rabbitmq": {"status": "up", "detail": ""},
            "workers": {"status": "up", "detail": "2 worker(s) consuming"},
            "consumers": {"status": "up", "detail": "1 member(s) in taskstream-appliers"},
        },
    }
)
class Overview(Struct):
    generated_at: datetime
    lag: LagOut
    # the attachment processor group, the same figures as ``lag``
    attachment_lag: LagOut
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


@example(
    {
        "topic": "task-commands.dlq",
        "count": 1,
        "letters": [
            {
                "id": "0:17",
                "key": "0192f1e6-2b4c-7d5e-8f60-718293a4b5c6",
                "originalTopic": "task-commands",
                "originalPartition": "1",
                "originalOffset": "937412",
                "failedAt": "2026-12-03T16:40:05.412908+00:00",
                "error": "ValidationError: Expected `str`, got `int` - at `$.title`",
                "value": '{"v":1,"type":"task.create","title":42}',
            }
        ],
        "error": None,
    }
)
class DeadLettersOut(Struct):
    topic: str
    count: int = 0
    letters: list[DeadLetterOut] = msgspec.field(default_factory=list)
    error: str | None = None


@example({"ids": ["0:17", "0:18"], "all": False})
class ReplayRequest(Struct):
    # The dead letters to re-publish by id (``partition:offset``); ``all`` for every one.
    ids: list[str] = msgspec.field(default_factory=list)
    all: bool = False


@example({"replayed": ["0:17", "0:18"]})
class ReplayResult(Struct):
    replayed: list[str]


@example(
    {
        "ticket": "Zp3x8QmL2vR5tN0wK7yB4cH1jF6gD9sA2eU0iO3rT5q",
        "url": "/ops?ticket=Zp3x8QmL2vR5tN0wK7yB4cH1jF6gD9sA2eU0iO3rT5q",
        "expiresIn": 60,
    }
)
class TicketOut(Struct):
    ticket: str
    # Open this (relative to the API) in a browser within ``expires_in`` seconds, once.
    url: str
    expires_in: int
