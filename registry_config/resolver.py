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

from .address import IPAddress, parse_ip

__all__ = ["Resolver", "resolve", "system_resolver"]

Resolver = Callable[[str], Iterable[object]]


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver knows for ``host`` (TCP, any family).

    ``getaddrinfo`` raises ``UnicodeError`` (a ``ValueError``) for a name the
    IDNA codec refuses, such as a label over 63 characters; that is a name
    which does not resolve, so it becomes ``socket.gaierror`` like any other.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise socket.gaierror(socket.EAI_NONAME, f"cannot encode {host!r} as a DNS name: {exc}") from exc
    return [str(info[4][0]) for info in infos]


def _unscoped(ip: IPAddress) -> IPAddress:
    """The address without an IPv6 zone (``fe80::1%eth0``): a zone names our interface, not the peer."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def resolve(host: str, resolver: Resolver | None = None) -> tuple[IPAddress, ...]:
    """The distinct addresses of ``host``, sorted; an IP literal resolves to itself.

    Raises :class:`OSError` when the name does not resolve; what the resolver
    returns that is not an IP address is dropped, never passed on. A resolver
    that answers one address instead of a list is read as a list of one; one
    that answers something that is not iterable (``None``) raises ``OSError``.
    """
    literal = parse_ip(host)
    if literal is not None:
        return (literal,)
    answer = (resolver or system_resolver)(host)
    if isinstance(answer, (str, bytes, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        answer = [answer]  # one address, not an iterable of characters
    try:
        items = iter(answer)
    except TypeError:
        # A resolver that answers None or a number is broken; as for a name that does not resolve, the caller's
        # OSError handling turns it into its own typed error.
        raise OSError(f"the resolver answered {type(answer).__name__} for {host!r}, not addresses") from None
    found: set[IPAddress] = set()
    for item in items:
        if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            found.add(_unscoped(item))
            continue
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        ip = parse_ip(text.split("%", 1)[0])
        if ip is not None:
            found.add(ip)
    return tuple(sorted(found, key=lambda ip: (ip.version, int(ip))))
