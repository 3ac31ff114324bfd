"""The values that flow out of discovery: what was asked, what was found.

They are immutable so that a snapshot handed to many stager threads cannot
change under one of them, and a :class:`Discovery` is normalised (sorted,
deduplicated) on construction so that two snapshots of the same instances
compare equal whatever order a backend returned them in.
"""

from __future__ import annotations

import ipaddress
import types
from collections.abc import Callable, Iterable, Mapping
from socket import inet_ntoa as _inet_ntoa
from typing import Any

import attrs

from .._reduce import by_fields
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
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f"; convert it first (int({value!r}))" if isinstance(value, str) and value.strip().isdecimal() else ""
        raise InvalidAddress(f"port {value!r} is a {type(value).__name__}: it must be an int in 1..65535{hint}")
    if not 1 <= value <= 65535:
        raise InvalidAddress(f"port {value!r} is out of range: it must be an int in 1..65535")
    return value


def _ip(value: Any) -> IPAddress:
    """An IP address; an IPv4-mapped IPv6 address becomes the IPv4 it maps to.

    The guard judges, the rules open and the flag names the same address that
    way: ``::ffff:10.0.0.1`` is the IPv4 host 10.0.0.1 on the wire.
    """
    if type(value) is ipaddress.IPv4Address:  # the common case, and already what we keep
        return value
    address: IPAddress | None = None
    if isinstance(value, ipaddress.IPv4Address):
        return ipaddress.IPv4Address(int(value))  # a subclass: the plain class, which the fast paths test for
    if isinstance(value, ipaddress.IPv6Address):
        address = value if type(value) is ipaddress.IPv6Address else ipaddress.IPv6Address(int(value))
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
    """The service to look up: a Consul service name, or a DNS name for a plain-DNS backend."""
    datacenter: str | None = attrs.field(default=None, kw_only=True)
    """The datacenter to ask in; ``None`` for the backend's own (Consul: the agent's)."""
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    """Tags every instance must carry (``primary.docker_registry.service.consul`` asks for ``primary``)."""
    default_port: int | None = attrs.field(default=None, kw_only=True, converter=_optional_port)
    """The port of an answer that has none (or 0): the registry URL's port, filled by ``build_plan``."""

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


class _EndpointSlot:
    """Room in each instance for its ``endpoint`` text, written once: a slot that attrs does not see.

    Not an attrs field, so it takes no part in ``__init__``, equality, hashing,
    ``repr``, ``attrs.fields`` or ``attrs.asdict``: an instance is what it was,
    with a place to keep the text a plan asks for several times (the insecure
    registries, ``to_dict``, messages).
    """

    __slots__ = ("_endpoint_text",)


