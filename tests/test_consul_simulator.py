"""The Consul simulator answers as Consul documents: shapes, headers, statuses, blocking queries, ACLs, faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import consul
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_config.testing.consul import ConsulSimulator, Fault, parse_duration

# Verbatim copies of the documented payloads (see data/consul/README.md).
PAYLOADS = Path(__file__).parent / "data" / "consul"


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator(datacenters=("dc1", "dc2")) as simulator:
        yield simulator


def get(sim: ConsulSimulator, path: str, timeout: float = 5.0, **kwargs: object) -> requests.Response:
    return requests.get(sim.url + path, timeout=timeout, **kwargs)  # type: ignore[arg-type]


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
    assert catalog[0]["Address"] == "10.1.10.12"
    assert catalog[0]["ServicePort"] == 8000
    assert catalog[0]["ServiceTags"] == ["primary"]


def test_seed_payload_keeps_its_missing_keys(sim: ConsulSimulator) -> None:
    sim.seed_from_file(PAYLOADS / "seed-catalog-service.json")
    catalog = get(sim, "/v1/catalog/service/redis").json()
    assert catalog == json.loads((PAYLOADS / "seed-catalog-service.json").read_text())
    health = get(sim, "/v1/health/service/redis").json()
    assert "Address" not in health[0]["Service"]
    assert health[0]["Service"]["Tags"] is None
    assert health[0]["Node"]["Address"] == "10.1.10.12"


def test_headers_of_a_success(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5")
    response = get(sim, "/v1/health/service/docker_registry")
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["X-Consul-Index"]) >= 1
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"
    assert "X-Cache" not in response.headers
    assert "X-Consul-Results-Filtered-By-ACLs" not in response.headers


def test_registered_instance_in_both_shapes(sim: ConsulSimulator) -> None:
    service_id = sim.register(
        "docker_registry",
        "10.0.0.5",
        node="cell-1",
        port=0,
        tags=None,
        meta={"v": "2"},
        service_tagged_addresses={"wan": ("198.18.0.9", 443)},
    )
    catalog = get(sim, "/v1/catalog/service/docker_registry").json()
    assert len(catalog) == 1
    entry = catalog[0]
    assert (entry["Node"], entry["Address"], entry["ServiceAddress"], entry["ServicePort"]) == (
        "cell-1",
        "10.0.0.5",
        "",
        0,
    )
    assert entry["ServiceID"] == service_id
    assert entry["ServiceTags"] is None
    assert entry["ServiceMeta"] == {"v": "2"}
    assert entry["ServiceTaggedAddresses"] == {"wan": {"address": "198.18.0.9", "port": 443}}
    health = get(sim, "/v1/health/service/docker_registry").json()[0]
    assert health["Node"]["Node"] == "cell-1"
    assert health["Service"]["Port"] == 0
    assert {check["CheckID"] for check in health["Checks"]} == {f"service:{service_id}", "serfHealth"}


def test_service_address_none_leaves_the_key_out(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.5", service_address=None)
    assert "ServiceAddress" not in get(sim, "/v1/catalog/service/r").json()[0]


def test_unknown_service_is_an_empty_list(sim: ConsulSimulator) -> None:
    response = get(sim, "/v1/catalog/service/nothing-here")
    assert response.status_code == 200
    assert response.json() == []
    assert int(response.headers["X-Consul-Index"]) >= 1


def test_unknown_datacenter_is_500_in_plain_text(sim: ConsulSimulator) -> None:
    response = get(sim, "/v1/catalog/service/web?dc=mars")
    assert response.status_code == 500
    assert response.text == "No path to datacenter"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_datacenters_hold_their_own_instances(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", datacenter="dc1")
    sim.register("r", "10.0.0.2", datacenter="dc2")
    assert [e["Address"] for e in get(sim, "/v1/catalog/service/r").json()] == ["10.0.0.1"]
    assert [e["Address"] for e in get(sim, "/v1/catalog/service/r?dc=dc2").json()] == ["10.0.0.2"]


def test_tags_must_all_match(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", tags=["a", "b"])
    sim.register("r", "10.0.0.2", tags=["a"])
    sim.register("r", "10.0.0.3", tags=None)
    assert len(get(sim, "/v1/catalog/service/r?tag=a").json()) == 2
    assert [e["Address"] for e in get(sim, "/v1/catalog/service/r?tag=a&tag=b").json()] == ["10.0.0.1"]
    assert get(sim, "/v1/catalog/service/r?tag=zzz").json() == []


def test_passing_filters_health_but_not_catalog(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    bad = sim.register("r", "10.0.0.2", status="critical")
    sim.register("r", "10.0.0.3", status="warning")
    assert len(get(sim, "/v1/health/service/r").json()) == 3
    assert [e["Node"]["Address"] for e in get(sim, "/v1/health/service/r?passing=1").json()] == ["10.0.0.1"]
    assert len(get(sim, "/v1/catalog/service/r?passing=1").json()) == 3
    sim.set_status(bad, "passing")
    assert len(get(sim, "/v1/health/service/r?passing").json()) == 2


def test_stale_with_consistent_is_400(sim: ConsulSimulator) -> None:
    response = get(sim, "/v1/catalog/service/web?stale&consistent")
    assert response.status_code == 400
    assert "stale" in response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert get(sim, "/v1/catalog/service/web?stale").status_code == 200
    assert get(sim, "/v1/catalog/service/web?consistent").status_code == 200


def test_no_leader_serves_only_stale_reads(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    sim.known_leader = False
    sim.last_contact_ms = 1234
    refused = get(sim, "/v1/catalog/service/r")
    assert (refused.status_code, refused.text) == (500, "No cluster leader")
    assert get(sim, "/v1/catalog/service/r?consistent").status_code == 500
    stale = get(sim, "/v1/catalog/service/r?stale")
    assert stale.status_code == 200
    assert stale.headers["X-Consul-KnownLeader"] == "false"
    assert stale.headers["X-Consul-LastContact"] == "1234"
    assert len(stale.json()) == 1


def test_cached_reads_miss_then_hit_until_a_change(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    first = get(sim, "/v1/catalog/service/r?cached")
    second = get(sim, "/v1/catalog/service/r?cached")
    assert first.headers["X-Cache"] == "MISS"
    assert "Age" not in first.headers
    assert second.headers["X-Cache"] == "HIT"
    assert int(second.headers["Age"]) >= 0
    sim.register("r", "10.0.0.2")
    assert get(sim, "/v1/catalog/service/r?cached").headers["X-Cache"] == "MISS"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('ServiceTags contains "prod"', ["10.0.0.1"]),
        ('ServiceTags not contains "prod"', ["10.0.0.2"]),
        ('"prod" in ServiceTags', ["10.0.0.1"]),
        ('"prod" not in ServiceTags', ["10.0.0.2"]),
        ('ServiceMeta.zone == "a"', ["10.0.0.1"]),
        ('ServiceMeta.zone != "a"', ["10.0.0.2"]),
        ("Node == cell-2", ["10.0.0.2"]),
        ('ServiceMeta.zone == "a" or Node == "cell-2"', ["10.0.0.1", "10.0.0.2"]),
        ('ServiceMeta.zone == "a" and Node == "cell-2"', []),
        ('not (ServiceMeta.zone == "a")', ["10.0.0.2"]),
        ("ServiceTags is empty", ["10.0.0.2"]),
        ("ServiceTags is not empty", ["10.0.0.1"]),
    ],
)
def test_filter_subset(sim: ConsulSimulator, expression: str, expected: list[str]) -> None:
    sim.register("r", "10.0.0.1", node="cell-1", tags=["prod"], meta={"zone": "a"})
    sim.register("r", "10.0.0.2", node="cell-2", tags=[], meta={"zone": "b"})
    response = get(sim, "/v1/catalog/service/r", params={"filter": expression})
    assert response.status_code == 200, response.text
    assert sorted(e["Address"] for e in response.json()) == expected


def test_filter_on_health_shape(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", tags=["prod"])
    sim.register("r", "10.0.0.2")
    response = get(sim, "/v1/health/service/r", params={"filter": 'Service.Tags contains "prod"'})
    assert [e["Node"]["Address"] for e in response.json()] == ["10.0.0.1"]


@pytest.mark.parametrize(
    "expression",
    [
        'ServiceName matches "r.*"',
        "ServiceTags contains",
        "(Node == a",
        "Node === a",
        "Node == `a`",
        "and",
        'Node == "\\x"',
        'Node == "\x01"',
    ],
)
def test_filter_it_cannot_parse_is_400(sim: ConsulSimulator, expression: str) -> None:
    response = get(sim, "/v1/catalog/service/r", params={"filter": expression})
    assert response.status_code == 400
    assert response.text.startswith("Failed to create boolean expression evaluator")
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("2h", 7200.0), ("0", 0.0), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "5s junk", "-1s", "1s2", "ms", "10"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_bad_wait_and_index_are_400(sim: ConsulSimulator) -> None:
    assert get(sim, "/v1/catalog/service/r?index=1&wait=soon").status_code == 400
    assert get(sim, "/v1/catalog/service/r?index=x").status_code == 400


def test_blocking_query_waits_for_a_change(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    index = sim.index
    timer = threading.Timer(0.3, lambda: sim.register("r", "10.0.0.2"))
    timer.start()
    started = time.monotonic()
    response = get(sim, f"/v1/catalog/service/r?index={index}&wait=5s")
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.25 <= elapsed < 3
    assert int(response.headers["X-Consul-Index"]) > index
    assert len(response.json()) == 2


def test_blocking_query_returns_at_the_end_of_wait(sim: ConsulSimulator) -> None:
    index = sim.index
    started = time.monotonic()
    response = get(sim, f"/v1/catalog/service/r?index={index}&wait=300ms")
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2
    assert response.headers["X-Consul-Index"] == str(index)


def test_blocking_query_with_an_old_index_answers_at_once(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1")
    started = time.monotonic()
    get(sim, "/v1/catalog/service/r?index=1&wait=10s")
    assert time.monotonic() - started < 1


def test_index_reset_answers_blocked_query_with_a_lower_index(sim: ConsulSimulator) -> None:
    for n in range(5):
        sim.register("r", f"10.0.0.{n + 1}")
    index = sim.index
    assert index >= 6
    timer = threading.Timer(0.2, sim.reset_index)
    timer.start()
    started = time.monotonic()
    response = get(sim, f"/v1/catalog/service/r?index={index}&wait=10s")
    timer.join()
    assert time.monotonic() - started < 3
    assert response.headers["X-Consul-Index"] == "1"
    # A client that resets to an index above the current one is answered at once too.
    assert get(sim, f"/v1/catalog/service/r?index={index}&wait=10s", timeout=3).status_code == 200


def test_wait_is_capped_and_jitter_bounded() -> None:
    with ConsulSimulator(jitter=True) as sim:
        started = time.monotonic()
        get(sim, f"/v1/catalog/service/r?index={sim.index}&wait=160ms")
        assert 0.15 <= time.monotonic() - started < 1.5


def test_close_releases_blocked_and_hung_requests() -> None:
    sim = ConsulSimulator()
    sim.hang(path="/v1/catalog/service/hung")
    errors: list[BaseException] = []

    def blocked(path: str) -> None:
        try:
            get(sim, path, timeout=20)
        except requests.RequestException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=blocked, args=("/v1/catalog/service/hung",)),
        threading.Thread(target=blocked, args=(f"/v1/catalog/service/r?index={sim.index}&wait=5m",)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    sim.close()
    for thread in threads:
        thread.join(timeout=5)
    assert time.monotonic() - started < 5
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 2
    sim.close()  # twice is fine


def test_acl_unknown_token_is_403_acl_not_found(sim: ConsulSimulator) -> None:
    sim.add_token("good-secret", name="reader")
    response = get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "bad-secret"})
    assert (response.status_code, response.text) == (403, "ACL not found")
    assert response.headers["Content-Type"].startswith("text/plain")


def test_acl_deny_token_is_403_permission_denied(sim: ConsulSimulator) -> None:
    sim.add_token("deny-secret", deny=True)
    response = get(sim, "/v1/catalog/service/r", params={"token": "deny-secret"})
    assert (response.status_code, response.text) == (403, "Permission denied")


def test_acl_filters_entries_and_says_so(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", node="cell-1")
    sim.register("r", "10.0.0.2", node="cell-2")
    sim.add_token("all-secret", name="all")
    sim.add_token("some-secret", name="some", services=["r"], nodes=["cell-1"])
    everything = get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "all-secret"})
    assert len(everything.json()) == 2
    assert "X-Consul-Results-Filtered-By-ACLs" not in everything.headers
    partial = get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "some-secret"})
    assert [e["Node"] for e in partial.json()] == ["cell-1"]
    assert partial.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    anonymous = get(sim, "/v1/catalog/service/r")
    assert anonymous.json() == []
    assert anonymous.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    sim.anonymous_services = frozenset({"r"})
    assert len(get(sim, "/v1/catalog/service/r").json()) == 2


def test_request_log_never_holds_the_token(sim: ConsulSimulator) -> None:
    sim.add_token("very-secret-token", name="reader")
    get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "very-secret-token"})
    get(sim, "/v1/catalog/service/r", params={"token": "very-secret-token", "dc": "dc1"})
    get(sim, "/v1/catalog/service/r", headers={"X-Consul-Token": "other-secret-value"})
    get(sim, "/v1/catalog/service/r")
    log = sim.requests
    assert [(r.token, r.token_source, r.status) for r in log] == [
        ("reader", "header", 200),
        ("reader", "query", 200),
        ("<unknown>", "header", 403),
        (None, None, 200),
    ]
    assert log[0].header("x-consul-token") == "<redacted>"
    assert log[1].param("token") == "<redacted>"
    assert log[1].param("dc") == "dc1"
    text = repr(log) + repr(sim)
    assert "very-secret-token" not in text
    assert "other-secret-value" not in text


def test_client_library_sees_the_same(sim: ConsulSimulator) -> None:
    sim.seed_from_file(PAYLOADS / "catalog-service-web.json")
    client = consul.Consul(host=sim.host, port=sim.port)
    index, nodes = client.catalog.service("web")
    assert int(index) == sim.index
    assert nodes[0]["ServiceAddress"] == "172.17.0.3"
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        client.catalog.service("web", dc="nowhere")


def test_fail_injects_status_and_plain_body_once(sim: ConsulSimulator) -> None:
    sim.fail(500, "No cluster leader")
    sim.fail(429, "rate limited", times=2)
    statuses = [get(sim, "/v1/catalog/service/r") for _ in range(4)]
    assert [(r.status_code, r.text) for r in statuses[:3]] == [
        (500, "No cluster leader"),
        (429, "rate limited"),
        (429, "rate limited"),
    ]
    assert statuses[0].headers["Content-Type"].startswith("text/plain")
    assert statuses[3].status_code == 200
    assert [r.fault for r in sim.requests] == ["error", "error", "error", None]


def test_faults_restricted_to_a_path(sim: ConsulSimulator) -> None:
    sim.fail(403, "Permission denied", path="/v1/health/")
    assert get(sim, "/v1/catalog/service/r").status_code == 200
    assert get(sim, "/v1/health/service/r").status_code == 403
    assert get(sim, "/v1/health/service/r").status_code == 200


def test_respond_raw_sends_malformed_bodies_with_consul_headers(sim: ConsulSimulator) -> None:
    sim.respond_raw("<html>proxy error</html>", content_type="text/html")
    sim.respond_raw(b'{"not": "a list"}')
    first = get(sim, "/v1/catalog/service/r")
    assert (first.status_code, first.text) == (200, "<html>proxy error</html>")
    assert first.headers["X-Consul-Index"] == str(sim.index)
    assert get(sim, "/v1/catalog/service/r").json() == {"not": "a list"}


def test_delay_answers_late(sim: ConsulSimulator) -> None:
    sim.delay(0.3)
    started = time.monotonic()
    assert get(sim, "/v1/catalog/service/r").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_hang_makes_the_client_time_out(sim: ConsulSimulator) -> None:
    sim.hang()
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        get(sim, "/v1/catalog/service/r", timeout=0.5)
    assert time.monotonic() - started < 2
    assert sim.requests[-1].fault == "hang"


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


def test_unknown_paths_and_methods(sim: ConsulSimulator) -> None:
    assert get(sim, "/v1/kv/x").status_code == 404
    assert get(sim, "/v1/catalog/service/").status_code == 404
    assert requests.put(sim.url + "/v1/catalog/service/r", timeout=5).status_code == 405


def test_deregister_and_every_change_bumps_the_index(sim: ConsulSimulator) -> None:
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


def test_register_refuses_bad_arguments(sim: ConsulSimulator) -> None:
    with pytest.raises(ValueError, match="status"):
        sim.register("r", "10.0.0.1", status="fine")
    with pytest.raises(ValueError, match="datacenter"):
        sim.register("r", "10.0.0.1", datacenter="dc9")
    with pytest.raises(ValueError, match="pass service="):
        sim.register_entry({"Address": "10.0.0.1"})


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
        pytest.skip(f"no IPv6 loopback: {exc}")
    with simulator as sim:
        sim.register("r", "fd00::5", port=80)
        assert sim.url == f"http://[::1]:{sim.port}"
        assert get(sim, "/v1/catalog/service/r").json()[0]["Address"] == "fd00::5"


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator() as simulator:
        simulator.register("r", "10.0.0.1", node="cell-1", tags=["prod"], meta={"zone": "a"})
        yield simulator


@settings(max_examples=80, deadline=None)
@given(
    expression=st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(
                [
                    "ServiceTags",
                    "ServiceMeta.zone",
                    "Node",
                    "contains",
                    "not",
                    "in",
                    "is",
                    "empty",
                    "==",
                    "!=",
                    "and",
                    "or",
                    "(",
                    ")",
                    '"prod"',
                    '"a"',
                    "cell-1",
                    '"\\"',
                    "`x`",
                ]
            ),
            max_size=8,
        ).map(" ".join),
    )
)
def test_any_filter_is_answered_200_or_400_in_plain_text(shared_sim: ConsulSimulator, expression: str) -> None:
    response = get(shared_sim, "/v1/catalog/service/r", params={"filter": expression})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert isinstance(response.json(), list)
    else:
        assert response.headers["Content-Type"].startswith("text/plain")
