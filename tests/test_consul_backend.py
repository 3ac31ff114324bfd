"""ConsulBackend with the real py-consul client, over real HTTP, against the Consul simulator.

What the simulator cannot show (a body sent verbatim, a hostile header, a
server that holds a query or redirects) comes from a loopback server of the
test's own, :class:`Canned`. The payloads are those of a live agent
(``data/consul/*-live.json``), the documentation's samples and the seed's.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import itertools
import json
import logging
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from _integration import free_port, need_module, unavailable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.consul.watch import TokenBucket
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryQueryError,
    DiscoveryUnavailable,
    InvalidInput,
    MissingDependencyError,
    RegistryConfigError,
)
from registry_config.testing.consul import ConsulSimulator

PAYLOADS = Path(__file__).parent / "data" / "consul"
TOKEN = "b1gs3cr3t-t0ken-4f2a-9c1e-77d05e3a"
CONSUL_VARIABLES = (
    "CONSUL_HTTP_ADDR",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "CONSUL_CACERT",
    "CONSUL_CAPATH",
    "CONSUL_CLIENT_CERT",
    "CONSUL_CLIENT_KEY",
    "CONSUL_HTTP_SSL_VERIFY",
)


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator(datacenters=("dc1", "dc2")) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _no_consul_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONSUL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _every_backend_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every backend a test made, so that no pooled socket is left to the garbage collector.

    A backend kept alive by a caught exception's traceback (a reference
    cycle) would otherwise close its sockets only when the cyclic collector
    runs, in a later test, as a ResourceWarning.
    """
    made: list[ConsulBackend] = []
    original = ConsulBackend.__init__

    def init(self: ConsulBackend, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ConsulBackend, "__init__", init)
    yield
    for consul_backend in made:
        consul_backend.close()


def backend(sim: ConsulSimulator, **kwargs: object) -> ConsulBackend:
    return ConsulBackend(sim.url, **kwargs)  # type: ignore[arg-type]


def ips(discovery: Discovery) -> list[str]:
    return [str(instance.address) for instance in discovery.instances]


def _wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; the deadline only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _outcome(consul_backend: ConsulBackend, query: ServiceQuery) -> tuple[Discovery | None, Exception | None]:
    """What one ``discover`` gives: a snapshot or the exception it raised (the backend is closed after)."""
    try:
        return consul_backend.discover(query), None
    except Exception as exc:  # returned for the test to judge
        return None, exc
    finally:
        consul_backend.close()


def _leaks(text: str, secret: str = TOKEN) -> bool:
    """Whether ``text`` holds the secret or any 8 characters of it in a row."""
    return any(secret[i : i + 8] in text for i in range(len(secret) - 7))