@attrs.frozen(order=False, cache_hash=True)
class ServiceInstance(_EndpointSlot):
    """One running registry instance: an IP address and a port, plus what the backend knew of it."""

    address: IPAddress = attrs.field(converter=_ip)
    """The instance's IP address (text is converted; an IPv4-mapped IPv6 address becomes the IPv4 it maps to)."""
    port: int = attrs.field(converter=_port)
    """The port the registry listens on, an int in 1..65535."""
    node: str | None = attrs.field(default=None, kw_only=True)
    """The node (host) the backend says runs it, if it knows: shown to people, never in a flag or a rule."""
    service_id: str | None = attrs.field(default=None, kw_only=True)
    """The backend's own id for this instance (Consul's ``ServiceID``), if any."""
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    """The tags the backend lists for it."""
    meta: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, converter=_meta, hash=False)
    """Key/value metadata from the backend (read-only); not part of the instance's hash."""
    healthy: bool | None = attrs.field(default=None, kw_only=True)
    """Whether the backend's health checks pass; ``None`` when it does not check."""

    @property
    def endpoint(self) -> str:
        """``ip:port``, with an IPv6 address in brackets: the form a builder flag takes."""
        text: str | None = getattr(self, "_endpoint_text", None)
        if text is None:
            address = self.address
            if type(address) is ipaddress.IPv4Address:  # what str() writes, by the C formatter
                text = f"{_inet_ntoa(address.packed)}:{self.port}"
            else:
                text = format_host_port(address, self.port)
            _set_endpoint_text(self, text)  # the same text whichever thread writes it first
        return text

    @property
    def sort_key(self) -> tuple[int, int, int, str, str]:
        """Orders instances by family, address, port, node and id: the plan's deterministic order."""
        return (self.address.version, int(self.address), self.port, self.node or "", self.service_id or "")

    def __str__(self) -> str:
        return self.endpoint

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied by its fields (``meta`` as a dict), rebuilt by the constructor (see :mod:`.._reduce`)."""
        return by_fields(self)

    @classmethod
    def _trusted(
        cls,
        address: IPAddress,
        port: int,
        node: str | None,
        service_id: str | None,
        tags: tuple[str, ...],
        meta: Mapping[str, str] | None,
        healthy: bool | None,
        endpoint: str | None = None,
    ) -> ServiceInstance:
        """An instance from values a backend of this package has already checked, without the converters.

        Private to the package: ``address`` must be what :func:`_ip` returns
        (an IPv4 or a non-mapped IPv6 object), ``port`` an int in 1..65535,
        ``tags`` a tuple of text and ``meta`` a dict nobody else holds (or
        ``None``); ``endpoint``, when given, the text :attr:`endpoint` would
        write (a backend that parsed the address from its canonical text has
        it for free). A backend reading 10k Consul entries builds 10k instances,
        and the converters would check again what it has just checked. The
        result equals, and hashes as, ``ServiceInstance(address, port, ...)``:
        the tests hold it to that.
        """
        self = _new(cls)
        # The slots' own setters: what attrs' __init__ does under its frozen __setattr__, minus the converters.
        _set_address(self, address)
        _set_port(self, port)
        _set_node(self, node)
        _set_service_id(self, service_id)
        _set_tags(self, tags)
        _set_meta(self, types.MappingProxyType(meta) if meta else _EMPTY_META)
        _set_healthy(self, healthy)
        for clear in _CLEAR_EXTRA_SLOTS:  # attrs' hash cache: empty, as attrs' own __init__ leaves it
            clear(self, None)
        if endpoint is not None:
            _set_endpoint_text(self, endpoint)
        return self


_new = object.__new__
_EMPTY_META: Mapping[str, str] = types.MappingProxyType({})


def _slot_setter(owner: type, name: str) -> Callable[[object, object], None]:
    """The ``__set__`` of the slot ``name`` of ``owner``: it writes past a frozen class's ``__setattr__``."""
    descriptor = owner.__dict__[name]
    setter: Callable[[object, object], None] = descriptor.__set__
    return setter


(_set_address, _set_port, _set_node, _set_service_id, _set_tags, _set_meta, _set_healthy) = (
    _slot_setter(ServiceInstance, field.name) for field in attrs.fields(ServiceInstance)
)
_set_endpoint_text = _slot_setter(_EndpointSlot, "_endpoint_text")
# The slots attrs adds beside the fields (its hash cache), so that _trusted leaves them as __init__ does.
_CLEAR_EXTRA_SLOTS = tuple(
    _slot_setter(ServiceInstance, name)
    for name in ServiceInstance.__slots__
    if name != "__weakref__" and name not in attrs.fields_dict(ServiceInstance)
)


def _sort_key(instance: ServiceInstance) -> tuple[int, int, int, str, str]:
    """:attr:`ServiceInstance.sort_key`, as a plain function (no property dispatch: it runs once per instance)."""
    address = instance.address
    return (address.version, int(address), instance.port, instance.node or "", instance.service_id or "")


