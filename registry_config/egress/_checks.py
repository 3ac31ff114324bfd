"""The checks Diego's BBS makes of a ``SecurityGroupRule``, each refusal with its field path.

BBS validates a rule when a task is created (``models/security_groups.go``):
a rule it would refuse makes the whole task fail, long after the stager
decided to send it. So :class:`~registry_config.egress.EgressRule` runs
these checks on construction, and :mod:`.formats` runs them again with the
caller's ``where`` prefix when it reads BBS or Cloud Controller JSON.
Where this package is stricter than BBS, the docstring of the check says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ..address import parse_ip
from ..errors import InvalidEgressRule
from ._addresses import unmap
from ._messages import show

__all__ = [
    "IPV4_BITS",
    "IPV6_BITS",
    "PROTOCOLS",
    "Interval",
    "Intervals",
    "check_port",
    "check_rule",
    "destination_problem",
    "is_int",
    "refused",
]

#: The protocols BBS accepts, exactly as it spells them (lower case only).
PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp", "all")

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
IPV4_BITS, IPV6_BITS = 32, 128

#: (version, first, last) as integers: the addresses one destination covers.
Interval = tuple[int, int, int]
#: The intervals of a rule's destinations laid end to end, ``(version, first, last, version, first, last, ...)``:
#: one flat tuple of ints instead of one tuple per destination. A compacted rule for 100k scattered instances has
#: ~90k destinations, and a tuple each would be 90k more objects for the garbage collector to walk, for a field
#: only ``allows`` reads.
Intervals = tuple[int, ...]


def is_int(value: object) -> bool:
    """An ``int`` and not a ``bool`` (JSON's ``true`` is no port number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _destination_interval(text: str) -> Interval | str:
    """Parse one BBS destination: the addresses it covers, or why BBS would refuse it.

    BBS looks for the first ``-`` or ``/``: none means an IP (Go's
    ``net.ParseIP``), ``/`` a CIDR (``net.ParseCIDR``: host bits may be set,
    the prefix is decimal), ``-`` a range ``first-last`` with ``first <= last``.
    Go treats an IPv4-mapped IPv6 address as the IPv4 address itself, and so
    does this. Stricter than BBS: a range whose ends are of different families
    (``::1-10.0.0.1``, which BBS compares as 16-byte strings) is refused.
    """
    cut = next((i for i, char in enumerate(text) if char in "-/"), -1)
    if cut < 0:
        ip = parse_ip(text)
        if ip is None:
            return ""
        ip = unmap(ip)
        return (ip.version, int(ip), int(ip))
    if text[cut] == "/":
        address, prefix = text[:cut], text[cut + 1 :]
        ip = parse_ip(address)
        if ip is None:
            return ""
        if not (prefix.isascii() and prefix.isdigit()):
            return f"the prefix length {prefix!r} is not a decimal number"
        bits = IPV4_BITS if ip.version == 4 else IPV6_BITS
        length = int(prefix)
        if length > bits:
            return f"the prefix length {length} is more than {bits}"
        network = ipaddress.ip_network((ip, length), strict=False)
        return (ip.version, int(network.network_address), int(network.broadcast_address))
    first, last = parse_ip(text[:cut]), parse_ip(text[cut + 1 :])
    if first is None or last is None:
        return ""
    first, last = unmap(first), unmap(last)
    if first.version != last.version:
        return "the range mixes IPv4 and IPv6"
    if int(first) > int(last):
        return "the range starts after it ends"
    return (first.version, int(first), int(last))


def destination_problem(value: object) -> tuple[Interval | None, str | None]:
    if not isinstance(value, str):
        return None, f"{show(value)} is not an IP, CIDR or range (expected text, got {type(value).__name__})"
    found = _destination_interval(value)
    if isinstance(found, str):
        detail = f" ({found})" if found else ""
        return None, f"{show(value)} is not an IP, CIDR or range{detail}"
    return found, None


def check_port(value: object) -> str | None:
    if not is_int(value):
        return f"{show(value)} is not a port number"
    if not 1 <= value <= 65535:  # type: ignore[operator]  # is_int said it is an int
        return f"{value} is not a port in 1..65535"
    return None


def _check_ports(ports: object, port_range: object, protocol: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if ports is None and port_range is None:
        return [("ports", f"{protocol} needs ports or port_range (missing both)")]
    if ports is not None and port_range is not None:
        return [("ports", "give ports or port_range, not both")]
    if ports is not None:
        if not isinstance(ports, tuple):
            return [("ports", f"expected a list of port numbers, got {type(ports).__name__}")]
        if not ports:
            return [("ports", "the list is empty; give at least one port")]
        for index, port in enumerate(ports):
            why = check_port(port)
            if why:
                problems.append((f"ports[{index}]", why))
        return problems
    if not isinstance(port_range, tuple) or len(port_range) != 2:
        return [("port_range", f"{show(port_range)} is not a (start, end) pair")]
    for name, port in zip(("start", "end"), port_range, strict=True):
        why = check_port(port)
        if why:
            problems.append((f"port_range.{name}", why))
    if not problems and port_range[0] > port_range[1]:
        problems.append(("port_range", f"{port_range[0]}-{port_range[1]} starts after it ends"))
    return problems


def _check_icmp_info(icmp_info: object) -> list[tuple[str, str]]:
    if not isinstance(icmp_info, tuple) or len(icmp_info) != 2:
        return [("icmp_info", f"{show(icmp_info)} is not a (type, code) pair")]
    problems = []
    for name, value in zip(("type", "code"), icmp_info, strict=True):
        if not is_int(value) or not _INT32_MIN <= value <= _INT32_MAX:
            problems.append((f"icmp_info.{name}", f"{show(value)} is not a 32-bit integer"))
    return problems


def check_rule(
    protocol: object,
    destinations: object,
    ports: object,
    port_range: object,
    icmp_info: object,
    log: object,
    annotations: object,
    description: object,
) -> tuple[list[tuple[str, str]], Intervals]:
    """Every reason BBS (or this library, where stricter) would refuse the rule, with its field path."""
    problems: list[tuple[str, str]] = []
    if protocol in ("tcp", "udp"):
        problems += _check_ports(ports, port_range, str(protocol))
        if icmp_info is not None:
            problems.append(("icmp_info", f"only icmp takes icmp_info, not {protocol}"))
    elif protocol in ("icmp", "all"):
        if port_range is not None:
            problems.append(("port_range", f"{protocol} takes no port_range"))
        if ports is not None:
            problems.append(("ports", f"{protocol} takes no ports"))
        if protocol == "all" and icmp_info is not None:
            problems.append(("icmp_info", "all takes no icmp_info"))
        if protocol == "icmp":
            if icmp_info is None:
                problems.append(("icmp_info", "icmp needs icmp_info (type, code)"))
            else:
                problems += _check_icmp_info(icmp_info)
    else:
        problems.append(("protocol", f"{show(protocol)} is not one of 'tcp', 'udp', 'icmp', 'all' (lower case)"))

    intervals: list[int] = []
    if not isinstance(destinations, tuple):
        problems.append(("destinations", f"expected a list of destinations, got {type(destinations).__name__}"))
    elif not destinations:
        problems.append(("destinations", "the list is empty; give at least one destination"))
    else:
        for index, destination in enumerate(destinations):
            interval, why = destination_problem(destination)
            if why:
                problems.append((f"destinations[{index}]", why))
            elif interval is not None:
                intervals.extend(interval)

    if not isinstance(log, bool):
        problems.append(("log", f"{show(log)} is not true or false"))
    if not isinstance(annotations, tuple):
        problems.append(("annotations", f"expected a list of text, got {type(annotations).__name__}"))
    else:
        for index, annotation in enumerate(annotations):
            if not isinstance(annotation, str):
                problems.append((f"annotations[{index}]", f"{show(annotation)} is not text"))
    if description is not None and not isinstance(description, str):
        problems.append(("description", f"{show(description)} is not text"))
    return problems, tuple(intervals)


def refused(problems: Sequence[tuple[str, str]], where: str) -> InvalidEgressRule:
    prefix = f"{where}." if where else ""
    return InvalidEgressRule("; ".join(f"{prefix}{path}: {text}" for path, text in problems))
