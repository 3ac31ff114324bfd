"""The plan's registry as a pull-through mirror of Docker Hub, proven in the real clients, through an outage.

A docker-registry in proxy mode (``proxy.remoteurl``) stands in front of a
second docker-registry standing in for Docker Hub, inside a
:class:`~_clients.Sandbox` where Docker Hub's real names point at a dead
loopback address (nothing can leave the machine). The plan's files rendered
with ``mirror_of=("docker.io",)`` (``registry-config render --mirror-of
docker.io``) make every client pull ``docker.io/library/tiny:1`` through the
mirror; without them the clients go to Docker Hub and are refused; and once
the stand-in for Docker Hub is stopped, every client still pulls from the
mirror's cache: the seed's "staging keeps working when Docker Hub is down".
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trustme
from _clients import CLIENTS, DEAD, Clients, Sandbox, etc_tree, prepare, pull, push_image, sandboxed, start_registry
from _integration import need_program
from _oci import TAG, write_layout
from _registry import _self_signed, write_leaf

from registry_config import RegistrySpec, StaticBackend, build_plan
from registry_config.render import render_tree

pytestmark = [pytest.mark.clients, pytest.mark.integration, pytest.mark.timeout(600)]

HUB = "10.254.0.4"
IMAGE = f"docker.io/library/tiny:{TAG}"


@attrs.frozen
class Mirror:
    """A mirror in one of the seed's flavours: its plan's URL, its instance, and how it serves."""

    flavour: str
    url: str
    address: str
    skip_ssl_validation: bool = False
    ca: bool = False

    @property
    def name(self) -> str:
        return self.url.split("://")[1].split(":")[0]


MIRRORS = (
    Mirror("http", "http://mirror.test:5000", "10.254.0.5"),
    Mirror("self-signed", "https://mirror-ss.test:5000", "10.254.0.6", skip_ssl_validation=True),
    Mirror("ca", "https://mirror-ca.test:5000", "10.254.0.7", ca=True),
)


@attrs.define
class Outage:
    """The sandbox, the stand-in for Docker Hub (to stop), the mirrors, and their trees."""

    directory: Path
    sandbox: Sandbox
    clients: Clients
    processes: list[subprocess.Popen[bytes]]
    hub: subprocess.Popen[bytes]
    rendered: dict[str, Path]
    control: Path


def _tree(directory: Path, mirror: Mirror, ca_pem: Path) -> Path:
    """The mirror's tree through the API and the CLI (the same bytes); the installed /etc from the CLI's."""
    spec = RegistrySpec.from_url(mirror.url, skip_ssl_validation=mirror.skip_ssl_validation)
    plan = build_plan(spec, StaticBackend([mirror.address]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = render_tree(plan, mirror_of=("docker.io",), ca_pem=ca_pem.read_bytes() if mirror.ca else None)
    api = {f.path: f.content for f in tree}
    out = directory / "cli"
    argv = [sys.executable, "-m", "registry_config", "render", mirror.url, "--instance", mirror.address]
    argv += ["--skip-ssl-validation"] if mirror.skip_ssl_validation else []
    argv += ["--ca", str(ca_pem)] if mirror.ca else []
    done = subprocess.run(
        [*argv, "--mirror-of", "docker.io", "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == api
    return etc_tree(directory / "installed", out)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    need_program("skopeo", package="skopeo")  # pushes the image
    directory = tmp_path_factory.mktemp("mirror")
    layout = directory / "layout"
    write_layout(layout)
    ca = trustme.CA()
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    trusted = write_leaf(ca.issue_cert("mirror-ca.test"), directory, "trusted")
    tls = {"http": None, "self-signed": _self_signed(directory, ("mirror-ss.test",), ()), "ca": trusted}
    hosts = {mirror.name: mirror.address for mirror in MIRRORS}
    with sandboxed(directory, hosts, (HUB, *hosts.values())) as (sandbox, clients, processes):
        hub = start_registry(sandbox, directory / "hub", processes, storage=directory / "hub-data", addr=HUB, port=5000)
        push_image(sandbox, layout, f"{HUB}:5000/library/tiny:{TAG}")
        for mirror in MIRRORS:
            start_registry(
                sandbox,
                directory / f"mirror-{mirror.flavour}",
                processes,
                storage=directory / f"mirror-{mirror.flavour}-data",
                addr=mirror.address,
                port=5000,
                tls=tls[mirror.flavour],
                proxy=f"http://{HUB}:5000",
            )
        rendered = {m.flavour: _tree(directory / f"rendered-{m.flavour}", m, ca_pem) for m in MIRRORS}
        control = etc_tree(directory / "control")
        yield Outage(directory, sandbox, clients, processes, hub, rendered, control)


def _forget(outage: Outage, client: str, etc: Path) -> None:
    """Drop what a daemon-backed client already holds, so the next pull fetches everything again."""
    if client == "ctr":
        assert outage.clients.containerd_socket is not None
        socket = str(outage.clients.containerd_socket)
        outage.sandbox.run(["ctr", "-a", socket, "images", "rm", "--sync", IMAGE])
    if client == "docker":
        socket = outage.clients.docker_sockets[etc]
        outage.sandbox.run(["/usr/bin/docker", "-H", f"unix://{socket}", "rmi", "--force", IMAGE])


def _pull(outage: Outage, client: str, etc: Path) -> tuple[bool, str]:
    prepare(outage.clients, client, etc, outage.processes)
    _forget(outage, client, etc)
    result = pull(outage.clients, client, IMAGE, etc)
    return result.ok, str(result)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("flavour", [m.flavour for m in MIRRORS])
def test_docker_hub_images_are_pulled_through_the_mirror(outage: Outage, flavour: str, client: str) -> None:
    ok, said = _pull(outage, client, outage.rendered[flavour])
    assert ok, said


@pytest.mark.parametrize("client", CLIENTS)
def test_without_the_mirror_files_the_client_goes_to_docker_hub(outage: Outage, client: str) -> None:
    ok, said = _pull(outage, client, outage.control)
    assert not ok, f"the control pulled: the test proves nothing\n{said}"
    # Docker Hub's names lead to the dead loopback address inside the sandbox: refused, never off the machine.
    assert f"{DEAD}:443: connect: connection refused" in said, said


def test_after_docker_hub_goes_down_every_client_still_pulls_from_the_mirror(outage: Outage) -> None:
    for etc in outage.rendered.values():
        ok, said = _pull(outage, "skopeo", etc)  # each mirror has it cached (whatever ran before)
        assert ok, said
    outage.hub.terminate()
    outage.hub.wait(timeout=15)
    direct = outage.sandbox.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{HUB}:5000/library/tiny:{TAG}"])
    assert direct.returncode != 0, "the stand-in for Docker Hub is down"
    for flavour, etc in outage.rendered.items():
        for client in CLIENTS:
            ok, said = _pull(outage, client, etc)
            assert ok, f"after the outage, {flavour} mirror: {said}"
