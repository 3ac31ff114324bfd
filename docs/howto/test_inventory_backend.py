"""The conformance suite of registry-config, run against InventoryBackend: all it takes is the hooks below."""

from __future__ import annotations

import json

from inventory_backend import InventoryBackend, write_inventory

from registry_config.discovery.registry import BackendRegistry
from registry_config.testing.conformance import BackendConformance, Registration, unsupported

# The suite builds the backend from its URL through a registry, as the command line's --backend does. A registry
# of its own (the built-ins and the installed entry points, plus this name) leaves the process-wide one alone.
REGISTRY = BackendRegistry()
REGISTRY.register("inventory", InventoryBackend.from_url)


def services(registrations):
    """{service: [instances]} from the suite's catalog (the inventory has no datacenters: it declares none)."""
    found = {}
    for registration in registrations:
        found.setdefault(registration.service, []).append(registration.instance)
    return found


class TestInventoryBackend(BackendConformance):
    query_fields = frozenset({"name", "tags"})  # it has no datacenters
    backend_registry = REGISTRY
    is_closed = unsupported("it reads the file on each discover and holds nothing open")

    def make_catalog_backend(self, registrations):
        path = self.workdir / "inventory.json"
        write_inventory(path, services(registrations))
        return InventoryBackend(path, poll_interval=0.02)

    def replace_instances(self, backend, instances):
        write_inventory(backend.path, services(Registration(self.service, i) for i in instances))

    def make_portless_backend(self, addresses):
        path = self.workdir / "portless.json"
        path.write_text(json.dumps({self.service: [{"address": str(address)} for address in addresses]}))
        return InventoryBackend(path, poll_interval=0.02)

    def make_failing_backend(self):
        return InventoryBackend(self.workdir / "missing.json")

    def make_garbled_backend(self):
        path = self.workdir / "garbled.json"
        path.write_text('{"docker_registry": [{"address": "10.244.2.6", "po')  # an export cut short
        return InventoryBackend(path)

    def backend_url(self, instances):
        path = self.workdir / "from-url.json"
        write_inventory(path, {self.service: instances})
        return f"inventory:{path}"
