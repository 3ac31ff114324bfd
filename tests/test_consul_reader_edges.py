"""The edges of the Consul reader that `make mutation` found untested (docs/mutation.md).

Each test here kills mutants of registry_config/discovery/consul/reader.py that
survived tests/test_consul_reader.py and tests/test_consul_decode.py: the
highest port, the search through tagged addresses past one without an
address, ``pick_address`` in the ``service`` mode it is never called with by
the reader, the IPv6 modes' use of the service's own address, a resolver
that fails with its own exception, tags that are not a list, the warning
that names a maintenance, and the keyword-only options; and, from the complete run, a negative tagged port, a
host name's resolved endpoint, meta values that are not text, checks that cannot be read before a maintenance,
the cut of a shown value, and the modules without msgspec. Entries are read by ``EntryReader`` directly, on both
paths: the generic decoder's dicts and the typed decoder's structs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from registry_config.discovery.consul.answers import decode_entries
from registry_config.discovery.consul.decode import Entry, TaggedAddress, decode_typed, tagged
from registry_config.discovery.consul.reader import EntryReader, pick_address
from registry_config.discovery.model import ServiceInstance, ServiceQuery

WHERE = "Consul at http://127.0.0.1:8500, service 'registry'"


def _read(
    entries: list[Any],
    *,
    mode: str = "service",
    health: bool = False,
    passing: bool = False,
    typed: bool,
    resolver: Callable[[str], Any] | None = None,
) -> tuple[list[ServiceInstance], list[str]]:
    """What the reader makes of ``entries``: as ``json.loads`` decoded them, or as the typed decoder did."""
    if typed:
        data = decode_entries(json.dumps(entries).encode(), WHERE, ())
        assert all(type(entry) is Entry for entry in data), "these entries must fit the typed decoder"
    else:
        data = json.loads(json.dumps(entries))
    reader = EntryReader(address=mode, passing_only=passing, resolver=resolver)
    warnings: list[str] = []
    instances = reader.read(ServiceQuery("registry"), data, WHERE, health, warnings)
    return instances, warnings


@pytest.mark.parametrize("typed", [False, True])
def test_an_instance_on_port_65535_is_kept_and_one_on_65536_skipped(typed: bool) -> None:
    """Guards against an upper bound of 65534: the highest port there is, skipped as out of range."""
    entries = [
        {"Node": "n1", "Address": "10.0.0.1", "ServicePort": 65535},
        {"Node": "n2", "Address": "10.0.0.2", "ServicePort": 65536},
    ]
    instances, warnings = _read(entries, typed=typed)
    assert [instance.endpoint for instance in instances] == ["10.0.0.1:65535"]
    assert warnings == [f"{WHERE}, entry #1 (node 'n2'): port '65536' is not a number in 0..65535; skipped"]


def test_a_tagged_address_without_an_address_does_not_end_the_search() -> None:
    """Guards against stopping at the first tagged address that has none: ``lan_ipv4`` after an empty ``lan``."""
    service_tagged = {"lan": {"Port": 81}, "lan_ipv4": {"Address": "10.1.1.1", "Port": 82}}
    assert pick_address("lan", "10.0.0.1", "10.2.2.2", None, service_tagged, 80) == ("10.1.1.1", 82, None)
    entries = decode_typed(json.dumps([{"ServiceTaggedAddresses": service_tagged}]).encode())
    assert entries is not None
    typed = tagged(entries[0].ServiceTaggedAddresses, service=True)
    assert isinstance(typed, dict)
    assert type(typed["lan"]) is TaggedAddress
    assert pick_address("lan", "10.0.0.1", "10.2.2.2", None, typed, 80) == ("10.1.1.1", 82, None)


def test_pick_address_in_service_mode_takes_the_service_address_first() -> None:
    """Guards against the node's address chosen over the service's own (the reader inlines this mode)."""
    assert pick_address("service", "10.0.0.1", "10.2.2.2", None, None, 80) == ("10.2.2.2", 80, None)
    assert pick_address("service", "10.0.0.1", "", None, None, 80) == ("10.0.0.1", 80, None)
    assert pick_address("service", "10.0.0.1", None, None, None, 80) == ("10.0.0.1", 80, None)


@pytest.mark.parametrize("mode", ["lan_ipv6", "wan_ipv6"])
def test_an_ipv6_mode_takes_the_service_address_when_it_is_ipv6(mode: str) -> None:
    """Guards against an IPv6 mode that never counts the service's own IPv6 address: the node's chosen instead."""
    node_tagged = {mode: "fd00::5"}
    assert pick_address(mode, "10.0.0.1", "fd00::1", node_tagged, None, 80) == ("fd00::1", 80, None)
    assert pick_address(mode, "10.0.0.1", "10.2.2.2", node_tagged, None, 80) == ("fd00::5", 80, None)


@pytest.mark.parametrize("typed", [False, True])
def test_a_resolver_that_fails_skips_its_entry_not_the_answer(typed: bool) -> None:
    """Guards against a third-party resolver's own exception (not an OSError) failing the whole answer."""

    def resolver(host: str) -> list[str]:
        if host.startswith("boom"):
            raise RuntimeError("resolver bug")
        raise OSError("Name or service not known")

    entries = [
        {"Node": "n1", "Address": "boom.internal", "ServicePort": 80},
        {"Node": "n2", "Address": "missing.internal", "ServicePort": 80},
        {"Node": "n3", "Address": "10.0.0.3", "ServicePort": 80},
    ]
    instances, warnings = _read(entries, typed=typed, resolver=resolver)
    assert [instance.endpoint for instance in instances] == ["10.0.0.3:80"]
    assert warnings == [
        f"{WHERE}, entry #0 (node 'n1'): resolving 'boom.internal' failed (RuntimeError); skipped",
        f"{WHERE}, entry #1 (node 'n2'): host name 'missing.internal' does not resolve "
        "('Name or service not known'); skipped",
    ]


