"""What a Consul backend is told: its arguments, its ``consul://`` URL and Consul's own environment variables.

Everything here is decided when a backend is made, so that a request never
fails on something the user could have been told up front: a bad option, a
combination Consul refuses (``cached`` with ``consistency="consistent"``
answers ``400`` to every request), a CA file that does not exist.

Consul's command-line tools and its Go client read these variables
(``api/api.go``, ``DefaultConfig`` and ``NewClient``), and so does the
backend, an explicit argument always winning over the environment:

``CONSUL_HTTP_ADDR``        the agent, ``host:port`` or ``http(s)://host:port``
``CONSUL_HTTP_TOKEN``       the ACL token
``CONSUL_HTTP_TOKEN_FILE``  a file holding it (wins over ``CONSUL_HTTP_TOKEN``, as in ``NewClient``)
``CONSUL_CACERT``           a CA bundle to verify the agent's certificate (``CONSUL_CAPATH``: a directory)
``CONSUL_CLIENT_CERT``/``CONSUL_CLIENT_KEY``  a client certificate and its key
``CONSUL_HTTP_SSL_VERIFY``  ``false`` turns verification off

No proxy variable is read: the agent is local, and a proxy would see the token.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ...address import bad_character, format_host, split_host_port
from ...errors import InvalidInput
from ...redact import quote

__all__ = [
    "ADDRESS_MODES",
    "CONSISTENCY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WATCH_WAIT",
    "ConsulSettings",
    "agent_from_url",
    "read_token_file",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a request may take (a blocking query adds its wait): above Consul's 7 s ``rpc_hold_timeout``."""
DEFAULT_WATCH_WAIT = 300.0
"""The ``wait`` of a watch's blocking queries: Consul's own default, 5 minutes."""
DEFAULT_WATCH_INTERVAL = 5.0
"""Under churn, a watch makes one query per this many seconds once its burst is spent."""
DEFAULT_WATCH_BURST = 2
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
MAX_WAIT = 600.0
"""Consul caps a blocking query's ``wait`` at 10 minutes."""

CONSISTENCY = ("default", "stale", "consistent")
ADDRESS_MODES = ("service", "node", "lan", "wan", "lan_ipv4", "wan_ipv4", "lan_ipv6", "wan_ipv6")

_DATACENTER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_TRUE = ("1", "true", "yes", "on", "t")
_FALSE = ("0", "false", "no", "off", "f")
_URL_KEYS = (
    "address",
    "cached",
    "cert",
    "consistency",
    "dc",
    "filter",
    "key",
    "max_response_bytes",
    "passing",
    "timeout",
    "token_file",
    "verify",
    "watch_min_interval",
    "watch_wait",
)


def _hidden(token: str | None) -> str:
    return "None" if token is None else "<redacted>"


