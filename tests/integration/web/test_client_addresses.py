"""Per-address limits against a real server reached from several loopback addresses: the
forwarding header counts only from a trusted proxy, and failed logins from one address never
lock the account's owner out at another."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from taskstream.settings import Settings
from tests.integration.http_support import PASSWORD, ApiServer, relaxed_limits

PROXY = "127.0.0.2"


@pytest.fixture(scope="module")
def server(settings: Settings, database, topics) -> Iterator[ApiServer]:
    tuned = relaxed_limits(
        settings,
        login="4/minute",
        login_failures_per_client=3,
        login_failures_per_account=5,
    )
    api = tuned.api.model_copy(update={"trusted_proxies": [f"{PROXY}/32"]})
    server = ApiServer(tuned.model_copy(update={"api": api})).start()
    yield server
    server.stop()


def client_from(server: ApiServer, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)


def register(server: ApiServer, name: str) -> str:
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    with client_from(server, "127.0.0.1") as client:
        body = {"name": name, "email": email, "password": PASSWORD}
        assert client.post("/auth/register", json=body).status_code == 201
    return email


def login(client: httpx.Client, email: str, password: str, **headers: str) -> int:
    body = {"email": email, "password": password}
    return client.post("/auth/login", json=body, headers=headers).status_code


def test_forwarded_for_from_an_untrusted_peer_changes_nothing(server: ApiServer):
    email = f"nobody-{id(server)}@example.com"
    with client_from(server, "127.0.0.21") as client:
        statuses = [
            login(client, email, "x", **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(5)
        ]
    assert statuses[-1] == 429  # one address, one per-address bucket of 4


def test_forwarded_for_from_a_trusted_proxy_names_the_client(server: ApiServer):
    email = f"nobody-{id(server)}-2@example.com"
    with client_from(server, PROXY) as proxy:
        for n in range(5):  # five clients behind the proxy: five buckets
            status = login(proxy, email, f"x{n}", **{"X-Forwarded-For": f"203.0.113.{n + 10}"})
            assert status == 401  # counted per client, never all against the proxy
        # a client that spoofs a left part still lands in its own bucket, the one it failed in
        spoofed = [
            login(proxy, email, "x", **{"X-Forwarded-For": f"1.2.3.{n}, 203.0.113.40"})
            for n in range(5)
        ]
    assert spoofed[-1] == 429


def test_failed_logins_elsewhere_never_refuse_the_owner(server: ApiServer):
    email = register(server, "owner")
    with client_from(server, "127.0.0.31") as attacker:
        assert [login(attacker, email, f"guess-{n}") for n in range(3)] == [401, 401, 401]
        assert login(attacker, email, "guess-4") == 429
        assert login(attacker, email, PASSWORD) == 429  # even the right password, from there
    with client_from(server, "127.0.0.32") as owner:
        assert login(owner, email, PASSWORD) == 200


def test_a_sprayed_account_refuses_failing_addresses_but_not_the_owner(server: ApiServer):
    email = register(server, "sprayed")
    for n in range(6):  # six addresses, one failure each: the account has 6 >= 5 failures
        with client_from(server, f"127.0.0.{40 + n}") as attacker:
            assert login(attacker, email, "guess") == 401
    with client_from(server, "127.0.0.40") as attacker:
        refused = attacker.post("/auth/login", json={"email": email, "password": "again"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
    with client_from(server, "127.0.0.50") as owner:
        assert login(owner, email, PASSWORD) == 200
        # and the owner's address keeps working after its own success
        assert login(owner, email, PASSWORD) == 200
