"""The one bounded HTTP reader behind every answer the library reads (Consul, probe, image resolution).

Why not ``requests`` as it comes: its ``timeout`` bounds each socket read, so an
answer that drips a byte every 0.2 s holds a caller for as long as the server
likes; it buffers an endless answer without limit; it follows redirects (and
carries an ``X-Consul-Token`` header to the other host); it reads proxy and CA
variables from the environment (``REQUESTS_CA_BUNDLE`` even overrides
``verify=False``). :class:`HttpClient` is built on :mod:`http.client` instead and
promises:

- ``timeout`` bounds the **whole** request: connect, TLS handshake, headers and
  body. A watchdog thread shuts the socket down when the deadline passes, so a
  drip ends in :class:`TransportTimeout` on time;
- ``stop`` (an object with ``is_set()``, such as a :class:`threading.Event`),
  when set, shuts the in-flight connection down from the stopping side within
  about :data:`STOP_POLL` seconds, even while a server holds a blocking query;
- an answer larger than ``max_response_bytes`` is :class:`ResponseTooLarge`,
  decided before the body is read when ``Content-Length`` says so;
- a redirect is never followed: :class:`RedirectRefused` names where it pointed;
- no proxy and no CA variable of the environment is read; TLS verification
  is exactly what ``verify`` says;
- ``Accept-Encoding: identity``: no compressed answer, hence no decompression
  bomb;
- every message is redacted (``secrets``, user-info, token-like parameters)
  before it is shortened.

Idle keep-alive connections are reused (a Consul watch or a stager asks the
same agent again and again); a reused connection that the server closed
meanwhile is retried once on a new one for idempotent methods.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import io
import itertools
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from .address import format_host, format_host_port, split_host_port
from .errors import RegistryConfigError
from .redact import quote, redact

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "STOP_POLL",
    "HttpClient",
    "HttpResponse",
    "RedirectRefused",
    "ResponseTooLarge",
    "StopSignal",
    "TransportConnectionError",
    "TransportError",
    "TransportProtocolError",
    "TransportStopped",
    "TransportTLSError",
    "TransportTimeout",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a whole request may take by default (above Consul's 7 s ``rpc_hold_timeout``)."""

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""The default ceiling of an answer's body: a 100k-instance Consul catalog is about 130 MB."""

STOP_POLL = 0.1
"""Seconds between two looks of the watchdog at a request's stop signal."""

_CHUNK = 256 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_IDLE = 4


class StopSignal(Protocol):
    """What ``stop=`` takes: a :class:`threading.Event` does."""

    def is_set(self) -> bool: ...


# -- errors ---------------------------------------------------------------------------------------------------------


class TransportError(RegistryConfigError):
    """An HTTP request failed below the protocol the caller speaks; callers wrap it in their own error."""


class TransportTimeout(TransportError):
    """The whole request did not finish within its deadline."""


class TransportStopped(TransportError):
    """The caller's stop signal was set while the request was in flight."""


class ResponseTooLarge(TransportError):
    """The answer's body is larger than the client's ``max_response_bytes``."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class RedirectRefused(TransportError):
    """The server answered with a redirect, which is never followed."""

    def __init__(self, message: str, *, status: int, location: str) -> None:
        super().__init__(message)
        self.status = status
        self.location = location


class TransportConnectionError(TransportError):
    """No connection: refused, reset, unreachable, or the name does not resolve."""


class TransportTLSError(TransportError):
    """The TLS handshake failed.

    ``verify_failed``: the server's certificate did not verify (self-signed,
    unknown CA, wrong name). ``plain_http``: the server answered plain HTTP to
    a TLS client.
    """

    def __init__(self, message: str, *, verify_failed: bool = False, plain_http: bool = False) -> None:
        super().__init__(message)
        self.verify_failed = verify_failed
        self.plain_http = plain_http


class TransportProtocolError(TransportError):
    """The server's answer is not well-formed HTTP."""


