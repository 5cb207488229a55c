"""``HEAD`` wherever ``GET`` is served, and an ``Allow`` header that lists every method of a
path, for every route of the app (those added later too), in one ASGI layer around Litestar's
router.

Litestar routes ``HEAD`` only to explicit ``@head`` handlers (405 otherwise), and the
``OPTIONS`` answer it generates lists the methods of one controller's route, not of the path
(``GET /tasks`` and ``POST /tasks`` live in two controllers: ``OPTIONS /tasks`` said
``OPTIONS, POST``). Here a ``HEAD`` on a path that has ``GET`` and no ``HEAD`` handler runs as
that ``GET`` (same authentication, limits and headers, ``Content-Length`` included) and its
body is dropped; and every ``Allow`` header is rewritten from the routing table itself.

It wraps ``app.asgi_handler`` (outside Litestar's middleware stack, which only runs once a
route matched), see ``install``.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Litestar
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils import normalize_path

# Set on the scope of a HEAD served by the GET handler (``is_head_request``).
HEAD_KEY: Final = "taskstream.head"
_PROBE: Final = "TASKSTREAM-PROBE"  # a method no route has: routing answers the path's methods


def is_head_request(scope: Scope) -> bool:
    """True for a ``HEAD`` that a ``GET`` handler serves: a handler may skip work whose only
    result is the body (e.g. holding a stream open)."""
    return bool(scope.get(HEAD_KEY))


def allow_value(methods: set[str]) -> str:
    """The ``Allow`` header for a set of methods: ``HEAD`` wherever ``GET`` is."""
    if "GET" in methods:
        methods = {*methods, "HEAD"}
    return ", ".join(sorted(methods))


class MethodsLayer:
    """``HEAD`` as ``GET`` without a body; ``Allow`` from the routing table (see module)."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.litestar = litestar

    def path_methods(self, path: str) -> set[str] | None:
        """Every method routed for ``path``; None for an unknown path or a mount."""
        try:
            self.litestar.asgi_router.handle_routing(path=normalize_path(path), method=_PROBE)
        except MethodNotAllowedException as exc:
            allow = (exc.headers or {}).get("allow", "")
            return {method.strip() for method in allow.split(",") if method.strip()}
        except NotFoundException:
            return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method not in {"HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        methods = self.path_methods(scope["path"])
        if methods is not None:
            send = _with_allow(send, allow_value(methods))
        if method == "HEAD":
            if methods is not None and "GET" in methods and "HEAD" not in methods:
                raw: dict[str, Any] = scope  # type: ignore[assignment]
                raw["method"] = "GET"
                raw[HEAD_KEY] = True
            send, receive = _without_body(send, receive)
        await self.app(scope, receive, send)


def _with_allow(send: Send, allow: str) -> Send:
    async def send_with_allow(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if any(name.lower() == b"allow" for name, _ in headers):
                message["headers"] = [
                    *((n, v) for n, v in headers if n.lower() != b"allow"),
                    (b"allow", allow.encode()),
                ]
        await send(message)

    return send_with_allow


def _without_body(send: Send, receive: Receive) -> tuple[Send, Receive]:
    """Headers as they are, then an empty body at once; the handler's body is dropped, and
    once the answer is complete the handler sees a disconnect (a stream stops)."""
    done = False

    async def send_headers_only(message: Message) -> None:
        nonlocal done
        if message["type"] == "http.response.start":
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            done = True
        elif message["type"] != "http.response.body":
            await send(message)

    async def receive_until_done() -> Any:
        if done:
            return {"type": "http.disconnect"}
        return await receive()

    return send_headers_only, receive_until_done


def install(app: Litestar) -> Litestar:
    """Put the layer around the app's router (and CORS, which answers preflights first)."""
    app.asgi_handler = MethodsLayer(app.asgi_handler, app)
    return app
