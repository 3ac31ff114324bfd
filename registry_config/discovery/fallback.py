"""Several backends in order of preference: the first that answers wins.

Typical use: Consul first, then DNS, then a static list of last resort. A
snapshot from a fallback carries a warning naming every backend that failed
before it, so an operator sees the primary is down even while staging works.
When every backend fails, the error carries each cause (``causes``) and its
message lists each backend's failure; its class is the one every cause shares
(all unavailable: :class:`DiscoveryUnavailable`, so a cache or a CLI treats it
as an outage), else :class:`DiscoveryError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence

import attrs

from ..errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
    InvalidInput,
    NoInstancesError,
)
from .backend import BackendBase, DiscoveryBackend, StopSignal
from .caching import has_native_watch
from .model import Discovery, ServiceQuery

__all__ = ["FallbackBackend"]

log = logging.getLogger("registry_config.discovery.fallback")

_SHARED_CLASSES: tuple[type[DiscoveryError], ...] = (
    NoInstancesError,
    DiscoveryAuthError,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
)


def _label(position: int, backend: object) -> str:
    text = repr(backend)
    if len(text) > 100:
        text = text[:97] + "..."
    return f"#{position} {text}"


def _as_discovery_error(exc: Exception, backend: object) -> DiscoveryError:
    if isinstance(exc, DiscoveryError):
        return exc
    error = DiscoveryError(f"{type(backend).__name__} raised {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def combined_error(query: ServiceQuery, failures: Sequence[tuple[str, DiscoveryError]]) -> DiscoveryError:
    """One error for every backend's failure: the class they all share, a message listing each."""
    causes = [error for _, error in failures]
    cls: type[DiscoveryError] = DiscoveryError
    for candidate in _SHARED_CLASSES:
        if causes and all(isinstance(cause, candidate) for cause in causes):
            cls = candidate
            break
    listed = "; ".join(f"{label}: {type(error).__name__}: {error}" for label, error in failures)
    return cls(
        f"all {len(failures)} discovery backends failed for {query.name!r}: {listed}",
        causes=causes,
    )


class FallbackBackend(BackendBase):
    """Asks ``backends`` in order; the first snapshot wins (an empty one too: it is an answer).

    ``watch`` follows the first backend whose watch starts; if that watch
    fails later, it starts again from the top of the list (the primary may be
    back), yielding only when the instances differ from the last snapshot.
    ``close`` closes every backend.
    """

    def __init__(self, backends: Iterable[DiscoveryBackend]) -> None:
        self._backends: tuple[DiscoveryBackend, ...] = tuple(backends)
        if not self._backends:
            raise InvalidInput("FallbackBackend needs at least one backend")
        for position, backend in enumerate(self._backends, 1):
            if not isinstance(backend, DiscoveryBackend):
                raise InvalidInput(
                    f"FallbackBackend: backend #{position} is a {type(backend).__name__}, not a discovery backend"
                )
        self._closed = False

    retry_delay: float = 1.0
    """Seconds to wait before starting the watches again after one broke mid-way."""

    @property
    def backends(self) -> tuple[DiscoveryBackend, ...]:
        """The backends, in the order they are asked."""
        return self._backends

    @property
    def native_watch(self) -> bool:
        """As native as the primary backend's watch."""
        return has_native_watch(self._backends[0])

    def discover(self, query: ServiceQuery) -> Discovery:
        failures: list[tuple[str, DiscoveryError]] = []
        for position, backend in enumerate(self._backends, 1):
            try:
                snapshot = backend.discover(query)
            except Exception as exc:  # noqa: BLE001 (a third party's backend may raise anything; we wrap it)
                failures.append((_label(position, backend), _as_discovery_error(exc, backend)))
                continue
            return self._with_failures(snapshot, failures, position)
        raise combined_error(query, failures)

    def _with_failures(
        self, snapshot: Discovery, failures: Sequence[tuple[str, DiscoveryError]], position: int
    ) -> Discovery:
        if not failures:
            return snapshot
        notes = tuple(
            f"discovery backend {label} failed: {error}; answered by backend #{position}" for label, error in failures
        )
        for note in notes:
            log.warning("%s", note)
        return attrs.evolve(snapshot, warnings=(*snapshot.warnings, *notes))

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        last: Discovery | None = None
        while stop is None or not stop.is_set():
            failures: list[tuple[str, DiscoveryError]] = []
            feed: Iterator[Discovery] | None = None
            first: Discovery | None = None
            position = 0
            for position, backend in enumerate(self._backends, 1):
                try:
                    feed = iter(backend.watch(query, stop=stop))
                    first = next(feed)
                except StopIteration:  # the watch saw stop set before its first snapshot
                    return
                except Exception as exc:  # noqa: BLE001 (fall back to the next backend, whatever failed)
                    failures.append((_label(position, backend), _as_discovery_error(exc, backend)))
                    feed = None
                    continue
                break
            if feed is None or first is None:
                raise combined_error(query, failures)
            if last is None or first.instances != last.instances:
                last = self._with_failures(first, failures, position)
                yield last
            try:
                for snapshot in feed:
                    if snapshot.instances != last.instances:
                        last = snapshot
                        yield snapshot
                return  # the feed ended on its own: stop was set
            except Exception as exc:  # noqa: BLE001 (a watch that breaks mid-way: start again from the primary)
                log.warning("watch of %r through backend #%d failed (%s); falling back", query.name, position, exc)
            if stop is not None:
                stop.wait(self.retry_delay)
            else:
                time.sleep(self.retry_delay)

    def close(self) -> None:
        """Close every backend, even when one fails to close; idempotent."""
        if self._closed:
            return
        self._closed = True
        for backend in self._backends:
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001 (closing the others matters more than one failure)
                log.warning("closing %s failed: %s", _label(0, backend), exc)

    def __repr__(self) -> str:
        return f"FallbackBackend([{', '.join(repr(backend) for backend in self._backends)}])"
