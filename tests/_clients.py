"""Real container clients pulling from real registries, in a network and mount namespace of the test's own.

Why a namespace: dockerd treats every loopback registry as insecure and
containerd reaches loopback over plain HTTP, so a control on ``127.0.0.1``
proves nothing (``RUNTIMES.md``). :class:`Sandbox` holds a private network
namespace (only ``lo``, with the second addresses ``10.254.0.1-3`` and
``fd00:254::1``) and a private mount namespace (a private ``/etc/hosts`` that
names the registries and maps Docker Hub to a dead loopback address; tmpfs
over ``/run``, ``/var/lib``, ``/var/tmp``, ``/dev/shm``, ``/opt`` and ``/etc/cni``,
where clients write). Nothing inside can reach anything outside, and nothing
written inside outlives it except under the test's directory.

Each client runs in a further private mount namespace with an ``/etc`` tree
bound over ``/etc/docker``, ``/etc/containerd`` and ``/etc/containers``: the
rendered tree installed at ``--root /``, exactly as an operator would copy
it, or the machine's own files for a control.

Every process is started with :mod:`subprocess` (``nsenter`` and ``unshare``
exec the program, so the PID is the program's) and stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs
import pytest
from _integration import need_program, stop_process, unavailable
from _oci import TAG
from _registry import config_text

__all__ = [
    "CLIENTS",
    "DOCKER_HUB_NAMES",
    "Clients",
    "Pull",
    "Sandbox",
    "client_argv",
    "etc_tree",
    "footprint",
    "prepare",
    "pull",
    "push_image",
    "running",
    "sandboxed",
    "start_containerd",
    "start_dockerd",
    "start_registry",
]

DOCKER_HUB_NAMES = (
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "auth.docker.io",
    "registry.docker.io",
    "production.cloudflare.docker.com",
)
DEAD = "127.0.0.9"
"""Where Docker Hub's names point inside the sandbox: a loopback address nothing listens on."""

CLIENTS = ("skopeo", "podman", "buildah", "ctr", "docker")
# Where the clients write outside the directories they are given: dockerd's containerd creates
# /opt/containerd, podman takes /etc/cni/net.d/cni.lock, the containers library caches in /var/lib/containers.
_WRITTEN = ("/run", "/var/lib", "/var/tmp", "/dev/shm", "/opt", "/etc/cni")
_ETC = ("docker", "containerd", "containers")
_START_TIMEOUT = 30.0
_PULL_TIMEOUT = 120


# Where these clients write on a machine by default: none of it may appear, or change, because of a test.
_FOOTPRINT = (
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/buildah",
    "/run/containers",
    "/run/libpod",
    "/run/docker",
    "/run/containerd",
    "/opt/containerd",
    "/etc/cni/net.d",
    "/etc/docker",
    "/etc/containers",
    "/etc/containerd",
    "/root/.config/containers",
    "/root/.local/share/containers",
    "/root/.docker",
)


def footprint() -> dict[str, tuple[str, ...] | None]:
    """What exists in the places clients write by default: each directory's entries, ``None`` when absent."""
    found: dict[str, tuple[str, ...] | None] = {}
    for path in _FOOTPRINT:
        try:
            found[path] = tuple(sorted(os.listdir(path)))
        except FileNotFoundError:
            found[path] = None
        except NotADirectoryError:
            found[path] = ()
    return found


