"""Real registries for the probe tests: Debian's docker-registry in the seed's three flavours, and impostors.

Each flavour starts once per test module (the fixtures are module-scoped:
import them into the module that needs them), on a free loopback port, with
a minimal configuration written here (filesystem storage in a temporary
directory). A fixture waits until the registry answers, always stops it, and
puts the end of its log into the failure message when it does not start.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trustme
from _integration import free_port, need_program

__all__ = [
    "RunningRegistry",
    "auth_registry",
    "ca_registry",
    "expired_registry",
    "http_registry",
    "not_a_registry",
    "redirect_to_https",
    "registry_ca",
    "self_signed_registry",
    "silent_port",
]

REGISTRY_NAME = "registry.test"
"""The name the test CA's certificate is issued for (with ``localhost``, but not ``127.0.0.1``)."""

_START_TIMEOUT = 15.0


@attrs.frozen
class RunningRegistry:
    """A registry process on loopback: where it listens, how it is secured, and its log."""

    flavour: str
    port: int
    log_path: Path
    ca_pem: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, scheme: str, host: str = "localhost") -> str:
        return f"{scheme}://{host}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _config(
    root: Path,
    port: int,
    *,
    tls: tuple[Path, Path] | None = None,
    token_ca: Path | None = None,
    addr: str = "127.0.0.1",
    proxy: str | None = None,
) -> str:
    """The registry's YAML configuration (written by hand: it is small, and PyYAML is not a dependency).

    ``addr`` is the address to listen on (``[v6]`` bracketed), loopback by default; ``proxy`` the upstream
    URL of a pull-through cache (the registry's ``proxy.remoteurl`` mode).
    """
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "http:",
        f'  addr: "{addr}:{port}"',
        "  secret: registry-config-tests-only",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if proxy is not None:
        lines += ["proxy:", f'  remoteurl: "{proxy}"']
    if token_ca is not None:
        lines += [
            "auth:",
            "  token:",
            f"    realm: https://auth.{REGISTRY_NAME}/token",
            f"    service: {REGISTRY_NAME}",
            "    issuer: registry-config-tests",
            f"    rootcertbundle: {token_ca}",
        ]
    return "\n".join(lines) + "\n"


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"
    state = f"exited with {process.returncode}" if process.poll() is not None else "did not listen in time"
    pytest.fail(f"docker-registry on port {port} {state}; its log ends with:\n{log}")


@contextlib.contextmanager
def _run_registry(
    tmp: Path, *, tls: tuple[Path, Path] | None = None, token_ca: Path | None = None
) -> Iterator[tuple[int, Path]]:
    """Start docker-registry with a fresh config; yield (port, log path); always stop it."""
    program = need_program("docker-registry", package="docker-registry")
    port = free_port()
    config = tmp / "config.yml"
    config.write_text(_config(tmp, port, tls=tls, token_ca=token_ca))
    log_path = tmp / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([program, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, port, log_path)
        yield port, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _self_signed(
    directory: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)
) -> tuple[Path, Path]:
    """A self-signed certificate for ``names`` and ``ips`` (cryptography), as an operator makes one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def registry_ca() -> trustme.CA:
    """The test CA: trusted only where a test passes its PEM as ca_bundle."""
    return trustme.CA()


@pytest.fixture(scope="module")
def http_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The seed's first flavour: plain HTTP."""
    tmp = tmp_path_factory.mktemp("registry-http")
    with _run_registry(tmp) as (port, log):
        yield RunningRegistry("http", port, log)


@pytest.fixture(scope="module")
def self_signed_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The second flavour: HTTPS with a self-signed certificate (for localhost and 127.0.0.1)."""
    tmp = tmp_path_factory.mktemp("registry-self-signed")
    with _run_registry(tmp, tls=_self_signed(tmp)) as (port, log):
        yield RunningRegistry("self-signed", port, log)


@pytest.fixture(scope="module")
def ca_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """The third flavour: HTTPS with a certificate from the test CA, for localhost and registry.test (not the IP)."""
    tmp = tmp_path_factory.mktemp("registry-ca")
    leaf = registry_ca.issue_cert("localhost", REGISTRY_NAME)
    cert, key, ca_pem = tmp / "leaf.pem", tmp / "leaf.key", tmp / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    with _run_registry(tmp, tls=(cert, key)) as (port, log):
        yield RunningRegistry("ca", port, log, ca_pem=ca_pem)


@pytest.fixture(scope="module")
def expired_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """HTTPS with a certificate from the test CA that expired yesterday."""
    tmp = tmp_path_factory.mktemp("registry-expired")
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = registry_ca.issue_cert(
        "localhost", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    cert, key, ca_pem = tmp / "leaf.pem", tmp / "leaf.key", tmp / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    with _run_registry(tmp, tls=(cert, key)) as (port, log):
        yield RunningRegistry("expired", port, log, ca_pem=ca_pem)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """Plain HTTP with token authentication configured: ``GET /v2/`` answers 401 and a Bearer challenge."""
    tmp = tmp_path_factory.mktemp("registry-auth")
    token_ca = tmp / "token-ca.pem"
    registry_ca.cert_pem.write_to_path(str(token_ca))
    with _run_registry(tmp, token_ca=token_ca) as (port, log):
        yield RunningRegistry("auth", port, log)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _NotFoundHandler(_QuietHandler):
    def do_GET(self) -> None:
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _RedirectHandler(_QuietHandler):
    def do_GET(self) -> None:
        self.send_response(301)
        self.send_header("Location", f"https://localhost{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def not_a_registry() -> Iterator[int]:
    """A web server that answers 404 to everything, with no registry header: the port of a wrong service."""
    with _serve(_NotFoundHandler) as port:
        yield port


@pytest.fixture(scope="module")
def redirect_to_https() -> Iterator[int]:
    """A plain-HTTP front that redirects everything to https://localhost/ (a TLS-only site's usual answer)."""
    with _serve(_RedirectHandler) as port:
        yield port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel accepts connections that nobody ever answers: a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]
