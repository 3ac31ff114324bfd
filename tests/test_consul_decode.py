"""The typed decoder of Consul answers reads exactly what the generic decoder reads.

``decode_entries`` decodes a well-formed answer with msgspec into the few
fields the reader uses, and hands any answer msgspec refuses to
``json.loads`` and the reader's per-entry checks. These tests hold the two
paths to the same instances and the same warnings: on the live agent's
payloads, the documentation's samples and the seed's, on generated answers
that fit the typed shapes (every key present, absent or null), and they
check that an answer the typed decoder refuses keeps today's behaviour:
one hostile entry skipped with its warning, the same errors for bodies that
are not a JSON list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config.discovery.consul.answers import decode_entries
from registry_config.discovery.consul.decode import Entry, TaggedAddress, decode_typed, tagged
from registry_config.discovery.consul.reader import EntryReader, pick_address
from registry_config.discovery.consul.settings import ADDRESS_MODES
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import DiscoveryProtocolError

PAYLOADS = Path(__file__).parent / "data" / "consul"
FILES = sorted(path.name for path in PAYLOADS.glob("*.json"))
WHERE = "Consul at http://127.0.0.1:8500, service 'docker_registry'"


def _resolver(host: str) -> list[str]:
    if host.startswith("missing"):
        raise OSError("Name or service not known")
    return ["10.9.9.9", "fd00::9"]


def _read(
    data: list[Any], *, health: bool, mode: str, passing: bool, default_port: int | None
) -> tuple[list[ServiceInstance], list[str]]:
    reader = EntryReader(address=mode, passing_only=passing, resolver=_resolver, secrets=("s3cret-token",))
    warnings: list[str] = []
    instances = reader.read(ServiceQuery("docker_registry", default_port=default_port), data, WHERE, health, warnings)
    return instances, warnings


def _same_either_way(body: bytes, *, health: bool, mode: str, passing: bool, default_port: int | None) -> int:
    """Read ``body`` by both paths, check they agree in every detail, and return how many instances they made."""
    typed = decode_entries(body, WHERE, ())
    assert all(type(entry) is Entry for entry in typed), "a well-formed answer must take the typed path"
    generic = json.loads(body)
    fast, fast_warnings = _read(typed, health=health, mode=mode, passing=passing, default_port=default_port)
    slow, slow_warnings = _read(generic, health=health, mode=mode, passing=passing, default_port=default_port)
    assert fast == slow
    assert fast_warnings == slow_warnings
    # Field by field too: meta takes no part in the hash, and the endpoint text is kept beside the fields.
    assert [(i.endpoint, dict(i.meta), i.tags, i.node, i.service_id, i.healthy) for i in fast] == [
        (i.endpoint, dict(i.meta), i.tags, i.node, i.service_id, i.healthy) for i in slow
    ]
    query = ServiceQuery("docker_registry", default_port=default_port)
    assert Discovery(query, fast, source="s", warnings=fast_warnings) == Discovery(
        query, slow, source="s", warnings=slow_warnings
    )
    return len(fast)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("mode", ADDRESS_MODES)
@pytest.mark.parametrize("passing", [False, True])
@pytest.mark.parametrize("compact", [False, True])
def test_the_payloads_read_the_same_by_both_paths(name: str, mode: str, passing: bool, compact: bool) -> None:
    entries = json.loads((PAYLOADS / name).read_bytes())
    # As the file is, and compact, as a live agent sends it.
    body = json.dumps(entries, separators=(",", ":")).encode() if compact else (PAYLOADS / name).read_bytes()
    made = _same_either_way(body, health=name.startswith("health"), mode=mode, passing=passing, default_port=8080)
    assert made >= 1


def test_the_live_payloads_decode_to_the_fields_the_reader_uses() -> None:
    catalog = decode_typed((PAYLOADS / "catalog-service-live.json").read_bytes())
    assert catalog is not None
    first = catalog[0]
    assert (first.Node, first.Address, first.ServiceAddress, first.ServicePort) == (
        "cell-1",
        "10.244.0.21",
        "10.244.2.6",
        8080,
    )
    assert first.ServiceTags == ("v2",)
    node_tagged = tagged(first.TaggedAddresses, service=False)
    assert isinstance(node_tagged, dict)
    assert node_tagged["wan_ipv4"] == "10.244.0.21"
    service_tagged = tagged(first.ServiceTaggedAddresses, service=True)
    assert isinstance(service_tagged, dict)
    assert service_tagged["wan"] == TaggedAddress(Address="198.18.0.6", Port=443)
    assert tagged(catalog[1].ServiceTaggedAddresses, service=True) is None  # absent: no address registered
    health = decode_typed((PAYLOADS / "health-service-live.json").read_bytes())
    assert health is not None
    second = health[1]
    assert second.Service is not None
    assert second.Checks is not None
    assert second.Service.Port is None  # absent when 0 (omitempty)
    assert second.Checks[0].CheckID == "serfHealth"
    assert {check.Status for check in second.Checks} >= {"passing"}


# -- generated answers that fit the typed shapes -------------------------------------------------------------------

_ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1", "::ffff:10.0.0.3", "registry.internal", "", "x y"])
_PORTS = st.sampled_from([0, 80, 5000, 65535, -1, 65536, 2**70])  # msgspec takes any JSON integer
_TEXT = st.text(max_size=4)
_TAG_NAMES = st.sampled_from(["lan", "wan", "lan_ipv4", "wan_ipv4", "lan_ipv6", "wan_ipv6", "k"])


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, or null (a key present but empty)."""
    return st.one_of(st.none(), value)


