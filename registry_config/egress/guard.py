"""The egress guard: which instance addresses a staging container may be opened to, and why not the others.

Discovery (Consul's catalog, DNS) answers with addresses that whoever can
register a service instance, or poison the answer, chooses. Opened blindly,
they would let the untrusted code in a staging container reach the cloud
metadata service at 169.254.169.254 (instance credentials), the cell's own
loopback services, other tenants, or the public internet (exfiltration).
:class:`EgressGuard` refuses, before any rule is made, every address outside
the networks an operator approved: private networks by default
(:data:`DEFAULT_ALLOWED_NETWORKS`), and never loopback, link-local, metadata,
unspecified, multicast, broadcast or reserved addresses unless a listed
network names them explicitly.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
from collections.abc import Iterable
from typing import Literal

import attrs

from ..address import IPAddress
from ..discovery.model import ServiceInstance
from ..errors import EgressPolicyError, InvalidAddress, InvalidInput
from ._addresses import IPNetwork, as_ip, embedded_ipv4, unmap
from ._messages import show

__all__ = ["DEFAULT_ALLOWED_NETWORKS", "EgressGuard", "RejectedInstance"]

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
            raise InvalidAddress(f"{where}: {show(value)} is not an IP network; {hint}")
        try:
            network = ipaddress.ip_network(value)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise InvalidAddress(f"{where}: {show(value)} is not an IP network; {hint}") from exc
            raise InvalidAddress(
                f"{where}: {show(value)} has host bits set; did you mean {loose}? (or list the single address)"
            ) from exc
    else:
        raise InvalidAddress(f"{where}: {show(value)} is not an IP network; give text such as '10.0.0.0/8'")
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
        raise InvalidInput(f"on_violation must be 'drop' or 'error', got {show(value)}")


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

    An address is allowed when both hold:

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

    IPv6 addresses that carry an IPv4 address are judged by it. An
    IPv4-mapped address (``::ffff:a.b.c.d``) is the IPv4 address itself, and
    is judged as that address alone. A NAT64 (``64:ff9b::/96``), 6to4
    (``2002::/16``) or IPv4-compatible (``::/96``, but not ``::`` or ``::1``)
    address reaches its IPv4 address through a gateway or relay, so both the
    IPv6 address and the IPv4 address it carries must be allowed, each by the
    rule above: ``["0.0.0.0/0", "::/0"]`` still refuses
    ``64:ff9b::a9fe:a9fe``, ``2002:a9fe:a9fe::1`` and ``::a9fe:a9fe`` (the
    metadata service), and ``::/0`` alone opens none of these forms, since no
    IPv4 network is listed. A listed IPv6 network never opens the IPv4
    address inside: list the IPv4 network as you would for the plain address.

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
        """Why ``address`` is refused, as a sentence naming its class; ``None`` when it is allowed.

        A refused IPv6 address that carries an IPv4 address is named with its
        form and that address, for example ``64:ff9b::a9fe:a9fe (NAT64 form of
        169.254.169.254) is link-local (the cloud metadata service); ...``.
        """
        given = as_ip(address, where="egress guard")
        ip = unmap(given)
        if ip is not given:
            return self._judge(ip, given, "IPv4-mapped")
        if ip.version == 6:
            embedded = embedded_ipv4(ip)
            if embedded is not None:
                inner, form = embedded
                # Where the packets end up first: that refusal is the one an operator must see.
                why = self._judge(inner, given, f"{form} form of")
                if why is None:
                    why = self._judge(ip, given, say_public=False)
                    if why is not None:
                        why += (
                            f"; it is the {form} form of {inner}, which they allow, but the IPv6 address itself "
                            "must be allowed too"
                        )
                return why
        return self._judge(ip, given)

    def _judge(
        self, ip: IPAddress, given: IPAddress, form: str | None = None, *, say_public: bool = True
    ) -> str | None:
        """The class docstring's rule for one address, ``ip``, read from ``given`` (in ``form``, if not itself).

        The refusal names ``given``, and ``form`` and ``ip`` after it when
        ``ip`` was read out of it (``::ffff:a9fe:a9fe (IPv4-mapped
        169.254.169.254)``). ``say_public=False`` leaves out "a public
        address" (an embedded form's IPv6 side: where it leads may well be
        private). Text is made only for a refusal: ``check`` calls this for
        every IPv6 address, and writing one costs more than judging it.
        """
        version, value = ip.version, int(ip)
        special = None
        for v, first, last, index in _SPECIAL_INTERVALS:
            if v == version and first <= value <= last:
                special = index
                break
        covering = [index for v, first, last, index in self._allowed if v == version and first <= value <= last]
        if special is None and covering:
            return None  # the common case first: a plain address inside an allowed network
        label = str(given) if form is None else f"{given} ({form} {ip})"
        if special is None:
            kind = " a public address;" if say_public and ip.is_global else ""  # is_global is slow: only here
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
