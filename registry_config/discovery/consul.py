"""Finding the registry's instances in Consul's catalog, as the seed does, and watching them change.

The seed's stager reads ``/v1/catalog/service/<service>`` with no timeout and
no status check, ignores ``ServicePort`` and reports every failure as a bare
"staging failed". :class:`ConsulBackend` asks the same question through the
maintained ``py-consul`` client (extra ``consul``), by default of the health
endpoint so that only instances whose checks pass are staged from, and:

- reads every key as optional (``ServiceTags`` may be ``null``,
  ``ServiceAddress`` absent or empty, meaning the node's ``Address``);
- turns a ``ServicePort`` of 0 into the query's ``default_port`` (the
  registry URL's port: the seed's "hardcoded port", made explicit);
- resolves a host name address through the injectable resolver, and skips,
  with a warning in the :class:`Discovery`, any entry whose address or port
  is unusable, so that no text from Consul reaches a builder flag;
- raises :class:`DiscoveryUnavailable`, :class:`DiscoveryAuthError` or
  :class:`DiscoveryProtocolError` naming the Consul URL, the service, what
  happened and what to check, never the token;
- watches with blocking queries (``index``/``wait``).

The token travels in the ``X-Consul-Token`` header only; it is never part of
a URL, a message, a ``repr`` or a log record.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, NoReturn

import requests

from ..address import bad_character, format_host, is_hostname, parse_ip, split_host_port
from ..errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
    InvalidInput,
    UnknownBackendError,
)
from ..resolver import Resolver, resolve
from .backend import BackendBase, StopSignal
from .model import Discovery, ServiceInstance, ServiceQuery

__all__ = ["ConsulBackend"]

log = logging.getLogger("registry_config.discovery.consul")

_CONSISTENCY = ("default", "stale", "consistent")
_ADDRESS = ("service", "node", "lan", "wan")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_URL_KEYS = (
    "address",
    "cached",
    "cert",
    "consistency",
    "dc",
    "filter",
    "key",
    "passing",
    "timeout",
    "token_file",
    "verify",
)
_MAX_TEXT = 80


def _consul_module() -> Any:
    """The ``consul`` package (py-consul), imported only when a Consul backend is made."""
    try:
        import consul
    except ImportError as exc:
        raise UnknownBackendError(
            "the consul discovery backend needs the py-consul package: pip install registry-config[consul]"
        ) from exc
    return consul


def _shown(value: object) -> str:
    """A value from Consul as a message may show it: repr'd (no raw newline or comma reaches a log) and short."""
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


