"""``/ops``: the operator dashboard page, its static assets, tickets and JSON routes.

How a browser gets in without a session: an admin's client calls ``POST /ops/tickets`` with
its bearer token and opens the returned URL (``/ops?ticket=...``) within 60 s. The page load
redeems the ticket once and embeds a fresh access token (the usual lifetime) in the page; the
page's script sends it as ``Authorization: Bearer`` to ``/ops/api/...``. No cookie is set, so
no other site can make the browser act with it (no CSRF). A client that can send headers
(curl) may also load ``/ops`` with its own bearer token.
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from taskstream.enums import UserRole
from taskstream.errors import DomainError, ForbiddenError, NotFoundError, UnauthorizedError
from taskstream.infra.lag import attachments_group
from taskstream.ops import service
from taskstream.ops.schemas import (
    DeadLettersOut,
    DependencyOut,
    Overview,
    ReplayRequest,
    ReplayResult,
    TicketOut,
)
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.authentication import authenticate, credentials_expiry
from taskstream.web.health import worker_heartbeats, workers_state
from taskstream.web.pagination import PageLimit, page_size
from taskstream.web.readiness import ReadinessCache
from taskstream.web.tickets import TICKET_TTL_S, TicketGrant, issue_ticket, redeem_ticket

STATIC = resources.files("taskstream.ops") / "static"
# The dashboard shows this many dead letters unless asked for another page size.
DEAD_LETTERS_SHOWN: Final = 200
# Tickets for the page are of this purpose (web/tickets.py): they open nothing else.
TICKET_PURPOSE: Final = "ops"
ASSETS: Final = {"ops.css": "text/css", "ops.js": "text/javascript"}
# The page loads only its own scripts and styles and talks only to this origin.
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise ForbiddenError("The operator dashboard is for admins")
    return principal


async def _page_token(state: State, request: Request[Any, Any, Any], ticket: str | None) -> str:
    """The access token the page will use: the caller's own, or one issued for the admin
    who redeemed ``ticket``."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        _admin(await authenticate(state, authorization.encode("latin-1")))
        return authorization.partition(" ")[2].strip()
    if ticket is None:
        raise UnauthorizedError(
            "Open the URL returned by POST /ops/tickets (with an admin bearer token)"
        )
    grant = await redeem_ticket(state.redis, TICKET_PURPOSE, ticket)
    if grant is None:
        raise UnauthorizedError("The ticket is unknown, used or expired: ask for a new one")
    status = await state.user_status.status(grant.user_id)
    if status is not None and grant.token_version < status.token_version:
        raise UnauthorizedError("The session that asked for this ticket has ended")
    if status is None or status.role is not UserRole.ADMIN:
        raise ForbiddenError("The operator dashboard is for admins")
    return str(
        state.token_codec.issue_access(grant.user_id, UserRole.ADMIN, status.token_version).token
    )