@attrs.frozen(repr=False)
class ConsulSettings:
    """A backend's settings, checked; ``token`` never shows in ``repr``."""

    scheme: str
    host: str
    port: int
    token: str | None
    verify: bool | str
    cert: str | tuple[str, str] | None
    timeout: float
    max_response_bytes: int
    datacenter: str | None
    passing_only: bool
    consistency: str
    cached: bool
    address: str
    filter: str | None
    watch_wait: float
    watch_min_interval: float
    watch_burst: int
    watch_max_backoff: float

    @property
    def url(self) -> str:
        """The agent's base URL, ``scheme://host:port`` (an IPv6 host in brackets)."""
        return f"{self.scheme}://{format_host(self.host)}:{self.port}"

    def __repr__(self) -> str:
        return f"ConsulSettings({self.url!r}, token={_hidden(self.token)})"

    @classmethod
    def make(
        cls,
        url: str | None,
        *,
        token: str | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> ConsulSettings:
        """Settings from a backend's arguments, the environment filling in what they leave out."""
        env = os.environ if environ is None else environ
        if url is None:
            url = agent_from_environment(env)
        scheme, host, port = parse_agent_url(url)
        if token is None:
            token = token_from_environment(env)
        if token is not None:
            token = _checked_token(token)
        if verify is None:
            verify = verify_from_environment(env)
        if cert is None:
            cert = cert_from_environment(env)
        for what, path in (("verify", verify), *(("cert", item) for item in _cert_paths(cert))):
            if isinstance(path, str) and not os.path.exists(path):
                raise InvalidInput(
                    f"consul backend: {what}={quote(path)} names no file; give the path of a PEM file "
                    "(from the argument, the backend URL, CONSUL_CACERT or CONSUL_CLIENT_CERT/KEY)"
                )
        settings = cls(scheme=scheme, host=host, port=port, token=token, verify=verify, cert=cert, **options)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse what Consul would refuse at every request, and values that make no sense."""
        if self.consistency not in CONSISTENCY:
            raise InvalidInput(
                f"consul backend: consistency must be one of {', '.join(CONSISTENCY)}, got {quote(self.consistency)}"
            )
        if self.cached and self.consistency == "consistent":
            # agent/http.go parseConsistency: "Cannot specify ?cached with ?consistent, conflicting semantics."
            raise InvalidInput(
                "consul backend: cached=True with consistency='consistent' is refused by Consul (HTTP 400 "
                '"Cannot specify ?cached with ?consistent"); drop one of them'
            )
        if self.address not in ADDRESS_MODES:
            raise InvalidInput(
                f"consul backend: address must be one of {', '.join(ADDRESS_MODES)}, got {quote(self.address)}"
            )
        _seconds("timeout", self.timeout, upper=600)
        _seconds("watch_wait", self.watch_wait, upper=MAX_WAIT)
        _seconds("watch_max_backoff", self.watch_max_backoff, upper=3600)
        _seconds("watch_min_interval", self.watch_min_interval, upper=3600, zero=True)
        if isinstance(self.watch_burst, bool) or not isinstance(self.watch_burst, int) or self.watch_burst < 1:
            raise InvalidInput(f"consul backend: watch_burst must be a whole number >= 1, got {self.watch_burst!r}")
        if (
            isinstance(self.max_response_bytes, bool)
            or not isinstance(self.max_response_bytes, int)
            or self.max_response_bytes < 1
        ):
            raise InvalidInput(
                f"consul backend: max_response_bytes must be a whole number of bytes >= 1, got "
                f"{self.max_response_bytes!r}"
            )
        if self.datacenter is not None and not (
            isinstance(self.datacenter, str) and _DATACENTER.match(self.datacenter)
        ):
            raise InvalidInput(f"consul backend: datacenter {quote(self.datacenter)} is not a Consul datacenter name")
        if self.filter is not None and (not isinstance(self.filter, str) or "\n" in self.filter or "\r" in self.filter):
            raise InvalidInput("consul backend: filter must be one line of Consul's filter language")


def _seconds(name: str, value: object, *, upper: float, zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        assert isinstance(value, (int, float))
        ok = (value >= 0 if zero else value > 0) and value <= upper
    if not ok:
        low = "[0" if zero else "(0"
        raise InvalidInput(f"consul backend: {name} must be a number of seconds in {low}, {upper:g}], got {value!r}")


def _checked_token(token: str) -> str:
    if not isinstance(token, str):
        raise InvalidInput(f"consul backend: the token must be text, got {type(token).__name__}")
    token = token.strip()
    if not token or bad_character(token) is not None:
        raise InvalidInput(
            "consul backend: the token is empty or contains whitespace or control characters; "
            "check the token file, CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE"
        )
    return token


def _cert_paths(cert: str | tuple[str, str] | None) -> tuple[object, ...]:
    if cert is None:
        return ()
    return tuple(cert) if isinstance(cert, tuple) else (cert,)


# -- the environment ----------------------------------------------------------------------------------------------


def agent_from_environment(env: Mapping[str, str]) -> str:
    """``CONSUL_HTTP_ADDR`` as an agent URL, or the local agent's (``http://127.0.0.1:8500``)."""
    text = env.get("CONSUL_HTTP_ADDR", "").strip()
    if not text:
        return "http://127.0.0.1:8500"
    if text.lower().startswith("unix://"):
        raise InvalidInput(
            "consul backend: CONSUL_HTTP_ADDR names a unix socket, which this backend does not speak; "
            "give the agent's HTTP address (host:port) or pass url="
        )
    if "://" not in text:
        text = "http://" + text
    return text


def token_from_environment(env: Mapping[str, str]) -> str | None:
    """The token of ``CONSUL_HTTP_TOKEN_FILE`` if set (as Consul's ``NewClient`` does), else ``CONSUL_HTTP_TOKEN``."""
    path = env.get("CONSUL_HTTP_TOKEN_FILE", "")
    if path:
        return read_token_file(path, where="CONSUL_HTTP_TOKEN_FILE")
    return env.get("CONSUL_HTTP_TOKEN") or None


def verify_from_environment(env: Mapping[str, str]) -> bool | str:
    """``CONSUL_HTTP_SSL_VERIFY=false`` turns verification off; else ``CONSUL_CACERT``/``CONSUL_CAPATH``, else on."""
    flag = env.get("CONSUL_HTTP_SSL_VERIFY", "").strip()
    if flag:
        if flag.lower() in _FALSE:
            return False
        if flag.lower() not in _TRUE:
            raise InvalidInput(f"consul backend: CONSUL_HTTP_SSL_VERIFY={quote(flag)} is not true or false")
    return env.get("CONSUL_CACERT") or env.get("CONSUL_CAPATH") or True


def cert_from_environment(env: Mapping[str, str]) -> str | tuple[str, str] | None:
    """``CONSUL_CLIENT_CERT`` (with ``CONSUL_CLIENT_KEY`` when set), or no client certificate."""
    cert, key = env.get("CONSUL_CLIENT_CERT", ""), env.get("CONSUL_CLIENT_KEY", "")
    if key and not cert:
        raise InvalidInput("consul backend: CONSUL_CLIENT_KEY is set without CONSUL_CLIENT_CERT")
    if not cert:
        return None
    return (cert, key) if key else cert


def read_token_file(path: str, *, where: str = "token_file") -> str:
    """The token a file holds (surrounding whitespace dropped); a missing, unreadable or empty file is refused."""
    if not path:
        raise InvalidInput(f"consul backend: {where} is empty; give the path of a file holding the token")
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"consul backend: cannot read the token file {quote(path)} ({type(exc).__name__}); check the path "
            "and its permissions"
        ) from exc
    if not token:
        raise InvalidInput(f"consul backend: the token file {quote(path)} is empty")
    return token


