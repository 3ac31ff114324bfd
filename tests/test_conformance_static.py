"""The built-in backends, the fake and the wrappers through the conformance suite third parties run."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from registry_config.address import IPAddress, format_host_port
from registry_config.discovery.backend import BackendBase, DiscoveryBackend
from registry_config.discovery.caching import CachingBackend
from registry_config.discovery.fallback import FallbackBackend
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.discovery.static import StaticBackend
from registry_config.errors import DiscoveryUnavailable
from registry_config.testing.conformance import BackendConformance, Registration, unsupported
from registry_config.testing.fakes import FakeBackend

NOT_REGISTERED = "made in code around other backends: no backend URL names it"


class _MutableStatic(StaticBackend):
    """A static list the test may rewrite, polled quickly, as a user's test of a polling backend would."""

    poll_interval = 0.02

    def replace(self, entries: Sequence[str | ServiceInstance]) -> None:
        StaticBackend.__init__(self, entries)


def _no_such_name(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host}")


class _Garbled(BackendBase):
    """A backend whose source answered something it could not read, and that let the TypeError out."""

    def discover(self, query: ServiceQuery) -> Discovery:
        raise TypeError("'NoneType' object is not subscriptable")


class TestStaticBackend(BackendConformance):
    query_fields = frozenset()  # a fixed list: every query gets it
    instance_fields = frozenset()  # "ip:port" text carries no node, tags or meta
    # A resolver answering garbage (None) raises a bare TypeError today: reported with issue 16 (resolver.resolve).
    make_garbled_backend = unsupported("a list given in code has no source to garble")
    is_closed = unsupported("a fixed list holds nothing to free")

    def entries(self, instances: Sequence[ServiceInstance]) -> list[str | ServiceInstance]:
        return [format_host_port(i.address, i.port) for i in instances]

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return _MutableStatic(self.entries(instances))

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, _MutableStatic)
        backend.replace(self.entries(instances))

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        return StaticBackend([str(address) for address in addresses])

    def make_failing_backend(self) -> DiscoveryBackend:
        return StaticBackend(["registry.invalid:5000"], resolver=_no_such_name)

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        return "static:" + ",".join(format_host_port(i.address, i.port) for i in instances)


class TestStaticBackendFromInstances(TestStaticBackend):
    """Entries given as ServiceInstance values rather than text: they keep what they carry."""

    instance_fields = frozenset({"node", "tags", "meta"})

    def entries(self, instances: Sequence[ServiceInstance]) -> list[str | ServiceInstance]:
        return list(instances)


def _catalog(instances: Sequence[ServiceInstance], service: str) -> list[Registration]:
    return [Registration(service, instance) for instance in instances]


class TestFakeBackend(BackendConformance):
    make_portless_backend = unsupported("a ServiceInstance always has a port: the fake has no port-less answers")
    make_garbled_backend = unsupported("a fake has no source to garble: it raises what fail() is given")
    backend_url = unsupported("a fake is made in code: no backend URL names it")

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        return FakeBackend(catalog=registrations)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, FakeBackend)
        backend.set_catalog(_catalog(instances, self.service))

    def make_failing_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryUnavailable("fake outage: connection refused"))
        return fake

    def is_closed(self, backend: DiscoveryBackend) -> bool:
        assert isinstance(backend, FakeBackend)
        return backend.closed


class TestCachingBackend(BackendConformance):
    """A cache over a catalog: each query cached on its own, a foreign error wrapped, close passed on."""

    make_portless_backend = unsupported("over a fake, which has none (TestCachingBackendOverPolling has)")
    backend_url = unsupported(NOT_REGISTERED)

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        return CachingBackend(FakeBackend(catalog=registrations), ttl=0.0)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, CachingBackend)
        fake = backend.backend
        assert isinstance(fake, FakeBackend)
        fake.set_catalog(_catalog(instances, self.service))

    def make_failing_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryUnavailable("fake outage: connection refused"))
        return CachingBackend(fake)

    def make_garbled_backend(self) -> DiscoveryBackend:
        return CachingBackend(_Garbled())

    def is_closed(self, backend: DiscoveryBackend) -> bool:
        assert isinstance(backend, CachingBackend)
        fake = backend.backend
        assert isinstance(fake, FakeBackend)
        return fake.closed


class TestCachingBackendOverPolling(TestStaticBackend):
    """A cache over a polling backend: no background thread, its watch is the backend's."""

    backend_url = unsupported(NOT_REGISTERED)

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return CachingBackend(super().make_backend(instances), ttl=0.0)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, CachingBackend)
        super().replace_instances(backend.backend, instances)

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        return CachingBackend(super().make_portless_backend(addresses))

    def make_failing_backend(self) -> DiscoveryBackend:
        return CachingBackend(super().make_failing_backend())


class TestFallbackBackend(BackendConformance):
    """A failing primary, then the backend that answers."""

    make_portless_backend = unsupported("over fakes, which have no port-less answers")
    backend_url = unsupported(NOT_REGISTERED)

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        primary = FakeBackend(source="primary")
        primary.fail(DiscoveryUnavailable("primary down: connection refused"))
        return FallbackBackend([primary, FakeBackend(catalog=registrations, source="secondary")])

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, FallbackBackend)
        secondary = backend.backends[1]
        assert isinstance(secondary, FakeBackend)
        secondary.set_catalog(_catalog(instances, self.service))

    def make_failing_backend(self) -> DiscoveryBackend:
        first, second = FakeBackend(), FakeBackend()
        first.fail(DiscoveryUnavailable("first down"))
        second.fail(DiscoveryUnavailable("second down"))
        return FallbackBackend([first, second])

    def make_garbled_backend(self) -> DiscoveryBackend:
        first = FakeBackend()
        first.fail(DiscoveryUnavailable("first down"))
        return FallbackBackend([first, _Garbled()])

    def is_closed(self, backend: DiscoveryBackend) -> bool:
        assert isinstance(backend, FallbackBackend)
        return all(isinstance(b, FakeBackend) and b.closed for b in backend.backends)
