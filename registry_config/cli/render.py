"""``registry-config render``: the registry's insecurity policy as Docker, containerd or Podman configuration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..render import (
    CONTAINERD_CERTS_D,
    render_containerd_hosts,
    render_daemon_json,
    render_registries_conf,
)
from .options import (
    add_backend_options,
    add_plan_options,
    add_registry_options,
    plan_from_args,
)

__all__ = ["add_parser", "run"]

RUNTIMES = ("docker", "containerd", "podman")


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="write the registry's insecure-registries as daemon.json, hosts.toml or registries.conf",
        description="Discover the registry's instances, as 'plan' does, and render the configuration a "
        "container runtime needs to pull from them: Docker's daemon.json, containerd's hosts.toml (one per "
        "registry, in its host-namespace directory) or containers' registries.conf. Printed, or written under "
        "--output-dir. Exit status: 0 ok, 2 invalid input, 3 discovery failed, 4 no instance left.",
    )
    add_registry_options(parser)
    parser.add_argument("--for", dest="runtime", choices=RUNTIMES, required=True, help="the container runtime")
    add_backend_options(parser)
    add_plan_options(parser, rules=False)
    parser.add_argument(
        "--daemon-json",
        metavar="FILE",
        help="docker: merge into this existing daemon.json (its other keys are kept); the file is only read",
    )
    parser.add_argument("--ca", metavar="FILE", help="containerd: the CA file path to write into each https host")
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the files under DIR (docker: DIR/daemon.json; containerd: DIR/<host:port>/hosts.toml, DIR "
        f"standing for {CONTAINERD_CERTS_D}; podman: DIR/registries.conf) instead of printing them",
    )
    parser.set_defaults(run=run)


def _read_existing(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"--daemon-json {path!r}: cannot read it ({exc.strerror or exc})") from None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {str(path)!r} ({exc.strerror or exc}); check --output-dir") from None
    print(f"wrote {path}")


def run(args: argparse.Namespace) -> int:
    if args.daemon_json and args.runtime != "docker":
        raise InvalidInput("--daemon-json applies to --for docker only")
    if args.ca and args.runtime != "containerd":
        raise InvalidInput("--ca applies to --for containerd only")
    existing = _read_existing(args.daemon_json) if args.daemon_json else None
    plan = plan_from_args(args)
    out = Path(args.output_dir) if args.output_dir else None
    for warning in plan.warnings:
        print(f"registry-config render: warning: {warning}", file=sys.stderr)
    if args.runtime == "docker":
        text = render_daemon_json(plan, existing=existing)
        if out is None:
            sys.stdout.write(text)
        else:
            _write(out / "daemon.json", text)
    elif args.runtime == "containerd":
        files = render_containerd_hosts(plan, ca=args.ca)
        for index, hosts_file in enumerate(files):
            if os.sep in hosts_file.directory or hosts_file.directory in ("", ".", ".."):
                raise InvalidInput(f"refusing the directory name {hosts_file.directory!r}")  # pragma: no cover
            if out is None:
                sys.stdout.write(("\n" if index else "") + f"# ==> {hosts_file.path()}\n{hosts_file.content}")
            else:
                _write(out / hosts_file.directory / "hosts.toml", hosts_file.content)
    else:
        text = render_registries_conf(plan)
        if out is None:
            sys.stdout.write(text)
        else:
            _write(out / "registries.conf", text)
    return 0
