"""Turning a host name into IP addresses, through a resolver the caller may replace.

A resolver is any callable ``host -> iterable of IP addresses`` (``str`` or
``ipaddress`` objects) that raises :class:`OSError` (``socket.gaierror``)
when the name does not resolve. Tests and stagers inject their own; the
default asks the system (``socket.getaddrinfo``), which finds every registry
instance where the host forwards ``.consul`` to Consul's DNS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from .address import IPAddress

__all__ = ["Resolver", "resolve", "system_resolver"]

Resolver = Callable[[str], Iterable[object]]


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver knows for ``host`` (TCP, any family)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(host: str, resolver: Resolver | None = None) -> tuple[IPAddress, ...]:
    """The distinct addresses of ``host``, sorted; an IP literal resolves to itself.

    Raises :class:`OSError` when the name does not resolve; what the resolver
    returns that is not an IP address is dropped, never passed on.
    """
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    found: set[IPAddress] = set()
    for item in (resolver or system_resolver)(host):
        if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            found.add(item)
            continue
        try:
            found.add(ipaddress.ip_address(str(item).split("%", 1)[0]))
        except ValueError:
            continue
    return tuple(sorted(found, key=lambda ip: (ip.version, int(ip))))
