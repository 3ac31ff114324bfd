"""The values that flow out of discovery: what was asked, what was found.

They are immutable so that a snapshot handed to many stager threads cannot
change under one of them, and a :class:`Discovery` is normalised (sorted,
deduplicated) on construction so that two snapshots of the same instances
compare equal whatever order a backend returned them in.
"""

from __future__ import annotations

import ipaddress
import types
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..address import IPAddress, bad_character, format_host_port, parse_ip
from ..errors import InvalidAddress, InvalidInput

__all__ = ["Discovery", "ServiceInstance", "ServiceQuery"]


def _check_text(value: str, *, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be non-empty text, got {value!r}")
    bad = bad_character(value)
    if bad is not None or "," in value:
        char = bad[1] if bad else "','"
        raise InvalidInput(f"{what} {value!r} contains {char}; it must be a single word")


def _tags(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _meta(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value or {}))


def _optional_port(value: int | None) -> int | None:
    if value is None:
        return None
    return _port(value)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidAddress(f"port {value!r} is not a number in 1..65535")
    return value


def _ip(value: Any) -> IPAddress:
    """An IP address; an IPv4-mapped IPv6 address becomes the IPv4 it maps to.

    The guard judges, the rules open and the flag names the same address that
    way: ``::ffff:10.0.0.1`` is the IPv4 host 10.0.0.1 on the wire.
    """
    address: IPAddress | None = None
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address = value
    elif isinstance(value, str):
        address = parse_ip(value)
    if address is not None:
        mapped = getattr(address, "ipv4_mapped", None)
        return mapped if mapped is not None else address
    raise InvalidAddress(
        f"instance address {value!r} is not an IP address; a backend resolves names before it builds a ServiceInstance"
    )


@attrs.frozen
class ServiceQuery:
    """What to look for: a service name, and optionally a datacenter, tags and a default port.

    ``default_port`` stands in for a catalog port of 0 and for answers that
    carry no port (an A record, a bare static IP); ``build_plan`` fills it
    from the registry URL, the seed's "hardcoded port" made explicit.
    """

    name: str
    datacenter: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    default_port: int | None = attrs.field(default=None, kw_only=True, converter=_optional_port)

    def __attrs_post_init__(self) -> None:
        _check_text(self.name, what="service name")
        if self.datacenter is not None:
            _check_text(self.datacenter, what="datacenter")
        for tag in self.tags:
            _check_text(tag, what="tag")

    def port_or_default(self, port: int | None) -> int | None:
        """The port to use for an answer's ``port``: 0 or ``None`` mean :attr:`default_port`."""
        if port is None or port == 0:
            return self.default_port
        return port


@attrs.frozen(order=False, cache_hash=True)
class ServiceInstance:
    """One running registry instance: an IP address and a port, plus what the backend knew of it."""

    address: IPAddress = attrs.field(converter=_ip)
    port: int = attrs.field(converter=_port)
    node: str | None = attrs.field(default=None, kw_only=True)
    service_id: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    meta: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, converter=_meta, hash=False)
    healthy: bool | None = attrs.field(default=None, kw_only=True)

    @property
    def endpoint(self) -> str:
        """``ip:port``, with an IPv6 address in brackets: the form a builder flag takes."""
        return format_host_port(self.address, self.port)

    @property
    def sort_key(self) -> tuple[int, int, int, str, str]:
        """Orders instances by family, address, port, node and id: the plan's deterministic order."""
        return (self.address.version, int(self.address), self.port, self.node or "", self.service_id or "")

    def __str__(self) -> str:
        return self.endpoint


def _instances(value: Iterable[ServiceInstance]) -> tuple[ServiceInstance, ...]:
    given = list(value)
    for instance in given:
        if not isinstance(instance, ServiceInstance):
            raise InvalidInput(f"a Discovery holds ServiceInstance values, got {type(instance).__name__}")
    seen: set[tuple[IPAddress, int]] = set()
    unique = []
    for instance in sorted(given, key=lambda instance: instance.sort_key):
        key = (instance.address, instance.port)
        if key not in seen:
            seen.add(key)
            unique.append(instance)
    return tuple(unique)


@attrs.frozen(cache_hash=True)
class Discovery:
    """An immutable snapshot of the instances a backend found for a query.

    Instances are sorted and deduplicated by ``(address, port)``; ``index`` is
    the backend's change index where it has one (Consul's ``X-Consul-Index``);
    ``stale`` marks a snapshot served from a cache because the backend failed;
    ``warnings`` say what the backend skipped and why.
    """

    query: ServiceQuery
    instances: tuple[ServiceInstance, ...] = attrs.field(converter=_instances)
    source: str = attrs.field(kw_only=True)
    index: int | None = attrs.field(default=None, kw_only=True)
    stale: bool = attrs.field(default=False, kw_only=True)
    warnings: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_strings)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every instance's ``ip:port``, in the snapshot's order."""
        return tuple(instance.endpoint for instance in self.instances)

    def __len__(self) -> int:
        return len(self.instances)
