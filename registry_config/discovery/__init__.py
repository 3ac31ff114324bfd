"""Finding every running registry instance: the values, the backend protocol and the backends."""

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
