"""The golden files in docs/rendered/ are what the renderers produce now, and their readers accept them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

RENDERED = Path(__file__).resolve().parent.parent / "docs" / "rendered"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rendered_generate", RENDERED / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN: dict[str, str] = _generator().golden()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_file_is_current(name: str) -> None:
    path = RENDERED / name
    assert path.read_text(encoding="utf-8") == GOLDEN[name], (
        f"{path} is out of date: run python docs/rendered/generate.py and review the diff"
    )


def test_golden_files_parse_and_say_what_the_seed_needs() -> None:
    daemon = json.loads((RENDERED / "daemon.json").read_text())
    assert daemon["log-driver"] == "journald"
    assert daemon["insecure-registries"][0] == "legacy-registry.example:5000"
    assert "10.244.2.6:8443" in daemon["insecure-registries"]
    hosts = tomllib.loads((RENDERED / "hosts.toml").read_text())
    assert hosts["host"][hosts["server"]]["skip_verify"] is True
    directories = (RENDERED / "containerd-directories.txt").read_text().splitlines()
    assert directories[0] == "/etc/containerd/certs.d/docker_registry.service.dc1.consul:8443/hosts.toml"
    conf = tomllib.loads((RENDERED / "registries.conf").read_text())
    # The Consul name has an underscore: Docker and Podman refuse it, so it is left out, with a warning.
    assert {entry["location"] for entry in conf["registry"]} == {"10.244.2.6:8443", "10.244.2.7:8443"}
    assert "docker_registry" not in json.dumps(daemon["insecure-registries"])
    said = (RENDERED / "warnings.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in said] == ["daemon.json", "registries.conf"]
    tree = (RENDERED / "tree.txt").read_text().splitlines()
    assert tree[0] == "etc/docker/daemon.json"
    assert tree[-1] == "etc/containers/registries.conf.d/registry-config.conf"
