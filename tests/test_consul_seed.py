"""The seed scenario end to end: Consul (simulated) -> ConsulBackend -> build_plan -> flags and egress rules."""

from __future__ import annotations

import http.server
import ipaddress
import json
import runpy
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_config.discovery.consul import ConsulBackend
from registry_config.plan import build_plan
from registry_config.spec import RegistrySpec
from registry_config.testing.consul import ConsulSimulator

SEED_URL = "http://docker_registry.service.dc1.consul:8080"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seed_consul.py"
PAYLOADS = Path(__file__).parent / "data" / "consul"


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator() as simulator:
        simulator.register("docker_registry", "10.244.2.6", node="registry-0", port=0)
        simulator.register("docker_registry", "10.244.2.7", node="registry-1", port=0)
        yield simulator


def _allowed_pairs(plan: object, candidates: list[tuple[str, int]]) -> set[tuple[str, int]]:
    rules = plan.egress_rules  # type: ignore[attr-defined]
    return {(ip, port) for ip, port in candidates if any(rule.allows(ip, port) for rule in rules)}


CANDIDATES = [
    (f"10.244.{c}.{d}", port) for c in (1, 2, 3) for d in (0, 5, 6, 7, 8, 255) for port in (80, 5000, 8079, 8080, 8081)
]


@pytest.mark.parametrize("passing_only", [True, False])
@pytest.mark.parametrize("compact", [True, False])
def test_seed_scenario(sim: ConsulSimulator, passing_only: bool, compact: bool) -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    with ConsulBackend(sim.url, passing_only=passing_only) as backend:
        plan = build_plan(spec, backend, compact=compact)
    assert plan.builder_args[:3] == ("-dockerRegistryURL", SEED_URL, "-insecureDockerRegistries")
    entries = plan.builder_args[3].split(",")
    assert entries[:2] == ["10.244.2.6:8080", "10.244.2.7:8080"]
    assert set(entries) == {"10.244.2.6:8080", "10.244.2.7:8080", "docker_registry.service.dc1.consul:8080"}
    assert [instance.endpoint for instance in plan.instances] == ["10.244.2.6:8080", "10.244.2.7:8080"]
    assert _allowed_pairs(plan, CANDIDATES) == {("10.244.2.6", 8080), ("10.244.2.7", 8080)}
    assert all(rule.to_bbs()["protocol"] == "tcp" for rule in plan.egress_rules)
    if not compact:
        assert [rule.to_bbs()["destinations"] for rule in plan.egress_rules] == [["10.244.2.6"], ["10.244.2.7"]]
    request = sim.requests[-1]
    assert request.path == (
        "/v1/health/service/docker_registry" if passing_only else "/v1/catalog/service/docker_registry"
    )
    assert request.param("dc") == "dc1"


def test_seed_scenario_https_has_no_insecure_flag_and_the_same_rules(sim: ConsulSimulator) -> None:
    spec = RegistrySpec.from_url("https://docker_registry.service.dc1.consul:8080")
    with ConsulBackend(sim.url) as backend:
        plan = build_plan(spec, backend)
    assert plan.builder_args == ("-dockerRegistryURL", "https://docker_registry.service.dc1.consul:8080")
    assert _allowed_pairs(plan, CANDIDATES) == {("10.244.2.6", 8080), ("10.244.2.7", 8080)}


def test_seed_scenario_metadata_address_never_reaches_the_rules(sim: ConsulSimulator) -> None:
    sim.register("docker_registry", "169.254.169.254", node="poisoned", port=0)
    spec = RegistrySpec.from_url(SEED_URL)
    with ConsulBackend(sim.url) as backend:
        plan = build_plan(spec, backend)
    assert [str(r.instance.address) for r in plan.rejected] == ["169.254.169.254"]
    assert not any(rule.allows("169.254.169.254", 8080) for rule in plan.egress_rules)
    assert "169.254.169.254" not in plan.builder_args[3]
    assert ipaddress.ip_address("169.254.169.254") not in {i.address for i in plan.instances}


def test_the_example_runs() -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")


def test_seed_scenario_through_the_plan_command(
    sim: ConsulSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_config.cli import main

    secret = "pl4n-t0ken-s3cret"
    sim.add_token(secret, name="stager", services=["docker_registry"])
    token_file = tmp_path / "consul.token"
    token_file.write_text(secret + "\n")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "env-token-that-consul-does-not-know")
    backend = f"consul://127.0.0.1:{sim.port}?passing=true&consistency=stale"
    status = main(["plan", SEED_URL, "--backend", backend, "--consul-token-file", str(token_file), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    plan = json.loads(captured.out)
    assert plan["builder_args"] == [
        "-dockerRegistryURL",
        SEED_URL,
        "-insecureDockerRegistries",
        "10.244.2.6:8080,10.244.2.7:8080,docker_registry.service.dc1.consul:8080",
    ]
    assert plan["instances"] == ["10.244.2.6:8080", "10.244.2.7:8080"]
    assert sim.requests[-1].token == "stager"  # the file's token won over the environment's
    assert sim.requests[-1].param("stale") is not None
    assert secret not in captured.out + captured.err

    monkeypatch.setenv("CONSUL_HTTP_TOKEN", secret)
    assert main(["plan", SEED_URL, "--backend", backend, "--json"]) == 0
    assert sim.requests[-1].token == "stager"
    monkeypatch.delenv("CONSUL_HTTP_TOKEN")
    status = main(["plan", SEED_URL, "--backend", backend])
    captured = capsys.readouterr()
    assert status == 4  # the anonymous token sees nothing: no instance left
    assert "no registry instance found" in captured.err
    assert secret not in captured.out + captured.err


@pytest.fixture
def live_agent() -> Iterator[str]:
    """A loopback server answering what a running agent answered (``data/consul/*-live.json``), verbatim."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = "health-service-live.json" if self.path.startswith("/v1/health/") else "catalog-service-live.json"
            body = json.dumps(json.loads((PAYLOADS / name).read_text()), separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Consul-Index", "80")
            self.send_header("X-Consul-KnownLeader", "true")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("passing_only", "address", "expected"),
    [
        # cell-2's node is in maintenance: the health endpoint's answer keeps it out.
        (True, "service", ["10.244.2.6:8080"]),
        # The catalog knows nothing of health: cell-2 (port 0) gets the URL's port.
        (False, "service", ["10.244.0.22:8080", "10.244.2.6:8080"]),
        # cell-1's WAN address is public: found, and refused by the default egress guard.
        (False, "wan", ["10.244.0.22:8080"]),
    ],
)
def test_seed_scenario_against_a_live_agents_answer(
    live_agent: str, passing_only: bool, address: str, expected: list[str]
) -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    with ConsulBackend(live_agent, passing_only=passing_only, address=address) as backend:
        plan = build_plan(spec, backend)
    assert [instance.endpoint for instance in plan.instances] == expected
    assert plan.builder_args[3].split(",") == [*expected, "docker_registry.service.dc1.consul:8080"]
    pairs = {(str(i.address), i.port) for i in plan.instances}
    assert all(any(rule.allows(ip, port) for rule in plan.egress_rules) for ip, port in pairs)
    assert not any(rule.allows("10.244.0.21", 8080) for rule in plan.egress_rules)  # cell-1's node, not its service
    assert [r.instance.endpoint for r in plan.rejected] == (["198.18.0.6:443"] if address == "wan" else [])
