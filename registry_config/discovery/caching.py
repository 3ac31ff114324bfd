"""A cache in front of a discovery backend, so that staging survives a bad day at the discovery service.

:class:`CachingBackend` answers from memory while its snapshot is fresh,
refreshes it when it is not (one refresh at a time per query: the other
threads serve the current snapshot or wait for the one in flight, never a
thundering herd on Consul), and when the backend fails, serves the last good
snapshot marked ``stale=True`` with a warning that says how old it is, until
``max_stale``; then it raises the failure.

With a backend that has a change feed of its own (Consul's blocking
queries), a background thread per query consumes the backend's ``watch`` and
keeps the snapshot current, so that a plan costs no network round trip in the
steady state.

The trap in that design is a watch that backs off silently on errors (as
:func:`~registry_config.discovery.backend.poll_watch` does): it yields
nothing during an outage, which looks exactly like "nothing changed", and the
cache would serve an outdated snapshot as fresh forever. So a snapshot the
watch delivered counts as fresh for ``watch_ttl`` seconds only (default
120 s, never less than ``ttl``); past that, the next query verifies it with
one ordinary ``discover`` (still one at a time), which either renews it or
starts the stale-serving path above. An outage that the watch hides is
noticed within ``watch_ttl``. A watch that raises or ends is restarted with
a backoff, and until it delivers again the cache refreshes actively every
``ttl``.

What an idle stager costs the discovery service (plans keep coming, nothing
changes): one re-check per ``watch_ttl`` plus whatever the watch itself asks.
Over a :class:`~registry_config.discovery.consul.ConsulBackend` with its
defaults (one blocking query per 5 minutes) that is 60/120 + 60/300 = 0.7
requests a minute, under the one a minute a fleet of thousands can afford
(``benchmarks/fleet.py`` measures it). ``watch_ttl`` trades that cost
against how soon a hidden outage is noticed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import attrs

from ..errors import DiscoveryError, DiscoveryUnavailable, InvalidInput
from .backend import BackendBase, DiscoveryBackend, StopSignal
from .model import Discovery, ServiceQuery

__all__ = ["CachingBackend", "has_native_watch"]

log = logging.getLogger("registry_config.discovery.caching")

_MAX_WATCH_BACKOFF = 60.0


def has_native_watch(backend: object) -> bool:
    """Whether ``backend.watch`` is a change feed worth running in the background.

    A backend says so with a boolean ``native_watch`` attribute; without one,
    a ``watch`` other than :class:`BackendBase`'s polling one counts as native.
    """
    flag = getattr(backend, "native_watch", None)
    if isinstance(flag, bool):
        return flag
    watch = getattr(type(backend), "watch", None)
    return watch is not None and watch is not BackendBase.watch


def _copy_error(error: DiscoveryError, message: str | None = None) -> DiscoveryError:
    """A new exception of ``error``'s class: one object must not be raised in several threads at once."""
    text = str(error) if message is None else message
    try:
        copied = type(error)(text, causes=error.causes)
    except TypeError:  # a subclass with another signature: fall back to the class every caller catches
        copied = DiscoveryError(text, causes=error.causes)
    copied.__cause__ = error
    return copied


def _as_discovery_error(exc: Exception, backend: object) -> DiscoveryError:
    if isinstance(exc, DiscoveryError):
        return exc
    error = DiscoveryError(
        f"backend {type(backend).__name__} raised {type(exc).__name__}: {exc}; a backend should raise only "
        "DiscoveryError (report this to its author)"
    )
    error.__cause__ = exc
    return error


def _same(held: Discovery, new: Discovery) -> bool:
    """``held == new``, deciding on the (cached) hashes first: different snapshots rarely hash alike."""
    try:
        return hash(held) == hash(new) and held == new
    except Exception:  # noqa: BLE001 (a third-party snapshot holding something unhashable: store it as it is)
        return False


def _hash_ahead(snapshot: Discovery) -> None:
    """Compute (and so cache) the snapshot's hash before taking the lock that :func:`_same` runs under.

    A snapshot caches its hash, and computing it costs a pass over every
    instance: better paid by the thread that fetched it than by every thread
    waiting for the cache's lock.
    """
    # Only an optimisation: if it cannot be hashed, _same finds that out again and says no.
    with contextlib.suppress(Exception):
        hash(snapshot)


