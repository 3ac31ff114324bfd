"""``registry-config backends``: the list an operator reads, and the JSON a script reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_config.cli import main
from registry_config.discovery import registry


def test_backends_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ORIGIN", "TARGET"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows["static"] == ["static", "ok", "built-in", "registry_config.discovery.registry:static_from_url"]
    assert rows["consul"][-1] == "registry_config.discovery.consul:ConsulBackend.from_url"
    assert rows["dns"][-1] == "registry_config.discovery.dns:DnsBackend.from_url"


def test_backends_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["consul"] == {
        "name": "consul",
        "target": "registry_config.discovery.consul:ConsulBackend.from_url",
        "origin": "built-in",
        "distribution": None,
        "extra": "consul",
        "installed": True,
        "install_hint": None,
        "status": "ok",
        "problem": None,
    }


def test_a_missing_extra_shows_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for loaded in [m for m in sys.modules if m == "consul" or m.startswith("consul.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, "consul", None)
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    consul = next(line for line in out.splitlines() if line.startswith("consul "))
    assert "missing extra [consul]" in consul
    assert "to install what is missing: pip install 'registry-config[consul]'" in out


def test_the_listing_imports_no_extra(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    code = (
        "import sys; from registry_config.cli import main; main(['backends']); "
        "assert 'consul' not in sys.modules, 'py-consul imported'; "
        "assert 'dns' not in sys.modules, 'dnspython imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def _plugin_site(tmp_path: Path, module_source: str, target: str) -> Path:
    """A real installed distribution (a dist-info with an entry point), on a path of its own."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[registry_config.backends]\nbroken = {target}\n")
    (site / "broken_plugin.py").write_text(textwrap.dedent(module_source))
    return site


def _backends(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "registry_config", "backends", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_plugin_that_cannot_be_imported_is_listed_as_broken_with_the_reason_redacted(tmp_path: Path) -> None:
    site = _plugin_site(
        tmp_path,
        """
        raise ImportError("cannot reach https://deploy:hunter2hunter2@pypi.internal/simple")
        """,
        "broken_plugin:Backend.from_url",
    )
    listed = _backends(site)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("broken "))
    assert row.split()[1] == "broken"
    assert "backend 'broken' is broken:" in listed.stdout
    assert "cannot reach https://***@pypi.internal/simple" in listed.stdout
    assert "hunter2" not in listed.stdout + listed.stderr

    as_json = _backends(site, "--json")
    assert as_json.returncode == 0, as_json.stderr
    broken = {row["name"]: row for row in json.loads(as_json.stdout)}["broken"]
    assert broken["status"] == "broken"
    assert broken["origin"] == "entry point"
    assert "cannot be imported" in broken["problem"]
    assert "hunter2" not in as_json.stdout + as_json.stderr


def test_a_plugin_whose_target_is_missing_is_broken(tmp_path: Path) -> None:
    site = _plugin_site(tmp_path, "x = 1\n", "broken_plugin:NoSuchBackend.from_url")
    listed = json.loads(_backends(site, "--json").stdout)
    broken = {row["name"]: row for row in listed}["broken"]
    assert broken["status"] == "broken"
    assert "AttributeError" in broken["problem"]


def test_a_plugin_that_loads_is_ok(tmp_path: Path) -> None:
    site = _plugin_site(
        tmp_path,
        """
        def from_url(url):
            raise ValueError(url)
        """,
        "broken_plugin:from_url",
    )
    broken = {row["name"]: row for row in json.loads(_backends(site, "--json").stdout)}["broken"]
    assert (broken["status"], broken["problem"]) == ("ok", None)


@pytest.fixture
def registered_missing() -> Iterator[None]:
    registry.register_backend("ghost", "registry_config_no_such_module:Backend.from_url")
    try:
        yield
    finally:
        registry._default.unregister("ghost")


@pytest.mark.usefixtures("registered_missing")
def test_a_registered_target_that_does_not_import_is_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("ghost "))
    assert row.split()[1:3] == ["broken", "registered"]
    assert (
        "backend 'ghost' is broken: backend 'ghost' (registry_config_no_such_module:Backend.from_url) cannot be" in out
    )
