"""Which registries a Docker daemon treats as insecure, decided as the daemon decides.

The daemon's ``insecure-registries`` (moby ``registry/config.go``:
``newServiceConfig``/``LoadInsecureRegistries``, ``isSecureIndex``) holds
``host[:port]`` keys and CIDR networks. A registry is insecure when its
exact ``host[:port]`` is listed (the port counts: ``localhost`` and
``localhost:5000`` are different keys), or when any address its host
resolves to lies in a listed network or in the loopback networks
``127.0.0.0/8`` and ``::1/128``, which are always insecure. A host that
does not resolve matches no network; Docker Hub (``docker.io``,
``index.docker.io``) is never insecure.

Where this differs from the daemon, it is to refuse or warn early about
what the daemon would silently ignore: an ``http://`` or ``https://``
prefix is stripped with a warning (a key with a scheme never matches
anything), an entry naming Docker Hub is dropped with a warning, and host
names are compared case-insensitively (DNS names are; the daemon's map
lookup is not, which only ever made an upper-cased entry useless).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable

import attrs

from .address import IPAddress, format_host, format_host_port, problem_character, split_host_port
from .errors import InvalidAddress
from .redact import quote
from .resolver import Resolver, resolve

__all__ = ["ALWAYS_INSECURE", "DOCKER_HUB_NAMES", "InsecurityPolicy"]

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_INSECURE: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
"""The loopback networks the daemon adds to every configuration."""

DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io"})
"""Names the daemon always treats as the official, secure index."""

_CIDR = re.compile(r"([0-9A-Fa-f:.]+)/([0-9]{1,3})\Z")


def _network_key(network: IPNetwork) -> tuple[int, int, int]:
    return network.version, int(network.network_address), network.prefixlen


def _host_key(entry: str) -> tuple[str, int]:
    host, port = split_host_port(entry)
    return host, port or 0


def _matchable(ip: IPAddress) -> tuple[IPAddress, ...]:
    """``ip``, and for an IPv4-mapped IPv6 address its IPv4 form too, as Go's ``IPNet.Contains`` sees it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip, ip.ipv4_mapped
    return (ip,)


@attrs.frozen(repr=False)
class InsecurityPolicy:
    """A Docker daemon's ``insecure-registries``, normalized, answering :meth:`is_insecure`.

    Build it with :meth:`from_entries`. Two policies with the same entries
    are equal, whatever resolver or warnings they carry.
    """

    hosts: tuple[str, ...]
    """The ``host[:port]`` keys: lower-cased, IPv6 in brackets when a port follows, sorted."""
    networks: tuple[IPNetwork, ...]
    """The CIDR networks listed (without the implicit loopback ones), sorted."""
    warnings: tuple[str, ...] = attrs.field(default=(), eq=False)
    """What was repaired or ignored while reading the entries (a stripped scheme, a Docker Hub entry)."""
    resolver: Resolver | None = attrs.field(default=None, eq=False)
    """How host names become addresses for the CIDR match (``None``: the system's)."""

    def __attrs_post_init__(self) -> None:
        # Built by hand, it must still hold only keys from_entries would have made: that is what keeps
        # a comma, a space or a scheme out of every flag and file rendered from a policy.
        if not isinstance(self.hosts, tuple) or not isinstance(self.networks, tuple):
            raise InvalidAddress("InsecurityPolicy: hosts and networks are tuples; build it with from_entries")
        for index, host in enumerate(self.hosts):
            shown = quote(host, entry=True, limit=120)
            problem = f"InsecurityPolicy: host #{index} {shown} is not normalized; use from_entries"
            try:
                normalized, _ = _read_entry(index, host)
            except InvalidAddress as exc:
                raise InvalidAddress(f"{problem} ({exc})") from exc
            if normalized != host or "/" in host:
                raise InvalidAddress(problem)
        for network in self.networks:
            if not isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                raise InvalidAddress(
                    f"InsecurityPolicy: a {type(network).__name__} is not an IP network; use from_entries"
                )
        if self.hosts != tuple(sorted(set(self.hosts), key=_host_key)) or self.networks != tuple(
            sorted(set(self.networks), key=_network_key)
        ):
            raise InvalidAddress("InsecurityPolicy: entries must be unique and sorted; use from_entries")

    @classmethod
    def from_entries(cls, entries: Iterable[str], *, resolver: Resolver | None = None) -> InsecurityPolicy:
        """Read ``insecure-registries`` entries: ``host``, ``host:port``, ``[v6]:port`` or a CIDR.

        Raises :class:`InvalidAddress` naming the first entry that cannot be
        used: a scheme other than http/https, a bad host, port or network.
        """
        if isinstance(entries, str):
            entries = [entries]
        try:
            items = list(entries)
        except TypeError:
            raise InvalidAddress(
                f"insecure registries must be a list of host[:port] or CIDR entries, got {type(entries).__name__}"
            ) from None
        hosts: set[str] = set()
        networks: set[IPNetwork] = set()
        warnings: list[str] = []
        for index, entry in enumerate(items):
            parsed, warning = _read_entry(index, entry)
            if warning is not None:
                warnings.append(warning)
                logger.warning("%s", warning)
            if isinstance(parsed, str):
                hosts.add(parsed)
            elif parsed is not None:
                networks.add(parsed)
        return cls(
            tuple(sorted(hosts, key=_host_key)),
            tuple(sorted(networks, key=_network_key)),
            warnings=tuple(warnings),
            resolver=resolver,
        )

    @property
    def entries(self) -> tuple[str, ...]:
        """Every entry in normalized text: the ``host[:port]`` keys, then the networks."""
        return self.hosts + tuple(str(network) for network in self.networks)

    def is_insecure(self, name: str) -> bool:
        """Whether the daemon would reach registry ``name`` (``host`` or ``host:port``) insecurely.

        Raises :class:`InvalidAddress` when ``name`` is not a ``host[:port]``.
        """
        host, port = split_host_port(name, where="registry name")
        if port is None and host in DOCKER_HUB_NAMES:
            return False
        key = format_host(host) if port is None else format_host_port(host, port)
        if port is None and ":" in host:
            key = host  # a bare IPv6 key is stored without brackets
        if key in self.hosts:
            return True
        try:
            addresses = resolve(host, self.resolver)
        except OSError:
            return False  # the daemon treats a name it cannot resolve as secure
        networks = ALWAYS_INSECURE + self.networks
        return any(
            candidate in network
            for address in addresses
            for candidate in _matchable(address)
            for network in networks
            if candidate.version == network.version
        )

    def __str__(self) -> str:
        listed = ", ".join(self.entries) or "none"
        return f"insecure registries: {listed} (loopback 127.0.0.0/8 and ::1/128 always)"

    def __repr__(self) -> str:
        options = ", resolver=..." if self.resolver is not None else ""
        return f"InsecurityPolicy.from_entries({list(self.entries)!r}{options})"


