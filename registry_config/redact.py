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
  longest first;
- the user-info of every ``scheme://user:password@host`` (conservatively:
  everything from ``://`` to the last ``@`` of that run of non-blank text, as
  a password may hold ``/``, ``?``, ``#`` or ``@``);
- the value of every query parameter whose name looks secret
  (``token``, ``secret``, ``passw``, ``pwd``, ``key``, ``auth``,
  ``credential``, ``signature``, ``sig``);
- the credentials of ``Authorization:``/``X-Consul-Token:`` headers and of
  ``Basic``/``Bearer`` schemes echoed in a body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MARK", "quote", "redact", "shorten"]

MARK = "<redacted>"
"""What a secret is replaced by."""

_SENSITIVE_PARAMETER = r"(?:[A-Za-z0-9_.-]*(?:token|secret|passw|pwd|key|auth|credential|signature|sig)[A-Za-z0-9_.-]*)"
_QUERY_SECRET = re.compile(rf"([?&;]{_SENSITIVE_PARAMETER}=)([^&#\s'\"]+)", re.IGNORECASE)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s'\"<>]*@")
_HEADER = re.compile(
    r"((?:authorization|proxy-authorization|x-consul-token|x-auth-token)\s*[:=]\s*)"
    r"(?:(?:basic|bearer|token)\s+)?[^\s,;'\"]+",
    re.IGNORECASE,
)
_SCHEME_CREDENTIALS = re.compile(r"\b((?:basic|bearer)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_MIN_SECRET = 3  # a shorter "secret" would blank out ordinary words; such a token is no protection anyway


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret it may hold replaced by :data:`MARK` (see the module docstring)."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MARK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}***@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MARK}", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{MARK}", text)
    return _SCHEME_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MARK}", text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with ``...``."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."


def quote(value: object, *, secrets: Iterable[str | None] = (), limit: int = 200) -> str:
    """``value`` as a message may show it: redacted, then shortened, then printable and quoted.

    The result is a ``repr`` of the redacted, shortened text (quotes
    included), so whitespace and control characters show as escapes.
    """
    text = value if isinstance(value, str) else str(value)
    return repr(shorten(redact(text, secrets), limit))
