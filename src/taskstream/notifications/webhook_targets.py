"""Where a webhook may point: public addresses only, checked at registration and at delivery.

A webhook is a request the server makes on a user's behalf, so its target is checked twice:
when it is registered (the URL and, for a name, what the name resolves to now) and on every
connection (what the name resolves to then). The delivery connects to the very address it
checked: :class:`PinnedNetworkBackend` resolves the name itself, refuses the connection when any
resolved address is not public, and opens the TCP connection to a checked IP. httpx still sees
the original URL, so the ``Host`` header, TLS SNI and certificate verification use the name
(httpcore passes the URL's host as ``server_hostname`` to ``start_tls``); a DNS-rebinding name
cannot switch the address between the check and the connection because there is only one
lookup. This is done as an httpcore network backend rather than by rewriting URLs to IPs,
which would break SNI, certificate checks and virtual hosting.

Development and tests list exceptions in ``webhooks.allowed_targets`` (CIDRs or host names).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from taskstream.settings import Settings, WebhookSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefusedError(httpx.ConnectError):
    """The target is not a public address (or not https where https is required)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return non_public_reason(embedded)
        if address in _NAT64:
            return non_public_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_reserved:
        return "not a public address"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True, slots=True)
class WebhookTargetPolicy:
    """Which URLs and addresses a webhook may reach."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTargetPolicy:
        return cls.from_webhook_settings(settings.webhooks, settings.environment)

    @classmethod
    def from_webhook_settings(
        cls, webhooks: WebhookSettings, environment: str
    ) -> WebhookTargetPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in webhooks.allowed_targets:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        allow_http = (
            webhooks.allow_http
            if webhooks.allow_http is not None
            else (environment == "development")
        )
        return cls(tuple(networks), frozenset(hosts), allow_http)

    def _host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_hosts

    def address_refusal(self, address: IPAddress) -> str | None:
        if any(address in network for network in self.allowed_networks):
            return None
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in network for network in self.allowed_networks):
            return None
        reason = non_public_reason(address)
        return f"{address} is {reason}" if reason else None

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` may not be a webhook target, judged without DNS (None: maybe fine)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "must be an absolute http(s) URL"
        if parts.scheme == "http" and not self.allow_http:
            return "must use https"
        if parts.username or parts.password:
            return "must not contain credentials"
        host = parts.hostname
        if self._host_allowed(host):
            return None
        literal = _parse_ip(host)
        if literal is None:
            literal = _legacy_ipv4(host)
        if literal is not None:
            return self.address_refusal(literal)
        if _is_localhost_name(host):
            return f"{host} is a loopback name"
        return None

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109 - httpcore's connect timeout
        """The addresses of ``host``, every one of them allowed; raises TargetRefusedError."""
        literal = _parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            if _is_localhost_name(host) and not self._host_allowed(host):
                raise TargetRefusedError(f"{host} is a loopback name")
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(timeout):
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}") from exc
            addresses = _unique(ipaddress.ip_address(info[4][0]) for info in infos)
        if not self._host_allowed(host):
            for address in addresses:
                if (refusal := self.address_refusal(address)) is not None:
                    raise TargetRefusedError(f"{host} resolves to {refusal}")
        return [str(address) for address in addresses]

    async def registration_refusal(self, url: str, resolve_timeout_s: float = 2.0) -> str | None:
        """``url_refusal`` plus what the name resolves to now (an unresolvable name passes:
        every delivery checks again)."""
        if (refusal := self.url_refusal(url)) is not None:
            return refusal
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            await self.resolve(host, parts.port or 443, resolve_timeout_s)
        except TargetRefusedError as exc:
            return exc.reason
        except httpcore.ConnectError:
            return None
        return None


def _legacy_ipv4(host: str) -> IPAddress | None:
    """``2130706433`` or ``0x7f.1``: forms inet_aton (and so some resolvers) accept."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address (never resolves twice)."""

    def __init__(self, policy: WebhookTargetPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.policy.resolve(host, port, timeout)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefusedError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (same pooling, same exception mapping) over the pinned backend."""

    def __init__(self, policy: WebhookTargetPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx has no public switch for the network backend; the pool it builds is replaced by
        # one built the same way with ours (no proxy: a proxy would resolve names itself).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedNetworkBackend(policy),
        )
        self.policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (refusal := self.policy.url_refusal(str(request.url))) is not None:
            raise TargetRefusedError(refusal)
        return await super().handle_async_request(request)


def webhook_client(settings: Settings, limits: httpx.Limits) -> httpx.AsyncClient:
    """The HTTP client of webhook deliveries: pinned, checked, no redirects, no env proxies."""
    transport = PinnedTransport(WebhookTargetPolicy.from_settings(settings), limits)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
