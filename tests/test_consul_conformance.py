"""ConsulBackend through the conformance suite third-party backends run, against the Consul simulator."""

from __future__ import annotations

from collections.abc import Sequence

from _integration import free_port

from registry_config.address import IPAddress
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.model import ServiceInstance
from registry_config.testing.conformance import BackendConformance
from registry_config.testing.consul import ConsulSimulator


def _register(sim: ConsulSimulator, service: str, instances: Sequence[ServiceInstance]) -> None:
    """One node per address, one service id per port, as registry VMs register themselves; one index bump."""
    with sim.batch():
        sim.deregister_service(service)
        for instance in instances:
            sim.register(
                service,
                str(instance.address),
                port=instance.port,
                node=f"cell-{instance.address}",
                service_id=f"{service}-{instance.port}",
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

    def _backend(self, sim: ConsulSimulator) -> ConsulBackend:
        backend = ConsulBackend(
            sim.url, passing_only=self.passing_only, watch_wait=0.5, watch_min_interval=0.02, timeout=5
        )
        self.simulators[id(backend)] = sim
        return backend

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        sim = ConsulSimulator()
        _register(sim, self.service, instances)
        return self._backend(sim)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        _register(self.simulators[id(backend)], self.service, instances)

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        sim = ConsulSimulator()
        for number, address in enumerate(addresses):
            sim.register(self.service, str(address), port=0, node=f"cell-{number}")  # the seed's ServicePort 0
        return self._backend(sim)

    def make_failing_backend(self) -> DiscoveryBackend:
        return ConsulBackend(f"http://127.0.0.1:{free_port()}", timeout=2)


class TestConsulBackendHealth(_Base):
    """The default: /v1/health/service/<name>?passing."""


class TestConsulBackendCatalog(_Base):
    """passing_only=False: /v1/catalog/service/<name>, as the seed's stager asked."""

    passing_only = False


class TestConsulBackendUnhealthySimulator(_Base):
    """A simulator that fails now and then: the first snapshot propagates errors, so only faults after it."""

    def make_failing_backend(self) -> DiscoveryBackend:
        sim = ConsulSimulator()
        sim.fail(500, "No cluster leader", times=100)
        return self._backend(sim)
