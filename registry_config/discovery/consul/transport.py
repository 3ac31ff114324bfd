"""How requests reach the agent: py-consul's HTTP client interface over the library's bounded reader.

py-consul (extra ``consul``) builds its HTTP client in ``Consul.http_connect``;
here that client is :class:`registry_config.http.HttpClient`, so that every
Consul request is bounded as the library promises (``registry_config.http``):

- ``timeout`` bounds the whole request (a blocking query's is
  ``wait + wait/16 + timeout``: Consul holds it up to the wait plus jitter);
- an answer above ``max_response_bytes`` is refused, never buffered whole;
- a redirect is not followed (the token would travel to the other host): it
  is a :class:`DiscoveryProtocolError` naming, redacted, where it pointed;
- no proxy variable is read (the agent is local; a proxy would see the token);
- a ``stop`` signal shuts the connection down from the stopping side, so a
  watch stops within a fraction of a second while Consul holds its query.

A failure below HTTP becomes :class:`DiscoveryUnavailable` (or
:class:`DiscoveryProtocolError` for garbled HTTP) saying what to check; a
timeout on a read that needs the leader says that the cluster may have
none, and that ``consistency="stale"`` is served without one. A missing
py-consul is :class:`MissingDependencyError` naming the extra.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...errors import DiscoveryError, DiscoveryProtocolError, DiscoveryUnavailable, InvalidInput, MissingDependencyError
from ...http import (
    HttpClient,
    HttpResponse,
    RedirectRefused,
    ResponseTooLarge,
    TransportConnectionError,
    TransportError,
    TransportStopped,
    TransportTimeout,
    TransportTLSError,
)
from ..backend import StopSignal
from .settings import ConsulSettings

__all__ = ["Answer", "ConsulTransport", "consul_module"]

INSTALL_HINT = "pip install 'registry-config[consul]'"


class Answer(NamedTuple):
    """One HTTP answer: py-consul's ``Response`` shape (``code``, ``headers``, ``body``)."""

    code: int
    headers: Any
    body: bytes


def consul_module() -> Any:
    """The ``consul`` package (py-consul), imported only when a Consul backend is made."""
    try:
        import consul
        import consul.base
    except ImportError as exc:
        raise MissingDependencyError(
            f"the consul discovery backend needs the py-consul package, which is not installed: {INSTALL_HINT}"
        ) from exc
    return consul


