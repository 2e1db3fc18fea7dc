"""Which addresses we refuse to contact, and how a host name becomes addresses.

The check runs where the connection is made (`transport.PinnedBackend`), on the very
addresses we then connect to, so a DNS answer cannot change between check and use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host name, port) -> IP addresses to try, in order. Injectable so tests control DNS."""

# Cloud metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS IPv6: fd00:ec2::254).
# Both are link-local or private anyway; named so the intent survives a refactor.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4


class RefusedAddress(Exception):  # noqa: N818  # an internal signal, not an error kind
    """A host is, or resolves to, a blocked address.

    Raised below httpx, where the requested URL is unknown; the client turns it into
    `BlockedAddressError` naming the URL.
    """

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"blocked address {address} for {host}")
        self.host = host
        self.address = address


def is_blocked_address(address: str) -> bool:
    """True if we must not connect to `address` while private networks are disallowed.

    Blocks private, loopback, link-local, multicast, reserved, unspecified, shared
    (100.64/10: `is_global` is false) and cloud metadata addresses, after unwrapping
    IPv4 embedded in IPv6 (mapped ::ffff:a.b.c.d, 6to4 2002::/16, NAT64 64:ff9b::/96).
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_blocked_address(str(embedded))
    return (
        ip in _METADATA
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def ip_literal(host: str) -> str | None:
    """`host` normalized if it is an IP address (brackets already removed), else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def refuse_blocked(host: str, addresses: list[str]) -> None:
    """Raise RefusedAddress if any address of `host` is blocked.

    Any, not all: a name that answers with both public and private addresses is either
    misconfigured or probing us, and we would not know which one we end up using.
    """
    blocked = [address for address in addresses if is_blocked_address(address)]
    if blocked:
        raise RefusedAddress(host, blocked[0])


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for `host`, duplicates dropped, order kept."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
