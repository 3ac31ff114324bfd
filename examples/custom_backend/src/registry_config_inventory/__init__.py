"""A registry-config discovery backend reading instances from an inventory JSON file.

It shows what a third-party backend needs: a class with ``discover`` (here
through :class:`registry_config.discovery.BackendBase`, which adds a polling
``watch`` and the context-manager methods), a ``from_url`` factory that takes
the backend URL, errors from ``registry_config.errors`` only, and an entry
point in the group ``registry_config.backends``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from registry_config.discovery.backend import BackendBase
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import DiscoveryProtocolError, DiscoveryUnavailable, InvalidInput, RegistryConfigError

__all__ = ["InventoryBackend"]


class InventoryBackend(BackendBase):
    """Instances listed in a JSON file: ``[{"address": ip, "port": n, "node": name, "service": name}, ...]``."""

    native_watch = False  # it polls the file: a cache should not run its watch in the background

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 5.0) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval

    @classmethod
    def from_url(cls, url: str) -> InventoryBackend:
        """``inventory:/path/to/file.json`` or ``inventory:///path/to/file.json``, options ``?interval=SECONDS``."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() != "inventory" or parts.netloc or not parts.path:
            raise InvalidInput(f"inventory backend URL {url!r}: write inventory:/path/to/inventory.json")
        options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"interval"})
        if unknown:
            raise InvalidInput(f"inventory backend URL {url!r}: unknown option {unknown[0]!r}; known: interval")
        interval = 5.0
        if "interval" in options:
            try:
                interval = float(options["interval"][-1])
            except ValueError:
                interval = -1.0
            if not 0 < interval < 86400:
                raise InvalidInput(f"inventory backend URL {url!r}: interval must be seconds in (0, 86400)")
        return cls(urllib.parse.unquote(parts.path), poll_interval=interval)

    def discover(self, query: ServiceQuery) -> Discovery:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DiscoveryUnavailable(
                f"inventory {str(self.path)!r} cannot be read ({exc.strerror or exc}); check that the inventory "
                "export ran and the path is right"
            ) from exc
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise DiscoveryProtocolError(f"inventory {str(self.path)!r} is not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise DiscoveryProtocolError(f"inventory {str(self.path)!r}: expected a JSON list of instances")
        instances: list[ServiceInstance] = []
        warnings: list[str] = []
        for position, item in enumerate(data):
            where = f"inventory {str(self.path)!r} entry #{position}"
            if not isinstance(item, dict):
                warnings.append(f"{where} is not an object; skipped")
                continue
            if item.get("service") not in (None, query.name):
                continue
            port = item.get("port")
            try:
                port = query.port_or_default(port)
                if port is None:
                    warnings.append(f"{where} has no port and the query has no default_port; skipped")
                    continue
                instances.append(ServiceInstance(item.get("address"), port, node=item.get("node")))
            except (RegistryConfigError, TypeError) as exc:
                warnings.append(f"{where} skipped: {exc}")
        return Discovery(query, instances, source="inventory", warnings=warnings)

    def __repr__(self) -> str:
        return f"InventoryBackend({str(self.path)!r})"
