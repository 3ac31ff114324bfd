"""Egress rules for the staging container, and the guard that decides which addresses may get one.

Threat model
------------
The seed's design opens the staging container's firewall to every address that
discovery (Consul's catalog, DNS) returns for the registry service, and the
staging container runs code and images that the platform does not trust. So
whoever can register a service instance, or poison the answer, chooses where
that untrusted code may connect: the cloud metadata service at
169.254.169.254 (instance credentials), the cell's own loopback services, other
tenants, or the public internet (exfiltration). Two defences live here:

* :class:`EgressGuard` refuses instance addresses outside the networks an
  operator approved before any rule is made: private networks by default, and
  never loopback, link-local, metadata, unspecified, multicast, broadcast or
  reserved addresses unless a listed network names them explicitly.
* :func:`rules_for` opens exactly the ``(address, port)`` pairs that were kept
  and not one more: compaction merges addresses only where the merged rule
  covers nothing else.

:class:`EgressRule` is validated as Diego's BBS validates a
``SecurityGroupRule`` (``models/security_groups.go``), so a rule this library
makes is never refused at task creation (the original Go stager sent a
protocol ``"TCP"``, which BBS refuses), and operators' rules read from BBS or
Cloud Controller JSON are checked before they reach a task.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union

import attrs

from .address import IPAddress, parse_ip
from .discovery.model import ServiceInstance
from .errors import EgressPolicyError, InvalidAddress, InvalidEgressRule, InvalidInput

__all__ = [
    "DEFAULT_ALLOWED_NETWORKS",
    "PROTOCOLS",
    "EgressGuard",
    "EgressRule",
    "RejectedInstance",
    "rules_for",
]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 (a runtime alias, as address.IPAddress)

#: The protocols BBS accepts, exactly as it spells them (lower case only).
PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp", "all")

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_BBS_KEYS = ("protocol", "destinations", "ports", "port_range", "icmp_info", "log", "annotations")
_ASG_KEYS = ("protocol", "destination", "ports", "type", "code", "log", "description")
_IPV4_BITS, _IPV6_BITS = 32, 128

# (version, first, last) as integers: the addresses one destination covers.
_Interval = tuple[int, int, int]


def _show(value: object) -> str:
    """A value as an error message shows it: its repr, cut short so hostile input cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unmap(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is the IPv4 address it maps to: that is where packets go."""
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return mapped
    return ip


def _as_ip(value: object, *, where: str) -> IPAddress:
    """An IP address from text or an ``ipaddress`` object; anything else is :class:`InvalidAddress`."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        ip = parse_ip(value)
        if ip is not None:
            return ip
    raise InvalidAddress(f"{where}: {_show(value)} is not an IP address")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- destinations -------------------------------------------------------------------------------------------------


def _destination_interval(text: str) -> _Interval | str:
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
        ip = _unmap(ip)
        return (ip.version, int(ip), int(ip))
    if text[cut] == "/":
        address, prefix = text[:cut], text[cut + 1 :]
        ip = parse_ip(address)
        if ip is None:
            return ""
        if not (prefix.isascii() and prefix.isdigit()):
            return f"the prefix length {prefix!r} is not a decimal number"
        bits = _IPV4_BITS if ip.version == 4 else _IPV6_BITS
        length = int(prefix)
        if length > bits:
            return f"the prefix length {length} is more than {bits}"
        network = ipaddress.ip_network((ip, length), strict=False)
        return (ip.version, int(network.network_address), int(network.broadcast_address))
    first, last = parse_ip(text[:cut]), parse_ip(text[cut + 1 :])
    if first is None or last is None:
        return ""
    first, last = _unmap(first), _unmap(last)
    if first.version != last.version:
        return "the range mixes IPv4 and IPv6"
    if int(first) > int(last):
        return "the range starts after it ends"
    return (first.version, int(first), int(last))


def _destination_problem(value: object) -> tuple[_Interval | None, str | None]:
    if not isinstance(value, str):
        return None, f"{_show(value)} is not an IP, CIDR or range (expected text, got {type(value).__name__})"
    found = _destination_interval(value)
    if isinstance(found, str):
        detail = f" ({found})" if found else ""
        return None, f"{_show(value)} is not an IP, CIDR or range{detail}"
    return found, None


# -- validation, as BBS does it ------------------------------------------------------------------------------------


def _check_port(value: object) -> str | None:
    if not _is_int(value):
        return f"{_show(value)} is not a port number"
    if not 1 <= value <= 65535:  # type: ignore[operator]  # _is_int said it is an int
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
            why = _check_port(port)
            if why:
                problems.append((f"ports[{index}]", why))
        return problems
    if not isinstance(port_range, tuple) or len(port_range) != 2:
        return [("port_range", f"{_show(port_range)} is not a (start, end) pair")]
    for name, port in zip(("start", "end"), port_range, strict=True):
        why = _check_port(port)
        if why:
            problems.append((f"port_range.{name}", why))
    if not problems and port_range[0] > port_range[1]:
        problems.append(("port_range", f"{port_range[0]}-{port_range[1]} starts after it ends"))
    return problems


def _check_icmp_info(icmp_info: object) -> list[tuple[str, str]]:
    if not isinstance(icmp_info, tuple) or len(icmp_info) != 2:
        return [("icmp_info", f"{_show(icmp_info)} is not a (type, code) pair")]
    problems = []
    for name, value in zip(("type", "code"), icmp_info, strict=True):
        if not _is_int(value) or not _INT32_MIN <= value <= _INT32_MAX:
            problems.append((f"icmp_info.{name}", f"{_show(value)} is not a 32-bit integer"))
    return problems


def _check_rule(
    protocol: object,
    destinations: object,
    ports: object,
    port_range: object,
    icmp_info: object,
    log: object,
    annotations: object,
    description: object,
) -> tuple[list[tuple[str, str]], tuple[_Interval, ...]]:
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
        problems.append(("protocol", f"{_show(protocol)} is not one of 'tcp', 'udp', 'icmp', 'all' (lower case)"))

    intervals: list[_Interval] = []
    if not isinstance(destinations, tuple):
        problems.append(("destinations", f"expected a list of destinations, got {type(destinations).__name__}"))
    elif not destinations:
        problems.append(("destinations", "the list is empty; give at least one destination"))
    else:
        for index, destination in enumerate(destinations):
            interval, why = _destination_problem(destination)
            if why:
                problems.append((f"destinations[{index}]", why))
            elif interval is not None:
                intervals.append(interval)

    if not isinstance(log, bool):
        problems.append(("log", f"{_show(log)} is not true or false"))
    if not isinstance(annotations, tuple):
        problems.append(("annotations", f"expected a list of text, got {type(annotations).__name__}"))
    else:
        for index, annotation in enumerate(annotations):
            if not isinstance(annotation, str):
                problems.append((f"annotations[{index}]", f"{_show(annotation)} is not text"))
    if description is not None and not isinstance(description, str):
        problems.append(("description", f"{_show(description)} is not text"))
    return problems, tuple(intervals)


def _refused(problems: Sequence[tuple[str, str]], where: str) -> InvalidEgressRule:
    prefix = f"{where}." if where else ""
    return InvalidEgressRule("; ".join(f"{prefix}{path}: {text}" for path, text in problems))


# -- converters: normalise what can be normalised, leave the rest for validation to name ---------------------------


_SINGLE_DESTINATION = (str, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network)


def _destinations(value: Iterable[str | IPAddress | IPNetwork] | str | IPAddress | IPNetwork) -> tuple[str, ...]:
    if isinstance(value, _SINGLE_DESTINATION):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        return value  # type: ignore[return-value]  # not iterable: validation names it
    kinds = (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network)
    return tuple(str(item) if isinstance(item, kinds) else item for item in items)


def _optional_tuple(value: Iterable[int] | None) -> tuple[int, ...] | None:
    if value is None or isinstance(value, (str, bytes, Mapping)):
        return value  # type: ignore[return-value]  # validation names it
    try:
        return tuple(value)
    except TypeError:
        return value  # type: ignore[return-value]


def _pair(value: tuple[int, int] | None) -> tuple[int, int] | None:
    return _optional_tuple(value)  # type: ignore[return-value]  # validation checks the length


def _annotations(value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return _optional_tuple(value) or ()  # type: ignore[arg-type, return-value]


# -- the rule ------------------------------------------------------------------------------------------------------


@attrs.frozen
class EgressRule:
    """One BBS security-group rule: a protocol, destinations, and ports, a port range or ICMP type and code.

    Validated on construction exactly as Diego's BBS validates a
    ``SecurityGroupRule``: protocols ``tcp``, ``udp``, ``icmp``, ``all`` in
    lower case; at least one destination, each an IP, a CIDR (host bits may be
    set) or a range ``first-last``; ``tcp``/``udp`` need ``ports`` or
    ``port_range`` and not both; ``icmp`` needs ``icmp_info`` ``(type, code)``
    and takes no ports; ``all`` takes none of them. Stricter than BBS, which
    only refuses port 0: a port above 65535 is refused, and so is a range
    whose two ends are of different IP families. Anything refused raises
    :class:`InvalidEgressRule` naming every field path and value at fault.

    The destinations' text and the ports are kept as given, so that an
    operator's rule read in is written back unchanged. ``description`` exists
    only in Cloud Controller's ASG format and is not sent to BBS.
    """

    protocol: str
    destinations: tuple[str, ...] = attrs.field(converter=_destinations)
    ports: tuple[int, ...] | None = attrs.field(default=None, kw_only=True, converter=_optional_tuple)
    port_range: tuple[int, int] | None = attrs.field(default=None, kw_only=True, converter=_pair)
    icmp_info: tuple[int, int] | None = attrs.field(default=None, kw_only=True, converter=_pair)
    log: bool = attrs.field(default=False, kw_only=True)
    annotations: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_annotations)
    description: str | None = attrs.field(default=None, kw_only=True)
    _intervals: tuple[_Interval, ...] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems, intervals = _check_rule(
            self.protocol,
            self.destinations,
            self.ports,
            self.port_range,
            self.icmp_info,
            self.log,
            self.annotations,
            self.description,
        )
        if problems:
            raise _refused(problems, "")
        object.__setattr__(self, "_intervals", intervals)

    # -- matching --

    def allows(self, ip: str | IPAddress, port: int, *, protocol: str = "tcp") -> bool:
        """Whether this rule lets a ``protocol`` connection to ``ip:port`` out of the container.

        An IPv4-mapped IPv6 address is matched as the IPv4 address it maps to.
        A ``udp`` or ``icmp`` rule allows no TCP; an ``all`` rule allows any
        port; an ``icmp`` rule ignores the port.
        """
        address = _unmap(_as_ip(ip, where="allows"))
        why = _check_port(port)
        if why:
            raise InvalidAddress(f"allows: {why}")
        if protocol not in ("tcp", "udp", "icmp"):
            raise InvalidInput(f"allows: protocol {_show(protocol)} is not 'tcp', 'udp' or 'icmp'")
        if self.protocol != "all" and self.protocol != protocol:
            return False
        if self.protocol in ("tcp", "udp"):
            if self.ports is not None:
                if port not in self.ports:
                    return False
            elif self.port_range is not None and not self.port_range[0] <= port <= self.port_range[1]:
                return False
        version, value = address.version, int(address)
        return any(v == version and first <= value <= last for v, first, last in self._intervals)

    @property
    def ports_text(self) -> str:
        """The ports as Cloud Controller writes them: ``8080``, ``80,443``, ``1000-2000``; empty without ports."""
        if self.ports is not None:
            return ",".join(str(port) for port in self.ports)
        if self.port_range is not None:
            start, end = self.port_range
            return str(start) if start == end else f"{start}-{end}"
        return ""

    def __str__(self) -> str:
        text = f"{self.protocol} {','.join(self.destinations)}"
        if self.ports_text:
            text += f" {self.ports_text}"
        if self.icmp_info is not None:
            text += f" type {self.icmp_info[0]} code {self.icmp_info[1]}"
        return text + (" (logged)" if self.log else "")

    # -- BBS JSON --

    def to_bbs(self) -> dict[str, Any]:
        """The rule as BBS JSON: ``log`` always, ``annotations`` only when there are some (as BBS writes it)."""
        data: dict[str, Any] = {"protocol": self.protocol, "destinations": list(self.destinations)}
        if self.ports is not None:
            data["ports"] = list(self.ports)
        if self.port_range is not None:
            data["port_range"] = {"start": self.port_range[0], "end": self.port_range[1]}
        if self.icmp_info is not None:
            data["icmp_info"] = {"type": self.icmp_info[0], "code": self.icmp_info[1]}
        data["log"] = self.log
        if self.annotations:
            data["annotations"] = list(self.annotations)
        return data

    @classmethod
    def from_bbs(cls, data: Mapping[str, Any], *, where: str = "") -> EgressRule:
        """Read a rule from BBS JSON (as decoded by :mod:`json`); ``where`` prefixes field paths in errors.

        ``from_bbs(x).to_bbs() == x`` for every valid ``x`` that has ``log``
        and no empty ``annotations`` list; a missing ``log`` is false, and
        ``null`` stands for a missing field, as Go's JSON decoder reads them.
        Unknown fields are refused (Go would ignore them: a typo such as
        ``port`` would silently drop the ports).
        """
        if not isinstance(data, Mapping):
            raise _refused([("rule", f"expected a JSON object, got {type(data).__name__}")], where)
        _refuse_unknown_fields(data, _BBS_KEYS, "a BBS rule", where)
        problems: list[tuple[str, str]] = []
        destinations = data.get("destinations")
        destinations = [] if destinations is None else destinations
        if not isinstance(destinations, list):
            problems.append(("destinations", f"expected a list of destinations, got {type(destinations).__name__}"))
        ports = data.get("ports")
        if ports is not None and not isinstance(ports, list):
            problems.append(("ports", f"expected a list of port numbers, got {type(ports).__name__}"))
        port_range = _bbs_object(data.get("port_range"), "port_range", ("start", "end"), problems)
        icmp_info = _bbs_object(data.get("icmp_info"), "icmp_info", ("type", "code"), problems)
        annotations = data.get("annotations")
        annotations = [] if annotations is None else annotations
        if not isinstance(annotations, list):
            problems.append(("annotations", f"expected a list of text, got {type(annotations).__name__}"))
        log = data.get("log")
        log = False if log is None else log
        protocol = data.get("protocol")
        protocol = "" if protocol is None else protocol
        if problems:
            raise _refused(problems, where)
        given_destinations, given_ports = tuple(destinations), None if ports is None else tuple(ports)
        given_annotations = tuple(annotations)
        problems, _ = _check_rule(
            protocol, given_destinations, given_ports, port_range, icmp_info, log, given_annotations, None
        )
        if problems:  # checked here, not by the constructor, so that the paths carry ``where``
            raise _refused(problems, where)
        return cls(
            protocol,
            given_destinations,
            ports=given_ports,
            port_range=port_range,
            icmp_info=icmp_info,
            log=log,
            annotations=given_annotations,
        )

    # -- Cloud Controller ASG JSON --

    def to_asg(self) -> list[dict[str, Any]]:
        """The rule in Cloud Controller's security-group format: one dict per destination (the format holds one).

        ``ports`` is a string (``8080``, ``80,443``, ``1000-2000``; a one-port
        range is written as the port); ICMP's type and code are top-level
        fields; ``annotations`` have no place in that format and are left out.
        """
        if self.icmp_info is not None and not all(-1 <= value <= 255 for value in self.icmp_info):
            raise InvalidEgressRule(
                f"icmp_info: {self.icmp_info} cannot be written as a Cloud Controller rule, which holds an ICMP "
                "type and code in -1..255"
            )
        rules = []
        for destination in self.destinations:
            item: dict[str, Any] = {"protocol": self.protocol, "destination": destination}
            if self.protocol in ("tcp", "udp"):
                item["ports"] = self.ports_text
            if self.icmp_info is not None:
                item["type"], item["code"] = self.icmp_info
            item["log"] = self.log
            if self.description is not None:
                item["description"] = self.description
            rules.append(item)
        return rules

    @classmethod
    def from_asg(cls, data: Mapping[str, Any], *, where: str = "") -> EgressRule:
        """Read one Cloud Controller security-group rule; ``where`` prefixes field paths in errors.

        Checked as Cloud Controller checks it (``ports`` a string: one port,
        a comma-separated list, or a range ``low-high`` with ``low < high``;
        ICMP ``type`` and ``code`` in -1..255; ``destination`` without
        whitespace, several destinations separated by commas), then as BBS
        checks the rule it becomes. Stricter: ports given to ``icmp``, and
        ``type``/``code`` given to any protocol but ``icmp``, are refused
        rather than silently dropped. ``from_asg(x).to_asg() == [x]`` for a
        valid ``x`` with one destination, ``log`` present and canonical ports.
        """
        if not isinstance(data, Mapping):
            raise _refused([("rule", f"expected a JSON object, got {type(data).__name__}")], where)
        _refuse_unknown_fields(data, _ASG_KEYS, "a security group rule", where)
        problems: list[tuple[str, str]] = []
        protocol = data.get("protocol")
        if not isinstance(protocol, str) or protocol not in PROTOCOLS:
            problems.append(("protocol", f"{_show(protocol)} is not one of 'tcp', 'udp', 'icmp', 'all' (lower case)"))
        destinations = _asg_destinations(data.get("destination"), problems)
        ports: tuple[int, ...] | None = None
        port_range: tuple[int, int] | None = None
        icmp_info: tuple[int, int] | None = None
        if protocol in ("tcp", "udp"):
            ports, port_range = _asg_ports(data.get("ports"), str(protocol), problems)
        elif protocol in ("icmp", "all") and data.get("ports") is not None:
            problems.append(("ports", f"{protocol} takes no ports"))
        if protocol == "icmp":
            icmp_info = _asg_icmp(data, problems)
        elif protocol in PROTOCOLS:
            for key in ("type", "code"):
                if data.get(key) is not None:
                    problems.append((key, f"only icmp takes an ICMP {key}, not {_show(protocol)}"))
        log = data.get("log")
        log = False if log is None else log
        if not isinstance(log, bool):
            problems.append(("log", f"{_show(log)} is not true or false"))
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            problems.append(("description", f"{_show(description)} is not text"))
        if problems:
            raise _refused(problems, where)
        return cls(
            str(protocol),
            destinations,
            ports=ports,
            port_range=port_range,
            icmp_info=icmp_info,
            log=log,
            description=description,
        )


def _refuse_unknown_fields(data: Mapping[str, Any], known: tuple[str, ...], what: str, where: str) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        listed = ", ".join(_show(key) for key in unknown)
        raise _refused([("rule", f"unknown field(s) {listed}; {what} has {', '.join(known)}")], where)


def _bbs_object(
    value: object, name: str, keys: tuple[str, str], problems: list[tuple[str, str]]
) -> tuple[int, int] | None:
    """A BBS ``port_range`` or ``icmp_info`` object as a pair; a missing member is 0, as Go decodes it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append((name, f"expected an object with {keys[0]} and {keys[1]}, got {type(value).__name__}"))
        return None
    unknown = [key for key in value if key not in keys]
    if unknown:
        problems.append((name, f"unknown field(s) {', '.join(_show(key) for key in unknown)}"))
        return None
    first, second = value.get(keys[0], 0), value.get(keys[1], 0)
    return (first, second)


def _asg_destinations(value: object, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    if not isinstance(value, str):
        why = "is missing" if value is None else f"{_show(value)} is not text"
        problems.append(("destination", f"{why}; give an IP, a CIDR or a range first-last"))
        return ()
    if any(char.isspace() for char in value):
        problems.append(("destination", f"{_show(value)} contains whitespace"))
        return ()
    parts = tuple(value.split(","))
    for part in parts:
        problem = _destination_problem(part)[1]
        if problem:
            problems.append(("destination", problem))
    return parts


def _asg_ports(
    value: object, protocol: str, problems: list[tuple[str, str]]
) -> tuple[tuple[int, ...] | None, tuple[int, int] | None]:
    """Cloud Controller's ports string: ``80``, ``80,443`` or ``1000-2000`` (spaces allowed around numbers)."""
    if value is None:
        problems.append(("ports", f"{protocol} needs ports, e.g. '443', '80,443' or '1000-2000'"))
        return None, None
    refused = ("ports", f"{_show(value)} is not a port, a comma-separated list of ports, or a range low-high")
    if not isinstance(value, str) or not value.strip() or any(c not in "0123456789-, \t\n\r\f\v" for c in value):
        problems.append(refused)
        return None, None
    if "-" in value:
        low_text, _, high_text = value.partition("-")
        low_text, high_text = low_text.strip(), high_text.strip()
        if not (low_text.isdigit() and high_text.isdigit()) or "-" in high_text or "," in value:
            problems.append(refused)
            return None, None
        low, high = int(low_text), int(high_text)
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            problems.append(("ports", f"{_show(value)}: ports must be in 1..65535"))
            return None, None
        if low >= high:
            problems.append(("ports", f"{_show(value)}: a range must start below its end (write one port alone)"))
            return None, None
        return None, (low, high)
    texts = [text.strip() for text in value.split(",")]
    if not all(text.isdigit() for text in texts):
        problems.append(refused)
        return None, None
    ports = tuple(int(text) for text in texts)
    if not all(1 <= port <= 65535 for port in ports):
        problems.append(("ports", f"{_show(value)}: ports must be in 1..65535"))
        return None, None
    return ports, None


def _asg_icmp(data: Mapping[str, Any], problems: list[tuple[str, str]]) -> tuple[int, int] | None:
    values = []
    for key in ("type", "code"):
        value = data.get(key)
        if value is None:
            problems.append((key, f"icmp needs an ICMP {key} (-1 for any)"))
        elif not _is_int(value) or not -1 <= value <= 255:
            problems.append((key, f"{_show(value)} is not an integer in -1..255"))
        else:
            values.append(value)
    return (values[0], values[1]) if len(values) == 2 else None


# -- the guard -----------------------------------------------------------------------------------------------------

#: Private networks: RFC 1918, carrier-grade NAT shared space (RFC 6598) and IPv6 unique local (RFC 4193).
DEFAULT_ALLOWED_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fc00::/7"),
)

