"""The JSON a live Consul agent sends for a service instance, and how it is encoded.

The shapes follow the payloads recorded from a running agent
(``catalog-service-live.json``, ``health-service-live.json``) and the Go
types they are encoded from (agent/structs/structs.go): keys in the order
of the struct fields, ``omitempty`` fields left out when empty. In
particular:

- service tagged addresses map a name to ``{"Address": ..., "Port": ...}``
  (``structs.ServiceAddress`` has no JSON tags, so the keys are capitalised);
  the agent adds ``lan_ipv4`` and ``wan_ipv4`` (``lan_ipv6``/``wan_ipv6`` for an
  IPv6 address) holding the service's own address and port when that address
  is an IP and those names were not registered (agent/agent.go
  ``addServiceInternal``); the map is left out when empty (``omitempty``);
- node tagged addresses are plain strings (``lan``, ``lan_ipv4``, ``wan``,
  ``wan_ipv4``);
- in health answers ``Service.Port`` is left out when 0
  (``NodeService.Port`` is ``omitempty``) and ``Service.Address`` is ``""``
  when the node's address applies; ``Tags`` and each check's
  ``ServiceTags`` are ``[]``, never ``null`` (agent/health_endpoint.go);
- maintenance is a ``critical`` check: ``_node_maintenance`` on the node,
  ``_service_maintenance:<service id>`` on a service (agent/agent.go
  ``EnableNodeMaintenance``, ``EnableServiceMaintenance``).

Bodies are compact JSON, as Go's ``json.Marshal`` writes it (``<``, ``>``,
``&`` escaped), or indented by four spaces with a final newline under
``?pretty`` (agent/http.go ``wrap``).
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "CHECK_STATUSES",
    "NodeRecord",
    "ServiceRecord",
    "catalog_entry",
    "catalog_from_health",
    "encode",
    "encode_list",
    "health_entry",
    "health_from_catalog",
    "node_id",
    "service_tagged_addresses",
]

CHECK_STATUSES = ("passing", "warning", "critical")
"""The only statuses a check has (api/health.go ``HealthPassing``, ``HealthWarning``, ``HealthCritical``)."""

NODE_MAINTENANCE = "_node_maintenance"
SERVICE_MAINTENANCE_PREFIX = "_service_maintenance:"
DEFAULT_NODE_MAINTENANCE_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
)
DEFAULT_SERVICE_MAINTENANCE_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
)


@attrs.frozen
class NodeRecord:
    """A node of the catalog: what ``structs.Node`` holds."""

    name: str
    address: str
    datacenter: str
    tagged_addresses: Mapping[str, str]
    meta: Mapping[str, str]
    create_index: int
    modify_index: int
    maintenance: str | None = None  # the reason, when in maintenance
    maintenance_index: int = 0


@attrs.frozen
class ServiceRecord:
    """A service instance registered on a node: what ``structs.NodeService`` holds, plus its check's status."""

    id: str
    name: str
    tags: tuple[str, ...]
    address: str | None  # None: the key is absent (an old payload), "" the node's address applies
    port: int
    meta: Mapping[str, str]
    tagged_addresses: Mapping[str, tuple[str, int]]
    create_index: int
    modify_index: int
    status: str = "passing"
    status_index: int = 0
    check: bool = True  # False: registered without a health check (only the node's serfHealth applies)
    maintenance: str | None = None
    maintenance_index: int = 0


