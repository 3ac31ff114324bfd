"""The conformance suite every discovery backend passes, for third parties to run against theirs.

Subclass :class:`BackendConformance` in a test module, under a name pytest
collects (``Test...``), say which query fields your backend honours, and say
how to make it. For the backend of the how-to "Write and test your own
backend" (``docs/howto/inventory_backend.py``, with its ``write_inventory``
helper)::

    from inventory_backend import InventoryBackend, write_inventory

    from registry_config.testing.conformance import BackendConformance, unsupported

    class TestInventoryBackend(BackendConformance):
        query_fields = frozenset({"name", "tags"})  # the inventory has no datacenters
        is_closed = unsupported("it reads the file on each discover and holds nothing open")

        def make_catalog_backend(self, registrations):
            services = {}
            for registration in registrations:
                services.setdefault(registration.service, []).append(registration.instance)
            path = self.workdir / "inventory.json"  # a fresh directory per test
            write_inventory(path, services)
            return InventoryBackend(path, poll_interval=0.02)

        def replace_instances(self, backend, instances):
            write_inventory(backend.path, {self.service: instances})

The inherited ``test_*`` methods check the promises of the
:class:`~registry_config.discovery.backend.DiscoveryBackend` protocol.

What the backend honours. ``query_fields`` (default all of ``name``,
``datacenter`` and ``tags``) are the :class:`ServiceQuery` fields the backend
selects instances by: for each one, the suite builds a catalog with decoys
(other services, another datacenter, instances without the tag asked for)
and checks that only the instances asked for come back, and that an unknown
service, datacenter or tag gives no instance (or a :class:`DiscoveryError`).
For a field it does not declare, the suite checks only that a query using it
is answered or refused with a :class:`DiscoveryError`, never another
exception. A fixed list (:class:`StaticBackend`) declares none.
``instance_fields`` (default ``node``, ``tags`` and ``meta``) are what its
instances carry besides address and port: the sample instances carry all
three, and each declared one must come back with its instance, in whatever
order the instances were listed.

The hooks. :meth:`~BackendConformance.make_backend` (a backend answering the
sample instances for :attr:`~BackendConformance.service`) is required; by
default it calls :meth:`~BackendConformance.make_catalog_backend`, which the
declared query fields need. The others each enable checks:
``replace_instances`` (watch follows changes), ``make_portless_backend``
(port 0 means the default port), ``make_failing_backend`` (outages are
``DiscoveryError``), ``make_garbled_backend`` (a garbled source is a
``DiscoveryError``), ``is_closed`` (``close`` and ``__exit__`` take
effect) and ``backend_url`` (the registered factory builds the backend from
its URL). A hook your backend cannot support is declared so, with the
reason, in place of its definition (``is_closed = unsupported("holds nothing
to free")``): its checks are then not collected. A hook neither defined nor
declared makes its checks skip, saying which hook and how to declare it; under
``REGISTRY_CONFIG_REQUIRE_INTEGRATION=1`` (what CI sets) they fail instead,
so a forgotten hook cannot pass unnoticed.

Timing. The watch checks wait for events, each within ``watch_timeout``;
between changes they pace themselves so that the whole sequence lasts at
least ``watch_window`` seconds, long enough to see a watch that repeats a
snapshot now and then. A backend that watches by polling should poll quickly
in these tests (a few hundredths of a second); the knobs are class
attributes.

This module imports pytest only inside the tests (registry_config never
imports pytest), so it is safe to import from library code; running the
suite needs pytest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pathlib
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import attrs

from ..address import IPAddress
from ..discovery.backend import DiscoveryBackend
from ..discovery.model import Discovery, ServiceInstance, ServiceQuery
from ..discovery.registry import BackendRegistry, backend_from_url
from ..errors import DiscoveryError, NoInstancesError

__all__ = ["REQUIRE_VARIABLE", "BackendConformance", "Registration", "Unsupported", "unavailable", "unsupported"]

REQUIRE_VARIABLE = "REGISTRY_CONFIG_REQUIRE_INTEGRATION"
"""Set to ``1`` (CI does), every check that cannot run fails instead of skipping."""

QUERY_FIELDS = frozenset({"name", "datacenter", "tags"})
INSTANCE_FIELDS = frozenset({"node", "tags", "meta"})

_HOOK_TESTS: Mapping[str, tuple[str, ...]] = {
    "replace_instances": ("test_watch_follows_changes_without_repeating_itself",),
    "make_portless_backend": ("test_default_port_applies_to_portless_answers",),
    "make_failing_backend": ("test_failures_are_discovery_errors",),
    "make_garbled_backend": ("test_garbled_answers_are_discovery_errors",),
    "is_closed": ("test_close_takes_effect", "test_exit_closes"),
    "backend_url": ("test_builds_from_its_url",),
}
"""Each optional hook and the checks it enables."""

_HOOK_SIGNATURES: Mapping[str, str] = {
    "make_catalog_backend": "make_catalog_backend(self, registrations)",
    "replace_instances": "replace_instances(self, backend, instances)",
    "make_portless_backend": "make_portless_backend(self, addresses)",
    "make_failing_backend": "make_failing_backend(self)",
    "make_garbled_backend": "make_garbled_backend(self)",
    "is_closed": "is_closed(self, backend)",
    "backend_url": "backend_url(self, instances)",
}


def unavailable(reason: str) -> NoReturn:
    """Skip the running test with ``reason``; fail it instead when ``REGISTRY_CONFIG_REQUIRE_INTEGRATION=1``.

    The one place the variable is read: the conformance suite's checks and the
    project's own tests (``tests/_integration.py``) both say here that they
    cannot run, so a CI that sets it sees every one of them fail, never skip.
    """
    import pytest

    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_VARIABLE}=1 requires every check to run")
    pytest.skip(reason)


@attrs.frozen
class Unsupported:
    """What stands in a conformance class for a hook its backend cannot support, and why."""

    reason: str


def unsupported(reason: str) -> Any:
    """Declare, in place of a hook's definition, that the backend cannot support it (``reason`` says why).

    ``is_closed = unsupported("a fixed list holds nothing to free")``: the
    checks that need the hook are not collected, rather than skipped. Typed
    ``Any`` so that it may stand where a method is expected.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise TypeError("unsupported(reason): say why the backend cannot support the hook")
    return Unsupported(reason)


