"""`GET /health`: whether the API can serve, and each dependency's state."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from redis.asyncio import Redis

from taskstream.infra.lag import total_lag
from taskstream.infra.probes import probe
from taskstream.notifications.worker_status import WorkerStatus, read_worker_statuses_bounded
from taskstream.settings import Settings


class ServiceState(msgspec.Struct):
    status: str
    address: str
    detail: str


class HealthReport(msgspec.Struct):
    status: str
    services: dict[str, ServiceState]
    # Total lag of the task-command applier group; None when it could not be measured.
    consumer_lag: int | None = None
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


async def consumer_lag(settings: Settings) -> int | None:
    """Total lag of the applier group (bounded); informative only, never blocks serving."""
    try:
        return await total_lag(settings.kafka, timeout_s=2.0)
    except Exception:
        return None


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get(operation_id="getHealth", summary="Service health", exclude_from_auth=True)
    async def health(self, state: State) -> Response[HealthReport]:
        """Report each dependency's state; 503 when the API cannot serve."""
        extra = {}
        limiter = state.get("rate_limiter")
        if limiter is not None:
            status, detail = limiter.status()
            extra["ratelimit"] = ServiceState(
                status, "in-process" if status != "up" else "redis", detail
            )
        report = await health_report(state.settings, extra, state.get("redis"))
        return Response(report, status_code=200 if report.status == "ok" else 503)
