"""Stream tickets: how a browser's ``EventSource`` (which cannot send ``Authorization``) opens
``GET /notifications/stream``. The ticket mechanism itself is the edge's (web/tickets.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.datastructures import State
from litestar.types import Scope

from taskstream.notifications.schemas import StreamTicketOut
from taskstream.notifications.streams import STREAM_TICKET_PURPOSE
from taskstream.principal import Principal
from taskstream.web.authentication import credentials_expiry
from taskstream.web.tickets import TICKET_TTL_S, TicketGrant, issue_ticket


async def issue_stream_ticket(state: State, principal: Principal, scope: Scope) -> StreamTicketOut:
    """A ticket worth one stream opening within ``TICKET_TTL_S``; the stream it opens ends
    when the access token of this request expires, as a stream opened with it would."""
    grant = TicketGrant(principal.user_id, credentials_expiry(scope), principal.token_version)
    ticket = await issue_ticket(state.redis, STREAM_TICKET_PURPOSE, grant)
    return StreamTicketOut(
        ticket=ticket,
        expires_at=datetime.now(UTC) + timedelta(seconds=TICKET_TTL_S),
        url=f"/notifications/stream?ticket={ticket}",
    )
