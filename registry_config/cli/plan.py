"""``registry-config plan``: what one staging task would get, for a person or a machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import (
    add_backend_options,
    add_plan_options,
    add_registry_options,
    announce_warnings,
    plan_from_args,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="compute the builder flags and egress rules for a registry",
        description="Discover the registry's instances and print the builder flags and egress rules a staging "
        "task needs. A URL without a port means 80 (http) or 443 (https); the output says so. Warnings are printed "
        "on stderr, one line each. Exit status: 0 ok, 2 invalid input, 3 discovery failed, 4 no instance left, "
        "130 interrupted.",
    )
    add_registry_options(parser)
    add_backend_options(parser)
    add_plan_options(parser)
    parser.add_argument("--allow-empty", action="store_true", help="succeed with no instance (no egress rule)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    announce_warnings(plan)
    if args.json:
        print(plan.to_json(indent=2))
    else:
        sys.stdout.write(plan.to_text())
    return 0
