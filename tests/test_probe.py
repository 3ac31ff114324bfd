"""probe_registry against Debian's docker-registry in the seed's three flavours, and against impostors."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from _integration import free_port
from _registry import (
    REGISTRY_NAME,
    RunningRegistry,
    auth_registry,
    ca_registry,
    expired_registry,
    http_registry,
    not_a_registry,
    redirect_to_https,
    registry_ca,
    self_signed_registry,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_config.discovery.model import ServiceInstance
from registry_config.errors import InvalidAddress, InvalidRegistryURL, ProbeError
from registry_config.probe import ProbeResult, probe_registry
from registry_config.spec import RegistrySpec, SecurityMode

__all__ = [  # fixtures imported for pytest, named so that linters see them used
    "auth_registry",
    "ca_registry",
    "expired_registry",
    "http_registry",
    "not_a_registry",
    "redirect_to_https",
    "registry_ca",
    "self_signed_registry",
]

HTTP, UNVERIFIED, VERIFIED = SecurityMode.HTTP, SecurityMode.HTTPS_UNVERIFIED, SecurityMode.HTTPS_VERIFIED

pytestmark = pytest.mark.integration


def _spec(registry: RunningRegistry, mode: SecurityMode, host: str = "localhost") -> RegistrySpec:
    return RegistrySpec.from_url(registry.url(mode.scheme, host), skip_ssl_validation=mode is UNVERIFIED)


# (server fixture, trust the test CA?, configured mode) -> (observed, matches, phrases the diagnosis must hold)
CROSS = [
    ("http_registry", False, HTTP, HTTP, True, ["over plain HTTP, as configured", "insecure-registries"]),
    ("http_registry", False, UNVERIFIED, HTTP, False, ["speaks plain HTTP, not TLS", "use http://localhost:{port}"]),
    ("http_registry", False, VERIFIED, HTTP, False, ["speaks plain HTTP, not TLS", "use http://localhost:{port}"]),
    (
        "self_signed_registry",
        False,
        HTTP,
        UNVERIFIED,
        False,
        [
            "the server wants TLS",
            "Client sent an HTTP request to an HTTPS server",
            "use https://localhost:{port} with skip_ssl_validation=True",
        ],
    ),
    ("self_signed_registry", False, UNVERIFIED, UNVERIFIED, True, ["as configured", "self-signed certificate"]),
    (
        "self_signed_registry",
        False,
        VERIFIED,
        UNVERIFIED,
        False,
        ["does not verify (self-signed certificate)", "pass skip_ssl_validation=True or trust its CA with ca_bundle"],
    ),
    (
        "ca_registry",
        True,
        HTTP,
        VERIFIED,
        False,
        ["the server wants TLS", "with a certificate that verifies: use https://localhost:{port}."],
    ),
    ("ca_registry", True, UNVERIFIED, VERIFIED, True, ["certificate verifies", "skip_ssl_validation is not needed"]),
    ("ca_registry", True, VERIFIED, VERIFIED, True, ["with a certificate that verifies, as configured"]),
    (
        "ca_registry",
        False,
        VERIFIED,
        UNVERIFIED,
        False,
        ["does not verify (unable to get local issuer certificate)", "trust its CA with ca_bundle"],
    ),
    ("ca_registry", False, UNVERIFIED, UNVERIFIED, True, ["as configured", "unable to get local issuer certificate"]),
]


@pytest.mark.parametrize(
    ("server", "trust_ca", "configured", "observed", "matches", "phrases"),
    CROSS,
    ids=[f"{c[0]}-{'ca' if c[1] else 'noca'}-{c[2].value}" for c in CROSS],
)
def test_every_configured_mode_against_every_flavour(
    request: pytest.FixtureRequest,
    server: str,
    trust_ca: bool,
    configured: SecurityMode,
    observed: SecurityMode,
    matches: bool,
    phrases: list[str],
) -> None:
    registry: RunningRegistry = request.getfixturevalue(server)
    result = probe_registry(_spec(registry, configured), ca_bundle=registry.ca_pem if trust_ca else None, timeout=5)
    context = f"{result!r}\nregistry log:\n{registry.log_tail()}"
    assert result.reachable, context
    assert (result.observed, result.matches) == (observed, matches), context
    assert result.status == 200
    assert result.api_version == "registry/2.0"
    assert result.auth_challenge is None
    assert result.instances == ()
    assert result.target == _spec(registry, configured).url
    for phrase in phrases:
        assert phrase.format(port=registry.port) in result.diagnosis, context


def test_a_url_string_is_parsed_like_a_spec(http_registry: RunningRegistry) -> None:
    assert probe_registry(http_registry.url("http")) == probe_registry(_spec(http_registry, HTTP))


def test_hostname_mismatch_is_named(ca_registry: RunningRegistry) -> None:
    # The test CA's certificate names localhost and registry.test, not the IP.
    result = probe_registry(_spec(ca_registry, VERIFIED, host="127.0.0.1"), ca_bundle=ca_registry.ca_pem)
    assert result.reachable
    assert (result.observed, result.matches) == (UNVERIFIED, False)
    assert "the certificate is not valid for '127.0.0.1'" in result.diagnosis
    assert "use a name the certificate lists" in result.diagnosis


def test_http_url_for_a_tls_registry_whose_certificate_names_another_host(ca_registry: RunningRegistry) -> None:
    result = probe_registry(_spec(ca_registry, HTTP, host="127.0.0.1"), ca_bundle=ca_registry.ca_pem)
    assert (result.observed, result.matches) == (UNVERIFIED, False)
    assert "the server wants TLS" in result.diagnosis
    assert "with skip_ssl_validation=True (an insecure registry), or use a name its certificate lists" in (
        result.diagnosis
    )
    assert "not valid for '127.0.0.1'" in result.diagnosis


def test_an_expired_certificate(expired_registry: RunningRegistry) -> None:
    result = probe_registry(_spec(expired_registry, VERIFIED), ca_bundle=expired_registry.ca_pem)
    assert (result.reachable, result.observed, result.matches) == (True, UNVERIFIED, False)
    assert "the certificate has expired (certificate has expired): renew it" in result.diagnosis
    relaxed = probe_registry(_spec(expired_registry, UNVERIFIED), ca_bundle=expired_registry.ca_pem)
    assert (relaxed.observed, relaxed.matches) == (UNVERIFIED, True)


def test_a_plain_http_front_that_redirects_to_https(redirect_to_https: int) -> None:
    result = probe_registry(f"http://127.0.0.1:{redirect_to_https}")
    assert (result.reachable, result.status, result.observed, result.matches) == (True, 301, None, False)
    assert "the server wants TLS (it redirects to 'https://localhost/v2/', not followed)" in result.diagnosis
    assert result.failure == "wants-tls"


def test_token_auth_registry_answers_401_and_is_recognised(auth_registry: RunningRegistry) -> None:
    result = probe_registry(auth_registry.url("http", "127.0.0.1"))
    assert (result.reachable, result.status, result.observed, result.matches) == (True, 401, HTTP, True)
    assert result.api_version == "registry/2.0"
    assert result.auth_challenge is not None
    assert result.auth_challenge.startswith(f'Bearer realm="https://auth.{REGISTRY_NAME}/token"')
    assert f'service="{REGISTRY_NAME}"' in result.auth_challenge
    assert "HTTP 401; it asks for Bearer authentication" in result.diagnosis


@pytest.mark.parametrize(("scheme", "host"), [("http", "127.0.0.1"), ("https", "127.0.0.1"), ("https", "::1")])
def test_connection_refused(scheme: str, host: str) -> None:
    port = free_port(host)
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    result = probe_registry(f"{scheme}://{shown}", timeout=5)
    assert (result.reachable, result.status, result.observed, result.matches) == (False, None, None, False)
    assert result.failure == "refused"
    assert f"connection to {shown} refused: nothing listens there" in result.diagnosis


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_server_that_never_answers_times_out_once(scheme: str) -> None:
    timeout = 0.3
    with _Server("silent") as server:
        started = time.monotonic()
        result = probe_registry(f"{scheme}://127.0.0.1:{server.port}", timeout=timeout)
        elapsed = time.monotonic() - started
    assert (result.reachable, result.observed, result.matches, result.failure) == (False, None, False, "timeout")
    assert f"no complete answer from 127.0.0.1:{server.port} within 0.3s" in result.diagnosis
    assert server.connections == 1, "a timeout must not be tried again the other ways"
    assert elapsed < 3 * timeout + 2


def test_a_name_that_does_not_resolve() -> None:
    result = probe_registry("https://no-such-registry.invalid:5000", timeout=2)
    assert (result.reachable, result.observed) == (False, None)
    assert "cannot resolve 'no-such-registry.invalid'" in result.diagnosis


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_web_server_that_is_not_a_registry(scheme: str, not_a_registry: int) -> None:
    result = probe_registry(f"{scheme}://127.0.0.1:{not_a_registry}")
    assert (result.reachable, result.status, result.api_version, result.observed, result.matches) == (
        True,
        404,
        None,
        None,
        False,
    )
    assert "HTTP 404 over plain HTTP without a Docker-Distribution-API-Version header" in result.diagnosis
    assert "it is not a Docker registry" in result.diagnosis


def test_instances_are_checked_against_the_registry_name(ca_registry: RunningRegistry) -> None:
    # registry.test does not resolve here; its instance does, and its certificate is for registry.test, not the IP.
    dead = free_port()
    result = probe_registry(
        f"https://{REGISTRY_NAME}:{ca_registry.port}",
        ca_bundle=ca_registry.ca_pem,
        instances=[ca_registry.endpoint, ServiceInstance("127.0.0.1", dead)],
        timeout=3,
    )
    assert not result.reachable
    assert "cannot resolve 'registry.test'" in result.diagnosis
    alive, refused = result.instances
    assert alive.target == f"{ca_registry.endpoint} (as {REGISTRY_NAME})"
    assert (alive.reachable, alive.observed, alive.matches, alive.status) == (True, VERIFIED, True, 200)
    assert (refused.reachable, refused.matches) == (False, False)
    assert f"connection to 127.0.0.1:{dead} refused" in refused.diagnosis
    assert not result.ok


def test_an_instance_whose_certificate_is_for_another_name(ca_registry: RunningRegistry) -> None:
    result = probe_registry(
        f"https://wrong.test:{ca_registry.port}", ca_bundle=ca_registry.ca_pem, instances=[ca_registry.endpoint]
    )
    (instance,) = result.instances
    assert (instance.reachable, instance.observed, instance.matches) == (True, UNVERIFIED, False)
    assert "the certificate is not valid for 'wrong.test'" in instance.diagnosis


def test_instances_of_a_plain_http_registry_and_a_missing_port(http_registry: RunningRegistry) -> None:
    result = probe_registry(http_registry.url("http"), instances=["127.0.0.1"])
    assert result.ok
    (instance,) = result.instances
    assert instance.target == f"127.0.0.1:{http_registry.port} (as localhost)"
    assert (instance.observed, instance.matches) == (HTTP, True)


def test_result_as_json(auth_registry: RunningRegistry) -> None:
    result = probe_registry(auth_registry.url("http"), instances=[auth_registry.endpoint])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["observed"] == "http"
    assert data["status"] == 401
    assert data["matches"] is True
    assert data["instances"][0]["target"] == f"{auth_registry.endpoint} (as localhost)"
    assert data["instances"][0]["instances"] == []


def test_unverified_probing_leaves_the_warning_filters_alone(self_signed_registry: RunningRegistry) -> None:
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe_registry(_spec(self_signed_registry, UNVERIFIED))
    assert caught == []
    assert list(warnings.filters) == before


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match=r"CA bundle '/nonexistent/ca.pem' does not exist"):
        probe_registry("https://localhost:5000", ca_bundle="/nonexistent/ca.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ProbeError, match=r"cannot be loaded"):
        probe_registry("https://localhost:5000", ca_bundle=garbage)
    with pytest.raises(ProbeError, match=r"probe timeout 0: give a positive number"):
        probe_registry("https://localhost:5000", timeout=0)
    with pytest.raises(InvalidAddress, match=r"probe instance"):
        probe_registry("https://localhost:5000", instances=["10.0.0.1:5000,10.0.0.2:5000"])
    with pytest.raises(InvalidAddress, match=r"not an IP address"):
        probe_registry("https://localhost:5000", instances=["registry.test:5000"])
    with pytest.raises(InvalidRegistryURL, match=r"has no scheme"):
        probe_registry("docker_registry:8080")


class _Garbage:
    """A loopback TCP server that answers every connection with ``payload`` and closes it."""

    def __init__(self) -> None:
        self.payload = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    conn.recv(4096)
                    conn.sendall(self.payload)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def garbage_server() -> Iterator[_Garbage]:
    server = _Garbage()
    try:
        yield server
    finally:
        server.stop.set()
        server.thread.join(timeout=5)
        server.sock.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda status, header, body: f"HTTP/1.1 {status} X\r\n{header}\r\n\r\n".encode() + body,
            st.integers(100, 999),
            st.sampled_from(["", "Docker-Distribution-API-Version: registry/2.0", "Content-Length: 99999"]),
            st.binary(max_size=50),
        ),
    ),
    scheme=st.sampled_from(["http", "https"]),
)
def test_hostile_answers_become_results_not_exceptions(garbage_server: _Garbage, payload: bytes, scheme: str) -> None:
    garbage_server.payload = payload
    result = probe_registry(f"{scheme}://127.0.0.1:{garbage_server.port}", timeout=1)
    assert isinstance(result, ProbeResult)
    assert not result.matches or result.observed is HTTP
    assert result.diagnosis


# -- the bounded transport: drips, endless answers, redirects, the environment --------------------------------------


class _Server:
    """A loopback HTTP server of the test's own, one behaviour per instance, counting what reaches it.

    ``silent`` accepts and never answers; ``drip`` sends a registry's headers and then one body byte every 0.2s;
    ``endless`` sends a body without end; ``redirect`` answers 302 to ``location``; ``registry`` answers as a
    registry. A TLS client hello is answered by closing the connection (this server speaks plain HTTP only).
    """

    def __init__(self, mode: str, *, location: str = "") -> None:
        self.mode = mode
        self.location = location
        self.connections = 0
        self.requests: list[bytes] = []
        self.sent = 0
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept)]
        self.threads[0].start()

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in list(self.threads):
            thread.join(timeout=10)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,))
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.mode == "silent":  # not even a TLS alert: a hung server
                self.stop.wait()
                return
            conn.settimeout(0.2)
            request = b""
            while b"\r\n\r\n" not in request and not self.stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk or chunk[:1] == b"\x16":  # gone, or a TLS client hello
                    return
                request += chunk
            self.requests.append(request)
            try:
                self._answer(conn)
            except OSError:
                return

    def _answer(self, conn: socket.socket) -> None:
        registry = b"Docker-Distribution-API-Version: registry/2.0\r\n"
        if self.mode == "registry":
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + registry + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        elif self.mode == "redirect":
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: " + self.location.encode() + b"\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )
        elif self.mode == "drip":
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + registry + b"Content-Length: 1000\r\n\r\n")
            while not self.stop.wait(0.2):
                conn.sendall(b"{")
        elif self.mode == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + registry + b"Transfer-Encoding: chunked\r\n\r\n")
            block = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            while not self.stop.is_set():
                conn.sendall(block)
                self.sent += 65536


def test_an_answer_that_drips_ends_at_the_timeout() -> None:
    timeout = 0.5
    with _Server("drip") as server:
        started = time.monotonic()
        result = probe_registry(f"http://127.0.0.1:{server.port}", timeout=timeout)
        elapsed = time.monotonic() - started
    assert (result.reachable, result.failure) == (False, "timeout")
    assert "no complete answer" in result.diagnosis
    assert server.connections == 1
    assert elapsed < 3 * timeout + 2


def test_an_endless_answer_ends_at_the_ceiling_in_bounded_memory() -> None:
    import tracemalloc

    timeout, ceiling = 5.0, 1024 * 1024
    with _Server("endless") as server:
        tracemalloc.start()
        try:
            started = time.monotonic()
            result = probe_registry(f"http://127.0.0.1:{server.port}", timeout=timeout, max_response_bytes=ceiling)
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert (result.reachable, result.failure) == (False, "too-large")
    assert f"answers GET /v2/ with more than {ceiling} bytes" in result.diagnosis
    assert "it is not a Docker registry" in result.diagnosis
    assert elapsed < 3 * (3 * timeout) + 2  # at most three attempts, each bounded
    assert peak < 8 * ceiling, f"peak {peak} bytes for a ceiling of {ceiling}"


def test_a_redirect_is_never_followed_and_its_token_never_shown() -> None:
    with _Server("registry") as elsewhere:
        location = f"http://deploy:hunter2hunter2@127.0.0.1:{elsewhere.port}/v2/?access_token=s3cr3tt0k3n"
        with _Server("redirect", location=location) as server:
            result = probe_registry(f"http://127.0.0.1:{server.port}", timeout=2)
    assert elsewhere.connections == 0, "the redirect was followed"
    assert (result.reachable, result.status, result.matches, result.failure) == (True, 302, False, "redirect")
    assert f"a redirect to 'http://***@127.0.0.1:{elsewhere.port}/v2/?access_token=<redacted>'" in result.diagnosis
    assert "which is not followed" in result.diagnosis
    shown = result.diagnosis + repr(result) + json.dumps(result.to_dict())
    assert "hunter2" not in shown
    assert "s3cr3tt0k3n" not in shown


def test_a_redirect_to_https_is_read_as_wanting_tls_and_redacted() -> None:
    with _Server("redirect", location="https://registry.test/v2/?token=s3cr3tt0k3n") as server:
        result = probe_registry(f"http://127.0.0.1:{server.port}", timeout=2)
    assert result.failure == "wants-tls"
    assert "it redirects to 'https://registry.test/v2/?token=<redacted>', not followed" in result.diagnosis
    assert "s3cr3tt0k3n" not in result.diagnosis


def test_proxy_and_ca_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = free_port()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    with _Server("registry") as server:
        result = probe_registry(f"http://127.0.0.1:{server.port}", timeout=2)
    assert (result.ok, result.observed, result.failure) == (True, HTTP, None)
    assert server.requests[0].startswith(b"GET /v2/ HTTP/1.1\r\n")


def test_an_instance_is_asked_at_its_ip_with_the_registry_name_as_host() -> None:
    with _Server("registry") as server:
        result = probe_registry(f"http://registry.test:{server.port}", instances=["127.0.0.1"], timeout=2)
    (instance,) = result.instances
    assert (instance.ok, instance.target) == (True, f"127.0.0.1:{server.port} (as registry.test)")
    assert f"Host: registry.test:{server.port}\r\n".encode() in server.requests[-1]


def test_max_response_bytes_is_checked() -> None:
    with pytest.raises(ProbeError, match="max_response_bytes 0: give a positive number"):
        probe_registry("http://127.0.0.1:1", max_response_bytes=0)
