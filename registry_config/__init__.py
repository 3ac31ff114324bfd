"""registry-config: builder flags and egress rules for staging from a private Docker registry.

A stager hands it a registry URL and a way to find the registry's instances;
it answers which registries are insecure, the builder's
``-insecureDockerRegistries`` flag, and the egress rules that open the
staging container to exactly those instances. Start with :func:`build_plan`.
"""

from __future__ import annotations

from .discovery import (
    Discovery,
    DiscoveryBackend,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
)
from .errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryUnavailable,
    EgressPolicyError,
    InvalidAddress,
    InvalidEgressRule,
    InvalidImageReference,
    InvalidRegistryURL,
    NoInstancesError,
    ProbeError,
    RegistryConfigError,
    UnknownBackendError,
)
from .spec import RegistrySpec, SecurityMode

__version__ = "0.1.0.dev0"

__all__ = [
    "Discovery",
    "DiscoveryAuthError",
    "DiscoveryBackend",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryUnavailable",
    "EgressPolicyError",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidRegistryURL",
    "NoInstancesError",
    "ProbeError",
    "RegistryConfigError",
    "RegistrySpec",
    "SecurityMode",
    "ServiceInstance",
    "ServiceQuery",
    "StaticBackend",
    "UnknownBackendError",
    "__version__",
]
