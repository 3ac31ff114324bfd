"""A discovery backend's own bug, reported as a :class:`DiscoveryError` that names the backend.

A backend promises to fail with a :class:`DiscoveryError`. A third party's
plugin that breaks that promise (a ``TypeError`` on an input it did not
expect, a ``KeyError`` in its parser) must not reach a stager or the command
line as a bare traceback: the library wraps it where it calls the backend
(``build_plan``, the CLI's backend set-up, ``watch`` and ``close``), naming
the backend's class so that the user knows whose bug it is, and chains the
original exception as the cause for its authors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import DiscoveryError, RegistryConfigError
from .redact import quote

__all__ = ["backend_bug", "backend_errors", "backend_name"]


def backend_name(backend: object) -> str:
    """The backend's class as ``module.QualifiedName``: what a user looks for to report the bug."""
    kind = backend if isinstance(backend, type) else type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def backend_bug(name: str, exc: BaseException, doing: str) -> DiscoveryError:
    """The :class:`DiscoveryError` for ``exc``, raised by backend ``name`` while ``doing`` something."""
    detail = quote(str(exc), limit=200)
    return DiscoveryError(
        f"discovery backend {name} failed while {doing}: it raised {type(exc).__name__} ({detail}) instead of a "
        "DiscoveryError; this is a bug in that backend: report it to its authors, or use another backend"
    )


@contextmanager
def backend_errors(name: str, doing: str) -> Iterator[None]:
    """Let the library's own errors through; turn anything else the backend raises into a DiscoveryError."""
    try:
        yield
    except RegistryConfigError:
        raise
    except Exception as exc:
        raise backend_bug(name, exc, doing) from exc
