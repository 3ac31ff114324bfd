"""The HTTP surface: a loopback server whose handler records each request, applies faults and routes it.

Only the two endpoints a stager reads are served (``GET
/v1/catalog/service/<name>`` and ``GET /v1/health/service/<name>``); the
answer itself comes from :meth:`ConsulSimulator._answer`. The handler's job is
what sits around it: the token's precedence (``?token=``, ``X-Consul-Token``,
``Authorization: Bearer``, agent/http.go ``parseTokenInternal``), a log that
never holds a token's value, the queued faults, and closing connections
cleanly when the simulator stops. Nothing is written to stderr: a request
line may carry ``?token=``.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .params import token_from
from .recording import RecordedRequest

if TYPE_CHECKING:
    from .simulator import ConsulSimulator

__all__ = ["Server", "Server6"]

_ENDPOINTS = {"/v1/catalog/service/": "catalog", "/v1/health/service/": "health"}
_REDACTED_HEADERS = ("x-consul-token", "authorization")
TEXT = "text/plain; charset=utf-8"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    simulator: ConsulSimulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here (timeouts, dropped watches): stay quiet."""


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"
    server_version = "ConsulSimulator"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line may carry ``?token=``, which must not reach stderr."""

    def do_GET(self) -> None:
        sim = self.server.simulator
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        headers = dict(self.headers.items())
        secret, source = token_from(query, headers)
        slot = sim._log.open(
            RecordedRequest(
                method="GET",
                path=split.path,
                query=tuple((key, "<redacted>" if key == "token" else value) for key, value in query),
                headers=tuple(
                    (key, "<redacted>" if key.lower() in _REDACTED_HEADERS else value)
                    for key, value in self.headers.items()
                ),
                token=sim._acl.name_of(secret),
                token_source=source,
            )
        )
        fault = sim._faults.take(split.path)
        fault_kind = fault.kind if fault is not None else None
        if fault is not None:
            if fault.kind == "drop":
                sim._log.update(slot, status=None, fault="drop", done=True)
                self._drop()
                return
            if fault.kind == "hang":
                sim._log.update(slot, status=None, fault="hang", done=False)
                sim._closing.wait(fault.seconds)
                sim._log.update(slot, status=None, fault="hang", done=True)
                self._drop()
                return
            if fault.kind == "delay":
                sim._closing.wait(fault.seconds)
            elif fault.kind in ("error", "raw"):
                body = fault.body.encode() if isinstance(fault.body, str) else fault.body
                answer_headers = {"Content-Type": fault.content_type}
                if fault.kind == "raw":
                    answer_headers.update({"X-Consul-Index": str(max(1, sim.index)), "X-Consul-KnownLeader": "true"})
                    answer_headers.update(fault.headers)
                sim._log.update(slot, status=fault.status, fault=fault.kind, done=True)
                self._send(fault.status, answer_headers, body)
                return
        kind = next((name for prefix, name in _ENDPOINTS.items() if split.path.startswith(prefix)), None)
        if kind is None:
            sim._log.update(slot, status=404, fault=fault_kind, done=True)
            self._send(404, {"Content-Type": TEXT}, b"404 page not found\n")
            return
        prefix = next(prefix for prefix, name in _ENDPOINTS.items() if name == kind)
        service = urllib.parse.unquote(split.path[len(prefix) :])
        rest = [(key, value) for key, value in query if key != "token"]
        try:
            status, answer_headers, body = sim._answer(kind, service, rest, secret)
        except Exception as exc:  # noqa: BLE001 (a simulator bug shows as a 500 naming it, not as a dropped connection)
            status, answer_headers = 500, {"Content-Type": TEXT}
            body = f"ConsulSimulator internal error: {type(exc).__name__}: {exc}".encode()
        sim._log.update(slot, status=status, fault=fault_kind, done=True)
        if sim._closing.is_set():
            self._drop()
            return
        self._send(status, answer_headers, body)

    def _not_allowed(self) -> None:
        self._send(405, {"Content-Type": TEXT, "Allow": "GET"}, b"method not allowed\n")

    do_PUT = do_POST = do_DELETE = _not_allowed

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client left; Consul does not mind either

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
