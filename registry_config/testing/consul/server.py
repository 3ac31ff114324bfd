"""The HTTP surface: a loopback server that reads a request, hands it to a ``respond`` callable, writes the reply.

Only the two endpoints a stager reads are served (``GET
/v1/catalog/service/<name>`` and ``GET /v1/health/service/<name>``, see
:func:`route`); other methods are ``405``. What to answer is decided by the
callable the server is given (the simulator's); the server's job is the
transport around it: writing a reply, or closing the connection without
one (a dropped or hung request, a simulator shutting down), and staying
silent: a request line may carry ``?token=``, which must not reach stderr.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

__all__ = ["TEXT", "Reply", "Server", "route", "server_for"]

TEXT = "text/plain; charset=utf-8"
_ENDPOINTS = (("/v1/catalog/service/", "catalog"), ("/v1/health/service/", "health"))


@attrs.frozen
class Reply:
    """What to send back: a status, headers and body; ``status=None`` closes the connection without a byte."""

    status: int | None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""


DROP = Reply(None)

Respond = Callable[[str, list[tuple[str, str]], tuple[tuple[str, str], ...]], Reply]
"""``respond(path, query, headers)``: the query as ``(name, value)`` pairs, the headers as received."""


def route(path: str) -> tuple[str, str] | None:
    """``(kind, service)`` for a service endpoint (the name URL-decoded, as Go's ``URL.Path``), else None."""
    for prefix, kind in _ENDPOINTS:
        if path.startswith(prefix):
            return kind, urllib.parse.unquote(path[len(prefix) :])
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    respond: Respond

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here (timeouts, dropped watches): stay quiet."""


class _Server6(Server):
    address_family = socket.AF_INET6


def server_for(host: str, respond: Respond) -> Server:
    """A server listening on a free port of ``host`` (IPv4 or IPv6), answering with ``respond``."""
    server = (_Server6 if ":" in host else Server)((host, 0), _Handler)
    server.respond = respond
    return server


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.0"
    server_version = "ConsulSimulator"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line may carry ``?token=``, which must not reach stderr."""

    def do_GET(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        reply = self.server.respond(split.path, query, tuple(self.headers.items()))
        if reply.status is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply)

    def _not_allowed(self) -> None:
        self._send(Reply(405, {"Content-Type": TEXT, "Allow": "GET"}, b"method not allowed\n"))

    do_PUT = do_POST = do_DELETE = _not_allowed

    def _send(self, reply: Reply) -> None:
        assert reply.status is not None
        try:
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client left; Consul does not mind either
