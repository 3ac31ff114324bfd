"""The conformance suite every discovery backend passes, for third parties to run against theirs.

Subclass :class:`BackendConformance` in a test module, under a name pytest
collects (``Test...``), and say how to make your backend::

    from registry_config.testing.conformance import BackendConformance

    class TestInventoryBackend(BackendConformance):
        def make_backend(self, instances):
            path = self.workdir / "inventory.json"   # a fresh directory per test
            write_inventory(path, instances)
            return InventoryBackend(path, poll_interval=0.05)

        def replace_instances(self, backend, instances):  # optional: enables the change test of watch
            write_inventory(backend.path, instances)

The inherited ``test_*`` methods check the promises of the
:class:`~registry_config.discovery.backend.DiscoveryBackend` protocol. Tests
whose hook you do not define (``replace_instances``,
``make_portless_backend``, ``make_failing_backend``) are skipped, saying so.
Snapshots compare instances with what they carry (node, tags, meta): the
same instances listed in another order must come back with the same
metadata. A backend that watches by polling should poll quickly in these tests (a few
hundredths of a second): the timing knobs are class attributes you may raise
for a slow backend.

This module imports pytest only inside the tests (registry_config never
imports pytest), so it is safe to import from library code; running the
suite needs pytest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import pathlib
import queue
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs

from ..address import IPAddress
from ..discovery.backend import DiscoveryBackend
from ..discovery.model import Discovery, ServiceInstance, ServiceQuery
from ..errors import DiscoveryError, NoInstancesError

__all__ = ["BackendConformance"]


def _skip(reason: str) -> None:
    import pytest

    pytest.skip(reason)


def _pairs(instances: Sequence[ServiceInstance]) -> set[tuple[IPAddress, int]]:
    return {(instance.address, instance.port) for instance in instances}


def _shown(instances: Sequence[ServiceInstance]) -> list[str]:
    return sorted(instance.endpoint for instance in instances)


class _WatchRun:
    """A watch consumed in a thread, so that a test can wait for it with a timeout."""

    def __init__(self, backend: DiscoveryBackend, query: ServiceQuery, *, stop_first: bool = False) -> None:
        self.stop = threading.Event()
        if stop_first:
            self.stop.set()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(backend, query), daemon=True, name="conformance-watch")
        self.thread.start()

    def _run(self, backend: DiscoveryBackend, query: ServiceQuery) -> None:
        try:
            for snapshot in backend.watch(query, stop=self.stop):
                self.events.put(("snapshot", snapshot))
        except BaseException as exc:  # noqa: BLE001 (reported to the test thread, which fails with it)
            self.events.put(("error", exc))
        finally:
            self.events.put(("end", None))

    def next(self, timeout: float) -> tuple[str, Any]:
        """The next event (``snapshot``, ``error``, ``end``), or ``("timeout", None)``."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)

    def next_snapshot(self, timeout: float, *, what: str) -> Discovery:
        kind, value = self.next(timeout)
        if kind == "error":
            raise AssertionError(f"watch raised {type(value).__name__}: {value} while waiting for {what}") from value
        assert kind == "snapshot", f"watch gave no {what} within {timeout:g} s ({kind})"
        assert isinstance(value, Discovery), f"watch yielded {type(value).__name__}, not a Discovery"
        return value

    def finish(self, timeout: float) -> bool:
        """Set stop and wait for the watch to return; whether it did within ``timeout``."""
        self.stop.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()


