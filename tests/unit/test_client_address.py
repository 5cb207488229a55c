"""The client address behind reverse proxies: headers believed only from trusted peers."""

from __future__ import annotations

from typing import Any

import pytest

from taskstream.web.client_address import ClientAddress


def scope(peer: str, *headers: tuple[str, str]) -> Any:
    return {"client": (peer, 40000), "headers": [(k.encode(), v.encode()) for k, v in headers]}


def test_no_trusted_proxy_means_the_peer_whatever_the_headers_say() -> None:
    resolve = ClientAddress()
    assert resolve(scope("10.0.0.5", ("x-forwarded-for", "203.0.113.9"))) == "10.0.0.5"


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    resolve = ClientAddress(["10.0.0.0/8"])
    assert resolve(scope("192.0.2.1", ("x-forwarded-for", "203.0.113.9"))) == "192.0.2.1"


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # the client wrote the left part: the right-most untrusted address is the one our
        # proxy saw
        ("1.1.1.1, 203.0.113.9", "203.0.113.9"),
        ("1.1.1.1, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("10.9.9.9, 10.1.2.3", "10.9.9.9"),  # only proxies: the left-most
        ("not-an-ip, 10.1.2.3", "not-an-ip"),
    ],
)
def test_the_right_most_untrusted_address_wins(chain: str, client: str) -> None:
    resolve = ClientAddress(["10.0.0.0/8"])
    assert resolve(scope("10.0.0.5", ("x-forwarded-for", chain))) == client


def test_repeated_headers_form_one_chain() -> None:
    resolve = ClientAddress(["10.0.0.0/8"])
    request = scope("10.0.0.5", ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "10.1.1.1"))
    assert resolve(request) == "203.0.113.9"


def test_forwarded_header_with_ports_and_ipv6() -> None:
    resolve = ClientAddress(["10.0.0.0/8", "2001:db8:ffff::/48"], header="forwarded")
    value = 'for=1.1.1.1, for="[2001:db8::1]:4711";proto=https, for=10.2.2.2:80'
    assert resolve(scope("10.0.0.5", ("forwarded", value))) == "2001:db8::1"
    # the other header is not believed when the proxy is configured to set Forwarded
    assert resolve(scope("10.0.0.5", ("x-forwarded-for", "203.0.113.9"))) == "10.0.0.5"
