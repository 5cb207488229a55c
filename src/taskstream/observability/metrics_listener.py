"""The small HTTP listener of every consume, relay and work process: ``/metrics``,
``/health/live`` and ``/health/ready``.

It runs on the process's own event loop (``asyncio.start_server``), not in a thread: an answer
on ``/health/live`` then proves that the loop still turns (a thread would answer while the loop
is wedged), and readiness is read from state the process keeps anyway (joined the group,
holding a channel, last batch durable), so a probe opens no connection and does no I/O. The
HTTP it speaks is the minimum a scraper or a kubelet needs: one GET per connection, a few
headers, ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

import msgspec

from taskstream.observability import metrics

log = logging.getLogger(__name__)

# dependency -> up; empty means nothing to check yet
ReadinessCheck = Callable[[], Mapping[str, bool]]
Refresh = Callable[[], Awaitable[None]]

READ_TIMEOUT_S: Final = 5.0
MAX_REQUEST_BYTES: Final = 8192
REFRESH_TIMEOUT_S: Final = 2.0


class ProcessListener:
    """Serves one process's metrics and probes; ``ready`` says which dependencies the process
    holds, ``refresh`` (optional) updates gauges that are read on demand (the outbox backlog)."""

    def __init__(
        self, host: str, port: int, ready: ReadinessCheck, refresh: Refresh | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ready = ready
        self.refresh = refresh
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        log.info("metrics and health on http://%s:%d", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_REQUEST_BYTES:
                await _respond(writer, 431, b"text/plain", b"request head too large\n")
                return
            method, _, rest = head.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            if method not in (b"GET", b"HEAD"):
                await _respond(writer, 405, b"text/plain", b"GET only\n")
                return
            status, content_type, body = await self._route(path)
            await _respond(writer, status, content_type, b"" if method == b"HEAD" else body)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(self, path: bytes) -> tuple[int, bytes, bytes]:
        if path == b"/health/live":
            return 200, b"application/json", b'{"status":"up"}'
        if path == b"/health/ready":
            checks = self._checks()
            ready = bool(checks) and all(checks.values())
            body = msgspec.json.encode(
                {
                    "status": "ready" if ready else "unavailable",
                    "checks": {name: "up" if ok else "down" for name, ok in checks.items()},
                }
            )
            return (200 if ready else 503), b"application/json", body
        if path == b"/metrics":
            self._checks()
            if self.refresh is not None:
                try:
                    async with asyncio.timeout(REFRESH_TIMEOUT_S):
                        await self.refresh()
                except Exception as exc:  # the scrape still answers, with the last values
                    log.warning("refreshing metrics failed: %r", exc)
            return 200, metrics.CONTENT_TYPE.encode(), metrics.render()
        return 404, b"text/plain", b"not found\n"

    def _checks(self) -> Mapping[str, bool]:
        checks = self.ready()
        for name, ok in checks.items():
            metrics.DEPENDENCY_UP.labels(name).set(1 if ok else 0)
        return checks


async def _respond(
    writer: asyncio.StreamWriter, status: int, content_type: bytes, body: bytes
) -> None:
    reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed", 503: b"Unavailable"}
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (
            status,
            reason.get(status, b"Error"),
            content_type,
            len(body),
        )
    )
    writer.write(head + body)
    await writer.drain()


@contextlib.asynccontextmanager
async def process_listener(
    host: str, port: int, ready: ReadinessCheck, refresh: Refresh | None = None
) -> AsyncIterator[ProcessListener | None]:
    """The listener while the block runs; None when ``port`` is 0 (off) or taken (logged: the
    process does its work without it rather than not at all)."""
    if port == 0:
        yield None
        return
    listener = ProcessListener(host, port, ready, refresh)
    try:
        await listener.start()
    except OSError as exc:
        log.error(
            "metrics listener not started on %s:%d (%s); set another port or 0 to turn it off",
            host,
            port,
            exc,
        )
        yield None
        return
    try:
        yield listener
    finally:
        await listener.stop()
