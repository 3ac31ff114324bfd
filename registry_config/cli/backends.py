"""``registry-config backends``: which discovery backends this installation knows, and which can load.

An operator whose ``--backend consul://...`` fails with "needs the consul
extra" runs this to see every name at once: built-ins, registered ones and
third-party plugins, where each comes from, and the command that installs
what is missing. A built-in is checked without importing its extra; a plugin
(an entry point, or a registered ``"module:attr"``) is loaded, since only
loading it shows that it is broken: such a one is listed as ``broken`` with
the reason (redacted), never as ``ok``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from ..discovery.registry import BackendInfo, available_backends, backend_problem

__all__ = ["add_parser", "format_backends", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backends",
        help="list the discovery backends and whether they can be used",
        description="List every discovery backend name a --backend URL may start with (NAME:...), where it comes "
        "from (built-in, registered, entry point) and whether what it needs is installed.",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(run=run)


def _problem(info: BackendInfo) -> str | None:
    if info.origin == "built-in":
        return None  # its extra is checked without importing it: see _status
    return backend_problem(info.name)


def _status(info: BackendInfo, problem: str | None) -> str:
    if not info.installed:
        return f"missing extra [{info.extra}]"
    return "ok" if problem is None else "broken"


def _row(info: BackendInfo, problem: str | None) -> dict[str, Any]:
    return {
        "name": info.name,
        "target": info.target,
        "origin": info.origin,
        "distribution": info.distribution,
        "extra": info.extra,
        "installed": info.installed,
        "install_hint": info.install_hint,
        "status": "missing-extra" if not info.installed else ("ok" if problem is None else "broken"),
        "problem": problem,
    }


def format_backends(backends: list[BackendInfo], out: TextIO, problems: dict[str, str | None] | None = None) -> None:
    """A table a person reads: name, status, origin, target; then why each broken one is, and what to install."""
    problems = problems or {}
    headers = ("NAME", "STATUS", "ORIGIN", "TARGET")
    rows = [
        (
            info.name,
            _status(info, problems.get(info.name)),
            info.origin if info.distribution is None else f"{info.origin} ({info.distribution})",
            info.target,
        )
        for info in backends
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    for row in [headers, *rows]:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*padded, row[-1]]), file=out)
    for info in backends:
        problem = problems.get(info.name)
        if problem is not None and info.installed:
            print(f"\nbackend {info.name!r} is broken: {problem}", file=out)
    hints = sorted({info.install_hint for info in backends if info.install_hint})
    for hint in hints:
        print(f"\nto install what is missing: {hint}", file=out)


def run(args: argparse.Namespace) -> int:
    backends = list(available_backends().values())
    problems = {info.name: _problem(info) for info in backends}
    if args.json:
        print(json.dumps([_row(info, problems[info.name]) for info in backends], indent=2))
    else:
        format_backends(backends, sys.stdout, problems)
    return 0
