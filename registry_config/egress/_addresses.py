"""How the egress package reads an IP address: text or ``ipaddress`` objects, IPv4-mapped ones as IPv4.

Rules (:mod:`.rule`), compaction (:mod:`.compaction`) and the guard
(:mod:`.guard`) all take addresses as text or as ``ipaddress`` objects, and all
treat an IPv4-mapped IPv6 address as the IPv4 address it maps to, as Go's
``net`` package (and so BBS) does: that is where the packets go.
"""

from __future__ import annotations

import ipaddress
from typing import Union

from ..address import IPAddress, parse_ip
from ..errors import InvalidAddress
from ._messages import show

__all__ = ["IPNetwork", "as_ip", "unmap"]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 (a runtime alias, as address.IPAddress)


def unmap(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is the IPv4 address it maps to: that is where packets go."""
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return mapped
    return ip


def as_ip(value: object, *, where: str) -> IPAddress:
    """An IP address from text or an ``ipaddress`` object; anything else is :class:`InvalidAddress`."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        ip = parse_ip(value)
        if ip is not None:
            return ip
    raise InvalidAddress(f"{where}: {show(value)} is not an IP address")
