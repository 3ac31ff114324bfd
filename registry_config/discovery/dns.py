"""Finding registry instances through DNS: Consul's DNS interface, or plain DNS names.

Many sites reach Consul only through its DNS interface (port 8600, or port 53
behind a forwarder), and some keep their registries in plain DNS. This
backend asks the nameservers directly with :mod:`dns.query` rather than
through :mod:`dns.resolver`: it needs EDNS0, a TCP retry on truncation (Consul
answers only 3 SRV records over plain UDP, and a fleet is larger), a port
other than 53, and the additional section of the answer (the SRV targets'
addresses), none of which a stub resolver hands back.

``dnspython`` is an optional dependency (``pip install registry-config[dns]``)
and is imported when a backend is made, never when this module is.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..address import IPAddress, format_host_port, is_hostname, parse_ip, parse_port, split_host_port
from ..errors import (
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryQueryError,
    DiscoveryUnavailable,
    InvalidAddress,
    InvalidInput,
    MissingDependencyError,
    RegistryConfigError,
)
from ..redact import quote, redact, shorten
from ..resolver import Resolver, resolve
from .backend import BackendBase, StopSignal, poll_watch
from .model import Discovery, ServiceInstance, ServiceQuery

if TYPE_CHECKING:
    import dns.message
    import dns.name
    import dns.rrset

__all__ = ["DnsBackend"]

log = logging.getLogger("registry_config.discovery.dns")

RESOLV_CONF = "/etc/resolv.conf"
"""Where the system's nameservers are read from when none are given (a module constant so tests can point it away)."""

EDNS_PAYLOAD = 4096
"""The UDP payload we announce: big enough for a 50-instance SRV answer, small enough not to fragment badly."""

RECORDS = ("auto", "srv", "a")

DEFAULT_DEADLINE = 10.0
"""Seconds one ``discover`` may take in all, every exchange and every server included."""

_INSTALL_HINT = "the DNS backend needs dnspython, which is not installed: pip install 'registry-config[dns]'"


def _import_dns() -> Any:
    """Import dnspython on first use, so that the library works without the extra installed."""
    try:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.name
        import dns.nameserver
        import dns.query
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.resolver
    except ImportError as exc:
        raise MissingDependencyError(_INSTALL_HINT) from exc
    return dns


@attrs.frozen
class _Server:
    """One nameserver to ask: an IP address and a port."""

    address: str
    port: int

    def __str__(self) -> str:
        return format_host_port(self.address, self.port)


@attrs.frozen
class _Answer:
    """One answered question: what came back, from whom, and how."""

    server: _Server
    response: dns.message.Message
    rrset: dns.rrset.RRset | None
    nxdomain: bool
    ttl: int | None
    tcp: bool