_TAGGED_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "Address": _maybe(_ADDRESSES),
        "Port": _maybe(_PORTS),
        "address": _maybe(_ADDRESSES),
        "port": _maybe(_PORTS),
    },
)
_SERVICE_TAGGED = _maybe(st.dictionaries(_TAG_NAMES, _TAGGED_ITEM, max_size=3))
_NODE_TAGGED = _maybe(st.dictionaries(_TAG_NAMES, _ADDRESSES, max_size=3))
_TAGS = _maybe(st.lists(_TEXT, max_size=3))
_META = _maybe(st.dictionaries(_TEXT, _TEXT, max_size=2))
_NODE_NAMES = _maybe(st.sampled_from(["cell-1", "cell-2", "", "n,1"]))
_HEALTH_NODE = st.fixed_dictionaries(
    {}, optional={"Node": _NODE_NAMES, "Address": _maybe(_ADDRESSES), "TaggedAddresses": _NODE_TAGGED}
)
_CATALOG_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        # A catalog entry whose Node is an object (the other endpoint's shape) has no node name, either way.
        "Node": st.one_of(_NODE_NAMES, _HEALTH_NODE),
        "Address": _maybe(_ADDRESSES),
        "ServiceAddress": _maybe(_ADDRESSES),
        "ServicePort": _maybe(_PORTS),
        "ServiceTags": _TAGS,
        "ServiceMeta": _META,
        "ServiceID": _maybe(_TEXT),
        "TaggedAddresses": _NODE_TAGGED,
        "ServiceTaggedAddresses": _SERVICE_TAGGED,
        "ServiceProxy": st.just({"Mode": "", "MeshGateway": {}, "Expose": {}}),
    },
)
_CHECK = st.fixed_dictionaries(
    {},
    optional={
        "Status": _maybe(st.sampled_from(["passing", "passing", "warning", "critical"])),
        "CheckID": _maybe(st.sampled_from(["serfHealth", "_node_maintenance", "_service_maintenance:r-1"])),
        "Notes": _maybe(st.sampled_from(["", "upgrade s3cret-token", "x"])),
        "Definition": st.just({}),
    },
)
_HEALTH_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        # A health entry whose Node is a string (the other endpoint's shape) has no node fields, either way.
        "Node": st.one_of(_maybe(_HEALTH_NODE), st.just("cell-9")),
        "Service": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "ID": _maybe(_TEXT),
                    "Address": _maybe(_ADDRESSES),
                    "Port": _maybe(_PORTS),
                    "Tags": _TAGS,
                    "Meta": _META,
                    "TaggedAddresses": _SERVICE_TAGGED,
                    "Weights": st.just({"Passing": 1, "Warning": 1}),
                },
            )
        ),
        "Checks": _maybe(st.lists(_CHECK, max_size=3)),
    },
)


@given(
    health=st.booleans(),
    data=st.data(),
    mode=st.sampled_from(ADDRESS_MODES),
    passing=st.booleans(),
    default_port=st.sampled_from([None, 8080]),
    indent=st.sampled_from([None, 2]),
)
def test_generated_answers_read_the_same_by_both_paths(
    health: bool, data: st.DataObject, mode: str, passing: bool, default_port: int | None, indent: int | None
) -> None:
    entries = data.draw(st.lists(_HEALTH_ENTRY if health else _CATALOG_ENTRY, min_size=1, max_size=5))
    body = json.dumps(entries, indent=indent).encode()
    _same_either_way(body, health=health, mode=mode, passing=passing, default_port=default_port)


