"""``registry-config render``: the plan as Docker, containerd or containers configuration, printed or as a tree.

With ``--output-dir DIR`` every file goes into an ``/etc``-shaped tree
(``DIR/etc/docker/daemon.json``, ``DIR/etc/containerd/certs.d/...``,
``DIR/etc/containers/...``: :mod:`registry_config.render.tree`), each written
atomically, so an operator's file is never left half-written, even on a full
disk. Everything is rendered before the first file is written, so a file that
cannot be rendered changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from ..auth import write_auth_json
from ..credentials import load_credentials
from ..errors import InvalidInput, RegistryConfigError, RegistryConfigWarning
from ..files import write_atomically
from ..redact import quote
from ..render import (
    CONTAINERD_CERTS_D,
    RUNTIMES,
    render_containerd_hosts,
    render_daemon_json,
    render_registries_conf,
    render_tree,
)
from .options import (
    add_backend_options,
    add_plan_options,
    add_registry_options,
    announce_warnings,
    plan_from_args,
)
from .resolve import add_credentials_option

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="write the configuration container runtimes need: daemon.json, hosts.toml, registries.conf, CAs",
        description="Discover the registry's instances, as 'plan' does, and render the configuration each "
        "container runtime needs to pull from them: Docker's daemon.json, containerd's hosts.toml (one per "
        "registry name) and the containers library's registries.conf, with the CA for a verified registry. "
        "Printed (one runtime), or written as an /etc-shaped tree under --output-dir. "
        "Exit status: 0 ok, 2 invalid input or a file that cannot be written, 3 discovery failed, "
        "4 no instance left.",
    )
    add_registry_options(parser)
    parser.add_argument(
        "--for",
        dest="runtimes",
        action="append",
        choices=RUNTIMES,
        help="the container runtime (repeat for several; default with --output-dir: all); podman stands for every "
        "containers-library client (Podman, Buildah, Skopeo, CRI-O)",
    )
    add_backend_options(parser)
    add_plan_options(parser, rules=False)
    parser.add_argument(
        "--daemon-json",
        metavar="FILE",
        help="docker: merge into this existing daemon.json (its other keys are kept); the file is only read",
    )
    parser.add_argument(
        "--ca",
        metavar="FILE",
        help="the registry's CA certificate (PEM): installed in each runtime's certs.d tree under --output-dir, "
        "and named by its absolute path in containerd's hosts.toml",
    )
    parser.add_argument(
        "--mirror-of",
        metavar="UPSTREAM",
        action="append",
        default=[],
        help="configure the registry as a pull-through mirror of UPSTREAM (docker.io); repeatable",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write an /etc-shaped tree under DIR (DIR/etc/docker/daemon.json, DIR/etc/containerd/certs.d/..., "
        "DIR/etc/containers/...) instead of printing",
    )
    parser.add_argument(
        "--auth-json",
        metavar="FILE",
        help="merge the registry login (from --credentials-file) into this Docker config.json or containers "
        "auth.json, under every name a runtime looks up; written atomically, mode 0600, other entries kept",
    )
    add_credentials_option(parser)
    parser.add_argument(
        "--root",
        metavar="DIR",
        default="/",
        help="where the tree will be installed (default /): absolute paths inside the files point under it",
    )
    parser.set_defaults(run=run)


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{option} {quote(path)}: cannot read it ({exc.strerror or exc})") from None


def _runtimes(args: argparse.Namespace) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(args.runtimes or ()))
    if args.output_dir is None:
        if len(chosen) != 1:
            raise InvalidInput("give exactly one --for RUNTIME to print, or --output-dir DIR to write a tree")
    elif not chosen:
        chosen = RUNTIMES
    if args.daemon_json and "docker" not in chosen:
        raise InvalidInput("--daemon-json applies to --for docker only")
    return chosen


def _write_tree(out: Path, files: list[tuple[str, bytes]]) -> None:
    """Write each file atomically; on a failure say which were written and that the failed one is intact."""
    written: list[str] = []
    for relative, content in files:
        path = out / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, content)
        except (OSError, UnicodeError) as exc:
            done = f"; already written: {', '.join(written)}" if written else "; nothing was written"
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise RegistryConfigError(
                f"cannot write {quote(str(path))} ({reason}): that file is unchanged{done}; "
                "free some space or check the permissions of --output-dir, then run again"
            ) from None
        written.append(str(path))
        print(f"wrote {path}")


def run(args: argparse.Namespace) -> int:
    runtimes = _runtimes(args)
    existing = _read(args.daemon_json, "--daemon-json") if args.daemon_json else None
    ca_pem = _read(args.ca, "--ca") if args.ca and args.output_dir else None
    credentials = load_credentials(args.credentials_file) if args.auth_json else None
    if args.auth_json and credentials is None:
        raise InvalidInput("--auth-json needs --credentials-file FILE (or REGISTRY_CONFIG_CREDENTIALS_FILE)")
    plan = plan_from_args(args)
    announce_warnings(plan)  # main prints every RegistryConfigWarning (the plan's, then rendering's) once
    if args.output_dir is not None:
        tree = render_tree(
            plan,
            runtimes=runtimes,
            ca_pem=ca_pem,
            root=args.root,
            existing_daemon_json=existing,
            mirror_of=args.mirror_of,
        )
        output = None
    else:
        output = _printed(plan, runtimes[0], args, existing)
    if output is not None:
        sys.stdout.write(output)
    else:
        _write_tree(Path(args.output_dir), [(file.path, file.content) for file in tree])
    if args.auth_json and credentials is not None:
        written = write_auth_json(args.auth_json, plan, credentials)
        print(f"wrote {written} (the login of {credentials.username!r})", file=sys.stderr)
    return 0


def _printed(plan: Any, runtime: str, args: argparse.Namespace, existing: bytes | None) -> str:
    if args.root != "/":
        warnings.warn(
            "--root has no effect without --output-dir: printed paths are the ones given",
            RegistryConfigWarning,
            stacklevel=2,
        )
    if args.ca and runtime != "containerd":
        warnings.warn(
            f"--ca is not printed for {runtime}: its CA goes in a certs.d directory; use --output-dir to write it",
            RegistryConfigWarning,
            stacklevel=2,
        )
    if runtime == "docker":
        return render_daemon_json(plan, existing=existing, mirror_of=args.mirror_of)
    if runtime == "containerd":
        ca = os.path.abspath(args.ca) if args.ca else None
        files = render_containerd_hosts(plan, ca=ca, mirror_of=args.mirror_of)
        return "".join(
            ("\n" if index else "") + f"# ==> {hosts_file.path(CONTAINERD_CERTS_D)}\n{hosts_file.content}"
            for index, hosts_file in enumerate(files)
        )
    return render_registries_conf(plan, mirror_of=args.mirror_of)
