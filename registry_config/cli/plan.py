"""``registry-config plan``: what one staging task would get, for a person or a machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ..plan import StagingPlan
from .options import (
    add_backend_options,
    add_plan_options,
    add_registry_options,
    plan_from_args,
)

__all__ = ["add_parser", "format_plan", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plan",
        help="compute the builder flags and egress rules for a registry",
        description="Discover the registry's instances and print the builder flags and egress rules a staging "
        "task needs. Exit status: 0 ok, 2 invalid input, 3 discovery failed, 4 no instance left.",
    )
    add_registry_options(parser)
    add_backend_options(parser)
    add_plan_options(parser)
    parser.add_argument("--allow-empty", action="store_true", help="succeed with no instance (no egress rule)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    if args.json:
        print(plan.to_json(indent=2))
    else:
        format_plan(plan, sys.stdout)
    return 0


def format_plan(plan: StagingPlan, out: TextIO) -> None:
    """The plan as a person reads it: the flags on one line to paste, the rules as a small table."""
    spec = plan.spec
    state = "insecure" if spec.is_insecure else "secure"
    out.write(f"registry   {spec.url}  ({spec.security.value}, {state})\n")
    query = plan.discovery.query
    where = query.name + (f" in {query.datacenter}" if query.datacenter else "")
    stale = ", STALE" if plan.discovery.stale else ""
    out.write(
        f"instances  {len(plan.instances)} kept, {len(plan.rejected)} rejected"
        f"  (service {where}, via {plan.discovery.source}{stale})\n\n"
    )
    out.write("builder flags:\n")
    out.write(f"  {plan.builder_command_line}\n\n")
    out.write("egress rules:\n")
    rows = [("PROTOCOL", "DESTINATIONS", "PORTS")]
    for rule in plan.egress_rules:
        bbs = rule.to_bbs()
        if "ports" in bbs:
            ports = ",".join(str(port) for port in bbs["ports"])
        elif "port_range" in bbs:
            ports = f"{bbs['port_range']['start']}-{bbs['port_range']['end']}"
        else:
            ports = "-"
        rows.append((bbs["protocol"], ",".join(bbs["destinations"]), ports))
    if len(rows) == 1:
        out.write("  (none)\n")
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        for row in rows:
            out.write(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}\n")
    if plan.rejected:
        out.write("\nrejected:\n")
        width = max(len(r.instance.endpoint) for r in plan.rejected)
        for rejection in plan.rejected:
            out.write(f"  {rejection.instance.endpoint:<{width}}  {rejection.reason}\n")
    if plan.warnings:
        out.write("\nwarnings:\n")
        for warning in plan.warnings:
            out.write(f"  {warning}\n")
