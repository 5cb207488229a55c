"""Email notifications over SMTP (stdlib smtplib, run in a thread).

One email per (event, recipient): the EmailDelivery row (id uuid5(event, recipient, email)) is
claimed in the same transaction that is committed only after the SMTP server accepted the
message. A crash between the two resends once (at least once); the Message-ID is the delivery
id, so mail clients and servers can collapse the duplicate.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.enums import NotificationChannel
from taskstream.messages import DomainEvent
from taskstream.notifications.recipients import notification_id
from taskstream.notifications.repository import NotificationRepository
from taskstream.notifications.service import Recipient, resolve_recipients
from taskstream.notifications.texts import render_title
from taskstream.settings import SmtpSettings


def compose(
    event: DomainEvent, recipient: Recipient, delivery_id: uuid.UUID, sender: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient.email
    message["Subject"] = f"[taskstream] {render_title(event)}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{delivery_id}@taskstream>"
    message["X-Taskstream-Event"] = event.type
    lines = [render_title(event), ""]
    lines += [f"{key}: {value}" for key, value in sorted(event.data.items()) if key != "changes"]
    message.set_content("\n".join(lines))
    return message


def send_blocking(settings: SmtpSettings, messages: Sequence[EmailMessage]) -> None:
    """Send over one SMTP connection (implicit TLS, STARTTLS or plain, per settings)."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.use_tls:
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout_s, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
    with smtp:
        if settings.starttls and not settings.use_tls:
            smtp.starttls(context=context)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            smtp.login(settings.username, password)
        for message in messages:
            smtp.send_message(message)


async def deliver_email(
    session_factory: async_sessionmaker[AsyncSession],
    settings: SmtpSettings,
    event: DomainEvent,
) -> int:
    """Email everyone who wants this event by email; returns how many were sent now.

    Raises ``OSError``/``smtplib.SMTPException`` when the server refuses: nothing is recorded
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
            message = compose(event, recipient, delivery_id, settings.sender)
            await asyncio.to_thread(send_blocking, settings, [message])
            sent += 1
    return sent
