"""The one ASGI layer every request passes before its handler: who is calling, may they, and
is the request well-formed enough to read.

In this order, each with an early exit:
1. bearer authentication (401) unless the route is public (``exclude_from_auth=True`` or one
   of ``PUBLIC_PATHS``) or the method is OPTIONS; a route marked ``opt={"ticket": purpose}``
   also takes a one-time ``?ticket=`` instead of the header (web/tickets.py: for browsers);
2. the rate limit of the caller (429), adding ``RateLimit-*`` headers to the response; routes
   pick a stricter bucket with ``opt={"rate_limit": kind}`` or opt out with ``None``;
3. a JSON content type for request bodies (415);
4. ``Idempotency-Key`` handling, only for a POST that carries the header.

CORS preflights never get here: Litestar's CORS layer answers them before any middleware
(web/browsers.py), so they are neither authenticated nor rate limited.

Why one layer instead of four middlewares: on ``POST /tasks`` each extra layer cost a coroutine,
a ``Headers`` object or a ``dict`` of the headers per request, and the four together were the
largest single cost of the route. Here the headers are scanned once and the common case (a
cached token and user status, a leased rate-limit hit, no idempotency key) does no I/O.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from taskstream.observability.metrics import RATE_LIMIT_DECISIONS
from taskstream.principal import Principal
from taskstream.web.authentication import authenticate, authenticate_ticket
from taskstream.web.http_metrics import STARTED
from taskstream.web.idempotency import serve_idempotent
from taskstream.web.ratelimit import RateLimiter, client_ip

# Routes anyone may call; everything else needs a bearer token.
PUBLIC_PATHS: Final = re.compile(r"^/schema|^/health$")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: bytes | None) -> bool:
    media_type = (content_type or b"").split(b";")[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return send_with_headers


# limit kind -> (allowed child, refused child): no label lookup per request
_decisions: dict[str, tuple[Any, Any]] = {}


def _count_decision(limit: str, allowed: bool) -> None:
    children = _decisions.get(limit)
    if children is None:
        children = _decisions[limit] = (
            RATE_LIMIT_DECISIONS.labels(limit, "allowed"),
            RATE_LIMIT_DECISIONS.labels(limit, "refused"),
        )
    children[0 if allowed else 1].inc()


async def _caller(
    state: Any, scope: Scope, opt: dict[str, Any], authorization: bytes | None
) -> Principal:
    """The bearer token's user; on a ticket route without the header, the ticket's."""
    ticket_purpose = opt.get("ticket")
    if authorization is None and ticket_purpose is not None:
        return await authenticate_ticket(state, scope, ticket_purpose)
    return await authenticate(state, authorization)


class RequestGuard:
    """Authentication, rate limit, content type and idempotency for every route (see module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        authorization = content_type = idempotency_key = None
        content_length, chunked = b"0", False
        for name, value in scope[
            "headers"
        ]:  # one pass; the first Authorization and Idempotency-Key count
            if name == b"authorization":
                authorization = authorization or value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"idempotency-key":
                idempotency_key = idempotency_key or value
        raw: dict[str, Any] = scope  # type: ignore[assignment]
        raw[STARTED] = time.perf_counter()  # latency of the response (http_metrics.py)
        method = raw.get("method")
        opt = scope["route_handler"].opt
        state = scope["app"].state
        user: Principal | None = None
        if (
            not opt.get("exclude_from_auth")
            and method != "OPTIONS"
            and not PUBLIC_PATHS.search(scope["path"])
        ):
            user = await _caller(state, scope, opt, authorization)
            scope["user"] = user
            scope["auth"] = authorization
        if kind != "http":
            await self.app(scope, receive, send)
            return

        limiter: RateLimiter | None = state.get("rate_limiter")
        if limiter is not None and limiter.settings.enabled:
            limit: str | None
            if "rate_limit" in opt:
                limit, identity = opt["rate_limit"], client_ip(scope)
            elif user is not None:
                limit, identity = ("admin" if user.is_admin else "member"), str(user.user_id)
            elif scope["path"].startswith("/schema"):
                limit, identity = None, ""  # the API's documentation: static, never limited
            else:
                limit, identity = "anonymous", client_ip(scope)
            if limit is not None:
                decision = limiter.hit_from_lease(limit, identity) or await limiter.hit(
                    limit, identity
                )
                _count_decision(limit, decision.allowed)
                limiter.enforce(limit, decision)
                send = _with_headers(send, decision.asgi_headers())

        has_body = content_length != b"0" or chunked
        # routes that stream a file as the body (opt raw_body) take any content type, and no
        # Idempotency-Key: the body is never buffered to be fingerprinted
        raw_body = opt.get("raw_body", False)
        if method in _BODY_METHODS and has_body and not raw_body and not _is_json(content_type):
            raise HTTPException(
                status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                detail="Send the request body as application/json",
            )
        if method == "POST" and idempotency_key is not None and not raw_body:
            await serve_idempotent(self.app, scope, receive, send, idempotency_key)
            return
        await self.app(scope, receive, send)
