"""The Consul entry reader against the straightforward one it replaced: the same instances, the same warnings.

The reader was rewritten for speed (one walk per entry, one parse per
address, no converters run twice, labels made only for warnings). The
reference below is the former reader, kept verbatim in behaviour, and
Hypothesis feeds both the same hostile answers in every address mode.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from registry_config.address import format_host_port
from registry_config.discovery.consul import ConsulBackend, _shown
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery


def _resolver(host: str) -> list[str]:
    if host.startswith("missing"):
        raise OSError("Name or service not known")
    if host.startswith("boom"):
        raise RuntimeError("resolver bug")
    if host.startswith("empty"):
        return []
    return ["10.9.9.9", "fd00::9", "::ffff:10.9.9.8"]


# -- the former reader ---------------------------------------------------------------------------------------


def _catalog_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "node": entry.get("Node"),
        "node_address": entry.get("Address"),
        "node_tagged": entry.get("TaggedAddresses"),
        "service_address": entry.get("ServiceAddress"),
        "service_tagged": entry.get("ServiceTaggedAddresses"),
        "port": entry.get("ServicePort"),
        "tags": entry.get("ServiceTags"),
        "meta": entry.get("ServiceMeta"),
        "service_id": entry.get("ServiceID"),
    }


def _health_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    node = entry.get("Node") if isinstance(entry.get("Node"), dict) else {}
    service = entry.get("Service") if isinstance(entry.get("Service"), dict) else {}
    return {
        "node": node.get("Node"),
        "node_address": node.get("Address"),
        "node_tagged": node.get("TaggedAddresses"),
        "service_address": service.get("Address"),
        "service_tagged": service.get("TaggedAddresses"),
        "port": service.get("Port"),
        "tags": service.get("Tags"),
        "meta": service.get("Meta"),
        "service_id": service.get("ID"),
    }


def _pick(backend: ConsulBackend, fields: Mapping[str, Any]) -> tuple[object, object, str | None]:
    port = fields["port"] if fields["port"] is not None else 0
    node_address = fields["node_address"]
    service_address = fields["service_address"]
    if backend.address == "node":
        return node_address, port, None
    fallback = service_address if isinstance(service_address, str) and service_address else node_address
    if backend.address == "service":
        return fallback, port, None
    tagged = fields["service_tagged"]
    if isinstance(tagged, dict) and isinstance(tagged.get(backend.address), dict):
        item = tagged[backend.address]
        tagged_port = item.get("port", port)
        return item.get("address"), tagged_port if tagged_port is not None else 0, None
    node_tagged = fields["node_tagged"]
    if isinstance(node_tagged, dict) and node_tagged.get(backend.address):
        return node_tagged[backend.address], port, None
    return fallback, port, f"no {backend.address} tagged address; used the service address"


def _reference_instances(
    backend: ConsulBackend, query: ServiceQuery, entry: object, where: str, endpoint: str, warnings: list[str]
) -> list[ServiceInstance]:
    if not isinstance(entry, dict):
        warnings.append(f"{where}: not a JSON object ({_shown(entry)}); skipped")
        return []
    fields = _health_fields(entry) if endpoint == "health" else _catalog_fields(entry)
    healthy: bool | None = None
    if endpoint == "health":
        checks = entry.get("Checks")
        if isinstance(checks, list):
            healthy = all(isinstance(check, dict) and check.get("Status") == "passing" for check in checks)
        if backend.passing_only and healthy is False:
            warnings.append(f"{where}: a check is not passing although ?passing was asked; skipped")
            return []
    node = fields["node"] if isinstance(fields["node"], str) else None
    label = f"{where} (node {_shown(node)})" if node else where
    address, port, note = _pick(backend, fields)
    if note:
        warnings.append(f"{label}: {note}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        warnings.append(f"{label}: port {_shown(port)} is not a number in 0..65535; skipped")
        return []
    chosen_port = query.port_or_default(port)
    if chosen_port is None:
        warnings.append(
            f"{label}: port {port} means the registry URL's port, but the query has no default_port; skipped"
        )
        return []
    if not isinstance(address, str) or not address:
        warnings.append(f"{label}: no address (neither service nor node address); skipped")
        return []
    ips = backend._addresses(address, label, warnings)
    tags_value = fields["tags"]
    tags = tuple(tag for tag in tags_value if isinstance(tag, str)) if isinstance(tags_value, list) else ()
    meta_value = fields["meta"]
    meta = (
        {k: v for k, v in meta_value.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(meta_value, dict)
        else {}
    )
    service_id = fields["service_id"] if isinstance(fields["service_id"], str) else None
    return [
        ServiceInstance(ip, chosen_port, node=node, service_id=service_id, tags=tags, meta=meta, healthy=healthy)
        for ip in ips
    ]


def _reference(backend: ConsulBackend, query: ServiceQuery, data: list[object], endpoint: str) -> Discovery:
    where = f"Consul at {backend.url}, service {query.name!r}"
    warnings: list[str] = []
    instances: list[ServiceInstance] = []
    for position, entry in enumerate(data):
        instances.extend(_reference_instances(backend, query, entry, f"{where}, entry #{position}", endpoint, warnings))
    source = f"consul {backend.url}/v1/{endpoint}/service/{query.name}"
    return Discovery(query, instances, source=source, index=7, warnings=warnings)


# -- hostile answers -------------------------------------------------------------------------------------------

_ADDRESSES = st.sampled_from(
    [
        "10.0.0.1",
        "10.0.0.2",
        "010.0.0.1",
        "10.0.0.1 ",
        "10.0.0.1,10.0.0.2",
        "10.0.0.0/8",
        "http://10.0.0.1",
        "256.0.0.1",
        "fd00::1",
        "::ffff:10.0.0.3",
        "fe80::1%eth0",
        "registry.internal",
        "REGISTRY.internal",
        "missing.internal",
        "boom.internal",
        "empty.internal",
        "bad name",
        "a\nb",
        "",
        "0.0.0.0",
        "169.254.169.254",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 70000),
    st.sampled_from([0, 80, 5000, 65535, 65536]),
    st.floats(allow_nan=False, allow_infinity=False),
    _ADDRESSES,
    st.text(max_size=6),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["lan", "wan", "address", "port", "k"]), inner)
    ),
    max_leaves=6,
)
_GOOD_ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1", "::ffff:10.0.0.3", "registry.internal", ""])


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: most entries must get far enough to make instances."""
    return st.one_of(good, good, good, bad)


