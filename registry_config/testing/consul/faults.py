"""Faults the simulator can put in place of (or before) an answer, queued for the next requests.

Some are what Consul itself does under stress (a ``500 No cluster leader``,
a ``429`` when rate-limited, an answer late); others stand for what lies
between a client and Consul (a proxy's HTML page, a dropped connection, a
server that never answers). :class:`Fault` is the one record of each.
"""

from __future__ import annotations

import collections
import threading

import attrs

__all__ = ["RATE_LIMITED", "Fault", "FaultQueue"]

RATE_LIMITED = "rate limit exceeded, try again later"
"""The body of Consul's ``429`` when its request rate limit refuses a read (agent/consul/rate ``ErrRetryLater``)."""


@attrs.frozen
class Fault:
    """What the simulator does instead of (or before) answering one request.

    ``kind`` is ``"error"`` (answer ``status`` with ``body`` as plain text),
    ``"raw"`` (answer ``status`` with ``body`` as given, ``content_type`` and
    the usual Consul headers: a malformed answer), ``"delay"`` (wait
    ``seconds``, then answer normally), ``"hang"`` (never answer; the
    connection is closed when the simulator closes or ``seconds`` pass) or
    ``"drop"`` (close the connection without a byte). ``path`` restricts it
    to requests whose path contains that text. ``headers`` are sent with a
    ``"raw"`` answer after Consul's usual ones, replacing them: a raw answer
    is what Consul would never send (an ``X-Consul-Index: 0``, say).
    """

    kind: str
    status: int = 500
    body: str | bytes = ""
    seconds: float | None = None
    content_type: str = "application/json"
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class FaultQueue:
    """Faults waiting for their request, oldest first; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: collections.deque[Fault] = collections.deque()

    def add(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """The first fault that applies to ``path``, removed from the queue; None when none does."""
        with self._lock:
            for position, fault in enumerate(self._faults):
                if fault.path is None or fault.path in path:
                    del self._faults[position]
                    return fault
            return None
