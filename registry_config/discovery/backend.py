"""The interface every discovery backend offers, and the polling watch most of them share.

A backend is anything with ``discover``, ``watch`` and ``close`` and that works
as a context manager: a structural :class:`typing.Protocol`, so a third
party's class needs no base class from us. Backends without a change feed of
their own (a static list, DNS) watch by polling through :func:`poll_watch`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Protocol, runtime_checkable

from typing_extensions import Self

from ..errors import DiscoveryError
from .model import Discovery, ServiceQuery

__all__ = ["BackendBase", "DiscoveryBackend", "NeverStop", "StopSignal", "poll_watch"]

log = logging.getLogger("registry_config.discovery")


class StopSignal(Protocol):
    """What ``watch`` accepts as ``stop``: a :class:`threading.Event` or anything alike."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@runtime_checkable
class DiscoveryBackend(Protocol):
    """Finds the running instances of a service.

    ``discover`` returns one snapshot or raises a :class:`DiscoveryError`;
    ``watch`` yields a first snapshot at once, then a new one each time the
    instances change, and returns soon after ``stop`` is set; ``close`` frees
    what the backend holds and may be called more than once.
    """

    def discover(self, query: ServiceQuery) -> Discovery: ...

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class NeverStop:
    """A stop signal that is never set; waiting on it just sleeps (what a watch uses when given no ``stop``)."""

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


def poll_watch(
    discover: Callable[[ServiceQuery], Discovery],
    query: ServiceQuery,
    *,
    stop: StopSignal | None = None,
    interval: float | Callable[[Discovery], float] = 5.0,
    max_backoff: float = 60.0,
) -> Iterator[Discovery]:
    """Watch by polling: yield the first snapshot, then each one whose instances changed.

    The first ``discover`` error propagates (the caller has nothing yet);
    later errors are logged and retried with exponential backoff up to
    ``max_backoff`` seconds, so a brief outage does not end the watch.
    ``interval`` may be a function of the last snapshot (DNS uses the TTL).
    """
    signal: StopSignal = stop if stop is not None else NeverStop()
    if signal.is_set():
        return
    last = discover(query)
    yield last
    delay = interval(last) if callable(interval) else interval
    failures = 0
    while not signal.wait(delay):
        try:
            current = discover(query)
        except DiscoveryError as exc:
            failures += 1
            delay = min(max_backoff, (interval(last) if callable(interval) else interval) * 2**failures)
            log.warning("discovery of %s failed (%s); retrying in %.1fs", query.name, exc, delay)
            continue
        failures = 0
        delay = interval(current) if callable(interval) else interval
        if current.instances != last.instances:
            last = current
            yield current


class BackendBase:
    """Context-manager plumbing and a polling ``watch`` for backends to inherit (optional).

    Subclasses implement :meth:`discover`; they may override :meth:`watch`
    with a native change feed and :meth:`close` to free resources.
    ``poll_interval`` is how often the default ``watch`` asks again.
    """

    poll_interval: float = 5.0

    def discover(self, query: ServiceQuery) -> Discovery:
        raise NotImplementedError

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """Yield a first snapshot, then one each time the instances change, until ``stop`` is set."""
        return poll_watch(self.discover, query, stop=stop, interval=self.poll_interval)

    def close(self) -> None:
        """Nothing to free here; safe to call any number of times."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