@functools.lru_cache(maxsize=65536)
def node_id(name: str, datacenter: str) -> str:
    """A stable node UUID, so the same node keeps its ``ID`` across registrations."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.node.{datacenter}.consul"))


def default_node_tagged_addresses(address: str) -> dict[str, str]:
    """What an agent reports for its node: ``lan``/``wan`` and the family-specific names (agent/agent.go)."""
    family = _family(address)
    tagged = {"lan": address}
    if family:
        tagged[f"lan_{family}"] = address
    tagged["wan"] = address
    if family:
        tagged[f"wan_{family}"] = address
    return tagged


@functools.lru_cache(maxsize=65536)
def _family(address: str) -> str | None:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    return "ipv4" if parsed.version == 4 else "ipv6"


def service_tagged_addresses(
    address: str | None, port: int, registered: Mapping[str, tuple[str, int]] | None
) -> dict[str, tuple[str, int]]:
    """The service's tagged addresses as the agent stores them (agent/agent.go ``addServiceInternal``).

    The registered ones, plus ``lan_ipv4`` and ``wan_ipv4`` (``lan_ipv6``
    and ``wan_ipv6`` for an IPv6 address) holding the service's own address
    and port when that address is an IP literal and those names were not
    registered.
    """
    tagged = dict(registered or {})
    family = _family(address or "")
    if family:
        for name in (f"lan_{family}", f"wan_{family}"):
            tagged.setdefault(name, (address or "", port))
    return dict(sorted(tagged.items()))


def _tagged_json(tagged: Mapping[str, tuple[str, int]]) -> dict[str, dict[str, Any]]:
    return {name: {"Address": address, "Port": port} for name, (address, port) in tagged.items()}


def _proxy() -> dict[str, Any]:
    return {"Mode": "", "MeshGateway": {}, "Expose": {}}


_WEIGHTS = {"Passing": 1, "Warning": 1}


def _check(
    node: str,
    check_id: str,
    name: str,
    status: str,
    *,
    notes: str = "",
    output: str = "",
    service_id: str = "",
    service_name: str = "",
    service_tags: Iterable[str] = (),
    index: int,
) -> dict[str, Any]:
    return {
        "Node": node,
        "CheckID": check_id,
        "Name": name,
        "Status": status,
        "Notes": notes,
        "Output": output,
        "ServiceID": service_id,
        "ServiceName": service_name,
        "ServiceTags": list(service_tags),
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": index,
        "ModifyIndex": index,
    }


def catalog_entry(node: NodeRecord, service: ServiceRecord) -> dict[str, Any]:
    """The ``/v1/catalog/service`` element (``structs.ServiceNode``), keys in the live payload's order."""
    entry: dict[str, Any] = {
        "ID": node_id(node.name, node.datacenter),
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": dict(sorted(node.tagged_addresses.items())),
        "NodeMeta": dict(sorted(node.meta.items())),
        "ServiceKind": "",
        "ServiceID": service.id,
        "ServiceName": service.name,
        "ServiceTags": list(service.tags),
        "ServiceAddress": service.address,
        "ServiceTaggedAddresses": _tagged_json(service.tagged_addresses),
        "ServiceWeights": dict(_WEIGHTS),
        "ServiceMeta": dict(sorted(service.meta.items())),
        "ServicePort": service.port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": False,
        "ServiceProxy": _proxy(),
        "ServiceConnect": {},
        "CreateIndex": service.create_index,
        "ModifyIndex": service.modify_index,
    }
    if service.address is None:
        del entry["ServiceAddress"]
    if not service.tagged_addresses:
        del entry["ServiceTaggedAddresses"]
    return entry


def health_entry(node: NodeRecord, service: ServiceRecord) -> dict[str, Any]:
    """The ``/v1/health/service`` element (``structs.CheckServiceNode``): node, service and their checks."""
    node_json = {
        "ID": node_id(node.name, node.datacenter),
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": dict(sorted(node.tagged_addresses.items())),
        "Meta": dict(sorted(node.meta.items())),
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }
    service_json: dict[str, Any] = {
        "ID": service.id,
        "Service": service.name,
        "Tags": list(service.tags),
        "Address": service.address,
        "TaggedAddresses": _tagged_json(service.tagged_addresses),
        "Meta": dict(sorted(service.meta.items())),
        "Port": service.port,
        "Weights": dict(_WEIGHTS),
        "EnableTagOverride": False,
        "Proxy": _proxy(),
        "Connect": {},
        "CreateIndex": service.create_index,
        "ModifyIndex": service.modify_index,
    }
    if service.address is None:
        del service_json["Address"]
    if not service.tagged_addresses:
        del service_json["TaggedAddresses"]
    if not service.port:
        del service_json["Port"]
    checks = [
        _check(
            node.name,
            "serfHealth",
            "Serf Health Status",
            "passing",
            output="Agent alive and reachable",
            index=node.create_index,
        )
    ]
    if service.check:
        checks.append(
            _check(
                node.name,
                f"service:{service.id}",
                f"Service '{service.name}' check",
                service.status,
                service_id=service.id,
                service_name=service.name,
                service_tags=service.tags,
                index=service.status_index or service.create_index,
            )
        )
    if node.maintenance is not None:
        checks.append(
            _check(
                node.name,
                NODE_MAINTENANCE,
                "Node Maintenance Mode",
                "critical",
                notes=node.maintenance or DEFAULT_NODE_MAINTENANCE_REASON,
                index=node.maintenance_index,
            )
        )
    if service.maintenance is not None:
        checks.append(
            _check(
                node.name,
                SERVICE_MAINTENANCE_PREFIX + service.id,
                "Service Maintenance Mode",
                "critical",
                notes=service.maintenance or DEFAULT_SERVICE_MAINTENANCE_REASON,
                service_id=service.id,
                service_name=service.name,
                service_tags=service.tags,
                index=service.maintenance_index,
            )
        )
    return {"Node": node_json, "Service": service_json, "Checks": checks}


