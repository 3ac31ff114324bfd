"""ConsulBackend with the real py-consul client, over real HTTP, against the Consul simulator."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _integration import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
    InvalidInput,
    RegistryConfigError,
    UnknownBackendError,
)
from registry_config.testing.consul import ConsulSimulator

PAYLOADS = Path(__file__).parent / "data" / "consul"
TOKEN = "b1gs3cr3t-t0ken-4f2a"


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator(datacenters=("dc1", "dc2")) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)


def backend(sim: ConsulSimulator, **kwargs: object) -> ConsulBackend:
    return ConsulBackend(sim.url, **kwargs)  # type: ignore[arg-type]


def ips(discovery: Discovery) -> list[str]:
    return [str(instance.address) for instance in discovery.instances]


# -- the documented payloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("passing_only", [True, False])
def test_documented_catalog_payload(sim: ConsulSimulator, passing_only: bool) -> None:
    sim.seed_from_file(PAYLOADS / "catalog-service-web.json")
    found = backend(sim, passing_only=passing_only).discover(ServiceQuery("web"))
    assert found.instances == (
        ServiceInstance(
            "172.17.0.3",
            5000,
            node="t2.320",
            service_id="32a2a47f7992:nodea:5000",
            tags=("prod",),
            meta={"web_meta_value": "baz"},
            healthy=True if passing_only else None,
        ),
    )
    assert found.instances[0].meta == {"web_meta_value": "baz"}
    assert found.index == sim.index
    assert found.warnings == ()
    assert found.source.startswith(f"consul {sim.url}/v1/")


@pytest.mark.parametrize("passing_only", [True, False])
def test_documented_health_payload(sim: ConsulSimulator, passing_only: bool) -> None:
    sim.seed_from_file(PAYLOADS / "health-service-my-service.json", service="my-service")
    found = backend(sim, passing_only=passing_only).discover(ServiceQuery("my-service"))
    assert found.endpoints == ("10.1.10.12:8000",)
    instance = found.instances[0]
    assert (instance.node, instance.service_id, instance.tags) == ("foobar", "redis", ("primary",))
    assert instance.meta == {"redis_version": "4.0"}
    assert instance.healthy is (True if passing_only else None)


@pytest.mark.parametrize("passing_only", [True, False])
def test_seed_payload_without_service_address_and_null_tags(sim: ConsulSimulator, passing_only: bool) -> None:
    sim.seed_from_file(PAYLOADS / "seed-catalog-service.json")
    found = backend(sim, passing_only=passing_only).discover(ServiceQuery("redis"))
    assert found.endpoints == ("10.1.10.12:8000",)
    assert found.instances[0].tags == ()
    assert found.warnings == ()


def test_unknown_service_is_an_empty_discovery(sim: ConsulSimulator) -> None:
    found = backend(sim).discover(ServiceQuery("nothing"))
    assert found.instances == ()
    assert found.warnings == ()
    assert found.index is not None
    assert found.index >= 1


# -- ports and addresses ----------------------------------------------------------------------------------------


def test_service_port_zero_means_the_default_port(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5", port=0)
    sim.register("docker_registry", "10.0.0.6", port=5000)
    found = backend(sim).discover(ServiceQuery("docker_registry", default_port=8080))
    assert found.endpoints == ("10.0.0.5:8080", "10.0.0.6:5000")


def test_port_zero_without_a_default_port_is_skipped_with_a_warning(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5", port=0, node="cell-1")
    found = backend(sim).discover(ServiceQuery("docker_registry"))
    assert found.instances == ()
    assert len(found.warnings) == 1
    assert "default_port" in found.warnings[0]
    assert "'cell-1'" in found.warnings[0]


def test_empty_service_address_means_the_node_address(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.5", service_address="", port=80)
    sim.register("r", "10.0.0.6", service_address=None, port=80)
    sim.register("r", "10.0.0.7", service_address="10.9.9.9", port=80)
    assert ips(backend(sim).discover(ServiceQuery("r"))) == ["10.0.0.5", "10.0.0.6", "10.9.9.9"]


@pytest.mark.parametrize(
    ("address", "passing_only", "expected"),
    [
        ("service", False, "172.17.0.3:5000"),
        ("node", False, "192.168.10.10:5000"),
        ("lan", False, "172.17.0.3:5000"),
        ("wan", False, "198.18.0.1:512"),
        ("service", True, "172.17.0.3:5000"),
        ("wan", True, "198.18.0.1:512"),
    ],
)
def test_address_selection(sim: ConsulSimulator, address: str, passing_only: bool, expected: str) -> None:
    sim.seed_from_file(PAYLOADS / "catalog-service-web.json")
    found = backend(sim, address=address, passing_only=passing_only).discover(ServiceQuery("web"))
    assert found.endpoints == (expected,)
    assert found.warnings == ()


def test_tagged_address_falls_back_to_the_node_then_the_service(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.5", port=80, tagged_addresses={"wan": "198.51.100.7"})
    sim.register("r", "10.0.0.6", port=80, tagged_addresses={})
    found = backend(sim, address="wan").discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.6:80", "198.51.100.7:80")
    assert len(found.warnings) == 1
    assert "no wan tagged address" in found.warnings[0]


def test_host_name_addresses_go_through_the_resolver(sim: ConsulSimulator) -> None:
    sim.register("r", "registry-a.internal", port=5000, node="a")
    sim.register("r", "nowhere.internal", port=5000, node="b")
    table = {"registry-a.internal": ["10.1.0.1", "10.1.0.2", "not an ip"]}
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    found = backend(sim, resolver=resolver).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.1.0.1:5000", "10.1.0.2:5000")
    assert sorted(asked) == ["nowhere.internal", "registry-a.internal"]
    assert len(found.warnings) == 1
    assert "'nowhere.internal' does not resolve" in found.warnings[0]


def test_a_resolver_that_breaks_skips_the_entry_only(sim: ConsulSimulator) -> None:
    sim.register("r", "bad.internal", port=5000)
    sim.register("r", "10.0.0.1", port=5000)

    def resolver(host: str) -> list[str]:
        raise RuntimeError("resolver bug")

    found = backend(sim, resolver=resolver).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.1:5000",)
    assert "RuntimeError" in found.warnings[0]


def test_every_key_may_be_missing(sim: ConsulSimulator) -> None:
    sim.register_entry({"ServiceName": "r"}, kind="catalog")
    sim.register_entry({"ServiceName": "r", "Address": "10.0.0.1"}, kind="catalog")
    sim.register_entry({"ServiceName": "r", "Address": "10.0.0.2", "ServicePort": None}, kind="catalog")
    for passing_only in (True, False):
        found = backend(sim, passing_only=passing_only).discover(ServiceQuery("r", default_port=8080))
        assert found.endpoints == ("10.0.0.1:8080", "10.0.0.2:8080")
        assert len(found.warnings) == 1
        assert "no address" in found.warnings[0]


def test_health_entries_with_missing_parts(sim: ConsulSimulator) -> None:
    sim.register_entry({"Node": {"Address": "10.0.0.1"}, "Service": {"Port": 81}}, service="r", kind="health")
    sim.register_entry({"Node": "not-an-object", "Service": None, "Checks": None}, service="r", kind="health")
    found = backend(sim).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.1:81",)
    assert len(found.warnings) == 1


def test_non_object_entries_are_skipped(sim: ConsulSimulator) -> None:
    sim.respond_raw('[1, "x", null, {"Address": "10.0.0.1", "ServicePort": 80}]')
    found = backend(sim, passing_only=False).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.1:80",)
    assert len(found.warnings) == 3


def test_failing_checks_are_skipped_even_if_consul_ignored_passing(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    sim.register("r", "10.0.0.2", port=80, status="critical")
    assert ips(backend(sim).discover(ServiceQuery("r"))) == ["10.0.0.1"]
    assert ips(backend(sim, passing_only=False).discover(ServiceQuery("r"))) == ["10.0.0.1", "10.0.0.2"]
    # A server (or proxy) that ignores ?passing: the backend still drops the failing entry.
    sim.respond_raw(
        json.dumps([{"Node": {"Address": "10.0.0.2"}, "Service": {"Port": 80}, "Checks": [{"Status": "critical"}]}])
    )
    found = backend(sim).discover(ServiceQuery("r"))
    assert found.instances == ()
    assert "not passing" in found.warnings[0]


# -- hostile entries ------------------------------------------------------------------------------------------

HOSTILE_ADDRESSES = [
    "10.0.0.1,10.0.0.2",
    "10.0.0.1 10.0.0.2",
    "10.0.0.1\n-insecureDockerRegistries=evil:1",
    "http://10.0.0.1",
    "10.0.0.1:8080",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "fe80::1%eth0",
    "300.1.2.3",
    " ",
    "\t",
    "-x",
    "evil.com,10.0.0.1",
    "a" * 300,
]


@pytest.mark.parametrize("text", HOSTILE_ADDRESSES)
@pytest.mark.parametrize("field", ["Address", "ServiceAddress"])
def test_hostile_address_text_is_skipped(sim: ConsulSimulator, text: str, field: str) -> None:
    entry = {"ServiceName": "r", "Node": "n", "Address": "10.9.9.9", "ServicePort": 80, field: text}
    if field == "ServiceAddress":
        entry["Address"] = text
    sim.register_entry(entry, kind="catalog")

    def resolver(host: str) -> list[str]:
        raise AssertionError(f"{host!r} should never reach the resolver")

    found = backend(sim, passing_only=False, resolver=resolver).discover(ServiceQuery("r"))
    assert found.instances == ()
    assert len(found.warnings) == 1
    assert "skipped" in found.warnings[0]
    assert "\n" not in found.warnings[0]


@pytest.mark.parametrize("port", [-1, 65536, 10**12, "8080", "", 8080.5, True, [80], {"p": 1}])
def test_unusable_ports_are_skipped(sim: ConsulSimulator, port: object) -> None:
    sim.register_entry({"ServiceName": "r", "Address": "10.0.0.1", "ServicePort": port}, kind="catalog")
    sim.register_entry({"ServiceName": "r", "Node": "ok", "Address": "10.0.0.2", "ServicePort": 80}, kind="catalog")
    found = backend(sim, passing_only=False).discover(ServiceQuery("r", default_port=8080))
    assert found.endpoints == ("10.0.0.2:80",)
    assert len(found.warnings) == 1
    assert "not a number in 0..65535" in found.warnings[0]


@pytest.mark.parametrize(
    "text", ["169.254.169.254", "127.0.0.1", "0.0.0.0", "8.8.8.8", "::1", "fd00::5", "255.255.255.255"]
)
def test_metadata_and_public_ips_are_valid_instances(sim: ConsulSimulator, text: str) -> None:
    """Forbidden networks are the egress guard's decision, later; here they are well-formed IPs."""
    sim.register("r", text, port=80)
    found = backend(sim).discover(ServiceQuery("r"))
    assert found.instances[0].address == ipaddress.ip_address(text)
    assert found.instances[0].port == 80


