"""``registry-config resolve``: the pinned reference, JSON, the credentials file, and every documented exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _integration import free_port
from _registry_auth import (
    PASSWORD,
    USER,
    Deployed,
    htpasswd_registry,
    replica_pair,
)

from registry_config.cli import main
from registry_config.credentials import CREDENTIALS_FILE_VARIABLE

__all__ = ["htpasswd_registry", "replica_pair"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration

LOOPBACK = ["--allow-network", "127.0.0.0/8"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["resolve", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def login_file(tmp_path: Path) -> Path:
    path = tmp_path / "login"
    path.write_text(f"{USER}:{PASSWORD}\n")
    return path


def test_resolve_prints_the_pinned_reference(
    capsys: pytest.CaptureFixture[str], htpasswd_registry: Deployed, login_file: Path
) -> None:
    pushed = htpasswd_registry.images["team/app:1.0"]
    status, out, err = _run(
        capsys, htpasswd_registry.url, "team/app:1.0", *LOOPBACK, "--credentials-file", str(login_file)
    )
    assert (status, err) == (0, "")
    address = htpasswd_registry.url.removeprefix("http://")
    assert out.splitlines()[0] == f"{address}/team/app@{pushed.digest}"
    assert f"digest      {pushed.digest}" in out
    assert PASSWORD not in out


def test_json_and_platform(capsys: pytest.CaptureFixture[str], htpasswd_registry: Deployed, login_file: Path) -> None:
    pushed = htpasswd_registry.images["team/app:1.0"]
    platform, digest = pushed.children[1]
    status, out, _ = _run(
        capsys,
        htpasswd_registry.url,
        "team/app:1.0",
        *LOOPBACK,
        "--credentials-file",
        str(login_file),
        "--platform",
        platform,
        "--json",
    )
    assert status == 0
    document = json.loads(out)
    assert document["digest"] == digest
    assert document["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert document["pinned"].endswith(f"/team/app@{digest}")


def test_the_credentials_file_can_come_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    htpasswd_registry: Deployed,
    login_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CREDENTIALS_FILE_VARIABLE, str(login_file))
    status, _, err = _run(capsys, htpasswd_registry.url, "team/app:1.0", *LOOPBACK)
    assert (status, err) == (0, "")


def test_exit_7_without_or_with_a_refused_login(
    capsys: pytest.CaptureFixture[str], htpasswd_registry: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CREDENTIALS_FILE_VARIABLE, raising=False)
    status, out, err = _run(capsys, htpasswd_registry.url, "team/app:1.0", *LOOPBACK)
    assert (status, out) == (7, "")
    assert "--credentials-file" in err
    wrong = tmp_path / "wrong"
    wrong.write_text(f"{USER}:not-{PASSWORD}\n")
    status, _, err = _run(capsys, htpasswd_registry.url, "team/app:1.0", *LOOPBACK, "--credentials-file", str(wrong))
    assert status == 7
    assert "refused the credentials of user 'alice'" in err
    assert f"not-{PASSWORD}" not in err


def test_exit_6_for_a_missing_image(
    capsys: pytest.CaptureFixture[str], htpasswd_registry: Deployed, login_file: Path
) -> None:
    for image in ("team/app:9.9", "team/absent:1.0"):
        status, _, err = _run(capsys, htpasswd_registry.url, image, *LOOPBACK, "--credentials-file", str(login_file))
        assert status == 6
        assert err.startswith("registry-config resolve: error: ")


def test_exit_8_when_replicas_disagree(
    capsys: pytest.CaptureFixture[str], replica_pair: tuple[Deployed, Deployed]
) -> None:
    first, second = replica_pair
    instances = ["--instance", f"127.0.0.1:{first.registry.port}", "--instance", f"127.0.0.1:{second.registry.port}"]
    status, _, err = _run(capsys, first.url, "team/app:2.0", *LOOPBACK, *instances, "--all-instances")
    assert status == 8
    assert "disagree" in err
    status, out, _ = _run(capsys, first.url, "team/app:1.0", *LOOPBACK, *instances, "--all-instances")
    assert status == 0
    assert "agreed by" in out


def test_exit_3_when_the_registry_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, f"http://127.0.0.1:{free_port()}", "team/app:1.0", *LOOPBACK, "--timeout", "5")
    assert status == 3
    assert "refused" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["http://127.0.0.1:5000", "Team/App"], "must be lowercase"),
        (["http://127.0.0.1:5000", "other.example/app:1"], "names the registry 'other.example'"),
        (["http://127.0.0.1:5000", "app:1", "--platform", "amd64"], "OS/ARCHITECTURE"),
        (["http://127.0.0.1:5000", "app:1", "--timeout", "0"], "--timeout 0"),
        (["http://127.0.0.1:5000", "app:1", "--credentials-file", "/nonexistent/login"], "cannot read it"),
        (["http://127.0.0.1:5000", "app:1", "--ca-bundle", "/nonexistent/ca.pem"], "does not exist"),
        (["registry:5000", "app:1"], "registry:5000"),
    ],
)
def test_exit_2_for_invalid_input(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    status, out, err = _run(capsys, *argv, *LOOPBACK)
    assert (status, out) == (2, "")
    assert words in err
    assert "Traceback" not in err


def test_the_console_script_runs_it(htpasswd_registry: Deployed, login_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry_config", "resolve", htpasswd_registry.url, "team/app:1.0", *LOOPBACK],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", CREDENTIALS_FILE_VARIABLE: str(login_file)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(htpasswd_registry.images["team/app:1.0"].digest)
