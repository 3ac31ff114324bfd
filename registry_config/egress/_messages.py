"""How the egress package shows a value it refuses: redacted, then cut, so no secret and no flood reaches a log.

Rules come from operators' JSON and from command lines, and a value refused
there may be anything: a URL pasted where a destination belongs, with its
password (``http://user:pw@host``), or a megabyte of text. Every refusal in
this package shows the value through :func:`show`, which goes through the
library's one redaction path (:func:`registry_config.redact.quote`).
"""

from __future__ import annotations

from ..redact import quote, redact, shorten

__all__ = ["show"]

_LIMIT = 80


def show(value: object) -> str:
    """A value as an error message shows it: text quoted, anything else by its repr; redacted, then cut short."""
    if isinstance(value, str):
        return quote(value, limit=_LIMIT)
    return shorten(redact(repr(value)), _LIMIT)
