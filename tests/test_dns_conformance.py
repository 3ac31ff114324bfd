"""DnsBackend through the shipped conformance suite, each backend asking its own dnsmasq."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from _dnsmasq import Dnsmasq, Records

from registry_config.address import IPAddress
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.dns import DnsBackend
from registry_config.discovery.model import ServiceInstance
from registry_config.testing.conformance import BackendConformance

pytestmark = pytest.mark.integration


def records_for(service: str, instances: Sequence[ServiceInstance]) -> Records:
    """Consul-shaped records for ``instances``: one node per address, one SRV record per (node, port).

    A node is named after its address, so that the same instances in another order give the same answer.
    """
    nodes: dict[IPAddress, str] = {}
    records = Records()
    for instance in instances:
        node = nodes.setdefault(instance.address, f"n{int(instance.address):x}.node.dc1.consul")
        records = records.srv(f"{service}.service.consul", node, instance.port)
    for address, node in nodes.items():
        records = records.host(node, str(address))
    return records


class TestDnsBackendConformance(BackendConformance):
    def setup_method(self, method: object) -> None:
        super().setup_method(method)
        self.servers: dict[int, Dnsmasq] = {}

    def teardown_method(self, method: object) -> None:
        try:
            super().teardown_method(method)
        finally:
            for server in self.servers.values():
                server.close()

    def _backend_on(self, records: Records, **options: object) -> DnsBackend:
        server = Dnsmasq(records, log_queries=False)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        backend = DnsBackend([server.server], timeout=0.5, min_interval=0.05, max_interval=0.5, **options)  # type: ignore[arg-type]
        self.servers[id(backend)] = server
        return backend

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return self._backend_on(records_for(self.service, instances))

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        # dnsmasq reads SRV records only when it starts: serve the new ones on the same port.
        self.servers[id(backend)].restart(records_for(self.service, instances))

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        # Consul also answers A/AAAA for a service name; with no SRV record the default port applies.
        return self._backend_on(Records().host(f"{self.service}.service.consul", *(str(a) for a in addresses)))

    def make_failing_backend(self) -> DiscoveryBackend:
        # dnsmasq refuses names outside its local domains: REFUSED, a real server's failure.
        return self._backend_on(Records(), domain="elsewhere")