# -- the answer -----------------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class HttpResponse:
    """A complete HTTP answer: status, headers (case-insensitive ``get``/``get_all``) and the whole body."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")
    url: str

    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")


# -- the watchdog ---------------------------------------------------------------------------------------------------


class _Flight:
    """One request in flight, as the watchdog sees it: a deadline, a stop signal, and the socket to shut down."""

    __slots__ = ("aborted", "deadline", "lock", "sock", "stop")

    def __init__(self, deadline: float, stop: StopSignal | None) -> None:
        self.deadline = deadline
        self.stop = stop
        self.sock: socket.socket | None = None
        self.aborted: str | None = None
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        with self.lock:
            self.sock = sock
            aborted = self.aborted
        if aborted is not None:
            _shutdown(sock)

    def abort(self, why: str) -> None:
        with self.lock:
            if self.aborted is not None:
                return
            self.aborted = why
            sock = self.sock
        if sock is not None:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for the whole process that ends requests past their deadline or told to stop.

    It sleeps while nothing is in flight, wakes at the next deadline, and
    every :data:`STOP_POLL` seconds while a request with a stop signal is in
    flight.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Flight]] = []
        self._stoppable: set[_Flight] = set()
        self._active: set[_Flight] = set()
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, flight: _Flight) -> None:
        with self._condition:
            self._active.add(flight)
            heapq.heappush(self._heap, (flight.deadline, next(self._counter), flight))
            if flight.stop is not None:
                self._stoppable.add(flight)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="registry-config-http-watchdog", daemon=True)
                self._thread.start()
            self._condition.notify()

    def remove(self, flight: _Flight) -> None:
        with self._condition:
            self._active.discard(flight)
            self._stoppable.discard(flight)

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2] not in self._active or self._heap[0][0] <= now):
                    _, _, flight = heapq.heappop(self._heap)
                    if flight in self._active:
                        self._active.discard(flight)
                        self._stoppable.discard(flight)
                        flight.abort("deadline")
                for flight in [f for f in self._stoppable if f.stop is not None and f.stop.is_set()]:
                    self._stoppable.discard(flight)
                    flight.abort("stop")
                if not self._heap:
                    self._condition.wait()
                    continue
                pause = self._heap[0][0] - now
                if self._stoppable:
                    pause = min(pause, STOP_POLL)
                self._condition.wait(max(pause, 0.001))


_WATCHDOG = _Watchdog()


# -- connections ----------------------------------------------------------------------------------------------------


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection that can connect to another address than it names, and hands its socket over."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_to: str | None,
        context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._connect_to = connect_to
        self._context = context
        self.flight: _Flight | None = None

    def connect(self) -> None:
        flight = self.flight
        remaining = self._remaining()
        raw = socket.create_connection((self._connect_to or self.host, self.port), timeout=remaining)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if flight is not None:
                flight.attach(raw)
            if self._context is not None:
                raw.settimeout(self._remaining())
                sock: socket.socket = self._context.wrap_socket(raw, server_hostname=self.host)
                if flight is not None:
                    flight.attach(sock)
                self.sock = sock
            else:
                self.sock = raw
        except BaseException:
            raw.close()
            raise

    def _remaining(self) -> float:
        if self.flight is None:
            return float(self.timeout) if self.timeout is not None else DEFAULT_TIMEOUT
        return max(0.001, self.flight.deadline - time.monotonic())

    def set_flight(self, flight: _Flight | None) -> None:
        self.flight = flight
        if flight is not None and self.sock is not None:
            flight.attach(self.sock)
            self.sock.settimeout(self._remaining())


# -- the client -----------------------------------------------------------------------------------------------------


def _tls_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
    if verify is True:
        context = ssl.create_default_context()
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


class HttpClient:
    """Bounded HTTP requests to one origin (``http[s]://host:port``); thread-safe. See the module docstring.

    ``verify``: ``True`` (the system's CAs), ``False`` (no verification) or
    the path of a CA file or directory. ``cert``: a client certificate file,
    or ``(cert, key)``. ``connect_to``: an IP address to connect to instead of
    the URL's host; TLS's server name, the certificate check and the ``Host``
    header still use the URL's host. ``secrets`` are redacted from every
    message the client makes.
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        connect_to: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        secrets: Sequence[str] = (),
    ) -> None:
        split = urllib.parse.urlsplit(base_url)
        if split.scheme not in ("http", "https") or not split.netloc or "@" in split.netloc:
            raise ValueError(f"HttpClient needs an http:// or https:// origin, got {quote(base_url)}")
        host, port = split_host_port(split.netloc, where="HTTP origin")
        if isinstance(timeout, bool) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_response_bytes, bool) or not max_response_bytes > 0:
            raise ValueError(f"max_response_bytes must be a positive number, got {max_response_bytes!r}")
        self.scheme = split.scheme
        self.host = host
        self.port = port if port is not None else (443 if split.scheme == "https" else 80)
        self.base_url = f"{self.scheme}://{format_host_port(host, self.port)}"
        self.timeout = float(timeout)
        self.max_response_bytes = int(max_response_bytes)
        self._connect_to = connect_to
        self._secrets = tuple(s for s in secrets if s)
        self._context = _tls_context(verify, cert) if self.scheme == "https" else None
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        via = f", connect_to={self._connect_to!r}" if self._connect_to else ""
        return f"HttpClient({self.base_url!r}{via}, timeout={self.timeout:g})"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A client dropped without close() must not leave its kept-alive sockets to the garbage collector.
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """Close the idle connections; the client can still be used (it opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- requests ---------------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        stop: StopSignal | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole answer, within ``timeout`` (default: the client's) seconds."""
        limit = self.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        target = path if path.startswith("/") else f"/{path}"
        if params:
            target += ("&" if "?" in target else "?") + urllib.parse.urlencode(list(params))
        url = f"{self.base_url}{target.partition('?')[0]}"
        flight = _Flight(time.monotonic() + limit, stop)
        if stop is not None and stop.is_set():
            raise TransportStopped(f"{self._where(url)}: stopped before the request was sent")
        _WATCHDOG.add(flight)
        try:
            return self._exchange(method, target, url, headers or {}, body, flight, limit)
        finally:
            _WATCHDOG.remove(flight)

    def _exchange(
        self,
        method: str,
        target: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        flight: _Flight,
        limit: float,
    ) -> HttpResponse:
        for attempt in (0, 1):
            connection, reused = self._connection()
            connection.set_flight(flight)
            sent_anything = False
            try:
                connection.putrequest(method, target, skip_accept_encoding=True)
                connection.putheader("Accept-Encoding", "identity")
                for name, value in headers.items():
                    connection.putheader(name, value)
                if body is not None:
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                sent_anything = True
                response = connection.getresponse()
                answer = self._read(response, url, method)
                if flight.aborted is not None:  # the watchdog's shutdown can look like a short, clean end
                    raise TransportTimeout("aborted")
            except BaseException as exc:
                connection.close()
                if flight.aborted is not None:
                    raise self._aborted(flight, url, limit) from exc
                retry = reused and attempt == 0 and method.upper() in _IDEMPOTENT
                if retry and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    continue
                if not isinstance(exc, Exception):
                    raise
                raise self._wrap(exc, url, limit, sent_anything) from exc
            connection.set_flight(None)
            if response.will_close:
                connection.close()
            else:
                self._release(connection)
            if answer.status in _REDIRECTS:
                location = answer.headers.get("Location", "")
                shown = quote(location, secrets=self._secrets, limit=120)
                raise RedirectRefused(
                    f"{self._where(url)}: answered HTTP {answer.status}, a redirect to {shown}, which is never "
                    "followed (credentials must not travel to another address); point the URL at the service itself",
                    status=answer.status,
                    location=redact(location, self._secrets),
                )
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, response: http.client.HTTPResponse, url: str, method: str) -> HttpResponse:
        # A HEAD answer, a 1xx, 204 or 304 has no body whatever its Content-Length says (RFC 9110, 6.4.1).
        bodiless = method.upper() == "HEAD" or response.status < 200 or response.status in (204, 304)
        declared = "" if bodiless else (response.getheader("Content-Length") or "").strip()
        too_large = (
            declared.isascii()
            and declared.isdigit()
            and (len(declared) > 18 or int(declared) > self.max_response_bytes)
        )
        if too_large:
            raise ResponseTooLarge(
                f"{self._where(url)}: the answer announces {quote(declared, limit=24)} bytes, more than the "
                f"limit of {self.max_response_bytes} bytes; raise max_response_bytes if it is expected",
                limit=self.max_response_bytes,
            )
        # One buffer, not a list of chunks joined at the end: BytesIO grows its bytes object in place and
        # getvalue() hands that very object over, so the body is held once (a join holds it twice, which at
        # 100k Consul instances was the whole of a plan's peak memory). Chunks still bound the read by size.
        body = io.BytesIO()
        size = 0
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ResponseTooLarge(
                    f"{self._where(url)}: the answer is larger than the limit of {self.max_response_bytes} bytes; "
                    "raise max_response_bytes if it is expected",
                    limit=self.max_response_bytes,
                )
            body.write(chunk)
            del chunk
        if declared.isascii() and declared.isdigit() and size < int(declared):
            raise http.client.IncompleteRead(b"", int(declared) - size)
        return HttpResponse(
            status=response.status,
            reason=response.reason,
            headers=response.headers,
            body=body.getvalue(),
            url=url,
        )

    # -- connection pool --------------------------------------------------------------------------------------------

    def _connection(self) -> tuple[_Connection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        connection = _Connection(
            self.host, self.port, connect_to=self._connect_to, context=self._context, timeout=self.timeout
        )
        return connection, False

    def _release(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    # -- errors -----------------------------------------------------------------------------------------------------

    def _where(self, url: str) -> str:
        via = f" (connecting to {format_host(self._connect_to)})" if self._connect_to else ""
        return f"{redact(url, self._secrets)}{via}"

    def _aborted(self, flight: _Flight, url: str, limit: float) -> TransportError:
        if flight.aborted == "stop":
            return TransportStopped(f"{self._where(url)}: stopped while the request was in flight")
        return TransportTimeout(
            f"{self._where(url)}: no complete answer within {limit:g}s (the whole request: connect, headers and "
            "body); check that the server is up and not overloaded, or raise the timeout"
        )

    def _wrap(self, exc: Exception, url: str, limit: float, sent: bool) -> TransportError:
        where = self._where(url)
        reason = quote(f"{type(exc).__name__}: {exc}", secrets=self._secrets, limit=160)
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, ssl.SSLCertVerificationError):
            return TransportTLSError(
                f"{where}: the server's certificate does not verify ({reason}); trust its CA (a CA bundle), "
                "or, for a self-signed certificate you accept, turn verification off",
                verify_failed=True,
            )
        if isinstance(exc, ssl.SSLError):
            plain = "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc)
            hint = "the server speaks plain HTTP: use http://" if plain else "check the server's TLS set-up"
            return TransportTLSError(f"{where}: the TLS handshake failed ({reason}); {hint}", plain_http=plain)
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransportTimeout(
                f"{where}: no complete answer within {limit:g}s; check that the server is up and not overloaded, "
                "or raise the timeout"
            )
        if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)) or (
            sent and isinstance(exc, ConnectionError)
        ):
            return TransportConnectionError(
                f"{where}: the server closed the connection before a complete answer ({reason}); check the server "
                "and anything between (a proxy, a load balancer)"
            )
        if isinstance(exc, (http.client.HTTPException, ValueError, UnicodeError)):
            return TransportProtocolError(
                f"{where}: the answer is not well-formed HTTP ({reason}); check that the URL points at the "
                "service and not at something else listening there"
            )
        if isinstance(exc, OSError):
            return TransportConnectionError(
                f"{where}: cannot connect ({reason}); check that the server listens there and the network between"
            )
        return TransportProtocolError(f"{where}: the request failed ({reason})")