def _texts_of(exc: BaseException) -> list[str]:
    """Every text an exception shows: str and repr along the whole chain, and the formatted traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.extend([str(current), repr(current), repr(current.args)])
        current = current.__cause__ or current.__context__
    return texts


# -- a loopback server of the test's own --------------------------------------------------------------------------

HOLD = object()
"""An answer body that makes :class:`Canned` hold the request until it closes (a blocking query held)."""


@attrs.frozen
class CannedRequest:
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


Answer = tuple[int, dict[str, str], "bytes | object"]


class Canned:
    """Answers each GET with ``answer(request)`` (status, headers, body or :data:`HOLD`), recording each request."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.answer: Callable[[CannedRequest], Answer] = lambda request: (200, {"X-Consul-Index": "7"}, b"[]")
        self.requests: list[CannedRequest] = []
        self.holding = threading.Event()
        self._closing = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                request = CannedRequest(
                    split.path,
                    tuple(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
                    tuple(self.headers.items()),
                )
                owner.requests.append(request)
                status, headers, body = owner.answer(request)
                if body is HOLD:
                    owner.holding.set()
                    owner._closing.wait(120)
                    self.close_connection = True
                    return
                assert isinstance(body, bytes)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self._server = Server((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        bracketed = f"[{host}]" if ":" in host else host
        self.url = f"http://{bracketed}:{self._server.server_address[1]}"

    def serve(self, status: int, body: bytes | str | object, headers: dict[str, str] | None = None) -> None:
        """Answer every request with ``status``, ``headers`` (``X-Consul-Index: 7`` by default) and ``body``."""
        payload = body.encode() if isinstance(body, str) else body
        fixed = {"X-Consul-Index": "7"} if headers is None else headers
        self.answer = lambda request: (status, fixed, payload)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def canned() -> Iterator[Canned]:
    server = Canned()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def shared_canned() -> Iterator[Canned]:
    """One server for a whole Hypothesis run (each example sets its answer)."""
    server = Canned()
    try:
        yield server
    finally:
        server.close()


# -- the payloads of a live agent -----------------------------------------------------------------------------------


def _serve_file(canned: Canned, name: str, *, edit: Callable[[list[Any]], None] | None = None) -> None:
    entries = json.loads((PAYLOADS / name).read_text())
    if edit is not None:
        edit(entries)
    canned.serve(200, json.dumps(entries, separators=(",", ":")), {"X-Consul-Index": "74"})


@pytest.mark.parametrize(
    ("address", "endpoints", "warned"),
    [
        ("service", ("10.244.0.22:5000", "10.244.2.6:8080"), False),
        ("node", ("10.244.0.21:8080", "10.244.0.22:5000"), False),
        # cell-1's own lan_ipv4 (the agent adds it), not its node's IP; cell-2 has none: its node's lan.
        ("lan", ("10.244.0.22:5000", "10.244.2.6:8080"), False),
        ("lan_ipv4", ("10.244.0.22:5000", "10.244.2.6:8080"), False),
        # cell-1's WAN address with its own port; cell-2's node WAN address with the query's port.
        ("wan", ("10.244.0.22:5000", "198.18.0.6:443"), False),
        ("wan_ipv4", ("10.244.0.22:5000", "198.18.0.6:443"), False),
        # Nobody has an IPv6 address: each falls back, and says so.
        ("lan_ipv6", ("10.244.0.22:5000", "10.244.2.6:8080"), True),
    ],
)
def test_live_catalog_payload_in_every_address_mode(
    canned: Canned, address: str, endpoints: tuple[str, ...], warned: bool
) -> None:
    _serve_file(canned, "catalog-service-live.json")
    found = ConsulBackend(canned.url, passing_only=False, address=address).discover(
        ServiceQuery("docker_registry", default_port=5000)
    )
    assert found.endpoints == endpoints
    assert len(found.warnings) == (2 if warned else 0)
    assert found.index == 74
    assert canned.requests[-1].path == "/v1/catalog/service/docker_registry"
    cell1 = next(i for i in found.instances if i.node == "cell-1")
    assert (cell1.service_id, cell1.tags, cell1.healthy) == ("docker_registry-1", ("v2",), None)


def test_live_health_payload_skips_a_node_in_maintenance(canned: Canned) -> None:
    """A proxy (or an old agent) ignoring ?passing: the node maintenance check still keeps cell-2 out."""
    _serve_file(canned, "health-service-live.json")
    found = ConsulBackend(canned.url).discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.2.6:8080",)
    assert found.instances[0].healthy is True
    assert canned.requests[-1].param("passing") is not None
    assert len(found.warnings) == 1
    assert "entry #1 (node 'cell-2')" in found.warnings[0]
    assert "the node is in maintenance ('draining cell-2 for an upgrade'); skipped" in found.warnings[0]


def test_live_health_payload_without_port_means_the_default_port(canned: Canned) -> None:
    """A live agent leaves Service.Port out when it is 0: the query's default port applies."""

    def out_of_maintenance(entries: list[Any]) -> None:
        entries[1]["Checks"] = entries[1]["Checks"][:1]
        assert "Port" not in entries[1]["Service"]

    _serve_file(canned, "health-service-live.json", edit=out_of_maintenance)
    found = ConsulBackend(canned.url).discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.0.22:5000", "10.244.2.6:8080")
    assert found.warnings == ()
    without_default = ConsulBackend(canned.url).discover(ServiceQuery("docker_registry"))
    assert without_default.endpoints == ("10.244.2.6:8080",)
    assert "no default_port" in without_default.warnings[0]


def test_live_health_payload_skips_a_service_in_maintenance(canned: Canned) -> None:
    def service_maintenance(entries: list[Any]) -> None:
        entries[1]["Checks"] = entries[1]["Checks"][:1]
        entries[0]["Checks"].append(
            {"Node": "cell-1", "CheckID": "_service_maintenance:docker_registry-1", "Status": "critical", "Notes": ""}
        )

    _serve_file(canned, "health-service-live.json", edit=service_maintenance)
    found = ConsulBackend(canned.url).discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.0.22:5000",)
    assert found.warnings[0].endswith("(node 'cell-1'): the service is in maintenance; skipped")


def test_live_health_payload_skips_a_warning_check(canned: Canned) -> None:
    def warning(entries: list[Any]) -> None:
        entries[1]["Checks"] = entries[1]["Checks"][:1]
        entries[0]["Checks"][0]["Status"] = "warning"

    _serve_file(canned, "health-service-live.json", edit=warning)
    found = ConsulBackend(canned.url).discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.0.22:5000",)
    assert "a check is not passing although ?passing was asked" in found.warnings[0]


@pytest.mark.parametrize("address", ["wan", "wan_ipv4", "lan"])
def test_live_health_payload_tagged_addresses(canned: Canned, address: str) -> None:
    _serve_file(canned, "health-service-live.json")
    found = ConsulBackend(canned.url, address=address).discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.2.6:8080",)  # Service.TaggedAddresses: lan_ipv4 and wan_ipv4 of its own
    assert len(found.warnings) == 1  # cell-2, in maintenance


def test_the_live_payloads_through_the_simulator(sim: ConsulSimulator) -> None:
    sim.seed_from_file(PAYLOADS / "catalog-service-live.json")
    found = backend(sim, passing_only=False, address="wan").discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.0.22:5000", "198.18.0.6:443")


# -- the documented payloads and the seed's ---------------------------------------------------------------------


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
    assert found.index is not None
    assert found.index >= 1
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


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("catalog-service-web.json", "wan", "198.18.0.1:512"),
        ("catalog-service-web.json", "lan", "172.17.0.3:5000"),
        ("health-service-my-service.json", "wan", "198.18.1.2:80"),
        ("health-service-my-service.json", "lan", "10.1.10.12:8000"),
    ],
)
def test_documented_lowercase_tagged_addresses_are_read_verbatim(
    canned: Canned, name: str, address: str, expected: str
) -> None:
    """The documentation's lowercase spelling (the service definition syntax) is accepted as well."""
    _serve_file(canned, name)
    passing = name.startswith("health")
    found = ConsulBackend(canned.url, address=address, passing_only=passing).discover(ServiceQuery("web"))
    assert found.endpoints == (expected,)
    assert found.warnings == ()


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


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
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
    """Consul holds a default read for rpc_hold_timeout (7 s), then answers 500: the default timeout (10 s) sees it."""
    sim.register("r", "10.0.0.1", port=80)
    sim.known_leader = False
    with pytest.raises(DiscoveryUnavailable, match="No cluster leader") as caught:
        backend(sim).discover(ServiceQuery("r"))
    assert "consistency='stale'" in str(caught.value)
    found = backend(sim, consistency="stale").discover(ServiceQuery("r"))
    assert ips(found) == ["10.0.0.1"]
    assert any("no known leader" in warning for warning in found.warnings)


def test_a_timeout_while_consul_waits_for_a_leader_says_so() -> None:
    with ConsulSimulator(rpc_hold_timeout=30) as sim:
        sim.register("r", "10.0.0.1", port=80)
        sim.known_leader = False
        with pytest.raises(DiscoveryUnavailable, match=r"no answer within 0\.5s; the cluster may have no leader"):
            backend(sim, timeout=0.5).discover(ServiceQuery("r"))
        assert ips(backend(sim, timeout=0.5, consistency="stale").discover(ServiceQuery("r"))) == ["10.0.0.1"]


# -- errors -----------------------------------------------------------------------------------------------------


def _check_message(exc: BaseException, sim_url: str, service: str, *needles: str) -> None:
    message = str(exc)
    assert sim_url in message
    assert repr(service) in message
    for needle in needles:
        assert needle in message
    assert not _leaks(message)
    assert "check" in message or "retry" in message or "fix" in message


@pytest.mark.parametrize(
    ("status", "body", "error", "needle"),
    [
        (500, "No cluster leader", DiscoveryUnavailable, "consistency='stale'"),
        (500, "No path to datacenter", DiscoveryUnavailable, "datacenter"),
        (502, "Bad Gateway", DiscoveryUnavailable, "HTTP 502"),
        (503, "", DiscoveryUnavailable, "HTTP 503"),
        (429, "Too Many Requests", DiscoveryUnavailable, "rate limiting"),
        (403, "ACL not found", DiscoveryAuthError, "ACL not found"),
        (403, "Permission denied", DiscoveryAuthError, "Permission denied"),
        (401, "", DiscoveryAuthError, "HTTP 401"),
        # agent/http.go: a query Consul refuses is a 400 with a plain-text reason.
        (400, "Cannot specify ?cached with ?consistent, conflicting semantics.", DiscoveryQueryError, "fix"),
        (400, "Invalid wait time", DiscoveryQueryError, "Invalid wait time"),
        # A refused filter is a 500 (api-docs/features/filtering.mdx), with or without the RPC prefix.
        (
            500,
            'Failed to create boolean expression evaluator: Selector "x" is not valid',
            DiscoveryQueryError,
            "filter",
        ),
        (
            500,
            "rpc error making call: Failed to create boolean expression evaluator: 1:1 (0): no match found",
            DiscoveryQueryError,
            "refused the filter",
        ),
        (404, "404 page not found", DiscoveryProtocolError, "HTTP 404"),
    ],
)
def test_error_statuses(sim: ConsulSimulator, status: int, body: str, error: type[DiscoveryError], needle: str) -> None:
    sim.fail(status, body)
    with pytest.raises(error) as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("docker_registry"))
    _check_message(caught.value, sim.url, "docker_registry", needle)
    assert type(caught.value) is error