# -- entries registered verbatim: the other shape derived ---------------------------------------------------------


# (key in the health element's ``Node`` or ``Service``, key in the catalog element): what the two shapes share.
_NODE_KEYS = (
    ("ID", "ID"),
    ("Node", "Node"),
    ("Address", "Address"),
    ("Datacenter", "Datacenter"),
    ("TaggedAddresses", "TaggedAddresses"),
    ("Meta", "NodeMeta"),
)
_SERVICE_KEYS = (
    ("ID", "ServiceID"),
    ("Service", "ServiceName"),
    ("Tags", "ServiceTags"),
    ("Address", "ServiceAddress"),
    ("TaggedAddresses", "ServiceTaggedAddresses"),
    ("Meta", "ServiceMeta"),
    ("Port", "ServicePort"),
    ("Weights", "ServiceWeights"),
)


def health_from_catalog(catalog: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/v1/health/service`` element for a verbatim catalog element; keys missing there stay missing here."""
    node = {key: copy.deepcopy(catalog[flat]) for key, flat in _NODE_KEYS if flat in catalog}
    service = {key: copy.deepcopy(catalog[flat]) for key, flat in _SERVICE_KEYS if flat in catalog}
    node_name = catalog.get("Node", "")
    service_id = catalog.get("ServiceID", "")
    tags = catalog.get("ServiceTags")
    return {
        "Node": node,
        "Service": service,
        "Checks": [
            _check(node_name, "serfHealth", "Serf Health Status", "passing", index=0),
            _check(
                node_name,
                f"service:{service_id}",
                f"Service '{catalog.get('ServiceName', '')}' check",
                "passing",
                service_id=service_id,
                service_name=catalog.get("ServiceName", ""),
                service_tags=tags if isinstance(tags, list) else (),
                index=0,
            ),
        ],
    }


def catalog_from_health(health: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/v1/catalog/service`` element for a verbatim health element."""
    node = health.get("Node") if isinstance(health.get("Node"), dict) else {}
    service = health.get("Service") if isinstance(health.get("Service"), dict) else {}
    assert isinstance(node, dict)
    assert isinstance(service, dict)
    catalog = {flat: copy.deepcopy(node[key]) for key, flat in _NODE_KEYS if key in node}
    catalog.update({flat: copy.deepcopy(service[key]) for key, flat in _SERVICE_KEYS if key in service})
    return catalog


# -- encoding ---------------------------------------------------------------------------------------------------------

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def encode(value: Any, *, pretty: bool = False) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it (compact, HTML-escaped), or ``MarshalIndent`` + newline."""
    if pretty:
        text = json.dumps(value, indent=4, ensure_ascii=False) + "\n"
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Go replaces invalid UTF-8 (here: lone surrogates) with U+FFFD.
    return text.translate(_GO_ESCAPES).encode("utf-8", "replace")


def encode_list(fragments: Iterable[bytes]) -> bytes:
    """A compact JSON list of elements already encoded one by one (what makes large answers cheap)."""
    return b"[" + b",".join(fragments) + b"]"