class Sandbox:
    """A private network and mount namespace held open by one ``sleep``; see the module docstring."""

    def __init__(self, directory: Path, hosts: Mapping[str, str], addresses: Sequence[str]) -> None:
        for program in ("unshare", "nsenter", "ip", "mount"):
            need_program(program, package="util-linux iproute2")
        if os.geteuid() != 0:
            unavailable("the container-client tests need root (network and mount namespaces, dockerd)")
        self.directory = directory
        self.tmp = directory / "tmp"
        self.home = directory / "home"
        for path in (self.tmp, self.home):
            path.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{address} {name}" for name, address in hosts.items()]
        lines += [f"{DEAD} {name}" for name in DOCKER_HUB_NAMES]
        self.hosts_file = directory / "hosts"
        self.hosts_file.write_text("\n".join(lines) + "\n")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_for_namespaces()
            setup = ["ip link set lo up", f"mount -n --bind {self.hosts_file} /etc/hosts"]
            for address in addresses:
                family = "-6" if ":" in address else "-4"
                prefix = 128 if ":" in address else 32
                setup.append(f"ip {family} addr add {address}/{prefix} dev lo nodad")
            setup += [f"mount -n -t tmpfs tmpfs {path}" for path in _WRITTEN if os.path.isdir(path)]
            self.run(["sh", "-ec", "; ".join(setup)], check=True)
        except BaseException:
            self.close()
            raise

    def _wait_for_namespaces(self) -> None:
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and self.holder.poll() is None:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self.holder.pid}/ns/net") != mine:
                    return
            time.sleep(0.01)
        unavailable(f"unshare --net --mount did not give a namespace (exit {self.holder.poll()})")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: TMPDIR and HOME in the test's directory, no proxy, no registry settings."""
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
        }
        env.update(extra or {})
        return env

    def command(self, argv: Sequence[str], *, etc: Path | None = None) -> list[str]:
        """``argv`` inside the sandbox; with ``etc``, in a mount namespace of its own with ``etc/*`` bound."""
        inside = ["nsenter", "-t", str(self.holder.pid), "-n", "-m", "--"]
        if etc is None:
            return [*inside, *argv]
        binds = " && ".join(f'mount -n --bind "$1/{name}" /etc/{name}' for name in _ETC)
        script = f'{binds} && shift && exec "$@"'
        return [
            *inside,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            str(etc),
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        etc: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        timeout: float = _PULL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(argv, etc=etc),
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed in the sandbox ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def popen(self, argv: Sequence[str], *, log: Path, etc: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as stream:
            return subprocess.Popen(
                self.command(argv, etc=etc),
                env=self.env(),
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_until(self, probe: Sequence[str], process: subprocess.Popen[bytes], log: Path, what: str) -> None:
        """Poll ``probe`` (run in the sandbox) until it succeeds; fail with ``log``'s end if ``process`` dies."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if self.run(probe, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        state = f"exited with {process.returncode}" if process.poll() is not None else "did not answer in time"
        pytest.fail(f"{what} {state}; its log ends with:\n{text}")

    def wait_for_port(self, host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        where = f"[{host}]" if ":" in host else host
        probe = ["bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"]
        self.wait_until(probe, process, log, f"the server on {where}:{port}")

    def close(self) -> None:
        stop_process(self.holder)


@contextlib.contextmanager
def running(processes: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stop every process of ``processes`` (appended to while inside) by its PID, last started first."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            stop_process(process)


def etc_tree(directory: Path, rendered: Path | None = None) -> Path:
    """``directory/etc``: this machine's docker, containerd and containers files, with ``rendered/etc`` on top.

    Without ``rendered`` it is the control: the machine as installed (an empty
    ``daemon.json``), where a client must refuse the insecure registries.
    """
    etc = directory / "etc"
    for name in _ETC:
        source = Path("/etc") / name
        target = etc / name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        target.mkdir(parents=True, exist_ok=True)
    daemon = etc / "docker" / "daemon.json"
    if not daemon.exists():
        daemon.write_text("{}\n")
    if rendered is not None and (rendered / "etc").is_dir():
        shutil.copytree(rendered / "etc", etc, dirs_exist_ok=True)
    return etc


@attrs.frozen
class Pull:
    """What a client said when asked to pull ``reference``."""

    client: str
    reference: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:
        return f"{self.client} pull {self.reference}: exit {self.returncode}\n{self.output[-2500:]}"


@attrs.define
class Clients:
    """Where each client keeps its state in the test's directory; daemons it started."""

    sandbox: Sandbox
    directory: Path
    containerd_socket: Path | None = None
    docker_sockets: dict[Path, Path] = attrs.field(factory=dict)
    dockerd: subprocess.Popen[bytes] | None = None
    counter: int = 0

    def scratch(self, name: str) -> Path:
        self.counter += 1
        path = self.directory / f"{name}-{self.counter}"
        path.mkdir(parents=True)
        return path


@contextlib.contextmanager
def sandboxed(
    directory: Path, hosts: Mapping[str, str], addresses: Sequence[str]
) -> Iterator[tuple[Sandbox, Clients, list[subprocess.Popen[bytes]]]]:
    """A module's world: a :class:`Sandbox`, its :class:`Clients` (in ``directory/clients``), the processes list.

    On exit every process appended to the list is stopped by its PID (last
    started first) and the sandbox closed; then nothing may have appeared or
    changed where the clients write by default (:func:`footprint`).
    """
    before = footprint()
    sandbox = Sandbox(directory, hosts, addresses)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with running(processes):
            clients = Clients(sandbox, directory / "clients")
            clients.directory.mkdir()
            yield sandbox, clients, processes
    finally:
        sandbox.close()
    assert footprint() == before, "a client wrote outside the test's directory"


def client_argv(clients: Clients, client: str, reference: str, etc: Path) -> list[str]:
    """The command the tests (and docs/howto/render.md) run for ``client`` to pull ``reference``."""
    if client == "skopeo":
        return ["skopeo", "copy", "--quiet", f"docker://{reference}", f"dir:{clients.scratch('skopeo')}"]
    if client in ("podman", "buildah"):
        state = clients.scratch(client)
        # podman refuses a runroot longer than 50 characters: /run is the sandbox's own tmpfs.
        storage = ["--root", str(state / "root"), "--runroot", f"/run/{state.name}", "--storage-driver", "vfs"]
        extra = ["--events-backend", "file", "--cgroup-manager", "cgroupfs"] if client == "podman" else []
        return [client, *storage, *extra, "pull", "--quiet", reference]
    if client == "ctr":
        assert clients.containerd_socket is not None
        return [
            "ctr",
            "-a",
            str(clients.containerd_socket),
            "images",
            "pull",
            "--snapshotter",
            "native",
            "--hosts-dir",
            "/etc/containerd/certs.d",
            reference,
        ]
    if client == "docker":
        socket = clients.docker_sockets[etc]
        return ["/usr/bin/docker", "-H", f"unix://{socket}", "pull", "--quiet", reference]
    raise AssertionError(client)


_PACKAGES = {"skopeo": "skopeo", "podman": "podman", "buildah": "buildah"}


def prepare(clients: Clients, client: str, etc: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """Make ``client`` ready to pull with ``etc``: the program present (or skip), its daemon started."""
    if client in _PACKAGES:
        need_program(client, package=_PACKAGES[client])
    elif client == "ctr":
        if clients.containerd_socket is None:
            start_containerd(clients, processes)
    elif client == "docker":
        start_dockerd(clients, etc, processes)
    else:
        raise AssertionError(client)


def pull(clients: Clients, client: str, reference: str, etc: Path) -> Pull:
    """``client`` pulls ``reference`` with the ``/etc`` tree ``etc`` installed."""
    argv = client_argv(clients, client, reference, etc)
    result = clients.sandbox.run(argv, etc=etc)
    return Pull(client, reference, result.returncode, result.stdout + result.stderr)


def start_containerd(clients: Clients, processes: list[subprocess.Popen[bytes]]) -> None:
    """containerd with a configuration of its own (state under the test's directory, no CRI)."""
    program = need_program("containerd", package="containerd")
    need_program("ctr", package="containerd")
    state = clients.scratch("containerd")
    socket = state / "containerd.sock"
    config = state / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{state / "root"}"\n'
        f'state = "{state / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{state / "opt"}"\n'
    )
    log = state / "containerd.log"
    process = clients.sandbox.popen([program, "--config", str(config)], log=log)
    processes.append(process)
    clients.sandbox.wait_until(["ctr", "-a", str(socket), "version"], process, log, "containerd")
    clients.containerd_socket = socket


def start_dockerd(clients: Clients, etc: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """dockerd reading ``etc/docker`` (daemon.json and certs.d) as ``/etc/docker``; no networking of its own.

    One at a time: the one started for another tree is stopped first (daemon.json is read at start).
    """
    if etc in clients.docker_sockets and clients.dockerd is not None and clients.dockerd.poll() is None:
        return
    if clients.dockerd is not None:
        stop_process(clients.dockerd)
        clients.docker_sockets.clear()
    program = need_program("dockerd", package="docker.io")
    need_program("docker", package="docker.io", candidates=("/usr/bin/docker",))
    state = clients.scratch("dockerd")
    socket = state / "docker.sock"
    argv = [
        program,
        "--config-file",
        "/etc/docker/daemon.json",
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
        "--storage-driver=vfs",
        "--data-root",
        str(state / "data"),
        # On the sandbox's own /run tmpfs: the containerd dockerd starts puts its sockets (containerd.sock.ttrpc,
        # containerd-debug.sock) in the exec root, and under pytest-xdist's longer temporary paths
        # (.../popen-gw3/...) they came to 107 characters, past what a Unix socket address holds with its NUL:
        # containerd never came up and every dockerd test failed.
        "--exec-root",
        f"/run/{state.name}-exec",
        "--pidfile",
        str(state / "docker.pid"),
        "-H",
        f"unix://{socket}",
    ]
    log = state / "dockerd.log"
    process = clients.sandbox.popen(argv, log=log, etc=etc)
    processes.append(process)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if (
            socket.exists()
            and clients.sandbox.run(["/usr/bin/docker", "-H", f"unix://{socket}", "version"]).returncode == 0
        ):
            clients.docker_sockets[etc] = socket
            clients.dockerd = process
            return
        time.sleep(0.1)
    text = log.read_text(errors="replace")[-3000:]
    if process.poll() is not None and "cgroup" in text.lower():
        unavailable(f"dockerd cannot start on this machine (cgroups):\n{text}")
    pytest.fail(f"dockerd {'exited' if process.poll() is not None else 'did not answer'}; its log ends with:\n{text}")


def start_registry(
    sandbox: Sandbox,
    directory: Path,
    processes: list[subprocess.Popen[bytes]],
    *,
    storage: Path,
    addr: str,
    port: int,
    tls: tuple[Path, Path] | None = None,
    htpasswd: Path | None = None,
    token: tuple[str, Path] | None = None,
    proxy: str | None = None,
) -> subprocess.Popen[bytes]:
    """docker-registry in the sandbox on ``addr:port`` (several may share ``storage``); waits until it listens.

    Its configuration is :func:`_registry.config_text`'s (``tls``, ``htpasswd`` or ``token`` auth, ``proxy``).
    """
    program = need_program("docker-registry", package="docker-registry")
    directory.mkdir(parents=True)
    config = directory / "config.yml"
    config.write_text(config_text(storage, port, host=addr, tls=tls, htpasswd=htpasswd, token=token, proxy=proxy))
    log = directory / "registry.log"
    process = sandbox.popen([program, "serve", str(config)], log=log)
    processes.append(process)
    sandbox.wait_for_port(addr, port, process, log)
    return process


def push_image(sandbox: Sandbox, layout: Path, reference: str) -> None:
    """Push the hand-made OCI layout (``_oci.write_layout``) to ``reference`` (verification off: the push only)."""
    sandbox.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{TAG}", f"docker://{reference}"],
        check=True,
    )
