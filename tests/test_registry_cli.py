"""``registry-config backends``: the list an operator reads, and the JSON a script reads."""

from __future__ import annotations

import json
import sys

import pytest

from registry_config.cli import main


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
