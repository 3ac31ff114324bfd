"""The egress rule: one BBS ``SecurityGroupRule``, validated as BBS validates it.

:class:`EgressRule` is validated as Diego's BBS validates a
``SecurityGroupRule`` (``models/security_groups.go``, checked in
``_checks``), so a rule this library makes is never refused at task
creation (the original Go stager sent a protocol ``"TCP"``, which BBS refuses),
and operators' rules read from BBS or Cloud Controller JSON (:mod:`.formats`)
are checked before they reach a task. In a notebook it shows as a one-line
summary or a small table (:mod:`.display`).

:func:`trusted_rule` is the one fast way to build a rule without checking it
again, for :mod:`.compaction`, which makes thousands of rules from values it has
just made valid; the tests hold it equal to the public constructor.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from ..address import IPAddress
from ..errors import InvalidAddress, InvalidInput
from . import display, formats
from ._addresses import IPNetwork, as_ip, unmap
from ._checks import Intervals, check_port, check_rule, refused
from ._messages import show

__all__ = ["EgressRule", "trusted_rule"]


class _Printer(Protocol):
    """What ``_repr_pretty_`` needs of IPython's ``PrettyPrinter``, so that this package does not import it."""

    def text(self, obj: str) -> None: ...


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
    _intervals: Intervals = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems, intervals = check_rule(
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
            raise refused(problems, "")
        object.__setattr__(self, "_intervals", intervals)

    # -- matching --

    def allows(self, ip: str | IPAddress, port: int, *, protocol: str = "tcp") -> bool:
        """Whether this rule lets a ``protocol`` connection to ``ip:port`` out of the container.

        An IPv4-mapped IPv6 address is matched as the IPv4 address it maps to.
        A ``udp`` or ``icmp`` rule allows no TCP; an ``all`` rule allows any
        port; an ``icmp`` rule ignores the port.
        """
        address = unmap(as_ip(ip, where="allows"))
        why = check_port(port)
        if why:
            raise InvalidAddress(f"allows: {why}")
        if protocol not in ("tcp", "udp", "icmp"):
            raise InvalidInput(f"allows: protocol {show(protocol)} is not 'tcp', 'udp' or 'icmp'")
        if self.protocol != "all" and self.protocol != protocol:
            return False
        if self.protocol in ("tcp", "udp"):
            if self.ports is not None:
                if port not in self.ports:
                    return False
            elif self.port_range is not None and not self.port_range[0] <= port <= self.port_range[1]:
                return False
        version, value = address.version, int(address)
        flat = self._intervals  # (version, first, last) laid end to end
        triples = zip(flat[0::3], flat[1::3], flat[2::3], strict=True)
        return any(v == version and first <= value <= last for v, first, last in triples)

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

    # -- notebooks --

    def _repr_pretty_(self, printer: _Printer, cycle: bool) -> None:
        """IPython's pretty-printing protocol: one line, ``EgressRule tcp → 10.0.0.0/31 ports 8080``."""
        printer.text(display.summary(self))

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a small table of the rule's fields, every value HTML-escaped."""
        return display.html_table(self)

    # -- BBS JSON --

    def to_bbs(self) -> dict[str, Any]:
        """The rule as BBS JSON: ``log`` always, ``annotations`` only when there are some (as BBS writes it)."""
        return formats.to_bbs(self)

    @classmethod
    def from_bbs(cls, data: Mapping[str, Any], *, where: str = "") -> EgressRule:
        """Read a rule from BBS JSON (as decoded by :mod:`json`); ``where`` prefixes field paths in errors.

        ``from_bbs(x).to_bbs() == x`` for every valid ``x`` that has ``log``
        and no empty ``annotations`` list; a missing ``log`` is false, and
        ``null`` stands for a missing field, as Go's JSON decoder reads them.
        Unknown fields are refused (Go would ignore them: a typo such as
        ``port`` would silently drop the ports).
        """
        return formats.from_bbs(cls, data, where=where)

    # -- Cloud Controller ASG JSON --

    def to_asg(self) -> list[dict[str, Any]]:
        """The rule in Cloud Controller's security-group format: one dict per destination (the format holds one).

        ``ports`` is a string (``8080``, ``80,443``, ``1000-2000``; a one-port
        range is written as the port); ICMP's type and code are top-level
        fields; ``annotations`` have no place in that format and are left out.
        """
        return formats.to_asg(self)

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
        return formats.from_asg(cls, data, where=where)


_new = object.__new__
_set = object.__setattr__  # past the frozen __setattr__, as attrs' own __init__ writes a frozen class's slots


def trusted_rule(
    protocol: str,
    destinations: tuple[str, ...],
    ports: tuple[int, ...] | None,
    port_range: tuple[int, int] | None,
    intervals: Intervals,
) -> EgressRule:
    """A ``tcp``/``udp`` rule from values the caller has just made valid, without checking or parsing them again.

    For :func:`~registry_config.egress.rules_for`, which writes each
    destination from the interval it covers: parsing that text back would cost
    more than making it. The caller promises what the constructor would check:
    ``protocol`` is ``"tcp"`` or ``"udp"``; ``destinations`` a non-empty tuple
    of canonical IP, CIDR or range text (an IPv4-mapped address written as
    the IPv4 address it maps to), and ``intervals`` the ``(version, first,
    last)`` each covers, in the same order, laid end to end in one flat
    tuple of ints; exactly one of ``ports``
    (a non-empty tuple of ports in 1..65535) and ``port_range`` (a ``(start,
    end)`` pair, ``start <= end``). No ICMP, no log, no annotations, no
    description. The result equals, hashes and behaves as
    ``EgressRule(protocol, destinations, ports=ports, port_range=port_range)``:
    the tests hold it to that.
    """
    rule = _new(EgressRule)
    _set(rule, "protocol", protocol)
    _set(rule, "destinations", destinations)
    _set(rule, "ports", ports)
    _set(rule, "port_range", port_range)
    _set(rule, "icmp_info", None)
    _set(rule, "log", False)
    _set(rule, "annotations", ())
    _set(rule, "description", None)
    _set(rule, "_intervals", intervals)
    return rule
