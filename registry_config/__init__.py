"""registry-config: builder flags and egress rules for staging from a private Docker registry.

A stager hands it a registry URL and a way to find the registry's instances;
it answers which registries are insecure, the builder's
``-insecureDockerRegistries`` flag, and the egress rules that open the
staging container to exactly those instances. Start with :func:`build_plan`.

Backends with optional dependencies (``ConsulBackend``: extra ``consul``;
``DnsBackend``: extra ``dns``) import their client library only when one is
made, so ``import registry_config`` needs nothing but the core dependencies.
"""

from __future__ import annotations

from .discovery import (
    Discovery,
    DiscoveryBackend,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
)
from .discovery.caching import CachingBackend
from .discovery.consul import ConsulBackend
from .discovery.dns import DnsBackend
from .discovery.fallback import FallbackBackend
from .discovery.registry import available_backends, backend_from_url, register_backend
from .egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard, EgressRule, RejectedInstance, rules_for
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
from .plan import StagingPlan, build_plan, plan_from_discovery
from .policy import InsecurityPolicy
from .probe import ProbeResult, probe_registry
from .reference import ImageReference
from .render import render_containerd_hosts, render_daemon_json, render_registries_conf
from .spec import RegistrySpec, SecurityMode

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_ALLOWED_NETWORKS",
    "CachingBackend",
    "ConsulBackend",
    "Discovery",
    "DiscoveryAuthError",
    "DiscoveryBackend",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryUnavailable",
    "DnsBackend",
    "EgressGuard",
    "EgressPolicyError",
    "EgressRule",
    "FallbackBackend",
    "ImageReference",
    "InsecurityPolicy",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidRegistryURL",
    "NoInstancesError",
    "ProbeError",
    "ProbeResult",
    "RegistryConfigError",
    "RegistrySpec",
    "RejectedInstance",
    "SecurityMode",
    "ServiceInstance",
    "ServiceQuery",
    "StagingPlan",
    "StaticBackend",
    "UnknownBackendError",
    "__version__",
    "available_backends",
    "backend_from_url",
    "build_plan",
    "plan_from_discovery",
    "probe_registry",
    "register_backend",
    "render_containerd_hosts",
    "render_daemon_json",
    "render_registries_conf",
    "rules_for",
]
