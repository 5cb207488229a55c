"""The password reset end to end through the real email channel: API -> outbox -> relay ->
RabbitMQ -> email worker -> SMTP (aiosmtpd) -> the link's token -> confirm."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import uuid

import pytest

from taskstream.db import transaction
from taskstream.enums import NotificationChannel
from taskstream.models import NotificationPreference
from taskstream.notifications.recipients import ACCOUNT_NOTICES
from taskstream.notifications.service import deliver_in_app
from taskstream.settings import Settings
from tests.integration.auth.accounts_support import NEW_PASSWORD, login
from tests.integration.http_support import register_and_login
from tests.integration.notifications.conftest import Processes, SmtpSink, env_for, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cleanup_rabbit")]
LINK = re.compile(r"#token=(\S+)")


def _messages_to(sink: SmtpSink, address: str) -> list[email.message.EmailMessage]:
    found = []
    for _, recipients, content in list(sink.mailbox.messages):
        if recipients == [address]:
            found.append(email.message_from_bytes(content, policy=email.policy.default))
    return found


async def test_the_reset_email_arrives_and_its_link_resets_the_password_once(
    client, session_factory, notif_settings: Settings, processes: Processes, smtp_sink: SmtpSink
):
    alice = await register_and_login(client, "Alice")
    # Preferences cannot switch account emails off: this row is ignored.
    async with transaction(session_factory) as session:
        session.add_all(
            NotificationPreference(
                user_id=uuid.UUID(alice.id),
                event_type=event_type,
                channel=NotificationChannel.EMAIL,
                enabled=False,
            )
            for event_type in ACCOUNT_NOTICES
        )
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    assert (await client.post("/auth/password-reset", json={"email": ghost})).status_code == 202
    assert (
        await client.post("/auth/password-reset", json={"email": alice.email})
    ).status_code == 202

    env = env_for(smtp_sink.settings_for(notif_settings))
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "email"], env)

    async def reset_mail():
        return [m for m in _messages_to(smtp_sink, alice.email) if "Reset" in m["Subject"]]

    [message] = await wait_for(reset_mail, what="the reset email")
    assert message["X-Taskstream-Event"] == "user.password_reset_requested"
    body = message.get_content()
    match = LINK.search(body)
    assert match is not None, body
    token = match.group(1)
    assert body.startswith("Someone asked to reset")

    confirmed = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text
    reused = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "newPassword": "other pass 1234"}
    )
    assert reused.status_code == 422
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200

    async def changed_mail():
        return [m for m in _messages_to(smtp_sink, alice.email) if "changed" in m["Subject"]]

    [notice] = await wait_for(changed_mail, what="the password-changed email")
    assert notice["X-Taskstream-Event"] == "user.password_changed"
    assert token not in notice.get_content()
    # The link went to alice alone, once; nothing went to the unknown address. (The relay
    # also sends what other tests of the session left in the outbox, to their own users.)
    await asyncio.sleep(0.5)
    with_token = [
        recipients
        for _, recipients, content in list(smtp_sink.mailbox.messages)
        if token in email.message_from_bytes(content, policy=email.policy.default).get_content()
    ]
    assert with_token == [[alice.email]]
    notices = [
        m["X-Taskstream-Event"]
        for m in _messages_to(smtp_sink, alice.email)
        if m["X-Taskstream-Event"] in ACCOUNT_NOTICES
    ]
    assert sorted(notices) == ["user.password_changed", "user.password_reset_requested"]
    assert _messages_to(smtp_sink, ghost) == []


async def test_account_notices_are_never_in_app(client, session_factory):
    from datetime import UTC, datetime

    from taskstream.messages import DomainEvent

    alice = await register_and_login(client, "Alice")
    events = [
        DomainEvent(
            event_id=uuid.uuid4(),
            type=event_type,
            occurred_at=datetime.now(UTC),
            aggregate_id=uuid.UUID(alice.id),
            actor_id=uuid.UUID(alice.id),
            data={"userId": alice.id, "resetId": str(uuid.uuid4())},
        )
        for event_type in sorted(ACCOUNT_NOTICES)
    ]
    async with transaction(session_factory) as session:
        assert await deliver_in_app(session, events) == []


async def test_account_notices_are_not_a_preference(client):
    alice = await register_and_login(client, "Alice")
    current = await client.get("/users/me/notification-preferences", headers=alice.headers)
    assert not {i["eventType"] for i in current.json()["items"]} & ACCOUNT_NOTICES
    refused = await client.put(
        "/users/me/notification-preferences",
        json={
            "items": [
                {"eventType": "user.password_reset_requested", "channel": "email", "enabled": False}
            ]
        },
        headers=alice.headers,
    )
    assert refused.status_code == 422
