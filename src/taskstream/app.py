"""The Litestar application factory and the resources it owns for its lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from taskstream.attachments.endpoints import CONTROLLERS as ATTACHMENT_CONTROLLERS
from taskstream.attachments.service import AttachmentService
from taskstream.attachments.storage import open_store
from taskstream.attachments.uploads import UploadService
from taskstream.auth.account_endpoints import CONTROLLERS as ACCOUNT_CONTROLLERS
from taskstream.auth.endpoints import AuthController, UsersController
from taskstream.auth.login_guard import LoginGuard
from taskstream.auth.tokens import TokenCodec
from taskstream.auth.user_status import UserStatusCache
from taskstream.command_status.endpoints import CommandController
from taskstream.command_status.records import AcceptedRecorder
from taskstream.comments.endpoints import CONTROLLERS as COMMENT_CONTROLLERS
from taskstream.db import create_engine, create_session_factory
from taskstream.history.endpoints import CONTROLLERS as HISTORY_CONTROLLERS
from taskstream.kafka import CommandPublisher
from taskstream.notifications.endpoints import CONTROLLERS as NOTIFICATION_CONTROLLERS
from taskstream.notifications.live_hub import LiveHub
from taskstream.observability import telemetry
from taskstream.observability.metrics import mark_this_process_dead
from taskstream.ops.endpoints import CONTROLLERS as OPS_CONTROLLERS
from taskstream.problems import EXCEPTION_HANDLERS, problem_responses
from taskstream.projects.access import ProjectAccessCache
from taskstream.projects.endpoints import ProjectController
from taskstream.projects.invitation_endpoints import CONTROLLERS as INVITATION_CONTROLLERS
from taskstream.projects.lifecycle_feed import LifecycleListener
from taskstream.projects.member_endpoints import CONTROLLERS as MEMBER_CONTROLLERS
from taskstream.runtime import tune_gc
from taskstream.settings import Settings, get_settings
from taskstream.tasks.endpoints import TaskController
from taskstream.tasks.read_endpoints import ProjectStatsController
from taskstream.tasks.service import TaskService
from taskstream.web.bodies import ApiRequest
from taskstream.web.body_drain import install as install_body_drain
from taskstream.web.browsers import cors_config
from taskstream.web.client_address import ClientAddress
from taskstream.web.concurrency_caps import ConcurrencyCaps
from taskstream.web.dependencies import DEPENDENCIES
from taskstream.web.docs import DocsAssetsController, StructExamplesPlugin, docs_render_plugins
from taskstream.web.guard import RequestGuard
from taskstream.web.health import HealthController
from taskstream.web.http_metrics import MetricsController, count_response
from taskstream.web.methods import install as install_methods_layer
from taskstream.web.ratelimit import RateLimiter
from taskstream.web.trace_context import TraceContextMiddleware

logger = logging.getLogger(__name__)

# Generous: a saturated event loop must not turn slow replies into reconnect storms.
REDIS_TIMEOUT_S = 3.0


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Open the database pool, Redis and the shared Kafka producer; close them on shutdown."""
    settings: Settings = app.state.settings
    engine = create_engine(settings.db)
    session_factory = create_session_factory(engine)
    redis = Redis.from_url(
        settings.redis.url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        max_connections=256,
    )
    publisher = CommandPublisher(settings.kafka)
    await publisher.start()
    limiter = RateLimiter(settings.limits, settings.redis.url, settings.redis.limits_key_prefix)
    access = ProjectAccessCache(session_factory)
    lifecycle_listener = LifecycleListener(settings.redis.url, access)
    lifecycle_listener.start()
    live_hub = LiveHub(settings.redis.url)
    user_status = UserStatusCache(session_factory)
    store = open_store(settings.attachments)
    app.state.update(
        attachment_store=store,
        attachments=AttachmentService(settings, store, session_factory),
        attachment_uploads=UploadService(
            settings,
            store,
            session_factory,
            partial(publisher.publish_records, settings.kafka.attachment_commands_topic),
        ),
        engine=engine,
        session_factory=session_factory,
        redis=redis,
        publisher=publisher,
        rate_limiter=limiter,
        login_guard=LoginGuard(redis, settings.limits, settings.redis.limits_key_prefix),
        concurrency_caps=ConcurrencyCaps(redis, settings.redis.limits_key_prefix),
        live_hub=live_hub,
        token_codec=TokenCodec(settings.auth),
        user_status=user_status,
        project_access=access,
        tasks=TaskService(
            publisher,
            redis,
            access,
            session_factory,
            AcceptedRecorder(redis, settings.api.idempotency_ttl_s),
            accepted_ttl_s=settings.api.idempotency_ttl_s,
            unapplied_wait_s=settings.api.unapplied_task_wait_s,
            batch_max_items=settings.api.batch_max_items,
        ),
    )
    tune_gc()
    try:
        yield
    finally:
        await live_hub.close()
        await lifecycle_listener.close()
        await store.close()
        await access.close()
        await user_status.close()
        await publisher.stop()
        await limiter.close()
        await redis.aclose()
        await engine.dispose()
        mark_this_process_dead()


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API; resources are opened on startup and closed on shutdown."""
    settings = settings or get_settings()
    telemetry.configure_tracing(settings.otel, "api")  # no-op without an endpoint
    handlers: list[Any] = [
        HealthController,
        MetricsController,
        AuthController,
        UsersController,
        *ACCOUNT_CONTROLLERS,
        ProjectController,
        *MEMBER_CONTROLLERS,
        *INVITATION_CONTROLLERS,
        ProjectStatsController,
        TaskController,
        CommandController,
        *COMMENT_CONTROLLERS,
        *HISTORY_CONTROLLERS,
        *NOTIFICATION_CONTROLLERS,
        *OPS_CONTROLLERS,
        *ATTACHMENT_CONTROLLERS,
        DocsAssetsController,
    ]
    app = Litestar(
        route_handlers=handlers,
        state=State(
            {
                "settings": settings,
                "client_address": ClientAddress(
                    settings.api.trusted_proxies, settings.api.forwarded_header
                ),
            }
        ),
        lifespan=[lifespan],
        dependencies=DEPENDENCIES,
        # the trace and request id first, so that even a refused request logs them; then auth,
        # rate limit, content type and idempotency in one layer (see guard.py)
        middleware=[TraceContextMiddleware, RequestGuard],
        # counts every response, the guard's refusals too (http_metrics.py)
        before_send=[count_response],
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[StructExamplesPlugin()],  # struct examples in the OpenAPI (web/docs.py)
        # logging is the process's (cli/logs.py, applied by granian in each worker): Litestar's
        # default config would install a second root handler with another line format
        logging_config=None,
        request_max_body_size=settings.api.max_body_bytes,
        # JSON nesting is bounded before decoding (400, never a RecursionError)
        request_class=ApiRequest,
        openapi_config=OpenAPIConfig(
            title="taskstream",
            version="1.0.0",
            description="High-volume task ingestion: commands are accepted (202) once the "
            "broker has them and applied asynchronously. Errors are RFC 9457 problem+json.",
            path="/schema",
            render_plugins=docs_render_plugins(),
            use_handler_docstrings=True,
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT"
                    ),
                    "HealthToken": SecurityScheme(
                        type="apiKey", name="X-Health-Token", security_scheme_in="header"
                    ),
                }
            ),
            security=[{"BearerToken": []}],
        ),
        # answers preflights before any middleware: never authenticated nor rate limited
        cors_config=cors_config(settings.api),
        debug=False,
    )
    _document_problems(app)
    # HEAD wherever GET is, Allow listing every method of a path (web/methods.py)
    install_methods_layer(app)
    # a request refused unread still gets its answer (web/body_drain.py)
    return install_body_drain(app, limit=settings.api.max_body_bytes)


def _document_problems(app: Litestar) -> None:
    """Every route answers errors as problem+json (auth, limits, body checks happen in
    middleware), so every operation documents them, including routes other areas add."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema:
                handler.responses = {**problem_responses(), **(handler.responses or {})}
