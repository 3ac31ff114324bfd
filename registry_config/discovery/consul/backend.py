"""``ConsulBackend``: the registry's instances as Consul lists them, and a watch on them.

It ties the parts of this package together: :mod:`.settings` decides what
is asked and of which agent, :mod:`.transport` asks it, :mod:`.answers`
reads the status, headers and body, :mod:`.reader` turns entries into
instances, and :mod:`.watch` repeats the question with blocking queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ...errors import InvalidInput
from ...redact import quote
from ...resolver import Resolver
from ..backend import BackendBase, StopSignal
from ..model import Discovery, ServiceQuery
from .answers import decode_entries, parse_index, raise_for_status
from .reader import EntryReader
from .settings import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_WATCH_BURST,
    DEFAULT_WATCH_INTERVAL,
    DEFAULT_WATCH_WAIT,
    ConsulSettings,
    agent_from_url,
)
from .transport import ConsulTransport
from .watch import watch_service

__all__ = ["ConsulBackend"]

_SERVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


class ConsulBackend(BackendBase):
    """The registry's instances as Consul's catalog (or health endpoint) lists them.

    ``url`` is the Consul agent's HTTP API (``http://127.0.0.1:8500``, or
    ``https://...:8501``); by default ``CONSUL_HTTP_ADDR``, else the local
    agent. ``token`` is an ACL token; by default ``CONSUL_HTTP_TOKEN_FILE``'s
    or ``CONSUL_HTTP_TOKEN``. ``verify`` (a bool, or a CA bundle path) and
    ``cert`` (a client certificate path, or a ``(cert, key)`` pair) apply to
    HTTPS; by default ``CONSUL_HTTP_SSL_VERIFY``, ``CONSUL_CACERT`` and
    ``CONSUL_CLIENT_CERT``/``CONSUL_CLIENT_KEY``. Explicit arguments always
    win over the environment.

    ``datacenter`` overrides the query's. ``passing_only=True`` asks
    ``/v1/health/service/<name>?passing`` (instances whose checks all pass,
    so neither a node nor a service in maintenance); ``False`` asks
    ``/v1/catalog/service/<name>`` as the seed did. ``consistency`` is
    ``"default"``, ``"stale"`` (any server answers, also without a leader:
    the setting for many stagers) or ``"consistent"``; ``cached=True`` uses
    the agent's cache (not with ``"consistent"``, which Consul refuses).
    ``address`` picks which address an instance gets: ``"service"``
    (``ServiceAddress``, else the node's ``Address``), ``"node"``, or a tagged
    address, ``"lan"``, ``"wan"``, ``"lan_ipv4"``, ``"wan_ipv4"``,
    ``"lan_ipv6"``, ``"wan_ipv6"`` (the service's own first, then the node's,
    as Consul does). ``filter`` is a Consul filter expression sent as is; one
    Consul refuses is a :class:`~registry_config.errors.DiscoveryQueryError`.
    ``resolver`` turns a host name address into IPs (default: the system's).

    ``timeout`` bounds every request in seconds (10 s, above the servers' 7 s
    ``rpc_hold_timeout``; a blocking query adds its wait and Consul's jitter,
    ``wait/16``), ``max_response_bytes`` the size of an answer (256 MiB).
    ``watch_wait`` is the ``wait`` of each blocking query (5 minutes, Consul's
    default: an idle watch costs one request per ``watch_wait``); under churn
    a watch makes ``watch_burst`` queries at once, then one per
    ``watch_min_interval`` seconds; ``watch_max_backoff`` caps the wait after
    failures. Setting ``stop`` ends a watch within about a second, even
    while Consul holds its query.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        datacenter: str | None = None,
        passing_only: bool = True,
        consistency: str = "default",
        cached: bool = False,
        verify: bool | str | None = None,
        cert: str | tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        address: str = "service",
        filter: str | None = None,
        resolver: Resolver | None = None,
        watch_wait: float = DEFAULT_WATCH_WAIT,
        watch_min_interval: float = DEFAULT_WATCH_INTERVAL,
        watch_burst: int = DEFAULT_WATCH_BURST,
        watch_max_backoff: float = 30.0,
    ) -> None:
        self._settings = settings = ConsulSettings.make(
            url,
            token=token,
            verify=verify,
            cert=cert,
            datacenter=datacenter,
            passing_only=passing_only,
            consistency=consistency,
            cached=cached,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            address=address,
            filter=filter,
            watch_wait=watch_wait,
            watch_min_interval=watch_min_interval,
            watch_burst=watch_burst,
            watch_max_backoff=watch_max_backoff,
        )
        self._secrets: tuple[str, ...] = (settings.token,) if settings.token is not None else ()
        self._reader = EntryReader(
            address=settings.address, passing_only=settings.passing_only, resolver=resolver, secrets=self._secrets
        )
        self._transport = ConsulTransport(settings)

    # -- what it is -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The Consul agent's base URL (never with a token)."""
        return self._settings.url

    @property
    def has_token(self) -> bool:
        """Whether requests carry an ACL token (its value is not readable here)."""
        return self._settings.token is not None

    @property
    def datacenter(self) -> str | None:
        """The datacenter asked, overriding the query's (``None``: the query's, else the agent's)."""
        return self._settings.datacenter

    @property
    def passing_only(self) -> bool:
        """Whether the health endpoint is asked with ``?passing`` (else the catalog)."""
        return self._settings.passing_only

    @property
    def consistency(self) -> str:
        """``"default"``, ``"stale"`` or ``"consistent"``."""
        return self._settings.consistency

    @property
    def cached(self) -> bool:
        """Whether the agent's cache answers (``?cached``)."""
        return self._settings.cached

    @property
    def timeout(self) -> float:
        """Seconds a request may take (a blocking query adds its wait and Consul's jitter)."""
        return float(self._settings.timeout)

    @property
    def max_response_bytes(self) -> int:
        """The largest answer read, in bytes."""
        return self._settings.max_response_bytes

    @property
    def address(self) -> str:
        """Which address an instance gets (see the class docstring)."""
        return self._settings.address

    @property
    def filter(self) -> str | None:
        """The Consul filter expression sent, if any."""
        return self._settings.filter

    @property
    def watch_wait(self) -> float:
        """The ``wait`` of a watch's blocking queries, in seconds."""
        return float(self._settings.watch_wait)

    @property
    def watch_min_interval(self) -> float:
        """Under churn, the seconds between two queries of a watch once its burst is spent."""
        return float(self._settings.watch_min_interval)

    @property
    def watch_burst(self) -> int:
        """How many queries a watch may make at once before it is paced."""
        return self._settings.watch_burst

    def __repr__(self) -> str:
        options = [repr(self.url)]
        if self.has_token:
            options.append("token=<redacted>")
        for name, value, default in (
            ("datacenter", self.datacenter, None),
            ("passing_only", self.passing_only, True),
            ("consistency", self.consistency, "default"),
            ("cached", self.cached, False),
            ("verify", self._settings.verify, True),
            ("timeout", self.timeout, DEFAULT_TIMEOUT),
            ("address", self.address, "service"),
            ("filter", self.filter, None),
        ):
            if value != default:
                shown = quote(value, secrets=self._secrets, limit=120) if isinstance(value, str) else repr(value)
                options.append(f"{name}={shown}")
        return f"ConsulBackend({', '.join(options)})"

    def close(self) -> None:
        """Close the pooled connections; safe to call more than once."""
        self._transport.close()

    # -- the backend URL ------------------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, *, resolver: Resolver | None = None) -> ConsulBackend:
        """A backend from ``consul://HOST[:PORT]?dc=..&passing=..`` or ``consul+https://...``.

        Query keys: ``dc``, ``passing`` (true/false), ``consistency``,
        ``cached``, ``timeout`` (seconds), ``max_response_bytes``, ``address``,
        ``filter``, ``token_file`` (a file holding the ACL token), ``verify``
        (true, false or a CA bundle path), ``cert`` and ``key`` (client
        certificate), ``watch_wait`` and ``watch_min_interval`` (seconds).
        ``consul://`` without a host means ``CONSUL_HTTP_ADDR``, else the
        local agent. A token is never accepted in the URL itself, which shows
        in process lists, shell history and logs: use ``token_file`` or
        ``CONSUL_HTTP_TOKEN``.
        """
        agent, kwargs = agent_from_url(url)
        return cls(agent, resolver=resolver, **kwargs)

    # -- discovering --------------------------------------------------------------------------------------------

    def discover(self, query: ServiceQuery) -> Discovery:
        """The instances Consul lists now for ``query``: one non-blocking read."""
        return self._fetch(query, None, None)

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """Yield the instances now, then again each time they change, using Consul blocking queries.

        The first error propagates (there is nothing to stage from yet), and
        so does a query Consul refuses; other errors are logged and retried
        with backoff. See :mod:`registry_config.discovery.consul.watch`.
        """
        self._check(query)
        settings = self._settings
        return watch_service(
            lambda index, signal: self._fetch(query, index, signal),
            query,
            stop=stop,
            wait=settings.watch_wait,
            interval=settings.watch_min_interval,
            burst=settings.watch_burst,
            max_backoff=settings.watch_max_backoff,
            where=self.url,
        )

    def _check(self, query: ServiceQuery) -> None:
        if not isinstance(query, ServiceQuery):
            raise InvalidInput(f"consul backend: expected a ServiceQuery, got {type(query).__name__}")
        if not _SERVICE_NAME.match(query.name):
            raise InvalidInput(
                f"consul backend: {quote(query.name, limit=80)} is not a Consul service name "
                "(letters, digits, '_', '-' and '.')"
            )

    def _fetch(self, query: ServiceQuery, index: int | None, stop: StopSignal | None) -> Discovery:
        self._check(query)
        settings = self._settings
        name = query.name
        datacenter = settings.datacenter or query.datacenter
        endpoint = "health" if settings.passing_only else "catalog"
        path = f"/v1/{endpoint}/service/{name}"
        params: list[tuple[str, str]] = []
        if datacenter:
            params.append(("dc", datacenter))
        params.extend(("tag", tag) for tag in query.tags)
        if settings.passing_only:
            params.append(("passing", "1"))
        if settings.consistency != "default":
            params.append((settings.consistency, "1"))
        if settings.cached:
            params.append(("cached", "1"))
        if settings.filter:
            params.append(("filter", settings.filter))
        timeout = settings.timeout
        if index is not None and index >= 1:
            wait = settings.watch_wait
            params.extend((("index", str(index)), ("wait", f"{wait:g}s")))
            timeout += wait + wait / 16  # Consul holds the query up to wait plus wait/16 of jitter
        headers = {"X-Consul-Token": settings.token} if settings.token is not None else {}
        where = f"Consul at {self.url}, service {name!r}" + (f" in datacenter {datacenter!r}" if datacenter else "")
        answer = self._transport.get(
            path, params, headers, timeout=timeout, stop=stop, where=where, stale=settings.consistency == "stale"
        )
        return self._interpret(query, answer.code, answer.headers, answer.body, where, endpoint)

    def _interpret(
        self, query: ServiceQuery, code: int, headers: Any, body: str | bytes, where: str, endpoint: str
    ) -> Discovery:
        secrets = self._secrets
        if code != 200:
            raise_for_status(code, body, where, secrets, filter=self._settings.filter)
        index = parse_index(headers.get("X-Consul-Index"), where, secrets)
        warnings: list[str] = []
        if index is None:
            warnings.append(f"{where}: the answer has no X-Consul-Index header; is this a Consul agent?")
        data = decode_entries(body, where, secrets)
        if str(headers.get("X-Consul-Results-Filtered-By-ACLs", "")).lower() == "true":
            warnings.append(
                f"{where}: Consul's ACLs hid some entries, so this list may be partial; check that the token's "
                f"policy grants service:read on {query.name!r} and node:read on the nodes running it"
            )
        if str(headers.get("X-Consul-KnownLeader", "true")).lower() == "false":
            warnings.append(f"{where}: the Consul servers have no known leader; this answer may be out of date")
        instances = self._reader.read(query, data, where, endpoint == "health", warnings)
        source = f"consul {self.url}/v1/{endpoint}/service/{query.name}"
        return Discovery(query, instances, source=source, index=index, warnings=warnings)
