"""Reading a request's query parameters and token the way Consul's HTTP layer does, with its exact error texts.

Each rule cites the Consul source it follows (paths in hashicorp/consul):
``agent/http.go`` (``parseDC``, ``parseTokenInternal``, ``parseFilter``,
``parseConsistency``, ``parseWait``, ``parseMetaFilter``),
``agent/catalog_endpoint.go`` and ``agent/health_endpoint.go`` (``tag``,
the service name, ``passing``). The order of the checks is Consul's too, so
a request with two faults gets the error Consul would give first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs

__all__ = [
    "DEFAULT_WAIT",
    "MAX_WAIT",
    "Query",
    "QueryError",
    "parse_bool",
    "parse_duration",
    "parse_query",
    "token_from",
]

DEFAULT_WAIT = 300.0
"""Seconds a blocking query waits without ``wait`` (or with ``wait <= 0``): ``DefaultQueryTime``, 5 minutes."""

MAX_WAIT = 600.0
"""The longest ``wait`` honoured: ``MaxQueryTime``, 10 minutes (agent/consul/server.go ``RPCQueryTimeout``)."""

_NUMBER_UNIT = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_DURATION = (2**63 - 1) / 1e9


class QueryError(Exception):
    """A request Consul answers with an error: ``status`` and the plain-text ``body`` it sends."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``"5s"``, ``"100ms"``, ``"1m30s"``, ``"-1s"``), as ``time.ParseDuration`` reads it.

    A sign may lead; every number needs a unit except a lone ``"0"``; units
    are ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``. Anything else,
    and a duration beyond Go's ``int64`` nanoseconds, raises :class:`ValueError`.
    """
    rest = text
    sign = 1.0
    if rest[:1] in ("-", "+"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(rest):
        match = _NUMBER_UNIT.match(rest, position)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if total > _MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``: ``1 t T TRUE true True`` and ``0 f F FALSE false False``; else ValueError."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


def token_from(query: Sequence[tuple[str, str]], headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The request's token and where it came from: ``?token=``, then ``X-Consul-Token``, then ``Authorization: Bearer``.

    As ``parseTokenInternal`` (agent/http.go): the first non-empty one wins;
    an ``Authorization`` header counts only with the ``Bearer`` scheme (any
    case) and a value, of which the first space-separated word is the token.
    Returns ``(token, source)`` with source ``"query"``, ``"header"`` or
    ``"bearer"``, or ``(None, None)``.
    """
    value = _first(query, "token")
    if value:
        return value, "query"
    lowered = {key.lower(): item for key, item in headers.items()}
    header = lowered.get("x-consul-token")
    if header:
        return header, "header"
    authorization = lowered.get("authorization")
    if authorization:
        parts = authorization.split(" ")
        if len(parts) > 1 and parts[0].lower() == "bearer":
            token = " ".join(parts[1:]).strip().split(" ")[0].strip()
            return token, "bearer"
    return None, None


@attrs.frozen
class Query:
    """A service query as Consul understood it, every parameter parsed.

    ``wait`` is the blocking time asked for (``None``: not given, so the
    default); ``index`` is ``0`` for a non-blocking read. ``shape`` is what
    decides the body of the answer (not the headers), the key of the
    simulator's cache of encoded answers.
    """

    kind: str
    service: str
    datacenter: str
    filter: str
    stale: bool
    consistent: bool
    cached: bool
    pretty: bool
    wait: float | None
    index: int
    tags: tuple[str, ...]
    node_meta: tuple[tuple[str, str], ...]
    passing: bool

    @property
    def blocking(self) -> bool:
        """``index`` > 0: ``index=0`` or no index never blocks (agent/blockingquery ``Query``)."""
        return self.index > 0

    @property
    def consistency(self) -> str:
        """``X-Consul-Effective-Consistency``: ``stale``, ``consistent`` or ``leader`` (``ConsistencyLevel``)."""
        if self.stale:
            return "stale"
        return "consistent" if self.consistent else "leader"

    @property
    def shape(self) -> tuple[object, ...]:
        return (
            self.kind,
            self.datacenter,
            self.service,
            self.filter,
            tuple(sorted(tag.lower() for tag in self.tags)),
            tuple(sorted(self.node_meta)),
            self.passing,
            self.pretty,
        )

    def timeout(self) -> float:
        """Seconds to hold a blocking query before jitter, as ``RPCQueryTimeout``: ``<= 0`` is 5m, at most 10m."""
        if self.wait is None or self.wait <= 0:
            return DEFAULT_WAIT
        return min(self.wait, MAX_WAIT)


def _first(query: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in query if key == name), None)


def _has(query: Sequence[tuple[str, str]], name: str) -> bool:
    return any(key == name for key, _ in query)


def parse_query(
    kind: str, service: str, query: Sequence[tuple[str, str]], *, default_datacenter: str, use_cache: bool = True
) -> Query:
    """Parse a ``/v1/catalog/service/`` (``kind="catalog"``) or ``/v1/health/service/`` query; QueryError as Consul.

    The checks run in Consul's order: consistency flags (``parseConsistency``),
    ``wait`` then ``index`` (``parseWait``), the service name, then
    ``passing`` (health only). ``use_cache`` is the agent's
    ``http_config.use_cache`` (on by default): without it ``?cached`` is ignored.
    """
    datacenter = _first(query, "dc") or default_datacenter
    text = _first(query, "filter") or ""
    stale = _has(query, "stale")
    consistent = _has(query, "consistent")
    cached = _has(query, "cached") and use_cache
    if stale and consistent:
        raise QueryError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
    if cached and consistent:
        raise QueryError(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")
    wait: float | None = None
    wait_text = _first(query, "wait")
    if wait_text:
        try:
            wait = parse_duration(wait_text)
        except ValueError:
            raise QueryError(400, "Invalid wait time") from None
    index = 0
    index_text = _first(query, "index")
    if index_text:
        if not index_text.isascii() or not index_text.isdigit() or int(index_text) >= 2**64:
            raise QueryError(400, "Invalid index")
        index = int(index_text)
    node_meta: list[tuple[str, str]] = []
    for key, value in query:
        if key == "node-meta":
            name, _, wanted = value.partition(":")
            node_meta.append((name, wanted))
    tags = tuple(value for key, value in query if key == "tag")
    if not service:
        raise QueryError(400, "Missing service name")
    passing = False
    if kind == "health" and _has(query, "passing"):
        value = _first(query, "passing") or ""
        try:
            passing = True if value == "" else parse_bool(value)
        except ValueError:
            raise QueryError(400, "Invalid value for ?passing") from None
    return Query(
        kind=kind,
        service=service,
        datacenter=datacenter,
        filter=text,
        stale=stale,
        consistent=consistent,
        cached=cached,
        pretty=_has(query, "pretty"),
        wait=wait,
        index=index,
        tags=tags,
        node_meta=tuple(dict(node_meta).items()),
        passing=passing,
    )
