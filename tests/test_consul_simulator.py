"""The Consul simulator answers as a live Consul agent does, over real HTTP.

Each test names the Consul source (paths in hashicorp/consul) or document it
follows; ``tests/data/consul/`` holds the payloads of a live agent and of the
documentation. Timing is checked with lower bounds and with bounds derived
from the configured waits, never with a bare upper bound; a held request is
observed in the simulator's own log (status ``None`` while in flight), not
guessed with a sleep.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import consul
import pytest
import requests
from _integration import unavailable
from hypothesis import given
from hypothesis import strategies as st

from registry_config.testing import ConsulSimulator, Fault, RecordedRequest
from registry_config.testing.consul import parse_duration, shapes
from registry_config.testing.consul.params import QueryError, parse_query

PAYLOADS = Path(__file__).parent / "data" / "consul"
FILTER_REFUSED = "Failed to create boolean expression evaluator"
DEADLINE = 30.0  # seconds a poll waits for something that should happen at once


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator(datacenters=("dc1", "dc2")) as simulator:
        yield simulator


def get(sim: ConsulSimulator, path: str, timeout: float = DEADLINE, **kwargs: Any) -> requests.Response:
    return requests.get(sim.url + path, timeout=timeout, **kwargs)


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {DEADLINE}s")
        time.sleep(0.01)


def in_flight(sim: ConsulSimulator, count: int = 1) -> None:
    """Wait until ``count`` requests are held by the simulator (logged, not yet answered)."""
    eventually(lambda: sum(1 for r in sim.requests if r.status is None) >= count, f"{count} request(s) in flight")


class Background:
    """A GET run in a thread, so a test can act while the simulator holds it."""

    def __init__(self, sim: ConsulSimulator, path: str, **kwargs: Any) -> None:
        self.response: requests.Response | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.elapsed = 0.0

        def run() -> None:
            try:
                self.response = get(sim, path, **kwargs)
            except requests.RequestException as exc:
                self.error = exc
            self.elapsed = time.monotonic() - self.started

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 60.0) -> requests.Response:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request was never answered"
        assert self.response is not None, self.error
        return self.response


def without_indexes(value: Any) -> Any:
    """``value`` without Raft indexes and node IDs, which differ from one cluster to another."""
    if isinstance(value, dict):
        return {k: without_indexes(v) for k, v in value.items() if k not in ("CreateIndex", "ModifyIndex", "ID")}
    if isinstance(value, list):
        return [without_indexes(item) for item in value]
    return value


# -- payload shapes (live agent: tests/data/consul/*-live.json; agent/structs/structs.go) --------------------------


def test_catalog_answer_has_the_live_agents_shape(sim: ConsulSimulator) -> None:
    # catalog-service-live.json; agent/agent.go addServiceInternal adds lan_ipv4 for an IP service address.
    sim.register(
        "docker_registry",
        "10.244.0.21",
        node="cell-1",
        service_id="docker_registry-1",
        service_address="10.244.2.6",
        port=8080,
        tags=["v2"],
        service_tagged_addresses={"wan": ("198.18.0.6", 443), "wan_ipv4": ("198.18.0.6", 443)},
    )
    sim.register("docker_registry", "10.244.0.22", node="cell-2", service_id="docker_registry")
    live = json.loads((PAYLOADS / "catalog-service-live.json").read_text())
    response = get(sim, "/v1/catalog/service/docker_registry")
    assert without_indexes(response.json()) == without_indexes(live)
    assert list(response.json()[0]) == list(live[0])  # the keys in the Go struct's order


def test_health_answer_has_the_live_agents_shape(sim: ConsulSimulator) -> None:
    # health-service-live.json: Service.Port absent when 0 (NodeService.Port omitempty), maintenance critical.
    sim.register(
        "docker_registry",
        "10.244.0.21",
        node="cell-1",
        service_id="docker_registry-1",
        service_address="10.244.2.6",
        port=8080,
        tags=["v2"],
        check=False,
    )
    sim.register("docker_registry", "10.244.0.22", node="cell-2", service_id="docker_registry", check=False)
    sim.node_maintenance("cell-2", reason="draining cell-2 for an upgrade")
    live = json.loads((PAYLOADS / "health-service-live.json").read_text())
    answer = get(sim, "/v1/health/service/docker_registry").json()
    assert without_indexes(answer) == without_indexes(live)
    assert "Port" not in answer[1]["Service"]
    assert answer[1]["Service"]["Address"] == ""


def test_tagged_addresses_are_capitalised_and_absent_when_empty(sim: ConsulSimulator) -> None:
    # structs.ServiceAddress has no JSON tags; ServiceTaggedAddresses is omitempty (agent/structs/structs.go).
    sim.register("v6", "fd00::1", node="a", service_address="fd00::5", port=80)
    sim.register("named", "10.0.0.1", node="b", service_address="registry.internal", port=80)
    v6 = get(sim, "/v1/catalog/service/v6").json()[0]
    assert v6["ServiceTaggedAddresses"] == {
        "lan_ipv6": {"Address": "fd00::5", "Port": 80},
        "wan_ipv6": {"Address": "fd00::5", "Port": 80},
    }
    assert v6["TaggedAddresses"] == {"lan": "fd00::1", "lan_ipv6": "fd00::1", "wan": "fd00::1", "wan_ipv6": "fd00::1"}
    named = get(sim, "/v1/health/service/named").json()[0]
    assert "TaggedAddresses" not in named["Service"]  # a hostname gets no lan_ipv4/wan_ipv4
    assert named["Service"]["Port"] == 80


def test_no_tags_is_an_empty_list_never_null(sim: ConsulSimulator) -> None:
    # agent/catalog_endpoint.go and health_endpoint.go replace nil Tags/ServiceTags with [].
    sim.register("r", "10.0.0.1", tags=None)
    assert get(sim, "/v1/catalog/service/r").json()[0]["ServiceTags"] == []
    health = get(sim, "/v1/health/service/r").json()[0]
    assert health["Service"]["Tags"] == []
    assert all(check["ServiceTags"] == [] for check in health["Checks"])


def test_maintenance_checks_are_critical_and_fail_passing(sim: ConsulSimulator) -> None:
    # agent/agent.go EnableNodeMaintenance / EnableServiceMaintenance; health_endpoint.go filterNonPassing.
    sim.register("r", "10.0.0.1", node="a", service_id="r1")
    sim.register("r", "10.0.0.2", node="b", service_id="r2")
    sim.register("r", "10.0.0.3", node="c", service_id="r3")
    sim.node_maintenance("a")
    assert sim.service_maintenance("r2", reason="upgrade") == 1
    entries = {e["Node"]["Node"]: e for e in get(sim, "/v1/health/service/r").json()}
    node_check = next(c for c in entries["a"]["Checks"] if c["CheckID"] == "_node_maintenance")
    service_check = next(c for c in entries["b"]["Checks"] if c["CheckID"] == "_service_maintenance:r2")
    assert (node_check["Status"], node_check["Name"]) == ("critical", "Node Maintenance Mode")
    assert node_check["Notes"].startswith("Maintenance mode is enabled for this node")
    assert (service_check["Status"], service_check["Notes"], service_check["ServiceID"]) == (
        "critical",
        "upgrade",
        "r2",
    )
    assert [e["Node"]["Node"] for e in get(sim, "/v1/health/service/r?passing").json()] == ["c"]
    sim.node_maintenance("a", enable=False)
    sim.service_maintenance("r2", enable=False)
    assert len(get(sim, "/v1/health/service/r?passing").json()) == 3
    with pytest.raises(ValueError, match="no node"):
        sim.node_maintenance("nowhere")


def test_check_statuses_are_only_consuls_three(sim: ConsulSimulator) -> None:
    # api/health.go: HealthPassing, HealthWarning, HealthCritical (maintenance is a critical check, not a status).
    with pytest.raises(ValueError, match="status"):
        sim.register("r", "10.0.0.1", status="maintenance")
    sid = sim.register("r", "10.0.0.1")
    with pytest.raises(ValueError, match="status"):
        sim.set_status(sid, "maintenance")


def test_the_status_of_a_verbatim_entry_can_change(sim: ConsulSimulator) -> None:
    sim.register_entry({"ServiceName": "r", "ServiceID": "r1", "Node": "n", "Address": "10.0.0.1"})
    assert len(get(sim, "/v1/health/service/r?passing").json()) == 1
    assert sim.set_status("r1", "critical") == 1
    assert get(sim, "/v1/health/service/r?passing").json() == []


def test_json_is_compact_unless_pretty(sim: ConsulSimulator) -> None:
    # agent/http.go wrap: json.Marshal, or MarshalIndent with four spaces and a newline under ?pretty.
    sim.register("r", "10.0.0.1", meta={"html": "<a&b>"})
    compact = get(sim, "/v1/catalog/service/r")
    assert compact.text.startswith('[{"ID":')
    assert "\\u003ca\\u0026b\\u003e" in compact.text  # Go's HTML escaping
    pretty = get(sim, "/v1/catalog/service/r?pretty")
    assert pretty.text.startswith('[\n    {\n        "ID": ')
    assert pretty.text.endswith("]\n")
    assert pretty.json() == compact.json()


def test_documented_catalog_payload_is_served_verbatim(sim: ConsulSimulator) -> None:
    expected = json.loads((PAYLOADS / "catalog-service-web.json").read_text())
    assert sim.seed_from_file(PAYLOADS / "catalog-service-web.json") == 1
    response = get(sim, "/v1/catalog/service/web")
    assert response.status_code == 200
    assert response.json() == expected


def test_documented_health_payload_is_served_verbatim_under_its_url(sim: ConsulSimulator) -> None:
    expected = json.loads((PAYLOADS / "health-service-my-service.json").read_text())
    sim.seed_from_file(PAYLOADS / "health-service-my-service.json", service="my-service")
    assert get(sim, "/v1/health/service/my-service").json() == expected
    catalog = get(sim, "/v1/catalog/service/my-service").json()
    assert (catalog[0]["Address"], catalog[0]["ServicePort"], catalog[0]["ServiceTags"]) == (
        "10.1.10.12",
        8000,
        ["primary"],
    )


def test_seed_payload_keeps_its_missing_keys(sim: ConsulSimulator) -> None:
    sim.seed_from_file(PAYLOADS / "seed-catalog-service.json")
    catalog = get(sim, "/v1/catalog/service/redis").json()
    assert catalog == json.loads((PAYLOADS / "seed-catalog-service.json").read_text())
    health = get(sim, "/v1/health/service/redis").json()
    assert "Address" not in health[0]["Service"]
    assert health[0]["Service"]["Tags"] is None
    assert health[0]["Node"]["Address"] == "10.1.10.12"


def test_live_payloads_can_be_served_verbatim(sim: ConsulSimulator) -> None:
    for name, kind in (("catalog-service-live.json", "catalog"), ("health-service-live.json", "health")):
        sim.clear()
        expected = json.loads((PAYLOADS / name).read_text())
        assert sim.seed_from_file(PAYLOADS / name) == 2
        assert get(sim, f"/v1/{kind}/service/docker_registry").json() == expected


# -- headers (agent/http.go setMeta, setIndex, setACLDefaultPolicy, setCacheMeta) ----------------------------------


def test_headers_of_a_success(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5")
    response = get(sim, "/v1/health/service/docker_registry")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Consul-Index"] == str(sim.service_index("docker_registry"))
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"
    assert response.headers["X-Consul-Effective-Consistency"] == "leader"
    assert response.headers["X-Consul-Default-ACL-Policy"] == "allow"
    assert "X-Cache" not in response.headers
    assert "X-Consul-Results-Filtered-By-ACLs" not in response.headers
    assert get(sim, "/v1/health/service/docker_registry?stale").headers["X-Consul-Effective-Consistency"] == "stale"
    consistent = get(sim, "/v1/health/service/docker_registry?consistent")
    assert consistent.headers["X-Consul-Effective-Consistency"] == "consistent"


def test_cached_reads_miss_then_hit_until_the_service_changes(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    first = get(sim, "/v1/catalog/service/r?cached")
    second = get(sim, "/v1/catalog/service/r?cached")
    assert first.headers["X-Cache"] == "MISS"
    assert "Age" not in first.headers
    assert second.headers["X-Cache"] == "HIT"
    assert int(second.headers["Age"]) >= 0
    sim.register("other", "10.0.0.9")  # another service: this one's entry is still fresh
    assert get(sim, "/v1/catalog/service/r?cached").headers["X-Cache"] == "HIT"
    sim.register("r", "10.0.0.2")
    assert get(sim, "/v1/catalog/service/r?cached").headers["X-Cache"] == "MISS"


# -- query parameters (agent/http.go parseWait, parseConsistency; catalog_endpoint.go; health_endpoint.go) ---------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("100ms", 0.1),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("0", 0.0),
        ("-0", 0.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("-1s", -1.0),
        ("+2m", 120.0),
        ("3\u00b5s", 3e-6),
        ("1h2m3s4ms", 3723.004),
    ],
)
def test_parse_duration_reads_go_durations(text: str, seconds: float) -> None:
    # Go's time.ParseDuration, which parseWait uses.
    assert parse_duration(text) == pytest.approx(seconds)


GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@given(
    parts=st.lists(st.tuples(st.integers(0, 10**5), st.sampled_from(sorted(GO_UNITS))), min_size=1, max_size=4),
    sign=st.sampled_from(["", "-", "+"]),
)
def test_composed_go_durations_parse(parts: list[tuple[int, str]], sign: str) -> None:
    text = sign + "".join(f"{number}{unit}" for number, unit in parts)
    expected = sum(number * GO_UNITS[unit] for number, unit in parts) * (-1 if sign == "-" else 1)
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "s", "5x", "5s junk", "1s2", "ms", "10", ".s", "-", "5 s", "1e3s", "9999999h"])
def test_parse_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("wait=soon&index=5", "Invalid wait time"),
        ("wait=5&index=5", "Invalid wait time"),
        ("wait=soon&index=x", "Invalid wait time"),  # wait is read before index
        ("index=x", "Invalid index"),
        ("index=-1", "Invalid index"),
        ("index=1.5", "Invalid index"),
        ("index=18446744073709551616", "Invalid index"),
        ("stale&consistent", "Cannot specify ?stale with ?consistent, conflicting semantics."),
        ("cached&consistent", "Cannot specify ?cached with ?consistent, conflicting semantics."),
        ("stale&consistent&wait=x", "Cannot specify ?stale with ?consistent, conflicting semantics."),
    ],
)
def test_parameters_consul_refuses_are_400_with_its_text(sim: ConsulSimulator, query: str, body: str) -> None:
    for kind in ("catalog", "health"):
        response = get(sim, f"/v1/{kind}/service/r?{query}")
        assert (response.status_code, response.text) == (400, body)
        assert response.headers["Content-Type"].startswith("text/plain")


def test_empty_wait_and_index_are_ignored(sim: ConsulSimulator) -> None:
    # parseWait reads them only when non-empty.
    sim.register("r", "10.0.0.1")
    response = get(sim, "/v1/catalog/service/r?wait=&index=")
    assert response.status_code == 200
    assert len(response.json()) == 1


def test_wait_of_zero_or_less_means_the_default_and_at_most_ten_minutes() -> None:
    # agent/consul/server.go RPCQueryTimeout: <= 0 is DefaultQueryTime (5m), above MaxQueryTime (10m) capped.
    def timeout(wait: str) -> float:
        return parse_query("catalog", "r", [("wait", wait), ("index", "3")], default_datacenter="dc1").timeout()

    assert timeout("0s") == 300.0
    assert timeout("-1s") == 300.0
    assert timeout("20m") == 600.0
    assert timeout("90s") == 90.0
    assert parse_query("catalog", "r", [("index", "3")], default_datacenter="dc1").timeout() == 300.0


def test_wait_of_zero_blocks_over_http(sim: ConsulSimulator) -> None:
    sid = sim.register("r", "10.0.0.1")
    index = sim.service_index("r")
    held = Background(sim, f"/v1/catalog/service/r?index={index}&wait=0s")
    in_flight(sim)
    sim.set_status(sid, "warning")  # a change to r: the held query answers with it
    assert int(held.result().headers["X-Consul-Index"]) > index


@pytest.mark.parametrize(
    ("value", "filters"),
    [("", True), ("true", True), ("1", True), ("T", True), ("false", False), ("0", False), ("F", False)],
)
def test_passing_is_a_go_boolean(sim: ConsulSimulator, value: str, filters: bool) -> None:
    # health_endpoint.go: ?passing alone, or strconv.ParseBool of its value.
    sim.register("r", "10.0.0.1")
    sim.register("r", "10.0.0.2", status="critical")
    sim.register("r", "10.0.0.3", status="warning")
    query = "passing" if value == "" else f"passing={value}"
    answer = get(sim, f"/v1/health/service/r?{query}").json()
    assert len(answer) == (1 if filters else 3)


@pytest.mark.parametrize("value", ["yes", "no", "2", "TRUE ", "on"])
def test_passing_that_is_not_a_boolean_is_400(sim: ConsulSimulator, value: str) -> None:
    response = get(sim, "/v1/health/service/r", params={"passing": value})
    assert (response.status_code, response.text) == (400, "Invalid value for ?passing")
    # The catalog endpoint has no passing parameter: it is ignored there.
    sim.register("r", "10.0.0.2", status="critical")
    assert len(get(sim, "/v1/catalog/service/r", params={"passing": value}).json()) == 1


def test_tags_repeat_and_match_case_insensitively(sim: ConsulSimulator) -> None:
    # agent/consul/state/catalog.go serviceTagsFilter / serviceTagFilter (strings.ToLower).
    sim.register("r", "10.0.0.1", node="a", tags=["Primary", "v2"])
    sim.register("r", "10.0.0.2", node="b", tags=["primary"])
    sim.register("r", "10.0.0.3", node="c", tags=None)
    for kind, key in (("catalog", "Node"), ("health", "Node")):
        nodes = [
            e[key] if kind == "catalog" else e[key]["Node"]
            for e in get(sim, f"/v1/{kind}/service/r?tag=PRIMARY").json()
        ]
        assert nodes == ["a", "b"]
    assert [e["Node"] for e in get(sim, "/v1/catalog/service/r?tag=primary&tag=V2").json()] == ["a"]
    assert get(sim, "/v1/catalog/service/r?tag=zzz").json() == []


def test_node_meta_repeats_and_every_pair_must_match(sim: ConsulSimulator) -> None:
    # agent/http.go parseMetaFilter; structs.SatisfiesMetaFilters.
    sim.register("r", "10.0.0.1", node="a", node_meta={"rack": "r1", "zone": "z1"})
    sim.register("r", "10.0.0.2", node="b", node_meta={"rack": "r1", "zone": "z2"})
    sim.register("r", "10.0.0.3", node="c")
    assert [e["Node"] for e in get(sim, "/v1/catalog/service/r?node-meta=rack:r1").json()] == ["a", "b"]
    both = get(sim, "/v1/health/service/r?node-meta=rack:r1&node-meta=zone:z2").json()
    assert [e["Node"]["Node"] for e in both] == ["b"]
    segment = get(sim, "/v1/catalog/service/r?node-meta=consul-network-segment:").json()
    assert [e["Node"] for e in segment] == ["c"]  # the agent's own meta, empty value


@pytest.mark.parametrize("kind", ["catalog", "health"])
def test_missing_service_name_is_400(sim: ConsulSimulator, kind: str) -> None:
    response = get(sim, f"/v1/{kind}/service/")
    assert (response.status_code, response.text) == (400, "Missing service name")


def test_unknown_service_is_an_empty_list(sim: ConsulSimulator) -> None:
    response = get(sim, "/v1/catalog/service/nothing-here")
    assert response.status_code == 200
    assert response.json() == []
    assert int(response.headers["X-Consul-Index"]) >= 1


def test_unknown_datacenter_is_500_in_plain_text(sim: ConsulSimulator) -> None:
    response = get(sim, "/v1/catalog/service/web?dc=mars")
    assert (response.status_code, response.text) == (500, "No path to datacenter")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_datacenters_hold_their_own_instances(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", datacenter="dc1")
    sim.register("r", "10.0.0.2", datacenter="dc2")
    assert [e["Address"] for e in get(sim, "/v1/catalog/service/r").json()] == ["10.0.0.1"]
    assert [e["Address"] for e in get(sim, "/v1/catalog/service/r?dc=dc2").json()] == ["10.0.0.2"]


def test_instances_come_in_consuls_order(sim: ConsulSimulator) -> None:
    # agent/consul/state/catalog_schema.go: the services table's id index (node, then service id, lowercased).
    sim.register("r", "10.0.0.3", node="c")
    sim.register("r", "10.0.0.1", node="B")
    sim.register("r", "10.0.0.2", node="a")
    assert [e["Node"] for e in get(sim, "/v1/catalog/service/r").json()] == ["a", "B", "c"]


# -- the filter language (go-bexpr; api-docs/features/filtering.mdx) -------------------------------------------------


@pytest.fixture
def filtered(sim: ConsulSimulator) -> ConsulSimulator:
    sim.register(
        "r", "10.0.0.1", node="cell-1", port=8080, tags=["prod", "v2"], meta={"zone": "a", "k-1": "x"}, check=False
    )
    sim.register("r", "10.0.0.2", node="cell-2", tags=[], meta={"zone": "b"}, status="critical")
    return sim


CATALOG_FILTERS = [
    ('ServiceTags contains "prod"', ["cell-1"]),
    ('ServiceTags not contains "prod"', ["cell-2"]),
    ('"prod" in ServiceTags', ["cell-1"]),
    ('"prod" not in ServiceTags', ["cell-2"]),
    ("prod in ServiceTags", ["cell-1"]),
    ('ServiceMeta.zone == "a"', ["cell-1"]),
    ('ServiceMeta.zone != "a"', ["cell-2"]),
    ('ServiceMeta["k-1"] == "x"', ["cell-1"]),
    ('ServiceMeta["k-1"] != "x"', ["cell-2"]),  # a missing key is never equal
    ('"k-1" in ServiceMeta', ["cell-1"]),
    ("ServiceMeta is empty", []),
    ("ServiceMeta is not empty", ["cell-1", "cell-2"]),
    ("Node == `cell-2`", ["cell-2"]),
    ('Node matches "^cell-[12]$"', ["cell-1", "cell-2"]),
    ('Node not matches "1"', ["cell-2"]),
    ('Address contains "0.0.1"', ["cell-1"]),
    ("ServicePort == 8080", ["cell-1"]),
    ('ServicePort == "8080"', ["cell-1"]),
    ("ServicePort != 8080", ["cell-2"]),
    ('ServicePort == "0x1F90"', ["cell-1"]),  # coerced as strconv.ParseInt(value, 0, 64)
    ("ServiceEnableTagOverride == false", ["cell-1", "cell-2"]),
    ("ServiceWeights.Passing == 1", ["cell-1", "cell-2"]),
    ('ServiceMeta.zone == "a" or Node == "cell-2"', ["cell-1", "cell-2"]),
    ('ServiceMeta.zone == "a" and Node == "cell-2"', []),
    ('not (ServiceMeta.zone == "a")', ["cell-2"]),
    ('not not ServiceMeta.zone == "a"', ["cell-1"]),
    ("ServiceTags is empty", ["cell-2"]),
    ("ServiceTags is not empty", ["cell-1"]),
    ('TaggedAddresses.lan == "10.0.0.2"', ["cell-2"]),
    ("ServiceTaggedAddresses.lan_ipv4.Port == 8080", []),  # no service address: no tagged address added
    ('NodeMeta["consul-network-segment"] == ""', ["cell-1", "cell-2"]),
    (' ( Node == "cell-1" ) ', ["cell-1"]),
]


@pytest.mark.parametrize(("expression", "expected"), CATALOG_FILTERS)
def test_catalog_filters(filtered: ConsulSimulator, expression: str, expected: list[str]) -> None:
    response = get(filtered, "/v1/catalog/service/r", params={"filter": expression})
    assert response.status_code == 200, response.text
    assert [e["Node"] for e in response.json()] == expected


HEALTH_FILTERS = [
    ('Service.Tags contains "prod"', ["cell-1"]),
    ('Node.Node == "cell-2"', ["cell-2"]),
    ('Checks.Status == "critical"', ["cell-2"]),  # any check (go-bexpr evaluates slices as "any")
    ('Checks.Status != "passing"', ["cell-2"]),
    ('Checks.CheckID == "serfHealth"', ["cell-1", "cell-2"]),
    ("Checks is not empty", ["cell-1", "cell-2"]),
    ("Service.Port == 0", ["cell-2"]),  # Port is absent from the JSON, 0 in the Go struct
    ('Service.Meta.zone == "b"', ["cell-2"]),
    ("Node.Meta is not empty", ["cell-1", "cell-2"]),
]


@pytest.mark.parametrize(("expression", "expected"), HEALTH_FILTERS)
def test_health_filters(filtered: ConsulSimulator, expression: str, expected: list[str]) -> None:
    response = get(filtered, "/v1/health/service/r", params={"filter": expression})
    assert response.status_code == 200, response.text
    assert [e["Node"]["Node"] for e in response.json()] == expected


REFUSED_FILTERS = [
    ('ServiceTags == "prod"', "catalog"),  # == on a list
    ('Nope == "x"', "catalog"),  # unknown selector
    ('Service.Tags contains "x"', "catalog"),  # a health selector on the catalog
    ('ServiceTags contains "x"', "health"),  # a catalog selector on health
    ("ServicePort matches `8`", "catalog"),  # matches on a number
    ("ServicePort contains 8", "catalog"),
    ("Node is empty", "catalog"),  # is empty on a string
    ("ServiceMeta == x", "catalog"),  # == on a map
    ('ServicePort == "abc"', "catalog"),  # not a number
    ("ServiceEnableTagOverride == maybe", "catalog"),
    ('Node matches "("', "catalog"),  # a regular expression that does not compile
    ("Checks == x", "health"),
    ('Node.Meta["consul-network-segment"] is empty', "health"),  # is empty on a string
    ("Checks.Nope == x", "health"),
    ("ServiceTags contains", "catalog"),
    ("(Node == a", "catalog"),
    ("Node === a", "catalog"),
    ("Node == cell-1", "catalog"),  # a bare value is an identifier: '-' ends it
    ("Node == 5x", "catalog"),
    ("ServicePort == 0x1F90", "catalog"),  # an unquoted number is decimal
    ("and", "catalog"),
    ("", "catalog"),
    ('Node == "\\x"', "catalog"),
    ('Node == "a', "catalog"),
    ("not(Node == a)", "catalog"),  # not needs a space
    ('"x" in', "catalog"),
    ('ServiceMeta["k"', "catalog"),
]


@pytest.mark.parametrize(("expression", "kind"), REFUSED_FILTERS)
def test_filter_consul_refuses_is_500_with_its_text(sim: ConsulSimulator, expression: str, kind: str) -> None:
    sim.register("r", "10.0.0.1")
    response = get(sim, f"/v1/{kind}/service/r", params={"filter": expression} if expression else {"filter": " "})
    assert response.status_code == 500, response.text
    assert response.text.startswith(FILTER_REFUSED + ": ")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_filter_is_refused_even_for_an_unknown_service(sim: ConsulSimulator) -> None:
    # catalog_endpoint.go: bexpr.CreateFilter runs before the query, whatever it finds.
    response = get(sim, "/v1/catalog/service/nothing", params={"filter": "Nope == 1"})
    assert response.status_code == 500
    assert response.text == f"{FILTER_REFUSED}: Selector 'Nope' is not valid"


FILTER_WORDS = [
    "ServiceTags",
    "ServiceMeta.zone",
    'ServiceMeta["zone"]',
    "Node",
    "ServicePort",
    "contains",
    "not",
    "in",
    "is",
    "empty",
    "matches",
    "==",
    "!=",
    "and",
    "or",
    "(",
    ")",
    '"prod"',
    '"a"',
    "cell1",
    "8080",
    "-1.5",
    '"\\"',
    "`x`",
    '"[("',
]


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator() as simulator:
        simulator.register("r", "10.0.0.1", node="cell1", tags=["prod"], meta={"zone": "a"})
        yield simulator


@given(expression=st.one_of(st.text(max_size=60), st.lists(st.sampled_from(FILTER_WORDS), max_size=8).map(" ".join)))
def test_any_filter_is_answered_200_or_refused_as_consul_does(shared_sim: ConsulSimulator, expression: str) -> None:
    response = get(shared_sim, "/v1/catalog/service/r", params={"filter": expression})
    if response.status_code == 200:
        assert isinstance(response.json(), list)
    else:
        assert response.status_code == 500
        assert response.text.startswith(FILTER_REFUSED)
        assert response.headers["Content-Type"].startswith("text/plain")


@given(query=st.lists(st.tuples(st.sampled_from(["wait", "index", "passing", "tag", "dc", "stale", "x"]), st.text())))
def test_any_query_is_answered_as_consul_would(shared_sim: ConsulSimulator, query: list[tuple[str, str]]) -> None:
    # Hostile parameters never make the simulator fail or hold a request without an index.
    query = [(key, value) for key, value in query if key != "index"]
    response = get(shared_sim, "/v1/health/service/r", params=query)
    assert response.status_code in (200, 400, 500), response.text
    if response.status_code != 200:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text in ("Invalid wait time", "Invalid value for ?passing", "No path to datacenter")


# -- blocking queries (agent/blockingquery/blockingquery.go; state/catalog.go maxIndexForService) ------------------


def test_blocking_query_waits_for_a_change_to_its_service(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", node="a")
    index = sim.service_index("r")
    held = Background(sim, f"/v1/catalog/service/r?index={index}&wait=5m")
    in_flight(sim)
    sim.register("r", "10.0.0.2", node="b")
    response = held.result()
    assert int(response.headers["X-Consul-Index"]) > index
    assert len(response.json()) == 2


def test_a_change_to_another_service_wakes_nothing() -> None:
    with ConsulSimulator(jitter=False) as sim:
        sim.register("r", "10.0.0.1")
        index = sim.service_index("r")
        held = Background(sim, f"/v1/catalog/service/r?index={index}&wait=500ms")
        in_flight(sim)
        sim.register("other", "10.0.0.9")
        sim.touch()
        response = held.result()
        assert held.elapsed >= 0.5  # held for the whole wait
        assert response.headers["X-Consul-Index"] == str(index)
        assert sim.index > index  # the Raft index moved; r's did not


def test_touching_a_service_moves_its_index_with_the_same_instances(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    index = sim.service_index("r")
    held = Background(sim, f"/v1/catalog/service/r?index={index}&wait=5m")
    in_flight(sim)
    assert sim.touch("r") == sim.service_index("r")
    response = held.result()
    assert int(response.headers["X-Consul-Index"]) > index
    assert [e["Address"] for e in response.json()] == ["10.0.0.1"]


def test_an_index_above_the_current_one_is_held_for_the_whole_wait() -> None:
    with ConsulSimulator(jitter=False) as sim:
        sim.register("r", "10.0.0.1")
        index = sim.service_index("r")
        started = time.monotonic()
        response = get(sim, f"/v1/catalog/service/r?index={index + 100}&wait=300ms")
        assert time.monotonic() - started >= 0.3
        assert response.headers["X-Consul-Index"] == str(index)


def test_the_wait_has_up_to_a_sixteenth_of_jitter() -> None:
    wait = 0.32
    with ConsulSimulator() as sim:
        index = sim.service_index("r")
        started = time.monotonic()
        get(sim, f"/v1/catalog/service/r?index={index}&wait=320ms")
        elapsed = time.monotonic() - started
        assert elapsed >= wait
        assert elapsed < 3 * (wait + wait / 16) + 2  # a bound derived from the configured wait


@pytest.mark.parametrize("query", ["wait=10m", "index=0&wait=10m"])
def test_no_index_or_index_zero_never_blocks(sim: ConsulSimulator, query: str) -> None:
    # blockingquery.Query: minQueryIndex == 0 is a plain read. A 10m hold would outlast the 30s client timeout.
    sim.register("r", "10.0.0.1")
    assert get(sim, f"/v1/catalog/service/r?{query}").status_code == 200


def test_an_old_index_is_answered_at_once(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    sim.register("r", "10.0.0.2", node="b")
    response = get(sim, "/v1/catalog/service/r?index=1&wait=10m")
    assert int(response.headers["X-Consul-Index"]) > 1


def test_the_index_is_never_zero(sim: ConsulSimulator) -> None:
    # agent/http.go setIndex: an index of 0 is sent as 1.
    sim.register("r", "10.0.0.1")
    sim.reset_index(0)
    for path in ("/v1/catalog/service/r", "/v1/health/service/nothing"):
        assert get(sim, path).headers["X-Consul-Index"] == "1"


def test_per_service_index_for_a_missing_service_follows_the_last_extinction(sim: ConsulSimulator) -> None:
    # maxIndexForService: a service without instances answers service_last_extinction.
    sim.register("gone", "10.0.0.1")
    sim.register("r", "10.0.0.2")
    sim.deregister_service("gone")
    extinct = sim.index
    sim.register("r", "10.0.0.3", node="b")
    assert get(sim, "/v1/catalog/service/gone").headers["X-Consul-Index"] == str(extinct)
    assert get(sim, "/v1/catalog/service/never").headers["X-Consul-Index"] == str(extinct)


def test_a_snapshot_restore_answers_blocked_queries_at_once(sim: ConsulSimulator) -> None:
    # blockingquery.Query returns when the state store is abandoned (a restore).
    for n in range(5):
        sim.register("r", f"10.0.0.{n + 1}", node=f"n{n}")
    index = sim.service_index("r")
    held = Background(sim, f"/v1/catalog/service/r?index={index}&wait=10m")
    in_flight(sim)
    sim.reset_index(2)
    assert held.result().headers["X-Consul-Index"] == "2"


def test_every_change_is_one_write(sim: ConsulSimulator) -> None:
    start = sim.index
    sid = sim.register("r", "10.0.0.1", node="n1")
    sim.register("r", "10.0.0.2", node="n2")
    assert sim.index == start + 2
    assert sim.deregister(sid) == 1
    assert sim.deregister("no-such-id") == 0
    assert sim.index == start + 3
    assert [e["Node"] for e in get(sim, "/v1/catalog/service/r").json()] == ["n2"]
    assert sim.deregister_service("r") == 1
    assert get(sim, "/v1/catalog/service/r").json() == []
    assert sim.touch() == start + 5


def test_a_node_reregistered_elsewhere_moves_all_its_services(sim: ConsulSimulator) -> None:
    # state/catalog.go ensureNodeTxn updates every service index of the node.
    sim.register("a", "10.0.0.1", node="n")
    sim.register("b", "10.0.0.1", node="n")
    before = sim.service_index("b")
    sim.register("a", "10.0.0.9", node="n")
    assert sim.service_index("b") > before
    assert get(sim, "/v1/catalog/service/b").json()[0]["Address"] == "10.0.0.9"


# -- ACLs (agent/consul/acl.go filterACL; rpc.go maskResultsFilteredByACLs; agent/http.go parseTokenInternal) --------


@pytest.mark.parametrize(
    "how",
    [
        {"params": {"token": "bad-secret"}},
        {"headers": {"X-Consul-Token": "bad-secret"}},
        {"headers": {"Authorization": "Bearer bad-secret"}},
    ],
)
def test_unknown_token_is_403_acl_not_found(sim: ConsulSimulator, how: dict[str, Any]) -> None:
    sim.add_token("good-secret", name="reader")
    response = get(sim, "/v1/catalog/service/r", **how)
    assert (response.status_code, response.text) == (403, "ACL not found")
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("params", "headers", "status", "source"),
    [
        ({"token": "good"}, {"X-Consul-Token": "bad", "Authorization": "Bearer bad"}, 200, "query"),
        ({"token": "bad"}, {"X-Consul-Token": "good"}, 403, "query"),
        ({}, {"X-Consul-Token": "good", "Authorization": "Bearer bad"}, 200, "header"),
        ({}, {"X-Consul-Token": "bad", "Authorization": "Bearer good"}, 403, "header"),
        ({}, {"Authorization": "bearer good extra"}, 200, "bearer"),
        ({}, {"Authorization": "Basic good"}, 200, None),  # not a bearer token: anonymous
        ({"token": ""}, {"X-Consul-Token": "good"}, 200, "header"),  # an empty ?token= is no token
    ],
)
def test_token_precedence(
    sim: ConsulSimulator, params: dict[str, str], headers: dict[str, str], status: int, source: str | None
) -> None:
    sim.add_token("good", name="reader")
    response = get(sim, "/v1/catalog/service/r", params=params, headers=headers)
    assert response.status_code == status
    assert sim.requests[-1].token_source == source


def test_a_token_without_rights_is_filtered_not_refused(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", node="cell-1")
    sim.register("r", "10.0.0.2", node="cell-2")
    sim.add_token("all-secret", name="all")
    sim.add_token("some-secret", name="some", services=["r"], nodes=["cell-1"])
    sim.add_token("none-secret", name="none", services=[])
    everything = get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "all-secret"})
    assert len(everything.json()) == 2
    assert "X-Consul-Results-Filtered-By-ACLs" not in everything.headers
    partial = get(sim, "/v1/health/service/r", headers={"Authorization": "Bearer some-secret"})
    assert [e["Node"]["Node"] for e in partial.json()] == ["cell-1"]
    assert partial.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    nothing = get(sim, "/v1/catalog/service/r", params={"token": "none-secret"})
    assert (nothing.status_code, nothing.json()) == (200, [])
    assert nothing.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"


def test_the_filtered_header_is_never_sent_without_a_token(sim: ConsulSimulator) -> None:
    # rpc.go maskResultsFilteredByACLs: the anonymous token must not learn that something is hidden.
    sim.register("r", "10.0.0.1")
    sim.add_token("secret", name="reader")
    anonymous = get(sim, "/v1/catalog/service/r")
    assert anonymous.json() == []
    assert "X-Consul-Results-Filtered-By-ACLs" not in anonymous.headers
    sim.anonymous_services = frozenset({"r"})
    assert len(get(sim, "/v1/catalog/service/r").json()) == 1


def test_default_acl_policy_header(sim: ConsulSimulator) -> None:
    assert get(sim, "/v1/catalog/service/r").headers["X-Consul-Default-ACL-Policy"] == "allow"
    sim.add_token("secret")
    assert sim.acl_enabled
    assert get(sim, "/v1/catalog/service/r").headers["X-Consul-Default-ACL-Policy"] == "deny"


def test_answers_are_kept_per_token_rights_not_per_token_name(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", node="a")
    sim.register("r", "10.0.0.2", node="b")
    sim.add_token("narrow", name="same", nodes=["a"])
    sim.add_token("wide", name="same")
    assert len(get(sim, "/v1/catalog/service/r", params={"token": "narrow"}).json()) == 1
    assert len(get(sim, "/v1/catalog/service/r", params={"token": "wide"}).json()) == 2


def test_add_token_has_no_knob_for_a_refusal_consul_never_sends(sim: ConsulSimulator) -> None:
    with pytest.raises(TypeError):
        sim.add_token("secret", deny=True)  # type: ignore[call-arg]


def test_request_log_never_holds_the_token(sim: ConsulSimulator) -> None:
    sim.add_token("very-secret-token", name="reader")
    get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "very-secret-token"})
    get(sim, "/v1/catalog/service/r", params={"token": "very-secret-token", "dc": "dc1"})
    get(sim, "/v1/catalog/service/r", headers={"Authorization": "Bearer very-secret-token"})
    get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "other-secret-value"})
    get(sim, "/v1/catalog/service/r")
    log = sim.requests
    assert [(r.token, r.token_source, r.status) for r in log] == [
        ("reader", "header", 200),
        ("reader", "query", 200),
        ("reader", "bearer", 200),
        ("<unknown>", "header", 403),
        (None, None, 200),
    ]
    assert log[0].header("x-consul-token") == "<redacted>"
    assert log[1].param("token") == "<redacted>"
    assert log[1].param("dc") == "dc1"
    assert log[2].header("authorization") == "<redacted>"
    text = repr(log) + repr(sim)
    assert "very-secret-token" not in text
    assert "other-secret-value" not in text
    assert isinstance(log[0], RecordedRequest)


# -- no leader, rate limits (agent/consul/rpc.go forward, rpc_hold_timeout; agent/consul/rate) ---------------------


def test_rpc_hold_timeout_defaults_to_consuls_seven_seconds() -> None:
    with ConsulSimulator() as sim:
        assert sim.rpc_hold_timeout == 7.0
    with pytest.raises(ValueError, match="rpc_hold_timeout"):
        ConsulSimulator(rpc_hold_timeout=-1)


@pytest.mark.parametrize("query", ["", "?consistent"])
def test_no_leader_holds_non_stale_reads_then_fails(query: str) -> None:
    hold = 0.3
    with ConsulSimulator(rpc_hold_timeout=hold) as sim:
        sim.register("r", "10.0.0.1")
        sim.known_leader = False
        started = time.monotonic()
        refused = get(sim, f"/v1/catalog/service/r{query}")
        assert time.monotonic() - started >= hold
        assert (refused.status_code, refused.text) == (500, "No cluster leader")


def test_no_leader_answers_stale_reads_at_once() -> None:
    with ConsulSimulator(rpc_hold_timeout=600) as sim:  # a held stale read would outlast the client's timeout
        sim.register("r", "10.0.0.1")
        sim.known_leader = False
        sim.last_contact_ms = 1234
        stale = get(sim, "/v1/catalog/service/r?stale")
        assert stale.status_code == 200
        assert stale.headers["X-Consul-KnownLeader"] == "false"
        assert stale.headers["X-Consul-LastContact"] == "1234"
        assert len(stale.json()) == 1


def test_a_leader_elected_during_the_hold_answers_the_held_read() -> None:
    with ConsulSimulator(rpc_hold_timeout=600) as sim:
        sim.register("r", "10.0.0.1")
        sim.known_leader = False
        held = Background(sim, "/v1/catalog/service/r")
        in_flight(sim)
        sim.known_leader = True
        response = held.result()
        assert response.status_code == 200
        assert response.headers["X-Consul-KnownLeader"] == "true"


def test_rate_limit_is_429(sim: ConsulSimulator) -> None:
    sim.rate_limit(times=2)
    answers = [get(sim, "/v1/catalog/service/r") for _ in range(3)]
    assert [(r.status_code, r.text) for r in answers[:2]] == [(429, "rate limit exceeded, try again later")] * 2
    assert answers[2].status_code == 200


# -- the request log ---------------------------------------------------------------------------------------------------


def test_clear_requests_keeps_a_request_in_flight(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    get(sim, "/v1/catalog/service/r")
    held = Background(sim, f"/v1/catalog/service/r?index={sim.service_index('r')}&wait=5m")
    in_flight(sim)
    sim.clear_requests()
    assert [(r.param("wait"), r.status) for r in sim.requests] == [("5m", None)]
    sim.register("r", "10.0.0.2", node="b")
    held.result()
    eventually(lambda: sim.requests[0].status == 200, "the held request completed in the log")
    assert len(sim.requests) == 1
    sim.clear_requests()
    assert sim.requests == []


# -- encoding once (item: answers cached per service index) -------------------------------------------------------


def test_each_answer_is_encoded_once_per_service_index(sim: ConsulSimulator) -> None:
    for n in range(20):
        sim.register("r", f"10.0.1.{n}", node=f"n{n}")
    with mock.patch.object(shapes, "encode", wraps=shapes.encode) as encode:
        first = get(sim, "/v1/health/service/r")
        assert encode.call_count == 20  # one per instance, the list joined from them
        assert get(sim, "/v1/health/service/r").content == first.content
        get(sim, "/v1/health/service/r?tag=x")  # another shape reuses the instances' encoding
        assert encode.call_count == 20
        sim.register("r", "10.0.2.1", node="new")
        assert len(get(sim, "/v1/health/service/r").json()) == 21
        assert encode.call_count == 21


# -- faults --------------------------------------------------------------------------------------------------------


def test_fail_injects_status_and_plain_body_once(sim: ConsulSimulator) -> None:
    sim.fail(500, "No cluster leader")
    sim.fail(503, "busy", times=2)
    statuses = [get(sim, "/v1/catalog/service/r") for _ in range(4)]
    assert [(r.status_code, r.text) for r in statuses[:3]] == [(500, "No cluster leader"), (503, "busy"), (503, "busy")]
    assert statuses[0].headers["Content-Type"].startswith("text/plain")
    assert statuses[3].status_code == 200
    assert [r.fault for r in sim.requests] == ["error", "error", "error", None]


def test_faults_restricted_to_a_path(sim: ConsulSimulator) -> None:
    sim.fail(503, "busy", path="/v1/health/")
    assert get(sim, "/v1/catalog/service/r").status_code == 200
    assert get(sim, "/v1/health/service/r").status_code == 503
    assert get(sim, "/v1/health/service/r").status_code == 200


def test_respond_raw_sends_malformed_bodies_with_consul_headers(sim: ConsulSimulator) -> None:
    sim.respond_raw("<html>proxy error</html>", content_type="text/html")
    sim.respond_raw(b'{"not": "a list"}')
    first = get(sim, "/v1/catalog/service/r")
    assert (first.status_code, first.text) == (200, "<html>proxy error</html>")
    assert first.headers["X-Consul-Index"] == str(sim.index)
    assert get(sim, "/v1/catalog/service/r").json() == {"not": "a list"}
    sim.respond_raw(b"[]", headers={"X-Consul-Index": "0", "X-Extra": "yes"})
    odd = get(sim, "/v1/catalog/service/r")
    assert (odd.headers["X-Consul-Index"], odd.headers["X-Extra"], odd.json()) == ("0", "yes", [])


def test_delay_answers_late(sim: ConsulSimulator) -> None:
    sim.delay(0.3)
    started = time.monotonic()
    assert get(sim, "/v1/catalog/service/r").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_hang_makes_the_client_time_out(sim: ConsulSimulator) -> None:
    sim.hang()
    with pytest.raises(requests.Timeout):
        get(sim, "/v1/catalog/service/r", timeout=0.5)
    eventually(lambda: [(r.fault, r.status) for r in sim.requests] == [("hang", None)], "the hang logged")


def test_drop_closes_without_an_answer(sim: ConsulSimulator) -> None:
    sim.drop()
    with pytest.raises(requests.ConnectionError):
        get(sim, "/v1/catalog/service/r")
    assert get(sim, "/v1/catalog/service/r").status_code == 200


def test_inject_any_fault(sim: ConsulSimulator) -> None:
    sim.inject(Fault("error", status=503, body="busy"), times=1)
    assert get(sim, "/v1/catalog/service/r").status_code == 503
    sim.inject(Fault("error", status=503, body="busy"), times=3)
    sim.clear_faults()
    assert get(sim, "/v1/catalog/service/r").status_code == 200


def test_close_releases_blocked_and_hung_requests() -> None:
    sim = ConsulSimulator()
    sim.hang(path="/v1/catalog/service/hung")
    held = [
        Background(sim, "/v1/catalog/service/hung"),
        Background(sim, f"/v1/catalog/service/r?index={sim.service_index('r')}&wait=5m"),
    ]
    in_flight(sim, 2)
    sim.close()
    for request in held:
        request.thread.join(DEADLINE)
        assert not request.thread.is_alive()
        assert isinstance(request.error, requests.RequestException)
    sim.close()  # twice is fine


def test_unknown_paths_and_methods(sim: ConsulSimulator) -> None:
    assert get(sim, "/v1/kv/x").status_code == 404
    assert requests.put(sim.url + "/v1/catalog/service/r", timeout=DEADLINE).status_code == 405


def test_register_refuses_bad_arguments(sim: ConsulSimulator) -> None:
    with pytest.raises(ValueError, match="status"):
        sim.register("r", "10.0.0.1", status="fine")
    with pytest.raises(ValueError, match="datacenter"):
        sim.register("r", "10.0.0.1", datacenter="dc9")
    with pytest.raises(ValueError, match="pass service="):
        sim.register_entry({"Address": "10.0.0.1"})
    with pytest.raises(ValueError, match="kind"):
        sim.register_entry({"ServiceName": "r"}, kind="other")
    with pytest.raises(ValueError, match="datacenters"):
        ConsulSimulator(datacenters="dc1")


def test_query_errors_carry_status_and_body() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("health", "", [], default_datacenter="dc1")
    assert (caught.value.status, caught.value.body) == (400, "Missing service name")


# -- clients and hosts -------------------------------------------------------------------------------------------------


def test_client_library_sees_the_same(sim: ConsulSimulator) -> None:
    sim.seed_from_file(PAYLOADS / "catalog-service-web.json")
    client = consul.Consul(host=sim.host, port=sim.port)
    index, nodes = client.catalog.service("web")
    assert int(index) == sim.service_index("web")
    assert nodes[0]["ServiceAddress"] == "172.17.0.3"
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        client.catalog.service("web", dc="nowhere")


def test_url_and_address() -> None:
    with ConsulSimulator() as sim:
        host, port = sim.address
        assert sim.url == f"http://{host}:{port}"
        assert host == "127.0.0.1"
        assert "ConsulSimulator" in repr(sim)


def test_ipv6_loopback() -> None:
    try:
        simulator = ConsulSimulator(host="::1")
    except OSError as exc:  # a machine without IPv6 on loopback
        unavailable(f"no IPv6 loopback: {exc}")
    with simulator as sim:
        sim.register("r", "fd00::5", port=80)
        assert sim.url == f"http://[::1]:{sim.port}"
        assert get(sim, "/v1/catalog/service/r").json()[0]["Address"] == "fd00::5"
