"""``registry-config probe``: ask a live registry what it really speaks, and whether that is what was configured."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from ..credentials import load_credentials
from ..display import probe_text
from ..errors import ProbeError, RegistryConfigWarning
from ..probe import ProbeResult, probe_registry
from . import EXIT_AUTH, EXIT_DISCOVERY, EXIT_MISMATCH, EXIT_OK
from .options import add_registry_options, spec_from_args
from .resolve import add_credentials_option

__all__ = ["add_parser", "exit_status_for", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "probe",
        help="check that a registry answers the way its URL says (HTTP, self-signed or CA-signed HTTPS)",
        description="Send GET /v2/ the way the URL is configured; when that fails, find what works and say "
        "what to change. Exit status: 0 it answers as configured, 2 invalid input, 3 it cannot be reached, "
        "5 it answers, but not as configured (or is not a registry), 7 it refused the login given.",
    )
    add_registry_options(parser)
    parser.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in this PEM file instead of the system's")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds for each whole request (connect, TLS, headers and body; default: 5)",
    )
    add_credentials_option(parser)
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="also probe this instance, checking TLS against the URL's host name; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def exit_status_for(result: ProbeResult) -> int:
    """3 when anything probed cannot be reached, 5 when something answers otherwise than configured, 7 when the
    registry refused the login given, else 0."""
    everything = (result, *result.instances)
    if not all(item.reachable for item in everything):
        return EXIT_DISCOVERY
    if not all(item.matches for item in everything):
        return EXIT_MISMATCH
    if result.login == "refused":
        return EXIT_AUTH
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if spec.scheme == "http" and spec.skip_ssl_validation:
        warnings.warn(
            "--skip-ssl-validation has no effect on an http:// URL (plain HTTP has no certificate to skip): "
            "drop it, or write https:// if the registry speaks TLS",
            RegistryConfigWarning,
            stacklevel=2,
        )
    if not args.timeout > 0:
        raise ProbeError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    credentials = load_credentials(args.credentials_file)
    result = probe_registry(
        spec, timeout=args.timeout, ca_bundle=args.ca_bundle, instances=args.instance, credentials=credentials
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.write(probe_text(result, configured=spec.security.value))
    return exit_status_for(result)