@pytest.mark.parametrize("tags", ["primary", {"primary": "yes"}])
def test_service_tags_that_are_not_a_list_are_no_tags(tags: object) -> None:
    """Guards against iterating whatever ``ServiceTags`` holds: a string read as one tag per character."""
    entries = [{"Node": "n1", "Address": "10.0.0.1", "ServicePort": 80, "ServiceTags": tags}]
    assert decode_typed(json.dumps(entries).encode()) is None  # the generic path reads such an answer
    instances, warnings = _read(entries, typed=False)
    assert [(instance.endpoint, instance.tags) for instance in instances] == [("10.0.0.1:80", ())]
    assert warnings == []


def _health_entry(*checks: dict[str, str]) -> dict[str, Any]:
    return {
        "Node": {"Node": "cell-1", "Address": "10.0.0.1"},
        "Service": {"ID": "registry-1", "Port": 8080},
        "Checks": list(checks),
    }


_SERF = {"CheckID": "serfHealth", "Status": "critical"}
_HTTP = {"CheckID": "HTTP-registry", "Status": "critical"}  # sorts before "_node_maintenance"
_NODE = {"CheckID": "_node_maintenance", "Status": "critical", "Notes": "kernel upgrade"}
_SERVICE = {"CheckID": "_service_maintenance:registry-1", "Status": "critical", "Notes": "re-indexing"}


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize(
    ("checks", "why"),
    [
        ((_SERF,), "a check is not passing although ?passing was asked"),
        ((_HTTP,), "a check is not passing although ?passing was asked"),
        ((_NODE,), "the node is in maintenance ('kernel upgrade')"),
        ((_SERVICE,), "the service is in maintenance ('re-indexing')"),
        # A failing check before the maintenance one does not hide it.
        ((_SERF, _NODE), "the node is in maintenance ('kernel upgrade')"),
        ((_SERF, _SERVICE), "the service is in maintenance ('re-indexing')"),
        ((_SERVICE, _NODE), "the service is in maintenance ('re-indexing')"),
        # Empty notes say nothing: no empty quotes.
        ((dict(_NODE, Notes=""),), "the node is in maintenance"),
    ],
)
def test_the_warning_names_the_maintenance_an_entry_is_in(
    checks: tuple[dict[str, str], ...], why: str, typed: bool
) -> None:
    """Guards against a service maintenance or a plain failing check (whichever way its id sorts) reported as the
    node's maintenance, against the notes left out, and against a maintenance missed after another failing check."""
    instances, warnings = _read([_health_entry(*checks)], health=True, passing=True, typed=typed)
    assert instances == []
    assert warnings == [f"{WHERE}, entry #0 (node 'cell-1'): {why}; skipped"]


def test_the_entry_reader_options_are_keyword_only() -> None:
    """Guards against ``address``, ``passing_only`` or ``resolver`` taken by position (an address mode swapped)."""
    with pytest.raises(TypeError):
        EntryReader("lan", False, None)  # type: ignore[call-arg]
    reader = EntryReader(address="lan", passing_only=False, resolver=None)
    assert (reader.address, reader.passing_only) == ("lan", False)


# -- found by the reader's complete run (350 mutants) -------------------------------------------------------------


@pytest.mark.parametrize("typed", [False, True])
def test_a_negative_tagged_port_skips_the_entry(typed: bool) -> None:
    """Guards against a tagged port below 0 read as "no port" (as 0 is): the instance kept on the service's port."""
    service_tagged = {"lan": {"Address": "10.1.1.1", "Port": -1}}
    assert pick_address("lan", "10.0.0.1", None, None, service_tagged, 80) == ("10.1.1.1", -1, None)
    assert pick_address("lan", "10.0.0.1", None, None, {"lan": {"Address": "10.1.1.1", "Port": 0}}, 80) == (
        "10.1.1.1",
        80,
        None,
    )
    entries = [{"Node": "n1", "Address": "10.0.0.1", "ServicePort": 80, "ServiceTaggedAddresses": service_tagged}]
    instances, warnings = _read(entries, mode="lan", typed=typed)
    assert instances == []
    assert warnings == [f"{WHERE}, entry #0 (node 'n1'): port '-1' is not a number in 0..65535; skipped"]


