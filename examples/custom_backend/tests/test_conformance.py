"""The inventory backend passes the registry-config conformance suite: a few lines, all the protocol's tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from registry_config_inventory import InventoryBackend

from registry_config.address import IPAddress
from registry_config.discovery.model import ServiceInstance
from registry_config.discovery.registry import backend_from_url
from registry_config.testing.conformance import BackendConformance, Registration, unsupported


def write_inventory(path: Path, entries: Sequence[dict[str, object]]) -> None:
    """Write atomically, as an inventory export should: a reader never sees half a file."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(list(entries)), encoding="utf-8")
    os.replace(partial, path)


def entries(registrations: Iterable[Registration]) -> list[dict[str, object]]:
    return [
        {"service": r.service, "address": str(r.instance.address), "port": r.instance.port, "node": r.instance.node}
        for r in registrations
    ]


class TestInventoryBackend(BackendConformance):
    query_fields = frozenset({"name"})  # an entry may name its service; there are no datacenters or tags
    instance_fields = frozenset({"node"})  # entries carry a node, not tags or meta
    is_closed = unsupported("it reads the file on each discover and keeps nothing open")

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> InventoryBackend:
        path = self.workdir / "inventory.json"
        write_inventory(path, entries(registrations))
        return InventoryBackend(path, poll_interval=0.02)

    def replace_instances(self, backend: object, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, InventoryBackend)
        write_inventory(backend.path, entries(Registration(self.service, i) for i in instances))

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> InventoryBackend:
        path = self.workdir / "portless.json"
        write_inventory(path, [{"address": str(address)} for address in addresses])
        return InventoryBackend(path)

    def make_failing_backend(self) -> InventoryBackend:
        return InventoryBackend(self.workdir / "never-exported.json")

    def make_garbled_backend(self) -> InventoryBackend:
        path = self.workdir / "cut-short.json"
        path.write_text('[{"address": "10.244.2.6", "port": 80', encoding="utf-8")
        return InventoryBackend(path)

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        # Found through the package's entry point: the test runs against the installed plugin.
        path = self.workdir / "from-url.json"
        write_inventory(path, entries(Registration(self.service, i) for i in instances))
        return f"inventory:{path}?interval=0.5"


def test_found_through_its_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    write_inventory(path, [{"address": "10.244.2.6", "port": 8080}])
    backend = backend_from_url(f"inventory:{path}?interval=0.5")
    assert isinstance(backend, InventoryBackend)
    assert backend.poll_interval == 0.5
