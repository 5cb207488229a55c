"""The pinned network backend resolves once, checks every address and connects to it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import pytest

from taskstream.notifications.webhook_targets import (
    PinnedNetworkBackend,
    TargetRefusedError,
    WebhookTargetPolicy,
)


class RebindingResolver:
    """A name that answers a public address first and a loopback address afterwards."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> tuple[PinnedNetworkBackend, list[str]]:
    backend = PinnedNetworkBackend(WebhookTargetPolicy())
    connected: list[str] = []

    async def connect_tcp(host: str, *args: Any) -> httpcore.AsyncNetworkStream:
        connected.append(host)
        raise httpcore.ConnectError("test: no network")

    monkeypatch.setattr(backend.inner, "connect_tcp", connect_tcp)
    return backend, connected


async def test_connects_to_the_address_it_checked(backend, monkeypatch):
    pinned, connected = backend
    resolver = RebindingResolver("93.184.215.14", "127.0.0.1")
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    with pytest.raises(httpcore.ConnectError, match="no network"):
        await pinned.connect_tcp("rebind.example", 443, 1.0)
    assert resolver.calls == 1  # one lookup: nothing to rebind between check and connect
    assert connected == ["93.184.215.14"]


async def test_a_name_resolving_inside_is_refused_before_connecting(backend, monkeypatch):
    pinned, connected = backend
    resolver = RebindingResolver("127.0.0.1")
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    with pytest.raises(TargetRefusedError, match="loopback"):
        await pinned.connect_tcp("rebind.example", 443, 1.0)
    assert connected == []


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),
        ("::ffff:10.0.0.1", True),
        ("2002:7f00:1::", True),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 around 169.254.169.254
        ("fd00::1", True),
        ("2606:4700::1111", False),
        ("1.1.1.1", False),
    ],
)
def test_address_policy(address, refused):
    import ipaddress

    assert (
        WebhookTargetPolicy().address_refusal(ipaddress.ip_address(address)) is not None
    ) is refused
