"""The composition root: from a registry URL and a backend to everything a staging task needs.

``build_plan`` is the only function here that does I/O (through the
backend's ``discover``); the rest is a pure function of the registry spec,
the discovery snapshot and the options, so the same inputs always give
byte-identical flags and rules, whatever order the backend returned the
instances in. That purity is also what lets an unchanged snapshot reuse the
previous plan: a stager planning every request against a cached snapshot
pays for composition once.

What a user should know about the plan (an option without effect, a plan
that holds only the URL's own address) is one of ``plan.warnings`` and is
also issued as a :class:`RegistryConfigWarning` each time a plan is made,
even when the composition itself is reused.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
import warnings
from collections.abc import Iterable
from typing import Any

import attrs

from .address import format_host_port, parse_ip, split_host_port
from .backend_errors import backend_bug, backend_name
from .discovery.backend import DiscoveryBackend
from .discovery.model import Discovery, ServiceInstance, ServiceQuery
from .discovery.static import StaticBackend
from .display import plan_html, plan_text, pretty
from .egress import EgressGuard, EgressRule, RejectedInstance, rules_for
from .errors import (
    DiscoveryError,
    InvalidAddress,
    InvalidInput,
    NoInstancesError,
    RegistryConfigError,
    RegistryConfigWarning,
)
from .redact import quote, shorten
from .spec import RegistrySpec

__all__ = ["StagingPlan", "build_plan", "plan_from_discovery", "query_for"]

_DEFAULT_GUARD = EgressGuard()

URL_SOURCE = "the registry URL"
"""The ``source`` of the snapshot ``build_plan`` makes, with no backend, for a URL whose host is an IP address."""


@attrs.frozen
class StagingPlan:
    """What one staging task needs: the builder's flags and the egress rules that let it reach the registry.

    In a notebook a plan shows as a compact table (its ``_repr_html_``), in
    IPython's terminal as text (``_repr_pretty_``); :meth:`to_text` is the
    same text the ``registry-config plan`` command prints.
    """

    spec: RegistrySpec
    """The registry, as its URL was read: scheme, host, port and security mode."""
    discovery: Discovery
    """The snapshot the plan was composed from: what the backend found, and for which query."""
    instances: tuple[ServiceInstance, ...]
    """The registry instances kept by the egress guard (an IP-literal URL host among them), in a stable order."""
    rejected: tuple[RejectedInstance, ...]
    """The instances the egress guard refused, each with the reason, in a sentence a person can act on."""
    insecure_registries: tuple[str, ...]
    """The ``host:port`` entries of ``-insecureDockerRegistries``: empty for a verified HTTPS registry with no
    extra entries."""
    egress_rules: tuple[EgressRule, ...]
    """The egress rules that open the staging container to exactly the kept instances."""
    warnings: tuple[str, ...] = ()
    """What the user should know: the backend's notes, a stale snapshot, an option without effect."""

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

    def to_text(self) -> str:
        """The plan as a person reads it (what ``registry-config plan`` prints): the flags on one line to
        paste, the rules as a small table, then what was rejected and why, and the warnings."""
        return plan_text(self)

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks: flags, instances, rules, rejected with reasons, warnings."""
        return plan_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: :meth:`to_text`, not the one-line ``repr``."""
        pretty(self.to_text(), "StagingPlan", printer, cycle)


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
    spec: RegistrySpec | str,
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

    ``spec`` is a :class:`RegistrySpec` or a registry URL string (read with
    :meth:`RegistrySpec.from_url`). ``backend=None`` resolves the URL's own
    host with the system resolver (an IP address is its own answer).
    Raises :class:`NoInstancesError` when no instance is left (unless
    ``allow_empty``), :class:`EgressPolicyError` when the guard is set to
    fail, and the backend's :class:`DiscoveryError` when discovery fails; a
    backend that raises anything else (a plugin's bug) has it wrapped in a
    :class:`DiscoveryError` that names the backend.
    """
    spec = _as_spec(spec)
    query = query_for(spec, service=service, datacenter=datacenter)
    if backend is None:
        ip = parse_ip(spec.host)
        if ip is not None:
            discovery = Discovery(query, [ServiceInstance(ip, spec.port)], source=URL_SOURCE)
        else:
            with StaticBackend([spec.address]) as default_backend:
                discovery = default_backend.discover(query)
    else:
        discovery = _discover(backend, query)
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
    spec = _as_spec(spec)
    extras = _extra_entries(extra_insecure)
    plan, notices = _compose(
        spec, discovery, extras, guard if guard is not None else _DEFAULT_GUARD, compact, allow_empty
    )
    for notice in notices:
        warnings.warn(notice, RegistryConfigWarning, stacklevel=_caller_level())
    return plan


def _as_spec(spec: RegistrySpec | str) -> RegistrySpec:
    if isinstance(spec, RegistrySpec):
        return spec
    if isinstance(spec, str):
        return RegistrySpec.from_url(spec)
    raise InvalidInput(f"expected a RegistrySpec or a registry URL string, got {type(spec).__name__}")


def _discover(backend: DiscoveryBackend, query: ServiceQuery) -> Discovery:
    """``backend.discover(query)``, a plugin's bug (any error but ours, or no Discovery) wrapped in a DiscoveryError."""
    try:
        discovery = backend.discover(query)
    except RegistryConfigError:
        raise
    except Exception as exc:
        raise backend_bug(backend_name(backend), exc, f"looking up {query.name!r}") from exc
    if not isinstance(discovery, Discovery):
        raise DiscoveryError(
            f"discovery backend {backend_name(backend)} returned {type(discovery).__name__} for {query.name!r} "
            "instead of a Discovery; this is a bug in that backend: report it to its authors"
        )
    return discovery


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this package."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("registry_config."):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _extra_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Extra ``-insecureDockerRegistries`` entries, checked so that the builder's parser accepts them."""
    if isinstance(entries, str):
        entries = [entries]
    checked = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str) and "," in entry:
            raise InvalidAddress(
                f"extra insecure registry #{i} {quote(entry, limit=120)} holds a comma; give one host:port per "
                "entry (repeat --insecure-registry, or pass a list), since the builder splits its flag on commas"
            )
        host, port = split_host_port(entry, where=f"extra insecure registry #{i}")  # it quotes the entry, redacted
        if port is None:
            raise InvalidAddress(
                f"extra insecure registry #{i} {quote(entry, entry=True, limit=120)} has no port; the builder expects "
                f"host:port (e.g. {shorten(host, 120)}:5000)"
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
) -> tuple[StagingPlan, tuple[str, ...]]:
    """The plan, and the notices to issue as warnings each time it is handed out (they are in its warnings too)."""
    candidates = discovery.instances
    notices: list[str] = []
    url_ip = parse_ip(spec.host)
    if url_ip is not None:
        # The builder contacts exactly the URL's address: it is an instance like any discovered one, judged by the
        # guard, opened by the rules (when kept) and always in the insecure flag (when the registry is insecure).
        own = ServiceInstance(url_ip, spec.port)
        if not any((i.address, i.port) == (own.address, own.port) for i in candidates):
            if not candidates:  # the plan holds what discovery did not confirm: say so
                notices.append(_only_the_url_notice(spec, discovery))
            candidates = tuple(sorted((*candidates, own), key=lambda instance: instance.sort_key))
    if spec.scheme == "http" and spec.skip_ssl_validation:
        notices.append(
            "skip_ssl_validation has no effect on an http:// registry URL (plain HTTP has no certificate to "
            "skip): drop it, or write https:// if the registry speaks TLS"
        )
    kept, rejected = guard.check(candidates)
    plan_warnings = list(discovery.warnings)
    if discovery.stale:
        plan_warnings.append(
            "the discovery snapshot is stale: the discovery service failed and a cached answer was used"
        )
    plan_warnings.extend(notices)
    if not kept and not allow_empty:
        raise NoInstancesError(_no_instances_message(spec, discovery, rejected))
    insecure: list[str] = []
    if spec.is_insecure:
        insecure.extend(instance.endpoint for instance in kept)
        insecure.append(spec.address)
    insecure.extend(extras)
    plan = StagingPlan(
        spec=spec,
        discovery=discovery,
        instances=tuple(kept),
        rejected=tuple(rejected),
        insecure_registries=tuple(dict.fromkeys(insecure)),
        egress_rules=rules_for(kept, compact=compact),
        warnings=tuple(plan_warnings),
    )
    return plan, tuple(notices)


def _where(query: ServiceQuery) -> str:
    """Where discovery looked, as messages say it: the service, and its datacenter when the query names one."""
    return f"service {query.name!r}" + (f" in datacenter {query.datacenter!r}" if query.datacenter else "")


def _only_the_url_notice(spec: RegistrySpec, discovery: Discovery) -> str:
    where = _where(discovery.query)
    return (
        f"discovery ({discovery.source}) found no instance of {where}: the plan holds only the registry URL's own "
        f"address {spec.address}; check the service name (--service) and the backend if the registry has other "
        "instances"
    )


def _no_instances_message(spec: RegistrySpec, discovery: Discovery, rejected: tuple[RejectedInstance, ...]) -> str:
    message = _no_instances_reason(spec, discovery, rejected)
    if discovery.warnings:
        # What the backend skipped or hid (entries it could not use, ACL-filtered lists) is often the cause.
        message += "; the backend also said: " + "; ".join(discovery.warnings)
    return message


def _no_instances_reason(spec: RegistrySpec, discovery: Discovery, rejected: tuple[RejectedInstance, ...]) -> str:
    where = _where(discovery.query)
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
