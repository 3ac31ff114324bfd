"""The simulator a test starts: the public API, and the answer to one service query, step by step in Consul's order."""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from typing_extensions import Self

from . import filtering, shapes
from .acl import Acl
from .catalog import Catalog, Instance
from .faults import RATE_LIMITED, Fault, FaultQueue
from .params import Query, QueryError, parse_query, token_from
from .recording import RecordedRequest, RequestLog
from .server import DROP, TEXT, Reply, route, server_for

__all__ = ["DEFAULT_RPC_HOLD_TIMEOUT", "ConsulSimulator"]

DEFAULT_RPC_HOLD_TIMEOUT = 7.0
"""Seconds a server keeps retrying a read while there is no leader (``rpc_hold_timeout``, agent/config default)."""

_CACHE_SIZE = 256
"""Query shapes (and tokens) whose latest answer is kept: one body each, the one for the current index."""


class ConsulSimulator:
    """A loopback Consul HTTP API for the catalog and health service endpoints, with faults on demand.

    ``datacenters`` are the ones it knows, the first being its own (the
    default of ``dc``). With ``ssl_context`` (a server-side
    :class:`ssl.SSLContext`, for instance from ``trustme``) it speaks HTTPS,
    as an agent with ``verify_incoming`` does. ``rpc_hold_timeout`` is how
    long a non-stale read is held while there is no leader before it fails
    (Consul's default, 7 s). ``jitter=False`` (not something Consul can do)
    removes the up to ``wait/16`` that Consul adds to every blocking wait, for
    tests that need exact timing. It listens on a free port of ``host`` from
    construction until :meth:`close` (or the end of a ``with`` block); the
    server runs in a daemon thread. It is thread-safe: tests register,
    deregister and inject faults while clients block on it.
    """

    def __init__(
        self,
        *,
        datacenters: Sequence[str] = ("dc1",),
        host: str = "127.0.0.1",
        jitter: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        rpc_hold_timeout: float = DEFAULT_RPC_HOLD_TIMEOUT,
    ) -> None:
        if isinstance(datacenters, str) or not datacenters:
            raise ValueError("datacenters is a non-empty sequence of names; the first is the simulator's own")
        if rpc_hold_timeout < 0:
            raise ValueError(f"rpc_hold_timeout is a number of seconds >= 0, got {rpc_hold_timeout!r}")
        self.datacenters: tuple[str, ...] = tuple(datacenters)
        self.jitter = jitter
        self.rpc_hold_timeout = rpc_hold_timeout
        self.last_contact_ms = 0
        """What ``X-Consul-LastContact`` says on ``?stale`` reads."""
        self._leader = threading.Condition()
        self._known_leader = True
        self._catalog = Catalog(self.datacenters)
        self._acl = Acl()
        self._faults = FaultQueue()
        self._log = RequestLog()
        # (query shape, token) -> (service index, epoch, body, filtered by ACLs): only the latest answer of each.
        self._answers: collections.OrderedDict[tuple[Any, ...], tuple[int, int, bytes, bool]] = (
            collections.OrderedDict()
        )
        self._answers_lock = threading.Lock()
        self._agent_cache: dict[tuple[Any, ...], tuple[int, float]] = {}
        self._closing = threading.Event()
        self._scheme = "https" if ssl_context is not None else "http"
        self._server = server_for(host, self._respond)
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
        """Stop serving; requests held (blocking, hanging, waiting for a leader) are released. Idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        with self._catalog.condition:
            self._catalog.condition.notify_all()
        with self._leader:
            self._leader.notify_all()
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
        return f"<ConsulSimulator {self.url} index={self.index} entries={len(self._catalog)}>"

    # -- the cluster --------------------------------------------------------------------------------------------

    @property
    def known_leader(self) -> bool:
        """``False`` simulates a cluster without a leader: non-stale reads are held, then ``500 No cluster leader``."""
        return self._known_leader

    @known_leader.setter
    def known_leader(self, value: bool) -> None:
        with self._leader:
            self._known_leader = value
            self._leader.notify_all()

    # -- data ---------------------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """The Raft index of the last write (a query answers its own service's index, see :meth:`service_index`)."""
        return self._catalog.index

    def service_index(self, service: str, *, datacenter: str | None = None) -> int:
        """The ``X-Consul-Index`` a query on ``service`` answers now."""
        return self._catalog.service_index(datacenter or self.datacenters[0], service)

    def _datacenter(self, datacenter: str | None) -> str:
        dc = datacenter or self.datacenters[0]
        if dc not in self.datacenters:
            raise ValueError(f"datacenter {dc!r} is not one of {self.datacenters}")
        return dc

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
        check: bool = True,
    ) -> str:
        """Register one instance of ``service`` on node ``node`` (address ``address``), as an agent does; return its id.

        ``port=0`` is what the seed's registry registers ("ServicePort is
        always 0"). ``service_address=""`` (the default) is an empty
        ``ServiceAddress``, meaning the node's address; ``None`` leaves the
        key out (an old agent's payload). ``tags=None`` is no tags (Consul
        answers ``[]``, never ``null``; serve a ``null`` with
        :meth:`register_entry`). ``tagged_addresses`` are the node's (default:
        ``lan``, ``wan`` and their ``_ipv4``/``_ipv6`` names holding
        ``address``); ``service_tagged_addresses`` the service's
        (``{"wan": (ip, port)}``), to which the agent adds ``lan_ipv4`` and
        ``wan_ipv4`` (``_ipv6``) when ``service_address`` is an IP.
        ``node_meta`` defaults to the agent's ``consul-network-segment``.
        ``status`` is the service check's (the node's ``serfHealth`` passes);
        ``check=False`` registers the service without a check of its own.
        Registering the same service id on the same node again replaces it;
        a node registered again with another address changes for all its
        services. Every call is one write.
        """
        if status not in shapes.CHECK_STATUSES:
            raise ValueError(f"status must be one of {shapes.CHECK_STATUSES}, got {status!r}")
        dc = self._datacenter(datacenter)
        node = node if node is not None else f"node-{address}"
        service_id = service_id if service_id is not None else f"{service}-{node}"
        self._catalog.register(
            datacenter=dc,
            node=node,
            address=address,
            node_tagged_addresses=tagged_addresses,
            node_meta=node_meta,
            service=service,
            service_id=service_id,
            tags=tags or (),
            service_address=service_address,
            port=port,
            meta=meta or {},
            service_tagged_addresses=service_tagged_addresses,
            status=status,
            check=check,
        )
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
        if kind is None:
            kind = "health" if isinstance(data.get("Service"), dict) or "Checks" in data else "catalog"
        if kind == "catalog":
            catalog, health = data, shapes.health_from_catalog(data)
        elif kind == "health":
            catalog, health = shapes.catalog_from_health(data), data
        else:
            raise ValueError(f"kind is 'catalog' or 'health', got {kind!r}")
        name = service or catalog.get("ServiceName")
        if not isinstance(name, str) or not name:
            raise ValueError("the entry names no service (ServiceName / Service.Service): pass service=")
        dc = catalog.get("Datacenter")
        self._catalog.register_verbatim(dc if dc in self.datacenters else self.datacenters[0], name, catalog, health)

    def seed_from_file(self, path: str | Path, *, service: str | None = None, kind: str | None = None) -> int:
        """Register every entry of a saved ``/v1/catalog/service`` or ``/v1/health/service`` answer; return how many.

        ``service`` is the name they are found under (default: each entry's
        own); the documentation's health sample answers ``GET
        /v1/health/service/my-service`` with an entry for service ``redis``,
        so pass ``service="my-service"`` to serve it under that URL.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
        for entry in data:
            self.register_entry(entry, service=service, kind=kind)
        return len(data)

    def deregister(self, service_id: str, *, node: str | None = None) -> int:
        """Remove the instances with ``service_id`` (on ``node`` only, if given); return how many went."""
        return self._catalog.deregister(service_id, node)

    def deregister_service(self, service: str) -> int:
        """Remove every instance of ``service``; return how many went."""
        return self._catalog.deregister_service(service)

    def set_status(self, service_id: str, status: str, *, node: str | None = None) -> int:
        """Set the service check's status (passing, warning, critical) of the instances with ``service_id``."""
        if status not in shapes.CHECK_STATUSES:
            raise ValueError(f"status must be one of {shapes.CHECK_STATUSES}, got {status!r}")
        return self._catalog.set_status(service_id, status, node)

    def node_maintenance(
        self, node: str, *, enable: bool = True, reason: str = "", datacenter: str | None = None
    ) -> None:
        """Put ``node`` in maintenance (a critical ``_node_maintenance`` check), or out with ``enable=False``."""
        if not self._catalog.node_maintenance(node, reason if enable else None, self._datacenter(datacenter)):
            raise ValueError(f"no node {node!r} is registered")

    def service_maintenance(
        self, service_id: str, *, enable: bool = True, reason: str = "", node: str | None = None
    ) -> int:
        """Put the instances with ``service_id`` in maintenance (``_service_maintenance:<id>``, critical), or out."""
        return self._catalog.service_maintenance(service_id, reason if enable else None, node)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make several changes appear at once: no query is answered with the state between them.

        ``with sim.batch(): sim.clear(); sim.register(...)`` replaces a
        service's instances as one Consul transaction would.
        """
        with self._catalog.condition:
            yield

    def clear(self) -> None:
        """Remove every instance (one write)."""
        self._catalog.clear()

    def touch(self, service: str | None = None, *, datacenter: str | None = None) -> int:
        """One write that changes no instance; return its index.

        Without ``service`` it is a write elsewhere in Consul (a KV write): no
        service query sees it. With ``service`` it moves that service's index
        without changing its instances, as a health check's output changing
        does: blocked queries on it are answered with the same instances.
        """
        return self._catalog.touch(service, self._datacenter(datacenter))

    def reset_index(self, to: int = 1) -> None:
        """Make every index go back to ``to`` (a snapshot restore, a new cluster); blocked queries are answered at once.

        ``X-Consul-Index`` is never below 1, whatever ``to`` is (Consul's ``setIndex``).
        """
        self._catalog.reset_index(to)

    # -- ACLs ---------------------------------------------------------------------------------------------------

    def add_token(
        self,
        secret: str,
        *,
        name: str | None = None,
        services: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> None:
        """Turn ACLs on and accept ``secret`` as a token.

        ``services`` and ``nodes`` it may read (``None``: all); entries
        outside them are filtered out of answers, never refused, as Consul
        does on these endpoints. ``name`` is how the request log refers to it
        (default ``"token-N"``): the log never holds the secret. A request
        with any other token is ``403 ACL not found``; one without a token is
        answered as the anonymous token, which reads :attr:`anonymous_services`.
        """
        self._acl.add(secret, name=name or f"token-{len(self._acl.tokens) + 1}", services=services, nodes=nodes)
        self._forget_answers()

    @property
    def anonymous_services(self) -> frozenset[str]:
        """Services the anonymous token (a request without one) may read once ACLs are on (default none)."""
        return self._acl.anonymous_services

    @anonymous_services.setter
    def anonymous_services(self, services: Iterable[str]) -> None:
        self._acl.anonymous_services = frozenset(services)
        self._forget_answers()

    @property
    def acl_enabled(self) -> bool:
        return self._acl.enabled

    # -- faults -------------------------------------------------------------------------------------------------

    def inject(self, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests (after faults queued before)."""
        self._faults.add(fault, times)

    def fail(
        self, status: int = 500, body: str = "No cluster leader", *, times: int = 1, path: str | None = None
    ) -> None:
        """The next ``times`` requests answer ``status`` with a plain-text ``body``, at once."""
        self.inject(Fault("error", status=status, body=body, content_type=TEXT, path=path), times=times)

    def rate_limit(self, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests answer ``429`` as Consul's request rate limiter does."""
        self.fail(429, RATE_LIMITED, times=times, path=path)

    def respond_raw(
        self,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        times: int = 1,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests answer ``body`` as given (not JSON, the wrong shape...) with Consul's headers.

        ``headers`` replace or add to those (``{"X-Consul-Index": "0"}``: what
        Consul never sends, for a client that must cope with it anyway).
        """
        fault = Fault(
            "raw",
            status=status,
            body=body,
            content_type=content_type,
            path=path,
            headers=tuple((headers or {}).items()),
        )
        self.inject(fault, times=times)

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
        self._faults.clear()

    # -- request log --------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy); one still in flight has ``status`` None."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        """Forget the requests already answered; those in flight stay, and are completed when they end."""
        self._log.clear()

    # -- answering ----------------------------------------------------------------------------------------------

    def _respond(self, path: str, query: list[tuple[str, str]], headers: tuple[tuple[str, str], ...]) -> Reply:
        """One request, from the log to the reply: its token read, a queued fault applied, then the answer."""
        secret, source = token_from(query, dict(headers))
        slot = self._log.open(
            RecordedRequest(
                method="GET",
                path=path,
                query=tuple((key, "<redacted>" if key == "token" else value) for key, value in query),
                headers=tuple(
                    (key, "<redacted>" if key.lower() in ("x-consul-token", "authorization") else value)
                    for key, value in headers
                ),
                token=self._acl.name_of(secret),
                token_source=source,
            )
        )
        fault = self._faults.take(path)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "drop":
            self._log.update(slot, status=None, fault="drop", done=True)
            return DROP
        if fault is not None and fault.kind == "hang":
            self._log.update(slot, status=None, fault="hang", done=False)
            self._closing.wait(fault.seconds)
            self._log.update(slot, status=None, fault="hang", done=True)
            return DROP
        if fault is not None and fault.kind == "delay":
            self._closing.wait(fault.seconds)
        if fault is not None and fault.kind in ("error", "raw"):
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            fault_headers = {"Content-Type": fault.content_type}
            if fault.kind == "raw":
                fault_headers.update({"X-Consul-Index": str(max(1, self.index)), "X-Consul-KnownLeader": "true"})
                fault_headers.update(fault.headers)
            self._log.update(slot, status=fault.status, fault=fault.kind, done=True)
            return Reply(fault.status, fault_headers, body)
        endpoint = route(path)
        if endpoint is None:
            self._log.update(slot, status=404, fault=kind, done=True)
            return Reply(404, {"Content-Type": TEXT}, b"404 page not found\n")
        rest = [(key, value) for key, value in query if key != "token"]
        try:
            status, answer_headers, body = self._answer(*endpoint, rest, secret)
        except Exception as exc:  # noqa: BLE001 (a simulator bug shows as a 500 naming it, not as a dropped connection)
            status, answer_headers = 500, {"Content-Type": TEXT}
            body = f"ConsulSimulator internal error: {type(exc).__name__}: {exc}".encode()
        self._log.update(slot, status=status, fault=kind, done=True)
        return DROP if self._closing.is_set() else Reply(status, answer_headers, body)

    def _answer(
        self, kind: str, service: str, query: list[tuple[str, str]], token: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for a service query (may block), or Consul's error for it."""
        try:
            return self._serve(kind, service, query, token)
        except QueryError as error:
            headers = {"Content-Type": TEXT, "X-Consul-Default-ACL-Policy": self._acl.default_policy}
            return error.status, headers, error.body.encode()

    def _serve(
        self, kind: str, service: str, query: list[tuple[str, str]], token: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        # The order is Consul's: the HTTP layer's parsing, then the RPC's forwarding (datacenter, leader),
        # the token, the filter, and the blocking query (agent/consul/catalog_endpoint.go ServiceNodes).
        parsed = parse_query(kind, service, query, default_datacenter=self.datacenters[0])
        if parsed.datacenter not in self.datacenters:
            raise QueryError(500, "No path to datacenter")
        if not parsed.stale:
            self._hold_for_leader()
        decision = self._acl.decide(token)
        predicate = None
        if parsed.filter:
            schema = filtering.CATALOG if kind == "catalog" else filtering.HEALTH
            try:
                predicate = filtering.compile_filter(parsed.filter, schema)
            except filtering.FilterError as exc:
                raise QueryError(500, str(exc)) from None
        if parsed.blocking:
            timeout = parsed.timeout()
            if self.jitter:
                timeout += random.uniform(0, timeout / 16)  # noqa: S311 (jitter, not a secret)
            self._catalog.wait(parsed.datacenter, service, parsed.index, timeout, self._closing)
        index, epoch, instances = self._catalog.instances(parsed.datacenter, service)
        key = (parsed.shape, decision)
        with self._answers_lock:
            kept = self._answers.get(key)
            if kept is not None:
                self._answers.move_to_end(key)
        if kept is not None and kept[:2] == (index, epoch):
            body, filtered = kept[2:]
        else:
            body, filtered = self._encode(parsed, instances, decision.filter, predicate)
            with self._answers_lock:
                self._answers[key] = (index, epoch, body, filtered)
                while len(self._answers) > _CACHE_SIZE:
                    self._answers.popitem(last=False)
        headers = {
            "Content-Type": "application/json",
            "Vary": "Accept-Encoding",
            "X-Consul-Default-ACL-Policy": self._acl.default_policy,
            "X-Consul-Effective-Consistency": parsed.consistency,
            "X-Consul-Index": str(index),
            "X-Consul-KnownLeader": "true" if self._known_leader else "false",
            "X-Consul-LastContact": str(self.last_contact_ms if parsed.stale else 0),
        }
        if parsed.cached:
            headers.update(self._cache_headers((parsed.shape, decision), index))
        if filtered:
            headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
        return 200, headers, body

    def _hold_for_leader(self) -> None:
        """Hold a non-stale read while there is no leader, up to ``rpc_hold_timeout``; then ``No cluster leader``."""
        deadline = time.monotonic() + self.rpc_hold_timeout
        with self._leader:
            while not self._known_leader and not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueryError(500, "No cluster leader")
                self._leader.wait(remaining)

    def _encode(
        self,
        parsed: Query,
        instances: list[Instance],
        acl_filter: Callable[[Sequence[Instance]], tuple[list[Instance], bool]],
        predicate: filtering.Predicate | None,
    ) -> tuple[bytes, bool]:
        if parsed.tags:
            wanted = [tag.lower() for tag in parsed.tags]
            instances = [item for item in instances if all(tag in item.tags for tag in wanted)]
        if parsed.node_meta:
            instances = [item for item in instances if all(item.node_meta.get(k) == v for k, v in parsed.node_meta)]
        instances, filtered = acl_filter(instances)
        if parsed.passing:
            instances = [item for item in instances if item.passing]
        if predicate is not None:
            instances = [item for item in instances if predicate(item.shape(parsed.kind))]
        if parsed.pretty:
            return shapes.encode([item.shape(parsed.kind) for item in instances], pretty=True), filtered
        return shapes.encode_list(item.fragment(parsed.kind) for item in instances), filtered

    def _cache_headers(self, key: tuple[Any, ...], index: int) -> dict[str, str]:
        """``X-Cache`` (and ``Age`` on a hit) as the agent's cache answers ``?cached`` (http.go ``setCacheMeta``)."""
        now = time.monotonic()
        with self._answers_lock:
            stored = self._agent_cache.get(key)
            if stored is not None and stored[0] == index:
                return {"X-Cache": "HIT", "Age": f"{now - stored[1]:.0f}"}
            self._agent_cache[key] = (index, now)
        return {"X-Cache": "MISS"}

    def _forget_answers(self) -> None:
        with self._answers_lock:
            self._answers.clear()
            self._agent_cache.clear()