def test_a_500_that_only_mentions_the_filter_text_is_an_outage(canned: Canned) -> None:
    canned.serve(500, "upstream said: Failed to create boolean expression evaluator", {})
    with pytest.raises(DiscoveryUnavailable):
        ConsulBackend(canned.url).discover(ServiceQuery("r"))


def test_a_refused_filter_names_the_filter(canned: Canned) -> None:
    canned.serve(500, 'Failed to create boolean expression evaluator: 1:18 (17): no match found, expected: "\\""', {})
    with pytest.raises(DiscoveryQueryError) as caught:
        ConsulBackend(canned.url, filter="Service.Tags == v2").discover(ServiceQuery("r"))
    assert "Consul refused the filter 'Service.Tags == v2' (HTTP 500: " in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_datacenter(sim: ConsulSimulator) -> None:
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim).discover(ServiceQuery("r", datacenter="mars"))
    _check_message(caught.value, sim.url, "r", "No path to datacenter", "'mars'")


def test_acl_errors_from_real_acl_checks(sim: ConsulSimulator) -> None:
    sim.add_token("other-token", name="other")
    with pytest.raises(DiscoveryAuthError, match="ACL not found") as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r")


def test_results_filtered_by_acls_is_a_warning(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, node="cell-1")
    sim.register("r", "10.0.0.2", port=80, node="cell-2")
    sim.add_token(TOKEN, name="partial", nodes=["cell-1"])
    found = backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    assert ips(found) == ["10.0.0.1"]
    assert len(found.warnings) == 1
    assert "partial" in found.warnings[0]
    assert not _leaks(found.warnings[0])


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


# -- hostile answers: typed errors, and the token never echoed ----------------------------------------------------


@pytest.mark.parametrize(
    "index", ["twelve", "\u00b2", "1\u00b2", "9" * 5000, "-1", "1.5", "0x10", "18446744073709551616", "", "1 2", TOKEN]
)
def test_a_hostile_index_is_a_protocol_error(canned: Canned, index: str) -> None:
    canned.answer = lambda request: (200, {"X-Consul-Index": index}, b"[]")
    with pytest.raises(DiscoveryProtocolError, match="X-Consul-Index") as caught:
        ConsulBackend(canned.url, token=TOKEN).discover(ServiceQuery("r"))
    for text in _texts_of(caught.value):
        assert not _leaks(text)
        assert "9" * 50 not in text


@pytest.mark.parametrize("index", ["1", "18446744073709551615", " 42 "])
def test_a_good_index_is_read(canned: Canned, index: str) -> None:
    canned.answer = lambda request: (200, {"X-Consul-Index": index}, b"[]")
    assert ConsulBackend(canned.url).discover(ServiceQuery("r")).index == int(index)


