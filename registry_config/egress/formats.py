"""BBS and Cloud Controller security-group JSON: an :class:`~registry_config.egress.EgressRule` read and written.

Two formats carry the same rule. BBS (the ``SecurityGroupRule`` of a task)
holds a list of ``destinations``, a list of ``ports`` or a ``port_range``
object, and ``icmp_info``; Cloud Controller's application security groups hold
one ``destination`` string (commas separate several), ``ports`` as a string
(``80,443`` or ``1000-2000``), and ICMP ``type`` and ``code`` at the top.
Reading either checks everything its own server checks, and then what BBS
checks of the rule it becomes, with the caller's ``where`` before each field
path; a rule read in is written back as it was given.

The methods :meth:`EgressRule.to_bbs`, :meth:`EgressRule.from_bbs`,
:meth:`EgressRule.to_asg` and :meth:`EgressRule.from_asg` are the way in; they
call the functions here, which take the class to build so that a subclass gets
its own instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import InvalidEgressRule
from ._checks import PROTOCOLS, check_rule, destination_problem, is_int, refused
from ._messages import show

if TYPE_CHECKING:
    from .rule import EgressRule

__all__ = ["ASG_KEYS", "BBS_KEYS", "from_asg", "from_bbs", "to_asg", "to_bbs"]

#: The fields of a BBS ``SecurityGroupRule``, as its JSON spells them.
BBS_KEYS = ("protocol", "destinations", "ports", "port_range", "icmp_info", "log", "annotations")
#: The fields of a Cloud Controller security-group rule.
ASG_KEYS = ("protocol", "destination", "ports", "type", "code", "log", "description")

Rule = TypeVar("Rule", bound="EgressRule")


def to_bbs(rule: EgressRule) -> dict[str, Any]:
    """:meth:`EgressRule.to_bbs <registry_config.egress.EgressRule.to_bbs>`."""
    data: dict[str, Any] = {"protocol": rule.protocol, "destinations": list(rule.destinations)}
    if rule.ports is not None:
        data["ports"] = list(rule.ports)
    if rule.port_range is not None:
        data["port_range"] = {"start": rule.port_range[0], "end": rule.port_range[1]}
    if rule.icmp_info is not None:
        data["icmp_info"] = {"type": rule.icmp_info[0], "code": rule.icmp_info[1]}
    data["log"] = rule.log
    if rule.annotations:
        data["annotations"] = list(rule.annotations)
    return data


def from_bbs(cls: type[Rule], data: Mapping[str, Any], *, where: str = "") -> Rule:
    """:meth:`EgressRule.from_bbs <registry_config.egress.EgressRule.from_bbs>`, building a ``cls``."""
    if not isinstance(data, Mapping):
        raise refused([("rule", f"expected a JSON object, got {type(data).__name__}")], where)
    _refuse_unknown_fields(data, BBS_KEYS, "a BBS rule", where)
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
        raise refused(problems, where)
    given_destinations, given_ports = tuple(destinations), None if ports is None else tuple(ports)
    given_annotations = tuple(annotations)
    problems, _ = check_rule(
        protocol, given_destinations, given_ports, port_range, icmp_info, log, given_annotations, None
    )
    if problems:  # checked here, not by the constructor, so that the paths carry ``where``
        raise refused(problems, where)
    return cls(
        protocol,
        given_destinations,
        ports=given_ports,
        port_range=port_range,
        icmp_info=icmp_info,
        log=log,
        annotations=given_annotations,
    )


def to_asg(rule: EgressRule) -> list[dict[str, Any]]:
    """:meth:`EgressRule.to_asg <registry_config.egress.EgressRule.to_asg>`."""
    if rule.icmp_info is not None and not all(-1 <= value <= 255 for value in rule.icmp_info):
        raise InvalidEgressRule(
            f"icmp_info: {rule.icmp_info} cannot be written as a Cloud Controller rule, which holds an ICMP "
            "type and code in -1..255"
        )
    rules = []
    for destination in rule.destinations:
        item: dict[str, Any] = {"protocol": rule.protocol, "destination": destination}
        if rule.protocol in ("tcp", "udp"):
            item["ports"] = rule.ports_text
        if rule.icmp_info is not None:
            item["type"], item["code"] = rule.icmp_info
        item["log"] = rule.log
        if rule.description is not None:
            item["description"] = rule.description
        rules.append(item)
    return rules


def from_asg(cls: type[Rule], data: Mapping[str, Any], *, where: str = "") -> Rule:
    """:meth:`EgressRule.from_asg <registry_config.egress.EgressRule.from_asg>`, building a ``cls``."""
    if not isinstance(data, Mapping):
        raise refused([("rule", f"expected a JSON object, got {type(data).__name__}")], where)
    _refuse_unknown_fields(data, ASG_KEYS, "a security group rule", where)
    problems: list[tuple[str, str]] = []
    protocol = data.get("protocol")
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        problems.append(("protocol", f"{show(protocol)} is not one of 'tcp', 'udp', 'icmp', 'all' (lower case)"))
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
                problems.append((key, f"only icmp takes an ICMP {key}, not {show(protocol)}"))
    log = data.get("log")
    log = False if log is None else log
    if not isinstance(log, bool):
        problems.append(("log", f"{show(log)} is not true or false"))
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(("description", f"{show(description)} is not text"))
    if problems:
        raise refused(problems, where)
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
        listed = ", ".join(show(key) for key in unknown)
        raise refused([("rule", f"unknown field(s) {listed}; {what} has {', '.join(known)}")], where)


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
        problems.append((name, f"unknown field(s) {', '.join(show(key) for key in unknown)}"))
        return None
    first, second = value.get(keys[0], 0), value.get(keys[1], 0)
    return (first, second)


def _asg_destinations(value: object, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    if not isinstance(value, str):
        why = "is missing" if value is None else f"{show(value)} is not text"
        problems.append(("destination", f"{why}; give an IP, a CIDR or a range first-last"))
        return ()
    if any(char.isspace() for char in value):
        problems.append(("destination", f"{show(value)} contains whitespace"))
        return ()
    parts = tuple(value.split(","))
    for part in parts:
        problem = destination_problem(part)[1]
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
    refused = ("ports", f"{show(value)} is not a port, a comma-separated list of ports, or a range low-high")
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
            problems.append(("ports", f"{show(value)}: ports must be in 1..65535"))
            return None, None
        if low >= high:
            problems.append(("ports", f"{show(value)}: a range must start below its end (write one port alone)"))
            return None, None
        return None, (low, high)
    texts = [text.strip() for text in value.split(",")]
    if not all(text.isdigit() for text in texts):
        problems.append(refused)
        return None, None
    ports = tuple(int(text) for text in texts)
    if not all(1 <= port <= 65535 for port in ports):
        problems.append(("ports", f"{show(value)}: ports must be in 1..65535"))
        return None, None
    return ports, None


def _asg_icmp(data: Mapping[str, Any], problems: list[tuple[str, str]]) -> tuple[int, int] | None:
    values = []
    for key in ("type", "code"):
        value = data.get(key)
        if value is None:
            problems.append((key, f"icmp needs an ICMP {key} (-1 for any)"))
        elif not is_int(value) or not -1 <= value <= 255:
            problems.append((key, f"{show(value)} is not an integer in -1..255"))
        else:
            values.append(value)
    return (values[0], values[1]) if len(values) == 2 else None