def _safe_endpoint(endpoint: str) -> bool:
    """What the Go builder accepts: no '://', a ':' and nothing to split or trim."""
    return "://" not in endpoint and ":" in endpoint and "," not in endpoint and endpoint == endpoint.strip()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    address=st.one_of(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        st.sampled_from(HOSTILE_ADDRESSES),
        st.ip_addresses().map(str),
        st.builds(lambda a, b: f"{a}{b}", st.ip_addresses().map(str), st.sampled_from([",", " ", "\n", ":80", "/8"])),
    ),
    port=st.one_of(st.integers(-10, 70000), st.text(max_size=5), st.none(), st.booleans()),
)
def test_hostile_entries_never_leak_text(sim: ConsulSimulator, address: str, port: object) -> None:
    sim.clear()
    sim.register_entry(
        {"ServiceName": "r", "Node": "n", "ServiceAddress": address, "ServicePort": port}, kind="catalog"
    )

    def resolver(host: str) -> list[str]:
        return ["10.77.0.1"]

    found = backend(sim, passing_only=False, resolver=resolver).discover(ServiceQuery("r", default_port=8080))
    for instance in found.instances:
        assert isinstance(instance.address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        assert 1 <= instance.port <= 65535
        assert _safe_endpoint(instance.endpoint)
        literal = None
        with contextlib.suppress(ValueError):
            literal = ipaddress.ip_address(address)
        if isinstance(literal, ipaddress.IPv6Address) and literal.ipv4_mapped is not None:
            literal = literal.ipv4_mapped  # ServiceInstance keeps ::ffff:a.b.c.d as the IPv4 address it maps to
        assert instance.address in (literal, ipaddress.ip_address("10.77.0.1"))
    if not found.instances:
        assert found.warnings


# -- query parameters ---------------------------------------------------------------------------------------------


def test_datacenter_from_query_or_argument(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, datacenter="dc1")
    sim.register("r", "10.0.0.2", port=80, datacenter="dc2")
    assert ips(backend(sim).discover(ServiceQuery("r"))) == ["10.0.0.1"]
    assert ips(backend(sim).discover(ServiceQuery("r", datacenter="dc2"))) == ["10.0.0.2"]
    assert ips(backend(sim, datacenter="dc2").discover(ServiceQuery("r", datacenter="dc1"))) == ["10.0.0.2"]
    assert sim.requests[-1].param("dc") == "dc2"


def test_tags_from_the_query(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, tags=["primary"])
    sim.register("r", "10.0.0.2", port=80, tags=["secondary"])
    assert ips(backend(sim).discover(ServiceQuery("r", tags=("primary",)))) == ["10.0.0.1"]
    assert sim.requests[-1].params("tag") == ("primary",)


@pytest.mark.parametrize(
    ("kwargs", "path", "present", "absent"),
    [
        ({}, "/v1/health/service/r", ["passing"], ["stale", "consistent", "cached", "index", "filter"]),
        ({"passing_only": False}, "/v1/catalog/service/r", [], ["passing"]),
        ({"consistency": "stale"}, "/v1/health/service/r", ["stale"], ["consistent"]),
        ({"consistency": "consistent"}, "/v1/health/service/r", ["consistent"], ["stale"]),
        ({"cached": True}, "/v1/health/service/r", ["cached"], []),
        ({"filter": 'Service.Tags contains "x"'}, "/v1/health/service/r", ["filter"], []),
    ],
)
def test_options_become_query_parameters(
    sim: ConsulSimulator, kwargs: dict[str, object], path: str, present: list[str], absent: list[str]
) -> None:
    backend(sim, **kwargs).discover(ServiceQuery("r"))
    request = sim.requests[-1]
    assert request.path == path
    assert request.status == 200
    for name in present:
        assert request.param(name) is not None, name
    for name in absent:
        assert request.param(name) is None, name


def test_filter_reaches_consul(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, meta={"zone": "a"})
    sim.register("r", "10.0.0.2", port=80, meta={"zone": "b"})
    assert ips(backend(sim, filter='Service.Meta.zone == "b"').discover(ServiceQuery("r"))) == ["10.0.0.2"]
    assert ips(backend(sim, filter='ServiceMeta.zone == "a"', passing_only=False).discover(ServiceQuery("r"))) == [
        "10.0.0.1"
    ]


def test_stale_reads_work_without_a_leader(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    sim.known_leader = False
    with pytest.raises(DiscoveryUnavailable, match="No cluster leader"):
        backend(sim).discover(ServiceQuery("r"))
    found = backend(sim, consistency="stale").discover(ServiceQuery("r"))
    assert ips(found) == ["10.0.0.1"]
    assert any("no known leader" in warning for warning in found.warnings)


# -- errors -----------------------------------------------------------------------------------------------------


def _check_message(exc: BaseException, sim_url: str, service: str, *needles: str) -> None:
    message = str(exc)
    assert sim_url in message
    assert repr(service) in message
    for needle in needles:
        assert needle in message
    assert TOKEN not in message
    assert "check" in message or "retry" in message


@pytest.mark.parametrize(
    ("status", "body", "error", "needle"),
    [
        (500, "No cluster leader", DiscoveryUnavailable, "No cluster leader"),
        (500, "No path to datacenter", DiscoveryUnavailable, "datacenter"),
        (502, "Bad Gateway", DiscoveryUnavailable, "HTTP 502"),
        (503, "", DiscoveryUnavailable, "HTTP 503"),
        (429, "Too Many Requests", DiscoveryUnavailable, "rate limiting"),
        (403, "ACL not found", DiscoveryAuthError, "ACL not found"),
        (403, "Permission denied", DiscoveryAuthError, "Permission denied"),
        (401, "", DiscoveryAuthError, "HTTP 401"),
        (400, "Failed to create boolean expression evaluator", DiscoveryProtocolError, "filter"),
        (404, "404 page not found", DiscoveryProtocolError, "HTTP 404"),
    ],
)
def test_error_statuses(sim: ConsulSimulator, status: int, body: str, error: type[DiscoveryError], needle: str) -> None:
    sim.fail(status, body)
    with pytest.raises(error) as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("docker_registry"))
    _check_message(caught.value, sim.url, "docker_registry", needle)


def test_unknown_datacenter(sim: ConsulSimulator) -> None:
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim).discover(ServiceQuery("r", datacenter="mars"))
    _check_message(caught.value, sim.url, "r", "No path to datacenter", "'mars'")