class _Never:
    """A stop signal that is never set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class ConsulBackend(BackendBase):
    """The registry's instances as Consul's catalog (or health endpoint) lists them.

    ``url`` is the Consul agent's HTTP API (``http://127.0.0.1:8500``, or
    ``https://...:8501``). ``token`` is an ACL token; when ``None`` the
    ``CONSUL_HTTP_TOKEN`` variable is used, and an explicit token always wins
    over it. ``datacenter`` overrides the query's. ``passing_only=True`` asks
    ``/v1/health/service/<name>?passing`` (instances whose checks all pass);
    ``False`` asks ``/v1/catalog/service/<name>`` as the seed did.
    ``consistency`` is ``"default"``, ``"stale"`` (any server answers: the
    setting for many stagers) or ``"consistent"``; ``cached=True`` uses the
    agent's cache. ``verify`` (a bool or a CA bundle path) and ``cert`` (a
    client certificate path, or a ``(cert, key)`` pair) apply to HTTPS;
    ``timeout`` bounds every request in seconds (a blocking query adds its
    ``wait``). ``address`` picks which address an instance gets:
    ``"service"`` (``ServiceAddress``, else the node's ``Address``), ``"node"``
    (the node's ``Address``), or ``"lan"``/``"wan"`` (the service's tagged
    address, else the node's, else as ``"service"``, with a warning).
    ``filter`` is a Consul filter expression sent as is. ``resolver`` turns
    a host name address into IPs (default: the system's).

    ``watch_wait`` is the ``wait`` of each blocking query in seconds: it
    bounds how long ``stop`` takes to be noticed. ``watch_min_interval`` is
    the least time between two queries of a watch (Consul asks clients to
    rate-limit), ``watch_max_backoff`` caps the wait after failures.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8500",
        *,
        token: str | None = None,
        datacenter: str | None = None,
        passing_only: bool = True,
        consistency: str = "default",
        cached: bool = False,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        timeout: float = 5.0,
        address: str = "service",
        filter: str | None = None,
        resolver: Resolver | None = None,
        watch_wait: float = 1.0,
        watch_min_interval: float = 0.2,
        watch_max_backoff: float = 30.0,
    ) -> None:
        self._scheme, self._host, self._port = _parse_agent_url(url)
        if consistency not in _CONSISTENCY:
            raise InvalidInput(
                f"consul backend: consistency must be one of {', '.join(_CONSISTENCY)}, got {consistency!r}"
            )
        if address not in _ADDRESS:
            raise InvalidInput(f"consul backend: address must be one of {', '.join(_ADDRESS)}, got {address!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise InvalidInput(f"consul backend: timeout must be a number of seconds in (0, 600], got {timeout!r}")
        if datacenter is not None and not _SERVICE_NAME.match(datacenter):
            raise InvalidInput(f"consul backend: datacenter {datacenter!r} is not a Consul datacenter name")
        if filter is not None and (not isinstance(filter, str) or "\n" in filter or "\r" in filter):
            raise InvalidInput("consul backend: filter must be one line of Consul's filter language")
        if watch_wait <= 0 or watch_min_interval < 0 or watch_max_backoff <= 0:
            raise InvalidInput(
                "consul backend: watch_wait and watch_max_backoff must be positive, watch_min_interval >= 0"
            )
        if token is None:
            token = os.environ.get("CONSUL_HTTP_TOKEN") or None
        if token is not None:
            token = token.strip()
            if not token or bad_character(token) is not None:
                raise InvalidInput(
                    "consul backend: the token is empty or contains whitespace or control characters; "
                    "check the token file or CONSUL_HTTP_TOKEN"
                )
        self._token = token
        self.datacenter = datacenter
        self.passing_only = passing_only
        self.consistency = consistency
        self.cached = cached
        self.timeout = float(timeout)
        self.address = address
        self.filter = filter
        for what, path in (("verify", verify), *(("cert", item) for item in _cert_paths(cert))):
            if isinstance(path, str) and not os.path.exists(path):
                raise InvalidInput(f"consul backend: {what}={path!r} names no file; give the path of a PEM file")
        self._verify = verify
        self._resolver = resolver
        self.watch_wait = watch_wait
        self.watch_min_interval = watch_min_interval
        self.watch_max_backoff = watch_max_backoff
        consul = _consul_module()
        try:
            self._client = consul.Consul(
                host=self._host,
                port=self._port,
                scheme=self._scheme,
                verify=verify,
                cert=cert,
                connections_timeout=self.timeout,
            )
        except TypeError as exc:  # a py-consul without connections_timeout would make calls without a timeout
            raise UnknownBackendError(
                "the consul discovery backend needs py-consul 1.8 or later (request timeouts): "
                "pip install -U 'registry-config[consul]'"
            ) from exc

    # -- what it is -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The Consul agent's base URL (never with a token)."""
        return f"{self._scheme}://{format_host(self._host)}:{self._port}"

    @property
    def has_token(self) -> bool:
        """Whether requests carry an ACL token (its value is not readable here)."""
        return self._token is not None

    def __repr__(self) -> str:
        options = [repr(self.url)]
        if self._token is not None:
            options.append("token=<redacted>")
        for name, value, default in (
            ("datacenter", self.datacenter, None),
            ("passing_only", self.passing_only, True),
            ("consistency", self.consistency, "default"),
            ("cached", self.cached, False),
            ("verify", self._verify, True),
            ("timeout", self.timeout, 5.0),
            ("address", self.address, "service"),
            ("filter", self.filter, None),
        ):
            if value != default:
                options.append(f"{name}={value!r}")
        return f"ConsulBackend({', '.join(options)})"

    def close(self) -> None:
        """Close the HTTP session's pooled connections; safe to call more than once."""
        session = getattr(self._client.http, "session", None)
        if session is not None:
            session.close()

    # -- the backend URL ------------------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, *, resolver: Resolver | None = None) -> ConsulBackend:
        """A backend from ``consul://HOST[:PORT]?dc=..&passing=..`` or ``consul+https://...``.

        Query keys: ``dc``, ``passing`` (true/false), ``consistency``,
        ``cached``, ``timeout`` (seconds), ``address``, ``filter``,
        ``token_file`` (a file holding the ACL token), ``verify`` (true, false
        or a CA bundle path), ``cert`` and ``key`` (client certificate). A
        token is never accepted in the URL itself, which shows in process
        lists, shell history and logs: use ``token_file`` or
        ``CONSUL_HTTP_TOKEN``.
        """
        if not isinstance(url, str):
            raise InvalidInput(f"consul backend URL must be text, got {type(url).__name__}")
        scheme, sep, rest = url.partition("://")
        schemes = {"consul": "http", "consul+http": "http", "consul+https": "https"}
        if not sep or scheme.lower() not in schemes:
            raise InvalidInput(
                "consul backend URL must start with consul://, consul+http:// or consul+https:// "
                "(for example consul://127.0.0.1:8500?dc=dc1)"
            )
        http_scheme = schemes[scheme.lower()]
        split = _urlsplit(f"{http_scheme}://{rest}", what="consul backend URL")
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        if any(key == "token" for key, _ in query) or "@" in split.netloc:
            raise InvalidInput(
                "consul backend URL: a token may not be given in the URL (it would show in process lists, "
                "shell history and logs); use token_file=PATH in the URL, --consul-token-file or CONSUL_HTTP_TOKEN"
            )
        if split.path not in ("", "/") or split.fragment:
            raise InvalidInput(
                f"consul backend URL: unexpected {split.path or '#' + split.fragment!r}; "
                "give consul://HOST:PORT?options, with no path"
            )
        seen: dict[str, str] = {}
        for key, value in query:
            if key not in _URL_KEYS:
                raise InvalidInput(f"consul backend URL: unknown option {key!r}; known options: {', '.join(_URL_KEYS)}")
            if key in seen:
                raise InvalidInput(f"consul backend URL: option {key!r} is given twice")
            seen[key] = value
        netloc = split.netloc or "127.0.0.1"
        host, port = split_host_port(netloc, where="consul backend URL")
        if port is None:
            port = 8501 if http_scheme == "https" else 8500
        kwargs: dict[str, Any] = {}
        if "dc" in seen:
            kwargs["datacenter"] = seen["dc"] or None
        if "passing" in seen:
            kwargs["passing_only"] = _flag(seen["passing"], "passing")
        if "cached" in seen:
            kwargs["cached"] = _flag(seen["cached"], "cached")
        if "consistency" in seen:
            kwargs["consistency"] = seen["consistency"]
        if "address" in seen:
            kwargs["address"] = seen["address"]
        if "filter" in seen:
            kwargs["filter"] = seen["filter"] or None
        if "timeout" in seen:
            try:
                kwargs["timeout"] = float(seen["timeout"])
            except ValueError:
                raise InvalidInput(
                    f"consul backend URL: timeout={seen['timeout']!r} is not a number of seconds"
                ) from None
        if "verify" in seen:
            value = seen["verify"]
            kwargs["verify"] = (value.lower() in _TRUE) if value.lower() in _TRUE + _FALSE else value
        if "cert" in seen:
            kwargs["cert"] = (seen["cert"], seen["key"]) if "key" in seen else seen["cert"]
        elif "key" in seen:
            raise InvalidInput("consul backend URL: key= needs cert= (the client certificate)")
        if "token_file" in seen:
            kwargs["token"] = _read_token(seen["token_file"])
        return cls(f"{http_scheme}://{format_host(host)}:{port}", resolver=resolver, **kwargs)

    # -- discovering --------------------------------------------------------------------------------------------

    def discover(self, query: ServiceQuery) -> Discovery:
        """The instances Consul lists now for ``query``: one non-blocking read."""
        return self._fetch(query, index=None)

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """Yield the instances now, then again each time they change, using Consul blocking queries.

        The first error propagates (there is nothing to stage from yet);
        later ones are logged and retried with exponential backoff. An index
        that goes backwards or below 1 restarts from a non-blocking read, as
        Consul documents. Returns within about ``watch_wait`` seconds of
        ``stop`` being set.
        """
        signal: StopSignal = stop if stop is not None else _Never()
        if signal.is_set():
            return
        last = self._fetch(query, index=None)
        yield last
        index = last.index if last.index is not None and last.index >= 1 else 0
        failures = 0
        while not signal.is_set():
            started = time.monotonic()
            try:
                current = self._fetch(query, index=index or None)
            except DiscoveryError as exc:
                failures += 1
                delay = min(self.watch_max_backoff, max(self.watch_min_interval, 0.25) * 2 ** (failures - 1))
                delay *= random.uniform(0.8, 1.0)  # noqa: S311 (spreading retries, not a secret)
                log.warning(
                    "consul watch of service %r at %s failed (%s); retrying in %.1fs", query.name, self.url, exc, delay
                )
                if signal.wait(delay):
                    return
                continue
            if failures:
                log.info("consul watch of service %r at %s recovered", query.name, self.url)
            failures = 0
            new_index = current.index
            # Consul's rule: an index that went backwards, or is below 1, restarts from a plain read.
            index = 0 if new_index is None or new_index < 1 or new_index < index else new_index
            if current.instances != last.instances:
                last = current
                yield current
                if signal.is_set():
                    return
            # Rate limit: at least watch_min_interval between queries. An index that went backwards costs one
            # plain read at once; without a usable index at all (none, or below 1) no query can block, so the
            # watch polls every watch_wait seconds instead of hammering Consul.
            unusable = new_index is None or new_index < 1
            pause = max(self.watch_min_interval, self.watch_wait) if unusable else self.watch_min_interval
            spent = time.monotonic() - started
            if spent < pause and signal.wait(pause - spent):
                return

    def _fetch(self, query: ServiceQuery, *, index: int | None) -> Discovery:
        if not isinstance(query, ServiceQuery):
            raise InvalidInput(f"consul backend: expected a ServiceQuery, got {type(query).__name__}")
        name = query.name
        if not _SERVICE_NAME.match(name):
            raise InvalidInput(
                f"consul backend: {name!r} is not a Consul service name (letters, digits, '_', '-' and '.')"
            )
        datacenter = self.datacenter or query.datacenter
        endpoint = "health" if self.passing_only else "catalog"
        path = f"/v1/{endpoint}/service/{name}"
        params: list[tuple[str, str]] = []
        if datacenter:
            params.append(("dc", datacenter))
        params.extend(("tag", tag) for tag in query.tags)
        if self.passing_only:
            params.append(("passing", "1"))
        if self.consistency != "default":
            params.append((self.consistency, "1"))
        if self.cached:
            params.append(("cached", "1"))
        if self.filter:
            params.append(("filter", self.filter))
        if index:
            params.extend((("index", str(index)), ("wait", f"{self.watch_wait:g}s")))
        headers = {"X-Consul-Token": self._token} if self._token is not None else {}
        where = f"Consul at {self.url}, service {name!r}" + (f" in datacenter {datacenter!r}" if datacenter else "")
        response = self._get(path, params, headers, where)
        return self._interpret(query, response, where, endpoint)

    def _get(self, path: str, params: list[tuple[str, str]], headers: dict[str, str], where: str) -> Any:
        try:
            return self._client.http.get(lambda response: response, path, params=params, headers=headers)
        except requests.exceptions.SSLError as exc:
            raise DiscoveryUnavailable(
                f"{where}: the TLS handshake failed ({type(exc).__name__}); check the agent's certificate, "
                "verify= (a CA bundle) and cert="
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise DiscoveryUnavailable(
                f"{where}: no answer within {self.timeout:g}s; check that the agent is up and not overloaded, "
                "or raise timeout="
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise DiscoveryUnavailable(
                f"{where}: cannot connect or the connection was dropped ({_reason(exc)}); check that a Consul "
                "agent listens there and the network between"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise DiscoveryUnavailable(
                f"{where}: the HTTP request failed ({type(exc).__name__}); check the agent and the network"
            ) from exc
        except Exception as exc:  # a py-consul internal failure must not escape unwrapped
            raise DiscoveryUnavailable(
                f"{where}: the Consul client failed ({type(exc).__name__}); check the agent URL and py-consul"
            ) from exc

    def _redact(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "<redacted>")
        return text

    def _interpret(self, query: ServiceQuery, response: Any, where: str, endpoint: str) -> Discovery:
        code = int(response.code)
        headers: Mapping[str, str] = response.headers
        body = response.body if isinstance(response.body, str) else str(response.body)
        if code != 200:
            self._raise_status(code, body, where)
        index = _index(headers.get("X-Consul-Index"), where)
        warnings: list[str] = []
        if index is None:
            warnings.append(f"{where}: the answer has no X-Consul-Index header; is this a Consul agent?")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise DiscoveryProtocolError(
                f"{where}: the answer is not JSON ({self._redact(_shown(body[:60]))}); check that the URL points "
                "at a Consul agent's HTTP API and not at a proxy or another service"
            ) from exc
        if not isinstance(data, list):
            raise DiscoveryProtocolError(
                f"{where}: expected a JSON list of service entries, got a JSON {type(data).__name__}; "
                "check that the URL points at a Consul agent's HTTP API"
            )
        if str(headers.get("X-Consul-Results-Filtered-By-ACLs", "")).lower() == "true":
            warnings.append(
                f"{where}: Consul's ACLs hid some entries, so this list may be partial; check that the token's "
                f"policy grants service:read on {query.name!r} and node:read on the nodes running it"
            )
        if str(headers.get("X-Consul-KnownLeader", "true")).lower() == "false":
            warnings.append(f"{where}: the Consul servers have no known leader; this answer may be out of date")
        instances = self._read_entries(query, data, where, endpoint == "health", warnings)
        source = f"consul {self.url}/v1/{endpoint}/service/{query.name}"
        return Discovery(query, instances, source=source, index=index, warnings=warnings)

    def _raise_status(self, code: int, body: str, where: str) -> NoReturn:
        said = self._redact(_shown(body.strip()[:200]))
        if code == 403 or code == 401:
            raise DiscoveryAuthError(
                f"{where}: Consul refused the ACL token (HTTP {code}: {said}); check that the token exists in this "
                "datacenter and its policy grants service:read and node:read (token from token=, --consul-token-file "
                "or CONSUL_HTTP_TOKEN)"
            )
        if code == 429:
            raise DiscoveryUnavailable(
                f"{where}: Consul is rate limiting requests (HTTP 429: {said}); retry later or use "
                "consistency='stale' or cached=True to spread the load"
            )
        if 500 <= code <= 599:
            hint = "check the Consul servers' health and the agent's logs"
            if "No path to datacenter" in body:
                hint = "check the datacenter name (the URL's .service.<dc>.consul part or dc=) and WAN federation"
            elif "No cluster leader" in body:
                hint = (
                    "the servers have no leader (lost quorum?): check the Consul servers, or use "
                    "consistency='stale' to read from a follower"
                )
            raise DiscoveryUnavailable(f"{where}: Consul failed (HTTP {code}: {said}); {hint}")
        hint = "check the filter expression and the backend's options" if code == 400 else "check the agent URL"
        raise DiscoveryProtocolError(f"{where}: Consul answered HTTP {code} ({said}); {hint}")

    # -- one entry ----------------------------------------------------------------------------------------------
    #
    # The hot path of a big answer (100k entries): each entry is walked once, each text field checked once, the
    # address parsed once, and the instance built without running the converters again on what was just checked.
    # Labels for warnings are only made when there is something to warn about.

    def _read_entries(
        self, query: ServiceQuery, data: list[Any], where: str, health: bool, warnings: list[str]
    ) -> list[ServiceInstance]:
        """The instances of every entry, in order; each entry skipped says why in ``warnings``.

        Each entry is let go of once read (``data`` is the reader's own, from
        ``json.loads``): the decoded answer is the bulk of what the garbage
        collector scans, and freeing it while the instances are made keeps
        the collector from running over it again and again.
        """
        instances: list[ServiceInstance] = []
        append = instances.append
        passing_only = self.passing_only
        by_service_address = self.address == "service"
        port_or_default = query.port_or_default
        parse = parse_ip
        trusted = ServiceInstance._trusted
        ipv4 = IPv4Address
        for position, entry in enumerate(data):
            data[position] = None
            if not isinstance(entry, dict):
                warnings.append(f"{where}, entry #{position}: not a JSON object ({_shown(entry)}); skipped")
                continue
            healthy: bool | None = None
            if health:  # {"Node": {...}, "Service": {...}, "Checks": [...]}
                found = entry.get("Node")
                node_fields: dict[str, Any] = found if isinstance(found, dict) else _EMPTY
                found = entry.get("Service")
                service: dict[str, Any] = found if isinstance(found, dict) else _EMPTY
                node_value = node_fields.get("Node")
                node_address = node_fields.get("Address")
                service_address = service.get("Address")
                port = service.get("Port")
                tags_value = service.get("Tags")
                meta_value = service.get("Meta")
                sid = service.get("ID")
                checks = entry.get("Checks")
                if isinstance(checks, list):
                    healthy = True
                    for check in checks:
                        if not isinstance(check, dict) or check.get("Status") != "passing":
                            healthy = False
                            break
                if passing_only and healthy is False:
                    warnings.append(
                        f"{where}, entry #{position}: a check is not passing although ?passing was asked; skipped"
                    )
                    continue
            else:  # the catalog's flat entry
                get = entry.get
                node_value = get("Node")
                node_address = get("Address")
                service_address = get("ServiceAddress")
                port = get("ServicePort")
                tags_value = get("ServiceTags")
                meta_value = get("ServiceMeta")
                sid = get("ServiceID")
            node = node_value if isinstance(node_value, str) else None
            if port is None:
                port = 0
            if by_service_address:
                address: object = (
                    service_address if isinstance(service_address, str) and service_address else node_address
                )
            else:
                if health:
                    node_tagged, service_tagged = node_fields.get("TaggedAddresses"), service.get("TaggedAddresses")
                else:
                    node_tagged, service_tagged = entry.get("TaggedAddresses"), entry.get("ServiceTaggedAddresses")
                address, port, note = self._pick(node_address, service_address, service_tagged, node_tagged, port)
                if note:
                    warnings.append(f"{_label(where, position, node)}: {note}")
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                warnings.append(
                    f"{_label(where, position, node)}: port {_shown(port)} is not a number in 0..65535; skipped"
                )
                continue
            chosen_port = port_or_default(port)
            if chosen_port is None:
                warnings.append(
                    f"{_label(where, position, node)}: port {port} means the registry URL's port, but the query has "
                    "no default_port; skipped"
                )
                continue
            if not isinstance(address, str) or not address:
                warnings.append(
                    f"{_label(where, position, node)}: no address (neither service nor node address); skipped"
                )
                continue
            ip = parse(address)  # a literal IP (the common case) needs no other check: it holds no hostile character
            ips = (ip,) if ip is not None else self._addresses(address, _label(where, position, node), warnings)
            if not ips:
                continue
            if not tags_value:
                tags: tuple[str, ...] = ()
            elif isinstance(tags_value, list):
                tags = tuple(tag for tag in tags_value if isinstance(tag, str))
            else:
                tags = ()
            meta = (
                {k: v for k, v in meta_value.items() if isinstance(k, str) and isinstance(v, str)}
                if isinstance(meta_value, dict) and meta_value
                else None
            )
            service_id = sid if isinstance(sid, str) else None
            for found in ips:
                if type(found) is ipv4:  # checked: a plain IPv4 object; the port is in 1..65535
                    # An IPv4 text that parsed is canonical (ipaddress and parse_ip accept no other form): it is
                    # what str(found) writes, so the endpoint comes for free.
                    endpoint = f"{address}:{chosen_port}" if found is ip else None
                    append(trusted(found, chosen_port, node, service_id, tags, meta, healthy, endpoint))
                else:  # IPv6 (maybe IPv4-mapped) and whatever a resolver returned: the converters decide
                    append(
                        ServiceInstance(
                            found,
                            chosen_port,
                            node=node,
                            service_id=service_id,
                            tags=tags,
                            meta=meta or {},
                            healthy=healthy,
                        )
                    )
        return instances

    def _pick(
        self, node_address: object, service_address: object, service_tagged: object, node_tagged: object, port: object
    ) -> tuple[object, object, str | None]:
        """The address and port the ``address`` option selects, and a note when it had to fall back."""
        if self.address == "node":
            return node_address, port, None
        fallback = service_address if isinstance(service_address, str) and service_address else node_address
        if self.address == "service":
            return fallback, port, None
        if isinstance(service_tagged, dict) and isinstance(service_tagged.get(self.address), dict):
            item = service_tagged[self.address]
            tagged_port = item.get("port", port)
            return item.get("address"), tagged_port if tagged_port is not None else 0, None
        if isinstance(node_tagged, dict) and node_tagged.get(self.address):
            return node_tagged[self.address], port, None
        return fallback, port, f"no {self.address} tagged address; used the service address"

    def _addresses(self, text: str, label: str, warnings: list[str]) -> tuple[Any, ...]:
        if bad_character(text) is not None or "," in text or "://" in text or "/" in text:
            warnings.append(f"{label}: address {_shown(text)} is not an IP address or host name; skipped")
            return ()
        ip = parse_ip(text)
        if ip is not None:
            return (ip,)
        if not is_hostname(text):
            warnings.append(f"{label}: address {_shown(text)} is not an IP address or host name; skipped")
            return ()
        try:
            found = resolve(text.lower(), self._resolver)
        except OSError as exc:
            warnings.append(f"{label}: host name {text!r} does not resolve ({exc}); skipped")
            return ()
        except Exception as exc:  # noqa: BLE001 (a third-party resolver's failure skips one entry, not the answer)
            warnings.append(f"{label}: resolving {text!r} failed ({type(exc).__name__}); skipped")
            return ()
        if not found:
            warnings.append(f"{label}: host name {text!r} resolved to no IP address; skipped")
        return found


# -- helpers -------------------------------------------------------------------------------------------------------


_EMPTY: dict[str, Any] = {}


def _label(where: str, position: int, node: str | None) -> str:
    """How a warning names an entry: its position in the answer, and its node when it has one."""
    at = f"{where}, entry #{position}"
    return f"{at} (node {_shown(node)})" if node else at


def _index(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        raise DiscoveryProtocolError(
            f"{where}: X-Consul-Index {_shown(value)} is not a number; check that the URL points at a Consul agent"
        )
    return int(text)


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (urllib3 nests the real cause deep inside)."""
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Connection aborted", "Remote end closed", "timed out"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__


def _cert_paths(cert: str | tuple[str, str] | None) -> tuple[object, ...]:
    if cert is None:
        return ()
    return tuple(cert) if isinstance(cert, tuple) else (cert,)


def _flag(value: str, key: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE or lowered == "":
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"consul backend URL: {key}={value!r} is not true or false")


def _read_token(path: str) -> str:
    if not path:
        raise InvalidInput("consul backend URL: token_file= is empty; give the path of a file holding the token")
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"consul backend: cannot read the token file {path!r} ({type(exc).__name__}); check the path "
            "and its permissions"
        ) from exc
    if not token:
        raise InvalidInput(f"consul backend: the token file {path!r} is empty")
    return token


def _urlsplit(url: str, *, what: str) -> urllib.parse.SplitResult:
    """:func:`urllib.parse.urlsplit`, whose ``ValueError`` for a broken ``[...]`` host becomes ours."""
    try:
        return urllib.parse.urlsplit(url)
    except ValueError as exc:  # its text may quote the URL: not repeated here
        raise InvalidInput(
            f"{what}: the host part is not valid (a '[' or ']' without an IPv6 address between them); "
            "write an IPv6 address in brackets as [addr]:port"
        ) from exc


def _parse_agent_url(url: str) -> tuple[str, str, int]:
    if not isinstance(url, str):
        raise InvalidInput(f"consul backend: the agent URL must be text, got {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise InvalidInput(
            "consul backend: the agent URL must be http://HOST:PORT or https://HOST:PORT "
            "(for example http://127.0.0.1:8500)"
        )
    split = _urlsplit(url, what="consul backend: the agent URL")
    if "@" in split.netloc:
        raise InvalidInput(
            "consul backend: the agent URL may not carry credentials; pass token= or set CONSUL_HTTP_TOKEN"
        )
    if split.path not in ("", "/") or split.query or split.fragment:
        raise InvalidInput(
            "consul backend: the agent URL is scheme://host:port only, without a path or query; "
            "options are keyword arguments"
        )
    host, port = split_host_port(split.netloc, where="consul agent URL")
    scheme = scheme.lower()
    return scheme, host, port if port is not None else (8501 if scheme == "https" else 8500)