_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), min_size=1, max_size=30
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    index=st.one_of(
        st.integers(0, 2**70).map(str),
        _HEADER_TEXT,
        st.integers(1, 6000).map(lambda n: "7" * n),
        st.builds(lambda a, b: a + TOKEN + b, _HEADER_TEXT, _HEADER_TEXT),
    )
)
def test_any_index_header_is_a_uint64_or_a_protocol_error(shared_canned: Canned, index: str) -> None:
    shared_canned.answer = lambda request: (200, {"X-Consul-Index": index}, b"[]")
    found, error = _outcome(ConsulBackend(shared_canned.url, token=TOKEN), ServiceQuery("r"))
    good = index.isascii() and index.isdigit() and len(index) <= 20 and int(index) < 2**64
    if good:
        assert found is not None
        assert found.index == int(index)
    else:
        assert isinstance(error, DiscoveryProtocolError)
        assert not any(_leaks(text) for text in _texts_of(error))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 100_000), opener=st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_is_an_answer_or_a_protocol_error(shared_canned: Canned, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    inner = opener * depth + ("1" if opener != "[" else "") + closer * depth
    shared_canned.serve(200, f"[{inner}]")
    found, error = _outcome(ConsulBackend(shared_canned.url, passing_only=False), ServiceQuery("r"))
    if error is not None:
        assert isinstance(error, DiscoveryProtocolError)
        assert "deeper" in str(error) or "not JSON" in str(error)
    else:
        assert found is not None
        assert found.instances == ()
        assert len(found.warnings) == 1  # one entry, not an object (or without an address)


def test_a_deeply_nested_body_is_a_protocol_error(canned: Canned) -> None:
    canned.serve(200, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(DiscoveryProtocolError, match="nests deeper"):
        ConsulBackend(canned.url).discover(ServiceQuery("r"))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pad=st.integers(0, 320),
    tail=st.integers(0, 40),
    status=st.sampled_from([200, 400, 403, 429, 500, 502, 404]),
    filler=st.sampled_from(["~", "x", " ", "\u00e9", "<"]),
)
def test_a_token_echoed_anywhere_around_the_cut_never_leaks(
    shared_canned: Canned, pad: int, tail: int, status: int, filler: str
) -> None:
    """Bodies that echo the token at every offset around the truncation points (60 and 200 characters)."""
    body = filler * pad + TOKEN + filler * tail
    shared_canned.serve(status, body)
    consul_backend = ConsulBackend(shared_canned.url, token=TOKEN)
    try:
        with pytest.raises(DiscoveryError) as caught:
            consul_backend.discover(ServiceQuery("r"))
    finally:
        consul_backend.close()
    for text in _texts_of(caught.value):
        assert not _leaks(text)


def test_a_token_echoed_in_an_answer_is_redacted_not_dropped(canned: Canned) -> None:
    """The echo is shown, with the token replaced: the redaction ran (the tests above could not pass vacuously)."""
    canned.serve(500, f"proxy: X-Consul-Token {TOKEN} refused")
    with pytest.raises(DiscoveryUnavailable) as caught:
        ConsulBackend(canned.url, token=TOKEN).discover(ServiceQuery("r"))
    assert "proxy: X-Consul-Token <redacted> refused" in str(caught.value)


def test_refused_connection(sim: ConsulSimulator) -> None:
    port = free_port()
    with pytest.raises(DiscoveryUnavailable) as caught:
        ConsulBackend(f"http://127.0.0.1:{port}", token=TOKEN).discover(ServiceQuery("docker_registry"))
    _check_message(caught.value, f"http://127.0.0.1:{port}", "docker_registry", "cannot connect")
    assert "connection refused" in str(caught.value)


@pytest.mark.parametrize(("consistency", "leader_hint"), [("default", True), ("consistent", True), ("stale", False)])
def test_a_timeout_says_the_cluster_may_have_no_leader_unless_stale(
    sim: ConsulSimulator, consistency: str, leader_hint: bool
) -> None:
    sim.hang()
    timeout = 0.5
    started = time.monotonic()
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim, timeout=timeout, token=TOKEN, consistency=consistency).discover(ServiceQuery("r"))
    elapsed = time.monotonic() - started
    assert timeout * 0.8 <= elapsed < 3 * timeout + 2
    _check_message(caught.value, sim.url, "r", "no answer within 0.5s")
    assert ("may have no leader" in str(caught.value)) is leader_hint
    assert ("consistency='stale'" in str(caught.value)) is leader_hint


def test_the_default_timeout_is_above_consuls_rpc_hold_timeout() -> None:
    assert ConsulBackend().timeout == 10.0
    assert ConsulBackend().max_response_bytes == 256 * 1024 * 1024
    assert ConsulBackend().watch_wait == 300.0


def test_a_slow_but_timely_answer_is_fine(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    sim.delay(0.2)
    assert ips(backend(sim, timeout=5).discover(ServiceQuery("r"))) == ["10.0.0.1"]


def test_a_dropped_connection(sim: ConsulSimulator) -> None:
    sim.drop()
    with pytest.raises(DiscoveryUnavailable) as caught:
        backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r")


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


def test_no_token_sends_no_header(sim: ConsulSimulator) -> None:
    backend(sim).discover(ServiceQuery("r"))
    assert sim.requests[-1].token is None
    assert sim.requests[-1].header("X-Consul-Token") is None


def test_blank_token_refused(sim: ConsulSimulator) -> None:
    with pytest.raises(InvalidInput, match="token"):
        backend(sim, token="a b")


def test_token_is_never_in_repr_or_messages(sim: ConsulSimulator) -> None:
    consul_backend = backend(sim, token=TOKEN, datacenter="dc1", timeout=1.0)
    assert "token=<redacted>" in repr(consul_backend)
    assert not _leaks(repr(consul_backend) + str(consul_backend) + repr(consul_backend._settings))
    sim.fail(500, f"echoing {TOKEN} back")
    with pytest.raises(DiscoveryUnavailable) as caught:
        consul_backend.discover(ServiceQuery("r"))
    assert "echoing <redacted> back" in str(caught.value)
    assert not any(_leaks(text) for text in _texts_of(caught.value))


def test_the_watch_retry_warning_never_holds_the_token(sim: ConsulSimulator, caplog: pytest.LogCaptureFixture) -> None:
    """The retry path runs (a first snapshot, then failures echoing the token), and the token is in no record.

    Every logger at DEBUG, each record's message, arguments (and their
    exception chains), exception info and stack, and every Python warning.
    """
    caplog.set_level(logging.DEBUG)
    sim.add_token(TOKEN, name="stager")
    sim.register("r", "10.0.0.1", port=80)
    consul_backend = backend(sim, token=TOKEN, watch_wait=0.2, watch_min_interval=0.01, watch_max_backoff=0.05)
    stop = threading.Event()
    seen: list[Discovery] = []
    with warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("always")
        thread = _collect(consul_backend, ServiceQuery("r"), stop, seen)
        try:
            _wait_for(lambda: len(seen) == 1)
            sim.fail(500, f"rpc error: the proxy echoes X-Consul-Token={TOKEN} and {TOKEN}", times=10_000)
            _wait_for(lambda: sum("failed" in record.getMessage() for record in caplog.records) >= 3)
        finally:
            stop.set()
            thread.join(timeout=30)
            sim.clear_faults()
    retries = [record for record in caplog.records if "consul watch" in record.getMessage()]
    assert len(retries) >= 3
    assert all(record.levelno == logging.WARNING for record in retries)
    assert any("the proxy echoes X-Consul-Token=<redacted>" in record.getMessage() for record in retries)
    texts: list[str] = []
    for record in caplog.records:
        texts.extend([record.getMessage(), repr(record.args), str(record.msg), record.stack_info or ""])
        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, BaseException):
                texts.extend(_texts_of(arg))
        if record.exc_info and record.exc_info[1] is not None:
            texts.extend(_texts_of(record.exc_info[1]))
    texts.extend(str(warning.message) for warning in python_warnings)
    texts.append(caplog.text)
    for text in texts:
        assert not _leaks(text)


# -- construction, the environment, from_url ---------------------------------------------------------------------


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
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"watch_wait": 601}, "watch_wait"),
        ({"watch_burst": 0}, "watch_burst"),
        ({"watch_min_interval": -1}, "watch_min_interval"),
        # agent/http.go: "Cannot specify ?cached with ?consistent, conflicting semantics."
        ({"cached": True, "consistency": "consistent"}, "cached=True with consistency='consistent' is refused"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(match) if "(" in match else match):
        ConsulBackend("http://127.0.0.1:8500", **kwargs)  # type: ignore[arg-type]


