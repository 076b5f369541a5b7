"""Where notifications may go: the internet, never this machine or its private network.

A notifier URL is whatever a tenant typed, and ghapp sends to it from inside the network it
runs in. Left alone, ``http://127.0.0.1:5432/`` or ``http://169.254.169.254/`` would make
ghapp probe internal services for whoever can save a notifier (SSRF). So a destination
whose host is, or resolves to, a loopback, private, link-local, multicast, unspecified or
reserved address is refused — when the notifier is saved, and again when it is sent —
unless ``GHAPP_NOTIFY_ALLOW_HOSTS`` names the host or a network holding the address.

At send time the host is resolved once, every address it resolves to is checked, and the
connection goes to one of exactly those addresses: a DNS answer that changes between the
check and the connection (rebinding) cannot slip an internal address in. TLS still checks
the certificate against the URL's host name, and the Host header is the URL's, because
httpcore takes both from the URL, not from the socket.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from ghapp.logs import mask_request_urls

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]

ALLOW_SETTING = "GHAPP_NOTIFY_ALLOW_HOSTS"
SAVE_RESOLVE_TIMEOUT_S = 5.0
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Checked in this order, so 127.0.0.1 is called loopback rather than private.
KINDS = ("loopback", "unspecified", "link_local", "multicast", "private", "reserved")


class DestinationRefused(Exception):
    """A notifier URL pointing inside (loopback, private network…) that is not allowed."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, as the operating system answers (hosts, DNS).

    Odd spellings of addresses (``0x7f000001``, ``2130706433``, ``127.1``) come back as
    the address they spell, so they are checked as what they are.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class Hosts:
    """A hosts file in memory: names and the addresses they resolve to, instead of DNS.

    Tests use it to stand in for a DNS server whose answers they control (rebinding);
    the mapping may be changed while it is in use, as DNS answers change.
    """

    names: dict[str, list[str]] = field(default_factory=dict)

    async def __call__(self, host: str, port: int) -> list[str]:
        addresses = self.names.get(host.lower().rstrip("."))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a known name")
        return list(addresses)


def parse_allow(text: str) -> tuple[frozenset[str], tuple[Network, ...]]:
    """``GHAPP_NOTIFY_ALLOW_HOSTS``: comma-separated host names and networks (CIDR or one
    address). Raises ValueError naming an entry that is neither."""
    names: set[str] = set()
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if "/" in entry or ":" in entry or " " in entry:
            raise ValueError(f"{entry!r} is neither a host name nor a network like 10.0.0.0/8")
        names.add(entry.lower().rstrip("."))
    return frozenset(names), tuple(networks)


def inside(address: str) -> str | None:
    """What kind of internal address ``address`` is (``"loopback"``…), or None if public.

    IPv6 spellings of an IPv4 address (``::ffff:127.0.0.1``, NAT64, 6to4) are judged by
    the IPv4 address they carry.
    """
    ip = _embedded(ipaddress.ip_address(address.split("%", 1)[0]))
    for kind in KINDS:
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # shared address space (100.64.0.0/10) and the like
        return "non-public"
    return None


def _embedded(ip: Address) -> Address:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


@dataclass(frozen=True)
class Outbound:
    """Which destinations notifications may reach, and clients that keep to them."""

    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    resolve: Resolve = system_resolve

    @classmethod
    def from_allow(cls, allow: str, resolve: Resolve = system_resolve) -> Outbound:
        names, networks = parse_allow(allow)
        return cls(names, networks, resolve)

    @classmethod
    def from_settings(cls, settings: Any, resolve: Resolve = system_resolve) -> Outbound:
        return cls.from_allow(settings.notify_allow_hosts, resolve)

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_names

    def refusal_of(self, address: str) -> str | None:
        """Why ``address`` may not be reached (a sentence), or None if it may."""
        kind = inside(address)
        if kind is None:
            return None
        if self._network_allowed(address):
            return None
        # The address itself is left out: a tenant probing names must not learn the
        # addresses of internal hosts from the answer.
        return _refused(f"an internal address ({kind})")

    def _network_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        candidates = {ip, _embedded(ip)}  # ::ffff:127.0.0.1 is allowed where 127.0.0.1 is
        return any(one in network for one in candidates for network in self.allowed_networks)

    async def checked(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses if every one may be reached.

        Raises :class:`DestinationRefused` if any may not (one bad answer among good ones
        is enough: which one a connection would use is not ours to choose), and OSError if
        the name does not resolve.
        """
        if self.name_allowed(host):
            return await self.resolve(host, port)
        if _is_localhost(host):  # loopback by definition (RFC 6761), whatever DNS says
            raise DestinationRefused(_refused("an internal name (localhost)"))
        addresses = await self.resolve(host, port)
        for address in addresses:
            reason = self.refusal_of(address)
            if reason is not None:
                raise DestinationRefused(reason)
        return addresses

    async def refusal(self, url: str) -> str | None:
        """Why a notifier with this URL may not be saved, or None.

        A host that does not resolve now is let through: DNS may be down for a moment, and
        the check at send time decides.
        """
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "the port must be a number from 1 to 65535"
        try:
            async with asyncio.timeout(SAVE_RESOLVE_TIMEOUT_S):
                await self.checked(parts.hostname, port)
        except DestinationRefused as exc:
            return str(exc)
        except (OSError, TimeoutError, UnicodeError):
            return None
        return None

    def client(self, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
        """An HTTP client that connects only to checked addresses and follows no redirect
        (a redirect is an answer to report, not a new destination to visit)."""
        mask_request_urls()  # httpx would log the full URL, a notifier's secret
        return httpx.AsyncClient(
            transport=CheckedTransport(self, verify), follow_redirects=False, trust_env=False
        )


def _refused(what: str) -> str:
    return (
        f"the host is {what}: ghapp sends notifications to public addresses only, "
        f"unless {ALLOW_SETTING} allows the host"
    )


def _is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer, connecting to an address :meth:`Outbound.checked` gave."""

    def __init__(self, outbound: Outbound) -> None:
        self.outbound = outbound
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 — httpcore's interface, not ours
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.outbound.checked(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no address for {host} within {timeout:g} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        failure: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:  # the checked addresses, and nothing resolved again
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool rebuilt around :class:`CheckedBackend`.

    httpx has no way to pass a network backend; its pool (``_pool``) has. Everything else —
    turning requests into httpcore's and its errors into httpx's — stays httpx's. The tests
    that see internal receivers get no request would fail if httpx stopped using ``_pool``.
    """

    def __init__(self, outbound: Outbound, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedBackend(outbound),
        )