def test_acl_errors_from_real_acl_checks(sim: ConsulSimulator) -> None:
    sim.add_token("other-token", name="other")
    with pytest.raises(DiscoveryAuthError, match="ACL not found") as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r")
    sim.add_token(TOKEN, deny=True)
    with pytest.raises(DiscoveryAuthError, match="Permission denied"):
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))


def test_results_filtered_by_acls_is_a_warning(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, node="cell-1")
    sim.register("r", "10.0.0.2", port=80, node="cell-2")
    sim.add_token(TOKEN, name="partial", nodes=["cell-1"])
    found = backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    assert ips(found) == ["10.0.0.1"]
    assert len(found.warnings) == 1
    assert "partial" in found.warnings[0]
    assert TOKEN not in found.warnings[0]


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>502 proxy</body></html>",
        "",
        "[{",
        '{"Address": "10.0.0.1"}',
        '"just a string"',
        "null",
        "42",
        b"\xff\xfe\x00garbage",
    ],
)
def test_garbage_bodies_are_protocol_errors(sim: ConsulSimulator, body: str | bytes) -> None:
    sim.respond_raw(body)
    with pytest.raises(DiscoveryProtocolError) as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r")


def test_a_non_numeric_index_is_a_protocol_error(sim: ConsulSimulator) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("X-Consul-Index", "twelve")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(DiscoveryProtocolError, match="X-Consul-Index"):
            ConsulBackend(f"http://127.0.0.1:{server.server_address[1]}").discover(ServiceQuery("r"))
    finally:
        server.shutdown()
        server.server_close()


