"""A third-party backend installed for real: found through its entry point, lazily, and passing the suite.

The example package (examples/custom_backend) is installed with pip into a
temporary target directory (no build isolation and no index: it builds with
the hatchling of this environment, offline), never into the shared
environment; the directory is put on ``sys.path`` only where a test needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _integration import child_pytest_env, need_module, unavailable

from registry_config.discovery.model import ServiceQuery
from registry_config.discovery.registry import BackendRegistry
from registry_config.errors import DiscoveryUnavailable, InvalidInput

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_backend"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _has_pip():
        unavailable("pip is not available in this environment (python -m ensurepip)")
    need_module("hatchling", package="hatchling")  # builds the example offline, without build isolation
    target = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("src") / "custom_backend"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (target / "registry_config_inventory-1.0.0.dist-info" / "entry_points.txt").is_file()
    return target


def _has_pip() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


def test_found_lazily_through_its_entry_point(installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.delitem(sys.modules, "registry_config_inventory", raising=False)
    registry = BackendRegistry()
    info = registry.available()["inventory"]
    assert (info.origin, info.target, info.distribution) == (
        "entry point",
        "registry_config_inventory:InventoryBackend.from_url",
        "registry-config-inventory",
    )
    assert "registry_config_inventory" not in sys.modules  # listed without being imported
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps([{"address": "10.244.2.6", "port": 8080}, {"address": "10.244.2.7"}]))
    backend = registry.from_url(f"inventory:{inventory}")
    assert type(backend).__module__ == "registry_config_inventory"
    assert str(Path(sys.modules["registry_config_inventory"].__file__ or "").parent.parent) == str(installed)
    found = backend.discover(ServiceQuery("docker_registry", default_port=5000))
    assert found.endpoints == ("10.244.2.6:8080", "10.244.2.7:5000")
    inventory.unlink()
    with pytest.raises(DiscoveryUnavailable, match="cannot be read"):
        backend.discover(ServiceQuery("docker_registry", default_port=5000))
    with pytest.raises(InvalidInput, match="unknown option 'bogus'"):
        registry.from_url(f"inventory:{inventory}?bogus=1")
    sys.modules.pop("registry_config_inventory", None)


def test_not_installed_means_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_config.errors import UnknownBackendError

    with pytest.raises(UnknownBackendError, match="no discovery backend is named 'inventory'"):
        BackendRegistry().from_url("inventory:/nowhere.json")


def test_it_passes_the_conformance_suite(installed: Path) -> None:
    env = child_pytest_env(PYTHONPATH=str(installed), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pyproject.toml", "--rootdir", "."],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "skipped" not in summary  # every hook is defined: all the suite ran
    assert int(summary.split()[0]) >= 16


def test_the_registry_config_command_lists_it(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-m", "registry_config", "backends", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert listed["inventory"]["origin"] == "entry point"
    assert listed["inventory"]["distribution"] == "registry-config-inventory"
