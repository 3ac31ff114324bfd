"""What one HTTP answer of Consul means: a list of entries, or a typed error saying what to do.

The statuses and bodies are those of a live agent (``agent/http.go``,
``agent/catalog_endpoint.go``, ``agent/health_endpoint.go``):

- ``400`` is a query Consul refuses (``Invalid wait time``, ``Cannot specify
  ?cached with ?consistent...``): :class:`DiscoveryQueryError`, to be fixed,
  not retried;
- ``500`` whose body begins ``Failed to create boolean expression evaluator``
  (maybe after ``rpc error making call:``) is a filter Consul refuses: also a
  :class:`DiscoveryQueryError`, although the status says "server error";
- ``500 No cluster leader`` and ``500 No path to datacenter``, other ``5xx``
  and ``429`` are :class:`DiscoveryUnavailable`; ``401``/``403``
  :class:`DiscoveryAuthError`;
- an ``X-Consul-Index`` that is not an unsigned 64-bit decimal, a body that
  is not JSON (or nests deeper than the decoder can follow), or JSON that
  is not a list, is :class:`DiscoveryProtocolError`.

Every text echoed from the answer is redacted of the token first, then
shortened (:func:`echo`): a token that straddles the cut cannot leak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from ...errors import DiscoveryAuthError, DiscoveryProtocolError, DiscoveryQueryError, DiscoveryUnavailable
from ...redact import quote

try:  # the typed decoder (msgspec, extra "consul"); without it every answer takes the generic path
    from .decode import decode_typed
except ImportError:  # pragma: no cover (msgspec is in the consul extra)
    decode_typed = None  # type: ignore[assignment]

__all__ = ["decode_entries", "echo", "parse_index", "raise_for_status"]

_INDEX = re.compile(r"[0-9]{1,20}\Z")
_MAX_INDEX = 2**64 - 1
_FILTER_REFUSED = "Failed to create boolean expression evaluator"
_RPC_PREFIX = "rpc error making call:"
_REDACT_WINDOW = 64 * 1024


def echo(text: str | bytes, secrets: Sequence[str], *, limit: int = 200) -> str:
    """Server text as a message may quote it: redacted first, then shortened, printable and quoted.

    Only a prefix of a long text is looked at (an answer may be hundreds of
    megabytes): ``64 KiB`` plus twice the longest secret, so that a secret
    starting anywhere in what could be shown is whole inside it, redacted
    before the cut.
    """
    if isinstance(text, bytes):
        text = text[: _REDACT_WINDOW * 4].decode("utf-8", "replace")
    longest = max((len(secret) for secret in secrets if secret), default=0)
    window = _REDACT_WINDOW + 2 * longest
    if len(text) > window:
        text = text[:window]
    return quote(text, secrets=secrets, limit=limit)


def parse_index(value: str | None, where: str, secrets: Sequence[str]) -> int | None:
    """The ``X-Consul-Index`` header as an int (``None`` when absent); anything but a uint64 is refused."""
    if value is None:
        return None
    text = value.strip(" \t")
    if not _INDEX.match(text) or int(text) > _MAX_INDEX:
        raise DiscoveryProtocolError(
            f"{where}: X-Consul-Index {echo(value, secrets, limit=40)} is not an unsigned 64-bit number; check that "
            "the URL points at a Consul agent and not at a proxy or another service"
        )
    return int(text)


def decode_entries(body: str | bytes, where: str, secrets: Sequence[str]) -> list[Any]:
    """The JSON list of entries a body holds; a body that is not one is :class:`DiscoveryProtocolError`.

    A well-formed answer is decoded by the typed decoder (:mod:`.decode`)
    straight into the few fields the reader uses; any answer it refuses (one
    hostile entry, a body that is not a JSON list...) is decoded again here
    by :func:`json.loads`, and the reader's per-entry checks skip only what
    is wrong, with the same warnings and errors as ever.
    """
    if decode_typed is not None:
        entries = decode_typed(body)
        if entries is not None:
            return entries
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; RecursionError: deep nesting
        what = "nests deeper than a Consul answer does" if isinstance(exc, RecursionError) else "is not JSON"
        raise DiscoveryProtocolError(
            f"{where}: the answer {what} ({echo(body, secrets, limit=60)}); check that the URL points at a Consul "
            "agent's HTTP API and not at a proxy or another service"
        ) from exc
    if not isinstance(data, list):
        raise DiscoveryProtocolError(
            f"{where}: expected a JSON list of service entries, got a JSON {type(data).__name__}; "
            "check that the URL points at a Consul agent's HTTP API"
        )
    return data


def _refused_filter(body: str) -> bool:
    text = body.lstrip()
    while text.startswith(_RPC_PREFIX):
        text = text[len(_RPC_PREFIX) :].lstrip()
    return text.startswith(_FILTER_REFUSED)


def raise_for_status(
    code: int, body: str | bytes, where: str, secrets: Sequence[str], *, filter: str | None = None
) -> NoReturn:
    """Raise the error a non-200 answer means, quoting its body (redacted, shortened) and saying what to do."""
    text = body if isinstance(body, str) else body[: _REDACT_WINDOW * 4].decode("utf-8", "replace")
    said = echo(text.strip(), secrets)
    if code in (401, 403):
        raise DiscoveryAuthError(
            f"{where}: Consul refused the ACL token (HTTP {code}: {said}); check that the token exists in this "
            "datacenter and its policy grants service:read and node:read (token from token=, --consul-token-file, "
            "CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)"
        )
    if code == 429:
        raise DiscoveryUnavailable(
            f"{where}: Consul is rate limiting requests (HTTP 429: {said}); retry later or use "
            "consistency='stale' or cached=True to spread the load"
        )
    if code == 500 and _refused_filter(text):
        shown = quote(filter, secrets=secrets, limit=120) if filter is not None else "(none given)"
        raise DiscoveryQueryError(
            f"{where}: Consul refused the filter {shown} (HTTP 500: {said}); fix the expression: selectors are the "
            "entry's field names (Service.Tags, Service.Meta.key, Node.Node on the health endpoint; ServiceTags, "
            "ServiceMeta.key, Node on the catalog), values are quoted"
        )
    if code == 400:
        raise DiscoveryQueryError(
            f"{where}: Consul refused the query (HTTP 400: {said}); fix the backend's options (filter, consistency, "
            "cached, datacenter, tags): retrying the same query cannot succeed"
        )
    if 500 <= code <= 599:
        hint = "check the Consul servers' health and the agent's logs"
        if "No path to datacenter" in text:
            hint = "check the datacenter name (the URL's .service.<dc>.consul part or dc=) and WAN federation"
        elif "No cluster leader" in text:
            hint = (
                "the servers have no leader (lost quorum?): check the Consul servers, or use "
                "consistency='stale' (any server answers it, without a leader)"
            )
        raise DiscoveryUnavailable(f"{where}: Consul failed (HTTP {code}: {said}); {hint}")
    raise DiscoveryProtocolError(f"{where}: Consul answered HTTP {code} ({said}); check the agent URL")
