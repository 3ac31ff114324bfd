"""The conformance suite of registry-config, run against InventoryBackend: all it takes is the hooks below."""

from __future__ import annotations

import json

from inventory_backend import InventoryBackend, write_inventory

from registry_config.testing.conformance import BackendConformance


class TestInventoryBackend(BackendConformance):
    quiet_period = 0.3  # the watch polls every 20 ms here: 0.3 s of silence is plenty

    def make_backend(self, instances):
        path = self.workdir / "inventory.json"
        write_inventory(path, self.service, instances)
        return InventoryBackend(path, poll_interval=0.02)

    def replace_instances(self, backend, instances):
        write_inventory(backend.path, self.service, instances)

    def make_portless_backend(self, addresses):
        path = self.workdir / "portless.json"
        path.write_text(json.dumps({self.service: [{"address": str(address)} for address in addresses]}))
        return InventoryBackend(path, poll_interval=0.02)

    def make_failing_backend(self):
        return InventoryBackend(self.workdir / "missing.json")