class _Entry:
    """What the cache holds for one query; guarded by the cache's condition."""

    __slots__ = (
        "attempts",
        "confirmed",
        "failed_since",
        "last_error",
        "refreshing",
        "retry_at",
        "snapshot",
        "version",
        "watch_live",
        "watcher",
    )

    def __init__(self) -> None:
        self.snapshot: Discovery | None = None
        self.confirmed = 0.0  # when the snapshot was last known to be current (clock time)
        self.version = 0  # bumped at every store: a refresh never overwrites a newer watch delivery
        self.refreshing = False
        self.attempts = 0
        self.last_error: DiscoveryError | None = None
        self.failed_since: float | None = None
        self.retry_at = 0.0
        self.watcher: threading.Thread | None = None
        self.watch_live = False


class CachingBackend(BackendBase):
    """Serves snapshots of ``backend`` from memory: fresh for ``ttl`` s, stale but served up to ``max_stale`` s.

    ``background`` runs the backend's ``watch`` in a daemon thread per query
    to keep the cache current; by default it does so when the backend has a
    native change feed (:func:`has_native_watch`). ``watch_ttl`` bounds how
    long a watched snapshot counts as fresh without news, and so how often
    an idle cache asks the backend itself (see the module docstring for
    why). ``clock`` is for tests.

    Thread-safe: every caller gets one whole immutable snapshot, and at most
    one ``discover`` per query is in flight at a time.
    """

    def __init__(
        self,
        backend: DiscoveryBackend,
        *,
        ttl: float = 5.0,
        max_stale: float = 300.0,
        background: bool | None = None,
        watch_ttl: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("ttl", ttl), ("max_stale", max_stale), ("watch_ttl", watch_ttl)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidInput(f"CachingBackend {name}={value!r}: expected a number of seconds >= 0")
        self._backend = backend
        self._ttl = float(ttl)
        self._max_stale = float(max_stale)
        self._watch_ttl = max(float(watch_ttl), self._ttl)
        self._background = has_native_watch(backend) if background is None else background
        self._clock = clock
        self._cond = threading.Condition()
        self._entries: dict[ServiceQuery, _Entry] = {}
        self._stop = threading.Event()
        self._closed = False
        self.refreshes = 0
        """How many times the cache asked the backend itself (``discover``), for tests and metrics."""

    @property
    def backend(self) -> DiscoveryBackend:
        """The backend behind the cache."""
        return self._backend

    @property
    def native_watch(self) -> bool:
        """The cache's ``watch`` is the backend's, so it is as native as the backend's."""
        return has_native_watch(self._backend)

    # -- discover -----------------------------------------------------------------------------

    def discover(self, query: ServiceQuery) -> Discovery:
        """The cached snapshot if fresh; else a refresh (one at a time), or the last good one, marked stale."""
        with self._cond:
            if self._closed:
                raise DiscoveryUnavailable(f"{self!r} is closed; make a new one to discover {query.name!r}")
            entry = self._entries.get(query)
            if entry is None:
                entry = self._entries[query] = _Entry()
            while True:
                now = self._clock()
                snapshot = entry.snapshot
                if snapshot is not None and now - entry.confirmed <= self._fresh_for(entry):
                    return snapshot
                if snapshot is not None and entry.last_error is not None and now < entry.retry_at:
                    return self._stale(entry, now)
                if not entry.refreshing:
                    break
                if snapshot is not None:
                    return self._current(entry, now)
                # Nothing to serve yet: wait for the refresh in flight and share its outcome.
                attempts = entry.attempts
                self._cond.wait_for(lambda: not entry.refreshing)
                if entry.attempts > attempts and entry.snapshot is None and entry.last_error is not None:
                    raise _copy_error(entry.last_error)
            entry.refreshing = True
            version = entry.version
        return self._refresh(query, entry, version)

    def _refresh(self, query: ServiceQuery, entry: _Entry, version: int) -> Discovery:
        error: DiscoveryError | None = None
        fresh: Discovery | None = None
        try:
            fresh = self._backend.discover(query)
            _hash_ahead(fresh)
        except Exception as exc:  # noqa: BLE001 (whatever a backend raises, waiters must be woken and get ours)
            error = _as_discovery_error(exc, self._backend)
        with self._cond:
            entry.refreshing = False
            entry.attempts += 1
            self.refreshes += 1
            self._cond.notify_all()
            now = self._clock()
            if fresh is not None:
                entry.last_error = None
                entry.failed_since = None
                if entry.version == version or entry.snapshot is None:
                    self._store(entry, fresh, now)
                elif entry.snapshot.instances == fresh.instances:
                    entry.confirmed = now  # the watch stored the same set meanwhile: it is confirmed now
                # else: the watch delivered a newer set while we asked; ours may predate it, keep the watch's
                self._start_watcher(query, entry)
                assert entry.snapshot is not None
                return entry.snapshot
            assert error is not None
            entry.last_error = error
            if entry.failed_since is None:
                entry.failed_since = now
            entry.retry_at = now + self._ttl
            if entry.snapshot is None:
                raise error
            log.warning("discovery of %r failed (%s); serving the last good snapshot", query.name, error)
            return self._stale(entry, now)

    def _fresh_for(self, entry: _Entry) -> float:
        return self._watch_ttl if entry.watch_live else self._ttl

    def _current(self, entry: _Entry, now: float) -> Discovery:
        """What to serve while another thread refreshes: the snapshot we have, if not too old."""
        assert entry.snapshot is not None
        if entry.last_error is not None:
            return self._stale(entry, now)
        age = now - entry.confirmed
        if age > self._max_stale:
            raise DiscoveryUnavailable(
                f"discovery of {entry.snapshot.query.name!r} has not answered for {age:.0f} s (a refresh is still "
                f"in flight) and the last snapshot is older than max_stale={self._max_stale:g} s; check the "
                "discovery service and the backend's timeouts"
            )
        return entry.snapshot

    def _stale(self, entry: _Entry, now: float) -> Discovery:
        """The last good snapshot marked stale, or the failure once it is older than ``max_stale``."""
        assert entry.snapshot is not None
        assert entry.last_error is not None
        age = now - entry.confirmed
        if age > self._max_stale:
            raise _copy_error(
                entry.last_error,
                f"{entry.last_error}; the last good snapshot of {entry.snapshot.query.name!r} is {age:.0f} s old, "
                f"older than max_stale={self._max_stale:g} s, so it is not served",
            )
        warning = f"discovery failed: {entry.last_error}; serving a snapshot {age:.0f} s old"
        return attrs.evolve(entry.snapshot, stale=True, warnings=(*entry.snapshot.warnings, warning))

    def _store(self, entry: _Entry, snapshot: Discovery, now: float) -> None:
        held = entry.snapshot
        if held is not None and held is not snapshot and _same(held, snapshot):
            # Keep the object already served: plans memoized on it then match by identity, not by comparing
            # every instance (a watch's first delivery repeats the snapshot the first discover returned).
            snapshot = held
        entry.snapshot = snapshot
        entry.confirmed = now
        entry.version += 1

    # -- the background watcher ---------------------------------------------------------------

    def _start_watcher(self, query: ServiceQuery, entry: _Entry) -> None:
        if not self._background or self._closed or entry.watcher is not None:
            return
        thread = threading.Thread(
            target=self._watch_loop, args=(query, entry), name=f"registry-config-cache:{query.name}", daemon=True
        )
        entry.watcher = thread
        thread.start()

    def _watch_loop(self, query: ServiceQuery, entry: _Entry) -> None:
        failures = 0
        while not self._stop.is_set():
            problem: str = "the watch ended"
            try:
                for snapshot in self._backend.watch(query, stop=self._stop):
                    if self._stop.is_set():
                        break
                    _hash_ahead(snapshot)
                    with self._cond:
                        self._store(entry, snapshot, self._clock())
                        entry.watch_live = True
                        entry.last_error = None
                        entry.failed_since = None
                    failures = 0
            except Exception as exc:  # noqa: BLE001 (the watcher must survive anything and fall back to polling)
                problem = f"{type(exc).__name__}: {exc}"
            with self._cond:
                entry.watch_live = False
            if self._stop.is_set():
                break
            failures += 1
            delay = min(_MAX_WATCH_BACKOFF, max(self._ttl, 0.05) * 2 ** min(failures, 10))
            log.warning(
                "watch of %r stopped (%s); refreshing on demand, restarting in %.1fs", query.name, problem, delay
            )
            self._stop.wait(delay)

    # -- the rest of the protocol ---------------------------------------------------------------

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """The backend's own ``watch``; each snapshot it yields also refreshes the cache."""
        for snapshot in self._backend.watch(query, stop=stop):
            _hash_ahead(snapshot)
            with self._cond:
                entry = self._entries.get(query)
                if entry is not None and not entry.refreshing:
                    self._store(entry, snapshot, self._clock())
                    entry.last_error = None
                    entry.failed_since = None
            yield snapshot

    def close(self, *, timeout: float = 5.0) -> None:
        """Stop the background watchers (waiting up to ``timeout`` s for them) and close the backend; idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            threads = [entry.watcher for entry in self._entries.values() if entry.watcher is not None]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning(
                    "watcher thread %s did not stop within %.1fs; it is a daemon, left behind", thread.name, timeout
                )
        self._backend.close()

    def __repr__(self) -> str:
        return f"CachingBackend({self._backend!r}, ttl={self._ttl:g}, max_stale={self._max_stale:g})"