def _read_entry(index: int, entry: object) -> tuple[str | IPNetwork | None, str | None]:
    """One entry, normalized: a ``host[:port]`` key, a network, or ``None`` for one to drop; and a warning.

    The entry is only ever echoed redacted (``shown``): an entry pasted with
    ``user:password@`` must not put the password in a message or a warning.
    """
    where = f"insecure registry #{index}"
    if not isinstance(entry, str):
        raise InvalidAddress(f"{where}: expected text such as 'host:port' or '10.0.0.0/8', got {type(entry).__name__}")
    shown = quote(entry, entry=True, limit=120)
    if "@" in entry:
        raise InvalidAddress(f"{where} {shown} holds user-info ('@'); give host[:port] or a CIDR, nothing else")
    bad = problem_character(entry)
    if bad is not None:
        raise InvalidAddress(f"{where} {shown} {bad}; give one host[:port] or CIDR per entry")
    warning = None
    text = entry
    scheme, sep, rest = entry.partition("://")
    if sep:
        if scheme.lower() not in ("http", "https"):
            raise InvalidAddress(
                f"{where} {shown} should not contain '://': scheme {quote(scheme, limit=40)} is not allowed; "
                "give host[:port] or a CIDR"
            )
        warning = (
            f"{where} {shown} should not contain {scheme + '://'!r} (the Docker daemon would never match it); "
            f"using {quote(rest, entry=True, limit=120)}"
        )
        text = rest
        if "://" in text:
            raise InvalidAddress(f"{where} {shown} should not contain '://' twice; give host[:port] or a CIDR")
    if "/" in text:
        return _read_network(where, shown, text), warning
    host, port = split_host_port(text, where=f"{where} {shown}")
    if port is None and host in DOCKER_HUB_NAMES:
        hub = f"{where} {shown} names Docker Hub, which the daemon never treats as insecure; ignored"
        return None, hub if warning is None else f"{warning}; {hub}"
    if port is None:
        return host, warning  # a bare IPv6 address stays unbracketed, as Docker keys it
    return format_host_port(host, port), warning


def _read_network(where: str, shown: str, text: str) -> IPNetwork:
    """A CIDR as Go's ``net.ParseCIDR`` reads it: ``address/prefix-length``, host bits masked off."""
    match = _CIDR.match(text)
    if match is None:
        raise InvalidAddress(
            f"{where} {shown} is neither host[:port] nor a CIDR network (such as 10.0.0.0/8 or fd00::/8)"
        )
    try:
        return ipaddress.ip_network(f"{match.group(1)}/{int(match.group(2))}", strict=False)
    except ValueError as exc:
        raise InvalidAddress(f"{where} {shown} is not a valid CIDR network: {exc}") from exc