class OpsPageController(Controller):
    path = "/ops"
    tags = ["ops"]

    @get(
        "/",
        operation_id="getOpsDashboard",
        summary="Operator dashboard (HTML)",
        exclude_from_auth=True,
        security=[{}, {"BearerToken": []}],
        responses=problem_responses(401, 403),
        media_type="text/html",
    )
    async def page(
        self, state: State, request: Request[Any, Any, Any], ticket: FromQuery[str | None] = None
    ) -> Response[str]:
        """The live dashboard, for a ticket from ``POST /ops/tickets`` or an admin token."""
        token = await _page_token(state, request, ticket)
        template = (STATIC / "index.html").read_text()
        body = template.replace("{{OPS_TOKEN}}", html.escape(token, quote=True))
        return Response(body, media_type="text/html", headers=PAGE_HEADERS)

    @get(
        "/assets/{name:str}",
        operation_id="getOpsAsset",
        summary="Dashboard script or style",
        exclude_from_auth=True,
        security=[{}],
        opt={"rate_limit": None},
        include_in_schema=False,
    )
    async def asset(self, name: FromPath[str]) -> Response[bytes]:
        """A static file of the dashboard (code, no data)."""
        if name not in ASSETS:
            raise NotFoundError("No such asset")
        return Response(
            (STATIC / name).read_bytes(),
            media_type=ASSETS[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    @post(
        "/tickets",
        operation_id="createOpsTicket",
        summary="One-time ticket to open the dashboard",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(403),
    )
    async def ticket(
        self,
        state: State,
        request: Request[Any, Any, Any],
        current_user: NamedDependency[Principal],
    ) -> TicketOut:
        """A ticket worth one page load within 60 s; open ``url`` in a browser."""
        admin = _admin(current_user)
        grant = TicketGrant(admin.user_id, credentials_expiry(request.scope), admin.token_version)
        ticket = await issue_ticket(state.redis, TICKET_PURPOSE, grant)
        return TicketOut(ticket=ticket, url=f"/ops?ticket={ticket}", expires_in=TICKET_TTL_S)


class OpsApiController(Controller):
    path = "/ops/api"
    tags = ["ops"]

    @get("/overview", operation_id="getOpsOverview", responses=problem_responses(403))
    async def overview(self, state: State, current_user: NamedDependency[Principal]) -> Overview:
        """Lag, throughput source, command outcomes, outbox, queues, webhooks, dependencies."""
        _admin(current_user)
        settings = state.settings
        cache: ReadinessCache | None = state.get("readiness")
        if cache is None:
            cache = state.readiness = ReadinessCache(state)
        (
            lag,
            attachment_lag,
            queues,
            (commands, outbox, webhooks),
            readiness,
            heartbeats,
        ) = await asyncio.gather(
            service.consumer_lag(settings),
            service.consumer_lag(settings, attachments_group(settings.kafka)),
            service.rabbit_queues(settings),
            service.database_sections(state.session_factory),
            cache.report(),
            worker_heartbeats(settings, state.redis),
        )
        dependencies = {name: DependencyOut(status) for name, status in readiness.checks.items()}
        dependencies["rabbitmq"] = DependencyOut(
            "down" if queues.error else "up", queues.error or ""
        )
        workers = workers_state(heartbeats)
        dependencies["workers"] = DependencyOut(workers.status, workers.detail)
        dependencies["consumers"] = DependencyOut(
            "unknown" if lag.error else ("up" if lag.members else "down"),
            lag.error or f"{len(lag.members)} member(s) in {lag.group}",
        )
        return Overview(
            generated_at=datetime.now(UTC),
            lag=lag,
            attachment_lag=attachment_lag,
            commands=commands,
            outbox=outbox,
            queues=queues,
            webhooks=webhooks,
            dependencies=dependencies,
        )

    @get("/dead-letters", operation_id="listOpsDeadLetters", responses=problem_responses(403))
    async def dead_letters(
        self,
        state: State,
        current_user: NamedDependency[Principal],
        limit: PageLimit = DEAD_LETTERS_SHOWN,
    ) -> DeadLettersOut:
        """The task-commands dead-letter topic: the count and the first ``limit`` entries."""
        _admin(current_user)
        return await service.dead_letters(state.settings, page_size(limit, state.settings.api))

    @post(
        "/dead-letters/replay",
        operation_id="replayOpsDeadLetters",
        status_code=HTTP_200_OK,
        responses=problem_responses(403, 404),
    )
    async def replay(
        self, state: State, current_user: NamedDependency[Principal], data: JSONBody[ReplayRequest]
    ) -> ReplayResult:
        """Re-publish the named dead letters (or ``all``) to the commands topic."""
        _admin(current_user)
        if not data.all and not data.ids:
            raise DomainError("Name dead-letter ids, or set all")
        try:
            replayed = await service.replay(state.settings, None if data.all else data.ids)
        except LookupError as exc:
            raise NotFoundError(str(exc)) from exc
        return ReplayResult(replayed=replayed)


CONTROLLERS = [OpsPageController, OpsApiController]
