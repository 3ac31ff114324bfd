"""How requests reach the agent: py-consul's HTTP client interface, and what a failed request means.

``ConsulTransport`` asks the agent through ``py-consul`` (extra ``consul``);
a missing py-consul is :class:`MissingDependencyError` naming the extra.
A request that fails before an answer is :class:`DiscoveryUnavailable`
saying what happened and what to check; a timeout on a read that needs the
leader says that the cluster may have none, and that ``consistency="stale"``
is served without one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...errors import DiscoveryUnavailable, MissingDependencyError
from ..backend import StopSignal
from .settings import ConsulSettings

__all__ = ["Answer", "ConsulTransport", "consul_module"]

INSTALL_HINT = "pip install 'registry-config[consul]'"


class Answer(NamedTuple):
    """One HTTP answer: py-consul's ``Response`` shape (``code``, ``headers``, ``body``)."""

    code: int
    headers: Mapping[str, str]
    body: str | bytes


def consul_module() -> Any:
    """The ``consul`` package (py-consul), imported only when a Consul backend is made."""
    try:
        import consul
    except ImportError as exc:
        raise MissingDependencyError(
            f"the consul discovery backend needs the py-consul package, which is not installed: {INSTALL_HINT}"
        ) from exc
    return consul


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (urllib3 nests the real cause deep inside)."""
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Connection aborted", "Remote end closed", "timed out"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__


def timeout_hint(stale: bool) -> str:
    """What a timeout may mean: without ``stale``, a read waits for the leader."""
    if stale:
        return "check that the agent is up and not overloaded, or raise timeout="
    return (
        "the cluster may have no leader (a default or consistent read waits for one, up to the servers' "
        "rpc_hold_timeout of 7 s, then fails): check the Consul servers, or use consistency='stale', which any "
        "server answers without a leader; else check that the agent is up and not overloaded, or raise timeout="
    )


class ConsulTransport:
    """GET requests to one agent through py-consul, failures turned into :class:`DiscoveryUnavailable`."""

    def __init__(self, settings: ConsulSettings) -> None:
        consul = consul_module()
        self._settings = settings
        try:
            self._client = consul.Consul(
                host=settings.host,
                port=settings.port,
                scheme=settings.scheme,
                verify=settings.verify,
                cert=settings.cert,
                connections_timeout=settings.timeout,
            )
        except TypeError as exc:  # a py-consul without connections_timeout would make calls without a timeout
            raise MissingDependencyError(
                f"the consul discovery backend needs py-consul 1.8 or later (request timeouts): {INSTALL_HINT} -U"
            ) from exc

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
        import requests

        try:
            response = self._client.http.get(lambda r: r, path, params=list(params), headers=dict(headers))
        except requests.exceptions.SSLError as exc:
            raise DiscoveryUnavailable(
                f"{where}: the TLS handshake failed ({type(exc).__name__}); check the agent's certificate, "
                "verify= (a CA bundle) and cert="
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise DiscoveryUnavailable(
                f"{where}: no answer within {self._settings.timeout:g}s; {timeout_hint(stale)}"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise DiscoveryUnavailable(
                f"{where}: cannot connect or the connection was dropped ({_reason(exc)}); check that a Consul "
                "agent listens there and the network between"
            ) from exc
        except Exception as exc:  # a py-consul internal failure must not escape unwrapped
            raise DiscoveryUnavailable(
                f"{where}: the Consul client failed ({type(exc).__name__}); check the agent URL and py-consul"
            ) from exc
        return Answer(int(response.code), response.headers, response.body)

    def close(self) -> None:
        session = getattr(self._client.http, "session", None)
        if session is not None:
            session.close()
