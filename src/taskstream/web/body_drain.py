"""Read what a refused request still has in flight, so that its answer reaches the client.

A request refused before its body was read (401 from the guard, 404 for an unknown path, 429,
422 from a query check) leaves the rest of the body in the socket. The HTTP server then closes
the connection with unread data, the kernel answers with a reset, and a client still sending
loses the response it was owed ("server disconnected without sending a response"; seen on one
request in three with a 40 KB body). Draining the rest before the exchange ends lets the answer
arrive and the connection stay open.

Bounded both ways: at most ``limit`` bytes (the largest JSON body the API accepts; an upload
refused with 413 is not read to its end) and ``timeout_s`` seconds (a client that stops sending
does not hold the exchange).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from litestar import Litestar
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

DRAIN_TIMEOUT_S: Final = 5.0


class BodyDrainLayer:
    """Drain the unread rest of a request body after the app has answered (see module)."""

    def __init__(self, app: ASGIApp, *, limit: int, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        finished = False

        async def tracked() -> ReceiveMessage:
            nonlocal finished
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                finished = True
            return message

        try:
            await self.app(scope, tracked, send)
        finally:
            if not finished:
                await self._drain(receive)

    async def _drain(self, receive: Receive) -> None:
        read = 0
        with contextlib.suppress(TimeoutError, OSError, RuntimeError):
            async with asyncio.timeout(self.timeout_s):
                while read <= self.limit:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    read += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return


def install(app: Litestar, limit: int) -> Litestar:
    """Put the layer outermost, around everything that may refuse a request unread."""
    app.asgi_handler = BodyDrainLayer(app.asgi_handler, limit=limit)
    return app
