"""The log of requests the simulator saw, without any token's value, safe to read while requests run.

A request is logged when it arrives (so a test sees a query that is still
held) and completed in place when it is answered. :meth:`RequestLog.clear`
forgets only the requests already answered: one in flight stays, and is
completed where it is, so a test that clears the log between two steps
never loses a request that straddles them.
"""

from __future__ import annotations

import threading

import attrs

__all__ = ["RecordedRequest", "RequestLog"]


@attrs.frozen
class RecordedRequest:
    """One request the simulator saw; the token's value is never kept.

    ``token`` names which token the request carried: ``None`` for none, the
    ``name`` given to :meth:`ConsulSimulator.add_token`, or ``"<unknown>"``.
    ``token_source`` is ``"query"`` (``?token=``), ``"header"``
    (``X-Consul-Token``), ``"bearer"`` (``Authorization: Bearer``) or
    ``None``. ``headers`` and ``query`` have any token value replaced by
    ``"<redacted>"``. ``status`` is ``None`` while the request is in flight
    (and for one dropped or left hanging).
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    token: str | None
    token_source: str | None
    status: int | None = None
    fault: str | None = None
    done: bool = attrs.field(default=False, eq=False, repr=False)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (``""`` for a flag such as ``?stale``)."""
        return next((value for key, value in self.query if key == name), None)

    def params(self, name: str) -> tuple[str, ...]:
        """Every value of a repeated query parameter (``tag``)."""
        return tuple(value for key, value in self.query if key == name)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


class _Slot:
    __slots__ = ("request",)

    def __init__(self, request: RecordedRequest) -> None:
        self.request = request


class RequestLog:
    """Recorded requests in arrival order; each one's slot is updated in place when it completes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []

    def open(self, request: RecordedRequest) -> _Slot:
        slot = _Slot(request)
        with self._lock:
            self._slots.append(slot)
        return slot

    def update(self, slot: _Slot, *, status: int | None, fault: str | None, done: bool) -> None:
        with self._lock:
            slot.request = attrs.evolve(slot.request, status=status, fault=fault, done=done)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return [slot.request for slot in self._slots]

    def clear(self) -> None:
        """Forget the requests already answered; those in flight stay."""
        with self._lock:
            self._slots = [slot for slot in self._slots if not slot.request.done]
