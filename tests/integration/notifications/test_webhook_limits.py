"""A receiver that trickles its answer is abandoned at the attempt deadline, retried, and never
holds back the deliveries to a healthy receiver of the same events."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from taskstream.models import WebhookAttempt, WebhookDelivery
from taskstream.settings import Settings
from tests.integration.notifications.conftest import (
    Processes,
    Team,
    add_to_outbox,
    env_for,
    subscribe,
    task_event,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("cleanup_rabbit")
TRICKLE_EVERY_S = 2.0


@dataclass
class TricklingReceiver:
    """Reads the request, then sends its response head one byte every 2 s."""

    requests: list[str] = field(default_factory=list)  # X-Taskstream-Delivery of each attempt
    trickling: int = 0  # connections currently being trickled to
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/slow"


@pytest.fixture
def trickling_receiver() -> Iterator[TricklingReceiver]:
    receiver = TricklingReceiver()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            headers = {}
            self.rfile.readline()
            while (line := self.rfile.readline().decode()) not in ("\r\n", "\n", ""):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.rfile.read(int(headers.get("content-length", 0)))
            with receiver.lock:
                receiver.requests.append(headers.get("x-taskstream-delivery", ""))
                receiver.trickling += 1
            try:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(TRICKLE_EVERY_S)
            except OSError:
                pass  # the worker gave up on us: that is the point
            finally:
                with receiver.lock:
                    receiver.trickling -= 1

    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.server = server
    yield receiver
    server.shutdown()
    server.server_close()


async def attempts_of(session_factory, subscription_id: uuid.UUID) -> list[WebhookAttempt]:
    async with session_factory() as session:
        stmt = (
            select(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        )
        return list((await session.scalars(stmt)).all())


async def test_trickling_receiver_is_abandoned_and_retried_healthy_one_served_meanwhile(
    notif_settings: Settings,
    session_factory,
    team: Team,
    processes: Processes,
    receiver_factory,
    trickling_receiver: TricklingReceiver,
) -> None:
    deadline_s = 3.0  # longer than the gap between bytes: only a total deadline ends it
    settings = notif_settings.model_copy(
        update={
            "webhooks": notif_settings.webhooks.model_copy(
                update={"attempt_deadline_s": deadline_s, "max_in_flight_per_host": 2}
            )
        }
    )
    healthy = receiver_factory([200])
    slow_sub = await subscribe(session_factory, team, trickling_receiver.url, ["task.assigned"])
    await subscribe(session_factory, team, healthy.url, ["task.assigned"])
    env = env_for(settings)
    processes.start("relay", ["relay", "--sweep-interval", "0"], env)
    processes.start("worker", ["work", "--channels", "webhook"], env)
    count = 8  # more deliveries to the slow receiver than it may hold at once
    events = [
        task_event(team, "task.assigned", actor=team.owner, assignee=team.alice)
        for _ in range(count)
    ]
    await add_to_outbox(session_factory, events)

    async def healthy_served() -> int | None:
        served = {h["X-Taskstream-Delivery"] for h, _ in list(healthy.requests)}
        return trickling_receiver.trickling or -1 if len(served) >= count else None

    trickling_when_served = await wait_for(
        healthy_served, timeout=30, what="every delivery at the healthy receiver"
    )
    # The slow receiver was still dribbling its first answers when the healthy one had all.
    assert trickling_when_served > 0
    assert len(trickling_receiver.requests) < count * settings.rabbit.webhook_max_attempts

    async def retried_after_deadline() -> list[WebhookAttempt] | None:
        attempts = await attempts_of(session_factory, slow_sub)
        retried = [a for a in attempts if a.attempt >= 2]
        return attempts if retried else None

    attempts = await wait_for(
        retried_after_deadline, timeout=60, what="a slow delivery abandoned and retried"
    )
    for attempt in attempts:
        assert attempt.status_code is None
        assert attempt.error is not None
        assert attempt.error.startswith("deadline")
        # Abandoned at the deadline, not after the ~76 s the whole answer would take.
        assert attempt.duration_ms < (deadline_s + 5) * 1000
    assert len(set(trickling_receiver.requests)) <= count
    assert "unknown delivery tag" not in processes.log("worker")
