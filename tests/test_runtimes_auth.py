"""Private images pulled by the real clients with the rendered login, and refused (``unauthorized``) without it.

The operator's flow, end to end: ``registry-config render URL --output-dir
DIR --auth-json FILE --credentials-file F`` (or the Python API,
:func:`~registry_config.render.render_tree` and
:func:`~registry_config.auth.write_auth_json`) writes the runtimes' files and
the login; the clients pull with exactly those files and nothing else.

- skopeo (``copy --authfile``), podman and buildah (``pull --authfile``, and
  through ``REGISTRY_AUTH_FILE``) pull from Debian's docker-registry with ``htpasswd``
  (Basic) auth and with ``auth: token`` (the tests' own token issuer), the
  registry reached through the rendered ``registries.conf``
  (``--registries-conf``, ``CONTAINERS_REGISTRIES_CONF``), never through
  ``--tls-verify=false``. Each runs in a private mount namespace with tmpfs
  over the places the containers library writes (``/run``, ``/var/lib``,
  ``/var/tmp``, ``/dev/shm``, ``/etc/cni``) and ``HOME`` in the test's
  directory, so the control run without the file has no login to fall back
  on and nothing is left on the machine.
- dockerd (``docker --config DIR pull``) with the rendered Docker
  ``config.json`` and ``daemon.json``, in the network namespace of
  :class:`~_clients.Sandbox`: dockerd treats loopback as insecure, so the
  plain-HTTP registries (htpasswd as ``private.test``; token auth as
  ``token.test``, its issuer beside it, started in the namespace by
  :func:`_registry_auth.serve_token_issuer`) run inside the sandbox, which
  only the rendered ``daemon.json`` makes dockerd reach over HTTP.

Every process is stopped by its PID; these tests run on CI's default Python
only (marker ``clients``).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs
import pytest
from _clients import Clients, Sandbox, etc_tree, footprint, sandboxed, start_dockerd, start_registry
from _integration import need_program, unavailable
from _oci import TAG, write_layout
from _registry_auth import (
    PASSWORD,
    USER,
    Deployed,
    htpasswd_registry,
    token_registry,
    write_htpasswd,
)

from registry_config import Credentials, RegistrySpec, StaticBackend, build_plan, render_auth_json, resolve_image
from registry_config.auth import write_auth_json
from registry_config.egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard
from registry_config.render import render_tree

__all__ = ["htpasswd_registry", "token_registry"]  # fixtures imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.clients, pytest.mark.timeout(600)]

LOGIN = Credentials(USER, PASSWORD)
IMAGE = "team/app:1.0"
LOOPBACK = EgressGuard((*DEFAULT_ALLOWED_NETWORKS, "127.0.0.0/8"))
"""The registries of this module are on loopback, which the default guard refuses."""
OTHER_LOGIN = '{"auths": {"other.example": {"auth": "b3RoZXI6cHc="}}}'
"""An entry the operator's file already held: rendering must keep it."""

# Where skopeo and podman write outside the directories they are given (../shared/RUNTIMES.md).
_WRITTEN = ("/run", "/var/lib", "/var/tmp", "/dev/shm", "/etc/cni")
_PULL_TIMEOUT = 180