def test_cached_with_stale_or_default_is_fine(sim: ConsulSimulator) -> None:
    for consistency in ("default", "stale"):
        backend(sim, cached=True, consistency=consistency).discover(ServiceQuery("r"))
        assert sim.requests[-1].param("cached") is not None
        assert sim.requests[-1].status == 200


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


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("10.0.0.9:8600", "http://10.0.0.9:8600"),
        ("https://consul.example", "https://consul.example:8501"),
        ("http://[::1]:8500", "http://[::1]:8500"),
        ("consul.example", "http://consul.example:8500"),
    ],
)
def test_consul_http_addr(monkeypatch: pytest.MonkeyPatch, value: str, url: str) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", value)
    assert ConsulBackend().url == url
    assert ConsulBackend.from_url("consul://").url == url
    assert ConsulBackend("http://127.0.0.1:1").url == "http://127.0.0.1:1"  # an explicit URL wins
    assert ConsulBackend.from_url("consul://127.0.0.1:2").url == "http://127.0.0.1:2"


def test_consul_http_addr_unix_socket_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "unix:///var/run/consul.sock")
    with pytest.raises(InvalidInput, match="unix socket"):
        ConsulBackend()


def test_token_precedence(sim: ConsulSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An explicit token wins; then CONSUL_HTTP_TOKEN_FILE (as Consul's NewClient reads it), then CONSUL_HTTP_TOKEN."""
    sim.add_token(TOKEN, name="explicit")
    sim.add_token("env-token-value", name="from-env")
    sim.add_token("file-token-value", name="from-file")
    token_file = tmp_path / "token"
    token_file.write_text("file-token-value\n")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "env-token-value")
    backend(sim).discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "from-env"
    monkeypatch.setenv("CONSUL_HTTP_TOKEN_FILE", str(token_file))
    backend(sim).discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "from-file"
    backend(sim, token=TOKEN).discover(ServiceQuery("r"))
    assert sim.requests[-1].token == "explicit"
    monkeypatch.setenv("CONSUL_HTTP_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(InvalidInput, match="cannot read the token file"):
        backend(sim)
    assert backend(sim, token=TOKEN).has_token  # an explicit token does not even read the variables


def test_consul_tls_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tls_ca: Any) -> None:
    ca = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca))
    issued = tls_ca.issue_cert("stager.example")
    client = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    issued.cert_chain_pems[0].write_to_path(str(client))
    issued.private_key_pem.write_to_path(str(key))
    monkeypatch.setenv("CONSUL_CACERT", str(ca))
    monkeypatch.setenv("CONSUL_CLIENT_CERT", str(client))
    monkeypatch.setenv("CONSUL_CLIENT_KEY", str(key))
    settings_ = ConsulBackend("https://127.0.0.1:8501")._settings
    assert (settings_.verify, settings_.cert) == (str(ca), (str(client), str(key)))
    explicit = ConsulBackend("https://127.0.0.1:8501", verify=True, cert=(str(client), str(key)))._settings
    assert (explicit.verify, explicit.cert) == (True, (str(client), str(key)))
    monkeypatch.setenv("CONSUL_HTTP_SSL_VERIFY", "false")
    assert ConsulBackend("https://127.0.0.1:8501")._settings.verify is False
    monkeypatch.setenv("CONSUL_HTTP_SSL_VERIFY", "maybe")
    with pytest.raises(InvalidInput, match="CONSUL_HTTP_SSL_VERIFY='maybe'"):
        ConsulBackend("https://127.0.0.1:8501")
    monkeypatch.delenv("CONSUL_HTTP_SSL_VERIFY")
    monkeypatch.setenv("CONSUL_CACERT", str(tmp_path / "missing.pem"))
    with pytest.raises(InvalidInput, match="CONSUL_CACERT"):
        ConsulBackend("https://127.0.0.1:8501")
    monkeypatch.delenv("CONSUL_CACERT")
    monkeypatch.delenv("CONSUL_CLIENT_CERT")
    with pytest.raises(InvalidInput, match="CONSUL_CLIENT_KEY is set without CONSUL_CLIENT_CERT"):
        ConsulBackend("https://127.0.0.1:8501")


def test_a_ca_file_that_is_not_pem_is_refused_when_the_backend_is_made(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(InvalidInput, match="cannot set up TLS"):
        ConsulBackend("https://127.0.0.1:8501", verify=str(garbage))


def test_from_url_options(sim: ConsulSimulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    url = (
        f"consul://127.0.0.1:{sim.port}?dc=dc2&passing=false&consistency=stale&cached=true&timeout=2.5"
        f"&address=wan_ipv4&filter=ServiceTags+contains+%22x%22&token_file={token_file}&verify=false"
        "&max_response_bytes=1048576&watch_wait=1.5&watch_min_interval=0.5"
    )
    made = ConsulBackend.from_url(url)
    assert made.url == sim.url
    assert (made.datacenter, made.passing_only, made.consistency, made.cached) == ("dc2", False, "stale", True)
    assert (made.timeout, made.address, made.filter) == (2.5, "wan_ipv4", 'ServiceTags contains "x"')
    assert made.max_response_bytes == 1048576
    assert (made.watch_wait, made.watch_min_interval) == (1.5, 0.5)
    assert made.has_token
    assert not _leaks(repr(made))
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
        ("consul+https://", "https://127.0.0.1:8501"),
    ],
)
def test_from_url_schemes(url: str, expected: str) -> None:
    assert ConsulBackend.from_url(url).url == expected


def test_from_url_refuses_a_token_in_the_url() -> None:
    for url in ["consul://127.0.0.1:8500?token=" + TOKEN, f"consul://{TOKEN}@127.0.0.1:8500"]:
        with pytest.raises(InvalidInput) as caught:
            ConsulBackend.from_url(url)
        assert not _leaks(str(caught.value))
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
        ("consul://127.0.0.1:8500?max_response_bytes=lots", "max_response_bytes"),
        ("consul://127.0.0.1:8500?watch_wait=601", "watch_wait"),
        ("consul://127.0.0.1:8500?watch_min_interval=soon", "watch_min_interval"),
        ("consul://127.0.0.1:8500?cached=1&consistency=consistent", "cached=True with consistency"),
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
    with pytest.raises(MissingDependencyError) as caught:
        ConsulBackend()
    assert "pip install 'registry-config[consul]'" in str(caught.value)
    assert isinstance(caught.value, LookupError)


