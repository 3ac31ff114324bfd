"""Reading the entries of a Consul answer into service instances, as a running agent sends them.

The shapes are those of a live agent (``../shared/consul/*-live.json`` in the
project's notes, from ``agent/structs``), trusted over the documentation's
samples wherever they differ:

- catalog entries are flat (``Address``, ``ServiceAddress``, ``ServicePort``,
  ``TaggedAddresses``, ``ServiceTaggedAddresses``); health entries nest
  ``Node``, ``Service`` and ``Checks``;
- a service's tagged addresses map a name to ``{"Address": ..., "Port": ...}``
  (``structs.ServiceAddress`` has no JSON tags, hence the capitals); the
  documentation's lowercase ``address``/``port`` (the service *definition*
  syntax) is accepted too. The agent adds ``lan_ipv4``/``wan_ipv4`` to every
  service registered with an address. A node's tagged addresses are plain
  strings;
- ``Service.Port`` is absent from health answers when it is 0
  (``NodeService.Port`` is ``omitempty``), and an empty ``ServiceAddress``
  means the node's address; every key is read as optional;
- a node or service in maintenance carries a ``critical`` check whose
  ``CheckID`` is ``_node_maintenance`` or ``_service_maintenance:<id>``.

The ``address`` modes pick the address as Consul's own ``BestAddress``
(``agent/structs/structs.go``) does: the service's tagged address of that
name first, then the service's address, then the node's tagged address,
then the node's address. ``lan``/``wan`` also take the ``_ipv4``/``_ipv6``
variants; ``lan_ipv4`` and the like only themselves.

No text from Consul reaches a builder flag: an address is an IP literal or
a host name the resolver turns into IPs, a port an integer in range;
anything else skips its entry with a warning, which quotes the offending
text redacted and shortened.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any, TypeAlias

from ...address import bad_character, is_hostname, parse_ip
from ...redact import quote
from ...resolver import Resolver, resolve
from ..model import ServiceInstance, ServiceQuery

try:  # the typed decoder's shapes (msgspec, extra "consul"); without it every answer takes the generic path
    from . import decode as _decode
except ImportError:  # pragma: no cover (msgspec is in the consul extra)
    _decode = None  # type: ignore[assignment]

__all__ = ["EntryReader", "pick_address"]

_EMPTY: dict[str, Any] = {}
_MAX_TEXT = 80
_TAGGED_KEYS = {
    "lan": ("lan", "lan_ipv4", "lan_ipv6"),
    "wan": ("wan", "wan_ipv4", "wan_ipv6"),
    "lan_ipv4": ("lan_ipv4",),
    "wan_ipv4": ("wan_ipv4",),
    "lan_ipv6": ("lan_ipv6",),
    "wan_ipv6": ("wan_ipv6",),
}
_NO_TAGGED = (None, None)
_NODE_MAINTENANCE = "_node_maintenance"
_SERVICE_MAINTENANCE = "_service_maintenance:"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _family(text: str | None) -> int | None:
    if text is None:
        return None
    ip = parse_ip(text)
    return ip.version if ip is not None else None


def pick_address(
    mode: str, node_address: object, service_address: object, node_tagged: object, service_tagged: object, port: object
) -> tuple[object, object, str | None]:
    """The address and port the ``address`` mode selects, and a note when it had to fall back.

    As ``CheckServiceNode.BestAddress``: the service's tagged address (its
    port unless that is 0), the service's own address, the node's tagged
    address, the node's address. For ``lan_ipv4`` and the like the service's
    own address counts only when it is of that family (the agent tags it so).
    """
    own = _text(service_address)
    if mode == "node":
        return node_address, port, None
    if mode == "service":
        return (own if own is not None else node_address), port, None
    keys = _TAGGED_KEYS[mode]
    if isinstance(service_tagged, dict):
        for key in keys:
            item = service_tagged.get(key)
            if isinstance(item, dict):
                address = _text(item.get("Address")) or _text(item.get("address"))
                if address is None:
                    continue
                tagged_port = item["Port"] if "Port" in item else item.get("port")
            elif _decode is not None and type(item) is _decode.TaggedAddress:  # the typed decoder's
                address = _text(item.Address) or _text(item.address)
                if address is None:
                    continue
                tagged_port = item.port if item.Port is _decode.UNSET else item.Port
            else:
                continue
            if tagged_port is None or (type(tagged_port) is int and tagged_port == 0):
                tagged_port = port
            return address, tagged_port, None
    family = 4 if mode.endswith("_ipv4") else 6 if mode.endswith("_ipv6") else None
    if own is not None and (family is None or _family(own) == family):
        if mode == "wan":
            return own, port, "no wan tagged address; used the service's address, as Consul's WAN lookups do"
        return own, port, None
    if isinstance(node_tagged, dict):
        for key in keys:
            value = _text(node_tagged.get(key))
            if value is not None:
                return value, port, None
    if mode == "lan":
        return node_address, port, None
    if own is not None:
        return own, port, f"no {mode} tagged address; used the service address"
    return node_address, port, f"no {mode} tagged address; used the node address"


# What the readers of one entry return (see EntryReader.read).
_Fields: TypeAlias = (
    "tuple[str | None, object, object, object, tuple[str, ...], dict[str, str] | None, str | None, object, object, "
    "bool | None]"
)


def _tags(value: object) -> tuple[str, ...]:
    """A JSON list's text items (anything else: no tags)."""
    if not value or not isinstance(value, list):
        return ()
    return tuple(tag for tag in value if isinstance(tag, str))


