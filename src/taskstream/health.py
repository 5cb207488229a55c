"""`GET /health`: whether the API can serve, and each dependency's state."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State

from taskstream.infra.probes import probe
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


# The API cannot accept commands without these; the others degrade features only.
REQUIRED_FOR_SERVING = ("postgres", "kafka")


async def health_report(
    settings: Settings, extra: dict[str, ServiceState] | None = None
) -> HealthReport:
    """Probe every dependency concurrently (bounded) and summarise; ``extra`` adds in-process
    components (e.g. the rate limiter's Redis fallback) that never block serving."""
    names = ["postgres", "redis", "rabbitmq", "kafka"]
    lag = asyncio.ensure_future(consumer_lag(settings))
    results = await asyncio.gather(*(probe(settings, name) for name in names))
    services = {
        name: ServiceState("up" if r.ok else "down", r.endpoint.address, r.detail)
        for name, r in zip(names, results, strict=True)
    }
    services.update(extra or {})
    serving = all(services[name].status == "up" for name in REQUIRED_FOR_SERVING)
    return HealthReport(
        status="ok" if serving else "unavailable", services=services, consumer_lag=await lag
    )


# --- stream consumers (issue 4) ------------------------------------------------------------


async def consumer_lag(settings: Settings) -> int | None:
    """Total lag of the applier group (bounded); informative only, never blocks serving."""
    from consumers.lag import total_lag  # noqa: PLC0415 - Kafka client code lives in consumers/

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
        report = await health_report(state.settings, extra)
        return Response(report, status_code=200 if report.status == "ok" else 503)