# -- watch ------------------------------------------------------------------------------------------------------


def _collect(
    consul_backend: ConsulBackend,
    query: ServiceQuery,
    stop: threading.Event,
    into: list[Discovery],
    errors: list[BaseException] | None = None,
) -> threading.Thread:
    def run() -> None:
        try:
            for snapshot in consul_backend.watch(query, stop=stop):
                into.append(snapshot)
        except BaseException as exc:
            if errors is None:
                raise
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _blocking(sim: ConsulSimulator) -> list[Any]:
    return [request for request in sim.requests if request.param("index") is not None]


def test_watch_sees_instances_appear_and_disappear_and_survives_a_reset(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "10.0.0.5", node="cell-1")
    consul_backend = backend(sim, watch_wait=0.5, watch_min_interval=0.05)
    query = ServiceQuery("docker_registry", default_port=8080)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(consul_backend, query, stop, seen)
    try:
        _wait_for(lambda: len(seen) == 1)
        assert seen[0].endpoints == ("10.0.0.5:8080",)
        sim.register("docker_registry", "10.0.0.6", node="cell-2")
        _wait_for(lambda: len(seen) == 2)
        assert seen[1].endpoints == ("10.0.0.5:8080", "10.0.0.6:8080")
        before = len(sim.requests)
        sim.reset_index(1)  # the index goes backwards: the watch must restart from a plain read
        _wait_for(lambda: any(r.param("index") is None for r in sim.requests[before:]))
        sim.deregister("docker_registry-cell-1")
        _wait_for(lambda: len(seen) == 3)
        assert seen[2].endpoints == ("10.0.0.6:8080",)
        sim.register("docker_registry", "10.0.0.7", node="cell-3")
        _wait_for(lambda: len(seen) == 4)
        assert seen[3].endpoints == ("10.0.0.6:8080", "10.0.0.7:8080")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sim.requests[0].param("index") is None
    assert all(int(r.param("index")) >= 1 for r in _blocking(sim))
    assert all(r.param("wait") == "0.5s" for r in _blocking(sim))


def test_watch_uses_blocking_queries_not_a_busy_loop(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.3, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(_blocking(sim)) >= 3)
        started = time.monotonic()
        count = len(sim.requests)
        _wait_for(lambda: len(sim.requests) >= count + 2)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(seen) == 1
    assert elapsed >= 0.3  # two more queries took at least one wait each: the server held them
    assert {r.param("wait") for r in _blocking(sim)} == {"0.3s"}


def test_the_watch_waits_five_minutes_by_default_and_stops_while_held(canned: Canned) -> None:
    """Consul's default wait (an idle watch costs one request per five minutes), and a prompt stop.

    The server holds the blocking query and never lets go: the watch can
    only end because the stopping side closes the connection.
    """
    canned.answer = lambda request: (
        (200, {"X-Consul-Index": "7"}, b"[]") if request.param("index") is None else (200, {}, HOLD)
    )
    stop = threading.Event()
    seen: list[Discovery] = []
    errors: list[BaseException] = []
    consul_backend = ConsulBackend(canned.url, token=TOKEN)
    thread = _collect(consul_backend, ServiceQuery("r"), stop, seen, errors)
    try:
        assert canned.holding.wait(30)
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()  # while the server still holds the query
    finally:
        stop.set()
    assert errors == []
    blocking = [r for r in canned.requests if r.param("index") is not None]
    assert [(r.param("index"), r.param("wait")) for r in blocking] == [("7", "300s")]
    assert len(seen) == 1


def test_token_bucket_burst_then_one_per_interval() -> None:
    now = [100.0]
    waits: list[float] = []

    class FakeStop:
        def is_set(self) -> bool:
            return False

        def wait(self, timeout: float | None = None) -> bool:
            assert timeout is not None
            waits.append(timeout)
            now[0] += timeout
            return False

    bucket = TokenBucket(2, 5.0, clock=lambda: now[0])
    stop = FakeStop()
    taken_at = []
    for _ in range(5):
        assert bucket.take(stop)
        taken_at.append(now[0])
    assert taken_at == [100.0, 100.0, 105.0, 110.0, 115.0]
    now[0] += 60  # idle for a minute: the burst is back, and no more
    assert bucket.take(stop)
    assert bucket.take(stop)
    assert bucket.delay() == pytest.approx(5.0)


def test_token_bucket_stops_while_waiting() -> None:
    stop = threading.Event()
    bucket = TokenBucket(1, 3600.0)
    assert bucket.take(stop)
    stop.set()
    assert not bucket.take(stop)


def test_watch_rate_limits_under_churn(sim: ConsulSimulator) -> None:
    """Every answer comes back at once with a new index: after the burst, one query per interval."""
    sim.register("r", "10.0.0.1", port=80)
    interval = 0.3
    stop = threading.Event()
    seen: list[Discovery] = []
    churn = threading.Event()

    def churner() -> None:
        flip = 0
        while not churn.wait(0.01):
            flip += 1
            sim.register("r", f"10.0.1.{flip % 200 + 1}", port=80, node="churn")

    churning = threading.Thread(target=churner, daemon=True)
    churning.start()
    started = time.monotonic()
    thread = _collect(backend(sim, watch_wait=5, watch_min_interval=interval), ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(sim.requests) >= 6)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        churn.set()
        thread.join(timeout=30)
        churning.join(timeout=30)
    assert len(seen) >= 3  # the churn was seen
    # Two queries at once (the burst), then one per interval: the sixth cannot come before four intervals.
    assert elapsed >= 4 * interval * 0.95


def test_watch_rate_limits_when_no_index_comes_back(canned: Canned) -> None:
    """Without an index no query can block: the watch polls once per wait, never in a loop."""
    canned.serve(200, "[]", {})
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(ConsulBackend(canned.url, watch_wait=0.3, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(canned.requests) >= 3)
        started = time.monotonic()
        count = len(canned.requests)
        _wait_for(lambda: len(canned.requests) >= count + 2)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=30)
    assert elapsed >= 0.3
    assert all(r.param("index") is None for r in canned.requests)


