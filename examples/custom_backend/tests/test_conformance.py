"""The inventory backend passes the registry-config conformance suite: a few lines, all the protocol's tests."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from registry_config_inventory import InventoryBackend

from registry_config.address import IPAddress
from registry_config.discovery.model import ServiceInstance
from registry_config.discovery.registry import backend_from_url
from registry_config.testing.conformance import BackendConformance


def write_inventory(path: Path, entries: Sequence[dict[str, object]]) -> None:
    """Write atomically, as an inventory export should: a reader never sees half a file."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(list(entries)), encoding="utf-8")
    os.replace(partial, path)


def entries(instances: Sequence[ServiceInstance]) -> list[dict[str, object]]:
    # The node name depends on the instance alone: listing the same instances in another order changes nothing.
    return [{"address": str(i.address), "port": i.port, "node": f"registry-{i.port}"} for i in instances]


class TestInventoryBackend(BackendConformance):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> InventoryBackend:
        path = self.workdir / "inventory.json"
        write_inventory(path, entries(instances))
        return InventoryBackend(path, poll_interval=0.02)

    def replace_instances(self, backend: object, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, InventoryBackend)
        write_inventory(backend.path, entries(instances))

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> InventoryBackend:
        path = self.workdir / "portless.json"
        write_inventory(path, [{"address": str(address)} for address in addresses])
        return InventoryBackend(path)

    def make_failing_backend(self) -> InventoryBackend:
        return InventoryBackend(self.workdir / "never-exported.json")


def test_found_through_its_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    write_inventory(path, [{"address": "10.244.2.6", "port": 8080}])
    backend = backend_from_url(f"inventory:{path}?interval=0.5")
    assert isinstance(backend, InventoryBackend)
    assert backend.poll_interval == 0.5
