"""The ``registry-config`` command: one sub-command per module of this package.

Each sub-command module offers ``add_parser(subparsers)`` and
``run(args) -> int``. Errors the library raises on purpose become one line on
stderr and an exit status, never a traceback:

====  =========================================================
0     success
2     invalid input (a bad URL, entry, option or backend name)
3     discovery failed (Consul or DNS unreachable, refused, garbled)
4     no instance left, or the egress guard refused one
5     the registry answers, but not as configured (``probe``)
6     the image (repository, tag, digest or platform) is not found (``resolve``)
7     the registry wants a login, or refused the one given (``resolve``)
8     the registry's instances disagree on the image (``resolve --all-instances``)
====  =========================================================
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import (
    DiscoveryError,
    EgressPolicyError,
    ImageNotFoundError,
    InvalidInput,
    NoInstancesError,
    RegistryAuthError,
    RegistryConfigError,
    ReplicaMismatchError,
    UnknownBackendError,
)

__all__ = [
    "COMMANDS",
    "EXIT_AUTH",
    "EXIT_DISCOVERY",
    "EXIT_IMAGE_NOT_FOUND",
    "EXIT_INVALID",
    "EXIT_MISMATCH",
    "EXIT_NO_INSTANCES",
    "EXIT_OK",
    "EXIT_REPLICAS_DISAGREE",
    "console_main",
    "exit_status",
    "main",
]

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_DISCOVERY = 3
EXIT_NO_INSTANCES = 4
EXIT_MISMATCH = 5
EXIT_IMAGE_NOT_FOUND = 6
EXIT_AUTH = 7
EXIT_REPLICAS_DISAGREE = 8

# Sub-command modules of this package, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("plan", "probe", "render", "resolve", "backends", "watch")


def exit_status(error: RegistryConfigError) -> int:
    """The exit status for an error the library raised on purpose."""
    if isinstance(error, ImageNotFoundError):
        return EXIT_IMAGE_NOT_FOUND
    if isinstance(error, RegistryAuthError):
        return EXIT_AUTH
    if isinstance(error, ReplicaMismatchError):
        return EXIT_REPLICAS_DISAGREE
    if isinstance(error, (NoInstancesError, EgressPolicyError)):
        return EXIT_NO_INSTANCES
    if isinstance(error, DiscoveryError):
        return EXIT_DISCOVERY
    if isinstance(error, (InvalidInput, UnknownBackendError)):
        return EXIT_INVALID
    return EXIT_INVALID


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-config",
        description="Builder flags and egress rules for staging from a private Docker registry.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except RegistryConfigError as exc:
        print(f"registry-config {args.command}: error: {exc}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        return 130
    return status


def console_main() -> None:
    """Entry point of the console script."""
    sys.exit(main())