def test_an_index_that_goes_backwards_restarts_from_a_plain_read(canned: Canned) -> None:
    answers = iter(["50", "60", "3", "4"])
    asked: list[str | None] = []
    done = threading.Event()

    def answer(request: CannedRequest) -> Answer:
        asked.append(request.param("index"))
        index = next(answers, None)
        if index is None:
            done.set()
            return 200, {}, HOLD
        return 200, {"X-Consul-Index": index}, f'[{{"Address": "10.0.0.{index}", "ServicePort": 80}}]'.encode()

    canned.answer = answer
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(
        ConsulBackend(canned.url, passing_only=False, watch_min_interval=0.0), ServiceQuery("r"), stop, seen
    )
    try:
        assert done.wait(30)
    finally:
        stop.set()
        canned.close()
        thread.join(timeout=30)
    # 50, then blocking on 50 gives 60, then on 60 gives 3 (backwards): reset, a plain read gives 4, block on 4.
    assert asked == [None, "50", "60", None, "4"]
    assert [s.index for s in seen] == [50, 60, 3, 4]


def test_watch_with_stop_already_set_yields_nothing(sim: ConsulSimulator) -> None:
    stop = threading.Event()
    stop.set()
    assert list(backend(sim).watch(ServiceQuery("r"), stop=stop)) == []
    assert sim.requests == []


def test_watch_first_error_propagates(sim: ConsulSimulator) -> None:
    sim.fail(403, "ACL not found")
    with pytest.raises(DiscoveryAuthError):
        next(backend(sim).watch(ServiceQuery("r")))


