"""`registry-config plan`: readable by default, JSON on request, exit statuses, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from registry_config.cli import main

SEED = "http://docker_registry.service.dc1.consul:8080"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_readable_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "plan", SEED, "--instance", "10.244.2.7", "--instance", "10.244.2.6")
    assert status == 0, err
    assert (
        "-dockerRegistryURL http://docker_registry.service.dc1.consul:8080 -insecureDockerRegistries "
        "10.244.2.6:8080,10.244.2.7:8080,docker_registry.service.dc1.consul:8080" in out
    )
    assert "PROTOCOL" in out
    assert "tcp" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", SEED, "--instance", "10.0.0.1", "--instance", "169.254.169.254", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["instances"] == ["10.0.0.1:8080"]
    assert data["rejected"][0]["instance"] == "169.254.169.254:8080"


def test_rejected_instances_are_listed_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", SEED, "--instance", "10.0.0.1", "--instance", "169.254.169.254")
    assert status == 0
    assert "rejected:" in out
    assert "169.254.169.254:8080" in out.split("rejected:")[1]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["plan", "docker_registry:8080", "--instance", "10.0.0.1"], 2, "has no scheme"),
        (["plan", "http://u:hunter2@r:80", "--instance", "10.0.0.1"], 2, "user-info"),
        (["plan", SEED, "--instance", "10.0.0.1,10.0.0.2"], 2, "static entry #0"),
        (["plan", SEED, "--instance", "169.254.169.254"], 4, "egress guard refused all"),
        (["plan", SEED, "--instance", "10.0.0.1", "--instance", "8.8.8.8", "--strict"], 4, "8.8.8.8"),
        (["plan", SEED, "--instance", "10.0.0.1", "--allow-network", "nonsense"], 2, "nonsense"),
        (["plan", SEED, "--instance", "10.0.0.1", "--insecure-registry", "a:1,b:2"], 2, "extra insecure registry"),
    ],
)
def test_errors_are_one_line_with_a_status(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == status
    assert message in err
    assert "Traceback" not in err
    assert "hunter2" not in err + out
    assert err.startswith("registry-config plan: error: ")


def test_allow_network_admits_a_listed_network(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", SEED, "--instance", "127.0.0.1", "--allow-network", "127.0.0.0/8", "--json")
    assert status == 0
    assert json.loads(out)["instances"] == ["127.0.0.1:8080"]


def test_python_dash_m_and_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry_config", "plan", SEED, "--instance", "10.0.0.1", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["insecure_registries"][0] == "10.0.0.1:8080"
    bad = subprocess.run(
        [sys.executable, "-m", "registry_config", "plan", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