def _isolated(argv: Sequence[str], tmp: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` in a private mount namespace (tmpfs over ``_WRITTEN``), on this machine's loopback network.

    ``HOME``, ``TMPDIR`` and ``XDG_RUNTIME_DIR`` point into ``tmp``: no login
    of the machine's (``~/.docker/config.json``, ``/run/containers/0/auth.json``)
    can be found, and none is written.
    """
    need_program("unshare", package="util-linux")
    if os.geteuid() != 0:
        unavailable("the container-client tests need root (a private mount namespace for each client)")
    home, run = tmp / "home", tmp / "xdg"
    home.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    mounts = [f"mount -n -t tmpfs tmpfs {path}" for path in _WRITTEN if os.path.isdir(path)]
    # podman creates /etc/containers/networks: it writes into a private copy of /etc/containers.
    etc = tmp / "etc-containers"
    if not etc.exists() and os.path.isdir("/etc/containers"):
        shutil.copytree("/etc/containers", etc, symlinks=True)
    etc.mkdir(exist_ok=True)
    mounts.append(f"mount -n --bind {shlex.quote(str(etc))} /etc/containers")
    environment = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "XDG_RUNTIME_DIR": str(run),
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    script = "; ".join([*mounts, 'exec "$@"'])
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", script, "sh", *argv],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=_PULL_TIMEOUT,
        check=False,
    )


@attrs.frozen
class Rendered:
    """What the operator installed for one registry: the registries.conf drop-in and the auth file (or none)."""

    registries_conf: Path
    authfile: Path | None


def _render_cli(deployed: Deployed, directory: Path) -> Rendered:
    """``registry-config render --output-dir DIR --auth-json FILE --credentials-file F``, as an operator runs it."""
    directory.mkdir(parents=True)
    credentials = directory / "registry-login"
    credentials.write_text(f"{USER}:{PASSWORD}\n")
    credentials.chmod(0o600)
    authfile = directory / "auth.json"
    authfile.write_text(OTHER_LOGIN)
    out = directory / "tree"
    argv = [sys.executable, "-m", "registry_config", "render", deployed.url, "--instance", "127.0.0.1"]
    argv += ["--allow-network", "127.0.0.0/8"]
    argv += ["--output-dir", str(out), "--auth-json", str(authfile), "--credentials-file", str(credentials)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=_cli_env())
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert f"wrote {authfile} (the login of {USER!r})" in done.stderr
    assert authfile.stat().st_mode & 0o777 == 0o600
    return Rendered(out / "etc" / "containers" / "registries.conf.d" / "registry-config.conf", authfile)


def _render_api(deployed: Deployed, directory: Path) -> Rendered:
    """The same through the Python API: :func:`render_tree` and :func:`write_auth_json` on one plan."""
    plan = build_plan(RegistrySpec.from_url(deployed.url), StaticBackend(["127.0.0.1"]), guard=LOOPBACK)
    directory.mkdir(parents=True)
    for file in render_tree(plan, runtimes=("podman",)):
        (directory / file.path).parent.mkdir(parents=True, exist_ok=True)
        (directory / file.path).write_bytes(file.content)
    authfile = directory / "auth.json"
    authfile.write_text(OTHER_LOGIN)
    assert write_auth_json(authfile, plan, LOGIN) == authfile
    assert authfile.read_text() == render_auth_json(plan, LOGIN, existing=OTHER_LOGIN)
    return Rendered(directory / "etc" / "containers" / "registries.conf.d" / "registry-config.conf", authfile)


def _cli_env() -> dict[str, str]:
    """The CLI's environment without a credentials file the machine may name."""
    return {k: v for k, v in os.environ.items() if k != "REGISTRY_CONFIG_CREDENTIALS_FILE"}


def _skopeo_copy(tmp: Path, reference: str, rendered: Rendered) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``skopeo --registries-conf CONF copy --all [--authfile FILE] docker://REF oci:DIR:TAG``."""
    skopeo = need_program("skopeo", package="skopeo")
    layout = tmp / "pulled"
    authfile = ["--authfile", str(rendered.authfile)] if rendered.authfile else []
    argv = [skopeo, "--registries-conf", str(rendered.registries_conf), "copy", "--quiet", "--all", *authfile]
    return _isolated([*argv, f"docker://{reference}", f"oci:{layout}:pulled"], tmp), layout


def _storage_pull(
    client: str, tmp: Path, reference: str, rendered: Rendered, *, via_environment: bool = False
) -> subprocess.CompletedProcess[str]:
    """``podman|buildah --root DIR --runroot DIR --storage-driver vfs pull [--authfile FILE] REF``, then its digest."""
    program = need_program(client, package=client)
    # podman refuses a runroot longer than 50 characters: /run is this namespace's own tmpfs.
    storage = ["--root", str(tmp / "storage"), "--runroot", f"/run/{client}-test", "--storage-driver", "vfs"]
    if client == "podman":
        storage += ["--events-backend", "file", "--cgroup-manager", "cgroupfs"]
        inspect = ["image", "inspect", "--format", "{{.Digest}}"]
    else:
        inspect = ["inspect", "--type", "image", "--format", "{{.FromImageDigest}}"]
    env = {"CONTAINERS_REGISTRIES_CONF": str(rendered.registries_conf)}
    authfile: list[str] = []
    if rendered.authfile is not None and via_environment:
        env["REGISTRY_AUTH_FILE"] = str(rendered.authfile)
    elif rendered.authfile is not None:
        authfile = ["--authfile", str(rendered.authfile)]
    # One namespace for both: the pull, then the digest recorded (the runroot lives only as long as the namespace).
    pull = shlex.join([program, *storage, "pull", "--quiet", *authfile, reference])
    digest = shlex.join([program, *storage, *inspect, reference])
    return _isolated(["sh", "-ec", f"{pull} >/dev/null && {digest}"], tmp, env)


def _layout_digest(layout: Path) -> str:
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    assert len(manifests) == 1, manifests
    return str(manifests[0]["digest"])


WRITERS = {"cli": _render_cli, "api": _render_api}
REGISTRIES = ("htpasswd_registry", "token_registry")


@pytest.fixture(scope="module")
def clean_machine() -> Iterator[None]:
    """Nothing the clients write by default appears on the machine because of these tests."""
    before = footprint()
    yield
    assert footprint() == before, "a client wrote outside the test's directory"


def _no_login(deployed: Deployed, directory: Path) -> Rendered:
    """The control: the same rendered registries.conf, and no auth file at all."""
    return attrs.evolve(_render_api(deployed, directory), authfile=None)


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("fixture", REGISTRIES)
def test_skopeo_copies_a_private_image_with_the_rendered_auth_json(
    request: pytest.FixtureRequest, tmp_path: Path, clean_machine: None, fixture: str, writer: str
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    reference = f"{deployed.url.removeprefix('http://')}/{IMAGE}"
    rendered = WRITERS[writer](deployed, tmp_path / "rendered")
    done, layout = _skopeo_copy(tmp_path, reference, rendered)
    assert done.returncode == 0, done.stderr
    # --all copies the image as the registry holds it: an index stays the index, byte for byte.
    assert _layout_digest(layout) == deployed.images[IMAGE].digest
    assert _layout_digest(layout) == resolve_image(deployed.url, IMAGE, credentials=LOGIN).digest


@pytest.mark.parametrize("fixture", REGISTRIES)
def test_skopeo_is_refused_without_the_auth_json(
    request: pytest.FixtureRequest, tmp_path: Path, clean_machine: None, fixture: str
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    reference = f"{deployed.url.removeprefix('http://')}/{IMAGE}"
    done, layout = _skopeo_copy(tmp_path, reference, _no_login(deployed, tmp_path / "rendered"))
    assert done.returncode != 0, "the control pulled: the test proves nothing"
    assert "unauthorized" in done.stderr.lower(), done.stderr
    assert not (layout / "index.json").exists()


def _recorded_digest(client: str, deployed: Deployed) -> str:
    """The digest each records: podman the tag's (an index's, here), buildah the manifest of this machine's platform."""
    pushed = deployed.images[IMAGE]
    if client == "buildah" and pushed.children:
        architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        return dict(pushed.children)[f"linux/{architecture}"]
    return pushed.digest


@pytest.mark.parametrize("via", ["--authfile", "REGISTRY_AUTH_FILE"])
@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("fixture", REGISTRIES)
@pytest.mark.parametrize("client", ["podman", "buildah"])
def test_podman_and_buildah_pull_a_private_image_with_the_rendered_auth_json(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clean_machine: None,
    client: str,
    fixture: str,
    writer: str,
    via: str,
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    reference = f"{deployed.url.removeprefix('http://')}/{IMAGE}"
    rendered = WRITERS[writer](deployed, tmp_path / "rendered")
    done = _storage_pull(client, tmp_path, reference, rendered, via_environment=via == "REGISTRY_AUTH_FILE")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _recorded_digest(client, deployed), done.stdout


@pytest.mark.parametrize("fixture", REGISTRIES)
@pytest.mark.parametrize("client", ["podman", "buildah"])
def test_podman_and_buildah_are_refused_without_the_auth_json(
    request: pytest.FixtureRequest, tmp_path: Path, clean_machine: None, client: str, fixture: str
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    reference = f"{deployed.url.removeprefix('http://')}/{IMAGE}"
    done = _storage_pull(client, tmp_path, reference, _no_login(deployed, tmp_path / "rendered"))
    assert done.returncode != 0, "the control pulled: the test proves nothing"
    assert "unauthorized" in done.stderr.lower(), done.stderr


def test_a_wrong_password_in_the_rendered_file_is_refused(
    htpasswd_registry: Deployed, tmp_path: Path, clean_machine: None
) -> None:
    """The login is what lets the pull through: the same file with another password is refused."""
    rendered = _render_api(htpasswd_registry, tmp_path / "rendered")
    assert rendered.authfile is not None
    write_auth_json(rendered.authfile, htpasswd_registry.url, Credentials(USER, "not-the-password"))
    reference = f"{htpasswd_registry.url.removeprefix('http://')}/{IMAGE}"
    done, _ = _skopeo_copy(tmp_path, reference, rendered)
    assert done.returncode != 0
    assert "unauthorized" in done.stderr.lower(), done.stderr


# -- dockerd, in a network namespace of its own ---------------------------------------------------------------


@attrs.frozen
class Private:
    """A private registry in the sandbox: its kind of login, its name and address, the image pushed to it."""

    auth: str
    name: str
    address: str

    @property
    def image(self) -> str:
        return f"{self.name}:5000/team/app:{TAG}"


PRIVATES = (Private("htpasswd", "private.test", "10.254.0.8"), Private("token", "token.test", "10.254.0.9"))
ISSUER_PORT = 5001
"""The token issuer listens beside the token registry, on its address."""


@attrs.define
class DockerWorld:
    sandbox: Sandbox
    clients: Clients
    processes: list[subprocess.Popen[bytes]]
    directory: Path
    digest: str


def _start_token_issuer(sandbox: Sandbox, directory: Path, processes: list[subprocess.Popen[bytes]]) -> Path:
    """:func:`_registry_auth.serve_token_issuer` in the sandbox; its signing certificate (the rootcertbundle)."""
    directory.mkdir()
    tests = str(Path(__file__).resolve().parent)
    code = f"import sys; sys.path.insert(0, {tests!r}); from _registry_auth import serve_token_issuer as s; "
    code += f"s({str(directory)!r}, {PRIVATES[1].address!r}, {ISSUER_PORT})"
    log = directory / "issuer.log"
    processes.append(sandbox.popen([sys.executable, "-c", code], log=log))
    sandbox.wait_for_port(PRIVATES[1].address, ISSUER_PORT, processes[-1], log)
    return directory / "token-signer.pem"


@pytest.fixture(scope="module")
def docker_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerWorld]:
    """The plain-HTTP registries of ``PRIVATES`` in a sandbox (htpasswd; token auth), the test image pushed to each."""
    need_program("docker-registry", package="docker-registry")
    need_program("skopeo", package="skopeo")
    directory = tmp_path_factory.mktemp("docker-auth")
    htpasswd = write_htpasswd(directory / "htpasswd")
    layout = directory / "layout"
    digest = write_layout(layout)
    push_login = directory / "push-auth.json"
    for private in PRIVATES:
        write_auth_json(push_login, f"http://{private.name}:5000", LOGIN)
    hosts = {private.name: private.address for private in PRIVATES}
    with sandboxed(directory, hosts, tuple(hosts.values())) as (sandbox, clients, processes):
        for private in PRIVATES:
            root = directory / f"registry-{private.auth}"
            basic: Path | None = htpasswd
            token: tuple[str, Path] | None = None
            if private.auth == "token":
                bundle = _start_token_issuer(sandbox, directory / "issuer", processes)
                basic, token = None, (f"http://{private.address}:{ISSUER_PORT}/token", bundle)
            start_registry(
                sandbox, root, processes, storage=root, addr=private.address, port=5000, htpasswd=basic, token=token
            )
            push = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile", str(push_login)]
            sandbox.run([*push, f"oci:{layout}:{TAG}", f"docker://{private.image}"], check=True)
        yield DockerWorld(sandbox, clients, processes, directory, digest)


# What dockerd says when the registry wants a login the client has not got (it reached it: over HTTP).
NO_LOGIN = {
    "htpasswd": 'Head "http://{name}:5000/v2/team/app/manifests/1": no basic auth credentials',
    # The issuer gives an anonymous caller a token without access to team/app; the registry then denies it.
    "token": "pull access denied for {name}:5000/team/app, repository does not exist or may require 'docker login'",
}


@pytest.mark.parametrize("private", PRIVATES, ids=[private.auth for private in PRIVATES])
def test_docker_pulls_a_private_image_with_the_rendered_config_json(
    docker_world: DockerWorld, private: Private
) -> None:
    """``registry-config render`` writes daemon.json (the HTTP registry) and config.json (the login) for dockerd."""
    directory = docker_world.directory / f"rendered-{private.auth}"
    directory.mkdir()
    credentials = directory / "registry-login"
    credentials.write_text(f"{USER}:{PASSWORD}\n")
    docker_config = directory / "docker-config"
    docker_config.mkdir()
    url = f"http://{private.name}:5000"
    argv = [sys.executable, "-m", "registry_config", "render", url, "--instance", private.address]
    argv += ["--output-dir", str(directory / "tree"), "--for", "docker"]
    argv += ["--auth-json", str(docker_config / "config.json"), "--credentials-file", str(credentials)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=_cli_env())
    assert done.returncode == 0, done.stderr
    etc = etc_tree(directory / "installed", directory / "tree")
    start_dockerd(docker_world.clients, etc, docker_world.processes)
    socket = docker_world.clients.docker_sockets[etc]
    empty = directory / "no-login"
    empty.mkdir()

    def docker_pull(config: Path) -> subprocess.CompletedProcess[str]:
        docker = ["/usr/bin/docker", "-H", f"unix://{socket}", "--config", str(config)]
        docker_world.sandbox.run([*docker, "rmi", "--force", private.image])
        return docker_world.sandbox.run([*docker, "pull", "--quiet", private.image])

    refused = docker_pull(empty)
    assert refused.returncode != 0, "the control pulled: the test proves nothing"
    assert NO_LOGIN[private.auth].format(name=private.name) in refused.stderr, refused.stderr
    logins = json.loads((docker_config / "config.json").read_text())["auths"]
    assert sorted(logins) == sorted([f"{private.address}:5000", f"{private.name}:5000"])
    pulled = docker_pull(docker_config)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == private.image
    inspect = ["/usr/bin/docker", "-H", f"unix://{socket}", "image", "inspect", "--format", "{{json .RepoDigests}}"]
    digests = json.loads(docker_world.sandbox.run([*inspect, private.image], check=True).stdout)
    assert digests == [f"{private.name}:5000/team/app@{docker_world.digest}"]

    wrong = directory / "wrong-login"
    wrong.mkdir()
    write_auth_json(wrong / "config.json", url, Credentials(USER, "not-the-password"))
    refused = docker_pull(wrong)
    assert refused.returncode != 0, refused.stdout
    assert "unauthorized" in refused.stderr.lower(), refused.stderr
