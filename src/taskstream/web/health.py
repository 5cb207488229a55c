"""Health routes: ``/health/live`` and ``/health/ready`` for probes (anonymous, not rate
limited, no internals), ``/health`` for the detailed view (admins, or the configured
``api.health_token`` in ``X-Health-Token``).

The probes cost nothing to abuse: live does no I/O, ready is cached (readiness.py); the
detailed view probes every dependency with fresh connections, so it is rate limited like any
anonymous request and closed to anonymous callers."""

from __future__ import annotations

import asyncio
import hmac

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from redis.asyncio import Redis

from taskstream.errors import ForbiddenError, UnauthorizedError
from taskstream.fields import example
from taskstream.infra.lag import ConsumerGroup, attachments_group, total_lag
from taskstream.infra.probes import probe
from taskstream.infra.worker_status import WorkerStatus, read_worker_statuses_bounded
from taskstream.problems import problem_responses
from taskstream.settings import Settings
from taskstream.web.authentication import authenticate
from taskstream.web.readiness import Readiness, readiness_cache


class ServiceState(msgspec.Struct, rename="camel"):
    status: str
    address: str
    detail: str


@example(
    {
        "status": "ok",
        "services": {
            "postgres": {
                "status": "up",
                "address": "db.internal:5432",
                "detail": "PostgreSQL 17.2",
            },
            "redis": {"status": "up", "address": "redis.internal:6379", "detail": "PONG"},
            "rabbitmq": {"status": "up", "address": "mq.internal:5672", "detail": "RabbitMQ 4.0.5"},
            "kafka": {"status": "up", "address": "kafka.internal:9092", "detail": "4 topics"},
            "workers": {"status": "up", "address": "redis", "detail": "2 worker(s) consuming"},
        },
        "consumerLag": 42,
        "attachmentConsumerLag": 0,
        "workers": [],
    }
)
class HealthReport(msgspec.Struct, rename="camel"):
    status: str
    services: dict[str, ServiceState]
    # Total lag of the task-command applier group; None when it could not be measured.
    consumer_lag: int | None = None
    # Total lag of the attachment processor group (uploads waiting to be processed); likewise.
    attachment_consumer_lag: int | None = None
    # Notification workers' last heartbeats (per consumer: state, channel errors, last error).
    workers: list[WorkerStatus] = msgspec.field(default_factory=list)


# The API cannot accept commands without these; the others degrade features only.
REQUIRED_FOR_SERVING = ("postgres", "kafka")


async def health_report(
    settings: Settings, extra: dict[str, ServiceState] | None = None, redis: Redis | None = None
) -> HealthReport:
    """Probe every dependency concurrently (bounded) and summarise; ``extra`` adds in-process
    components (e.g. the rate limiter's Redis fallback) that never block serving; ``redis``
    (the app's client) is where the workers' heartbeats are read."""
    names = ["postgres", "redis", "rabbitmq", "kafka"]
    lag = asyncio.ensure_future(consumer_lag(settings))
    attachment_lag = asyncio.ensure_future(
        consumer_lag(settings, attachments_group(settings.kafka))
    )
    heartbeats = asyncio.ensure_future(worker_heartbeats(settings, redis))
    results = await asyncio.gather(*(probe(settings, name) for name in names))
    services = {
        name: ServiceState("up" if r.ok else "down", r.endpoint.address, r.detail)
        for name, r in zip(names, results, strict=True)
    }
    workers = await heartbeats
    services["workers"] = workers_state(workers)
    services.update(extra or {})
    serving = all(services[name].status == "up" for name in REQUIRED_FOR_SERVING)
    return HealthReport(
        status="ok" if serving else "unavailable",
        services=services,
        consumer_lag=await lag,
        attachment_consumer_lag=await attachment_lag,
        workers=workers or [],
    )


# --- notification workers --------------------------------------------------------------------


async def worker_heartbeats(
    settings: Settings, redis: Redis | None = None
) -> list[WorkerStatus] | None:
    """Live workers' heartbeats from Redis (bounded); None when Redis did not answer."""
    exchange = settings.rabbit.events_exchange
    if redis is not None:
        return await read_worker_statuses_bounded(redis, exchange)
    client = Redis.from_url(settings.redis.url, socket_connect_timeout=1.0)
    try:
        return await read_worker_statuses_bounded(client, exchange)
    finally:
        await client.aclose()


def workers_state(workers: list[WorkerStatus] | None) -> ServiceState:
    """ "up" when every live worker's consumers hold their channels, "degraded" while one is
    reopening its channel, "down" when no worker has sent a heartbeat lately. Informative:
    the API serves without workers (notifications wait in RabbitMQ)."""
    if workers is None:
        return ServiceState("unknown", "redis", "worker heartbeats unreadable (Redis)")
    if not workers:
        return ServiceState("down", "redis", "no notification worker heartbeat")
    recovering = [
        f"{w.worker_id}/{name}: {c.last_error}"
        for w in workers
        for name, c in w.consumers.items()
        if c.state != "consuming"
    ]
    if recovering:
        return ServiceState("degraded", "redis", "; ".join(recovering)[:500])
    errors = sum(c.channel_errors for w in workers for c in w.consumers.values())
    return ServiceState("up", "redis", f"{len(workers)} worker(s), {errors} channel error(s)")


# --- stream consumers ------------------------------------------------------------------------


async def consumer_lag(settings: Settings, group: ConsumerGroup | None = None) -> int | None:
    """Total lag of ``group`` (default: the applier group), bounded; informative only, never
    blocks serving."""
    try:
        return await total_lag(settings.kafka, timeout_s=2.0, group=group)
    except Exception:
        return None


@example({"status": "up"})
class Liveness(msgspec.Struct, rename="camel"):
    status: str


async def _require_health_viewer(state: State, request: Request) -> None:
    """The detailed view is for admins (bearer token) or holders of ``api.health_token``."""
    token = state.settings.api.health_token
    presented = request.headers.get("x-health-token")
    if token is not None and presented is not None:
        if hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            return
        raise ForbiddenError("Invalid health token")
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise UnauthorizedError("The detailed health view needs an admin token or X-Health-Token")
    principal = await authenticate(state, authorization.encode("latin-1"))
    if not principal.is_admin:
        raise ForbiddenError("The detailed health view is for admins")


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get(
        "/live",
        operation_id="getLiveness",
        summary="Process is up",
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": None},
    )
    async def live(self) -> Liveness:
        """200 while the process serves requests; no I/O."""
        return Liveness("up")

    @get(
        "/ready",
        operation_id="getReadiness",
        summary="Ready to serve",
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": None},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        """Whether the API can accept commands (PostgreSQL and Kafka up; Redis informative),
        from the process's own pools, at most one check per second; 503 when not ready."""
        report = await readiness_cache(state).report()
        return Response(report, status_code=200 if report.status == "ready" else 503)

    @get(
        operation_id="getHealth",
        summary="Detailed service health",
        exclude_from_auth=True,
        security=[{"BearerToken": []}, {"HealthToken": []}],
        responses=problem_responses(401, 403),
    )
    async def health(self, state: State, request: Request) -> Response[HealthReport]:
        """Each dependency's state, address and detail (admins or ``X-Health-Token``); 503
        when the API cannot serve."""
        await _require_health_viewer(state, request)
        extra = {}
        limiter = state.get("rate_limiter")
        if limiter is not None:
            status, detail = limiter.status()
            extra["ratelimit"] = ServiceState(
                status, "in-process" if status != "up" else "redis", detail
            )
        report = await health_report(state.settings, extra, state.get("redis"))
        return Response(report, status_code=200 if report.status == "ok" else 503)
