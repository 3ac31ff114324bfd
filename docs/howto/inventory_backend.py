"""A discovery backend that reads the registry's instances from a JSON inventory file.

The file maps a service name to its instances, each an address, an optional
port (0 or missing means the registry URL's port) and optionally the node
it runs on, its tags and its metadata::

    {"docker_registry": [{"address": "10.244.2.6", "tags": ["primary"]}, {"address": "10.244.2.7", "port": 5000}]}

This is the backend of the how-to "Write and test your own backend".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from registry_config import (
    Discovery,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
    RegistryConfigError,
    ServiceInstance,
    ServiceQuery,
)
from registry_config.discovery import BackendBase


class InventoryBackend(BackendBase):
    """Instances of a service as an inventory file lists them; ``watch`` polls the file.

    The inventory has no datacenters: a query's datacenter is not looked at.
    A query's tags are: only instances carrying every tag asked for are found.
    """

    def __init__(self, path: str | Path, *, poll_interval: float = 5.0) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval

    @classmethod
    def from_url(cls, url: str) -> InventoryBackend:
        """``inventory:/path/to/file.json``: the factory that ``register_backend`` and entry points name."""
        path = url.partition(":")[2]
        if not path:
            raise ValueError("write inventory:/path/to/inventory.json")
        return cls(path)

    def discover(self, query: ServiceQuery) -> Discovery:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DiscoveryUnavailable(f"inventory {self.path}: cannot read it ({exc.strerror})") from exc
        except ValueError as exc:
            raise DiscoveryProtocolError(f"inventory {self.path}: not JSON ({exc})") from exc
        entries = data.get(query.name, []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise DiscoveryProtocolError(f"inventory {self.path}: expected {{service: [entries]}}")
        instances, warnings = [], []
        for number, entry in enumerate(entries):
            try:
                port = query.port_or_default(entry.get("port"))
                instance = ServiceInstance(
                    entry["address"], port, node=entry.get("node"), tags=entry.get("tags"), meta=entry.get("meta")
                )
            except (RegistryConfigError, AttributeError, KeyError, TypeError, ValueError) as exc:
                # Whatever the file says, a bad entry is skipped and said, never passed on.
                warnings.append(f"inventory {self.path}, {query.name} entry #{number}: {exc}; skipped")
                continue
            if set(query.tags) <= set(instance.tags):
                instances.append(instance)
        return Discovery(query, instances, source="inventory", warnings=warnings)

    def __repr__(self) -> str:
        return f"InventoryBackend({str(self.path)!r})"


def write_inventory(path: Path, services: Mapping[str, Iterable[ServiceInstance]]) -> None:
    """Write an inventory file listing each service's instances (tests and examples use it)."""
    data = {
        service: [
            {
                "address": str(instance.address),
                "port": instance.port,
                "node": instance.node,
                "tags": list(instance.tags),
                "meta": dict(instance.meta),
            }
            for instance in instances
        ]
        for service, instances in services.items()
    }
    path.write_text(json.dumps(data), encoding="utf-8")
