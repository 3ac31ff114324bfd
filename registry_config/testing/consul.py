"""A Consul agent for tests: the catalog and health service endpoints, over real HTTP on loopback.

Consul cannot be installed everywhere a stager's tests run, and a mock at the
Python level would let a client's HTTP handling (status codes, headers,
plain-text error bodies, timeouts) go untested. :class:`ConsulSimulator`
answers like the documented Consul HTTP API, so the real ``py-consul`` client
(or any other) can be pointed at ``sim.url``::

    from registry_config.testing.consul import ConsulSimulator

    with ConsulSimulator() as sim:
        sim.register("docker_registry", "10.0.0.5", node="cell-1")   # ServicePort 0
        sim.register("docker_registry", "10.0.0.6", node="cell-2")
        backend = ConsulBackend(sim.url)
        ...

What it speaks (``GET`` only):

- ``/v1/catalog/service/<service>`` and ``/v1/health/service/<service>``,
  answering the entries registered, in the JSON shapes Consul documents.
- ``dc`` (an unknown one answers ``500 No path to datacenter``), ``tag``
  (repeatable: every tag must match), ``passing`` (health only: every check
  of the entry passing), ``filter`` (the subset of Consul's filter language
  described below), ``stale``, ``consistent`` (both: ``400``), ``cached``
  (``X-Cache: MISS`` then ``HIT`` with ``Age`` until the data changes).
- Blocking queries: ``?index=N&wait=D`` holds the request until the index is
  no longer ``N`` or ``D`` passes (Go durations: ``"5s"``, ``"1m30s"``; default
  5m, at most 10m; with ``jitter=True`` up to ``D/16`` more). One global index
  is bumped by every change, so it is at least 1 and only goes backwards
  through :meth:`ConsulSimulator.reset_index`; a request waiting on an index
  above the current one (after a reset) is answered at once, as a client that
  resets its index expects.
- Headers: ``Content-Type: application/json``, ``X-Consul-Index``,
  ``X-Consul-KnownLeader``, ``X-Consul-LastContact``,
  ``X-Consul-Effective-Consistency``; ``X-Cache`` and ``Age`` with ``?cached``;
  ``X-Consul-Results-Filtered-By-ACLs: true`` when ACLs hid entries.
  Errors are ``text/plain`` bodies, as Consul sends them.
- No leader (``sim.known_leader = False``): default and consistent reads
  answer ``500 No cluster leader``; ``?stale`` reads are served, with
  ``X-Consul-KnownLeader: false``.
- ACLs, off until the first :meth:`ConsulSimulator.add_token`: the token is
  read from ``X-Consul-Token`` or ``?token=``; an unknown one answers
  ``403 ACL not found``; a token made with ``deny=True`` answers
  ``403 Permission denied``; otherwise, like Consul, the catalog and health
  endpoints do not refuse but filter: entries of services or nodes the token
  may not read are left out and the answer says so in
  ``X-Consul-Results-Filtered-By-ACLs``. Without a token, the anonymous
  token's services (``anonymous_services``, none by default) apply.

The filter language subset: selectors are dotted paths into the entry as the
endpoint returns it (``ServiceTags``, ``ServiceMeta.k`` on the catalog;
``Service.Tags``, ``Service.Meta.k``, ``Node.Node`` on health); matches are
``Sel == "v"``, ``Sel != "v"``, ``Sel contains "v"``, ``Sel not contains "v"``,
``"v" in Sel``, ``"v" not in Sel``, ``Sel is empty``, ``Sel is not empty``;
values are double-quoted strings or bare words; matches combine with ``and``,
``or``, ``not`` and parentheses. Anything else (``matches``, backquoted
strings, numbers compared as numbers) answers ``400`` with a plain-text
body, as Consul does for an expression it cannot parse.

Faults, each queued for the next requests in order (see :class:`Fault`):
:meth:`~ConsulSimulator.fail` (a status and a plain-text body),
:meth:`~ConsulSimulator.delay`, :meth:`~ConsulSimulator.hang`,
:meth:`~ConsulSimulator.respond_raw` (any body: not JSON, the wrong shape),
:meth:`~ConsulSimulator.drop` (close the connection without an answer), and
:meth:`~ConsulSimulator.reset_index`. :attr:`~ConsulSimulator.requests` logs
every request without the token's value: only which configured token it was.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
from typing_extensions import Self

__all__ = [
    "ConsulSimulator",
    "Fault",
    "RecordedRequest",
    "parse_duration",
]

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SERVICE_PATHS = {"/v1/catalog/service/": "catalog", "/v1/health/service/": "health"}
_CHECK_STATUSES = ("passing", "warning", "critical", "maintenance")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``"5s"``, ``"100ms"``, ``"1m30s"``), as Consul reads ``?wait=``.

    As Go's ``time.ParseDuration``, a number needs a unit, except ``"0"``.
    Raises :class:`ValueError` for anything else.
    """
    if text == "0":
        return 0.0
    position = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return total


