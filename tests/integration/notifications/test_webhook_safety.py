"""Webhook deliveries: verifiable with the standardwebhooks library, pinned to public targets,
and nothing the target answers is read back into the delivery log."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from taskstream.db import transaction
from taskstream.enums import DeliveryStatus
from taskstream.models import WebhookSubscription
from taskstream.notifications.webhooks import generate_secret
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    Processes,
    Team,
    add_to_outbox,
    delivery_of,
    env_for,
    subscribe,
    task_event,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("cleanup_rabbit")


async def _use_secret(session_factory, subscription_id, secret: str) -> None:
    async with transaction(session_factory) as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id)
            .values(secret=secret)
        )


async def _finished(session_factory, subscription_id, status: DeliveryStatus):
    async def check():
        delivery, attempts = await delivery_of(session_factory, subscription_id)
        return (delivery, attempts) if delivery is not None and delivery.status is status else None

    return await wait_for(check, what=f"delivery {status}")


async def test_standard_webhooks_receiver_verifies_real_deliveries(
    notif_settings: Settings, session_factory, team: Team, processes: Processes, receiver_factory
) -> None:
    receiver = receiver_factory([500, 200])
    secret = generate_secret()
    subscription = await subscribe(session_factory, team, receiver.url, ["task.created"])
    await _use_secret(session_factory, subscription, secret)
    env = env_for(notif_settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    await add_to_outbox(session_factory, [task_event(team, "task.created", actor=team.owner)])

    delivery, attempts = await _finished(session_factory, subscription, DeliveryStatus.DELIVERED)
    # The failed attempt is logged as status and our own wording, never the target's body.
    assert [(a.status_code, a.error) for a in attempts] == [(500, "HTTP 500"), (200, None)]
    verifier = Webhook(secret)
    for headers, body in receiver.requests:
        lowered = {k.lower(): v for k, v in headers.items()}
        payload = verifier.verify(body, lowered)
        assert payload["type"] == "task.created"
        assert lowered["webhook-id"] == str(delivery.id)
        # The signature covers the id: the same request under another id does not verify.
        forged = {**lowered, "webhook-id": "00000000-0000-0000-0000-000000000000"}
        with pytest.raises(Exception, match="signature"):
            verifier.verify(body, forged)


async def test_delivery_refuses_a_target_that_is_not_allowed(
    notif_settings: Settings, session_factory, team: Team, processes: Processes, receiver_factory
) -> None:
    """A subscription whose target became internal (written past the API, or a name that now
    resolves inside) is refused by the worker after resolution: nothing reaches it."""
    receiver = receiver_factory([200])
    port = receiver.server.server_address[1]
    inside = await subscribe(
        session_factory, team, f"http://localhost:{port}/hook", ["task.created"]
    )
    # Only 127.0.0.1 itself is allowed: "localhost" is refused by name, whatever it resolves to.
    webhooks = notif_settings.webhooks.model_copy(update={"allowed_targets": ["127.0.0.1/32"]})
    env = env_for(notif_settings.model_copy(update={"webhooks": webhooks}))
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    await add_to_outbox(session_factory, [task_event(team, "task.created", actor=team.owner)])

    _, attempts = await _finished(session_factory, inside, DeliveryStatus.DEAD)
    assert {a.error for a in attempts} == {"refused: localhost is a loopback name"}
    assert {a.status_code for a in attempts} == {None}
    assert receiver.requests == []


async def test_allowed_name_is_connected_by_address_with_its_host_header(
    notif_settings: Settings, session_factory, team: Team, processes: Processes, receiver_factory
) -> None:
    receiver = receiver_factory([200])
    port = receiver.server.server_address[1]
    named = await subscribe(
        session_factory, team, f"http://localhost:{port}/hook", ["task.created"]
    )
    webhooks = notif_settings.webhooks.model_copy(update={"allowed_targets": ["localhost"]})
    env = env_for(notif_settings.model_copy(update={"webhooks": webhooks}))
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    await add_to_outbox(session_factory, [task_event(team, "task.created", actor=team.owner)])

    await _finished(session_factory, named, DeliveryStatus.DELIVERED)
    (headers, _), *_ = receiver.requests
    assert headers["Host"] == f"localhost:{port}"


async def test_a_webhook_belongs_to_the_project_and_outlives_its_creators_membership(
    notif_settings: Settings, session_factory, team: Team, processes: Processes, receiver_factory
) -> None:
    """Policy (docs/notifications.md, "Who owns a webhook"): the project's integration keeps
    firing after the maintainer who created it is removed."""
    from sqlalchemy import delete

    from taskstream.projects.models import ProjectMember

    receiver = receiver_factory([200])
    subscription = await subscribe(session_factory, team, receiver.url, ["task.created"])
    async with transaction(session_factory) as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription)
            .values(created_by=team.maintainer)
        )
        await session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == team.project_id,
                ProjectMember.user_id == team.maintainer,
            )
        )
    env = env_for(notif_settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    await add_to_outbox(session_factory, [task_event(team, "task.created", actor=team.owner)])
    await _finished(session_factory, subscription, DeliveryStatus.DELIVERED)
    assert len(receiver.requests) == 1