def test_refused_connection(sim: ConsulSimulator) -> None:
    port = free_port()
    with pytest.raises(DiscoveryUnavailable) as caught:
        ConsulBackend(f"http://127.0.0.1:{port}", token=TOKEN).discover(ServiceQuery("docker_registry"))
    _check_message(caught.value, f"http://127.0.0.1:{port}", "docker_registry", "cannot connect")
    assert "connection refused" in str(caught.value)


def test_a_hanging_server_times_out(sim: ConsulSimulator) -> None:
    sim.hang()
    started = time.monotonic()
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim, timeout=0.5, token=TOKEN).discover(ServiceQuery("r"))
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0
    _check_message(caught.value, sim.url, "r", "no answer within 0.5s")


def test_a_slow_but_timely_answer_is_fine(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    sim.delay(0.2)
    assert ips(backend(sim, timeout=2).discover(ServiceQuery("r"))) == ["10.0.0.1"]


def test_a_dropped_connection(sim: ConsulSimulator) -> None:
    sim.drop()
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r", "dropped")


def test_only_library_errors_escape(sim: ConsulSimulator) -> None:
    for inject in (lambda: sim.drop(), lambda: sim.respond_raw("x"), lambda: sim.fail(418, "teapot")):
        inject()
        with pytest.raises(RegistryConfigError):
            backend(sim).discover(ServiceQuery("r"))


def test_https_against_a_plain_http_agent_is_unavailable(sim: ConsulSimulator) -> None:
    with pytest.raises(DiscoveryUnavailable, match=r"TLS|connect"):
        ConsulBackend(f"https://127.0.0.1:{sim.port}", timeout=2).discover(ServiceQuery("r"))


# -- the token --------------------------------------------------------------------------------------------------


def test_token_goes_in_the_header(sim: ConsulSimulator) -> None:
    sim.add_token(TOKEN, name="stager")
    sim.register("r", "10.0.0.1", port=80)
    assert ips(backend(sim, token=TOKEN).discover(ServiceQuery("r"))) == ["10.0.0.1"]
    request = sim.requests[-1]
    assert (request.token, request.token_source) == ("stager", "header")
    assert request.param("token") is None


def test_explicit_token_wins_over_the_environment(sim: ConsulSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_token(TOKEN, name="explicit")
    sim.add_token("env-token-value", name="from-env")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "env-token-value")
    backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "explicit"
    backend(sim).discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "from-env"


def test_no_token_sends_no_header(sim: ConsulSimulator) -> None:
    backend(sim).discover(ServiceQuery("r"))
    assert sim.requests[-1].token is None
    assert sim.requests[-1].header("X-Consul-Token") is None


def test_token_is_never_in_repr_messages_or_logs(sim: ConsulSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim.add_token("some-other-token", name="other")
    consul_backend = backend(sim, token=TOKEN, datacenter="dc1", timeout=1.0)
    texts = [repr(consul_backend), str(consul_backend)]
    assert "token=<redacted>" in texts[0]
    sim.fail(500, f"echoing {TOKEN} back")  # a misbehaving proxy repeating the header
    for _ in range(5):
        try:
            consul_backend.discover(ServiceQuery("r"))
        except DiscoveryError as exc:
            texts.append(str(exc))
            texts.append(repr(exc))
            texts.append(str(exc.__cause__))
    sim.respond_raw(f"not json {TOKEN}")
    with pytest.raises(DiscoveryProtocolError) as caught:
        consul_backend.discover(ServiceQuery("r"))
    texts.append(str(caught.value))
    stop = threading.Event()
    sim.clear_faults()
    sim.fail(500, "No cluster leader", times=3)
    sim.anonymous_services = frozenset({"r"})
    watch_backend = backend(sim, token="some-other-token", watch_min_interval=0.01)
    watch = watch_backend.watch(ServiceQuery("r"), stop=stop)
    with pytest.raises(DiscoveryUnavailable):
        next(watch)
    texts.extend(record.getMessage() for record in caplog.records)
    texts.extend(str(record.args) for record in caplog.records)
    assert len(texts) > 8
    for text in texts:
        assert TOKEN not in text
        assert "some-other-token" not in text


def test_blank_token_refused(sim: ConsulSimulator) -> None:
    with pytest.raises(InvalidInput, match="token"):
        backend(sim, token="a b")


# -- construction, from_url ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"consistency": "eventual"}, "consistency"),
        ({"address": "public"}, "address"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"datacenter": "dc 1"}, "datacenter"),
        ({"filter": "a\nb"}, "filter"),
        ({"verify": "/nonexistent/ca.pem"}, "verify='/nonexistent/ca.pem' names no file"),
        ({"cert": "/nonexistent/client.pem"}, "cert="),
        ({"cert": (__file__, "/nonexistent/client.key")}, "client.key"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ConsulBackend("http://127.0.0.1:8500", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:8500",
        "ftp://127.0.0.1:8500",
        "http://user:pw@127.0.0.1:8500",
        "http://127.0.0.1:8500/v1",
        "http://127.0.0.1:8500?token=x",
        "http://127.0.0.1:99999",
        "http://bad host:8500",
        "http://[",
        "http://[]:8500",
    ],
)
def test_bad_agent_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ConsulBackend(url)
    assert "pw" not in str(caught.value)
    assert "token=x" not in str(caught.value)


def test_bad_service_names_are_refused_before_any_request(sim: ConsulSimulator) -> None:
    for name in ["../agent/self", "a/b", "a?b", "a%2Fb"]:
        with pytest.raises(InvalidInput, match="not a Consul service name"):
            backend(sim).discover(ServiceQuery(name))
    assert sim.requests == []


def test_defaults_and_url() -> None:
    consul_backend = ConsulBackend()
    assert consul_backend.url == "http://127.0.0.1:8500"
    assert repr(consul_backend) == "ConsulBackend('http://127.0.0.1:8500')"
    assert ConsulBackend("https://[::1]").url == "https://[::1]:8501"
    with ConsulBackend("http://Consul.Example:8500") as inside:
        assert inside.url == "http://consul.example:8500"


def test_from_url_options(sim: ConsulSimulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    url = (
        f"consul://127.0.0.1:{sim.port}?dc=dc2&passing=false&consistency=stale&cached=true&timeout=2.5"
        f"&address=wan&filter=ServiceTags+contains+%22x%22&token_file={token_file}&verify=false"
    )
    made = ConsulBackend.from_url(url)
    assert made.url == sim.url
    assert (made.datacenter, made.passing_only, made.consistency, made.cached) == ("dc2", False, "stale", True)
    assert (made.timeout, made.address, made.filter) == (2.5, "wan", 'ServiceTags contains "x"')
    assert made.has_token
    assert TOKEN not in repr(made)
    sim.add_token(TOKEN, name="from-file")
    made.discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "from-file"
    assert sim.requests[-1].param("stale") is not None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("consul://consul.example", "http://consul.example:8500"),
        ("consul+http://10.0.0.1:8600", "http://10.0.0.1:8600"),
        ("consul+https://consul.example", "https://consul.example:8501"),
        ("consul+https://[::1]:9000/", "https://[::1]:9000"),
        ("consul://", "http://127.0.0.1:8500"),
    ],
)
def test_from_url_schemes(url: str, expected: str) -> None:
    assert ConsulBackend.from_url(url).url == expected


