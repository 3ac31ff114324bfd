"""``registry-config watch``: a new staging plan each time the registry's instances change.

For an operator at a terminal (one plan, then one each time Consul's answer
changes) and for a stager or a sidecar that reads JSON lines from a pipe. The
first discovery failure ends the command (exit 3), as ``plan`` does; later
failures are retried by the backend's watch while the last plan stays
printed. A snapshot that leaves no instance (or that the egress guard refuses
under ``--strict``) does not end the watch: it prints an error record (on
stdout with ``--json``, so that a reader knows the last plan no longer holds,
and on stderr) and waits for the next change.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

from ..backend_errors import backend_errors, backend_name
from ..discovery.backend import DiscoveryBackend
from ..discovery.model import Discovery, ServiceQuery
from ..discovery.static import StaticBackend
from ..errors import EgressPolicyError, NoInstancesError
from ..plan import StagingPlan, plan_from_discovery, query_for
from .options import (
    add_backend_options,
    add_plan_options,
    add_registry_options,
    announce_warnings,
    backend_from_args,
    close_backend,
    guard_from_args,
    spec_from_args,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="print a new plan each time the registry's instances change",
        description="Watch the registry's instances (Consul blocking queries with a consul:// --backend, "
        "polling otherwise) and print the staging plan each time it changes, until interrupted. "
        "Exit status: 0 when stopped (--count reached, SIGTERM), 130 on Ctrl-C, 2 invalid input, "
        "3 the first discovery failed.",
    )
    add_registry_options(parser)
    add_backend_options(parser)
    add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="print each plan as one line of JSON")
    parser.add_argument(
        "--count", type=_positive, metavar="N", help="stop after printing N plans (default: run until interrupted)"
    )
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def run(args: argparse.Namespace, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Print plans until ``stop`` is set, ``--count`` plans were printed, or SIGTERM arrives."""
    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else threading.Event()
    spec = spec_from_args(args)
    guard = guard_from_args(args)
    extra = tuple(args.insecure_registry)
    backend: DiscoveryBackend | None = backend_from_args(args)
    if backend is None:
        backend = StaticBackend([spec.address])
    query = query_for(spec, service=args.service, datacenter=args.datacenter)
    previous = _on_sigterm(stop)
    printed = 0
    last: Any = None
    try:
        for snapshot in _snapshots(backend, query, stop):
            try:
                plan = plan_from_discovery(
                    spec, snapshot, extra_insecure=extra, guard=guard, compact=not args.no_compact
                )
            except (NoInstancesError, EgressPolicyError) as exc:
                record: Any = ("error", str(exc))
                if record != last:
                    last = record
                    _print_error(exc, snapshot, out, as_json=args.json)
                continue
            record = ("plan", _comparable(plan))
            if record == last:
                continue  # the instances changed in a way the plan does not show (a tag, a node name)
            last = record
            announce_warnings(plan)
            _print_plan(plan, out, as_json=args.json, first=printed == 0)
            printed += 1
            if args.count is not None and printed >= args.count:
                stop.set()
                break
    finally:
        _restore_sigterm(previous)
        close_backend(backend)
    return 0


def _snapshots(backend: DiscoveryBackend, query: ServiceQuery, stop: threading.Event) -> Iterator[Discovery]:
    """The backend's watch, a plugin's bug in it (any error but ours) a DiscoveryError naming the backend."""
    name = backend_name(backend)
    with backend_errors(name, f"watching {query.name!r}"):
        snapshots = iter(backend.watch(query, stop=stop))
    while True:
        with backend_errors(name, f"watching {query.name!r}"):
            snapshot = next(snapshots, None)
        if snapshot is None:
            return
        yield snapshot


def _comparable(plan: StagingPlan) -> Any:
    """What a reader of the plan acts on; the Consul index and the source alone do not make a new plan."""
    view = plan.to_dict()
    view.pop("discovery", None)
    return json.dumps(view, sort_keys=True)


def _print_plan(plan: StagingPlan, out: TextIO, *, as_json: bool, first: bool) -> None:
    if as_json:
        out.write(plan.to_json() + "\n")
    else:
        if not first:
            out.write("\n")
        index = plan.discovery.index
        out.write(f"--- plan{f' (index {index})' if index is not None else ''}\n")
        out.write(plan.to_text())
    out.flush()


def _print_error(exc: Exception, snapshot: Discovery, out: TextIO, *, as_json: bool) -> None:
    print(f"registry-config watch: {exc}", file=sys.stderr, flush=True)
    if as_json:
        out.write(
            json.dumps(
                {"error": type(exc).__name__, "message": str(exc), "index": snapshot.index},
                sort_keys=True,
            )
            + "\n"
        )
        out.flush()


def _on_sigterm(stop: threading.Event) -> Any:
    """Make SIGTERM end the watch cleanly (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover (embedded interpreters without signals)
        return None


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
