"""``registry-config render``: printed and written files, parsed back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from registry_config.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

URL = "http://10.244.2.6:8080"
INSTANCES = ["--instance", "10.244.2.7", "--instance", "10.244.2.6"]


def test_docker_merges_into_an_existing_daemon_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "daemon.json"
    existing.write_text('{"log-driver": "journald", "insecure-registries": ["old.example:5000"]}')
    assert main(["render", URL, "--for", "docker", *INSTANCES, "--daemon-json", str(existing)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "log-driver": "journald",
        "insecure-registries": ["old.example:5000", "10.244.2.6:8080", "10.244.2.7:8080"],
    }
    assert json.loads(existing.read_text())["insecure-registries"] == ["old.example:5000"], "only read"


def test_containerd_written_under_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", URL, "--for", "containerd", *INSTANCES, "--output-dir", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("hosts.toml"))
    assert written == ["10.244.2.6:8080/hosts.toml", "10.244.2.7:8080/hosts.toml"]
    data = tomllib.loads((tmp_path / "10.244.2.7:8080" / "hosts.toml").read_text())
    assert data["server"] == "http://10.244.2.7:8080"
    assert f"wrote {tmp_path / '10.244.2.6:8080' / 'hosts.toml'}" in capsys.readouterr().out


def test_containerd_self_signed_with_a_ca(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["render", "https://10.244.2.6:8443", "--skip-ssl-validation", "--for", "containerd", "--ca", "/ca.pem"]
    assert main([*argv, "--instance", "10.244.2.6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ==> /etc/containerd/certs.d/10.244.2.6:8443/hosts.toml\n")
    host = tomllib.loads(out)["host"]["https://10.244.2.6:8443"]
    assert host == {"capabilities": ["pull", "resolve"], "skip_verify": True, "ca": "/ca.pem"}


def test_podman_registries_conf(tmp_path: Path) -> None:
    assert main(["render", URL, "--for", "podman", *INSTANCES, "--output-dir", str(tmp_path)]) == 0
    data = tomllib.loads((tmp_path / "registries.conf").read_text())
    assert data == {
        "registry": [
            {"location": "10.244.2.6:8080", "insecure": True},
            {"location": "10.244.2.7:8080", "insecure": True},
        ]
    }


def test_a_static_backend_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", URL, "--for", "docker", "--backend", "static:10.244.2.9:8080"]) == 0
    assert json.loads(capsys.readouterr().out)["insecure-registries"] == ["10.244.2.9:8080"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--for", "docker", "--daemon-json", "/nonexistent/daemon.json"], "cannot read it"),
        (["--for", "podman", "--daemon-json", "/etc/hostname"], "--daemon-json applies to --for docker only"),
        (["--for", "docker", "--ca", "/ca.pem"], "--ca applies to --for containerd only"),
    ],
)
def test_invalid_options_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", URL, *INSTANCES, *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_existing_daemon_json_that_is_not_an_object_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "daemon.json"
    existing.write_text("[]")
    assert main(["render", URL, "--for", "docker", *INSTANCES, "--daemon-json", str(existing)]) == 2
    assert "holds a JSON list, not an object" in capsys.readouterr().err