_TAGGED = st.dictionaries(
    st.sampled_from(["lan", "wan"]),
    st.one_of(_ADDRESSES, st.fixed_dictionaries({}, optional={"address": _ADDRESSES, "port": _VALUES})),
    max_size=2,
)
_ADDRESS = _mostly(_GOOD_ADDRESSES, st.one_of(_ADDRESSES, _VALUES))
_TAGGED_ADDRESSES = _mostly(_TAGGED, _VALUES)
_META = _mostly(
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=3), _VALUES
)
_TAGS = _mostly(st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3), _VALUES)
_NODE = _mostly(st.sampled_from(["cell-1", "cell-2", "", "n,1", "n\n"]), _VALUES)
_PORTS = _mostly(st.sampled_from([0, 80, 5000]), st.one_of(st.sampled_from([None, True, -1, 65536, "80"]), _VALUES))
_IDS = _mostly(st.text(max_size=5), _VALUES)

_CATALOG_ENTRY = st.fixed_dictionaries(
    {"Address": _ADDRESS, "ServicePort": _PORTS},
    optional={
        "Node": _NODE,
        "TaggedAddresses": _TAGGED_ADDRESSES,
        "ServiceAddress": _ADDRESS,
        "ServiceTaggedAddresses": _TAGGED_ADDRESSES,
        "ServiceTags": _TAGS,
        "ServiceMeta": _META,
        "ServiceID": _IDS,
    },
)
_CHECKS = _mostly(
    st.lists(
        _mostly(
            st.fixed_dictionaries({"Status": st.sampled_from(["passing", "passing", "critical", 1, None])}), _VALUES
        ),
        max_size=3,
    ),
    _VALUES,
)
_HEALTH_ENTRY = st.fixed_dictionaries(
    {
        "Node": _mostly(
            st.fixed_dictionaries(
                {"Address": _ADDRESS}, optional={"Node": _NODE, "TaggedAddresses": _TAGGED_ADDRESSES}
            ),
            _VALUES,
        ),
        "Service": _mostly(
            st.fixed_dictionaries(
                {"Port": _PORTS},
                optional={
                    "Address": _ADDRESS,
                    "TaggedAddresses": _TAGGED_ADDRESSES,
                    "Tags": _TAGS,
                    "Meta": _META,
                    "ID": _IDS,
                },
            ),
            _VALUES,
        ),
    },
    optional={"Checks": _CHECKS},
)


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[tuple[str, bool], ConsulBackend]]:
    made = {
        (address, passing): ConsulBackend(
            "http://127.0.0.1:1", address=address, passing_only=passing, resolver=_resolver
        )
        for address in ("service", "node", "lan", "wan")
        for passing in (True, False)
    }
    yield made
    for backend in made.values():
        backend.close()


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    address=st.sampled_from(["service", "node", "lan", "wan"]),
    passing=st.booleans(),
    default_port=st.sampled_from([None, 8080]),
)
def test_the_reader_answers_as_the_former_one(
    backends: dict[tuple[str, bool], ConsulBackend],
    data: st.DataObject,
    address: str,
    passing: bool,
    default_port: int | None,
) -> None:
    backend = backends[(address, passing)]
    endpoint = "health" if passing else "catalog"
    entries = data.draw(st.lists(_mostly(_HEALTH_ENTRY if passing else _CATALOG_ENTRY, _VALUES), max_size=4))
    body = json.dumps(entries)  # what Consul would send: the reader sees it decoded, as from the wire
    decoded = json.loads(body)
    query = ServiceQuery("registry", default_port=default_port)
    where = f"Consul at {backend.url}, service {query.name!r}"
    response = types.SimpleNamespace(code=200, headers={"X-Consul-Index": "7"}, body=body)
    found = backend._interpret(query, response, where, endpoint)
    expected = _reference(backend, query, decoded, endpoint)
    event(f"instances: {len(expected.instances) > 0}, warnings: {len(expected.warnings) > 0}")
    assert found == expected
    assert found.warnings == expected.warnings
    assert [dict(i.meta) for i in found.instances] == [dict(i.meta) for i in expected.instances]
    assert [type(i.address) for i in found.instances] == [type(i.address) for i in expected.instances]
    assert [i.endpoint for i in found.instances] == [i.endpoint for i in expected.instances]
    assert [str(i) for i in found.instances] == [format_host_port(i.address, i.port) for i in expected.instances]
