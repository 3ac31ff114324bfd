"""The bounded HTTP transport, against loopback servers of the test's own that misbehave on purpose.

Every bound asserted is derived from the timeout the test configures (a
generous multiple), never a fixed wall-clock figure.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme
from _integration import unavailable
from hypothesis import given
from hypothesis import strategies as st

from registry_config.errors import RegistryConfigError
from registry_config.http import (
    STOP_POLL,
    HttpClient,
    RedirectRefused,
    ResponseTooLarge,
    TransportConnectionError,
    TransportProtocolError,
    TransportStopped,
    TransportTimeout,
    TransportTLSError,
)

Handler = Callable[[socket.socket], None]
TOKEN = "8c1f7a42-93d5-4b0e-a6f1-2d7e9c3b5a60"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


@contextmanager
def serve(handler: Handler, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A loopback server running ``handler`` on each connection in a thread; stopped (and joined) on exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(16)
    listener.settimeout(0.05)  # accept() is not woken by close(): look at `done` between waits
    done = threading.Event()
    threads: list[threading.Thread] = []
    conns: list[socket.socket] = []

    def one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            handler(conn)

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            if tls is not None:
                try:
                    conn = tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            conns.append(conn)
            thread = threading.Thread(target=one, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        acceptor.join(5)
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)


def ok_handler(body: bytes = b'{"ok": true}', *, extra: str = "") -> Handler:
    def handle(conn: socket.socket) -> None:
        while _read_request(conn):
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nX-Test: yes\r\n{extra}\r\n"
            conn.sendall(head.encode() + body)

    return handle


def test_a_plain_answer_is_read_whole_and_the_connection_reused() -> None:
    connections = []

    def handle(conn: socket.socket) -> None:
        connections.append(conn)
        ok_handler()(conn)

    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}") as client:
        first = client.request("GET", "/v1/x", params=[("a", "b c")])
        second = client.request("GET", "/v1/x")
    assert first.status == 200
    assert first.body == b'{"ok": true}'
    assert first.headers.get("x-test") == "yes"
    assert first.url == f"http://127.0.0.1:{port}/v1/x"
    assert second.status == 200
    assert len(connections) == 1


def test_a_server_that_closed_a_kept_connection_is_retried_once() -> None:
    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # then closes without saying so

    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}") as client:
        assert client.request("GET", "/").body == b"ok"
        assert client.request("GET", "/").body == b"ok"


@pytest.mark.parametrize(
    ("head", "drip", "raised", "match"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
            b"x",
            (TransportTimeout,),
            "whole request",
            id="a-body-byte-by-byte",
        ),
        # Endless headers may also be refused as too many before the deadline: either ends the request in time.
        pytest.param(
            b"HTTP/1.1 200 OK\r\n",
            b"X-A: b\r\n",
            (TransportTimeout, TransportProtocolError),
            None,
            id="headers-one-by-one",
        ),
    ],
)
def test_a_dripping_answer_ends_at_the_deadline(
    head: bytes, drip: bytes, raised: tuple[type[Exception], ...], match: str | None
) -> None:
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(head)
        while not stop.wait(0.05):
            conn.sendall(drip)

    timeout = 0.5
    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}", timeout=timeout) as client:
        started = time.monotonic()
        try:
            with pytest.raises(raised, match=match):
                client.request("GET", "/")
            assert time.monotonic() - started < 3 * timeout + 2
        finally:
            stop.set()


def test_an_endless_answer_is_refused_at_the_ceiling_with_bounded_memory() -> None:
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
        while not stop.is_set():
            conn.sendall(chunk)

    limit = 1_000_000
    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}", max_response_bytes=limit) as client:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge) as caught:
                client.request("GET", "/")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            stop.set()
    assert caught.value.limit == limit
    assert peak < 4 * limit


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_large_body_is_held_once_while_it_is_read(framing: str) -> None:
    """A body read in chunks and joined at the end is held twice at the join: a 100k-instance Consul answer then
    cost two answers' worth of memory before decoding began. Whatever the framing (Consul sends large answers
    chunked), the peak stays near one copy, and the body is a plain ``bytes``."""
    size = 8 * 1024 * 1024
    body = bytes(range(256)) * (size // 256)
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (size, body)  # made before memory is traced

    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        if framing == "chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, size, 100_000):
                piece = body[start : start + 100_000]
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.sendall(b"0\r\n\r\n")
        else:
            conn.sendall(whole)

    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}") as client:
        tracemalloc.start()
        try:
            answer = client.request("GET", "/")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert type(answer.body) is bytes
    assert answer.body == body
    assert peak < 1.5 * size


def test_an_announced_oversized_answer_is_refused_before_reading() -> None:
    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc")

    with serve(handle) as port, pytest.raises(ResponseTooLarge, match="announces"):
        HttpClient(f"http://127.0.0.1:{port}", max_response_bytes=1000).request("GET", "/")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_named_without_its_secrets(status: int) -> None:
    seen: list[bytes] = []

    def handle(conn: socket.socket) -> None:
        seen.append(_read_request(conn))
        location = f"http://u:{TOKEN}@198.51.100.7/steal?token={TOKEN}"
        conn.sendall(f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    with serve(handle) as port, pytest.raises(RedirectRefused) as caught:
        HttpClient(f"http://127.0.0.1:{port}", secrets=[TOKEN]).request("GET", "/", headers={"X-Consul-Token": TOKEN})
    assert caught.value.status == status
    assert "198.51.100.7" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.location
    assert len(seen) == 1  # nothing was sent to the other host (it would not even be reachable)


def test_stop_closes_a_held_request_from_the_stopping_side() -> None:
    release = threading.Event()
    arrived = threading.Event()

    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        arrived.set()
        release.wait(60)  # a blocking query: held until the server's wait ends

    stop = threading.Event()
    timeout = 60.0
    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}", timeout=timeout) as client:
        try:
            outcome: list[BaseException] = []

            def run() -> None:
                try:
                    client.request("GET", "/v1/health/service/x", stop=stop)
                except BaseException as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            assert arrived.wait(timeout)
            stopped_at = time.monotonic()
            stop.set()
            thread.join(timeout)
            elapsed = time.monotonic() - stopped_at
        finally:
            release.set()
    assert len(outcome) == 1
    assert isinstance(outcome[0], TransportStopped)
    assert elapsed < timeout / 4  # far sooner than the request's own deadline: the watchdog closed it
    assert STOP_POLL < 1


def test_a_stop_already_set_sends_nothing() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(TransportStopped):
        HttpClient("http://127.0.0.1:9").request("GET", "/", stop=stop)


def test_proxy_variables_are_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with serve(ok_handler()) as port:
        assert HttpClient(f"http://127.0.0.1:{port}").request("GET", "/").status == 200


def test_refused_connection_is_a_typed_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportConnectionError, match="cannot connect"):
        HttpClient(f"http://127.0.0.1:{port}", timeout=2).request("GET", "/")


def test_garbled_http_is_a_typed_error() -> None:
    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    with serve(handle) as port, pytest.raises(RegistryConfigError):
        HttpClient(f"http://127.0.0.1:{port}").request("GET", "/")


def test_ipv6_loopback_origin() -> None:
    if not socket.has_ipv6:
        unavailable("this machine has no IPv6 loopback")  # pragma: no cover
    with serve(ok_handler(), host="::1") as port:
        client = HttpClient(f"http://[::1]:{port}")
        assert client.request("GET", "/").status == 200
        assert client.base_url == f"http://[::1]:{port}"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def test_tls_verified_with_a_ca_file_and_connect_to(ca: trustme.CA, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with serve(ok_handler(), tls=_server_context(ca, "registry.test")) as port:
        client = HttpClient(f"https://registry.test:{port}", verify=str(bundle), connect_to="127.0.0.1")
        assert client.request("GET", "/v2/").status == 200


def test_tls_unverified_certificate_is_refused_unless_verify_is_off(ca: trustme.CA) -> None:
    with serve(ok_handler(), tls=_server_context(ca, "127.0.0.1")) as port:
        with pytest.raises(TransportTLSError) as caught:
            HttpClient(f"https://127.0.0.1:{port}").request("GET", "/")
        assert caught.value.verify_failed
        assert HttpClient(f"https://127.0.0.1:{port}", verify=False).request("GET", "/").status == 200


def test_tls_client_against_plain_http_says_so() -> None:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)  # a ClientHello, which a plain HTTP server answers with a 400
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with serve(handle) as port, pytest.raises(TransportTLSError) as caught:
        HttpClient(f"https://127.0.0.1:{port}", verify=False).request("GET", "/")
    assert caught.value.plain_http


def test_the_environment_ca_bundle_does_not_turn_verification_back_on(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    with serve(ok_handler(), tls=_server_context(ca, "127.0.0.1")) as port:
        assert HttpClient(f"https://127.0.0.1:{port}", verify=False).request("GET", "/").status == 200


def test_no_message_ever_holds_the_secret() -> None:
    current = {"location": "", "status": "302"}

    def handle(conn: socket.socket) -> None:
        while _read_request(conn):
            status, location = current["status"], current["location"]
            conn.sendall(f"HTTP/1.1 {status} M\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}", secrets=[TOKEN]) as client:

        @given(st.integers(min_value=0, max_value=300), st.sampled_from(["301", "302", "307"]))
        def check(padding: int, status: str) -> None:
            current.update(location="http://x/" + "a" * padding + TOKEN, status=status)
            with pytest.raises(RedirectRefused) as caught:
                client.request("GET", "/")
            text = f"{caught.value} {caught.value.location} {caught.value!r}"
            for size in range(8, len(TOKEN) + 1, 4):
                for start in range(0, len(TOKEN) - size + 1, 4):
                    assert TOKEN[start : start + size] not in text

        check()


def test_a_head_answer_has_no_body_whatever_its_content_length() -> None:
    def handle(conn: socket.socket) -> None:
        while _read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5120\r\nDocker-Content-Digest: sha256:ab\r\n\r\n")

    with serve(handle) as port, HttpClient(f"http://127.0.0.1:{port}", max_response_bytes=100) as client:
        first = client.request("HEAD", "/v2/app/manifests/latest")
        second = client.request("HEAD", "/v2/app/manifests/latest")  # the kept connection is still in step
    assert first.body == b""
    assert first.headers.get("Docker-Content-Digest") == "sha256:ab"
    assert second.status == 200
