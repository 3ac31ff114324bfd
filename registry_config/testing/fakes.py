"""A discovery backend whose answers a test controls: instances, outages, slow answers, a change feed.

:class:`FakeBackend` stands in for Consul or a CMDB when what is under test
is the code around a backend (a cache, a fallback chain, a stager's retry
logic). It counts its calls, so a test can show that a cache spared the
network, and its ``watch`` is a real change feed (it yields when
:meth:`FakeBackend.set_instances` publishes a different set), so a test can
show that a watcher followed a change without polling.

By default it answers its instances to every query. Given a catalog
(:class:`~registry_config.testing.conformance.Registration` values: service,
instance, datacenter) it answers as a service catalog does: the instances of
the service asked for, in the datacenter asked for, carrying every tag asked
for. That is the backend the conformance suite's own tests hold to every
check.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Literal

from ..discovery.backend import BackendBase, StopSignal
from ..discovery.model import Discovery, ServiceInstance, ServiceQuery
from ..errors import DiscoveryUnavailable
from .conformance import Registration

__all__ = ["FakeBackend"]

WatchErrors = Literal["raise", "silent"]


class FakeBackend(BackendBase):
    """A backend that discovers whatever the test last published.

    - ``set_instances(...)`` (or assigning :attr:`instances`) publishes a new
      set, answered to every query; a running ``watch`` yields it if it
      differs from the last one it yielded.
    - ``set_catalog(...)`` (or ``catalog=`` when made) publishes a catalog
      instead, answered query by query (service, datacenter, tags).
    - ``fail(error)`` makes every ``discover`` raise a copy of ``error`` until
      ``fail(None)``; ``fail_times(n, error)`` fails only the next ``n``
      calls (flapping). A ``watch`` running during a failure raises it
      (``watch_errors="raise"``, a change feed that breaks) or yields nothing
      until the failure ends (``"silent"``, as a polling watch that backs off
      quietly does).
    - ``delay`` seconds are slept in every ``discover`` (a slow answer);
      ``gate``, when set to an event, holds every ``discover`` until the
      test sets it (a slow answer that ends exactly when the test says).
      ``waiting`` counts the calls held at the gate now.
    - ``watch_resumed`` counts the times a watcher came back for the next
      snapshot: once it is past ``n``, the watcher has handled the first
      ``n`` snapshots it was given.
    - ``discover_calls``, ``watch_calls``, ``close_calls`` count the calls.
    """

    native_watch = True
    """The fake pushes changes to its watchers: caches may rely on its ``watch``."""

    def __init__(
        self,
        instances: Iterable[ServiceInstance] = (),
        *,
        catalog: Iterable[Registration] | None = None,
        source: str = "fake",
        delay: float = 0.0,
        watch_errors: WatchErrors = "raise",
        poll: float = 0.02,
    ) -> None:
        self._cond = threading.Condition()
        self._instances: tuple[ServiceInstance, ...] = tuple(instances)
        self._catalog: tuple[Registration, ...] | None = None if catalog is None else tuple(catalog)
        if self._catalog is not None and self._instances:
            raise ValueError("give instances (answered to every query) or a catalog, not both")
        self._index = 1
        self._failure: BaseException | None = None
        self._fail_count = 0
        self.source = source
        self.delay = delay
        self.gate: threading.Event | None = None
        self.gate_timeout = 60.0
        self.waiting = 0
        self.watch_resumed = 0
        self.watch_errors: WatchErrors = watch_errors
        self._poll = poll
        self.discover_calls = 0
        self.watch_calls = 0
        self.close_calls = 0
        self.closed = False

    # -- what the test controls ---------------------------------------------------------------

    @property
    def instances(self) -> tuple[ServiceInstance, ...]:
        """The instances published now (with a catalog: every instance it holds)."""
        with self._cond:
            if self._catalog is not None:
                return tuple(registration.instance for registration in self._catalog)
            return self._instances

    @instances.setter
    def instances(self, value: Iterable[ServiceInstance]) -> None:
        self.set_instances(value)

    @property
    def index(self) -> int:
        """A change index, bumped at each publication (as Consul's ``X-Consul-Index``)."""
        with self._cond:
            return self._index

    def set_instances(self, instances: Iterable[ServiceInstance]) -> None:
        """Publish a new set of instances, answered to every query, and wake the watchers."""
        published = tuple(instances)
        with self._cond:
            self._instances = published
            self._catalog = None
            self._index += 1
            self._cond.notify_all()

    def set_catalog(self, registrations: Iterable[Registration]) -> None:
        """Publish a catalog, answered query by query, and wake the watchers."""
        published = tuple(registrations)
        with self._cond:
            self._instances = ()
            self._catalog = published
            self._index += 1
            self._cond.notify_all()

    def fail(self, error: BaseException | None) -> None:
        """Fail every call with a copy of ``error`` from now on; ``None`` ends the outage."""
        with self._cond:
            self._failure = error
            self._fail_count = -1 if error is not None else 0
            self._cond.notify_all()

    def fail_times(self, count: int, error: BaseException) -> None:
        """Fail only the next ``count`` calls to ``discover`` (and watch starts) with ``error``."""
        with self._cond:
            self._failure = error
            self._fail_count = count
            self._cond.notify_all()

    @property
    def failing(self) -> bool:
        """Whether the next call would fail."""
        with self._cond:
            return self._failure is not None and self._fail_count != 0

    # -- the backend protocol -----------------------------------------------------------------

    def discover(self, query: ServiceQuery) -> Discovery:
        with self._cond:
            self.discover_calls += 1
        if self.delay > 0:
            time.sleep(self.delay)
        gate = self.gate
        if gate is not None:
            with self._cond:
                self.waiting += 1
            try:
                if not gate.wait(self.gate_timeout):
                    raise DiscoveryUnavailable(f"fake: the test never opened the gate ({self.gate_timeout:g} s)")
            finally:
                with self._cond:
                    self.waiting -= 1
        with self._cond:
            self._raise_if_failing(consume=True)
            return self._snapshot(query)

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        """A change feed: the current snapshot, then one per publication of a different set."""
        with self._cond:
            self.watch_calls += 1
        return self._watch(query, stop)

    def _watch(self, query: ServiceQuery, stop: StopSignal | None) -> Iterator[Discovery]:
        if stop is not None and stop.is_set():
            return
        with self._cond:
            self._raise_if_failing(consume=True)
            last = self._snapshot(query)
            seen = self._index
        yield last
        self._resumed()
        while stop is None or not stop.is_set():
            with self._cond:
                # StopSignal cannot wake us: wait in short slices and look at it between them.
                if self._index == seen and not self.failing:
                    self._cond.wait(self._poll)
                    continue
                if self.failing:
                    if self.watch_errors == "raise":
                        self._raise_if_failing(consume=True)
                    self._cond.wait(self._poll)
                    continue
                seen = self._index
                current = self._snapshot(query)
            if current.instances != last.instances:
                last = current
                yield current
                self._resumed()

    def close(self) -> None:
        with self._cond:
            self.close_calls += 1
            self.closed = True

    def __repr__(self) -> str:
        catalog = self._catalog
        held = f"{len(catalog)} registrations" if catalog is not None else f"{len(self._instances)} instances"
        return f"FakeBackend({held}, source={self.source!r})"

    # -- helpers --------------------------------------------------------------------------------

    def _resumed(self) -> None:
        with self._cond:
            self.watch_resumed += 1

    def _snapshot(self, query: ServiceQuery) -> Discovery:
        if self._catalog is None:
            return Discovery(query, self._instances, source=self.source, index=self._index)
        found = [
            registration.instance
            for registration in self._catalog
            if registration.service == query.name
            and registration.datacenter == query.datacenter
            and set(query.tags) <= set(registration.instance.tags)
        ]
        return Discovery(query, found, source=self.source, index=self._index)

    def _raise_if_failing(self, *, consume: bool) -> None:
        if self._failure is None or self._fail_count == 0:
            return
        error = self._failure
        if consume and self._fail_count > 0:
            self._fail_count -= 1
            if self._fail_count == 0:
                self._failure = None
        # A fresh copy per raise: one exception object raised in many threads would share a traceback.
        raise copy.copy(error)
