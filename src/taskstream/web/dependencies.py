"""Dependencies every controller may ask for by name: ``current_user``, ``db_session``,
``trace_id``. Registered app-wide in ``app.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.errors import UnauthorizedError
from taskstream.observability.tracing import TraceContext, current_trace
from taskstream.principal import Principal


def caller(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated principal (set by ``guard.RequestGuard``); 401 on a public route."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):  # a route excluded from auth asked for a user
        raise UnauthorizedError("A bearer token is required")
    return user


def trace_id_of(request: Request[Any, Any, Any]) -> str:
    """The request's trace context as a ``traceparent`` (``web/trace_context.py`` set it; a
    fresh trace for an app without that layer); goes into Kafka headers and outbox events."""
    trace = current_trace.get()
    return (trace or TraceContext.new()).traceparent


def provide_current_user(request: Request[Any, Any, Any]) -> Principal:
    return caller(request)


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One session per request; the service commits when it writes, the rest rolls back."""
    async with state.session_factory() as session:
        yield session


def provide_trace_id(request: Request[Any, Any, Any]) -> str:
    return trace_id_of(request)


DEPENDENCIES = {
    # sync providers run inline (no worker thread): they only read the scope
    "current_user": Provide(provide_current_user, sync_to_thread=False),
    "db_session": Provide(provide_db_session),
    "trace_id": Provide(provide_trace_id, sync_to_thread=False),
}
