"""Finding every running registry instance: the values, the backend protocol and the backends.

The Consul and DNS backends live in ``registry_config.discovery.consul`` and
``registry_config.discovery.dns`` and import their client libraries (extras
``consul`` and ``dns``) only when a backend is made.
"""

from __future__ import annotations

from .backend import BackendBase, DiscoveryBackend, StopSignal, poll_watch
from .model import Discovery, ServiceInstance, ServiceQuery
from .static import StaticBackend

__all__ = [
    "BackendBase",
    "Discovery",
    "DiscoveryBackend",
    "ServiceInstance",
    "ServiceQuery",
    "StaticBackend",
    "StopSignal",
    "poll_watch",
]
