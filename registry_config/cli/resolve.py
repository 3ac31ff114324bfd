"""``registry-config resolve``: pin an image tag to the digest the registry's instances serve.

The password comes from a file (``--credentials-file``, or the file named by
``REGISTRY_CONFIG_CREDENTIALS_FILE``), never from argv: every user of the
machine can read another process's command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..credentials import CREDENTIALS_FILE_VARIABLE, load_credentials
from ..errors import InvalidInput, ProbeError
from ..images import ResolvedImage, resolve_image
from . import EXIT_DISCOVERY, EXIT_OK
from .options import add_backend_options, add_plan_options, add_registry_options, announce_warnings, plan_from_args

__all__ = ["add_credentials_option", "add_parser", "format_resolved", "run"]


def add_credentials_option(parser: argparse.ArgumentParser) -> None:
    """``--credentials-file``: one ``user:password`` line (default: the file the environment variable names)."""
    parser.add_argument(
        "--credentials-file",
        metavar="FILE",
        help=f"read the registry login from FILE, one user:password line (default: the file named by "
        f"{CREDENTIALS_FILE_VARIABLE}, if set); never pass a password on the command line",
    )


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "resolve",
        help="pin an image tag to the digest the registry serves (the same layers on every scale-up)",
        description="Discover the registry's instances, as 'plan' does, and ask them (in the URL's security "
        "mode) which digest IMAGE points to; print the pinned reference host:port/repo@sha256:.... Exit status: "
        "0 ok, 2 invalid input, 3 registry or discovery unreachable, 4 no instance left, 6 image not found, "
        "7 authentication refused, 8 replicas disagree (--all-instances).",
    )
    add_registry_options(parser)
    parser.add_argument("image", metavar="IMAGE", help="repo[:tag], repo@sha256:..., or host:port/repo[:tag]")
    add_backend_options(parser)
    add_plan_options(parser, rules=False)
    add_credentials_option(parser)
    parser.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in this PEM file instead of the system's")
    parser.add_argument(
        "--all-instances",
        action="store_true",
        help="ask every instance and fail (exit 8) when they serve different digests or some lack the image",
    )
    parser.add_argument("--platform", metavar="OS/ARCH", help="pin this platform's manifest of an index (linux/amd64)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds for each request, whole (default: 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def format_resolved(resolved: ResolvedImage) -> str:
    """The result as a person reads it: the pinned reference first (the line to paste), then the details."""
    lines = [
        resolved.pinned,
        f"  digest      {resolved.digest}",
        f"  media type  {resolved.media_type}",
        f"  answered by {resolved.instance}",
    ]
    if len(resolved.digests) > 1:
        lines.append(f"  agreed by   {', '.join(resolved.digests)}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0 or args.timeout == float("inf"):
        raise InvalidInput(f"--timeout {args.timeout:g}: give a positive number of seconds")
    credentials = load_credentials(args.credentials_file)
    plan = plan_from_args(args)
    announce_warnings(plan)  # main prints every RegistryConfigWarning (the plan's, then resolving's) once
    try:
        resolved = resolve_image(
            plan,
            args.image,
            credentials=credentials,
            all_instances=args.all_instances,
            platform=args.platform,
            timeout=args.timeout,
            ca_bundle=args.ca_bundle,
        )
    except ProbeError as exc:  # the registry cannot be asked: unreachable, TLS, rate-limited, not a registry
        print(f"registry-config resolve: error: {exc}", file=sys.stderr)
        return EXIT_DISCOVERY
    if args.json:
        print(json.dumps(resolved.to_dict(), indent=2))
    else:
        sys.stdout.write(format_resolved(resolved))
    return EXIT_OK
