"""One typed settings object, nested per subsystem, read from ``TASKSTREAM_*`` env vars.

Nested fields use a double underscore: ``TASKSTREAM_DB__URL``, ``TASKSTREAM_KAFKA__PARTITIONS``.
Nothing else in the code base reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskstream.dev_secret import local_jwt_secret

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")

# The secret older .env files shipped with: known to everyone, refused except in tests.
PLACEHOLDER_SECRET = "change-me-dev-only-secret-0123456789abcdef"  # noqa: S105


class DatabaseSettings(BaseModel):
    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/taskstream"
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    echo: bool = False

    @property
    def database_name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]

    def with_database(self, name: str) -> str:
        """The same server URL pointing at another database."""
        base, _, rest = self.url.rpartition("/")
        query = rest.partition("?")[2]
        return f"{base}/{name}" + (f"?{query}" if query else "")


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    task_commands_topic: str = "task-commands"
    task_commands_dlq_topic: str = "task-commands.dlq"
    task_events_topic: str = "task-events"
    # `attachment.uploaded` commands (keyed by attachment id) and the group that processes them
    attachment_commands_topic: str = "attachment-commands"
    attachment_commands_dlq_topic: str = "attachment-commands.dlq"
    attachments_consumer_group: str = "taskstream-attachments"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "taskstream-appliers"
    publish_timeout_s: float = Field(default=5.0, gt=0)
    linger_ms: int = Field(default=2, ge=0)
    # The idempotent producer needs InitProducerId, which tansu (the local broker) lacks; turn
    # it on against a broker that has it. Off, a producer retry can duplicate a message, which
    # every consumer tolerates (inbox dedupe on commandId, event ids downstream).
    enable_idempotence: bool = False
    # Commands per apply transaction at most (a caught-up consumer applies smaller batches):
    # the per-transaction cost amortises up to a few thousand (BENCHMARKS.md, consumers).
    max_batch_size: int = Field(default=5000, ge=1)
    max_batch_wait_ms: int = Field(default=50, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    # Apply lanes per consumer process: partitions are split between lanes (partition % lanes),
    # each applying its own batches in its own transaction, so one lane's Python work overlaps
    # another's time in PostgreSQL. Per-partition (so per-task) order holds within a lane.
    apply_lanes: int = Field(default=2, ge=1, le=16)


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    # Prefix of the rate-limit counters; separate deployments (or test runs) sharing one Redis
    # keep separate counters.
    limits_key_prefix: str = "taskstream-limits"


class RabbitSettings(BaseModel):
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    events_exchange: str = "taskstream.events"
    # The management plugin's HTTP API (``http://127.0.0.1:15672``), for `taskstream status`
    # (ready and unacknowledged counts); unset: queue depths come over AMQP (ready only).
    management_url: str | None = None
    prefetch: int = Field(default=200, ge=1)
    # Deliveries of one message to a work queue before RabbitMQ dead-letters it to the DLQ (a
    # message that keeps crashing its worker). RabbitMQ 4 applies 20 to quorum queues and
    # *drops* the message past it unless a dead-letter exchange is set: both are set here.
    delivery_limit: int = Field(default=20, ge=1)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_base_delay_ms: int = Field(default=1000, ge=10)


class WebhookSettings(BaseModel):
    """Bounds on webhook POSTs, so that no receiver can hold a worker or other receivers."""

    # The whole attempt (connect, send, response head, capped body read) ends by this deadline,
    # however slowly the receiver trickles bytes; a timed-out attempt is retried like a 5xx.
    attempt_deadline_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    # Where webhooks may point besides public addresses: CIDRs ("127.0.0.0/8") or host names
    # ("receiver.test"), for development and tests. Empty in production: every loopback,
    # private, link-local, multicast or unspecified target is refused (webhook_targets.py).
    allowed_targets: list[str] = Field(default_factory=list)
    # Plain http targets: None means allowed in development only (https everywhere else).
    allow_http: bool | None = None
    # Subscriptions per project at most: each one multiplies every event of the project.
    max_per_project: int = Field(default=20, ge=1)
    # Attempts in flight per destination (scheme, host, port); deliveries beyond it are deferred
    # through the retry delay queue instead of waiting, so a slow receiver holds at most this
    # many of the worker's prefetched messages and never the deliveries to other receivers.
    max_in_flight_per_host: int = Field(default=4, ge=1)
    # Attempts in flight per worker process over all destinations.
    max_in_flight: int = Field(default=64, ge=1)


class AuthSettings(BaseModel):
    # Empty: outside production a random secret is generated into infra.state_dir on first
    # start (dev_secret.py); production must set it.
    jwt_secret: SecretStr = SecretStr("")
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    access_token_ttl_s: int = Field(default=900, ge=30)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    # A refresh token presented again this soon after its rotation gets the pair that rotation
    # issued (two tabs, a client retry) instead of revoking the family as a replay.
    refresh_reuse_grace_s: float = Field(default=20.0, ge=0, le=300)
    # A session (a family of rotated refresh tokens) ends this long after the password login
    # that started it, however often it is rotated.
    refresh_session_max_age_s: int = Field(default=30 * 24 * 3600, ge=1)
    leeway_s: int = Field(default=10, ge=0)
    issuer: str = "taskstream"
    # A password-reset token works once, for this long after it was requested.
    password_reset_ttl_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    # The link emailed for a reset; ``{token}`` is replaced by the token. A fragment (``#``)
    # keeps the token out of the web server's access log and out of Referer headers.
    password_reset_url: str = Field(
        default="http://localhost:3000/reset-password#token={token}", pattern=r"\{token\}"
    )
    # Reset emails per address within ``password_reset_window_s``; further requests for the
    # address still answer 202 but send nothing (the per-client login limit bounds callers).
    password_reset_per_address: int = Field(default=3, ge=1)
    password_reset_window_s: int = Field(default=3600, ge=60)


class RateLimitSettings(BaseModel):
    enabled: bool = True
    member: str = "1000/second"
    admin: str = "5000/second"
    anonymous: str = "60/minute"
    login: str = "10/minute"
    registration: str = "20/hour"
    redis_unavailable_policy: Literal["local", "allow", "deny"] = "local"
    # Failed logins within the window: from one address for one account, that address is
    # refused for that account; for one account from anywhere, addresses that have failed for
    # it are refused (an address that has not failed may still try, so nobody locks out the
    # owner by failing on purpose).
    login_failures_per_client: int = Field(default=5, ge=1)
    login_failures_per_account: int = Field(default=20, ge=1)
    login_failure_window_s: int = Field(default=900, ge=1)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    # Reverse proxies (CIDRs) whose forwarding header names the client; default: none, the
    # TCP peer is the client. ``forwarded_header`` is the one header they set.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # Shown as X-Health-Token, opens the detailed GET /health to monitoring without an admin
    # account; unset: admins only.
    health_token: SecretStr | None = None
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    batch_max_items: int = Field(default=1000, ge=1)
    page_limit_max: int = Field(default=200, ge=1)
    command_wait_max_s: float = Field(default=30.0, ge=0)
    # Held open at once per user, over all API processes (429 beyond).
    max_streams_per_user: int = Field(default=5, ge=1)
    max_command_waits_per_user: int = Field(default=10, ge=1)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)
    # How long a command on a task that neither PostgreSQL nor Redis knows waits for the row,
    # when Redis may have lost the task's acceptance record (it restarted since); then 503.
    unapplied_task_wait_s: float = Field(default=3.0, ge=0, le=30)
    # Browser origins allowed to call the API (CORS), e.g. ``["https://app.example.com"]``;
    # ``["*"]`` allows any; empty (the default): no CORS headers, browsers on other origins
    # are refused by the browser itself.
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path, or *"
                )
        return origins


class CommentSettings(BaseModel):
    # <@userId> tokens one comment may hold (422 beyond): bounds the notifications one
    # request can fan out.
    max_mentions: int = Field(default=20, ge=0, le=1000)


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1025
    use_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "taskstream@localhost"
    timeout_s: float = 10.0


class MetricsSettings(BaseModel):
    """The HTTP listener of each consume, relay and work process: ``/metrics``,
    ``/health/live``, ``/health/ready`` (the API serves the same paths itself). Port 0 turns a
    listener off; a second process of a kind on one host needs its own port."""

    host: str = "127.0.0.1"
    consume_port: int = Field(default=9101, ge=0, le=65535)
    relay_port: int = Field(default=9102, ge=0, le=65535)
    work_port: int = Field(default=9103, ge=0, le=65535)
    attachments_port: int = Field(default=9104, ge=0, le=65535)


class OtelSettings(BaseModel):
    """OpenTelemetry trace export. Unset endpoint: nothing is exported and the SDK is never
    imported; the W3C trace context still travels and reaches the logs."""

    # OTLP/HTTP base URL of a collector (``http://otel-collector:4318``); spans go to
    # ``<endpoint>/v1/traces``. Unset, the standard OTEL_EXPORTER_OTLP_ENDPOINT is used if set.
    endpoint: str | None = None
    service_name: str = "taskstream"
    # Share of new traces recorded; a trace started upstream keeps its caller's decision.
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class AttachmentSettings(BaseModel):
    """Task attachments: where objects live, how they are scanned, and the size bounds."""

    # ``file:///abs/dir`` or ``s3://bucket/prefix``; unset: ``<infra.state_dir>/attachments``
    # (filled in by Settings). ``s3_endpoint`` names a non-AWS S3 API (MinIO, moto).
    storage_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    # Plain http to the S3 endpoint (MinIO on a private network, moto in tests).
    s3_allow_http: bool = False
    # ``tcp://host:port`` or ``unix:///path/to/clamd.ctl``.
    clamd_address: str = "tcp://127.0.0.1:3310"
    # Signature databases of the clamd that `taskstream infra up` starts: unset, the EICAR-only
    # database shipped with the package (development, tests); freshclam's (/var/lib/clamav)
    # for real protection.
    clamav_database_dir: Path | None = None
    # Per socket operation (connect, each chunk sent, the verdict read), not per file.
    scan_timeout_s: float = Field(default=30.0, gt=0)
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    project_quota_bytes: int = Field(default=10 * 1024 * 1024 * 1024, ge=1)
    # Largest PATCH body of a resumable upload session.
    chunk_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    upload_session_ttl_s: int = Field(default=24 * 3600, ge=60)
    image_max_px: int = Field(default=2048, ge=16)
    thumbnail_px: int = Field(default=256, ge=16)
    download_link_ttl_s: int = Field(default=300, ge=10)


class ProjectSettings(BaseModel):
    """Project lifecycle: how long a deleted project can be restored, how long an invitation
    can be accepted."""

    delete_grace_days: int = Field(default=7, ge=0, le=3650)
    invitation_ttl_days: int = Field(default=7, ge=1, le=365)


class InfraSettings(BaseModel):
    state_dir: Path = Path(".taskstream")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TASKSTREAM_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    # json: one JSON object per line (for a log shipper); text: for people at a terminal.
    log_format: Literal["text", "json"] = "text"
    db: DatabaseSettings = DatabaseSettings()
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    rabbit: RabbitSettings = RabbitSettings()
    webhooks: WebhookSettings = WebhookSettings()
    auth: AuthSettings = AuthSettings()
    limits: RateLimitSettings = RateLimitSettings()
    api: ApiSettings = ApiSettings()
    comments: CommentSettings = CommentSettings()
    smtp: SmtpSettings = SmtpSettings()
    metrics: MetricsSettings = MetricsSettings()
    otel: OtelSettings = OtelSettings()
    projects: ProjectSettings = ProjectSettings()
    infra: InfraSettings = InfraSettings()
    attachments: AttachmentSettings = AttachmentSettings()

    @model_validator(mode="after")
    def _standard_otel_endpoint(self) -> Settings:
        if self.otel.endpoint is None:
            self.otel.endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
        return self

    @model_validator(mode="after")
    def _local_attachment_store(self) -> Settings:
        if not self.attachments.storage_url:
            directory = (self.infra.state_dir / "attachments").resolve()
            self.attachments.storage_url = directory.as_uri()
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.auth.jwt_algorithm.startswith("HS"):
            secret = self.auth.jwt_secret.get_secret_value()
            if secret == PLACEHOLDER_SECRET and self.environment != "test":
                raise ValueError(
                    "TASKSTREAM_AUTH__JWT_SECRET is the published placeholder: unset it (a "
                    "random one is generated outside production) or set a random value"
                )
            if not secret and self.environment == "production":
                raise ValueError(
                    "TASKSTREAM_AUTH__JWT_SECRET must be set to a random value of at least "
                    "32 characters outside development"
                )
            if not secret:
                generated = local_jwt_secret(self.infra.state_dir)
                self.auth.jwt_secret = SecretStr(generated)
            elif self.environment == "production" and len(secret) < 32:
                raise ValueError(
                    "TASKSTREAM_AUTH__JWT_SECRET must be set to a random value of at least "
                    "32 characters outside development"
                )
        if self.auth.jwt_algorithm.startswith("RS") and not (
            self.auth.jwt_private_key_file and self.auth.jwt_public_key_file
        ):
            raise ValueError(
                "RS* algorithms need TASKSTREAM_AUTH__JWT_PRIVATE_KEY_FILE and _PUBLIC"
            )
        return self

    def as_env(self) -> dict[str, str]:
        """These settings as ``TASKSTREAM_*`` variables, for child processes."""
        env: dict[str, str] = {}
        for section, value in self:
            if isinstance(value, BaseModel):
                for field, inner in value:
                    if inner is not None:
                        env[f"TASKSTREAM_{section.upper()}__{field.upper()}"] = _env_value(inner)
            elif value is not None:
                env[f"TASKSTREAM_{section.upper()}"] = _env_value(value)
        return env


def _env_value(value: object) -> str:
    if isinstance(value, list):
        # pydantic-settings reads complex values as JSON (CIDRs and the like as strings)
        return json.dumps([str(item) for item in value])
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded and validated once."""
    return Settings()
