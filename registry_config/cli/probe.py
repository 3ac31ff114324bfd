"""``registry-config probe``: ask a live registry what it really speaks, and whether that is what was configured."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, TextIO

from ..errors import ProbeError
from ..probe import ProbeResult, probe_registry
from . import EXIT_DISCOVERY, EXIT_MISMATCH, EXIT_OK
from .options import add_registry_options, spec_from_args

__all__ = ["add_parser", "exit_status_for", "format_result", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "probe",
        help="check that a registry answers the way its URL says (HTTP, self-signed or CA-signed HTTPS)",
        description="Send GET /v2/ the way the URL is configured; when that fails, find what works and say "
        "what to change. Exit status: 0 it answers as configured, 2 invalid input, 3 it cannot be reached, "
        "5 it answers, but not as configured (or is not a registry).",
    )
    add_registry_options(parser)
    parser.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in this PEM file instead of the system's")
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds for each connect and read (default: 5)"
    )
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
    """3 when anything probed cannot be reached, 5 when something answers otherwise than configured, else 0."""
    everything = (result, *result.instances)
    if not all(item.reachable for item in everything):
        return EXIT_DISCOVERY
    if not all(item.matches for item in everything):
        return EXIT_MISMATCH
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if not args.timeout > 0:
        raise ProbeError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    result = probe_registry(spec, timeout=args.timeout, ca_bundle=args.ca_bundle, instances=args.instance)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        format_result(result, sys.stdout, configured=spec.security.value)
    return exit_status_for(result)


def _verdict(result: ProbeResult) -> str:
    if not result.reachable:
        return "UNREACHABLE"
    if result.matches:
        return "as configured"
    return "MISMATCH" if result.observed is not None else "NOT A REGISTRY"


def _answer(result: ProbeResult) -> str:
    if result.status is None:
        return "none"
    answer = f"HTTP {result.status}"
    if result.api_version:
        answer += f", {result.api_version}"
    if result.auth_challenge:
        answer += f", {result.auth_challenge.split(' ', 1)[0]} auth"
    return answer


def format_result(result: ProbeResult, out: TextIO, *, configured: str) -> None:
    """A short report: what was asked, what answered, the verdict, and the sentence to act on."""
    observed = result.observed.value if result.observed is not None else "-"
    out.write(f"registry   {result.target}  (configured {configured})\n")
    out.write(f"answer     {_answer(result)}\n")
    out.write(f"observed   {observed}\n")
    out.write(f"verdict    {_verdict(result)}\n")
    out.write(textwrap.fill(result.diagnosis, width=100, initial_indent="  ", subsequent_indent="  ") + "\n")
    if result.instances:
        out.write("\ninstances:\n")
        for instance in result.instances:
            observed = instance.observed.value if instance.observed is not None else "-"
            out.write(f"  {instance.target}  {_verdict(instance)}  ({_answer(instance)}; observed {observed})\n")
            if not instance.matches:
                out.write(
                    textwrap.fill(instance.diagnosis, width=100, initial_indent="    ", subsequent_indent="    ") + "\n"
                )
