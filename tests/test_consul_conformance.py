"""ConsulBackend through the conformance suite third-party backends run, against the Consul simulator."""

from __future__ import annotations

from collections.abc import Sequence

from _integration import free_port

from registry_config.address import IPAddress
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.model import ServiceInstance
from registry_config.testing.conformance import BackendConformance, Registration, unsupported
from registry_config.testing.consul import ConsulSimulator


def _register(sim: ConsulSimulator, registrations: Sequence[Registration], *, replace: str | None = None) -> None:
    """Register each instance on its node, one service id per (service, port); one index bump for all.

    With ``replace``, that service is deregistered first (in the same batch): the instances change at once.
    """
    with sim.batch():
        if replace is not None:
            sim.deregister_service(replace)
        for registration in registrations:
            instance = registration.instance
            sim.register(
                registration.service,
                str(instance.address),
                port=instance.port,
                node=instance.node or f"cell-{instance.address}",
                service_id=f"{registration.service}-{instance.port}",
                tags=instance.tags,
                meta=instance.meta,
                datacenter=registration.datacenter,
            )


class _Base(BackendConformance):
    passing_only = True

    def setup_method(self, method: object) -> None:
        super().setup_method(method)
        self.simulators: dict[int, ConsulSimulator] = {}

    def teardown_method(self, method: object) -> None:
        super().teardown_method(method)
        for sim in self.simulators.values():
            sim.close()

    def _simulator(self) -> ConsulSimulator:
        return ConsulSimulator(datacenters=("dc1", self.other_datacenter))

    def _backend(self, sim: ConsulSimulator) -> ConsulBackend:
        backend = ConsulBackend(
            sim.url, passing_only=self.passing_only, watch_wait=0.5, watch_min_interval=0.02, timeout=5
        )
        self.simulators[id(backend)] = sim
        return backend

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        sim = self._simulator()
        _register(sim, registrations)
        return self._backend(sim)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        registrations = [Registration(self.service, instance) for instance in instances]
        _register(self.simulators[id(backend)], registrations, replace=self.service)

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        sim = self._simulator()
        for number, address in enumerate(addresses):
            sim.register(self.service, str(address), port=0, node=f"cell-{number}")  # the seed's ServicePort 0
        return self._backend(sim)

    def make_failing_backend(self) -> DiscoveryBackend:
        return ConsulBackend(f"http://127.0.0.1:{free_port()}", timeout=2)

    def make_garbled_backend(self) -> DiscoveryBackend:
        sim = self._simulator()
        sim.respond_raw('[{"Node": {"Node": "cell-a", "Address": "10.244.2.6"}, "Serv', times=100)
        return self._backend(sim)

    # close() frees the HTTP session's pooled connections, but the simulator speaks HTTP/1.0 and closes each
    # connection after its answer: there is no pooled connection left to see go.
    is_closed = unsupported("the simulator closes every connection itself: close() has no effect to observe")

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        sim = self._simulator()
        _register(sim, [Registration(self.service, instance) for instance in instances])
        self.simulators[id(sim)] = sim
        return f"consul://127.0.0.1:{sim.port}"


class TestConsulBackendHealth(_Base):
    """The default: /v1/health/service/<name>?passing."""


class TestConsulBackendCatalog(_Base):
    """passing_only=False: /v1/catalog/service/<name>, as the seed's stager asked."""

    passing_only = False


class TestConsulBackendUnhealthySimulator(_Base):
    """A simulator that fails now and then: the first snapshot propagates errors, so only faults after it."""

    def make_failing_backend(self) -> DiscoveryBackend:
        sim = self._simulator()
        sim.fail(500, "No cluster leader", times=100)
        return self._backend(sim)
