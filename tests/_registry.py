"""Real registries for the probe tests: Debian's docker-registry in the seed's three flavours, and impostors.

Each flavour starts once per test module (the fixtures are module-scoped:
import them into the module that needs them), on a free loopback port, with
a minimal configuration written here (filesystem storage in a temporary
directory). A fixture waits until the registry answers, always stops it, and
puts the end of its log into the failure message when it does not start.

:func:`config_text` is the one writer of docker-registry's configuration
(TLS, htpasswd or token auth, a pull-through mirror, any address) and
:func:`run_registry` the one way to start, wait for and stop a registry on
this machine: ``_registry_auth`` and the sandboxed registries of ``_clients``
use them too.
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
from _integration import free_port, need_program, stop_process

__all__ = [
    "REGISTRY_NAME",
    "TOKEN_ISSUER",
    "RunningRegistry",
    "auth_registry",
    "ca_registry",
    "config_text",
    "expired_registry",
    "http_registry",
    "not_a_registry",
    "redirect_to_https",
    "registry_ca",
    "run_registry",
    "self_signed_registry",
    "silent_port",
    "write_leaf",
]

REGISTRY_NAME = "registry.test"
"""The name the test CA's certificate is issued for (with ``localhost``, but not ``127.0.0.1``); the token service."""
TOKEN_ISSUER = "registry-config-test-issuer"
"""The issuer a token-auth registry trusts (``_registry_auth.TokenIssuer`` signs as it)."""

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


def config_text(
    root: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    tls: tuple[Path, Path] | None = None,
    htpasswd: Path | None = None,
    token: tuple[str, Path] | None = None,
    proxy: str | None = None,
) -> str:
    """docker-registry's YAML configuration (written by hand: it is small, and PyYAML is not a dependency).

    Filesystem storage in ``root/data`` (deletes allowed), listening on
    ``host:port`` (an IPv6 address is bracketed here); ``tls`` a certificate
    and its key; ``htpasswd`` a bcrypt file (Basic auth) or ``token`` the
    (realm, ``rootcertbundle``) of a token issuer (tokens from
    :data:`TOKEN_ISSUER` for :data:`REGISTRY_NAME`); ``proxy`` the upstream URL
    of a pull-through cache (the registry's ``proxy.remoteurl`` mode).
    """
    if htpasswd is not None and token is not None:
        raise ValueError("a registry has one kind of auth: htpasswd or token, not both")
    address = f"[{host}]" if ":" in host else host
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f'  addr: "{address}:{port}"',
        "  secret: registry-config-tests-only",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if proxy is not None:
        lines += ["proxy:", f'  remoteurl: "{proxy}"']
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: registry-config-tests", f"    path: {htpasswd}"]
    if token is not None:
        realm, bundle = token
        lines += [
            "auth:",
            "  token:",
            f"    realm: {realm}",
            f"    service: {REGISTRY_NAME}",
            f"    issuer: {TOKEN_ISSUER}",
            f"    rootcertbundle: {bundle}",
        ]
    return "\n".join(lines) + "\n"


def _wait_until_listening(process: subprocess.Popen[bytes], host: str, port: int, log_path: Path) -> None:
    """Poll (with a deadline) until the registry accepts connections; fail with its log if it exits or never does."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port with a deadline, not synchronisation by sleep
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"
    state = f"exited with {process.returncode}" if process.poll() is not None else "did not listen in time"
    where = f"[{host}]" if ":" in host else host
    pytest.fail(f"docker-registry on {where}:{port} {state}; its log ends with:\n{log}")


@contextlib.contextmanager
def run_registry(
    tmp: Path,
    *,
    flavour: str,
    host: str = "127.0.0.1",
    ca_pem: Path | None = None,
    tls: tuple[Path, Path] | None = None,
    htpasswd: Path | None = None,
    token: tuple[str, Path] | None = None,
) -> Iterator[RunningRegistry]:
    """Start docker-registry on a free port of ``host`` with :func:`config_text`'s configuration in ``tmp``.

    Waits until it listens, yields it, and always stops it (by its PID).
    """
    program = need_program("docker-registry", package="docker-registry")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port(host)
    config = tmp / "config.yml"
    config.write_text(config_text(tmp, port, host=host, tls=tls, htpasswd=htpasswd, token=token))
    log_path = tmp / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([program, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, host, port, log_path)
        yield RunningRegistry(flavour, port, log_path, ca_pem=ca_pem)
    finally:
        stop_process(process)


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


def write_leaf(leaf: trustme.LeafCert, directory: Path, name: str = "leaf") -> tuple[Path, Path]:
    """Write a certificate the test CA issued (its chain) and its key as ``name.pem`` and ``name.key``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture(scope="module")
def registry_ca() -> trustme.CA:
    """The test CA: trusted only where a test passes its PEM as ca_bundle."""
    return trustme.CA()


@pytest.fixture(scope="module")
def http_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The seed's first flavour: plain HTTP."""
    tmp = tmp_path_factory.mktemp("registry-http")
    with run_registry(tmp, flavour="http") as registry:
        yield registry


@pytest.fixture(scope="module")
def self_signed_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The second flavour: HTTPS with a self-signed certificate (for localhost and 127.0.0.1)."""
    tmp = tmp_path_factory.mktemp("registry-self-signed")
    with run_registry(tmp, flavour="self-signed", tls=_self_signed(tmp)) as registry:
        yield registry


@pytest.fixture(scope="module")
def ca_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """The third flavour: HTTPS with a certificate from the test CA, for localhost and registry.test (not the IP)."""
    tmp = tmp_path_factory.mktemp("registry-ca")
    tls = write_leaf(registry_ca.issue_cert("localhost", REGISTRY_NAME), tmp)
    ca_pem = tmp / "ca.pem"
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    with run_registry(tmp, flavour="ca", tls=tls, ca_pem=ca_pem) as registry:
        yield registry


@pytest.fixture(scope="module")
def expired_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """HTTPS with a certificate from the test CA that expired yesterday."""
    tmp = tmp_path_factory.mktemp("registry-expired")
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = registry_ca.issue_cert(
        "localhost", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    ca_pem = tmp / "ca.pem"
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    with run_registry(tmp, flavour="expired", tls=write_leaf(leaf, tmp), ca_pem=ca_pem) as registry:
        yield registry


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: trustme.CA) -> Iterator[RunningRegistry]:
    """Plain HTTP with token authentication configured: ``GET /v2/`` answers 401 and a Bearer challenge."""
    tmp = tmp_path_factory.mktemp("registry-auth")
    token_ca = tmp / "token-ca.pem"
    registry_ca.cert_pem.write_to_path(str(token_ca))
    with run_registry(tmp, flavour="auth", token=(f"https://auth.{REGISTRY_NAME}/token", token_ca)) as registry:
        yield registry


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
