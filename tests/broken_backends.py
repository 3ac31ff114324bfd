"""Backends each broken in one way the conformance suite must notice: the fixtures of its self-tests.

Each one is :class:`FakeBackend` (which passes every check) with one promise
of the protocol broken, as real backends have broken it: a catalog read
without its service name, tags or datacenter, metadata dropped, a bare
``TypeError`` for an input the backend did not expect, a watch that repeats
itself, a ``close`` that does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType

import attrs
from typing_extensions import Self

from registry_config.discovery.backend import BackendBase, StopSignal
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import DiscoveryUnavailable
from registry_config.testing.fakes import FakeBackend


def _rewritten(found: Discovery, instances: Sequence[ServiceInstance], source: str) -> Discovery:
    return Discovery(found.query, instances, source=source, index=found.index)


class DropsOne(FakeBackend):
    """Loses an instance (a page of results never fetched)."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        return _rewritten(found, found.instances[1:], "drops-one")


class PortZeroLeaks(FakeBackend):
    """Passes the catalog's ServicePort 0 through, as the seed's Consul answer has it, unchecked."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        for instance in found.instances:
            object.__setattr__(instance, "port", 0)  # what a fast path that skips the converters can do
        return found


class DropsMetadata(FakeBackend):
    """Builds bare ``ServiceInstance(address, port)`` values: node, tags and meta are lost."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        return _rewritten(found, [ServiceInstance(i.address, i.port) for i in found.instances], "drops-metadata")


class ShufflesMetadata(FakeBackend):
    """Pairs metadata with addresses by position: right only when the source lists them in one order."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        listed = [r.instance for r in self._catalog or ()] or list(self._instances)
        wanted = {(i.address, i.port) for i in found.instances}
        listed = [i for i in listed if (i.address, i.port) in wanted]
        ordered = sorted(listed, key=lambda i: (i.address.version, int(i.address), i.port))
        paired = [
            attrs.evolve(place, node=meta.node, tags=meta.tags, meta=meta.meta)
            for place, meta in zip(ordered, listed, strict=True)
        ]
        return _rewritten(found, paired, "shuffles-metadata")


class IgnoresName(FakeBackend):
    """Answers every service's instances (a catalog read without its filter)."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = [
            r.instance
            for r in self._catalog or ()
            if r.datacenter == query.datacenter and set(query.tags) <= set(r.instance.tags)
        ]
        return Discovery(query, found, source="ignores-name")


class IgnoresDatacenter(FakeBackend):
    """Answers the service's instances from every datacenter."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = [
            r.instance
            for r in self._catalog or ()
            if r.service == query.name and set(query.tags) <= set(r.instance.tags)
        ]
        return Discovery(query, found, source="ignores-datacenter")


class IgnoresTags(FakeBackend):
    """Answers the service's instances whatever the tags asked for."""

    def discover(self, query: ServiceQuery) -> Discovery:
        return super().discover(attrs.evolve(query, tags=()))


class TypeErrorForUnknown(FakeBackend):
    """Looks its answer up in a dict and lets the ``KeyError``'s cousin escape for what it does not know."""

    known_tags = frozenset({"primary", "secondary", "v2"})

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        unknown_tags = set(query.tags) - self.known_tags
        if not found.instances and (query.name == "no_such_service" or query.datacenter or unknown_tags):
            raise TypeError("'NoneType' object is not iterable")
        return found


class TypeErrorForWhatItIgnores(FakeBackend):
    """Answers one service from a flat list, and fails with a bare ``TypeError`` for a query it cannot answer."""

    def discover(self, query: ServiceQuery) -> Discovery:
        if query.name != "docker_registry" or query.datacenter is not None or query.tags:
            raise TypeError(f"unsupported query {query!r}")
        return super().discover(query)


class EmptyIsAnOutage(FakeBackend):
    """Reports a service without instances as an outage."""

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        if not found.instances:
            raise DiscoveryUnavailable("fake: the source is down (it is not: the service has no instance)")
        return found


class ReadsOnce(FakeBackend):
    """Reads its source as a stream and never rewinds it: only the first answer has instances."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._read = threading.Lock()
        self._done = False

    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        with self._read:
            done, self._done = self._done, True
        return _rewritten(found, [], "reads-once") if done else found


class ForeignErrors(BackendBase):
    """Lets the lower layer's exception escape."""

    def discover(self, query: ServiceQuery) -> Discovery:
        raise ConnectionRefusedError("refused")


class GarbledTypeError(BackendBase):
    """Walks a garbled answer without checking it: a bare ``TypeError``."""

    def discover(self, query: ServiceQuery) -> Discovery:
        entries: object = None  # what json.loads gave for a body that is not the protocol's
        return Discovery(query, [ServiceInstance(e, 80) for e in entries], source="garbled")  # type: ignore[attr-defined]


class FirstSnapshotEmpty(FakeBackend):
    """Its watch starts with an empty snapshot (a cache not yet filled)."""

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        yield Discovery(query, [], source="first-snapshot-empty")
        yield from super().watch(query, stop=stop)


class IgnoresStop(FakeBackend):
    """A watch that ignores ``stop`` (for 3 s: long enough to be noticed, short enough to end)."""

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        yield self.discover(query)
        done = threading.Event()
        done.wait(3.0)


class Chatty(FakeBackend):
    """Yields a snapshot at every poll, changed or not."""

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        while stop is None or not stop.is_set():
            yield self.discover(query)
            if stop is not None:
                stop.wait(0.05)


class YieldsTwice(FakeBackend):
    """Yields each snapshot twice (two code paths that both publish)."""

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        for snapshot in super().watch(query, stop=stop):
            yield snapshot
            yield snapshot


class PeriodicDuplicate(FakeBackend):
    """Repeats the last snapshot every 1.5 s (a refresh timer that forgets to compare)."""

    period = 1.5

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        last = self.discover(query)
        yield last
        next_repeat = time.monotonic() + self.period
        seen = self.index
        while stop is None or not stop.is_set():
            if time.monotonic() >= next_repeat:
                next_repeat += self.period
                yield last
            if self.index != seen:
                seen = self.index
                current = self.discover(query)
                if current.instances != last.instances:
                    last = current
                    yield current
            if stop is not None:
                stop.wait(0.01)


class CloseTwiceFails(FakeBackend):
    def close(self) -> None:
        if self.closed:
            raise RuntimeError("already closed")
        super().close()


class CloseDoesNothing(FakeBackend):
    def close(self) -> None:
        pass


class ExitDoesNothing(FakeBackend):
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


class EnterReturnsNone(FakeBackend):
    def __enter__(self) -> Self:
        return None  # type: ignore[return-value]