def _check_positive(value: object, *, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        shown = repr(value) if isinstance(value, (int, float)) else f"(a {type(value).__name__})"
        raise InvalidInput(f"{what} must be a positive number of seconds, got {shown}")
    return float(value)


def _label(text: str, *, what: str) -> str:
    """A single DNS label (letters, digits, '-' and '_'), or :class:`DiscoveryQueryError`."""
    if "." in text or not is_hostname(text):
        raise DiscoveryQueryError(
            f"DNS backend: {what} {text!r} cannot be asked through Consul's DNS interface: "
            "it must be one label of letters, digits, '-' and '_'"
        )
    return text


class DnsBackend(BackendBase):
    """Instances from DNS: Consul's SRV answers, or A/AAAA records with the query's default port.

    The name asked for. With ``domain`` set (default ``"consul"``), a query
    for service ``registry`` with tag ``primary`` in datacenter ``dc1`` asks
    ``primary.registry.service.dc1.consul``, Consul's own naming. Consul's DNS
    filters on one tag only, so a query with several tags is refused
    (:class:`InvalidInput`) rather than answered with instances that may lack
    the other tags: ask with one tag, or use ``ConsulBackend``. A query name
    that holds a dot cannot be a Consul service name, so it is already a DNS
    name (``registry.example.com``, the registry URL's own host) and is asked
    as given. With ``domain=None`` the query's name is always asked as given;
    a tag or datacenter cannot be honoured by plain DNS and is refused. A
    name that is an IP literal is its own single instance. Names are always
    absolute: no search domain from ``resolv.conf`` is appended.

    The records. ``record="auto"`` asks SRV first: ports come from the
    records, addresses from the answer's additional section (glue), and
    targets without glue are asked for A and AAAA. When the name has no SRV
    record (an empty answer), it falls back to A and AAAA with the query's
    ``default_port``. NXDOMAIN ends the search at once: the name has no
    records of any type. ``"srv"`` and ``"a"`` force one kind.

    The transport. Every question goes over UDP with EDNS0 (payload 4096)
    and is asked again over TCP when the answer comes back truncated. A UDP
    answer whose SRV targets lack glue is asked again over TCP before the
    targets are looked up one by one: servers (dnsmasq, Consul) drop
    additional records silently to fit a datagram, and TCP has room for all
    of them. Each UDP or TCP exchange is bounded by ``timeout`` seconds, and
    one ``discover`` in all (every exchange, every server, every SRV target
    asked) by ``deadline`` seconds: a hostile answer naming a thousand targets
    without glue cannot hold a caller for a thousand timeouts. Past the
    deadline, :class:`DiscoveryUnavailable` says so.

    The servers. ``nameservers`` are ``ip``, ``ip:port``, ``[v6]:port`` or
    ``host[:port]``, asked in order until one answers; a missing port means
    ``port``. ``resolver`` (the library's injectable host resolver, default
    the system's) is used only to turn nameserver *host names* into
    addresses, on every ``discover``; it is never used for the names asked,
    which always go to the nameservers. ``nameservers=None`` reads the
    system's nameservers (``/etc/resolv.conf``) on every ``discover``.

    What comes back. NXDOMAIN or an empty answer is an authoritative "no
    instances": an empty :class:`Discovery`. SERVFAIL, REFUSED, a timeout or
    an unreachable server raise :class:`DiscoveryUnavailable` naming the
    server, the name and the cause; an answer that is not valid DNS (or that
    dnspython cannot read, whatever it raises) raises
    :class:`DiscoveryProtocolError`. Records that cannot become an instance
    (port 0 with no default port, a target that is not a host name, the
    "." target of RFC 2782) are skipped, each with a warning in the
    :class:`Discovery`.

    ``watch`` asks again after the answer's smallest TTL, kept within
    ``[min_interval, max_interval]`` seconds (Consul's default TTL is 0, so
    the lower bound rules there); with no TTL to go by (an empty answer with
    no SOA), it asks again every ``poll_interval`` seconds within those bounds.

    A backend keeps no socket and no state between calls: one backend may
    serve many threads at once, and ``close`` has nothing to free.
    """

    def __init__(
        self,
        nameservers: Sequence[str] | str | None = None,
        *,
        port: int = 53,
        domain: str | None = "consul",
        record: str = "auto",
        timeout: float = 2.0,
        deadline: float = DEFAULT_DEADLINE,
        resolver: Resolver | None = None,
        min_interval: float = 1.0,
        max_interval: float = 60.0,
    ) -> None:
        self._dns = _import_dns()
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidAddress(f"DNS backend: port {port!r} is not a number in 1..65535")
        self._port = port
        if isinstance(nameservers, str):
            nameservers = [nameservers]
        self._nameservers: tuple[tuple[str, int], ...] | None = None
        if nameservers is not None:
            entries = []
            for i, entry in enumerate(nameservers):
                host, given = split_host_port(entry, where=f"DNS nameserver #{i}")
                entries.append((host, port if given is None else given))
            if not entries:
                raise InvalidInput("DNS backend: nameservers is empty; give at least one, or None for the system's")
            self._nameservers = tuple(entries)
        if domain is not None:
            domain = domain.strip(".").lower() if isinstance(domain, str) else domain
            if not isinstance(domain, str) or not is_hostname(domain):
                raise InvalidInput(
                    f"DNS backend: domain {quote(domain, limit=80)} is not a DNS name; give Consul's domain "
                    "(usually 'consul') or None for plain DNS names"
                )
        self._domain = domain
        if record not in RECORDS:
            raise InvalidInput(f"DNS backend: record {record!r} is not one of {', '.join(RECORDS)}")
        self._record = record
        self._timeout = _check_positive(timeout, what="DNS backend: timeout")
        self._deadline = _check_positive(deadline, what="DNS backend: deadline")
        self._min_interval = _check_positive(min_interval, what="DNS backend: min_interval")
        self._max_interval = _check_positive(max_interval, what="DNS backend: max_interval")
        if self._min_interval > self._max_interval:
            raise InvalidInput(
                f"DNS backend: min_interval {min_interval!r} is above max_interval {max_interval!r}; swap them"
            )
        self._resolver = resolver

    # ------------------------------------------------------------------ construction from a URL

    @classmethod
    def from_url(cls, url: str, *, resolver: Resolver | None = None) -> DnsBackend:
        """Make a backend from ``dns://HOST[:PORT][,HOST[:PORT]...][?domain=&record=&timeout=&deadline=]``.

        ``dns:`` (or ``dns://``) uses the system's nameservers; ``domain=``
        left empty means plain DNS names (``domain=None``); ``port`` is the
        default port of servers given without one. ``min_interval`` and
        ``max_interval`` bound the watch's polling.
        """
        if not isinstance(url, str):
            raise InvalidInput(f"DNS backend URL must be text, got {type(url).__name__}")
        shown = _shown(url)
        scheme, sep, rest = url.partition(":")
        if not sep or scheme.lower() != "dns":
            raise InvalidInput(
                f"DNS backend URL {shown!r}: expected dns://HOST[:PORT] or dns: for the system's servers"
            )
        if "@" in url:
            # Before any part is read (and echoed): a password may hold '/', '?' or '#'.
            raise InvalidInput(f"DNS backend URL {shown!r}: user-info ('...@') is not allowed")
        rest, _, fragment = rest.partition("#")
        if fragment:
            raise InvalidInput(f"DNS backend URL {shown!r}: a fragment ('#...') is not allowed")
        rest, _, query_text = rest.partition("?")
        authority = ""
        if rest.startswith("//"):
            authority, slash, path = rest[2:].partition("/")
            path = slash + path
        else:
            path = rest
        if "@" in authority:
            raise InvalidInput(f"DNS backend URL {shown!r}: user-info ('...@') is not allowed")
        if path not in ("", "/"):
            raise InvalidInput(
                f"DNS backend URL {shown!r}: path {quote(path, limit=80)} is not allowed; use dns://HOST:PORT?options"
            )
        options: dict[str, str] = {}
        try:
            pairs = urllib.parse.parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
        except ValueError as exc:
            raise InvalidInput(
                f"DNS backend URL {shown!r}: cannot read the options ({quote(exc, entry=True, limit=80)})"
            ) from None
        known = ("domain", "record", "timeout", "deadline", "port", "min_interval", "max_interval")
        for key, value in pairs:
            if key not in known:
                raise InvalidInput(
                    f"DNS backend URL {shown!r}: unknown option {quote(key, limit=40)}; known: {', '.join(known)}"
                )
            if key in options:
                raise InvalidInput(f"DNS backend URL {shown!r}: option {quote(key, limit=40)} is given twice")
            options[key] = value
        kwargs: dict[str, Any] = {"resolver": resolver}
        if "domain" in options:
            kwargs["domain"] = options["domain"] or None
        if "record" in options:
            kwargs["record"] = options["record"]
        for key in ("timeout", "deadline", "min_interval", "max_interval"):
            if key in options:
                kwargs[key] = _float_option(shown, key, options[key])
        if "port" in options:
            kwargs["port"] = _port_option(shown, options["port"])
        servers = authority.split(",") if authority else None
        return cls(servers, **kwargs)

    # ------------------------------------------------------------------ the name asked

    def name_for(self, query: ServiceQuery) -> str:
        """The DNS name this backend asks for ``query`` (absolute, with the final dot)."""
        name = query.name
        plain = self._domain is None or "." in name or parse_ip(name) is not None
        if plain:
            why = "domain=None asks plain DNS names" if self._domain is None else f"{name!r} is a plain DNS name"
            if query.tags:
                raise DiscoveryQueryError(
                    f"DNS backend: {why}, which cannot filter on tags {list(query.tags)!r}; "
                    "drop the tags, or ask a Consul service name with domain='consul'"
                )
            if query.datacenter is not None:
                raise DiscoveryQueryError(
                    f"DNS backend: {why}, which cannot select datacenter {query.datacenter!r}; "
                    "drop the datacenter, or ask a Consul service name with domain='consul'"
                )
            if parse_ip(name) is None and not is_hostname(name.rstrip(".")):
                raise DiscoveryQueryError(
                    f"DNS backend: {name!r} is not a DNS name (letters, digits, '-', '_' and dots)"
                )
            return name.rstrip(".").lower() + "."
        if len(query.tags) > 1:
            raise DiscoveryQueryError(
                f"DNS backend: Consul's DNS interface filters on one tag, and the query for {name!r} has "
                f"{len(query.tags)} ({', '.join(query.tags)}); ask with one tag, or use the Consul backend"
            )
        labels = [_label(query.tags[0], what="tag")] if query.tags else []
        labels += [_label(name, what="service name"), "service"]
        if query.datacenter is not None:
            labels.append(_label(query.datacenter, what="datacenter"))
        labels.append(str(self._domain))
        text = ".".join(labels).lower() + "."
        if len(text) > 254:
            raise DiscoveryQueryError(f"DNS backend: {text!r} is longer than a DNS name may be (253 characters)")
        return text

    # ------------------------------------------------------------------ discovery

    def discover(self, query: ServiceQuery) -> Discovery:
        return self._discover(query)[0]

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """Yield a first snapshot, then one each time the instances change; ask again after the TTL."""
        last_ttl: list[int | None] = [None]

        def discover(q: ServiceQuery) -> Discovery:
            discovery, last_ttl[0] = self._discover(q)
            return discovery

        return poll_watch(discover, query, stop=stop, interval=lambda _: self.interval_for(last_ttl[0]))

    def interval_for(self, ttl: int | None) -> float:
        """How long ``watch`` waits before asking again, given the answer's smallest TTL."""
        wanted = self.poll_interval if ttl is None else float(ttl)
        return min(self._max_interval, max(self._min_interval, wanted))

    def _discover(self, query: ServiceQuery) -> tuple[Discovery, int | None]:
        expires = time.monotonic() + self._deadline
        try:
            return self._discover_by(query, expires)
        except RegistryConfigError:
            raise
        except Exception as exc:  # a hostile answer dnspython reads but we cannot: still one of ours
            raise DiscoveryProtocolError(
                f"DNS backend: the answer for {query.name!r} cannot be read ({type(exc).__name__}: "
                f"{quote(exc, limit=120)}); is the server a DNS server?"
            ) from exc

    def _discover_by(self, query: ServiceQuery, expires: float) -> tuple[Discovery, int | None]:
        name = self.name_for(query)
        literal = parse_ip(name.rstrip("."))
        if literal is not None:
            port = self._default_port(query, name)
            return Discovery(query, [ServiceInstance(literal, port)], source="dns"), None
        lib = self._dns
        qname = lib.name.from_text(name)
        servers = self._servers()
        warnings: list[str] = []
        ttls: list[int] = []
        instances: list[ServiceInstance] = []
        source = f"dns://{servers[0]}"
        if self._record in ("auto", "srv"):
            answer = self._ask(servers, qname, lib.rdatatype.SRV, expires=expires)
            source = f"dns://{answer.server}"
            if answer.nxdomain or answer.rrset is not None or self._record == "srv":
                _add_ttl(ttls, answer.ttl)
                if answer.rrset is not None:
                    instances = self._from_srv(query, servers, qname, answer, warnings, ttls, expires)
                return Discovery(query, instances, source=source, warnings=warnings), _min(ttls)
        addresses, ttl, server = self._addresses(servers, qname, expires)
        source = f"dns://{server}"
        _add_ttl(ttls, ttl)
        if addresses:
            port = self._default_port(query, name)
            instances = [ServiceInstance(address, port) for address in addresses]
        return Discovery(query, instances, source=source, warnings=warnings), _min(ttls)

    def _default_port(self, query: ServiceQuery, name: str) -> int:
        if query.default_port is None:
            raise InvalidInput(
                f"DNS backend: {name} has address records but no port, and the query for {query.name!r} has "
                "no default_port; pass default_port (build_plan passes the registry URL's port)"
            )
        return query.default_port

    def _from_srv(
        self,
        query: ServiceQuery,
        servers: Sequence[_Server],
        qname: dns.name.Name,
        answer: _Answer,
        warnings: list[str],
        ttls: list[int],
        expires: float,
    ) -> list[ServiceInstance]:
        lib = self._dns
        shown = qname.to_text(omit_final_dot=True)
        wanted, skipped = self._srv_targets(query, shown, answer)
        glue = _glue(lib, answer.response)
        if not answer.tcp and any(target not in glue for target in wanted):
            # The server may have dropped additional records to fit the datagram: TCP has room for all.
            # Should TCP fail (a firewall), the UDP answer is complete but for glue: ask the targets instead.
            try:
                again = self._ask([answer.server], qname, lib.rdatatype.SRV, expires=expires, tcp=True)
            except DiscoveryError as exc:
                log.debug("asking %s again over TCP failed (%s); asking the SRV targets one by one", shown, exc)
            else:
                if again.rrset is not None:
                    answer = again
                    wanted, skipped = self._srv_targets(query, shown, answer)
                    glue = _glue(lib, answer.response)
        warnings.extend(skipped)
        _add_ttl(ttls, answer.ttl)
        instances: list[ServiceInstance] = []
        for target, (node, ports) in wanted.items():
            ttl: int | None
            if target in glue:
                addresses, ttl = glue[target]
            else:
                addresses, ttl, _ = self._addresses([answer.server, *servers], target, expires)
                if not addresses:
                    warnings.append(
                        f"SRV record {shown} -> {target.to_text(omit_final_dot=True)}: the target has no A or "
                        "AAAA record; skipped"
                    )
            _add_ttl(ttls, ttl)
            instances.extend(ServiceInstance(address, port, node=node) for address in addresses for port in ports)
        return instances

    def _srv_targets(
        self, query: ServiceQuery, shown: str, answer: _Answer
    ) -> tuple[dict[dns.name.Name, tuple[str | None, list[int]]], list[str]]:
        """Each usable SRV target with its node name and ports, and a warning for each unusable record."""
        lib = self._dns
        wanted: dict[dns.name.Name, tuple[str | None, list[int]]] = {}
        warnings: list[str] = []
        for rdata in answer.rrset or ():
            target = rdata.target
            text = target.to_text(omit_final_dot=True)
            where = f"SRV record {shown} -> {text!r} port {rdata.port}"
            if target == lib.name.root:
                warnings.append(f"{where}: target '.' means the service is not offered there (RFC 2782); skipped")
                continue
            if not target.is_absolute() or not is_hostname(text):
                warnings.append(f"{where}: the target is not a host name; skipped")
                continue
            port = query.port_or_default(rdata.port)
            if port is None:
                warnings.append(f"{where}: port 0 and the query has no default_port; skipped")
                continue
            key = target.canonicalize()
            ports = wanted.setdefault(key, (self._node_name(text), []))[1]
            if port not in ports:
                ports.append(port)
        return wanted, warnings

    def _node_name(self, target: str) -> str:
        """Consul's node name for ``<node>.node[.<dc>].<domain>``; otherwise the target host itself."""
        labels = target.lower().split(".")
        if self._domain is not None:
            suffix = self._domain.split(".")
            if labels[-len(suffix) :] == suffix:
                rest = labels[: -len(suffix)]
                if len(rest) >= 2 and rest[1] == "node" and len(rest) <= 3:
                    return rest[0]
        return target.lower()

    def _addresses(
        self, servers: Sequence[_Server], qname: dns.name.Name, expires: float
    ) -> tuple[list[IPAddress], int | None, _Server]:
        """The A and AAAA addresses of ``qname`` (CNAMEs followed), their smallest TTL, and who answered."""
        lib = self._dns
        found: list[IPAddress] = []
        ttls: list[int] = []
        server = servers[0]
        for rdtype in (lib.rdatatype.A, lib.rdatatype.AAAA):
            answer = self._ask(servers, qname, rdtype, expires=expires)
            server = answer.server
            _add_ttl(ttls, answer.ttl)
            if answer.nxdomain:
                break
            found.extend(ipaddress.ip_address(rdata.address) for rdata in answer.rrset or ())
        return found, _min(ttls), server

    # ------------------------------------------------------------------ talking to nameservers

    def _servers(self) -> list[_Server]:
        """The nameservers to ask, in order, as addresses (host names resolved now)."""
        if self._nameservers is None:
            return self._system_servers()
        servers: list[_Server] = []
        for host, port in self._nameservers:
            try:
                addresses = resolve(host, self._resolver)
            except OSError as exc:
                raise DiscoveryUnavailable(
                    f"DNS backend: cannot resolve nameserver {host!r} ({quote(exc, limit=120)}); "
                    "give its IP address instead"
                ) from exc
            servers.extend(_Server(str(address), port) for address in addresses)
        if not servers:
            raise DiscoveryUnavailable("DNS backend: the nameservers resolved to no address; give IP addresses")
        return servers

    def _system_servers(self) -> list[_Server]:
        lib = self._dns
        try:
            system = lib.resolver.Resolver(filename=RESOLV_CONF)
        except lib.resolver.NoResolverConfiguration as exc:
            raise DiscoveryUnavailable(
                f"DNS backend: no system nameserver to ask ({type(exc).__name__}: {RESOLV_CONF} is missing or "
                "lists none); "
                "give the servers, e.g. dns://127.0.0.1:8600 for a local Consul agent"
            ) from exc
        except (OSError, ValueError, lib.exception.DNSException) as exc:
            raise DiscoveryUnavailable(
                f"DNS backend: cannot read {RESOLV_CONF} ({quote(exc, limit=120)}); give the servers"
            ) from exc
        servers: list[_Server] = []
        for entry in system.nameservers:
            if isinstance(entry, str):
                address, port = entry, system.nameserver_ports.get(entry, system.port)
            elif isinstance(entry, lib.nameserver.Do53Nameserver):
                address, port = entry.address, entry.port
            else:
                continue  # DNS over HTTPS/TLS/QUIC: not what Consul speaks
            ip = parse_ip(address)
            if ip is not None:
                servers.append(_Server(str(ip), port))
        if not servers:
            raise DiscoveryUnavailable(
                f"DNS backend: {RESOLV_CONF} lists no plain DNS nameserver by IP address; give the servers"
            )
        return servers

    def _ask(
        self, servers: Sequence[_Server], qname: dns.name.Name, rdtype: int, *, expires: float, tcp: bool = False
    ) -> _Answer:
        """Ask each server in turn until one answers; raise what went wrong when none does."""
        failures: list[DiscoveryError] = []
        seen: set[_Server] = set()
        for server in servers:
            if server in seen:
                continue
            seen.add(server)
            try:
                return self._ask_one(server, qname, rdtype, expires=expires, tcp=tcp)
            except DiscoveryError as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        unavailable = any(isinstance(failure, DiscoveryUnavailable) for failure in failures)
        kind: type[DiscoveryError] = DiscoveryUnavailable if unavailable else DiscoveryProtocolError
        raise kind(
            f"no DNS server answered {self._question(qname, rdtype)}: " + "; ".join(str(f) for f in failures),
            causes=failures,
        )

    def _question(self, qname: dns.name.Name, rdtype: int) -> str:
        return f"{qname.to_text(omit_final_dot=True)} {self._dns.rdatatype.to_text(rdtype)}"

    def _time_left(self, expires: float, where: str) -> float:
        """This exchange's timeout: ``timeout``, or what is left of the deadline when that is less."""
        left = expires - time.monotonic()
        if left <= 0:
            raise DiscoveryUnavailable(
                f"{where}: not asked, the discovery's deadline of {self._deadline:g}s has passed; "
                "check the servers (a slow or unreachable one costs a timeout each), or raise the deadline"
            )
        return min(self._timeout, left)

    def _exchange(self, query: dns.message.Message, server: _Server, *, expires: float, tcp: bool, where: str) -> Any:
        """One question and its answer: UDP, then TCP when the answer is truncated; each leg within the deadline."""
        lib = self._dns
        if not tcp:
            try:
                response = lib.query.udp(
                    query,
                    server.address,
                    timeout=self._time_left(expires, where),
                    port=server.port,
                    raise_on_truncation=True,
                )
            except lib.message.Truncated:
                pass
            else:
                return response, False
        response = lib.query.tcp(query, server.address, timeout=self._time_left(expires, where), port=server.port)
        return response, True

    def _ask_one(self, server: _Server, qname: dns.name.Name, rdtype: int, *, expires: float, tcp: bool) -> _Answer:
        lib = self._dns
        question = self._question(qname, rdtype)
        where = f"DNS server {server} asked {question}"
        use_edns: int | bool = 0
        for _ in range(2):
            query = lib.message.make_query(qname, rdtype, use_edns=use_edns, payload=EDNS_PAYLOAD)
            started = time.monotonic()
            try:
                response, used_tcp = self._exchange(query, server, expires=expires, tcp=tcp, where=where)
            except lib.exception.Timeout as exc:
                waited = time.monotonic() - started
                within = f"{self._timeout:g}s"
                if waited < self._timeout * 0.99:
                    within = (
                        f"{waited:.2g}s, what was left of the discovery's deadline of {self._deadline:g}s "
                        "(raise the deadline if the servers are slow)"
                    )
                raise DiscoveryUnavailable(
                    f"{where}: no answer within {within}; check that the server runs and listens on that "
                    "address and port (Consul's DNS is on port 8600 by default)"
                ) from exc
            except (OSError, EOFError) as exc:
                raise DiscoveryUnavailable(
                    f"{where}: cannot reach it ({type(exc).__name__}: {quote(exc, limit=120)}); "
                    "check the address and port"
                ) from exc
            except DiscoveryError:
                raise
            except Exception as exc:  # whatever dnspython raises reading a hostile answer is ours
                raise DiscoveryProtocolError(
                    f"{where}: the answer is not valid DNS ({type(exc).__name__}: "
                    f"{quote(exc, limit=120) if str(exc) else 'malformed message'}); is this port a DNS server?"
                ) from exc
            rcode = response.rcode()
            if rcode == lib.rcode.FORMERR and use_edns is not False:
                use_edns = False  # an old server that does not speak EDNS0: ask once more without it
                continue
            break
        if rcode in (lib.rcode.SERVFAIL, lib.rcode.REFUSED, lib.rcode.NOTIMP):
            raise DiscoveryUnavailable(
                f"{where}: it answered {lib.rcode.to_text(rcode)}; the server cannot answer for this name now "
                "(is it the right server, and does it serve this domain?)"
            )
        if rcode not in (lib.rcode.NOERROR, lib.rcode.NXDOMAIN):
            raise DiscoveryProtocolError(f"{where}: unexpected response code {lib.rcode.to_text(rcode)}")
        if response.flags & lib.flags.TC:
            raise DiscoveryProtocolError(f"{where}: the answer is truncated even over TCP")
        try:
            chain = response.resolve_chaining()
        except lib.exception.DNSException as exc:
            raise DiscoveryProtocolError(
                f"{where}: the answer does not hold together ({type(exc).__name__}: {exc or 'bad chain'})"
            ) from exc
        ttl: int | None = chain.minimum_ttl
        if chain.answer is None and not any(rrset.rdtype == lib.rdatatype.SOA for rrset in response.authority):
            ttl = None  # no SOA: nothing says how long "nothing" lasts
        return _Answer(
            server,
            response,
            chain.answer,
            rcode == lib.rcode.NXDOMAIN,
            ttl,
            used_tcp,
        )

    def __repr__(self) -> str:
        servers = None if self._nameservers is None else [format_host_port(h, p) for h, p in self._nameservers]
        deadline = "" if self._deadline == DEFAULT_DEADLINE else f", deadline={self._deadline:g}"
        return (
            f"DnsBackend({servers!r}, domain={self._domain!r}, record={self._record!r}, "
            f"timeout={self._timeout:g}{deadline})"
        )


def _glue(lib: Any, response: dns.message.Message) -> dict[dns.name.Name, tuple[list[IPAddress], int]]:
    """The A and AAAA records of the additional section, by owner name."""
    glue: dict[dns.name.Name, tuple[list[IPAddress], int]] = {}
    for rrset in response.additional:
        if rrset.rdclass != lib.rdataclass.IN or rrset.rdtype not in (lib.rdatatype.A, lib.rdatatype.AAAA):
            continue
        addresses, ttl = glue.setdefault(rrset.name.canonicalize(), ([], rrset.ttl))
        addresses.extend(ipaddress.ip_address(rdata.address) for rdata in rrset)
        glue[rrset.name.canonicalize()] = (addresses, min(ttl, rrset.ttl))
    return glue


def _add_ttl(ttls: list[int], ttl: int | None) -> None:
    if ttl is not None:
        ttls.append(ttl)


def _min(values: Iterable[int]) -> int | None:
    return min(values, default=None)


def _shown(url: str) -> str:
    """The URL as messages echo it: its user-info, secret-named values, bare query parts and fragment withheld."""
    return shorten(redact(url, entry=True), 200)


def _float_option(url: str, key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            f"DNS backend URL {url!r}: {key}={quote(text, limit=40)} is not a number of seconds"
        ) from None


def _port_option(url: str, text: str) -> int:
    try:
        return parse_port(text, where=f"DNS backend URL {url!r}: option port")
    except InvalidAddress:
        raise InvalidInput(
            f"DNS backend URL {url!r}: port={quote(text, limit=40)} is not a number in 1..65535"
        ) from None
