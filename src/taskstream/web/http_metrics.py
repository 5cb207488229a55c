"""HTTP series of the API and ``GET /metrics``.

Every response is counted by a ``before_send`` hook on the app: it sees the response head of
every request, including the 401/429/415 that the request guard raises and the problem+json an
exception handler writes, which a middleware inside the guard would miss. Latency runs from the
guard's entry (``STARTED``, set after routing) to the response head; an unrouted request (404,
405) is counted under the route ``unmatched`` without latency.

``/metrics`` takes neither a bearer token nor a rate-limit hit (a scraper has no account). With
``api.health_token`` set it needs that token, as ``Authorization: Bearer <token>`` (what
Prometheus' ``authorization`` sends) or ``X-Health-Token``; unset it is open outside production
(loopback by default) and refused in production.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Final

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.types import Message, Scope

from taskstream.errors import ForbiddenError, UnauthorizedError
from taskstream.observability import metrics
from taskstream.problems import problem_responses
from taskstream.web.readiness import readiness_cache

STARTED: Final = "taskstream.started"
UNMATCHED: Final = "unmatched"

# (route, method, status) -> (counter child, histogram child): a dict lookup per response
# instead of the label machinery's lock and validation
_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _series(route: str, method: str, status: str) -> tuple[Any, Any]:
    key = (route, method, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (
            metrics.HTTP_REQUESTS.labels(route, method, status),
            metrics.HTTP_LATENCY.labels(route, method, status),
        )
    return found


async def count_response(message: Message, scope: Scope) -> None:
    """``before_send`` hook: count the response and observe its latency at its head."""
    if message["type"] != "http.response.start":
        return
    raw: dict[str, Any] = scope  # type: ignore[assignment]
    route = raw.get("path_template") or UNMATCHED
    counter, histogram = _series(route, raw.get("method", ""), str(message["status"]))
    counter.inc()
    started = raw.get(STARTED)
    if started is not None:
        histogram.observe(time.perf_counter() - started)


def _require_scraper(state: State, request: Request) -> None:
    settings = state.settings
    token = settings.api.health_token
    if token is None:
        if settings.environment == "production":
            raise ForbiddenError("Set TASKSTREAM_API__HEALTH_TOKEN to scrape /metrics")
        return
    presented = request.headers.get("x-health-token")
    if presented is None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        presented = credentials.strip() if scheme.lower() == "bearer" else None
    if presented is None:
        raise UnauthorizedError("/metrics needs the health token (Bearer or X-Health-Token)")
    if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise ForbiddenError("Invalid health token")


class MetricsController(Controller):
    path = "/metrics"
    tags = ["health"]

    @get(
        operation_id="getMetrics",
        summary="Prometheus metrics",
        exclude_from_auth=True,
        security=[{"HealthToken": []}],
        opt={"rate_limit": None},
        responses=problem_responses(401, 403),
        media_type=metrics.CONTENT_TYPE,
    )
    async def scrape(self, state: State, request: Request) -> Response[bytes]:
        """Every series of every API worker process, in the Prometheus text format (the
        health token when one is configured)."""
        _require_scraper(state, request)
        report = await readiness_cache(state).report()
        for name, check in report.checks.items():
            metrics.DEPENDENCY_UP.labels(name).set(1 if check == "up" else 0)
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