def _instances(value: Iterable[ServiceInstance]) -> tuple[ServiceInstance, ...]:
    given = list(value)
    for instance in given:
        if not isinstance(instance, ServiceInstance):
            raise InvalidInput(f"a Discovery holds ServiceInstance values, got {type(instance).__name__}")
    # One int per instance orders by (family, address, port), the first three parts of the sort key: ints are
    # made and compared much faster than tuples. When no two instances share an (address, port) pair, that order
    # is the sort key's order and there is nothing to deduplicate.
    ipv4 = ipaddress.IPv4Address
    keys = [
        int(address) << 16 | instance.port
        if type(address := instance.address) is ipv4
        else (address.version == 6) << 144 | int(address) << 16 | instance.port
        for instance in given
    ]
    order = sorted(range(len(given)), key=keys.__getitem__)
    previous = -1
    for position in order:
        key = keys[position]
        if key == previous:
            return _deduplicated(given)
        previous = key
    return tuple([given[position] for position in order])


def _deduplicated(given: list[ServiceInstance]) -> tuple[ServiceInstance, ...]:
    """Sorted by the whole sort key, keeping the first instance of each (address, port): the general case."""
    keys = [_sort_key(instance) for instance in given]
    # A stable sort, so the instances of one (address, port) are neighbours, in the order given: keep the first.
    unique = []
    previous: tuple[int, int, int] | None = None
    for position in sorted(range(len(given)), key=keys.__getitem__):
        identity = keys[position][:3]  # (family, address, port): equal addresses have equal (version, int)
        if identity != previous:
            previous = identity
            unique.append(given[position])
    return tuple(unique)


class _HashSlot:
    """Room in each snapshot for its hash, computed once: a slot attrs does not see (as :class:`_EndpointSlot`).

    A snapshot is hashed on every plan (the composition cache's key), and a
    cached plan costs about 10 us: computing the hash each time was a sixth of it.
    """

    __slots__ = ("_hash_value",)


_set_hash_value = _slot_setter(_HashSlot, "_hash_value")


@attrs.frozen(unsafe_hash=False)  # __hash__ below
class Discovery(_HashSlot):
    """An immutable snapshot of the instances a backend found for a query.

    Instances are sorted and deduplicated by ``(address, port)``; ``index`` is
    the backend's change index where it has one (Consul's ``X-Consul-Index``);
    ``stale`` marks a snapshot served from a cache because the backend failed;
    ``warnings`` say what the backend skipped and why. In a notebook it shows
    as a table (``_repr_html_``); :meth:`to_text` is the same as text.
    """

    query: ServiceQuery
    """What was asked for."""
    instances: tuple[ServiceInstance, ...] = attrs.field(converter=_instances)
    """What was found: sorted, one instance per ``(address, port)``."""
    source: str = attrs.field(kw_only=True)
    """Which backend answered, for people (``"static"``, ``"consul http://127.0.0.1:8500"``...)."""
    index: int | None = attrs.field(default=None, kw_only=True)
    """The backend's change index (Consul's ``X-Consul-Index``), or ``None``."""
    stale: bool = attrs.field(default=False, kw_only=True)
    """True when a cache served this snapshot because the backend failed."""
    warnings: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_strings)
    """What the backend skipped, and why, one sentence each."""

    def __hash__(self) -> int:
        # Equal snapshots hash equal: every part below takes part in ``__eq__``. Hashing every instance instead
        # would cost about a second at 100k instances for each new snapshot the plan's composition cache is asked
        # about; the count and the two ends tell snapshots apart as well in practice (a Consul snapshot's index
        # alone does), and ``__eq__`` settles a collision.
        known: int | None = getattr(self, "_hash_value", None)
        if known is not None:
            return known
        instances = self.instances
        value = hash(
            (
                self.query,
                self.source,
                self.index,
                self.stale,
                self.warnings,
                len(instances),
                instances[:1],
                instances[-1:],
            )
        )
        _set_hash_value(self, value)  # the same value whichever thread writes it first
        return value

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every instance's ``ip:port``, in the snapshot's order."""
        return tuple(instance.endpoint for instance in self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def to_text(self) -> str:
        """The snapshot as a person reads it: the query, the source, one line per instance, the warnings."""
        from ..display import discovery_text

        return discovery_text(self)

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks (every value escaped)."""
        from ..display import discovery_html

        return discovery_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: :meth:`to_text`."""
        from ..display import pretty

        pretty(self.to_text(), "Discovery", printer, cycle)
