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

import logging

from .auth import render_auth_json
from .credentials import Credentials
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
    DiscoveryQueryError,
    DiscoveryUnavailable,
    EgressPolicyError,
    ImageNotFoundError,
    InvalidAddress,
    InvalidEgressRule,
    InvalidImageReference,
    InvalidRegistryURL,
    MissingDependencyError,
    NoInstancesError,
    ProbeError,
    RegistryAuthError,
    RegistryConfigError,
    RegistryConfigWarning,
    ReplicaMismatchError,
    UnknownBackendError,
)
from .images import ResolvedImage, resolve_image
from .plan import StagingPlan, build_plan, plan_from_discovery
from .policy import InsecurityPolicy
from .probe import ProbeResult, probe_registry
from .reference import ImageReference
from .render import render_containerd_hosts, render_daemon_json, render_registries_conf, render_tree
from .spec import RegistrySpec, SecurityMode

__version__ = "0.1.0.dev0"

# A library leaves logging to the application: without this, records at WARNING and above would reach stderr
# through logging's last-resort handler (red in a notebook).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_ALLOWED_NETWORKS",
    "CachingBackend",
    "ConsulBackend",
    "Credentials",
    "Discovery",
    "DiscoveryAuthError",
    "DiscoveryBackend",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryQueryError",
    "DiscoveryUnavailable",
    "DnsBackend",
    "EgressGuard",
    "EgressPolicyError",
    "EgressRule",
    "FallbackBackend",
    "ImageNotFoundError",
    "ImageReference",
    "InsecurityPolicy",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidRegistryURL",
    "MissingDependencyError",
    "NoInstancesError",
    "ProbeError",
    "ProbeResult",
    "RegistryAuthError",
    "RegistryConfigError",
    "RegistryConfigWarning",
    "RegistrySpec",
    "RejectedInstance",
    "ReplicaMismatchError",
    "ResolvedImage",
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
    "render_auth_json",
    "render_containerd_hosts",
    "render_daemon_json",
    "render_registries_conf",
    "render_tree",
    "resolve_image",
    "rules_for",
]
