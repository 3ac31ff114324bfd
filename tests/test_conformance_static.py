"""The built-in backends, the fake and the wrappers through the conformance suite third parties run."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from registry_config.address import IPAddress, format_host_port
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.caching import CachingBackend
from registry_config.discovery.fallback import FallbackBackend
from registry_config.discovery.model import ServiceInstance
from registry_config.discovery.static import StaticBackend
from registry_config.errors import DiscoveryUnavailable
from registry_config.testing.conformance import BackendConformance
from registry_config.testing.fakes import FakeBackend


class _MutableStatic(StaticBackend):
    """A static list the test may rewrite, polled quickly, as a user's test of a polling backend would."""

    poll_interval = 0.02

    def replace(self, instances: Sequence[ServiceInstance]) -> None:
        StaticBackend.__init__(self, [format_host_port(i.address, i.port) for i in instances])


def _no_such_name(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host}")


class TestStaticBackend(BackendConformance):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return _MutableStatic([format_host_port(i.address, i.port) for i in instances])

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, _MutableStatic)
        backend.replace(instances)

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        return StaticBackend([str(address) for address in addresses])

    def make_failing_backend(self) -> DiscoveryBackend:
        return StaticBackend(["registry.invalid:5000"], resolver=_no_such_name)


class TestStaticBackendFromInstances(BackendConformance):
    """Entries given as ServiceInstance values rather than text."""

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return StaticBackend(list(instances))


class TestFakeBackend(BackendConformance):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return FakeBackend(instances)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, FakeBackend)
        backend.set_instances(instances)

    def make_failing_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryUnavailable("fake outage: connection refused"))
        return fake


class TestCachingBackend(BackendConformance):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return CachingBackend(FakeBackend(instances), ttl=0.0)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, CachingBackend)
        fake = backend.backend
        assert isinstance(fake, FakeBackend)
        fake.set_instances(instances)

    def make_failing_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryUnavailable("fake outage: connection refused"))
        return CachingBackend(fake)


class TestCachingBackendOverPolling(TestStaticBackend):
    """A cache over a polling backend: no background thread, its watch is the backend's."""

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

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        primary = FakeBackend(source="primary")
        primary.fail(DiscoveryUnavailable("primary down: connection refused"))
        return FallbackBackend([primary, FakeBackend(instances, source="secondary")])

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, FallbackBackend)
        secondary = backend.backends[1]
        assert isinstance(secondary, FakeBackend)
        secondary.set_instances(instances)

    def make_failing_backend(self) -> DiscoveryBackend:
        first, second = FakeBackend(), FakeBackend()
        first.fail(DiscoveryUnavailable("first down"))
        second.fail(DiscoveryUnavailable("second down"))
        return FallbackBackend([first, second])