def test_from_url_refuses_a_token_in_the_url() -> None:
    for url in ["consul://127.0.0.1:8500?token=" + TOKEN, f"consul://{TOKEN}@127.0.0.1:8500"]:
        with pytest.raises(InvalidInput) as caught:
            ConsulBackend.from_url(url)
        assert TOKEN not in str(caught.value)
        assert "token_file" in str(caught.value)
        assert "CONSUL_HTTP_TOKEN" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://127.0.0.1:8500", "consul://"),
        ("consul://127.0.0.1:8500?colour=red", "unknown option 'colour'"),
        ("consul://127.0.0.1:8500?dc=a&dc=b", "twice"),
        ("consul://127.0.0.1:8500?passing=maybe", "passing"),
        ("consul://127.0.0.1:8500?timeout=soon", "timeout"),
        ("consul://127.0.0.1:8500/v1", "path"),
        ("consul://127.0.0.1:8500?key=k.pem", "cert"),
        ("consul://127.0.0.1:8500?token_file=", "token_file"),
        ("consul://127.0.0.1:8500?token_file=/nonexistent/token", "cannot read the token file"),
        ("consul://127.0.0.1:99999", "port"),
        ("consul://[", "host part"),
        # Python 3.11+ urlsplit refuses '[]' itself; 3.10 lets it through to the host check.
        ("consul://[]", "host part|'' in brackets is not an IPv6 address"),
        ("consul://[::1", "host part"),
        ("consul://[::1]x", "after ']'"),
    ],
)
def test_from_url_errors(url: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ConsulBackend.from_url(url)


def test_from_url_empty_token_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InvalidInput, match="empty"):
        ConsulBackend.from_url(f"consul://127.0.0.1:8500?token_file={empty}")