@attrs.frozen
class Fault:
    """What the simulator does instead of (or before) answering one request.

    ``kind`` is ``"error"`` (answer ``status`` with ``body`` as plain text),
    ``"raw"`` (answer ``status`` with ``body`` as given, ``content_type`` and
    the usual Consul headers: a malformed answer), ``"delay"`` (wait
    ``seconds``, then answer normally), ``"hang"`` (never answer; the
    connection is closed when the simulator closes or ``seconds`` pass) or
    ``"drop"`` (close the connection without a byte). ``path`` restricts it
    to requests whose path contains that text.
    """

    kind: str
    status: int = 500
    body: str | bytes = ""
    seconds: float | None = None
    content_type: str = "application/json"
    path: str | None = None


@attrs.frozen
class RecordedRequest:
    """One request the simulator saw; the token's value is never kept.

    ``token`` names which token the request carried: ``None`` for none, the
    ``name`` given to :meth:`ConsulSimulator.add_token`, or ``"<unknown>"``.
    ``token_source`` is ``"header"``, ``"query"`` or ``None``. ``headers``
    and ``query`` have any token value replaced by ``"<redacted>"``.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    token: str | None
    token_source: str | None
    status: int | None = None
    fault: str | None = None

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (``""`` for a flag such as ``?stale``)."""
        return next((value for key, value in self.query if key == name), None)

    def params(self, name: str) -> tuple[str, ...]:
        """Every value of a repeated query parameter (``tag``)."""
        return tuple(value for key, value in self.query if key == name)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@attrs.frozen
class _Token:
    name: str
    services: frozenset[str] | None
    nodes: frozenset[str] | None
    deny: bool


@attrs.frozen
class _Entry:
    """One registered service instance, kept in both of Consul's shapes."""

    service: str
    service_id: str
    node: str
    datacenter: str
    catalog: Mapping[str, Any]
    health: Mapping[str, Any]

    @property
    def tags(self) -> tuple[str, ...]:
        tags = self.catalog.get("ServiceTags")
        service = self.health.get("Service")
        if not isinstance(tags, list) and isinstance(service, dict):
            tags = service.get("Tags")
        if not isinstance(tags, list):
            return ()
        return tuple(tag for tag in tags if isinstance(tag, str))

    @property
    def passing(self) -> bool:
        checks = self.health.get("Checks")
        if not isinstance(checks, list):
            return True
        return all(isinstance(check, dict) and check.get("Status") == "passing" for check in checks)


class _FilterError(ValueError):
    pass


