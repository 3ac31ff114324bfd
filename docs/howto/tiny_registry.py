"""A stand-in for a Docker registry on loopback: it answers ``GET /v2/`` as the distribution registry does.

The how-to "Run an insecure registry safely" probes it, so that its examples
run anywhere; with a real registry, probe that instead. ``TinyRegistry()``
starts serving plain HTTP at once, ``TinyRegistry(context)`` HTTPS with the
``ssl.SSLContext`` given; ``url`` says where it listens and ``close()`` stops it.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _V2(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"{}" if self.path == "/v2/" else b"404 page not found\n"
        self.send_response(200 if self.path == "/v2/" else 404)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the examples print what the probe says, not the server's log."""


class TinyRegistry:
    """A loopback registry stand-in; ``url`` is where it listens, ``close()`` stops it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _V2)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
