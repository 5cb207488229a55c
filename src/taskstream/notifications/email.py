"""Email notifications over SMTP (aiosmtplib, one connection reused across messages).

One email per (event, recipient): the EmailDelivery row (id uuid5(event, recipient, email)) is
claimed in the same transaction that is committed only after the SMTP server accepted the
message. A crash between the two resends that one message (at least once); the Message-ID is
the delivery id, so mail clients and servers can collapse the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.enums import NotificationChannel
from taskstream.messages import DomainEvent
from taskstream.notifications.recipients import ACCOUNT_NOTICES, notification_id
from taskstream.notifications.repository import NotificationRepository
from taskstream.notifications.service import Recipient, resolve_recipients
from taskstream.notifications.texts import render_account_email, render_title
from taskstream.settings import AuthSettings, SmtpSettings

log = logging.getLogger(__name__)


def compose(
    event: DomainEvent,
    recipient: Recipient,
    delivery_id: uuid.UUID,
    sender: str,
    auth: AuthSettings | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient.email
    message["Subject"] = f"[taskstream] {render_title(event)}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{delivery_id}@taskstream>"
    message["X-Taskstream-Event"] = event.type
    if event.type in ACCOUNT_NOTICES:
        message.set_content(render_account_email(event, auth))
        return message
    lines = [render_title(event), ""]
    lines += [f"{key}: {value}" for key, value in sorted(event.data.items()) if key != "changes"]
    message.set_content("\n".join(lines))
    return message


class Mailer:
    """One SMTP connection (aiosmtplib), opened on first use and reused for every message.

    Messages go out one at a time (SMTP has no pipelining of whole messages); a connection the
    server dropped while idle is reopened once and the message sent on the new one. Any other
    failure is raised: the caller retries the event later, and the next send reconnects.
    """

    def __init__(self, settings: SmtpSettings, auth: AuthSettings | None = None) -> None:
        self.settings = settings
        # for the links of account emails (password reset)
        self.auth = auth
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self.connections_opened = 0

    async def send(self, message: EmailMessage) -> None:
        async with self._lock:
            reused = self._smtp is not None and self._smtp.is_connected
            smtp = await self._connected()
            try:
                await smtp.send_message(message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                await self._drop()
                if not reused:
                    raise
                # The idle connection was closed under us before the server took the message.
                log.info("SMTP connection was closed (%r); reconnecting", exc)
                await (await self._connected()).send_message(message)
            except BaseException:
                await self._drop()  # unknown protocol state: never reuse it
                raise

    async def close(self) -> None:
        async with self._lock:
            if self._smtp is not None and self._smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await self._smtp.quit()
            await self._drop()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        settings = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout_s,
            use_tls=settings.use_tls,
            # STARTTLS only when asked for: False (not None) so a plain local relay that
            # advertises it is not upgraded against a certificate it cannot present.
            start_tls=settings.starttls and not settings.use_tls,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            tls_context=ssl.create_default_context(),
        )
        await smtp.connect()
        self._smtp = smtp
        self.connections_opened += 1
        return smtp

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


async def deliver_email(
    session_factory: async_sessionmaker[AsyncSession], mailer: Mailer, event: DomainEvent
) -> int:
    """Email everyone who wants this event by email; returns how many were sent now.

    Raises ``OSError``/``aiosmtplib.SMTPException`` when the server refuses: nothing is recorded
    for the failed message and the worker retries the event later.
    """
    async with session_factory() as session:
        recipients = (await resolve_recipients(session, [event], NotificationChannel.EMAIL))[
            event.event_id
        ]
    sent = 0
    for recipient in recipients:
        delivery_id = notification_id(event.event_id, recipient.user_id, NotificationChannel.EMAIL)
        async with session_factory() as session, session.begin():
            claimed = await NotificationRepository.from_session(session).claim_email(
                delivery_id, recipient.user_id, event.event_id, recipient.email
            )
            if not claimed:
                continue  # sent before: this is a redelivery
            message = compose(event, recipient, delivery_id, mailer.settings.sender, mailer.auth)
            await mailer.send(message)
            sent += 1
    return sent