def test_missing_py_consul_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "consul", None)
    with pytest.raises(UnknownBackendError, match=r"pip install registry-config\[consul\]"):
        ConsulBackend()


# -- watch ------------------------------------------------------------------------------------------------------


def _collect(
    consul_backend: ConsulBackend, query: ServiceQuery, stop: threading.Event, into: list[Discovery]
) -> threading.Thread:
    def run() -> None:
        for snapshot in consul_backend.watch(query, stop=stop):
            into.append(snapshot)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_watch_sees_instances_appear_and_disappear_and_survives_a_reset(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5", node="cell-1")
    consul_backend = backend(sim, watch_wait=0.5, watch_min_interval=0.05)
    query = ServiceQuery("docker_registry", default_port=8080)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(consul_backend, query, stop, seen)
    _wait_for(lambda: len(seen) == 1)
    assert seen[0].endpoints == ("10.0.0.5:8080",)
    assert seen[0].index == sim.index
    sim.register("docker_registry", "10.0.0.6", node="cell-2")
    _wait_for(lambda: len(seen) == 2)
    assert seen[1].endpoints == ("10.0.0.5:8080", "10.0.0.6:8080")
    assert seen[1].index == sim.index
    sim.touch()  # the index moves, the instances do not: no snapshot
    sim.reset_index(1)
    time.sleep(0.3)
    assert len(seen) == 2
    sim.deregister("docker_registry-cell-1")
    _wait_for(lambda: len(seen) == 3)
    assert seen[2].endpoints == ("10.0.0.6:8080",)
    assert seen[2].index == 2
    sim.register("docker_registry", "10.0.0.7", node="cell-3")
    _wait_for(lambda: len(seen) == 4)
    assert seen[3].endpoints == ("10.0.0.6:8080", "10.0.0.7:8080")
    stop.set()
    thread.join(timeout=3)
    assert not thread.is_alive()
    indexes = [r.param("index") for r in sim.requests]
    assert indexes[0] is None
    assert all(r.param("wait") == "0.5s" for r in sim.requests if r.param("index"))


def test_watch_uses_blocking_queries_not_a_busy_loop(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.5, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    time.sleep(1.6)
    stop.set()
    thread.join(timeout=3)
    assert len(seen) == 1
    assert 2 <= len(sim.requests) <= 5  # each poll held about 0.5s by the server


def test_watch_rate_limits_when_answers_come_back_at_once(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    sim.reset_index(0)  # an index below 1: every query is a plain read, answered at once
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.5, watch_min_interval=0.2), ServiceQuery("r"), stop, seen)
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=3)
    # No usable index: a plain read every watch_wait (0.5s), not one every watch_min_interval.
    assert 2 <= len(sim.requests) <= 4
    assert all(r.param("index") is None for r in sim.requests)