# -- what the typed decoder refuses keeps today's behaviour ------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        {"ServicePort": "80", "Address": "10.0.0.9", "Node": "bad"},
        {"ServiceTags": ["v2", 3], "Address": "10.0.0.9", "ServicePort": 80, "Node": "bad"},
        {"ServiceMeta": {"k": 1}, "Address": "10.0.0.9", "ServicePort": 80, "Node": "bad"},
        "not an object",
        {"ServicePort": True, "Address": "10.0.0.9"},
        {"ServicePort": 80.0, "Address": "10.0.0.9"},
    ],
)
def test_one_hostile_entry_sends_the_answer_down_the_generic_path(hostile: object) -> None:
    live = json.loads((PAYLOADS / "catalog-service-live.json").read_bytes())
    body = json.dumps([live[0], hostile, live[1]], separators=(",", ":")).encode()
    assert decode_typed(body) is None
    data = decode_entries(body, WHERE, ())
    assert all(type(entry) is not Entry for entry in data)
    instances, warnings = _read(data, health=False, mode="service", passing=False, default_port=8080)
    endpoints = {instance.endpoint for instance in instances}
    assert {"10.244.2.6:8080", "10.244.0.22:8080"} <= endpoints  # the good entries, read as ever
    if isinstance(hostile, dict) and isinstance(hostile.get("ServicePort"), int | float | str):
        port = hostile["ServicePort"]
        if isinstance(port, bool) or not isinstance(port, int) or port > 65535:
            assert any("entry #1" in warning and "skipped" in warning for warning in warnings)
    elif not isinstance(hostile, dict):
        assert any("entry #1: not a JSON object" in warning for warning in warnings)


def test_a_null_tagged_port_is_not_an_absent_one() -> None:
    """``{"Port": null, "port": 5}`` means the service's port; ``{"port": 5}`` means 5: on both paths."""
    for item, expected in (
        ({"Address": "10.1.1.1", "Port": None, "port": 5}, 80),
        ({"Address": "10.1.1.1", "port": 5}, 5),
    ):
        entry = {"Node": "n", "Address": "10.0.0.1", "ServicePort": 80, "ServiceTaggedAddresses": {"lan": item}}
        body = json.dumps([entry]).encode()
        typed = decode_typed(body)
        assert typed is not None
        service_tagged = tagged(typed[0].ServiceTaggedAddresses, service=True)
        assert isinstance(service_tagged, dict)
        assert type(service_tagged["lan"]) is TaggedAddress
        assert pick_address("lan", "10.0.0.1", None, None, service_tagged, 80)[:2] == ("10.1.1.1", expected)
        assert pick_address("lan", "10.0.0.1", None, None, item and {"lan": item}, 80)[:2] == ("10.1.1.1", expected)
        _same_either_way(body, health=False, mode="lan", passing=False, default_port=None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"Node": "n"}', "expected a JSON list of service entries, got a JSON dict"),
        (b'"text"', "expected a JSON list of service entries, got a JSON str"),
        (b"[{]", "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than a Consul answer does"),
        (b'[{"ServiceProxy": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "nests deeper than a Consul answer does"),
    ],
)
def test_bodies_that_are_not_a_list_of_entries_are_refused_as_before(body: bytes, message: str) -> None:
    assert decode_typed(body) is None
    with pytest.raises(DiscoveryProtocolError, match=message):
        decode_entries(body, WHERE, ())


def test_an_empty_answer_is_an_empty_list() -> None:
    assert decode_entries(b"[]", WHERE, ()) == []
    instances, warnings = _read([], health=True, mode="lan", passing=True, default_port=None)
    assert (instances, warnings) == ([], [])


@pytest.mark.parametrize(
    ("raw", "service", "expected"),
    [
        (b'{"lan": "10.0.0.1"}', False, {"lan": "10.0.0.1"}),
        (b'{"lan": 5, "wan": "10.0.0.2"}', False, {"lan": 5, "wan": "10.0.0.2"}),  # generic: the reader decides
        (b"null", False, None),
        (b'{"lan": {"Address": "10.0.0.1", "Port": "80"}}', True, {"lan": {"Address": "10.0.0.1", "Port": "80"}}),
        (b'["lan"]', True, ["lan"]),
    ],
)
def test_tagged_addresses_that_do_not_fit_are_decoded_as_plain_json(
    raw: bytes, service: bool, expected: object
) -> None:
    field = "ServiceTaggedAddresses" if service else "TaggedAddresses"
    entries = decode_typed(b'[{"' + field.encode() + b'": ' + raw + b"}]")
    assert entries is not None
    assert tagged(getattr(entries[0], field), service=service) == expected


def test_hostile_tagged_addresses_read_the_same_by_both_paths() -> None:
    """Tagged addresses are decoded only when a mode reads them: one that does not fit changes no other entry."""
    live = json.loads((PAYLOADS / "catalog-service-live.json").read_bytes())
    odd = dict(live[0], Node="odd", TaggedAddresses={"lan": 5, "wan": "10.7.7.7"})
    odd["ServiceTaggedAddresses"] = {"wan": {"Address": "10.8.8.8", "Port": "443"}, "lan": ["x"]}
    body = json.dumps([odd, *live], separators=(",", ":")).encode()
    for mode in ADDRESS_MODES:
        _same_either_way(body, health=False, mode=mode, passing=False, default_port=8080)
