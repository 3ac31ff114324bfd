"""The composition root: from a registry URL and a backend to everything a staging task needs.

``build_plan`` is the only function here that does I/O (through the
backend's ``discover``); the rest is a pure function of the registry spec,
the discovery snapshot and the options, so the same inputs always give
byte-identical flags and rules, whatever order the backend returned the
instances in. That purity is also what lets an unchanged snapshot reuse the
previous plan: a stager planning every request against a cached snapshot
pays for composition once.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Iterable
from typing import Any

import attrs

from .address import format_host_port, parse_ip, split_host_port
from .discovery.backend import DiscoveryBackend
from .discovery.model import Discovery, ServiceInstance, ServiceQuery
from .discovery.static import StaticBackend
from .egress import EgressGuard, EgressRule, RejectedInstance, rules_for
from .errors import InvalidAddress, NoInstancesError
from .spec import RegistrySpec

__all__ = ["StagingPlan", "build_plan", "plan_from_discovery", "query_for"]

_DEFAULT_GUARD = EgressGuard()


@attrs.frozen
class StagingPlan:
    """What one staging task needs: the builder's flags and the egress rules that let it reach the registry.

    ``instances`` are the registry instances kept; ``rejected`` those the egress
    guard refused, each with its reason; ``insecure_registries`` the
    ``host:port`` entries of ``-insecureDockerRegistries`` (empty for a
    verified HTTPS registry with no extra entries).
    """

    spec: RegistrySpec
    discovery: Discovery
    instances: tuple[ServiceInstance, ...]
    rejected: tuple[RejectedInstance, ...]
    insecure_registries: tuple[str, ...]
    egress_rules: tuple[EgressRule, ...]
    warnings: tuple[str, ...] = ()

    @property
    def builder_args(self) -> tuple[str, ...]:
        """The builder's argv tokens: ``-dockerRegistryURL URL`` and, when needed, ``-insecureDockerRegistries``."""
        args: tuple[str, ...] = ("-dockerRegistryURL", self.spec.url)
        if self.insecure_registries:
            args += ("-insecureDockerRegistries", ",".join(self.insecure_registries))
        return args

    @property
    def builder_command_line(self) -> str:
        """The builder flags as one shell-quoted line a person can paste."""
        return shlex.join(self.builder_args)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: plain lists, strings and numbers; egress rules in BBS form."""
        return {
            "registry": self.spec.url,
            "security": self.spec.security.value,
            "insecure": self.spec.is_insecure,
            "builder_args": list(self.builder_args),
            "insecure_registries": list(self.insecure_registries),
            "egress_rules": [rule.to_bbs() for rule in self.egress_rules],
            "instances": [instance.endpoint for instance in self.instances],
            "rejected": [
                {"instance": rejection.instance.endpoint, "reason": rejection.reason} for rejection in self.rejected
            ],
            "warnings": list(self.warnings),
            "discovery": {
                "source": self.discovery.source,
                "service": self.discovery.query.name,
                "datacenter": self.discovery.query.datacenter,
                "tags": list(self.discovery.query.tags),
                "index": self.discovery.index,
                "stale": self.discovery.stale,
            },
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text with sorted keys (stable for diffs and caches)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)


def query_for(spec: RegistrySpec, *, service: str | None = None, datacenter: str | None = None) -> ServiceQuery:
    """The discovery query a registry spec implies.

    The name is ``service``, else the Consul service of the URL's host, else
    the host itself (what a plain-DNS backend asks for); the datacenter is
    ``datacenter``, else the one in the host; the tag comes from the host;
    the default port is the URL's port (the seed's "hardcoded port").
    """
    try:
        return _cached_query(spec, service, datacenter)
    except TypeError:  # an unhashable argument: build it uncached, so that it fails (or not) as it always did
        return _query(spec, service, datacenter)


def _query(spec: RegistrySpec, service: str | None, datacenter: str | None) -> ServiceQuery:
    tag = spec.consul_tag
    return ServiceQuery(
        service or spec.consul_service or spec.host,
        datacenter=datacenter or spec.consul_datacenter,
        tags=(tag,) if tag else (),
        default_port=spec.port,
    )


# Every plan asks for the query, and building one parses the host's Consul name and checks each text field:
# about 20 us, a fifth of a cached plan. The query is a pure function of the (immutable) spec and the two names.
_cached_query = functools.lru_cache(maxsize=64)(_query)


def build_plan(
    spec: RegistrySpec,
    backend: DiscoveryBackend | None = None,
    *,
    service: str | None = None,
    datacenter: str | None = None,
    extra_insecure: Iterable[str] = (),
    guard: EgressGuard | None = None,
    compact: bool = True,
    allow_empty: bool = False,
) -> StagingPlan:
    """Discover the registry's instances and compose the staging plan.

    ``backend=None`` resolves the URL's own host with the system resolver.
    Raises :class:`NoInstancesError` when no instance is left (unless
    ``allow_empty``), :class:`EgressPolicyError` when the guard is set to
    fail, and the backend's :class:`DiscoveryError` when discovery fails.
    """
    query = query_for(spec, service=service, datacenter=datacenter)
    if backend is None:
        with StaticBackend([spec.address]) as default_backend:
            discovery = default_backend.discover(query)
    else:
        discovery = backend.discover(query)
    return plan_from_discovery(
        spec, discovery, extra_insecure=extra_insecure, guard=guard, compact=compact, allow_empty=allow_empty
    )


def plan_from_discovery(
    spec: RegistrySpec,
    discovery: Discovery,
    *,
    extra_insecure: Iterable[str] = (),
    guard: EgressGuard | None = None,
    compact: bool = True,
    allow_empty: bool = False,
) -> StagingPlan:
    """Compose a plan from a snapshot already in hand (no I/O); an unchanged snapshot reuses the last plan."""
    extras = _extra_entries(extra_insecure)
    return _compose(spec, discovery, extras, guard if guard is not None else _DEFAULT_GUARD, compact, allow_empty)


def _extra_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Extra ``-insecureDockerRegistries`` entries, checked so that the builder's parser accepts them."""
    if isinstance(entries, str):
        entries = [entries]
    checked = []
    for i, entry in enumerate(entries):
        host, port = split_host_port(entry, where=f"extra insecure registry #{i} {entry!r}")
        if port is None:
            raise InvalidAddress(
                f"extra insecure registry #{i} {entry!r} has no port; the builder expects host:port (e.g. {host}:5000)"
            )
        checked.append(format_host_port(host, port))
    return tuple(checked)