@pytest.mark.parametrize("typed", [False, True])
def test_a_host_name_stands_for_what_it_resolves_to(typed: bool) -> None:
    """Guards against a resolved instance given the host name's text as its endpoint (``registry.internal:5000``
    in a flag), and against the warning for a name that resolves to nothing said of one that resolved."""
    answers = {"registry.internal": ["10.0.0.5"], "empty.internal": []}
    entries = [
        {"Node": "n1", "Address": "registry.internal", "ServicePort": 5000},
        {"Node": "n2", "Address": "empty.internal", "ServicePort": 5000},
    ]
    instances, warnings = _read(entries, typed=typed, resolver=answers.__getitem__)
    assert [instance.endpoint for instance in instances] == ["10.0.0.5:5000"]
    assert instances == [ServiceInstance("10.0.0.5", 5000, node="n1")]
    assert warnings == [f"{WHERE}, entry #1 (node 'n2'): host name 'empty.internal' resolved to no IP address; skipped"]


@pytest.mark.parametrize("health", [False, True])
def test_meta_values_that_are_not_text_are_left_out(health: bool) -> None:
    """Guards against a meta map kept whole when its keys are text (a JSON object's always are): numbers, objects
    and ``null`` in what the instance's ``meta`` promises is a map of text."""
    meta = {"version": "2.8", "weight": 5, "extra": {"a": "b"}, "none": None}
    if health:
        entries: list[dict[str, Any]] = [
            {"Node": {"Node": "n1", "Address": "10.0.0.1"}, "Service": {"Port": 80, "Meta": meta}}
        ]
    else:
        entries = [{"Node": "n1", "Address": "10.0.0.1", "ServicePort": 80, "ServiceMeta": meta}]
    assert decode_typed(json.dumps(entries).encode()) is None  # the generic path reads such an answer
    instances, warnings = _read(entries, health=health, typed=False)
    assert [dict(instance.meta) for instance in instances] == [{"version": "2.8"}]
    assert warnings == []


@pytest.mark.parametrize("first", ["not a check", {"CheckID": 5, "Status": "critical"}, {"Status": "critical"}])
def test_a_check_that_cannot_be_read_does_not_hide_a_maintenance_after_it(first: object) -> None:
    """Guards against the search for a maintenance check ending at a check that is not an object or has no text
    id: the maintenance after it reported as "a check is not passing"."""
    entry = _health_entry(_NODE)
    entry["Checks"].insert(0, first)
    fits_typed = decode_typed(json.dumps([entry]).encode()) is not None  # a check without an id does
    for typed in (False, True) if fits_typed else (False,):
        instances, warnings = _read([entry], health=True, passing=True, typed=typed)
        assert instances == []
        assert warnings == [
            f"{WHERE}, entry #0 (node 'cell-1'): the node is in maintenance ('kernel upgrade'); skipped"
        ]


@pytest.mark.parametrize("typed", [False, True])
def test_a_warning_shows_at_most_80_characters_of_a_value(typed: bool) -> None:
    """Guards against the cut moving: 80 characters of a hostile text shown whole, 81 shortened."""
    entries = [
        {"Node": "n1", "Address": "a" * 80, "ServicePort": 80},
        {"Node": "n2", "Address": "b" * 81, "ServicePort": 80},
    ]
    instances, warnings = _read(entries, typed=typed)
    assert instances == []
    assert len(warnings) == 2
    assert f"address '{'a' * 80}' is not an IP address or host name; skipped" in warnings[0]
    assert "b" * 78 not in warnings[1]
    assert "b" * 77 + "..." in warnings[1]


_WITHOUT_MSGSPEC = """
import json, sys
sys.modules["msgspec"] = None  # as if the consul extra's msgspec were not installed: importing it fails
from registry_config.discovery.consul import answers, reader
from registry_config.discovery.model import ServiceQuery
assert answers.decode_typed is None and reader._decode is None
entries = [{"Node": "n1", "Address": "10.0.0.1", "ServicePort": 80, "ServiceTaggedAddresses": {"lan": {"Address":
    "10.1.1.1", "Port": 81}}}, {"Node": "n2", "Address": "10.0.0.2", "ServicePort": "80"}]
data = answers.decode_entries(json.dumps(entries).encode(), "here", ())
warnings = []
found = reader.EntryReader(address="lan", passing_only=False, resolver=None).read(
    ServiceQuery("registry"), data, "here", False, warnings)
print(json.dumps([[i.endpoint for i in found], warnings]))
"""


def test_without_msgspec_every_answer_takes_the_generic_path() -> None:
    """Guards against the typed decoder becoming required: without msgspec (it comes with the ``consul`` extra;
    a plain install of the package lacks it) the modules import and read answers by the generic path."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MSGSPEC], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    endpoints, warnings = json.loads(done.stdout)
    assert endpoints == ["10.1.1.1:81"]
    assert warnings == ["here, entry #1 (node 'n2'): port '80' is not a number in 0..65535; skipped"]
