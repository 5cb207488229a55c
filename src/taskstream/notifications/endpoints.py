"""Notification routes: the inbox and its live stream, preferences, project webhooks."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from taskstream.fields import CURSOR_QUERY, Cursor
from taskstream.notifications import service, webhooks
from taskstream.notifications.schemas import (
    NotificationOut,
    NotificationPage,
    Preferences,
    ReadAllResult,
    StreamTicketOut,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookOut,
)
from taskstream.notifications.streams import STREAM_TICKET_PURPOSE, open_stream
from taskstream.notifications.tickets import issue_stream_ticket
from taskstream.principal import Principal
from taskstream.problems import problem_responses
from taskstream.web.pagination import DEFAULT_PAGE_SIZE, PageLimit, page_size
from taskstream.web.tickets import MAX_TICKET_LENGTH


class NotificationController(Controller):
    path = "/notifications"
    tags = ["notifications"]

    @get("/", operation_id="listNotifications", responses=problem_responses())
    async def list_notifications(
        self,
        *,
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
        unread: FromQuery[bool] = False,
        cursor: Annotated[Cursor | None, QueryParameter(**CURSOR_QUERY)] = None,
    ) -> NotificationPage:
        """The caller's notifications, newest first; pass ``nextCursor`` back as ``cursor``."""
        return await service.list_notifications(
            db_session,
            current_user,
            limit=page_size(limit, state.settings.api),
            unread_only=unread,
            cursor=cursor,
        )

    @post(
        "/{notification_id:uuid}/read",
        operation_id="markNotificationRead",
        status_code=HTTP_200_OK,
        responses=problem_responses(),
    )
    async def mark_read(
        self,
        *,
        notification_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> NotificationOut:
        """Mark one notification read (idempotent)."""
        return await service.mark_read(db_session, current_user, notification_id)

    @post(
        "/read-all",
        operation_id="markAllNotificationsRead",
        status_code=HTTP_200_OK,
        responses=problem_responses(),
    )
    async def mark_all_read(
        self, *, current_user: NamedDependency[Principal], db_session: NamedDependency[AsyncSession]
    ) -> ReadAllResult:
        """Mark every unread notification of the caller read."""
        return ReadAllResult(marked_read=await service.mark_all_read(db_session, current_user))

    @post(
        "/stream-ticket",
        operation_id="createNotificationStreamTicket",
        status_code=HTTP_201_CREATED,
        responses={
            **problem_responses(),
            HTTP_201_CREATED: ResponseSpec(
                StreamTicketOut,
                description="A one-time ticket for GET /notifications/stream?ticket=",
            ),
        },
    )
    async def stream_ticket(
        self, *, current_user: NamedDependency[Principal], state: State, request: Request
    ) -> StreamTicketOut:
        """A one-time ticket that opens the caller's live stream without a header
        (``EventSource``), within 60 s; the stream then lasts as long as this request's token."""
        return await issue_stream_ticket(state, current_user, request.scope)

    @get(
        "/stream",
        operation_id="streamNotifications",
        media_type="text/event-stream",
        responses=problem_responses(),
        opt={"ticket": STREAM_TICKET_PURPOSE},
        security=[{"BearerToken": []}, {}],
    )
    async def stream(
        self,
        *,
        current_user: NamedDependency[Principal],
        state: State,
        request: Request,
        ticket: Annotated[
            str | None,
            QueryParameter(
                max_length=MAX_TICKET_LENGTH,
                description="A ticket from POST /notifications/stream-ticket, instead of "
                "the Authorization header (browsers' EventSource cannot send one); one use.",
            ),
        ] = None,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID",
                max_length=200,
                description="Resume: the notifications after this event id come first.",
            ),
        ] = None,
        last_event_id_query: Annotated[
            str | None,
            QueryParameter(
                name="lastEventId",
                max_length=200,
                description="Resume, for a client that reconnects with a new ticket URL.",
            ),
        ] = None,
    ) -> ServerSentEvent:
        """Server-Sent Events: one ``notification`` event per new notification (its ``id`` is
        the resume point), live, until the token (or the ticket's token) expires (then an
        ``end`` event); at most ``api.max_streams_per_user`` open per user (429 beyond)."""
        return await open_stream(
            state, current_user, request.scope, last_event_id, last_event_id_query
        )


class NotificationPreferencesController(Controller):
    path = "/users/me/notification-preferences"
    tags = ["notifications"]

    @get("/", operation_id="getNotificationPreferences", responses=problem_responses())
    async def get_preferences(
        self, *, current_user: NamedDependency[Principal], db_session: NamedDependency[AsyncSession]
    ) -> Preferences:
        """Which event types reach the caller on which channel (defaults filled in)."""
        return await service.get_preferences(db_session, current_user)

    @put("/", operation_id="putNotificationPreferences", responses=problem_responses())
    async def put_preferences(
        self,
        *,
        data: JSONBody[Preferences],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> Preferences:
        """Switch (event type, channel) pairs on or off; pairs not sent keep their value."""
        return await service.put_preferences(db_session, current_user, data)


class WebhookController(Controller):
    path = "/projects/{project_id:uuid}/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        operation_id="createWebhook",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(403, 409),
    )
    async def create_webhook(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        data: JSONBody[WebhookCreate],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
    ) -> WebhookCreated:
        """Subscribe a public https URL to events of the project (Standard Webhooks signed)."""
        return await webhooks.create_webhook(
            db_session, current_user, project_id, data, state.settings
        )

    @get("/", operation_id="listWebhooks", responses=problem_responses(403))
    async def list_webhooks(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> list[WebhookOut]:
        """The project's webhook subscriptions."""
        return await webhooks.list_webhooks(db_session, current_user, project_id)

    @delete(
        "/{webhook_id:uuid}",
        operation_id="deleteWebhook",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(403),
    )
    async def delete_webhook(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        """Remove a webhook subscription."""
        await webhooks.delete_webhook(db_session, current_user, project_id, webhook_id)

    @get(
        "/{webhook_id:uuid}/deliveries",
        operation_id="listWebhookDeliveries",
        responses=problem_responses(403),
    )
    async def list_deliveries(
        self,
        *,
        project_id: FromPath[uuid.UUID],
        webhook_id: FromPath[uuid.UUID],
        current_user: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        state: State,
        limit: PageLimit = DEFAULT_PAGE_SIZE,
    ) -> list[WebhookDeliveryOut]:
        """Recent deliveries with every attempt (status code, error, duration)."""
        return await webhooks.list_deliveries(
            db_session, current_user, project_id, webhook_id, page_size(limit, state.settings.api)
        )


CONTROLLERS = [NotificationController, NotificationPreferencesController, WebhookController]