@functools.lru_cache(maxsize=32)
def _compose(
    spec: RegistrySpec,
    discovery: Discovery,
    extras: tuple[str, ...],
    guard: EgressGuard,
    compact: bool,
    allow_empty: bool,
) -> StagingPlan:
    kept, rejected = guard.check(discovery.instances)
    warnings = list(discovery.warnings)
    if discovery.stale:
        warnings.append("the discovery snapshot is stale: the discovery service failed and a cached answer was used")
    if not kept and not allow_empty:
        raise NoInstancesError(_no_instances_message(spec, discovery, rejected))
    insecure: list[str] = []
    if spec.is_insecure:
        insecure.extend(instance.endpoint for instance in kept)
        if parse_ip(spec.host) is None:
            insecure.append(spec.address)
    insecure.extend(extras)
    return StagingPlan(
        spec=spec,
        discovery=discovery,
        instances=tuple(kept),
        rejected=tuple(rejected),
        insecure_registries=tuple(dict.fromkeys(insecure)),
        egress_rules=rules_for(kept, compact=compact),
        warnings=tuple(warnings),
    )


def _no_instances_message(spec: RegistrySpec, discovery: Discovery, rejected: tuple[RejectedInstance, ...]) -> str:
    message = _no_instances_reason(spec, discovery, rejected)
    if discovery.warnings:
        # What the backend skipped or hid (entries it could not use, ACL-filtered lists) is often the cause.
        message += "; the backend also said: " + "; ".join(discovery.warnings)
    return message


def _no_instances_reason(spec: RegistrySpec, discovery: Discovery, rejected: tuple[RejectedInstance, ...]) -> str:
    query = discovery.query
    where = f"service {query.name!r}" + (f" in datacenter {query.datacenter!r}" if query.datacenter else "")
    if rejected:
        reasons = "; ".join(f"{r.instance.endpoint}: {r.reason}" for r in rejected)
        return (
            f"no registry instance left for {spec.url}: {discovery.source} found {len(rejected)} instance(s) of "
            f"{where}, and the egress guard refused all of them ({reasons}); allow their network explicitly "
            "if they are really yours"
        )
    return (
        f"no registry instance found for {spec.url}: {discovery.source} knows no instance of {where}; check that "
        "the registry is running and registered under that name"
    )
