"""The one path by which user or server text reaches a message, a log record, a warning or a ``repr``.

Anything this library echoes (a URL the user typed, an entry from the command
line, an error body from Consul or a registry, a header value) may carry a
secret: a password in ``user:password@``, a token in a query parameter, or a
token that a reflecting proxy copied into its answer. :func:`quote` is how such
text is shown: it **redacts first, then shortens**, so a secret that straddles
the cut cannot leak its first half; then it makes the text printable on one
line (``repr``-style escapes), so no newline or control character forges a log
line.

Redaction removes, wherever they occur in the text:

- the known secrets handed in (``secrets=``: the Consul token, a password),
  longest first, in their raw and their ``repr``-escaped spelling;
- the user-info of every ``scheme://user:password@host`` (conservatively:
  everything from ``://`` to the last ``@`` of that run of non-blank text, as
  a password may hold ``/``, ``?``, ``#`` or ``@``);
- the value of every query or fragment parameter whose name looks secret
  (``token``, ``secret``, ``passw``, ``pwd``, ``key``, ``auth``,
  ``credential``, ``signature``, ``sig``);
- the credentials of ``Authorization:``/``X-Consul-Token:`` headers and of
  ``Basic``/``Bearer`` schemes echoed in a body.

Text that is *one entry* a user typed (a registry URL, a backend URL, an
``--insecure-registry`` or ``--instance`` entry) is read more strictly with
``entry=True``, since its whole extent is known: everything before its last
``@`` is user-info (after a leading ``scheme://``, or from the start when
there is none), whatever characters the password holds (blanks and quotes
included); a query part without ``=`` and a fragment are withheld whole;
and when the withheld user-info holds a ``?`` or ``#`` (so the ``@`` may
belong to a query value or a fragment), all that follows the scheme is.
:func:`secrets_of` lists the secret pieces of such an entry, so that a
message someone else wrote about it (a plugin's exception) can be scrubbed
with ``redact(message, secrets=secrets_of(entry))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MARK", "quote", "redact", "secrets_of", "shorten"]

MARK = "<redacted>"
"""What a secret is replaced by."""

# Bounded repeats: an unbounded one before an alternation backtracks quadratically on a long run of name characters.
_SENSITIVE_NAME = (
    r"[A-Za-z0-9_.-]{0,64}(?:token|secret|passw|pwd|key|auth|credential|signature|sig)[A-Za-z0-9_.-]{0,64}"
)
_SENSITIVE = re.compile(rf"{_SENSITIVE_NAME}\Z", re.IGNORECASE)
_QUERY_SECRET = re.compile(rf"([?&;#](?:{_SENSITIVE_NAME})=)([^&#\s'\"]+)", re.IGNORECASE)
_RUN = re.compile(r"[^\s'\"<>]+")  # a run of text a URL may span (it ends at a blank or a quote)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_ENTRY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HEADER = re.compile(
    r"((?:authorization|proxy-authorization|x-consul-token|x-auth-token)\s*[:=]\s*)"
    r"(?:(?:basic|bearer|token)\s+)?[^\s,;'\"]+",
    re.IGNORECASE,
)
_SCHEME_CREDENTIALS = re.compile(r"\b((?:basic|bearer)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_MIN_SECRET = 3  # a shorter "secret" would blank out ordinary words; such a token is no protection anyway


def redact(text: str, secrets: Iterable[str | None] = (), *, entry: bool = False) -> str:
    """``text`` with every secret it may hold replaced by :data:`MARK` (see the module docstring).

    ``entry=True`` reads ``text`` as one URL or address entry a user typed,
    whose user-info, bare query parts and fragment are withheld whole.
    """
    known: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            known.add(secret)
            escaped = repr(secret)[1:-1]  # as it reads inside a repr()-quoted message
            if len(escaped) >= _MIN_SECRET:
                known.add(escaped)
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, MARK)
    if entry:
        text = _redact_entry(text)
    if "@" in text and "://" in text:
        text = _RUN.sub(lambda m: _hide_userinfo(m.group()), text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MARK}", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{MARK}", text)
    return _SCHEME_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MARK}", text)


def _hide_userinfo(run: str) -> str:
    """``run`` (no blanks or quotes) with everything from its first ``scheme://`` to its last ``@`` hidden.

    Written out rather than as one regular expression: ``[A-Za-z][A-Za-z0-9+.-]*://[^ ]*@`` backtracks
    quadratically over a long run of scheme characters, and messages may echo long hostile text.
    """
    at = run.rfind("@")
    pos = run.find("://")
    while 0 <= pos < at:
        start = pos
        while start > 0 and run[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < pos and not run[start].isalpha():
            start += 1
        if start < pos and run[start].isascii():
            return f"{run[: pos + 3]}***{run[at:]}"
        pos = run.find("://", pos + 3)
    return run


def _split_entry(text: str) -> tuple[str, str | None, str, str | None, str | None]:
    """(scheme prefix, user-info or None, rest up to '?', query or None, fragment or None) of one entry."""
    scheme = _ENTRY_SCHEME.match(text)
    start = scheme.end() if scheme else 0
    head, rest = text[:start], text[start:]
    userinfo: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
    fragment: str | None = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    query: str | None = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
    return head, userinfo, rest, query, fragment


def _redact_entry(text: str) -> str:
    head, userinfo, rest, query, fragment = _split_entry(text)
    if userinfo is not None and ("?" in userinfo or "#" in userinfo):
        # The last '@' may sit inside a query value or a fragment (a token holding '@'): then
        # what follows it may be the token's tail, not a host. Withhold it all.
        return f"{head}{MARK}"
    shown = head + ("***@" if userinfo is not None else "") + rest
    if query is not None:
        parts = []
        for part in query.split("&"):
            key, eq, value = part.partition("=")
            if not eq:
                parts.append(MARK if part else part)
            elif value and _SENSITIVE.match(key):
                parts.append(f"{key}={MARK}")
            else:
                parts.append(part)
        shown += "?" + "&".join(parts)
    if fragment is not None:
        shown += "#" + (MARK if fragment else "")
    return shown


def secrets_of(entry: str) -> tuple[str, ...]:
    """The secret pieces of one entry (its user-info, its password, secret-named values, bare query parts, fragment).

    For scrubbing a message that someone else wrote about ``entry``: a
    plugin's exception, a ``where`` that quoted it raw.
    """
    head, userinfo, _, query, fragment = _split_entry(entry)
    found: list[str] = []
    if userinfo and ("?" in userinfo or "#" in userinfo):
        found.append(entry[len(head) :])  # see _redact_entry: all of it may be secret
    if userinfo:
        found.append(userinfo)
        found.append(userinfo.partition(":")[2])  # the password; the user name alone is no secret
    for part in (query or "").split("&"):
        key, eq, value = part.partition("=")
        if not eq:
            found.append(part)
        elif _SENSITIVE.match(key):
            found.append(value)
    if fragment:
        found.append(fragment)
    return tuple(sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with ``...``."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."


def quote(value: object, *, secrets: Iterable[str | None] = (), limit: int = 200, entry: bool = False) -> str:
    """``value`` as a message may show it: redacted, then shortened, then printable and quoted.

    The result is a ``repr`` of the redacted, shortened text (quotes
    included), so whitespace and control characters show as escapes.
    ``entry=True``: ``value`` is one entry a user typed (see :func:`redact`).
    """
    text = value if isinstance(value, str) else str(value)
    return repr(shorten(redact(text, secrets, entry=entry), limit))
