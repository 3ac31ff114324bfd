"""DnsBackend through the shipped conformance suite, each backend asking its own dnsmasq."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dns.message
import pytest
from _dnsmasq import Dnsmasq, FakeNameserver, Records

from registry_config.address import IPAddress
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.dns import DnsBackend
from registry_config.discovery.model import ServiceInstance
from registry_config.testing.conformance import BackendConformance, Registration, unsupported

pytestmark = pytest.mark.integration


def records_for(registrations: Iterable[Registration], *, own_datacenter: str = "dc1") -> Records:
    """Consul-shaped records: the names Consul's DNS answers for each service, tag and datacenter.

    An instance is an SRV record under ``<svc>.service[.<dc>].consul`` and
    ``<tag>.<svc>.service[.<dc>].consul`` for each of its tags, pointing at
    ``<node>.node.<dc>.consul``, whose A/AAAA record is the instance's
    address; the backend's own datacenter answers with and without its name.
    A node is named after the instance's (or its address), so that the same
    instances in another order give the same answer.
    """
    nodes: dict[str, str] = {}
    records = Records()
    for registration in registrations:
        instance = registration.instance
        dc = registration.datacenter or own_datacenter
        node = f"{instance.node or f'n{int(instance.address):x}'}.node.{dc}.consul"
        nodes.setdefault(node, str(instance.address))
        zones = [f"service.{dc}.consul"] + (["service.consul"] if registration.datacenter is None else [])
        for zone in zones:
            for label in (registration.service, *(f"{tag}.{registration.service}" for tag in instance.tags)):
                records = records.srv(f"{label}.{zone}", node, instance.port)
    for node, address in nodes.items():
        records = records.host(node, address)
    return records


def _garbage(query: dns.message.Message) -> bytes:
    """The query's id, then bytes that are no DNS message: a broken middlebox, a server speaking something else."""
    return query.id.to_bytes(2, "big") + b"\x81\x80\x00\x01\x00\x07garbage"


class TestDnsBackendConformance(BackendConformance):
    instance_fields = frozenset({"node"})  # SRV answers name the node; tags and meta are not in DNS
    # DnsBackend asks the nameserver afresh for each question: no socket outlives a discover.
    is_closed = unsupported("it holds no connection between questions: close() has nothing to free")

    def setup_method(self, method: object) -> None:
        super().setup_method(method)
        self.servers: dict[int, Dnsmasq | FakeNameserver] = {}

    def teardown_method(self, method: object) -> None:
        try:
            super().teardown_method(method)
        finally:
            for server in self.servers.values():
                server.close()

    def _serve(self, records: Records) -> Dnsmasq:
        server = Dnsmasq(records, log_queries=False)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        self.servers[id(server)] = server
        return server

    def _backend_on(self, records: Records, **options: object) -> DnsBackend:
        server = self._serve(records)
        backend = DnsBackend([server.server], timeout=0.5, min_interval=0.05, max_interval=0.5, **options)  # type: ignore[arg-type]
        self.servers[id(backend)] = server
        return backend

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        return self._backend_on(records_for(registrations))

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        # dnsmasq reads SRV records only when it starts: serve the new ones on the same port.
        server = self.servers[id(backend)]
        assert isinstance(server, Dnsmasq)
        server.restart(records_for(Registration(self.service, instance) for instance in instances))

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        # Consul also answers A/AAAA for a service name; with no SRV record the default port applies.
        return self._backend_on(Records().host(f"{self.service}.service.consul", *(str(a) for a in addresses)))

    def make_failing_backend(self) -> DiscoveryBackend:
        # dnsmasq refuses names outside its local domains: REFUSED, a real server's failure.
        return self._backend_on(Records(), domain="elsewhere")

    def make_garbled_backend(self) -> DiscoveryBackend:
        server = FakeNameserver(_garbage, tcp=True)
        backend = DnsBackend([server.server], timeout=0.5)
        self.servers[id(backend)] = server
        return backend

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        server = self._serve(records_for(Registration(self.service, instance) for instance in instances))
        return f"dns://{server.server}?timeout=0.5"
