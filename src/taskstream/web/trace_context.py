"""The outermost ASGI layer: every request runs in a trace and has a request id.

The trace continues the client's W3C ``traceparent`` (or an ``X-Trace-Id`` of older clients)
or starts a new one; its context is what the handler hands on (``dependencies.trace_id_of``)
into Kafka headers and from there to the outbox, RabbitMQ and webhooks. The request id is the
client's ``X-Request-Id`` when well-formed, else a fresh one. Both are on every log line of the
request and come back as ``X-Request-Id`` and ``X-Trace-Id`` response headers. At DEBUG one
line per request (method, path, status, duration); nothing per request at INFO.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Final

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from taskstream.observability import telemetry
from taskstream.observability.tracing import TraceContext, log_context

log = logging.getLogger("taskstream.api.access")

_REQUEST_ID: Final = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = legacy = request_id = None
        for name, value in scope["headers"]:  # one scan, no Headers object
            if name == b"traceparent":
                traceparent = value
            elif name == b"x-trace-id":
                legacy = value
            elif name == b"x-request-id" and _REQUEST_ID.match(value):
                request_id = value.decode()
        parent = TraceContext.parse(traceparent) or TraceContext.parse(legacy)
        request_id = request_id or os.urandom(8).hex()
        method = scope.get("method", "")
        started = time.perf_counter()
        status = 0

        with (
            telemetry.span(f"HTTP {method}", parent, kind="server") as trace,
            log_context(trace, request_id=request_id),
        ):
            ids = [(b"x-request-id", request_id.encode()), (b"x-trace-id", trace.trace_id.encode())]

            async def send_with_ids(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), *ids]
                await send(message)

            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                if log.isEnabledFor(logging.DEBUG):
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    log.debug("%s %s %d %.1f ms", method, scope["path"], status, elapsed_ms)