@functools.cache
def _client_classes(consul: Any) -> tuple[type[Any], type[Any]]:
    """py-consul's ``Consul`` and ``HTTPClient`` as subclasses whose HTTP goes through :class:`HttpClient`."""

    class BoundedHTTPClient(consul.base.HTTPClient):  # type: ignore[misc]
        """py-consul's HTTP client interface (``get``/``put``/``delete``/``post``) over one :class:`HttpClient`.

        Each call takes the extra keywords ``timeout`` (the whole request) and
        ``stop``; the callback gets py-consul's ``Response(code, headers,
        body)``, the body as text, or as bytes with ``raw=True``.
        """

        def __init__(self, http: HttpClient, *args: Any) -> None:
            super().__init__(*args)
            self.http = http

        def _call(
            self,
            method: str,
            callback: Any,
            path: str,
            params: Sequence[tuple[str, Any]] | None,
            headers: Mapping[str, str] | None,
            data: str | bytes | None,
            raw: bool,
            timeout: float | None,
            stop: StopSignal | None,
        ) -> Any:
            body = data.encode() if isinstance(data, str) else data
            response: HttpResponse = self.http.request(
                method,
                urllib.parse.quote(path, safe="/:"),
                params=[(str(key), str(value)) for key, value in params or ()],
                headers=headers,
                body=body if method != "GET" else None,
                timeout=timeout,
                stop=stop,
            )
            payload: str | bytes = response.body if raw else response.text()
            return callback(consul.base.Response(response.status, response.headers, payload))

        def get(
            self, callback: Any, path: str, params: Any = None, headers: Any = None, raw: bool = False, **kw: Any
        ) -> Any:
            return self._call("GET", callback, path, params, headers, None, raw, kw.get("timeout"), kw.get("stop"))

        def put(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._call("PUT", callback, path, params, headers, data, False, None, None)

        def delete(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._call("DELETE", callback, path, params, headers, data, False, None, None)

        def post(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._call("POST", callback, path, params, headers, data, False, None, None)

        def close(self) -> None:
            self.http.close()

    class BoundedConsul(consul.base.Consul):  # type: ignore[misc]
        """py-consul's ``Consul`` whose ``http_connect`` hands out the bounded client."""

        def __init__(self, http: HttpClient, **kwargs: Any) -> None:
            self._bounded = http
            super().__init__(**kwargs)

        def http_connect(self, host: str, port: int, scheme: str, verify: Any = True, cert: Any = None) -> Any:
            return BoundedHTTPClient(self._bounded, host, port, scheme, verify, cert)

    return BoundedConsul, BoundedHTTPClient


def timeout_hint(stale: bool) -> str:
    """What a timeout may mean: without ``stale``, a read waits for the leader."""
    if stale:
        return "check that the agent is up and not overloaded, or raise timeout="
    return (
        "the cluster may have no leader (a default or consistent read waits for one, up to the servers' "
        "rpc_hold_timeout of 7 s, then fails): check the Consul servers, or use consistency='stale' (any server "
        "answers it, without a leader); else check that the agent is up and not overloaded, or raise timeout="
    )


_REASONS = ("connection refused", "connection reset", "timed out", "closed the connection", "name or service not known")


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words."""
    text = str(exc).lower()
    return next((reason for reason in _REASONS if reason in text), type(exc).__name__)


def _detached(exc: TransportError) -> TransportError:
    """``exc`` without the lower exception it wraps, whose text (a garbled status line...) was never redacted."""
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return exc


class ConsulTransport:
    """GET requests to one agent through py-consul's HTTP client interface, failures as discovery errors."""

    def __init__(self, settings: ConsulSettings) -> None:
        consul = consul_module()
        self._settings = settings
        try:
            self._http = HttpClient(
                settings.url,
                verify=settings.verify,
                cert=settings.cert,
                timeout=settings.timeout,
                max_response_bytes=settings.max_response_bytes,
                secrets=(settings.token,) if settings.token is not None else (),
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a CA or key file that is not PEM
            raise InvalidInput(
                f"consul backend: cannot set up TLS for {settings.url} ({type(exc).__name__}); check verify= "
                "(CONSUL_CACERT) and cert= (CONSUL_CLIENT_CERT/KEY): PEM files, the key matching the certificate"
            ) from None
        bounded_consul, _ = _client_classes(consul)
        # Only the HTTP client is kept: py-consul's Consul object holds itself in reference cycles (its kv,
        # catalog... point back at it), which would leave the pooled sockets to the cyclic garbage collector.
        self._client_http = bounded_consul(
            self._http, host=settings.host, port=settings.port, scheme=settings.scheme, verify=settings.verify
        ).http

    def get(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        *,
        timeout: float,
        stop: StopSignal | None,
        where: str,
        stale: bool,
    ) -> Answer:
        """One GET; ``timeout`` bounds it whole (a blocking query's includes its wait)."""
        try:
            response = self._client_http.get(
                lambda r: r, path, params=list(params), headers=dict(headers), raw=True, timeout=timeout, stop=stop
            )
        except TransportError as exc:
            raise self._error(_detached(exc), where, timeout, stale) from exc
        except Exception as exc:  # a py-consul internal failure must not escape unwrapped  # noqa: BLE001
            raise DiscoveryUnavailable(
                f"{where}: the Consul client failed ({type(exc).__name__}); check the agent URL and py-consul"
            ) from None
        return Answer(int(response.code), response.headers, response.body)

    def _error(self, exc: TransportError, where: str, timeout: float, stale: bool) -> DiscoveryError:
        if isinstance(exc, TransportStopped):
            return DiscoveryUnavailable(f"{where}: the request was stopped (the watch is ending)")
        if isinstance(exc, TransportTimeout):
            return DiscoveryUnavailable(f"{where}: no answer within {timeout:g}s; {timeout_hint(stale)}")
        if isinstance(exc, RedirectRefused):
            return DiscoveryProtocolError(
                f"{where}: answered HTTP {exc.status}, a redirect to {_quoted(exc.location)}, which is not "
                "followed (the ACL token must not travel to another address); point the backend at the Consul "
                "agent itself"
            )
        if isinstance(exc, ResponseTooLarge):
            return DiscoveryProtocolError(
                f"{where}: the answer is larger than max_response_bytes={exc.limit}; if the catalog is really that "
                "large, raise max_response_bytes= (also a consul:// URL option)"
            )
        if isinstance(exc, TransportTLSError):
            if exc.plain_http:
                hint = "the agent speaks plain HTTP there: check the URL's scheme (http://, consul://)"
            elif exc.verify_failed:
                hint = "the agent's certificate does not verify: check verify= (a CA bundle, or CONSUL_CACERT)"
            else:
                hint = "check the agent's certificate, verify= (a CA bundle) and cert="
            return DiscoveryUnavailable(f"{where}: the TLS handshake failed; {hint} ({exc})")
        if isinstance(exc, TransportConnectionError):
            return DiscoveryUnavailable(
                f"{where}: cannot connect or the connection was dropped ({_reason(exc)}); check that a Consul "
                "agent listens there and the network between"
            )
        return DiscoveryProtocolError(
            f"{where}: the answer is not well-formed HTTP; check that the URL points at a Consul agent ({exc})"
        )

    def close(self) -> None:
        self._http.close()


def _quoted(text: str) -> str:
    """Already redacted by the transport; shown quoted and printable."""
    return repr(re.sub(r"\s+", " ", text)[:120])
