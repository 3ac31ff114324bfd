"""The ``registry-config`` command: one sub-command per module of this package.

Each sub-command module offers ``add_parser(subparsers)`` and
``run(args) -> int``; a new command is one more name in :data:`COMMANDS`.
Errors the library raises on purpose become one line on stderr and an exit
status, never a traceback; a new status is one more row in
:data:`EXIT_STATUSES` (the first row whose error class matches wins):

====  =========================================================
0     success
2     invalid input (a bad URL, entry, option or backend name, or a query
      the discovery service refuses, such as a bad Consul filter)
3     discovery failed (Consul or DNS unreachable, refused, garbled,
      or a backend plugin's own bug)
4     no instance left, or the egress guard refused one
5     the registry answers, but not as configured (``probe``)
6     the image (repository, tag, digest or platform) is not found (``resolve``)
7     the registry wants a login, or refused the one given (``resolve``)
8     the registry's instances disagree on the image (``resolve --all-instances``)
130   interrupted (Ctrl-C)
====  =========================================================

Each :class:`~registry_config.RegistryConfigWarning` the library issues
while a command runs is printed once, as one line on stderr
(``registry-config COMMAND: warning: ...``); other warnings keep Python's
own handling.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from .. import __version__
from ..errors import (
    DiscoveryError,
    DiscoveryQueryError,
    EgressPolicyError,
    ImageNotFoundError,
    InvalidInput,
    NoInstancesError,
    RegistryAuthError,
    RegistryConfigError,
    RegistryConfigWarning,
    ReplicaMismatchError,
    UnknownBackendError,
)

__all__ = [
    "COMMANDS",
    "EXIT_AUTH",
    "EXIT_DISCOVERY",
    "EXIT_IMAGE_NOT_FOUND",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_MISMATCH",
    "EXIT_NO_INSTANCES",
    "EXIT_OK",
    "EXIT_REPLICAS_DISAGREE",
    "EXIT_STATUSES",
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
EXIT_INTERRUPTED = 130

# Sub-command modules of this package, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("plan", "probe", "render", "resolve", "backends", "watch")

# Error class -> exit status; the first row that matches wins, so a subclass comes before its base.
EXIT_STATUSES: tuple[tuple[type[RegistryConfigError], int], ...] = (
    (ImageNotFoundError, EXIT_IMAGE_NOT_FOUND),
    (RegistryAuthError, EXIT_AUTH),
    (ReplicaMismatchError, EXIT_REPLICAS_DISAGREE),
    (NoInstancesError, EXIT_NO_INSTANCES),
    (EgressPolicyError, EXIT_NO_INSTANCES),
    (DiscoveryQueryError, EXIT_INVALID),  # a query the user must change: a filter refused, a field unsupported
    (DiscoveryError, EXIT_DISCOVERY),
    (InvalidInput, EXIT_INVALID),
    (UnknownBackendError, EXIT_INVALID),
)


def exit_status(error: RegistryConfigError) -> int:
    """The exit status for an error the library raised on purpose (invalid input when no row matches)."""
    for kind, status in EXIT_STATUSES:
        if isinstance(error, kind):
            return status
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
        with warnings_as_lines(f"registry-config {args.command}", sys.stderr):
            status: int = args.run(args)
    except RegistryConfigError as exc:
        print(f"registry-config {args.command}: error: {exc}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return status


@contextmanager
def warnings_as_lines(prefix: str, stream: TextIO) -> Iterator[None]:
    """Print each distinct :class:`RegistryConfigWarning` as one line ``PREFIX: warning: TEXT`` on ``stream``.

    As it is issued (a watch's warnings appear while it runs), once per text (a
    watch makes the same plan many times); other warnings are left to Python.
    """
    shown: set[str] = set()
    with warnings.catch_warnings():
        previous = warnings.showwarning
        warnings.simplefilter("always", RegistryConfigWarning)

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if not issubclass(category, RegistryConfigWarning):
                previous(message, category, filename, lineno, file, line)
                return
            text = " ".join(str(message).split())
            if text not in shown:
                shown.add(text)
                print(f"{prefix}: warning: {text}", file=stream, flush=True)

        warnings.showwarning = show
        yield


def console_main() -> None:
    """Entry point of the console script."""
    sys.exit(main())