# -- URLs ---------------------------------------------------------------------------------------------------------


def _urlsplit(url: str, *, what: str) -> urllib.parse.SplitResult:
    """:func:`urllib.parse.urlsplit`, whose ``ValueError`` for a broken ``[...]`` host becomes ours."""
    try:
        return urllib.parse.urlsplit(url)
    except ValueError as exc:  # its text may quote the URL: not repeated here
        raise InvalidInput(
            f"{what}: the host part is not valid (a '[' or ']' without an IPv6 address between them); "
            "write an IPv6 address in brackets as [addr]:port"
        ) from exc


def parse_agent_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an agent URL ``http(s)://host[:port]``; the port defaults to 8500/8501."""
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


def _flag(value: str, key: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE or lowered == "":
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"consul backend URL: {key}={quote(value)} is not true or false")


def _number(text: str, key: str, kind: type[float] | type[int]) -> float | int:
    try:
        return kind(text)
    except ValueError:
        what = "a number of seconds" if kind is float else "a whole number of bytes"
        raise InvalidInput(f"consul backend URL: {key}={quote(text, limit=40)} is not {what}") from None


def agent_from_url(url: str) -> tuple[str | None, dict[str, Any]]:
    """The agent URL and the backend's keyword arguments that ``consul://HOST[:PORT]?options`` spells.

    ``consul://`` with no host means ``CONSUL_HTTP_ADDR``, or the local agent.
    A token is never accepted in the URL itself (it would show in process
    lists, shell history and logs).
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
            "consul backend URL: unexpected path or fragment; give consul://HOST:PORT?options, with no path"
        )
    seen: dict[str, str] = {}
    for key, value in query:
        if key not in _URL_KEYS:
            raise InvalidInput(
                f"consul backend URL: unknown option {quote(key, limit=40)}; known options: {', '.join(_URL_KEYS)}"
            )
        if key in seen:
            raise InvalidInput(f"consul backend URL: option {key!r} is given twice")
        seen[key] = value
    agent: str | None = None
    if split.netloc:
        host, port = split_host_port(split.netloc, where="consul backend URL")
        if port is None:
            port = 8501 if http_scheme == "https" else 8500
        agent = f"{http_scheme}://{format_host(host)}:{port}"
    elif scheme.lower() == "consul+https":
        agent = "https://127.0.0.1:8501"
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
        kwargs["timeout"] = _number(seen["timeout"], "timeout", float)
    for key in ("watch_wait", "watch_min_interval"):
        if key in seen:
            kwargs[key] = _number(seen[key], key, float)
    if "max_response_bytes" in seen:
        kwargs["max_response_bytes"] = _number(seen["max_response_bytes"], "max_response_bytes", int)
    if "verify" in seen:
        value = seen["verify"]
        kwargs["verify"] = (value.lower() in _TRUE) if value.lower() in _TRUE + _FALSE else value
    if "cert" in seen:
        kwargs["cert"] = (seen["cert"], seen["key"]) if "key" in seen else seen["cert"]
    elif "key" in seen:
        raise InvalidInput("consul backend URL: key= needs cert= (the client certificate)")
    if "token_file" in seen:
        kwargs["token"] = read_token_file(seen["token_file"], where="consul backend URL: token_file=")
    return agent, kwargs