class ConsulSimulator:
    """A loopback Consul HTTP API for the catalog and health service endpoints, with faults on demand.

    ``datacenters`` are the ones it knows, the first being its own (the
    default of ``dc``). With ``ssl_context`` (a server-side
    :class:`ssl.SSLContext`, for instance from ``trustme``) it speaks HTTPS,
    as an agent with ``verify_incoming`` does. It listens on a free port of ``host`` from
    construction until :meth:`close` (or the end of a ``with`` block); the
    server runs in a daemon thread. It is thread-safe: tests register,
    deregister and inject faults while clients block on it.
    """

    def __init__(
        self,
        *,
        datacenters: Sequence[str] = ("dc1",),
        host: str = "127.0.0.1",
        jitter: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if isinstance(datacenters, str) or not datacenters:
            raise ValueError("datacenters is a non-empty sequence of names; the first is the simulator's own")
        self.datacenters: tuple[str, ...] = tuple(datacenters)
        self.jitter = jitter
        self.known_leader = True
        """``False`` simulates a cluster without a leader: only ``?stale`` reads are answered."""
        self.last_contact_ms = 0
        """What ``X-Consul-LastContact`` says on ``?stale`` reads."""
        self.anonymous_services: frozenset[str] = frozenset()
        """Services the anonymous token (a request without one) may read once ACLs are on."""
        self._lock = threading.Condition()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._index = 1
        self._tokens: dict[str, _Token] = {}
        self._faults: collections.deque[Fault] = collections.deque()
        self._cache: dict[tuple[Any, ...], tuple[int, float]] = {}
        self._log: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._next_id = 0
        self._scheme = "https" if ssl_context is not None else "http"
        self._server = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
        self._server.simulator = self
        if ssl_context is not None:
            # The handshake happens in the request's thread, so a client that never completes it stalls no one.
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="consul-simulator", daemon=True
        )
        self._thread.start()

    # -- life cycle ---------------------------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` it listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``ssl_context``): what a Consul client is given."""
        host, port = self.address
        return f"{self._scheme}://[{host}]:{port}" if ":" in host else f"{self._scheme}://{host}:{port}"

    def close(self) -> None:
        """Stop serving; requests held (blocking, hanging) are released. Safe to call more than once."""
        if self._closing.is_set():
            return
        self._closing.set()
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ConsulSimulator {self.url} index={self.index} entries={len(self._entries)}>"

    # -- data ---------------------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """The current ``X-Consul-Index``."""
        with self._lock:
            return self._index

    def _bump(self) -> int:
        # Called with the lock held.
        self._index += 1
        self._cache.clear()
        self._lock.notify_all()
        return self._index

    def register(
        self,
        service: str,
        address: str,
        *,
        port: int = 0,
        node: str | None = None,
        service_address: str | None = "",
        service_id: str | None = None,
        tags: Iterable[str] | None = (),
        meta: Mapping[str, str] | None = None,
        node_meta: Mapping[str, str] | None = None,
        tagged_addresses: Mapping[str, str] | None = None,
        service_tagged_addresses: Mapping[str, tuple[str, int]] | None = None,
        status: str = "passing",
        datacenter: str | None = None,
    ) -> str:
        """Register one instance of ``service`` on node ``node`` (address ``address``); return its service id.

        ``port=0`` is what the seed's registry registers ("ServicePort is
        always 0"). ``service_address=""`` (the default) is an empty
        ``ServiceAddress``, meaning the node's address; ``None`` leaves the
        key out. ``tags=None`` gives ``"ServiceTags": null``.
        ``tagged_addresses`` are the node's (``{"lan": ip, "wan": ip}``),
        ``service_tagged_addresses`` the service's (``{"wan": (ip, port)}``).
        ``status`` is the service check's status (the node's ``serfHealth``
        check passes). Registering the same service id on the same node again
        replaces it. Every change bumps the index and wakes blocked queries.
        """
        if status not in _CHECK_STATUSES:
            raise ValueError(f"status must be one of {_CHECK_STATUSES}, got {status!r}")
        dc = datacenter or self.datacenters[0]
        if dc not in self.datacenters:
            raise ValueError(f"datacenter {dc!r} is not one of {self.datacenters}")
        with self._lock:
            if node is None:
                node = f"node-{address}"
            if service_id is None:
                service_id = f"{service}-{node}"
            index = self._index + 1
            tag_list = None if tags is None else list(tags)
            catalog: dict[str, Any] = {
                "ID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{node}.node.{dc}.consul")),
                "Node": node,
                "Address": address,
                "Datacenter": dc,
                "TaggedAddresses": dict(
                    {"lan": address, "wan": address} if tagged_addresses is None else tagged_addresses
                ),
                "NodeMeta": dict(node_meta or {}),
                "ServiceKind": "",
                "ServiceID": service_id,
                "ServiceName": service,
                "ServiceTags": tag_list,
                "ServiceAddress": service_address,
                "ServiceTaggedAddresses": {
                    name: {"address": addr, "port": tagged_port}
                    for name, (addr, tagged_port) in (service_tagged_addresses or {}).items()
                },
                "ServiceWeights": {"Passing": 1, "Warning": 1},
                "ServiceMeta": dict(meta or {}),
                "ServicePort": port,
                "ServiceEnableTagOverride": False,
                "CreateIndex": index,
                "ModifyIndex": index,
                "Namespace": "default",
            }
            if service_address is None:
                del catalog["ServiceAddress"]
            health = _health_from_catalog(catalog, status=status)
            self._store(catalog, health, service=service)
            return service_id

    def register_entry(self, entry: Mapping[str, Any], *, service: str | None = None, kind: str | None = None) -> None:
        """Register one entry exactly as given, to be answered verbatim (the other shape is derived from it).

        ``kind`` is ``"catalog"`` (a ``/v1/catalog/service`` element) or
        ``"health"`` (a ``/v1/health/service`` element: ``Node``, ``Service``,
        ``Checks``); by default it is guessed from the shape. Any key may be
        missing and any value may be of the wrong type: this is how tests
        serve Consul answers that are odd, old or hostile. ``service`` is the
        name it is found under (default: the entry's own ``ServiceName`` or
        ``Service.Service``).
        """
        data: dict[str, Any] = copy.deepcopy(dict(entry))
        catalog: dict[str, Any]
        health: dict[str, Any]
        if kind is None:
            kind = "health" if isinstance(data.get("Service"), dict) or "Checks" in data else "catalog"
        if kind == "catalog":
            catalog, health = data, _health_from_catalog(data, status="passing")
        elif kind == "health":
            catalog, health = _catalog_from_health(data), data
        else:
            raise ValueError(f"kind is 'catalog' or 'health', got {kind!r}")
        name = service or catalog.get("ServiceName")
        if not isinstance(name, str) or not name:
            raise ValueError("the entry names no service (ServiceName / Service.Service): pass service=")
        with self._lock:
            self._store(catalog, health, service=name)

    def seed_from_file(self, path: str | Path, *, service: str | None = None, kind: str | None = None) -> int:
        """Register every entry of a saved ``/v1/catalog/service`` or ``/v1/health/service`` answer.

        The payloads of Consul's documentation are such files. ``service``
        is the name they are found under (default: each entry's own); the
        health sample answers ``GET /v1/health/service/my-service`` with an
        entry for service ``redis``, so pass ``service="my-service"`` to serve
        it under the URL it was documented with. Returns how many entries.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
        for entry in data:
            self.register_entry(entry, service=service, kind=kind)
        return len(data)

    def _store(self, catalog: dict[str, Any], health: dict[str, Any], *, service: str) -> None:
        # Called with the lock held.
        node = catalog.get("Node")
        service_id = catalog.get("ServiceID")
        if not isinstance(node, str):
            node = f"<node {self._next_id}>"
        if not isinstance(service_id, str):
            service_id = f"<service {self._next_id}>"
        self._next_id += 1
        dc = catalog.get("Datacenter")
        if not isinstance(dc, str) or dc not in self.datacenters:
            dc = self.datacenters[0]
        self._entries[(service, node, service_id)] = _Entry(service, service_id, node, dc, catalog, health)
        self._bump()

    def deregister(self, service_id: str, *, node: str | None = None) -> int:
        """Remove the instances with ``service_id`` (on ``node`` only, if given); return how many went."""
        with self._lock:
            gone = [key for key in self._entries if key[2] == service_id and (node is None or key[1] == node)]
            for key in gone:
                del self._entries[key]
            if gone:
                self._bump()
            return len(gone)

    def deregister_service(self, service: str) -> int:
        """Remove every instance of ``service``; return how many went."""
        with self._lock:
            gone = [key for key in self._entries if key[0] == service]
            for key in gone:
                del self._entries[key]
            if gone:
                self._bump()
            return len(gone)

    def set_status(self, service_id: str, status: str, *, node: str | None = None) -> int:
        """Set the service check's status of the instances with ``service_id``; return how many changed."""
        if status not in _CHECK_STATUSES:
            raise ValueError(f"status must be one of {_CHECK_STATUSES}, got {status!r}")
        with self._lock:
            changed = 0
            for key, entry in list(self._entries.items()):
                if key[2] != service_id or (node is not None and key[1] != node):
                    continue
                health = copy.deepcopy(dict(entry.health))
                for check in health.get("Checks") or []:
                    if isinstance(check, dict) and check.get("CheckID") != "serfHealth":
                        check["Status"] = status
                self._entries[key] = attrs.evolve(entry, health=health)
                changed += 1
            if changed:
                self._bump()
            return changed

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make several changes appear at once: no query is answered with the state between them.

        ``with sim.batch(): sim.clear(); sim.register(...)`` replaces a
        service's instances the way one Consul transaction would.
        """
        with self._lock:
            yield

    def clear(self) -> None:
        """Remove every instance (one index bump)."""
        with self._lock:
            self._entries.clear()
            self._bump()

    def touch(self) -> int:
        """Bump the index without changing any data (as a write elsewhere in Consul does); return it."""
        with self._lock:
            return self._bump()

    def reset_index(self, to: int = 1) -> None:
        """Make the index go backwards (a snapshot restore, a new cluster); blocked queries are answered at once.

        ``to=0`` makes the simulator send ``X-Consul-Index: 0``, which Consul
        promises never to do: clients must cope with it anyway.
        """
        with self._lock:
            self._index = to
            self._cache.clear()
            self._lock.notify_all()

    # -- ACLs ---------------------------------------------------------------------------------------------------

    def add_token(
        self,
        secret: str,
        *,
        name: str | None = None,
        services: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
        deny: bool = False,
    ) -> None:
        """Turn ACLs on and accept ``secret`` as a token.

        ``services`` and ``nodes`` it may read (``None``: all); entries
        outside them are filtered out of answers. ``deny=True`` makes every
        request with it ``403 Permission denied``. ``name`` is how the
        request log refers to it (default ``"token-N"``): the log never holds
        the secret.
        """
        with self._lock:
            self._tokens[secret] = _Token(
                name or f"token-{len(self._tokens) + 1}",
                None if services is None else frozenset(services),
                None if nodes is None else frozenset(nodes),
                deny,
            )
            self._cache.clear()

    @property
    def acl_enabled(self) -> bool:
        return bool(self._tokens)

    # -- faults -------------------------------------------------------------------------------------------------

    def inject(self, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests (after faults queued before)."""
        with self._lock:
            self._faults.extend([fault] * times)

    def fail(
        self, status: int = 500, body: str = "No cluster leader", *, times: int = 1, path: str | None = None
    ) -> None:
        """The next ``times`` requests answer ``status`` with a plain-text ``body``."""
        self.inject(
            Fault("error", status=status, body=body, content_type="text/plain; charset=utf-8", path=path), times=times
        )

    def respond_raw(
        self,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """The next ``times`` requests answer ``body`` as given (not JSON, the wrong shape...) with Consul's headers."""
        self.inject(Fault("raw", status=status, body=body, content_type=content_type, path=path), times=times)

    def delay(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests are answered normally, ``seconds`` late."""
        self.inject(Fault("delay", seconds=seconds, path=path), times=times)

    def hang(self, *, seconds: float | None = None, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests get no answer at all until the simulator closes (or ``seconds`` pass)."""
        self.inject(Fault("hang", seconds=seconds, path=path), times=times)

    def drop(self, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` connections are closed without an answer."""
        self.inject(Fault("drop", path=path), times=times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for position, fault in enumerate(self._faults):
                if fault.path is None or fault.path in path:
                    del self._faults[position]
                    return fault
            return None

    # -- request log --------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._log.append(request)
            return len(self._log) - 1

    def _set_status(self, position: int, status: int | None, fault: str | None) -> None:
        with self._lock:
            self._log[position] = attrs.evolve(self._log[position], status=status, fault=fault)

    # -- answering ----------------------------------------------------------------------------------------------

    def _answer(
        self, kind: str, service: str, query: list[tuple[str, str]], token: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for a service query (may block)."""
        params: dict[str, list[str]] = collections.defaultdict(list)
        for key, value in query:
            params[key].append(value)
        text = "text/plain; charset=utf-8"

        def error(status: int, body: str) -> tuple[int, dict[str, str], bytes]:
            return status, {"Content-Type": text}, body.encode()

        stale = "stale" in params
        consistent = "consistent" in params
        if stale and consistent:
            return error(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        dc = params.get("dc", [""])[0] or self.datacenters[0]
        if dc not in self.datacenters:
            return error(500, "No path to datacenter")
        wait = DEFAULT_WAIT
        if "wait" in params:
            try:
                wait = parse_duration(params["wait"][0])
            except ValueError:
                return error(400, f"Invalid wait time: {params['wait'][0]!r}")
        wait = min(wait, MAX_WAIT)
        if self.jitter:
            wait += random.uniform(0, wait / 16)  # noqa: S311 (jitter, not a secret)
        min_index = 0
        if "index" in params:
            try:
                min_index = int(params["index"][0])
            except ValueError:
                return error(400, f"Invalid index: {params['index'][0]!r}")
        predicate = None
        if params.get("filter", [""])[0]:
            try:
                predicate = _compile_filter(params["filter"][0])
            except _FilterError as exc:
                return error(400, f"Failed to create boolean expression evaluator: {exc}")
        acl: _Token | None = None
        if self._tokens:
            if token is not None and token not in self._tokens:
                return error(403, "ACL not found")
            acl = (
                self._tokens.get(token)
                if token is not None
                else _Token("anonymous", self.anonymous_services, None, False)
            )
            if acl is not None and acl.deny:
                return error(403, "Permission denied")
        if not self.known_leader and not stale:
            return error(500, "No cluster leader")

        deadline = time.monotonic() + wait
        with self._lock:
            while min_index > 0 and self._index == min_index and not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            index = self._index
            entries = [entry for entry in self._entries.values() if entry.service == service and entry.datacenter == dc]
            cache_key = (kind, service, tuple(sorted(query)), acl.name if acl else None)
            cached_at = self._cache.get(cache_key)
            if "cached" in params and cached_at is None:
                self._cache[cache_key] = (index, time.monotonic())
        tags = params.get("tag", [])
        entries = [entry for entry in entries if all(tag in entry.tags for tag in tags)]
        if kind == "health" and "passing" in params:
            entries = [entry for entry in entries if entry.passing]
        filtered_by_acl = False
        if acl is not None:
            allowed = [
                entry
                for entry in entries
                if (acl.services is None or entry.service in acl.services)
                and (acl.nodes is None or entry.node in acl.nodes)
            ]
            filtered_by_acl = len(allowed) != len(entries)
            entries = allowed
        shaped = [copy.deepcopy(dict(entry.catalog if kind == "catalog" else entry.health)) for entry in entries]
        if predicate is not None:
            shaped = [item for item in shaped if predicate(item)]
        headers = {
            "Content-Type": "application/json",
            "Vary": "Accept-Encoding",
            "X-Consul-Index": str(index),
            "X-Consul-KnownLeader": "true" if self.known_leader else "false",
            "X-Consul-LastContact": str(self.last_contact_ms if stale else 0),
            "X-Consul-Effective-Consistency": "stale" if stale else ("consistent" if consistent else "leader"),
        }
        if "cached" in params:
            if cached_at is None:
                headers["X-Cache"] = "MISS"
            else:
                headers["X-Cache"] = "HIT"
                headers["Age"] = str(int(time.monotonic() - cached_at[1]))
        if filtered_by_acl:
            headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
        return 200, headers, json.dumps(shaped, indent=2).encode()


# -- the two shapes of an entry ----------------------------------------------------------------------------------


def _health_from_catalog(catalog: Mapping[str, Any], *, status: str) -> dict[str, Any]:
    """The ``/v1/health/service`` element for a catalog element; keys missing there stay missing here."""
    node: dict[str, Any] = {}
    for target, source in (
        ("ID", "ID"),
        ("Node", "Node"),
        ("Address", "Address"),
        ("Datacenter", "Datacenter"),
        ("TaggedAddresses", "TaggedAddresses"),
        ("Meta", "NodeMeta"),
    ):
        if source in catalog:
            node[target] = copy.deepcopy(catalog[source])
    service: dict[str, Any] = {}
    for target, source in (
        ("ID", "ServiceID"),
        ("Service", "ServiceName"),
        ("Tags", "ServiceTags"),
        ("Address", "ServiceAddress"),
        ("TaggedAddresses", "ServiceTaggedAddresses"),
        ("Meta", "ServiceMeta"),
        ("Port", "ServicePort"),
        ("Weights", "ServiceWeights"),
        ("Namespace", "Namespace"),
    ):
        if source in catalog:
            service[target] = copy.deepcopy(catalog[source])
    node_name = catalog.get("Node", "")
    return {
        "Node": node,
        "Service": service,
        "Checks": [
            {
                "Node": node_name,
                "CheckID": f"service:{catalog.get('ServiceID', '')}",
                "Name": f"Service '{catalog.get('ServiceName', '')}' check",
                "Status": status,
                "Notes": "",
                "Output": "",
                "ServiceID": catalog.get("ServiceID", ""),
                "ServiceName": catalog.get("ServiceName", ""),
                "ServiceTags": copy.deepcopy(catalog.get("ServiceTags")) or [],
                "Namespace": "default",
            },
            {
                "Node": node_name,
                "CheckID": "serfHealth",
                "Name": "Serf Health Status",
                "Status": "passing",
                "Notes": "",
                "Output": "",
                "ServiceID": "",
                "ServiceName": "",
                "ServiceTags": [],
                "Namespace": "default",
            },
        ],
    }


def _catalog_from_health(health: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/v1/catalog/service`` element for a health element."""
    node = health.get("Node") if isinstance(health.get("Node"), dict) else {}
    service = health.get("Service") if isinstance(health.get("Service"), dict) else {}
    assert isinstance(node, dict)
    assert isinstance(service, dict)
    catalog: dict[str, Any] = {}
    for target, source_map, source in (
        ("ID", node, "ID"),
        ("Node", node, "Node"),
        ("Address", node, "Address"),
        ("Datacenter", node, "Datacenter"),
        ("TaggedAddresses", node, "TaggedAddresses"),
        ("NodeMeta", node, "Meta"),
        ("ServiceID", service, "ID"),
        ("ServiceName", service, "Service"),
        ("ServiceTags", service, "Tags"),
        ("ServiceAddress", service, "Address"),
        ("ServiceTaggedAddresses", service, "TaggedAddresses"),
        ("ServiceMeta", service, "Meta"),
        ("ServicePort", service, "Port"),
        ("ServiceWeights", service, "Weights"),
        ("Namespace", service, "Namespace"),
    ):
        if source in source_map:
            catalog[target] = copy.deepcopy(source_map[source])
    return catalog


# -- the filter language subset -------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|\(|\))|(?P<word>[A-Za-z0-9_./-]+)|(?P<bad>\S))')


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        position = match.end()
        if match.group("bad") is not None:
            raise _FilterError(f"unexpected {match.group('bad')!r} at column {match.start('bad')}")
        if match.group("string") is not None:
            try:
                found.append(("string", json.loads(match.group("string"))))
            except ValueError as exc:
                raise _FilterError(f"bad string {match.group('string')!r} at column {match.start('string')}") from exc
        elif match.group("op") is not None:
            found.append(("op", match.group("op")))
        elif match.group("word") is not None:
            found.append(("word", match.group("word")))
    return found


def _select(item: Any, selector: str) -> Any:
    for part in selector.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def _contains(container: Any, value: str) -> bool:
    if isinstance(container, list):
        return value in [str(element) for element in container]
    if isinstance(container, dict):
        return value in container
    if isinstance(container, str):
        return value in container
    return False


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Predicate = Callable[[Any], bool]


def _compile_filter(text: str) -> Predicate:
    items = _tokens(text)
    position = 0

    def peek(offset: int = 0) -> tuple[str, str] | None:
        at = position + offset
        return items[at] if at < len(items) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(items):
            raise _FilterError("unexpected end of expression")
        token = items[position]
        position += 1
        return token

    def is_word(token: tuple[str, str] | None, *words: str) -> bool:
        return token is not None and token[0] == "word" and token[1] in words

    def value() -> str:
        kind, text = take()
        if kind == "op":
            raise _FilterError(f"expected a value, got {text!r}")
        return text

    def selector() -> str:
        kind, text = take()
        if kind != "word" or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*", text):
            raise _FilterError(f"expected a selector, got {text!r}")
        return text

    def match() -> Predicate:
        first = peek()
        if first is not None and first[0] == "string":
            needle = value()
            negate = False
            if is_word(peek(), "not"):
                take()
                negate = True
            if not is_word(peek(), "in"):
                raise _FilterError("expected 'in' after a value")
            take()
            path = selector()
            return lambda item: _contains(_select(item, path), needle) != negate
        path = selector()
        op = take()
        if op == ("op", "=="):
            expected = value()
            return lambda item: _as_text(_select(item, path)) == expected
        if op == ("op", "!="):
            expected = value()
            return lambda item: _as_text(_select(item, path)) != expected
        if op == ("word", "contains"):
            needle = value()
            return lambda item: _contains(_select(item, path), needle)
        if op == ("word", "not") and is_word(peek(), "contains"):
            take()
            needle = value()
            return lambda item: not _contains(_select(item, path), needle)
        if op == ("word", "is"):
            negate = False
            if is_word(peek(), "not"):
                take()
                negate = True
            if not is_word(peek(), "empty"):
                raise _FilterError("expected 'empty' after 'is'")
            take()
            return lambda item: (not _select(item, path)) != negate
        raise _FilterError(f"unsupported operator {op[1]!r}")

    def factor() -> Predicate:
        token = peek()
        if is_word(token, "not"):
            take()
            inner = factor()
            return lambda item: not inner(item)
        if token == ("op", "("):
            take()
            inner = expression()
            if take() != ("op", ")"):
                raise _FilterError("expected ')'")
            return inner
        return match()

    def term() -> Predicate:
        parts = [factor()]
        while is_word(peek(), "and"):
            take()
            parts.append(factor())
        return lambda item: all(part(item) for part in parts)

    def expression() -> Predicate:
        parts = [term()]
        while is_word(peek(), "or"):
            take()
            parts.append(term())
        return lambda item: any(part(item) for part in parts)

    if not items:
        raise _FilterError("empty expression")
    result = expression()
    if position != len(items):
        raise _FilterError(f"unexpected {items[position][1]!r} after the expression")
    return result


# -- the HTTP side ----------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    simulator: ConsulSimulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here (timeouts, dropped watches): stay quiet."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
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
        token: str | None = None
        source: str | None = None
        header_token = self.headers.get("X-Consul-Token")
        if header_token:
            token, source = header_token, "header"
        else:
            query_token = next((value for key, value in query if key == "token"), None)
            if query_token:
                token, source = query_token, "query"
        tokens = sim._tokens
        token_name = None if token is None else (tokens[token].name if token in tokens else "<unknown>")
        position = sim._record(
            RecordedRequest(
                method="GET",
                path=split.path,
                query=tuple((key, "<redacted>" if key == "token" else value) for key, value in query),
                headers=tuple(
                    (key, "<redacted>" if key.lower() == "x-consul-token" else value)
                    for key, value in self.headers.items()
                ),
                token=token_name,
                token_source=source,
            )
        )
        query = [(key, value) for key, value in query if key != "token"]
        fault = sim._take_fault(split.path)
        if fault is not None:
            if fault.kind == "drop":
                sim._set_status(position, None, "drop")
                self._drop()
                return
            if fault.kind == "hang":
                sim._set_status(position, None, "hang")
                sim._closing.wait(fault.seconds)
                self._drop()
                return
            if fault.kind == "delay":
                sim._closing.wait(fault.seconds)
            elif fault.kind in ("error", "raw"):
                body = fault.body.encode() if isinstance(fault.body, str) else fault.body
                headers = {"Content-Type": fault.content_type}
                if fault.kind == "raw":
                    headers.update({"X-Consul-Index": str(sim.index), "X-Consul-KnownLeader": "true"})
                sim._set_status(position, fault.status, fault.kind)
                self._send(fault.status, headers, body)
                return
        service_kind = None
        service = ""
        for prefix, kind in _SERVICE_PATHS.items():
            if split.path.startswith(prefix):
                service_kind = kind
                service = urllib.parse.unquote(split.path[len(prefix) :])
        if service_kind is None or not service or "/" in service:
            sim._set_status(position, 404, fault.kind if fault else None)
            self._send(404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n")
            return
        try:
            status, headers, body = sim._answer(service_kind, service, query, token)
        except Exception as exc:  # noqa: BLE001 (a simulator bug shows as a 500 naming it, not as a dropped connection)
            status, headers = 500, {"Content-Type": "text/plain; charset=utf-8"}
            body = f"ConsulSimulator internal error: {type(exc).__name__}: {exc}".encode()
        sim._set_status(position, status, fault.kind if fault else None)
        if sim._closing.is_set():
            self._drop()
            return
        self._send(status, headers, body)

    def _not_allowed(self) -> None:
        self._send(405, {"Content-Type": "text/plain; charset=utf-8", "Allow": "GET"}, b"method not allowed\n")

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
