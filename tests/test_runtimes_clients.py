"""Every rendered configuration proven in the real clients: skopeo, podman, buildah, containerd's ctr, dockerd.

Debian's docker-registry serves a hand-made OCI image in the seed's three
flavours (plain HTTP; HTTPS with a self-signed certificate; HTTPS from a test
CA), on their default ports and on 5000, over IPv4 and IPv6, inside a
:class:`~_clients.Sandbox` (its own network and mount namespace: no traffic
leaves it, nothing is written outside the test's directory). For each
scenario, the plan is rendered as the ``/etc`` tree of ``registry-config
render --output-dir`` (through the Python API and through the command line,
which must agree byte for byte), installed over ``/etc`` in a private mount
namespace, and each client must pull every reference with it
(:func:`test_rendered_configuration_pulls`) and refuse it without, for the
insecurity reason (:func:`test_without_it_the_client_refuses`).

The matrix is in docs/howto/render.md. These tests run on CI's default Python
only (marker ``clients``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trustme
from _clients import CLIENTS, Clients, Sandbox, etc_tree, prepare, pull, push_image, sandboxed, start_registry
from _integration import need_program
from _oci import TAG, write_layout
from _registry import _self_signed, write_leaf

from registry_config import RegistrySpec, StaticBackend, build_plan
from registry_config.errors import RegistryConfigWarning
from registry_config.render import render_tree

pytestmark = [pytest.mark.clients, pytest.mark.integration, pytest.mark.timeout(900)]

PLAIN, SELF_SIGNED, TRUSTED, V6 = "10.254.0.1", "10.254.0.2", "10.254.0.3", "fd00:254::1"
CONSUL = "docker_registry.service.dc1.consul"
HOSTS = {"plain.test": PLAIN, CONSUL: PLAIN, "selfsigned.test": SELF_SIGNED, "trusted.test": TRUSTED, "v6.test": V6}
IMAGE = f"tiny:{TAG}"

HTTP_REFUSED = "server gave HTTP response to HTTPS client"
UNTRUSTED = "certificate signed by unknown authority"
NO_HTTPS_ON_443 = "443: connect: connection refused"


@attrs.frozen
class Scenario:
    """A plan, how it is rendered, and the image references every client must pull with what was rendered."""

    name: str
    url: str
    instances: tuple[str, ...]
    references: tuple[str, ...]
    skip_ssl_validation: bool = False
    ca: bool = False
    extra: tuple[str, ...] = ()
    containerd_only: tuple[str, ...] = ()
    """References only containerd can name (a host with ``_``, an IPv6 literal): the others refuse the name."""
    via: str = "api"

    def cli_argv(self, output: Path, ca: Path) -> list[str]:
        argv = [sys.executable, "-m", "registry_config", "render", self.url, "--output-dir", str(output)]
        argv += [arg for instance in self.instances for arg in ("--instance", instance)]
        argv += [arg for entry in self.extra for arg in ("--insecure-registry", entry)]
        if self.skip_ssl_validation:
            argv.append("--skip-ssl-validation")
        if self.ca:
            argv += ["--ca", str(ca)]
        return argv


SCENARIOS = (
    Scenario("http-default-port", "http://plain.test", (PLAIN,), (f"plain.test/{IMAGE}", f"plain.test:80/{IMAGE}")),
    Scenario(
        "http-seed-consul-name-with-a-tls-extra",
        f"http://{CONSUL}:5000",
        (PLAIN,),
        (f"{PLAIN}:5000/{IMAGE}", f"selfsigned.test:5000/{IMAGE}"),
        extra=("selfsigned.test:5000",),
        containerd_only=(f"{CONSUL}:5000/{IMAGE}",),
        via="cli",
    ),
    Scenario(
        "self-signed-default-port",
        "https://selfsigned.test",
        (SELF_SIGNED,),
        (f"selfsigned.test/{IMAGE}", f"selfsigned.test:443/{IMAGE}"),
        skip_ssl_validation=True,
    ),
    Scenario(
        "ca-with-an-http-extra",
        "https://trusted.test:5000",
        (TRUSTED,),
        (f"trusted.test:5000/{IMAGE}", f"{PLAIN}:5000/{IMAGE}"),
        ca=True,
        extra=(f"{PLAIN}:5000",),
        via="cli",
    ),
    Scenario(
        "ca-default-port",
        "https://trusted.test",
        (TRUSTED,),
        (f"trusted.test/{IMAGE}", f"trusted.test:443/{IMAGE}"),
        ca=True,
    ),
    Scenario(
        "ipv6",
        "http://v6.test:5000",
        (V6,),
        (f"v6.test:5000/{IMAGE}",),
        containerd_only=(f"[{V6}]:5000/{IMAGE}",),
        via="cli",
    ),
)

# Without the rendered files, each reference is refused for the reason its flavour is insecure.
CONTROLS = (
    (f"plain.test/{IMAGE}", NO_HTTPS_ON_443),
    (f"plain.test:80/{IMAGE}", HTTP_REFUSED),
    (f"{PLAIN}:5000/{IMAGE}", HTTP_REFUSED),
    (f"v6.test:5000/{IMAGE}", HTTP_REFUSED),
    (f"selfsigned.test/{IMAGE}", UNTRUSTED),
    (f"selfsigned.test:443/{IMAGE}", UNTRUSTED),
    (f"selfsigned.test:5000/{IMAGE}", UNTRUSTED),
    (f"trusted.test/{IMAGE}", UNTRUSTED),
    (f"trusted.test:443/{IMAGE}", UNTRUSTED),
    (f"trusted.test:5000/{IMAGE}", UNTRUSTED),
)
CONTAINERD_CONTROLS = ((f"{CONSUL}:5000/{IMAGE}", HTTP_REFUSED), (f"[{V6}]:5000/{IMAGE}", HTTP_REFUSED))


@attrs.define
class World:
    """The sandbox, its registries and containerd, and each scenario's rendered tree, made once per module."""

    directory: Path
    sandbox: Sandbox
    clients: Clients
    processes: list[subprocess.Popen[bytes]]
    ca_pem: Path
    trees: dict[str, Path] = attrs.field(factory=dict)
    warnings: dict[str, list[str]] = attrs.field(factory=dict)
    control: Path | None = None

    def etc(self, scenario: Scenario) -> Path:
        if scenario.name not in self.trees:
            self.trees[scenario.name] = self._render(scenario)
        return self.trees[scenario.name]

    def control_etc(self) -> Path:
        if self.control is None:
            self.control = etc_tree(self.directory / "control")
        return self.control

    def _render(self, scenario: Scenario) -> Path:
        """The tree through the API and through the CLI, compared; the etc installed from ``scenario.via``'s."""
        base = self.directory / scenario.name
        spec = RegistrySpec.from_url(scenario.url, skip_ssl_validation=scenario.skip_ssl_validation)
        plan = build_plan(spec, StaticBackend(list(scenario.instances)), extra_insecure=scenario.extra)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            files = render_tree(plan, ca_pem=self.ca_pem.read_bytes() if scenario.ca else None)
        self.warnings[scenario.name] = [str(w.message) for w in caught if w.category is RegistryConfigWarning]
        api = {file.path: file.content for file in files}
        cli_dir = base / "cli"
        result = subprocess.run(
            scenario.cli_argv(cli_dir, self.ca_pem), capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, result.stderr
        for message in self.warnings[scenario.name]:
            assert f"registry-config render: warning: {message}" in result.stderr
        cli = {p.relative_to(cli_dir).as_posix(): p.read_bytes() for p in cli_dir.rglob("*") if p.is_file()}
        assert cli == api, f"registry-config render and render_tree disagree for {scenario.name}"
        api_dir = base / "api"
        for path, content in api.items():
            (api_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (api_dir / path).write_bytes(content)
        return etc_tree(base / "installed", api_dir if scenario.via == "api" else cli_dir)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    need_program("skopeo", package="skopeo")  # pushes the image
    directory = tmp_path_factory.mktemp("runtimes")
    ca = trustme.CA()
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    trusted = write_leaf(ca.issue_cert("trusted.test"), directory, "trusted")
    self_signed = _self_signed(directory, ("selfsigned.test",), (SELF_SIGNED,))
    layout = directory / "layout"
    write_layout(layout)
    with sandboxed(directory, HOSTS, (PLAIN, SELF_SIGNED, TRUSTED, V6)) as (sandbox, clients, processes):
        storage = {name: directory / f"storage-{name}" for name in ("plain", "self-signed", "trusted")}
        servers = [("plain", addr, port, None) for addr, port in ((PLAIN, 5000), (PLAIN, 80), (V6, 5000))]
        servers += [("self-signed", SELF_SIGNED, port, self_signed) for port in (5000, 443)]
        servers += [("trusted", TRUSTED, port, trusted) for port in (5000, 443)]
        for name, addr, port, tls in servers:
            where = directory / f"registry-{name}-{addr.replace(':', '_')}-{port}"
            start_registry(sandbox, where, processes, storage=storage[name], addr=addr, port=port, tls=tls)
        for address in (f"{PLAIN}:5000", f"{SELF_SIGNED}:5000", f"{TRUSTED}:5000"):
            push_image(sandbox, layout, f"{address}/{IMAGE}")
        yield World(directory, sandbox, clients, processes, ca_pem)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_rendered_configuration_pulls(world: World, scenario: Scenario, client: str) -> None:
    etc = world.etc(scenario)
    prepare(world.clients, client, etc, world.processes)
    for reference in scenario.references:
        result = pull(world.clients, client, reference, etc)
        assert result.ok, f"{scenario.name}: {result}"
    for reference in scenario.containerd_only:
        result = pull(world.clients, client, reference, etc)
        if client == "ctr":
            assert result.ok, f"{scenario.name}: containerd names it: {result}"
        else:
            assert not result.ok, result
            assert "invalid reference format" in result.output, result


def test_names_docker_and_containers_refuse_are_left_out_with_a_warning(world: World) -> None:
    seed = SCENARIOS[1]
    etc = world.etc(seed)
    messages = world.warnings[seed.name]
    assert any(m.startswith(f"daemon.json: left out '{CONSUL}:5000'") for m in messages), messages
    assert any(m.startswith(f"registries.conf: left out '{CONSUL}:5000'") for m in messages), messages
    assert CONSUL not in (etc / "docker" / "daemon.json").read_text()
    assert CONSUL in (etc / "containerd" / "certs.d" / f"{CONSUL}:5000" / "hosts.toml").read_text()
    for scenario in SCENARIOS:
        world.etc(scenario)
        if scenario is not seed:
            assert world.warnings[scenario.name] == [], scenario.name


# The other clients refuse CONTAINERD_CONTROLS' names themselves (test_rendered_configuration_pulls).
_CONTROL_CASES = [(reference, reason, client) for reference, reason in CONTROLS for client in CLIENTS] + [
    (reference, reason, "ctr") for reference, reason in CONTAINERD_CONTROLS
]


@pytest.mark.parametrize(
    ("reference", "reason", "client"), _CONTROL_CASES, ids=[f"{ref}-{client}" for ref, _, client in _CONTROL_CASES]
)
def test_without_it_the_client_refuses(world: World, client: str, reference: str, reason: str) -> None:
    etc = world.control_etc()
    prepare(world.clients, client, etc, world.processes)
    result = pull(world.clients, client, reference, etc)
    assert not result.ok, f"the control pulled: the test proves nothing\n{result}"
    assert reason in result.output, result


def test_nothing_reached_docker_hub_or_left_the_sandbox(world: World) -> None:
    """Docker Hub's names resolve to a dead loopback address inside; the sandbox has no route out."""
    result = world.sandbox.run(["getent", "hosts", "registry-1.docker.io"])
    assert result.stdout.split()[0] == "127.0.0.9"
    routes = world.sandbox.run(["ip", "route", "show"]).stdout
    assert routes.strip() == "", routes
    assert os.readlink("/proc/self/ns/net") != os.readlink(f"/proc/{world.sandbox.holder.pid}/ns/net")