def _meta(value: object) -> dict[str, str] | None:
    """A JSON object's text values under text keys, as a fresh dict; ``None`` when there is none."""
    if not isinstance(value, dict) or not value:
        return None
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _maintenance(checks: list[Any]) -> tuple[str, object] | None:
    """Which maintenance (node or service) an entry is in, with its check's notes, or ``None``."""
    for check in checks:
        if not isinstance(check, dict):
            continue
        check_id = check.get("CheckID")
        if not isinstance(check_id, str):
            continue
        if check_id == _NODE_MAINTENANCE:
            what = "the node is in maintenance"
        elif check_id.startswith(_SERVICE_MAINTENANCE):
            what = "the service is in maintenance"
        else:
            continue
        return what, check.get("Notes")
    return None


class EntryReader:
    """Turns the decoded entries of one answer into instances, with a warning for each entry skipped.

    ``address`` is the backend's address mode, ``passing_only`` whether the
    health endpoint was asked with ``?passing`` (an entry with a check that
    does not pass is then skipped, even if a proxy ignored the parameter),
    ``resolver`` turns host-name addresses into IPs, and ``secrets`` are
    redacted from every text quoted in a warning.
    """

    def __init__(
        self, *, address: str, passing_only: bool, resolver: Resolver | None, secrets: Sequence[str] = ()
    ) -> None:
        self.address = address
        self.passing_only = passing_only
        self._tagged_needed = address not in ("service", "node")  # only the lan/wan modes read tagged addresses
        self._resolver = resolver
        self._secrets = tuple(secrets)

    def shown(self, value: object) -> str:
        """A value from Consul as a warning may show it: redacted, shortened, printable."""
        return quote(value, secrets=self._secrets, limit=_MAX_TEXT)

    def _label(self, where: str, position: int, node: str | None) -> str:
        at = f"{where}, entry #{position}"
        return f"{at} (node {self.shown(node)})" if node else at

    # The hot path of a big answer (100k entries): each entry is walked once, each text field checked once, the
    # address parsed once, and the instance built without running the converters again on what was just checked.
    # Labels for warnings are only made when there is something to warn about.

    def read(
        self, query: ServiceQuery, data: list[Any], where: str, health: bool, warnings: list[str]
    ) -> list[ServiceInstance]:
        """The instances of every entry, in order; each entry skipped says why in ``warnings``.

        ``data`` is what :func:`~.answers.decode_entries` returned: the typed
        decoder's :class:`~.decode.Entry` values, or, when an answer did not
        fit them, the generic decoder's dicts, each checked here field by
        field. Both are read by the same rules into the same instances.

        Each entry is let go of once read (``data`` is the reader's own): the
        decoded answer is the bulk of what the garbage collector scans, and
        freeing it while the instances are made keeps the collector from
        running over it again and again.
        """
        typed = bool(data) and _decode is not None and type(data[0]) is _decode.Entry
        if typed:
            fields = self._typed_health if health else self._typed_catalog
        else:
            fields = self._health if health else self._catalog
        instances: list[ServiceInstance] = []
        append = instances.append
        mode = self.address
        by_service_address = mode == "service"
        port_or_default = query.port_or_default
        parse = parse_ip
        trusted = ServiceInstance._trusted
        ipv4 = IPv4Address
        for position, entry in enumerate(data):
            data[position] = None
            found = fields(entry, position, where, warnings)
            if found is None:
                continue
            node, node_address, service_address, port, tags, meta, service_id, node_tagged, service_tagged, healthy = (
                found
            )
            if port is None:
                port = 0
            if by_service_address:
                address: object = (
                    service_address if isinstance(service_address, str) and service_address else node_address
                )
            else:
                address, port, note = pick_address(
                    mode, node_address, service_address, node_tagged, service_tagged, port
                )
                if note:
                    warnings.append(f"{self._label(where, position, node)}: {note}")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                warnings.append(
                    f"{self._label(where, position, node)}: port {self.shown(port)} is not a number in 0..65535; "
                    "skipped"
                )
                continue
            chosen_port = port_or_default(port)
            if chosen_port is None:
                warnings.append(
                    f"{self._label(where, position, node)}: port {port} means the registry URL's port, but the "
                    "query has no default_port; skipped"
                )
                continue
            if not isinstance(address, str) or not address:
                warnings.append(
                    f"{self._label(where, position, node)}: no address (neither service nor node address); skipped"
                )
                continue
            ip = parse(address)  # a literal IP (the common case) needs no other check: it holds no hostile character
            ips = (ip,) if ip is not None else self.addresses(address, self._label(where, position, node), warnings)
            if not ips:
                continue
            for one in ips:
                if type(one) is ipv4:  # checked: a plain IPv4 object; the port is in 1..65535
                    # An IPv4 text that parsed is canonical (ipaddress and parse_ip accept no other form): it is
                    # what str(one) writes, so the endpoint comes for free.
                    endpoint = f"{address}:{chosen_port}" if one is ip else None
                    append(trusted(one, chosen_port, node, service_id, tags, meta, healthy, endpoint))
                else:  # IPv6 (maybe IPv4-mapped) and whatever a resolver returned: the converters decide
                    append(
                        ServiceInstance(
                            one,
                            chosen_port,
                            node=node,
                            service_id=service_id,
                            tags=tags,
                            meta=meta or {},
                            healthy=healthy,
                        )
                    )
        return instances

    # Each of the four readers below takes one entry to the same ten values: node (text or None), node address,
    # service address, port (raw: checked by read), tags (a tuple of text), meta (a fresh dict of text, or None),
    # service id (text or None), node and service tagged addresses (raw: pick_address checks them) and the health
    # verdict; or None when the entry is skipped, with the warning said. The generic ones check every field's
    # type; the typed ones read values whose types msgspec has already checked.

    def _catalog(self, entry: Any, position: int, where: str, warnings: list[str]) -> _Fields | None:
        """The catalog's flat entry, as ``json.loads`` made it."""
        if not isinstance(entry, dict):
            warnings.append(f"{where}, entry #{position}: not a JSON object ({self.shown(entry)}); skipped")
            return None
        get = entry.get
        node = get("Node")
        sid = get("ServiceID")
        return (
            node if isinstance(node, str) else None,
            get("Address"),
            get("ServiceAddress"),
            get("ServicePort"),
            _tags(get("ServiceTags")),
            _meta(get("ServiceMeta")),
            sid if isinstance(sid, str) else None,
            get("TaggedAddresses"),
            get("ServiceTaggedAddresses"),
            None,
        )

    def _health(self, entry: Any, position: int, where: str, warnings: list[str]) -> _Fields | None:
        """The health endpoint's ``{"Node": {...}, "Service": {...}, "Checks": [...]}``, as ``json.loads`` made it."""
        if not isinstance(entry, dict):
            warnings.append(f"{where}, entry #{position}: not a JSON object ({self.shown(entry)}); skipped")
            return None
        found = entry.get("Node")
        node_fields: dict[str, Any] = found if isinstance(found, dict) else _EMPTY
        found = entry.get("Service")
        service: dict[str, Any] = found if isinstance(found, dict) else _EMPTY
        node = node_fields.get("Node")
        node = node if isinstance(node, str) else None
        checks = entry.get("Checks")
        healthy: bool | None = None
        if isinstance(checks, list):
            healthy = True
            for check in checks:
                if not isinstance(check, dict) or check.get("Status") != "passing":
                    healthy = False
                    break
        if self.passing_only and healthy is False:
            self._unhealthy(where, position, node, checks, warnings)
            return None
        sid = service.get("ID")
        return (
            node,
            node_fields.get("Address"),
            service.get("Address"),
            service.get("Port"),  # absent when 0 (omitempty)
            _tags(service.get("Tags")),
            _meta(service.get("Meta")),
            sid if isinstance(sid, str) else None,
            node_fields.get("TaggedAddresses"),
            service.get("TaggedAddresses"),
            healthy,
        )

    def _typed_catalog(self, entry: Any, position: int, where: str, warnings: list[str]) -> _Fields | None:
        """The catalog's entry as the typed decoder made it (``Node`` an object is, as above, no node name)."""
        node = entry.Node
        return (
            node if type(node) is str else None,
            entry.Address,
            entry.ServiceAddress,
            entry.ServicePort,
            entry.ServiceTags or (),
            entry.ServiceMeta or None,
            entry.ServiceID,
            *(self._tagged(entry.TaggedAddresses, entry.ServiceTaggedAddresses) if self._tagged_needed else _NO_TAGGED),
            None,
        )

    def _typed_health(self, entry: Any, position: int, where: str, warnings: list[str]) -> _Fields | None:
        """The health endpoint's entry as the typed decoder made it (``Node`` a string is, as above, no node)."""
        node_fields = entry.Node if type(entry.Node) is not str else None
        service = entry.Service
        checks = entry.Checks
        healthy: bool | None = None
        if checks is not None:
            healthy = True
            for check in checks:
                if check.Status != "passing":
                    healthy = False
                    break
        node = node_fields.Node if node_fields is not None else None
        if self.passing_only and healthy is False:
            shapes = [{"CheckID": check.CheckID, "Notes": check.Notes} for check in checks]
            self._unhealthy(where, position, node, shapes, warnings)
            return None
        node_address = node_fields.Address if node_fields is not None else None
        node_tagged = service_tagged = None
        if self._tagged_needed:
            node_tagged, service_tagged = self._tagged(
                node_fields.TaggedAddresses if node_fields is not None else _decode.ABSENT,
                service.TaggedAddresses if service is not None else _decode.ABSENT,
            )
        if service is None:
            return (node, node_address, None, None, (), None, None, node_tagged, service_tagged, healthy)
        return (
            node,
            node_address,
            service.Address,
            service.Port,
            service.Tags or (),
            service.Meta or None,
            service.ID,
            node_tagged,
            service_tagged,
            healthy,
        )

    @staticmethod
    def _tagged(node: Any, service: Any) -> tuple[object, object]:
        """The node's and the service's tagged addresses, decoded from the bytes the typed decoder kept."""
        return _decode.tagged(node, service=False), _decode.tagged(service, service=True)

    def _unhealthy(self, where: str, position: int, node: str | None, checks: Any, warnings: list[str]) -> None:
        """The warning for an entry skipped because a check does not pass although ``?passing`` was asked."""
        label = self._label(where, position, node)
        maintenance = _maintenance(checks)
        if maintenance is None:
            why = "a check is not passing although ?passing was asked"
        else:
            what, notes = maintenance
            why = f"{what} ({self.shown(notes)})" if isinstance(notes, str) and notes else what
        warnings.append(f"{label}: {why}; skipped")

    def addresses(self, text: str, label: str, warnings: list[str]) -> tuple[Any, ...]:
        """The IPs an address text stands for: itself if an IP literal, else what the resolver says."""
        if bad_character(text) is not None or "," in text or "://" in text or "/" in text:
            warnings.append(f"{label}: address {self.shown(text)} is not an IP address or host name; skipped")
            return ()
        ip = parse_ip(text)
        if ip is not None:
            return (ip,)
        if not is_hostname(text):
            warnings.append(f"{label}: address {self.shown(text)} is not an IP address or host name; skipped")
            return ()
        try:
            found = resolve(text.lower(), self._resolver)
        except OSError as exc:
            warnings.append(f"{label}: host name {self.shown(text)} does not resolve ({self.shown(exc)}); skipped")
            return ()
        except Exception as exc:  # noqa: BLE001 (a third-party resolver's failure skips one entry, not the answer)
            warnings.append(f"{label}: resolving {self.shown(text)} failed ({type(exc).__name__}); skipped")
            return ()
        if not found:
            warnings.append(f"{label}: host name {self.shown(text)} resolved to no IP address; skipped")
        return found