def test_a_watch_stops_on_a_refused_filter_instead_of_retrying(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    errors: list[BaseException] = []
    thread = _collect(backend(sim, watch_wait=0.2, watch_min_interval=0.0), ServiceQuery("r"), stop, seen, errors)
    try:
        _wait_for(lambda: len(seen) == 1)
        sim.fail(500, "rpc error making call: Failed to create boolean expression evaluator: bad", times=50)
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        stop.set()
        sim.clear_faults()
    assert len(errors) == 1
    assert isinstance(errors[0], DiscoveryQueryError)
    assert sum(1 for r in sim.requests if r.fault) == 1  # asked once, not retried


def test_watch_retries_later_errors_with_backoff(sim: ConsulSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="registry_config.discovery.consul")
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    consul_backend = backend(sim, watch_wait=0.3, watch_min_interval=0.05, watch_max_backoff=0.4)
    thread = _collect(consul_backend, ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(seen) == 1)
        sim.fail(500, "No cluster leader", times=2)
        sim.drop()
        sim.respond_raw("garbage")
        _wait_for(lambda: sum(1 for r in sim.requests if r.fault) == 4)
        sim.register("r", "10.0.0.2", port=80)
        _wait_for(lambda: len(seen) == 2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert seen[1].endpoints == ("10.0.0.1:80", "10.0.0.2:80")
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.levelno == logging.WARNING for r in failures)
    assert "'r'" in failures[0].getMessage()
    gaps = [b.created - a.created for a, b in itertools.pairwise(failures)]
    assert all(gap >= 0.05 * 0.8 for gap in gaps)


def test_a_watch_logs_and_retries_hostile_answers(canned: Canned, caplog: pytest.LogCaptureFixture) -> None:
    """A hostile index or a body nested too deep is a protocol error: logged and retried, not the watch's end."""
    caplog.set_level(logging.WARNING, logger="registry_config.discovery.consul")
    answers = iter(
        [
            (200, {"X-Consul-Index": "5"}, b'[{"Address": "10.0.0.1", "ServicePort": 80}]'),
            (200, {"X-Consul-Index": "\u00b2"}, b"[]"),
            (200, {"X-Consul-Index": "9" * 5000}, b"[]"),
            (200, {"X-Consul-Index": "6"}, b"[" * 100_000 + b"]" * 100_000),
            (200, {"X-Consul-Index": "7"}, b'[{"Address": "10.0.0.2", "ServicePort": 80}]'),
        ]
    )
    canned.answer = lambda request: next(answers, (200, {}, HOLD))
    stop = threading.Event()
    seen: list[Discovery] = []
    errors: list[BaseException] = []
    consul_backend = ConsulBackend(canned.url, passing_only=False, watch_min_interval=0.0, watch_max_backoff=0.05)
    thread = _collect(consul_backend, ServiceQuery("r"), stop, seen, errors)
    try:
        _wait_for(lambda: len(seen) == 2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert [s.endpoints for s in seen] == [("10.0.0.1:80",), ("10.0.0.2:80",)]
    retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retried) == 3
    assert "X-Consul-Index '\u00b2'" in retried[0]
    assert "nests deeper" in retried[2]


def test_watch_of_an_unchanged_service_stays_quiet(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.2, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(seen) == 1)
        sim.register("other", "10.0.0.9", port=80)
        sim.set_status("r-node-10.0.0.1", "passing")
        count = len(sim.requests)
        _wait_for(lambda: len(sim.requests) >= count + 3)  # three more answers, none a change
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(seen) == 1


def test_watch_drops_an_instance_whose_check_fails(sim: ConsulSimulator) -> None:
    sim.register("r", "10.0.0.1", port=80, node="a")
    sim.register("r", "10.0.0.2", port=80, node="b")
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(backend(sim, watch_wait=0.5, watch_min_interval=0.0), ServiceQuery("r"), stop, seen)
    try:
        _wait_for(lambda: len(seen) == 1)
        sim.set_status("r-b", "critical")
        _wait_for(lambda: len(seen) == 2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert ips(seen[1]) == ["10.0.0.1"]


# -- the transport: bounded, no redirect, no proxy, IPv6 -------------------------------------------------------------


def test_a_redirect_is_not_followed_and_the_token_does_not_travel(canned: Canned) -> None:
    elsewhere = Canned()
    try:
        target = f"{elsewhere.url}/v1/health/service/r?token={TOKEN}"
        canned.serve(302, "", {"Location": target})
        with pytest.raises(DiscoveryProtocolError) as caught:
            ConsulBackend(canned.url, token=TOKEN).discover(ServiceQuery("r"))
        assert elsewhere.requests == []
    finally:
        elsewhere.close()
    message = str(caught.value)
    assert "a redirect to" in message
    assert elsewhere.url in message
    assert "HTTP 302" in message
    assert not any(_leaks(text) for text in _texts_of(caught.value))
    assert canned.requests[0].header("X-Consul-Token") == TOKEN  # sent to the agent only


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_proxy_variables_are_not_honoured(canned: Canned, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    proxy = Canned()
    try:
        monkeypatch.setenv(variable, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        ConsulBackend(canned.url, token=TOKEN).discover(ServiceQuery("r"))
        assert proxy.requests == []
    finally:
        proxy.close()
    assert len(canned.requests) == 1


def test_an_answer_above_max_response_bytes_is_refused(canned: Canned) -> None:
    entry = json.dumps({"Address": "10.0.0.1", "ServicePort": 80})
    canned.serve(200, "[" + ",".join([entry] * 40_000) + "]")
    with pytest.raises(DiscoveryProtocolError, match="max_response_bytes=1048576"):
        ConsulBackend(canned.url, passing_only=False, max_response_bytes=1024 * 1024).discover(ServiceQuery("r"))
    from_url = ConsulBackend.from_url(f"consul://{canned.url.partition('//')[2]}?passing=false&max_response_bytes=1024")
    with pytest.raises(DiscoveryProtocolError, match="max_response_bytes=1024;"):
        from_url.discover(ServiceQuery("r"))
    assert len(ConsulBackend(canned.url, passing_only=False).discover(ServiceQuery("r"))) == 1


class _RawServer:
    """A one-connection-at-a-time TCP server that plays ``script(connection)``: for what HTTP servers won't send."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # accept() looks at _closing this often
        self._closing = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._script = script
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            with connection, contextlib.suppress(OSError):
                connection.recv(65536)
                self._script(connection)

    def wait(self, seconds: float) -> bool:
        return self._closing.wait(seconds)

    def close(self) -> None:
        self._closing.set()
        self._sock.close()
        self._thread.join(timeout=30)


def test_a_drip_fed_answer_ends_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """One byte every 0.2 s: each read is quick, the whole is not; timeout bounds the whole request."""

    def drip(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nContent-Length: 100000\r\n\r\n[")
        for _ in range(1000):
            connection.sendall(b" ")
            if server.wait(0.2):
                return

    server = _RawServer(drip)
    timeout = 1.0
    try:
        started = time.monotonic()
        with pytest.raises(DiscoveryUnavailable, match="no answer within 1s") as caught:
            ConsulBackend(server.url, timeout=timeout).discover(ServiceQuery("r"))
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert elapsed < 3 * timeout + 2
    assert "may have no leader" in str(caught.value)


def test_an_endless_answer_is_cut_at_max_response_bytes() -> None:
    """No Content-Length, a body until the server closes: read up to the ceiling, never buffered whole."""

    def endless(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nConnection: close\r\n\r\n[")
        chunk = b'{"Address": "10.0.0.1", "ServicePort": 80},' * 1000
        while not server.wait(0):
            connection.sendall(chunk)

    server = _RawServer(endless)
    try:
        with pytest.raises(DiscoveryProtocolError, match="larger than max_response_bytes=2097152"):
            ConsulBackend(server.url, passing_only=False, max_response_bytes=2 * 1024 * 1024).discover(
                ServiceQuery("r")
            )
    finally:
        server.close()


def test_a_garbled_status_line_echoing_the_token_is_typed_and_redacted() -> None:
    def garble(connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 2OO {TOKEN}\r\n\r\n".encode())

    server = _RawServer(garble)
    try:
        with pytest.raises(DiscoveryProtocolError) as caught:
            ConsulBackend(server.url, token=TOKEN).discover(ServiceQuery("r"))
    finally:
        server.close()
    assert "not well-formed HTTP" in str(caught.value)
    assert not any(_leaks(text) for text in _texts_of(caught.value))


@pytest.fixture
def canned_v6() -> Iterator[Canned]:
    try:
        server = Canned("::1")
    except OSError as exc:
        unavailable(f"no IPv6 loopback here ({exc})")
    try:
        yield server
    finally:
        server.close()


def test_an_ipv6_agent_url_works_end_to_end(canned_v6: Canned) -> None:
    canned_v6.answer = lambda request: (
        (200, {"X-Consul-Index": "7"}, b'[{"Address": "fd00::7", "ServicePort": 5000}]')
        if request.param("index") is None
        else (200, {}, HOLD)
    )
    assert canned_v6.url.startswith("http://[::1]:")
    consul_backend = ConsulBackend(canned_v6.url, passing_only=False)
    assert consul_backend.url == canned_v6.url
    assert consul_backend.discover(ServiceQuery("r")).endpoints == ("[fd00::7]:5000",)
    from_url = ConsulBackend.from_url(f"consul://{canned_v6.url.partition('//')[2]}?passing=false")
    assert from_url.discover(ServiceQuery("r")).endpoints == ("[fd00::7]:5000",)
    stop = threading.Event()
    seen: list[Discovery] = []
    thread = _collect(consul_backend, ServiceQuery("r"), stop, seen)
    try:
        assert canned_v6.holding.wait(30)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [s.endpoints for s in seen] == [("[fd00::7]:5000",)]
    assert canned_v6.requests[0].header("Host") == canned_v6.url.partition("//")[2]


# -- HTTPS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> object:
    trustme = need_module("trustme", package="trustme")
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


def test_https_with_a_ca_bundle(tls_sim: tuple[ConsulSimulator, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    sim, ca_file = tls_sim
    assert sim.url.startswith("https://")
    found = ConsulBackend(sim.url, verify=str(ca_file)).discover(ServiceQuery("r"))
    assert found.endpoints == ("10.0.0.1:80",)
    made = ConsulBackend.from_url(f"consul+https://127.0.0.1:{sim.port}?verify={ca_file}")
    assert made.discover(ServiceQuery("r")).endpoints == ("10.0.0.1:80",)
    monkeypatch.setenv("CONSUL_CACERT", str(ca_file))
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"https://127.0.0.1:{sim.port}")
    assert ConsulBackend().discover(ServiceQuery("r")).endpoints == ("10.0.0.1:80",)


def test_https_with_an_unknown_ca_is_unavailable_and_says_tls(tls_sim: tuple[ConsulSimulator, Path]) -> None:
    sim, _ = tls_sim
    with pytest.raises(DiscoveryUnavailable, match="TLS") as caught:
        ConsulBackend(sim.url, token=TOKEN, timeout=3).discover(ServiceQuery("r"))
    _check_message(caught.value, sim.url, "r", "verify=")
    assert ConsulBackend(sim.url, verify=str(tls_sim[1])).discover(ServiceQuery("r")).endpoints == ("10.0.0.1:80",)
