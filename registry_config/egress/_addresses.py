"""How the egress package reads an IP address: text or ``ipaddress`` objects, and the IPv4 inside an IPv6 one.

Rules (:mod:`.rule`), compaction (:mod:`.compaction`) and the guard
(:mod:`.guard`) all take addresses as text or as ``ipaddress`` objects, and all
treat an IPv4-mapped IPv6 address as the IPv4 address it maps to, as Go's
``net`` package (and so BBS) does: the kernel sends such packets as IPv4.

Other IPv6 forms carry an IPv4 address that a translator or relay on the path
delivers to (NAT64, 6to4, IPv4-compatible): the packets leave as IPv6, so a
rule opens the IPv6 address, but the guard must judge where they end up too
(:func:`embedded_ipv4`).
"""

from __future__ import annotations

import ipaddress
from typing import Union

from ..address import IPAddress, parse_ip
from ..errors import InvalidAddress
from ._messages import show

__all__ = ["IPNetwork", "as_ip", "embedded_ipv4", "unmap"]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 (a runtime alias, as address.IPAddress)


def unmap(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is the IPv4 address it maps to: that is where packets go."""
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return mapped
    return ip


_NAT64_PREFIX = int(ipaddress.IPv6Address("64:ff9b::")) >> 32  # 64:ff9b::/96, RFC 6052's well-known prefix
_SIX_TO_FOUR_PREFIX = 0x2002  # 2002::/16, RFC 3056


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries to a translator or relay, with the form's name; else ``None``.

    * NAT64, ``64:ff9b::/96`` (RFC 6052): the last 32 bits; a NAT64 gateway
      forwards to that IPv4 address.
    * 6to4, ``2002::/16`` (RFC 3056): bits 16 to 48; a 6to4 relay tunnels to
      that IPv4 address.
    * IPv4-compatible, ``::/96`` (RFC 4291, deprecated): the last 32 bits,
      tunnelled to that IPv4 address by stacks that still honour it; except
      ``::`` and ``::1``, IPv6's own unspecified and loopback addresses.

    IPv4-mapped addresses (``::ffff:0:0/96``) are not here: :func:`unmap`
    reads them, since they are the IPv4 address itself.
    """
    value = int(ip)
    if value >> 32 == _NAT64_PREFIX:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF), "NAT64"
    if value >> 112 == _SIX_TO_FOUR_PREFIX:
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF), "6to4"
    if value >> 32 == 0 and value > 1:
        return ipaddress.IPv4Address(value), "IPv4-compatible"
    return None


def as_ip(value: object, *, where: str) -> IPAddress:
    """An IP address from text or an ``ipaddress`` object; anything else is :class:`InvalidAddress`."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        ip = parse_ip(value)
        if ip is not None:
            return ip
    raise InvalidAddress(f"{where}: {show(value)} is not an IP address")
