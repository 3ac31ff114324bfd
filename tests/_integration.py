"""Finding the real programs integration tests start, or saying why they cannot run."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
from types import ModuleType
from typing import NoReturn

from registry_config.testing import conformance


def unavailable(reason: str) -> NoReturn:
    """The one way a test says it cannot run: skip with ``reason``, or fail under REGISTRY_CONFIG_REQUIRE_INTEGRATION=1.

    Every skip of the suite goes through here (or :func:`need_program` and
    :func:`need_module`), and here goes through the test kit's own
    :func:`registry_config.testing.conformance.unavailable`, the one place
    that reads the variable: CI turns every skip, the project's and the
    shipped conformance suite's alike, into a failure naming what was missing.
    """
    conformance.unavailable(reason)


def need_module(name: str, *, package: str) -> ModuleType:
    """Import module ``name``; without it skip (or fail under REQUIRE), naming the package to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"the Python module {name} is not installed (pip install {package})")


def need_program(name: str, *, package: str, candidates: tuple[str, ...] = ()) -> str:
    """The path of program ``name``; skip without it, or fail when integration is required (CI)."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or next(
            (p for p in (f"/usr/sbin/{candidate}", f"/usr/bin/{candidate}") if os.access(p, os.X_OK)), None
        )
        if found:
            return found
    unavailable(f"{name} is not installed (apt-get install -y {package})")


def child_pytest_env(**extra: str) -> dict[str, str]:
    """The environment for a pytest run in a subprocess: this one's, less the options meant for this run.

    ``PYTEST_ADDOPTS`` (CI deselects the container clients' tests with
    ``-m 'not clients'`` on some Pythons) names markers the child's project
    does not know, which its ``--strict-markers`` refuses.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    env.update(extra)
    return env


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now, on loopback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a program a test started, by its PID: SIGTERM, then SIGKILL if it has not exited in ``timeout`` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