# Address classes refused even when a broad allowed network covers them. Most specific first: an address takes
# the first class whose block holds it. The metadata addresses are their own one-address blocks, so that allowing
# 169.254.0.0/16 or fc00::/7 does not open them: only a network inside the block (the address itself) does.
_SPECIAL: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(block), what)
    for block, what in (
        ("169.254.169.254/32", "link-local (the cloud metadata service)"),
        ("fd00:ec2::254/128", "the cloud metadata service (AWS, IPv6)"),
        ("100.100.100.200/32", "the cloud metadata service (Alibaba Cloud)"),
        ("255.255.255.255/32", "the broadcast address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("0.0.0.0/8", "unspecified ('this network', 0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    )
)
_SPECIAL_INTERVALS: tuple[tuple[int, int, int, int], ...] = tuple(
    (block.version, int(block.network_address), int(block.broadcast_address), index)
    for index, (block, _) in enumerate(_SPECIAL)
)
_MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
_inet_ntoa = socket.inet_ntoa


@functools.lru_cache(maxsize=16)
def _plain_ipv4(allowed: tuple[tuple[int, int, int, int], ...]) -> tuple[list[int], list[int]]:
    """The IPv4 ranges (sorted starts, ends) inside an allowed network and outside every special block.

    There :meth:`EgressGuard.reason` answers ``None`` at its first test (a
    plain address that a network covers), so :meth:`EgressGuard.check` can
    keep an address found here by one binary search; every other address
    still goes through ``reason``, which also writes the refusal's sentence.
    """
    merged: list[list[int]] = []
    for first, last in sorted((first, last) for version, first, last, _ in allowed if version == 4):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    specials = sorted((first, last) for version, first, last, _ in _SPECIAL_INTERVALS if version == 4)
    starts: list[int] = []
    ends: list[int] = []
    for first, last in merged:
        start = first
        for special_first, special_last in specials:
            if special_last < start or special_first > last:
                continue
            if special_first > start:
                starts.append(start)
                ends.append(special_first - 1)
            start = special_last + 1
            if start > last:
                break
        if start <= last:
            starts.append(start)
            ends.append(last)
    return starts, ends


def _network(value: object, *, where: str) -> IPNetwork:
    """An allowed network from a CIDR, a single IP, or an ``ipaddress`` object; IPv4-mapped ones become IPv4."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        network: IPNetwork = value
    elif isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        network = ipaddress.ip_network(value)
    elif isinstance(value, str):
        hint = "give a CIDR such as 10.0.0.0/8 or a single IP address"
        if not value or any(char.isspace() or not char.isprintable() for char in value) or "%" in value:
            raise InvalidAddress(f"{where}: {_show(value)} is not an IP network; {hint}")
        try:
            network = ipaddress.ip_network(value)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise InvalidAddress(f"{where}: {_show(value)} is not an IP network; {hint}") from exc
            raise InvalidAddress(
                f"{where}: {_show(value)} has host bits set; did you mean {loose}? (or list the single address)"
            ) from exc
    else:
        raise InvalidAddress(f"{where}: {_show(value)} is not an IP network; give text such as '10.0.0.0/8'")
    if network.version == 6 and network.prefixlen >= 96 and network.subnet_of(_MAPPED_V4):
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def _networks(value: Iterable[str | IPNetwork | IPAddress] | str) -> tuple[IPNetwork, ...]:
    if isinstance(value, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        value = [value]
    if not isinstance(value, Iterable):
        raise InvalidAddress(f"allowed_networks: expected a list of networks, got {type(value).__name__}")
    networks = {_network(item, where=f"allowed_networks[{index}]") for index, item in enumerate(value)}
    return tuple(sorted(networks, key=lambda n: (n.version, int(n.network_address), n.prefixlen)))


def _on_violation(_instance: object, _attribute: object, value: object) -> None:
    if value not in ("drop", "error"):
        raise InvalidInput(f"on_violation must be 'drop' or 'error', got {_show(value)}")


@attrs.frozen
class RejectedInstance:
    """An instance the egress guard refused, and why, in a sentence a person can act on."""

    instance: ServiceInstance
    reason: str

    def __str__(self) -> str:
        return f"{self.instance.endpoint}: {self.reason}"


@attrs.frozen
class EgressGuard:
    """Decides which instance addresses a staging container may be opened to.

    An address (an IPv4-mapped IPv6 address is judged as the IPv4 address it
    maps to) is allowed when both hold:

    1. some network in ``allowed_networks`` contains it; and
    2. if it belongs to a special class (the cloud metadata addresses
       169.254.169.254, fd00:ec2::254 and 100.100.100.200; unspecified
       0.0.0.0/8 and ``::``; loopback 127.0.0.0/8 and ``::1``; link-local
       169.254.0.0/16 and fe80::/10; broadcast 255.255.255.255; multicast
       224.0.0.0/4 and ff00::/8; reserved 240.0.0.0/4), some allowed network
       that contains it lies inside that class's block.

    So ``["127.0.0.0/8"]`` allows 127.0.0.1 for local tests, while
    ``["0.0.0.0/0"]`` still refuses 127.0.0.1 and 169.254.169.254, and
    ``["169.254.0.0/16"]`` allows link-local addresses but not the metadata
    service, which only ``169.254.169.254`` (``/32``) itself opens. The
    default allows the private networks in :data:`DEFAULT_ALLOWED_NETWORKS`.

    ``allowed_networks`` takes CIDRs (host bits must be zero), single IPs and
    ``ipaddress`` objects; they are kept sorted and deduplicated, so two guards
    with the same networks compare equal. ``on_violation="drop"`` drops refused
    instances (``check`` returns them with reasons); ``"error"`` raises
    :class:`EgressPolicyError` at the first one.
    """

    allowed_networks: tuple[IPNetwork, ...] = attrs.field(default=DEFAULT_ALLOWED_NETWORKS, converter=_networks)
    on_violation: Literal["drop", "error"] = attrs.field(default="drop", kw_only=True, validator=_on_violation)
    _allowed: tuple[tuple[int, int, int, int], ...] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        allowed = []
        for index, network in enumerate(self.allowed_networks):
            allowed.append((network.version, int(network.network_address), int(network.broadcast_address), index))
        object.__setattr__(self, "_allowed", tuple(allowed))

    def reason(self, address: str | IPAddress) -> str | None:
        """Why ``address`` is refused, as a sentence naming its class; ``None`` when it is allowed."""
        given = _as_ip(address, where="egress guard")
        ip = _unmap(given)
        version, value = ip.version, int(ip)
        special = None
        for v, first, last, index in _SPECIAL_INTERVALS:
            if v == version and first <= value <= last:
                special = index
                break
        covering = [index for v, first, last, index in self._allowed if v == version and first <= value <= last]
        if special is None and covering:
            return None  # the common case first: a plain address inside an allowed network
        label = str(given) if ip is given else f"{given} (IPv4-mapped {ip})"
        if special is None:
            kind = " a public address;" if ip.is_global else ""
            return f"{label} is{kind} not in the allowed networks ({self._networks_text()})"
        block, what = _SPECIAL[special]
        if any(self.allowed_networks[index].subnet_of(block) for index in covering):  # type: ignore[arg-type]
            return None
        if covering:
            broad = self.allowed_networks[covering[0]]
            return (
                f"{label} is {what}; the allowed network {broad} covers it, but such addresses are opened only "
                f"by a network inside {block}: list {block} (or a network inside it) to allow it"
            )
        return f"{label} is {what}; not in the allowed networks"

    def allows(self, address: str | IPAddress) -> bool:
        """Whether ``address`` may be opened (see the class docstring for the rule)."""
        return self.reason(address) is None

    def check(
        self, instances: Iterable[ServiceInstance]
    ) -> tuple[tuple[ServiceInstance, ...], tuple[RejectedInstance, ...]]:
        """Split ``instances`` into those kept and those refused (with reasons), each in the order given.

        With ``on_violation="error"`` the first refused instance raises
        :class:`EgressPolicyError` instead, naming it and why.
        """
        kept: list[ServiceInstance] = []
        rejected: list[RejectedInstance] = []
        starts, ends = _plain_ipv4(self._allowed)
        ipv4 = ipaddress.IPv4Address
        for index, instance in enumerate(instances):
            if not isinstance(instance, ServiceInstance):
                raise InvalidInput(
                    f"egress guard: instance #{index} is a {type(instance).__name__}, not a ServiceInstance"
                )
            address = instance.address
            if type(address) is ipv4:  # the common case: a plain IPv4 address inside an allowed network
                value = int(address)
                at = bisect.bisect_right(starts, value) - 1
                if at >= 0 and value <= ends[at]:
                    kept.append(instance)
                    continue
            why = self.reason(address)
            if why is None:
                kept.append(instance)
            elif self.on_violation == "error":
                raise EgressPolicyError(
                    f"egress guard refused registry instance {instance.endpoint}: {why}. If it is a genuine "
                    "registry, allow its network explicitly (allowed_networks, --allow-network); otherwise fix the "
                    "discovery source that returned it"
                )
            else:
                rejected.append(RejectedInstance(instance, why))
        return tuple(kept), tuple(rejected)

    def _networks_text(self) -> str:
        if not self.allowed_networks:
            return "none are allowed"
        shown = [str(network) for network in self.allowed_networks[:6]]
        more = len(self.allowed_networks) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


# -- rules for instances -------------------------------------------------------------------------------------------


def _address_text(version: int, value: int) -> str:
    if version == 4:  # what str(IPv4Address(value)) gives, by the C formatter, without building the object
        return _inet_ntoa(value.to_bytes(4, "big"))
    if value >= 1 << 48:  # no embedded-IPv4 form: the C formatter writes what str(IPv6Address(value)) does
        return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))
    return str(ipaddress.IPv6Address(value))


def _run_text(version: int, first: int, last: int) -> str:
    """One contiguous run of addresses as one destination: an IP, a CIDR when aligned, else a range."""
    if first == last:
        return _address_text(version, first)
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        bits = _IPV4_BITS if version == 4 else _IPV6_BITS
        return f"{_address_text(version, first)}/{bits - size.bit_length() + 1}"
    return f"{_address_text(version, first)}-{_address_text(version, last)}"


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted list without duplicates."""
    runs: list[tuple[int, int]] = []
    if not values:
        return runs
    first = previous = values[0]
    for value in values[1:]:
        if value != previous + 1:
            runs.append((first, previous))
            first = value
        previous = value
    runs.append((first, previous))
    return runs


def _trusted_rule(protocol: str, destinations: tuple[str, ...], ports: tuple[int, ...] | None,
                  port_range: tuple[int, int] | None, intervals: tuple[_Interval, ...]) -> EgressRule:  # fmt: skip
    """A rule built from values this module has just made valid, without parsing its own output again."""
    rule = object.__new__(EgressRule)
    set_ = object.__setattr__
    set_(rule, "protocol", protocol)
    set_(rule, "destinations", destinations)
    set_(rule, "ports", ports)
    set_(rule, "port_range", port_range)
    set_(rule, "icmp_info", None)
    set_(rule, "log", False)
    set_(rule, "annotations", ())
    set_(rule, "description", None)
    set_(rule, "_intervals", intervals)
    return rule


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
        raise InvalidEgressRule(f"protocol: rules_for makes 'tcp' or 'udp' rules, not {_show(protocol)}")
    # Two maps, IPv4 and IPv6, from an address (as an integer) to its ports: integers hash and sort fast. Nearly
    # every address has one port, so a port is kept as an int, and becomes a set only when a second one comes.
    by_family: tuple[dict[int, int | set[int]], dict[int, int | set[int]]] = ({}, {})
    ipv4_family, ipv6_family = by_family
    ipv4 = ipaddress.IPv4Address
    for index, instance in enumerate(instances):
        if not isinstance(instance, ServiceInstance):
            raise InvalidInput(f"rules_for: instance #{index} is a {type(instance).__name__}, not a ServiceInstance")
        ip = instance.address
        if type(ip) is ipv4:
            family = ipv4_family
        else:
            ip = _unmap(ip)
            family = ipv4_family if ip.version == 4 else ipv6_family
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
            _trusted_rule(protocol, (_address_text(version, value),), (port,), None, ((version, value, value),))
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
        intervals: list[_Interval] = []
        for version, values in zip((4, 6), families, strict=True):
            if not values:
                continue
            values.sort()
            for first, last in _runs(values):
                # A lone address (most of them, in a sparse network) needs no CIDR or range logic.
                destinations.append(_address_text(version, first) if first == last else _run_text(version, first, last))
                intervals.append((version, first, last))
        ports_sorted = tuple(sorted(port_set))
        if len(ports_sorted) >= 2 and ports_sorted[-1] - ports_sorted[0] + 1 == len(ports_sorted):
            rule = _trusted_rule(
                protocol, tuple(destinations), None, (ports_sorted[0], ports_sorted[-1]), tuple(intervals)
            )
        else:
            rule = _trusted_rule(protocol, tuple(destinations), ports_sorted, None, tuple(intervals))
        rules.append((ports_sorted, rule))
    rules.sort(key=lambda item: item[0])
    return tuple(rule for _, rule in rules)