class BackendConformance:
    """Inherit the protocol's tests; define :meth:`make_backend` (and optionally the other hooks)."""

    watch_timeout: float = 10.0
    """Seconds a watch may take to deliver a snapshot it owes."""
    stop_timeout: float = 5.0
    """Seconds within which ``watch`` must return once ``stop`` is set."""
    quiet_period: float = 1.0
    """Seconds a watch must stay silent after a change that changed nothing."""
    service: str = "docker_registry"
    """The service name the tests ask for."""

    # -- hooks ----------------------------------------------------------------------------------

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        """A backend that will discover exactly ``instances`` (for :attr:`service`)."""
        raise NotImplementedError("define make_backend(self, instances) in your BackendConformance subclass")

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        """Make ``backend`` discover ``instances`` from now on (enables the watch change test)."""
        raise NotImplementedError

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        """A backend whose answers carry ``addresses`` without a port (or with port 0), if it supports that."""
        raise NotImplementedError

    def make_failing_backend(self) -> DiscoveryBackend:
        """A backend whose ``discover`` fails (service down, refused, garbled answer)."""
        raise NotImplementedError

    def sample_instances(self) -> list[ServiceInstance]:
        """The instances most tests use: IPv4 and IPv6, shared addresses with different ports."""
        return [
            ServiceInstance("10.244.2.6", 8080),
            ServiceInstance("10.244.2.7", 8080),
            ServiceInstance("10.244.2.7", 5000),
            ServiceInstance("fd00::1", 8080),
        ]

    def other_instances(self) -> list[ServiceInstance]:
        """A different set, for the change test of ``watch``."""
        return [ServiceInstance("10.244.3.1", 8080), ServiceInstance("10.244.2.6", 8080)]

    def make_query(self, *, default_port: int | None = None) -> ServiceQuery:
        return ServiceQuery(self.service, default_port=default_port)

    # -- bookkeeping ----------------------------------------------------------------------------

    def setup_method(self, method: object) -> None:
        self._conformance_backends: list[DiscoveryBackend] = []
        self._conformance_watches: list[_WatchRun] = []
        self._conformance_tmp = tempfile.TemporaryDirectory(prefix="registry-config-conformance-")
        self.workdir = pathlib.Path(self._conformance_tmp.name)
        """A fresh directory per test, for backends that read files (removed afterwards)."""

    def teardown_method(self, method: object) -> None:
        for run in getattr(self, "_conformance_watches", []):
            run.finish(self.stop_timeout)
        for backend in getattr(self, "_conformance_backends", []):
            # A failing close is not this cleanup's business; the other backends still get closed.
            with contextlib.suppress(Exception):
                backend.close()
        tmp = getattr(self, "_conformance_tmp", None)
        if tmp is not None:
            tmp.cleanup()

    def _make(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        backend = self.make_backend(list(instances))
        self._conformance_backends.append(backend)
        return backend

    def _watch(self, backend: DiscoveryBackend, query: ServiceQuery, *, stop_first: bool = False) -> _WatchRun:
        run = _WatchRun(backend, query, stop_first=stop_first)
        self._conformance_watches.append(run)
        return run

    def _replace(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        try:
            self.replace_instances(backend, list(instances))
        except NotImplementedError:
            _skip("replace_instances(backend, instances) is not defined: the watch change test cannot run")

    # -- discover -------------------------------------------------------------------------------

    def test_is_a_discovery_backend(self) -> None:
        backend = self._make(self.sample_instances())
        assert isinstance(backend, DiscoveryBackend), f"{type(backend).__name__} lacks part of the protocol"

    def test_discover_finds_exactly_the_instances(self) -> None:
        given = self.sample_instances()
        query = self.make_query()
        found = self._make(given).discover(query)
        assert isinstance(found, Discovery)
        assert found.query == query, "the snapshot must say which query it answers"
        assert _pairs(found.instances) == _pairs(given), (
            f"discovered {_shown(found.instances)}, expected {_shown(given)}"
        )

    def test_instances_are_valid(self) -> None:
        found = self._make(self.sample_instances()).discover(self.make_query())
        assert isinstance(found.source, str)
        assert found.source
        for instance in found.instances:
            assert isinstance(instance, ServiceInstance)
            assert isinstance(instance.address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
            assert 1 <= instance.port <= 65535
            assert "," not in instance.endpoint
            assert " " not in instance.endpoint

    def test_instances_are_deduplicated(self) -> None:
        given = self.sample_instances()
        found = self._make([*given, given[0], given[-1]]).discover(self.make_query())
        pairs = [(instance.address, instance.port) for instance in found.instances]
        assert len(pairs) == len(set(pairs)), f"duplicates in {found.endpoints}"
        assert set(pairs) == _pairs(given)

    def test_order_does_not_matter(self) -> None:
        given = self.sample_instances()
        forward = self._make(given).discover(self.make_query())
        backward = self._make(list(reversed(given))).discover(self.make_query())
        assert forward.instances == backward.instances
        again = self._make(given).discover(self.make_query())
        assert again.instances == forward.instances

    def test_no_instances_is_an_empty_answer_or_no_instances_error(self) -> None:
        backend = self._make([])
        try:
            found = backend.discover(self.make_query())
        except NoInstancesError:
            return
        assert found.instances == ()

    def test_snapshot_is_immutable(self) -> None:
        found = self._make(self.sample_instances()).discover(self.make_query())
        assert isinstance(found.instances, tuple)
        for name, value in (("instances", ()), ("stale", True), ("source", "tampered")):
            try:
                setattr(found, name, value)
            except attrs.exceptions.FrozenInstanceError:
                continue
            raise AssertionError(f"Discovery.{name} could be changed")
        try:
            found.instances[0].port = 1  # type: ignore[misc]
        except attrs.exceptions.FrozenInstanceError:
            pass
        else:
            raise AssertionError("ServiceInstance.port could be changed")

    def test_default_port_applies_to_portless_answers(self) -> None:
        addresses = [ipaddress.ip_address("10.244.2.6"), ipaddress.ip_address("fd00::2")]
        try:
            backend = self.make_portless_backend(addresses)
        except NotImplementedError:
            _skip("make_portless_backend(addresses) is not defined: the backend has no port-less answers")
            return
        self._conformance_backends.append(backend)
        found = backend.discover(self.make_query(default_port=5000))
        assert _pairs(found.instances) == {(address, 5000) for address in addresses}

    def test_failures_are_discovery_errors(self) -> None:
        try:
            backend = self.make_failing_backend()
        except NotImplementedError:
            _skip("make_failing_backend() is not defined")
            return
        self._conformance_backends.append(backend)
        import pytest

        try:
            with pytest.raises(DiscoveryError) as caught:
                backend.discover(self.make_query())
        except Exception as exc:
            raise AssertionError(f"discover raised {type(exc).__name__}, not a DiscoveryError: {exc}") from exc
        assert str(caught.value), "a discovery error must say what went wrong"

    # -- watch ----------------------------------------------------------------------------------

    def test_watch_yields_a_first_snapshot(self) -> None:
        given = self.sample_instances()
        run = self._watch(self._make(given), self.make_query())
        first = run.next_snapshot(self.watch_timeout, what="a first snapshot")
        assert _pairs(first.instances) == _pairs(given)

    def test_watch_returns_after_stop(self) -> None:
        run = self._watch(self._make(self.sample_instances()), self.make_query())
        run.next_snapshot(self.watch_timeout, what="a first snapshot")
        started = time.monotonic()
        assert run.finish(self.stop_timeout), f"watch still running {self.stop_timeout:g} s after stop was set"
        assert time.monotonic() - started <= self.stop_timeout

    def test_watch_with_stop_already_set_returns(self) -> None:
        run = self._watch(self._make(self.sample_instances()), self.make_query(), stop_first=True)
        run.thread.join(self.stop_timeout)
        assert not run.thread.is_alive(), "watch did not return although stop was set before it started"
        kinds = []
        while True:
            kind, value = run.next(0)
            if kind == "timeout":
                break
            if kind == "error":
                raise AssertionError(f"watch raised {type(value).__name__}: {value}") from value
            kinds.append(kind)
        assert kinds.count("snapshot") <= 1

    def test_watch_yields_only_on_change(self) -> None:
        given = self.sample_instances()
        backend = self._make(given)
        run = self._watch(backend, self.make_query())
        first = run.next_snapshot(self.watch_timeout, what="a first snapshot")
        self._replace(backend, list(reversed(given)))
        kind, value = run.next(self.quiet_period)
        assert kind == "timeout", f"watch gave {kind} {value!r} although the instances did not change"
        other = self.other_instances()
        self._replace(backend, other)
        changed = run.next_snapshot(self.watch_timeout, what="a snapshot after the instances changed")
        assert _pairs(changed.instances) == _pairs(other)
        assert changed.instances != first.instances

    # -- close ----------------------------------------------------------------------------------

    def test_close_is_idempotent(self) -> None:
        backend = self._make(self.sample_instances())
        backend.close()
        backend.close()

    def test_is_a_context_manager(self) -> None:
        backend = self._make(self.sample_instances())
        with backend as entered:
            assert entered is backend
            found = entered.discover(self.make_query())
            assert _pairs(found.instances) == _pairs(self.sample_instances())
        backend.close()
