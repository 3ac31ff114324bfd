"""``registry-config probe``: exit statuses 0, 5, 3 and 2, the short report and the JSON."""

from __future__ import annotations

import json

import pytest
from _integration import free_port
from _registry import RunningRegistry, ca_registry, http_registry, registry_ca, self_signed_registry

from registry_config.cli import main

__all__ = ["ca_registry", "http_registry", "registry_ca", "self_signed_registry"]  # fixtures used by pytest

pytestmark = pytest.mark.integration


def test_exit_0_when_it_answers_as_configured(
    http_registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", http_registry.url("http")]) == 0
    out = capsys.readouterr().out
    assert f"registry   http://localhost:{http_registry.port}  (configured http)" in out
    assert "answer     HTTP 200, registry/2.0" in out
    assert "verdict    as configured" in out


def test_exit_0_with_a_trusted_ca(ca_registry: RunningRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert ca_registry.ca_pem is not None
    assert main(["probe", ca_registry.url("https"), "--ca-bundle", str(ca_registry.ca_pem), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["observed"], data["matches"], data["status"]) == ("https-verified", True, 200)


def test_exit_5_when_it_answers_otherwise(
    self_signed_registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", self_signed_registry.url("https")]) == 5
    out = capsys.readouterr().out
    assert "verdict    MISMATCH" in out
    assert "observed   https-unverified" in out
    assert "skip_ssl_validation=True" in out
    assert main(["probe", self_signed_registry.url("https"), "--skip-ssl-validation"]) == 0


def test_exit_5_for_an_instance_that_answers_otherwise(
    ca_registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ca_registry.url("https")
    argv = ["probe", url, "--ca-bundle", str(ca_registry.ca_pem), "--instance", ca_registry.endpoint, "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["instances"][0]["matches"] is True
    plain = ["probe", ca_registry.url("http"), "--instance", ca_registry.endpoint]
    assert main(plain) == 5
    out = capsys.readouterr().out
    assert f"  {ca_registry.endpoint} (as localhost)  MISMATCH" in out


def test_exit_3_when_it_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["probe", f"https://127.0.0.1:{port}", "--timeout", "2", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["reachable"] is False
    assert "refused" in data["diagnosis"]


def test_exit_2_for_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "https://localhost:5000", "--ca-bundle", "/nonexistent/ca.pem"]) == 2
    assert "registry-config probe: error: CA bundle '/nonexistent/ca.pem' does not exist" in capsys.readouterr().err
    assert main(["probe", "docker_registry:8080"]) == 2
    assert main(["probe", "https://localhost:5000", "--timeout", "0"]) == 2
    assert "--timeout 0: give a positive number" in capsys.readouterr().err


def test_a_password_in_an_instance_or_the_url_is_never_printed() -> None:
    import subprocess
    import sys

    for argv in (
        ["probe", "http://127.0.0.1:9", "--instance", "admin:hunter2/x@10.0.0.1:5000", "--json"],
        ["probe", "https://admin:hunter2@registry.internal:5000"],
        ["probe", "https://registry.internal:5000?token=hunter2"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "registry_config", *argv], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, result.stderr
        assert "hunter2" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