def test_watch_stops_promptly(sim: ConsulSimulator) -> None:
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim), ServiceQuery("r"), stop, seen)  # default watch_wait
    _wait_for(lambda: len(seen) == 1)
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2.5  # watch_wait (1s) plus a loaded machine


def test_watch_with_stop_already_set_yields_nothing(sim: ConsulSimulator) -> None:
    stop = threading.Event()
    stop.set()
    assert list(backend(sim).watch(ServiceQuery("r"), stop=stop)) == []
    assert sim.requests == []


def test_watch_first_error_propagates(sim: ConsulSimulator) -> None:
    sim.fail(403, "ACL not found")
    with pytest.raises(DiscoveryAuthError):
        next(backend(sim).watch(ServiceQuery("r")))


def test_watch_retries_later_errors_with_backoff(sim: ConsulSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="registry_config.discovery.consul")
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    consul_backend = backend(sim, watch_wait=0.3, watch_min_interval=0.05, watch_max_backoff=0.4)
    thread = _collect(consul_backend, ServiceQuery("r"), stop, seen)
    _wait_for(lambda: len(seen) == 1)
    sim.fail(500, "No cluster leader", times=2)
    sim.drop()
    sim.respond_raw("garbage")
    _wait_for(lambda: sum(1 for r in sim.requests if r.fault) == 4)
    sim.register("r", "10.0.0.2", port=80)
    _wait_for(lambda: len(seen) == 2)
    stop.set()
    thread.join(timeout=3)
    assert seen[1].endpoints == ("10.0.0.1:80", "10.0.0.2:80")
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.levelno == logging.WARNING for r in failures)
    assert "'r'" in failures[0].getMessage()
    times = [r.created for r in failures]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.05 for gap in gaps)


