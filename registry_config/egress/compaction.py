"""Egress rules for kept instances: exactly their ``(address, port)`` pairs, in as few rules as stay exact.

:func:`rules_for` opens exactly the pairs the guard kept and not one more:
compaction merges addresses only where the merged rule covers nothing else.
It builds each rule with ``rule.trusted_rule``
from the intervals it has just computed, rather than writing destination text
and parsing it back.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from ..discovery.model import ServiceInstance
from ..errors import InvalidEgressRule, InvalidInput
from ._checks import IPV4_BITS, IPV6_BITS
from ._messages import show
from .rule import EgressRule, trusted_rule

__all__ = ["rules_for"]

_inet_ntoa = socket.inet_ntoa


def _address_text(version: int, value: int) -> str:
    if version == 4:  # what str(IPv4Address(value)) gives, by the C formatter, without building the object
        return _inet_ntoa(value.to_bytes(4, "big"))
    if value >= 1 << 48:  # no embedded-IPv4 form: the C formatter writes what str(IPv6Address(value)) does
        return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))
    return str(ipaddress.IPv6Address(value))


def _run_text(version: int, first: int, last: int) -> str:
    """A run of two or more addresses (``first < last``) as one destination: a CIDR when aligned, else a range."""
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        bits = IPV4_BITS if version == 4 else IPV6_BITS
        return f"{_address_text(version, first)}/{bits - size.bit_length() + 1}"
    return f"{_address_text(version, first)}-{_address_text(version, last)}"


def _add_runs(version: int, values: list[int], destinations: list[str], intervals: list[int]) -> None:
    """Each maximal run of consecutive integers in ``values`` (sorted, no duplicates) as one destination.

    The run's text goes to ``destinations`` and ``(version, first, last)`` to
    ``intervals``, flat: no tuple per run (at 100k scattered instances nearly
    every address is a run of its own, and the objects would only feed the
    garbage collector).
    """
    add_destination = destinations.append
    add_interval = intervals.extend
    address_text = _address_text
    first = previous = values[0]
    for value in values[1:]:
        if value != previous + 1:
            # A lone address (most of them, in a sparse network) needs no CIDR or range logic.
            add_destination(address_text(version, first) if first == previous else _run_text(version, first, previous))
            add_interval((version, first, previous))
            first = value
        previous = value
    add_destination(address_text(version, first) if first == previous else _run_text(version, first, previous))
    add_interval((version, first, previous))


def rules_for(
    instances: Iterable[ServiceInstance], *, compact: bool = True, protocol: str = "tcp"
) -> tuple[EgressRule, ...]:
    """Egress rules that allow exactly the instances' ``(address, port)`` pairs, never one address or port more.

    With ``compact=False``: one rule per pair, ``destinations [ip]`` and
    ``ports [port]``, as the original Go stager made them
    (``{tcp,["10.244.2.6"],[8080]}``), sorted by address then port.

    With ``compact=True``: addresses are grouped by their exact set of ports,
    one rule per distinct set (the fewest rules that stay exact when each rule
    gives one port list or range to all its destinations). A set is written as
    a ``port_range`` when it is a run of two or more consecutive ports, else
    as a sorted ``ports`` list. Each maximal run of consecutive addresses
    becomes one destination: the IP alone, a CIDR when the run is aligned, or a
    range ``first-last`` otherwise (BBS accepts all three), so no list of
    destinations can be shorter. IPv4 destinations come before IPv6 ones and
    never share a run; rules are sorted by their ports. The output depends only
    on the set of pairs, never on the order of ``instances``.

    An IPv4-mapped IPv6 address is written as the IPv4 address it maps to,
    where the packets actually go.
    """
    if protocol not in ("tcp", "udp"):
        raise InvalidEgressRule(f"protocol: rules_for makes 'tcp' or 'udp' rules, not {show(protocol)}")
    # Two maps, IPv4 and IPv6, from an address (as an integer) to its ports: integers hash and sort fast. Nearly
    # every address has one port, so a port is kept as an int, and becomes a set only when a second one comes.
    by_family: tuple[dict[int, int | set[int]], dict[int, int | set[int]]] = ({}, {})
    ipv4_family, ipv6_family = by_family
    ipv4 = ipaddress.IPv4Address
    for index, instance in enumerate(instances):
        if not isinstance(instance, ServiceInstance):
            raise InvalidInput(f"rules_for: instance #{index} is a {type(instance).__name__}, not a ServiceInstance")
        ip = instance.address
        # A ServiceInstance's address is never IPv4-mapped: its converter made such an address the IPv4 it maps to.
        family = ipv4_family if type(ip) is ipv4 or ip.version == 4 else ipv6_family
        value = int(ip)
        port = instance.port
        ports = family.get(value)
        if ports is None:
            family[value] = port
        elif type(ports) is int:
            if ports != port:
                family[value] = {ports, port}
        else:
            ports.add(port)  # type: ignore[union-attr]  # not an int: a set

    if not compact:
        return tuple(
            trusted_rule(protocol, (_address_text(version, value),), (port,), None, (version, value, value))
            for version, family in zip((4, 6), by_family, strict=True)
            for value, ports in sorted(family.items())
            for port in ((ports,) if type(ports) is int else sorted(ports))  # type: ignore[arg-type]
        )

    # Group the addresses by their exact set of ports: one port alone keys by itself, several by their frozenset.
    groups: dict[int | frozenset[int], tuple[list[int], list[int]]] = {}
    for family_index, family in enumerate(by_family):
        for value, ports in family.items():
            key = ports if type(ports) is int else frozenset(ports)  # type: ignore[arg-type]
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([], [])
            group[family_index].append(value)
    rules = []
    for key, families in groups.items():
        port_set = (key,) if isinstance(key, int) else key
        destinations: list[str] = []
        intervals: list[int] = []
        for version, values in zip((4, 6), families, strict=True):
            if values:
                values.sort()
                _add_runs(version, values, destinations, intervals)
        ports_sorted = tuple(sorted(port_set))
        if len(ports_sorted) >= 2 and ports_sorted[-1] - ports_sorted[0] + 1 == len(ports_sorted):
            rule = trusted_rule(
                protocol, tuple(destinations), None, (ports_sorted[0], ports_sorted[-1]), tuple(intervals)
            )
        else:
            rule = trusted_rule(protocol, tuple(destinations), ports_sorted, None, tuple(intervals))
        rules.append((ports_sorted, rule))
    rules.sort(key=lambda item: item[0])
    return tuple(rule for _, rule in rules)
