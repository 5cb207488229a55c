"""The client's address as the rate limits and the login guard see it.

Behind a reverse proxy every request comes from the proxy. Only when the peer is one of
``api.trusted_proxies`` (CIDRs) is the forwarding header read (``api.forwarded_header``:
``X-Forwarded-For`` or RFC 7239 ``Forwarded``; a proxy appends the address it saw, so the
chain reads client, proxy 1, proxy 2 ...). The right-most address that is not a trusted
proxy wins: everything left of it was written by someone we do not trust. Default: trust
no one, use the TCP peer.

Only the header the proxy is configured to set is read: if it sets X-Forwarded-For, a
``Forwarded`` header sent by the client passes through untouched and must not be believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final, Literal

from litestar.types import Scope

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# An address longer than this is not an address; it is cut so it cannot bloat keys.
MAX_ADDRESS_CHARS: Final = 64


def peer_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` addresses of a ``Forwarded`` header, in order (ports and brackets cut)."""
    addresses = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.strip().lower() != "for":
                continue
            token = raw.strip().strip('"')
            if token.startswith("["):  # "[2001:db8::1]:4711"
                token = token[1:].partition("]")[0]
            elif token.count(":") == 1:  # "192.0.2.1:4711"
                token = token.partition(":")[0]
            addresses.append(token)
    return addresses


class ClientAddress:
    """Resolves the client address of a request (see module docstring)."""

    def __init__(
        self,
        trusted_proxies: Sequence[object] = (),
        header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for",
    ) -> None:
        self.networks: list[IpNetwork] = [
            ipaddress.ip_network(str(cidr), strict=False) for cidr in trusted_proxies
        ]
        self.header = header.encode()

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def _chain(self, scope: Scope) -> list[str]:
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == self.header]
        if self.header == b"forwarded":
            return [a for value in values for a in _forwarded_for(value)]
        return [a.strip() for value in values for a in value.split(",") if a.strip()]

    def __call__(self, scope: Scope) -> str:
        peer = peer_address(scope)
        if not self.networks or not self._trusted(peer):
            return peer
        chain = self._chain(scope)
        for address in reversed(chain):
            if not self._trusted(address):
                return address[:MAX_ADDRESS_CHARS]
        # every hop is a trusted proxy: the left-most is as far as anyone can tell
        return chain[0][:MAX_ADDRESS_CHARS] if chain else peer