def test_watch_of_an_unchanged_service_stays_quiet(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.2, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    _wait_for(lambda: len(seen) == 1)
    sim.register("other", "10.0.0.9", port=80)  # bumps the shared index
    sim.set_status("r-node-10.0.0.1", "passing")
    time.sleep(0.6)
    stop.set()
    thread.join(timeout=3)
    assert len(seen) == 1


def test_watch_drops_an_instance_whose_check_fails(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, node="a")
    sim.register("r", "10.0.0.2", port=80, node="b")
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.5, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    _wait_for(lambda: len(seen) == 1)
    sim.set_status("r-b", "critical")
    _wait_for(lambda: len(seen) == 2)
    stop.set()
    thread.join(timeout=3)
    assert ips(seen[1]) == ["10.0.0.1"]


# -- HTTPS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> object:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def tls_sim(tls_ca: Any, tmp_path: Path) -> Iterator[tuple[ConsulSimulator, Path]]:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    with ConsulSimulator(ssl_context=context) as simulator:
        simulator.register("r", "10.0.0.1", port=80)
        yield simulator, ca_file


def test_https_with_a_ca_bundle(tls_sim: tuple[ConsulSimulator, Path]) -> None:
    sim, ca_file = tls_sim
    assert sim.url.startswith("https://")
    found = ConsulBackend(sim.url, verify=str(ca_file)).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.1:80",)
    made = ConsulBackend.from_url(f"consul+https://127.0.0.1:{sim.port}?verify={ca_file}")
    assert made.discover(ServiceQuery("r")).endpoints == ("10.0.0.1:80",)


def test_https_with_an_unknown_ca_is_unavailable_and_says_tls(tls_sim: tuple[ConsulSimulator, Path]) -> None:
    sim, _ = tls_sim
    with pytest.raises(DiscoveryUnavailable, match="TLS handshake failed") as caught:
        ConsulBackend(sim.url, token=TOKEN, timeout=3).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r", "verify=")
    assert sim.index >= 1  # the simulator survived the failed handshake
    assert ConsulBackend(sim.url, verify=str(tls_sim[1])).discover(ServiceQuery("r")).endpoints == ("10.0.0.1:80",)
