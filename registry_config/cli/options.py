"""Options that several sub-commands share: the registry URL, the backend, the guard.

Kept in one place so that ``plan``, ``watch`` and ``render`` read a backend
URL, a token file or an allowed network the same way.
"""

from __future__ import annotations

import argparse
import urllib.parse
import warnings

from ..backend_errors import backend_errors, backend_name
from ..discovery.backend import DiscoveryBackend
from ..discovery.static import StaticBackend
from ..egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard
from ..errors import InvalidAddress, InvalidInput, RegistryConfigWarning
from ..plan import StagingPlan, build_plan
from ..redact import quote
from ..spec import RegistrySpec

__all__ = [
    "add_backend_options",
    "add_plan_options",
    "add_registry_options",
    "announce_warnings",
    "backend_from_args",
    "close_backend",
    "guard_from_args",
    "plan_from_args",
    "spec_from_args",
]


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """The registry URL and how to read it."""
    parser.add_argument(
        "url", metavar="URL", help="the registry URL, e.g. http://docker_registry.service.dc1.consul:8080"
    )
    parser.add_argument(
        "--skip-ssl-validation",
        action="store_true",
        help="the https registry's certificate is not verified (self-signed): treat it as insecure",
    )
    parser.add_argument(
        "--consul-domain", default="consul", metavar="DOMAIN", help="Consul's DNS domain (default: consul)"
    )


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Where the instances come from, and which of them the egress guard lets through."""
    group = parser.add_argument_group("discovery")
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--backend",
        metavar="BACKEND_URL",
        help="consul://HOST:PORT?dc=DC, dns://HOST:PORT?domain=consul, dns:, static:IP[:PORT],... or a plugin's "
        "URL (default: resolve the URL's host with the system resolver)",
    )
    source.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="a registry instance, repeatable (a static list; a missing port means the URL's port)",
    )
    group.add_argument(
        "--consul-token-file",
        metavar="FILE",
        help="read the Consul ACL token from FILE (default: the CONSUL_HTTP_TOKEN variable)",
    )
    group.add_argument("--service", metavar="NAME", help="the service name to look up (default: from the URL's host)")
    group.add_argument("--datacenter", metavar="DC", help="the datacenter (default: from the URL's host)")
    guard = parser.add_argument_group("egress")
    guard.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="also allow instances in this network (default: private networks only), repeatable",
    )
    guard.add_argument(
        "--strict", action="store_true", help="fail (exit 4) when the guard refuses an instance, instead of dropping it"
    )


def add_plan_options(parser: argparse.ArgumentParser, *, rules: bool = True) -> None:
    """What shapes the plan beyond discovery: extra insecure registries and, where rules are shown, compaction."""
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another registry the builder may reach insecurely, repeatable",
    )
    if rules:
        parser.add_argument(
            "--no-compact", action="store_true", help="one egress rule per instance, as the Go stager made"
        )


def spec_from_args(args: argparse.Namespace) -> RegistrySpec:
    return RegistrySpec.from_url(
        args.url, skip_ssl_validation=args.skip_ssl_validation, consul_domain=args.consul_domain
    )


def backend_from_args(args: argparse.Namespace) -> DiscoveryBackend | None:
    """The backend the options name, or ``None`` for the default (the URL's host, resolved)."""
    if args.instance:
        return StaticBackend(args.instance)
    if args.backend is not None and not args.backend.strip():
        raise InvalidInput(
            f"--backend {quote(args.backend)} is empty; give a backend URL (consul://HOST:PORT, dns:, "
            "static:IP,...) or leave the option out to resolve the URL's host with the system resolver"
        )
    if args.backend is None:
        if args.consul_token_file:
            raise InvalidInput("--consul-token-file needs a consul:// --backend")
        return None
    url: str = args.backend
    if args.consul_token_file:
        if not url.startswith("consul"):
            raise InvalidInput("--consul-token-file needs a consul:// --backend")
        query = urllib.parse.urlencode({"token_file": args.consul_token_file})
        url += ("&" if "?" in url else "?") + query
    from ..discovery.registry import backend_from_url

    return backend_from_url(url)


def close_backend(backend: DiscoveryBackend) -> None:
    """``backend.close()``, a plugin's bug in it reported as a DiscoveryError naming the backend."""
    with backend_errors(backend_name(backend), "closing"):
        backend.close()


def guard_from_args(args: argparse.Namespace) -> EgressGuard:
    """The default guard's networks plus the user's ``--allow-network`` entries, each checked on its own.

    Checked one by one so that a mistake is named by the user's own option
    and value, not by its position after the built-in networks.
    """
    for entry in args.allow_network:
        try:
            EgressGuard([entry])
        except InvalidAddress as exc:
            problem = str(exc).split(": ", 1)[-1]  # the guard names the list position: the user's entry says more
            raise InvalidAddress(f"--allow-network: {problem}") from None
    return EgressGuard(
        (*DEFAULT_ALLOWED_NETWORKS, *args.allow_network), on_violation="error" if args.strict else "drop"
    )


def announce_warnings(plan: StagingPlan) -> None:
    """Issue each of the plan's warnings (the backend's notes too) for the command to print on stderr.

    The command prints each text once (``registry_config.cli.warnings_as_lines``), so a notice the library
    has already issued while making the plan is not printed twice.
    """
    for warning in plan.warnings:
        warnings.warn(warning, RegistryConfigWarning, stacklevel=2)


def plan_from_args(args: argparse.Namespace) -> StagingPlan:
    """The plan the options describe: discovered once, the backend closed afterwards."""
    spec = spec_from_args(args)
    guard = guard_from_args(args)
    backend = backend_from_args(args)
    try:
        return build_plan(
            spec,
            backend,
            service=args.service,
            datacenter=args.datacenter,
            extra_insecure=args.insecure_registry,
            guard=guard,
            compact=not getattr(args, "no_compact", False),
            allow_empty=getattr(args, "allow_empty", False),
        )
    finally:
        if backend is not None:
            close_backend(backend)