@attrs.frozen
class Registration:
    """One instance of one service in one datacenter, as a catalog holds it.

    ``datacenter=None`` is the backend's own datacenter: the one a query
    without a datacenter asks.
    """

    service: str
    instance: ServiceInstance
    datacenter: str | None = None


def _pairs(instances: Sequence[ServiceInstance]) -> set[tuple[IPAddress, int]]:
    return {(instance.address, instance.port) for instance in instances}


def _shown(instances: Sequence[ServiceInstance]) -> list[str]:
    return sorted(instance.endpoint for instance in instances)


def _carried(instance: ServiceInstance, fields: frozenset[str]) -> dict[str, object]:
    """What ``instance`` carries of ``fields``, comparable whatever order its tags came in."""
    values: dict[str, object] = {}
    if "node" in fields:
        values["node"] = instance.node
    if "tags" in fields:
        values["tags"] = sorted(instance.tags)
    if "meta" in fields:
        values["meta"] = dict(instance.meta)
    return values


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
    """Inherit the protocol's tests; define :meth:`make_backend` (and the hooks your backend supports)."""

    query_fields: frozenset[str] = QUERY_FIELDS
    """The query fields the backend selects by: any of ``name``, ``datacenter``, ``tags``."""
    instance_fields: frozenset[str] = INSTANCE_FIELDS
    """What the backend's instances carry besides address and port: any of ``node``, ``tags``, ``meta``."""
    backend_registry: BackendRegistry | None = None
    """Where :meth:`test_builds_from_its_url` looks the URL's name up (``None``: :func:`backend_from_url`)."""

    watch_timeout: float = 10.0
    """Seconds a watch may take to deliver a snapshot it owes."""
    stop_timeout: float = 5.0
    """Seconds within which ``watch`` must return once ``stop`` is set."""
    watch_window: float = 2.0
    """The least number of seconds the watch checks follow a watch through changes."""
    watch_steps: int = 4
    """The least number of changes the watch checks make."""
    service: str = "docker_registry"
    """The service name the tests ask for."""
    other_datacenter: str = "dc2"
    """The datacenter of the decoys, a datacenter the backend knows besides its own."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for what, given, known in (
            ("query_fields", cls.query_fields, QUERY_FIELDS),
            ("instance_fields", cls.instance_fields, INSTANCE_FIELDS),
        ):
            unknown = sorted(set(given) - known)
            if unknown:
                raise TypeError(f"{cls.__name__}.{what}: unknown {unknown}; known: {sorted(known)}")
        for hook, tests in _HOOK_TESTS.items():
            declared = isinstance(getattr(cls, hook), Unsupported)
            for test in tests:
                # A declared hook's checks are left out (not skipped); a subclass that supports it again gets them back.
                if declared:
                    setattr(cls, test, None)
                elif getattr(cls, test) is None:
                    setattr(cls, test, getattr(BackendConformance, test))

    # -- hooks ----------------------------------------------------------------------------------

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        """A backend that will discover exactly ``instances`` for :attr:`service` in its own datacenter.

        By default, :meth:`make_catalog_backend` with ``instances`` registered under :attr:`service`.
        """
        if not self._defines("make_catalog_backend"):
            raise NotImplementedError(
                "define make_backend(self, instances) or make_catalog_backend(self, registrations) "
                "in your BackendConformance subclass"
            )
        return self.make_catalog_backend([Registration(self.service, instance) for instance in instances])

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        """A backend whose catalog holds exactly ``registrations`` (needed by the declared query fields)."""
        raise NotImplementedError

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        """Make ``backend`` discover ``instances`` for :attr:`service` from now on (enables the watch checks)."""
        raise NotImplementedError

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        """A backend whose answers carry ``addresses`` without a port (or with port 0)."""
        raise NotImplementedError

    def make_failing_backend(self) -> DiscoveryBackend:
        """A backend whose ``discover`` fails: its source is down, refuses, or cannot be read."""
        raise NotImplementedError

    def make_garbled_backend(self) -> DiscoveryBackend:
        """A backend whose source answers garbage (a truncated file, a body that is not the protocol's)."""
        raise NotImplementedError

    def is_closed(self, backend: DiscoveryBackend) -> bool:
        """Whether ``backend`` has let go of what it held (observed from outside: connections, files, threads)."""
        raise NotImplementedError

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        """A backend URL whose registered factory makes a backend discovering exactly ``instances``."""
        raise NotImplementedError

    def sample_instances(self) -> list[ServiceInstance]:
        """The instances most tests use: IPv4 and IPv6, one address with two ports, each with node, tags, meta."""
        return [
            ServiceInstance("10.244.2.6", 8080, node="cell-a", tags=("primary", "v2"), meta={"zone": "z1"}),
            ServiceInstance("10.244.2.7", 8080, node="cell-b", tags=("primary",), meta={"zone": "z2"}),
            ServiceInstance("10.244.2.7", 5000, node="cell-b", tags=("secondary",), meta={"zone": "z2", "v": "1"}),
            ServiceInstance("fd00::1", 8080, node="cell-c", tags=("primary", "v2"), meta={"zone": "z3"}),
        ]

    def other_instances(self) -> list[ServiceInstance]:
        """A different set, for the watch checks."""
        return [
            ServiceInstance("10.244.3.1", 8080, node="cell-d", tags=("primary",), meta={"zone": "z4"}),
            ServiceInstance("10.244.2.6", 8080, node="cell-a", tags=("primary", "v2"), meta={"zone": "z1"}),
        ]

    def decoy_registrations(self) -> list[Registration]:
        """Other services, and this service in :attr:`other_datacenter`: what a query must leave out."""
        return [
            Registration(f"{self.service}-mirror", ServiceInstance("10.244.9.1", 8080, node="cell-x")),
            Registration("other", ServiceInstance("10.244.9.2", 5000, node="cell-y", tags=("primary",))),
            Registration("other", ServiceInstance("10.244.2.6", 9000, node="cell-a")),
            Registration(self.service, ServiceInstance("10.244.8.1", 8080, node="far-a"), self.other_datacenter),
            Registration(self.service, ServiceInstance("fd00::8", 8080, node="far-b"), self.other_datacenter),
        ]

    def _decoys(self) -> list[Registration]:
        """The decoys the declared query fields can tell apart from the instances asked for."""
        return [
            decoy
            for decoy in self.decoy_registrations()
            if (decoy.service == self.service or "name" in self.query_fields)
            and (decoy.datacenter is None or "datacenter" in self.query_fields)
        ]

    def make_query(
        self,
        *,
        name: str | None = None,
        datacenter: str | None = None,
        tags: Sequence[str] = (),
        default_port: int | None = None,
    ) -> ServiceQuery:
        return ServiceQuery(name or self.service, datacenter=datacenter, tags=tuple(tags), default_port=default_port)

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

    def _defines(self, hook: str) -> bool:
        defined = getattr(type(self), hook)
        return defined is not getattr(BackendConformance, hook) and not isinstance(defined, Unsupported)

    def _need(self, hook: str) -> None:
        """Report a hook that is neither defined nor declared unsupported (skip, or fail under REQUIRE)."""
        if self._defines(hook):
            return
        unavailable(
            f"{type(self).__name__} does not define {_HOOK_SIGNATURES[hook]}: define it, or declare that the "
            f"backend cannot support it: {hook} = unsupported('why')"
        )

    def _kept(self, backend: DiscoveryBackend) -> DiscoveryBackend:
        self._conformance_backends.append(backend)
        return backend

    def _make(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return self._kept(self.make_backend(list(instances)))

    def _catalog(self, field: str, registrations: Sequence[Registration]) -> DiscoveryBackend:
        if not self._defines("make_catalog_backend"):
            unavailable(
                f"{type(self).__name__} declares that its backend honours the query's {field} but does not define "
                f"{_HOOK_SIGNATURES['make_catalog_backend']}: define it, or declare the fields it honours "
                f"(query_fields = frozenset({sorted(self.query_fields - {field})!r}))"
            )
        return self._kept(self.make_catalog_backend(list(registrations)))

    def _watch(self, backend: DiscoveryBackend, query: ServiceQuery, *, stop_first: bool = False) -> _WatchRun:
        run = _WatchRun(backend, query, stop_first=stop_first)
        self._conformance_watches.append(run)
        return run

    def _answer_or_discovery_error(self, backend: DiscoveryBackend, query: ServiceQuery, what: str) -> Discovery | None:
        """``backend.discover(query)``, or None if it raised a DiscoveryError; any other exception fails."""
        try:
            found = backend.discover(query)
        except DiscoveryError as exc:
            if not str(exc):
                raise AssertionError(f"{what}: a discovery error must say what went wrong") from exc
            return None
        except Exception as exc:
            raise AssertionError(
                f"{what}: discover raised {type(exc).__name__} ({exc}); a backend raises only DiscoveryError"
            ) from exc
        assert isinstance(found, Discovery), f"{what}: discover returned {type(found).__name__}, not a Discovery"
        return found

    def _nothing_for(
        self, backend: DiscoveryBackend, query: ServiceQuery, what: str, *, errors: tuple[type[Exception], ...]
    ) -> None:
        """``query`` finds no instance: an empty answer, or one of ``errors``; anything else fails."""
        try:
            found = backend.discover(query)
        except errors:
            return
        except Exception as exc:
            allowed = " or ".join(error.__name__ for error in errors)
            raise AssertionError(f"{what}: discover raised {type(exc).__name__} ({exc}), not {allowed}") from exc
        assert found.instances == (), f"{what}: discovered {_shown(found.instances)}, expected no instance"

    def _exactly(self, found: Discovery, expected: Sequence[ServiceInstance], what: str) -> None:
        assert _pairs(found.instances) == _pairs(expected), (
            f"{what}: discovered {_shown(found.instances)}, expected {_shown(expected)}"
        )

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
        self._exactly(found, given, "the sample instances")

    def test_instances_are_valid(self) -> None:
        found = self._make(self.sample_instances()).discover(self.make_query())
        assert isinstance(found.source, str), "Discovery.source must name the backend"
        assert found.source, "Discovery.source must name the backend"
        for instance in found.instances:
            assert type(instance) is ServiceInstance, f"{instance!r} is a {type(instance).__name__}"
            assert isinstance(instance.address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
            assert isinstance(instance.port, int), f"{instance.endpoint}: port {instance.port!r} is not an int"
            assert 1 <= instance.port <= 65535, f"{instance.address}: port {instance.port} is not in 1..65535"
            assert instance.endpoint == ServiceInstance(instance.address, instance.port).endpoint

    def test_instances_carry_their_own_metadata_in_any_order(self) -> None:
        """Each instance comes back with its own node, tags and meta, however the source listed them."""
        given = self.sample_instances()
        expected = {(i.address, i.port): _carried(i, self.instance_fields) for i in given}
        for listing, instances in (("as listed", given), ("listed in reverse", list(reversed(given)))):
            found = self._make(instances).discover(self.make_query())
            self._exactly(found, given, f"the sample instances {listing}")
            for instance in found.instances:
                carried = _carried(instance, self.instance_fields)
                wanted = expected[(instance.address, instance.port)]
                assert carried == wanted, f"{instance.endpoint} ({listing}) carries {carried}, expected {wanted}"

    def test_name_selects_the_service(self) -> None:
        unknown = self.make_query(name="no_such_service")
        if "name" not in self.query_fields:
            backend = self._make(self.sample_instances())
            self._answer_or_discovery_error(backend, unknown, "a query for another service")
            return
        given = self.sample_instances()
        catalog = [Registration(self.service, i) for i in given] + self._decoys()
        backend = self._catalog("name", catalog)
        self._exactly(backend.discover(self.make_query()), given, f"{self.service!r} among other services")
        decoys = [r.instance for r in catalog if r.service == "other"]
        self._exactly(backend.discover(self.make_query(name="other")), decoys, "service 'other'")
        self._nothing_for(backend, unknown, "an unknown service", errors=(NoInstancesError,))

    def test_datacenter_selects_its_instances(self) -> None:
        if "datacenter" not in self.query_fields:
            backend = self._make(self.sample_instances())
            query = self.make_query(datacenter=self.other_datacenter)
            self._answer_or_discovery_error(backend, query, "a query for another datacenter")
            return
        given = self.sample_instances()
        catalog = [Registration(self.service, i) for i in given] + self._decoys()
        backend = self._catalog("datacenter", catalog)
        far = [r.instance for r in catalog if r.service == self.service and r.datacenter == self.other_datacenter]
        self._exactly(backend.discover(self.make_query()), given, "the backend's own datacenter")
        found = backend.discover(self.make_query(datacenter=self.other_datacenter))
        self._exactly(found, far, f"datacenter {self.other_datacenter!r}")
        unknown = self.make_query(datacenter="no-such-dc")
        self._nothing_for(backend, unknown, "an unknown datacenter", errors=(DiscoveryError,))

    def test_tags_select_their_instances(self) -> None:
        if "tags" not in self.query_fields:
            backend = self._make(self.sample_instances())
            self._answer_or_discovery_error(backend, self.make_query(tags=["primary"]), "a query with a tag")
            return
        given = self.sample_instances()
        backend = self._catalog("tags", [Registration(self.service, i) for i in given] + self._decoys())
        for tag in ("primary", "secondary", "v2"):
            found = backend.discover(self.make_query(tags=[tag]))
            self._exactly(found, [i for i in given if tag in i.tags], f"tag {tag!r}")
        unknown = self.make_query(tags=["no-such-tag"])
        self._nothing_for(backend, unknown, "an unknown tag", errors=(NoInstancesError,))

    def test_no_instances_is_an_empty_answer_or_no_instances_error(self) -> None:
        backend = self._make([])
        self._nothing_for(backend, self.make_query(), "a service without instances", errors=(NoInstancesError,))

    def test_discover_answers_alike_every_time_and_from_every_thread(self) -> None:
        """A backend serves many plans: the second answer, and answers given in parallel, are the first's."""
        backend = self._make(self.sample_instances())
        query = self.make_query()
        first = backend.discover(query)
        answers: list[Discovery | BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(4)

        def ask() -> None:
            try:
                start.wait(self.watch_timeout)
                for _ in range(3):
                    answer: Discovery | BaseException = backend.discover(query)
                    with lock:
                        answers.append(answer)
            except BaseException as exc:  # noqa: BLE001 (reported below, in the test's thread)
                with lock:
                    answers.append(exc)

        threads = [threading.Thread(target=ask, name=f"conformance-discover-{n}") for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.watch_timeout * 3)
        assert not any(thread.is_alive() for thread in threads), "discover did not return from 4 threads"
        assert len(answers) == 12
        for answer in answers:
            if isinstance(answer, BaseException):
                raise AssertionError(f"discover raised {type(answer).__name__}: {answer}") from answer
            assert answer.instances == first.instances, (
                f"a later answer {_shown(answer.instances)} differs from the first {_shown(first.instances)}"
            )

    def test_default_port_applies_to_portless_answers(self) -> None:
        self._need("make_portless_backend")
        addresses = [ipaddress.ip_address("10.244.2.6"), ipaddress.ip_address("fd00::2")]
        backend = self._kept(self.make_portless_backend(addresses))
        found = backend.discover(self.make_query(default_port=5000))
        assert _pairs(found.instances) == {(address, 5000) for address in addresses}, (
            f"discovered {_shown(found.instances)}, expected port 5000 (the query's default) on each address"
        )

    def test_failures_are_discovery_errors(self) -> None:
        self._need("make_failing_backend")
        self._raises_discovery_error(self._kept(self.make_failing_backend()), "a failing source")

    def test_garbled_answers_are_discovery_errors(self) -> None:
        self._need("make_garbled_backend")
        self._raises_discovery_error(self._kept(self.make_garbled_backend()), "a garbled source")

    def _raises_discovery_error(self, backend: DiscoveryBackend, what: str) -> None:
        try:
            found = backend.discover(self.make_query())
        except DiscoveryError as exc:
            if not str(exc):
                raise AssertionError(f"{what}: a discovery error must say what went wrong") from exc
            return
        except Exception as exc:
            raise AssertionError(f"{what}: discover raised {type(exc).__name__}, not a DiscoveryError: {exc}") from exc
        raise AssertionError(f"{what}: discover answered {_shown(found.instances)} rather than a DiscoveryError")

    def test_builds_from_its_url(self) -> None:
        self._need("backend_url")
        given = self.sample_instances()
        url = self.backend_url(given)
        build: Callable[[str], DiscoveryBackend] = (
            self.backend_registry.from_url if self.backend_registry is not None else backend_from_url
        )
        backend = self._kept(build(url))
        assert isinstance(backend, DiscoveryBackend)
        self._exactly(backend.discover(self.make_query()), given, f"the backend built from {url!r}")

    # -- watch ----------------------------------------------------------------------------------

    def test_watch_yields_a_first_snapshot(self) -> None:
        given = self.sample_instances()
        query = self.make_query()
        run = self._watch(self._make(given), query)
        first = run.next_snapshot(self.watch_timeout, what="a first snapshot")
        assert first.query == query, "the snapshot must say which query it answers"
        self._exactly(first, given, "the first snapshot")

    def test_watch_returns_after_stop(self) -> None:
        run = self._watch(self._make(self.sample_instances()), self.make_query())
        run.next_snapshot(self.watch_timeout, what="a first snapshot")
        assert run.finish(self.stop_timeout), f"watch still running {self.stop_timeout:g} s after stop was set"

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

    def test_watch_follows_changes_without_repeating_itself(self) -> None:
        """Each change gives one snapshot of the new instances; a change that changes nothing gives none.

        The watch is followed through at least :attr:`watch_steps` changes and
        :attr:`watch_window` seconds: each step rewrites the current instances
        in another order (nothing changed: the watch must stay silent while
        the test paces itself), then changes them and waits for the one
        snapshot that change owes. A snapshot that repeats the previous one,
        whenever it comes, is a failure.
        """
        self._need("replace_instances")
        sets = [self.sample_instances(), self.other_instances(), self.sample_instances()[:2]]
        backend = self._make(sets[0])
        run = self._watch(backend, self.make_query())
        previous = run.next_snapshot(self.watch_timeout, what="a first snapshot")
        self._exactly(previous, sets[0], "the first snapshot")
        pause = self.watch_window / self.watch_steps
        started = time.monotonic()
        step = 0
        while step < self.watch_steps or time.monotonic() - started < self.watch_window:
            step += 1
            current, target = sets[(step - 1) % len(sets)], sets[step % len(sets)]
            self.replace_instances(backend, list(reversed(current)))
            kind, value = run.next(pause)
            if kind == "snapshot":
                again = " (the same instances again)" if value.instances == previous.instances else ""
                raise AssertionError(
                    f"step {step}: watch yielded {_shown(value.instances)}{again} although the instances did not "
                    "change (they were only listed in another order)"
                )
            assert kind == "timeout", f"step {step}: watch gave {kind} {value!r} although nothing changed"
            self.replace_instances(backend, target)
            changed = run.next_snapshot(self.watch_timeout, what=f"a snapshot after change #{step}")
            again = " (the previous snapshot again)" if changed.instances == previous.instances else ""
            self._exactly(changed, target, f"change #{step}{again}")
            previous = changed
        kind, value = run.next(pause)
        assert kind == "timeout", f"step {step}: after the last change the watch gave {kind} {value!r} as well"

    # -- close ----------------------------------------------------------------------------------

    def test_close_is_idempotent(self) -> None:
        backend = self._make(self.sample_instances())
        backend.discover(self.make_query())
        backend.close()
        backend.close()

    def test_close_takes_effect(self) -> None:
        self._need("is_closed")
        backend = self._make(self.sample_instances())
        backend.discover(self.make_query())
        assert not self.is_closed(backend), "is_closed says the backend is closed before close was called"
        backend.close()
        self._until_closed(backend, "close()")
        backend.close()
        assert self.is_closed(backend)

    def test_exit_closes(self) -> None:
        self._need("is_closed")
        backend = self._make(self.sample_instances())
        with backend as entered:
            entered.discover(self.make_query())
            assert not self.is_closed(backend), "is_closed says the backend is closed inside its with block"
        self._until_closed(backend, "leaving its with block")

    def _until_closed(self, backend: DiscoveryBackend, what: str) -> None:
        deadline = time.monotonic() + self.stop_timeout
        while not self.is_closed(backend):
            assert time.monotonic() < deadline, f"the backend is not closed {self.stop_timeout:g} s after {what}"
            time.sleep(0.01)  # polling an outside effect (a socket closing), with a deadline

    def test_is_a_context_manager(self) -> None:
        given = self.sample_instances()
        backend = self._make(given)
        with backend as entered:
            assert entered is backend, f"__enter__ returned {entered!r}, not the backend"
            self._exactly(entered.discover(self.make_query()), given, "inside the with block")
