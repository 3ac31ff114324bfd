"""`registry-config plan`: readable by default, JSON on request, exit statuses, never a traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _integration import free_port, unavailable

from registry_config import StaticBackend, build_plan
from registry_config.cli import main
from registry_config.testing.consul import ConsulSimulator

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


def console_script() -> str:
    """The ``registry-config`` script installed beside this interpreter (the package's entry point)."""
    found = shutil.which("registry-config", path=str(Path(sys.executable).parent))
    if found is None:
        unavailable("the registry-config console script is not installed beside this Python (pip install -e .)")
    return found


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user at a terminal runs it."""
    return subprocess.run([console_script(), *argv], capture_output=True, text=True, check=False, timeout=60, env=env)


def test_the_installed_console_script() -> None:
    done = cli("plan", SEED, "--instance", "10.0.0.1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["insecure_registries"][0] == "10.0.0.1:8080"
    bad = cli("plan", "nope")
    assert bad.returncode == 2
    assert bad.stderr.startswith("registry-config plan: error: registry URL 'nope': has no scheme")
    assert "Traceback" not in bad.stderr


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry_config", "plan", SEED, "--instance", "10.0.0.1", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["instances"] == ["10.0.0.1:8080"]


# -- what a newcomer stumbled on -----------------------------------------------------------------------------------


def test_an_ip_literal_url_is_in_the_flag_and_the_rules() -> None:
    done = cli("plan", "http://10.244.2.9:5000", "--instance", "10.244.2.6", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["insecure_registries"] == ["10.244.2.6:5000", "10.244.2.9:5000"]
    assert data["instances"] == ["10.244.2.6:5000", "10.244.2.9:5000"]
    assert data["egress_rules"] == [
        {"destinations": ["10.244.2.6", "10.244.2.9"], "log": False, "ports": [5000], "protocol": "tcp"}
    ]
    assert done.stderr == ""


def test_an_ip_literal_url_alone_warns_on_one_stderr_line() -> None:
    with ConsulSimulator() as consul:  # it knows no 'registry' service: Consul answers 200 []
        done = cli("plan", "http://10.244.2.9:5000", "--backend", f"consul://127.0.0.1:{consul.port}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["instances"] == ["10.244.2.9:5000"]
    # One line; the source is the backend's own wording, so only its start is pinned here.
    assert re.fullmatch(
        r"registry-config plan: warning: discovery \(consul [^\n]*\) found no instance of service '10\.244\.2\.9': "
        r"the plan holds only the registry URL's own address 10\.244\.2\.9:5000; check the service name "
        r"\(--service\) and the backend if the registry has other instances\n",
        done.stderr,
    )


def test_skip_ssl_validation_on_http_warns() -> None:
    done = cli("plan", SEED, "--skip-ssl-validation", "--instance", "10.0.0.1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "registry-config plan: warning: skip_ssl_validation has no effect on an http:// registry URL (plain HTTP "
        "has no certificate to skip): drop it, or write https:// if the registry speaks TLS\n"
    )
    assert "warnings:\n  skip_ssl_validation has no effect" in done.stdout


def test_an_empty_backend_is_refused() -> None:
    done = cli("plan", SEED, "--backend", "")
    assert done.returncode == 2
    assert done.stderr == (
        "registry-config plan: error: --backend '' is empty; give a backend URL (consul://HOST:PORT, dns:, "
        "static:IP,...) or leave the option out to resolve the URL's host with the system resolver\n"
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://registry.internal", "port 443 is the https default, used when the URL names no port"),
        ("http://registry.internal", "port 80 is the http default, used when the URL names no port"),
    ],
)
def test_an_implied_port_is_said(url: str, said: str) -> None:
    done = cli("plan", url, "--instance", "10.0.0.1")
    assert done.returncode == 0, done.stderr
    assert said in done.stdout


def test_an_explicit_other_port_says_nothing_of_defaults() -> None:
    done = cli("plan", "https://registry.internal:5000", "--instance", "10.0.0.1")
    assert done.returncode == 0, done.stderr
    assert "default" not in done.stdout


def test_an_insecure_registry_with_a_comma_names_the_comma() -> None:
    done = cli("plan", SEED, "--instance", "10.0.0.1", "--insecure-registry", "a:80,b:1")
    assert done.returncode == 2
    assert "'a:80,b:1' holds a comma; give one host:port per entry" in done.stderr
    assert "IPv6" not in done.stderr


def test_a_bad_allowed_network_is_named_as_the_user_gave_it() -> None:
    done = cli(
        "plan", SEED, "--instance", "10.0.0.1", "--allow-network", "10.1.0.0/16", "--allow-network", "10.0.0.0/33"
    )
    assert done.returncode == 2
    assert done.stderr.startswith("registry-config plan: error: --allow-network: '10.0.0.0/33' is not an IP network")
    assert "allowed_networks[" not in done.stderr


PLUGIN = """
from registry_config import Discovery


class BrokenInventory:
    def __init__(self, url):
        self.url = url

    def discover(self, query):
        return {}["instances"]

    def watch(self, query, *, stop=None):
        yield self.discover(query)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def factory(url):
    return BrokenInventory(url)
"""


def test_a_plugins_bug_is_exit_3_naming_it(tmp_path: Path) -> None:
    # A real plugin: a module and its distribution's entry point, found through importlib.metadata.
    (tmp_path / "broken_inventory.py").write_text(PLUGIN)
    info = tmp_path / "broken_inventory-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-inventory\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[registry_config.backends]\nbroken = broken_inventory:factory\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = cli("plan", SEED, "--backend", "broken://inventory", env=env)
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        "registry-config plan: error: discovery backend broken_inventory.BrokenInventory failed while looking up "
        "'docker_registry': it raised KeyError (\"'instances'\") instead of a DiscoveryError; this is a bug in that "
        "backend: report it to its authors, or use another backend\n"
    )
    watched = cli("watch", SEED, "--backend", "broken://inventory", "--count", "1", env=env)
    assert watched.returncode == 3, watched.stderr
    assert "broken_inventory.BrokenInventory failed while watching 'docker_registry'" in watched.stderr
    assert "Traceback" not in watched.stderr


def test_readable_output_is_the_plans_own_text(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plan", SEED, "--instance", "10.0.0.1", "--instance", "169.254.169.254")
    assert status == 0
    expected = build_plan(SEED, StaticBackend(["10.0.0.1", "169.254.169.254"])).to_text()
    assert out == expected


def test_every_plan_warning_is_one_stderr_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    # The library issues the notice while making the plan, and the command announces every plan warning again:
    # printed once, on one line.
    status, out, err = run(capsys, "plan", "http://10.0.0.9:5000", "--skip-ssl-validation", "--instance", "10.0.0.1")
    assert status == 0
    assert err.splitlines() == [
        "registry-config plan: warning: skip_ssl_validation has no effect on an http:// registry URL (plain HTTP "
        "has no certificate to skip): drop it, or write https:// if the registry speaks TLS"
    ]
    assert out.count("skip_ssl_validation has no effect") == 1  # the warnings section of the plan's own text


def test_probe_also_says_skip_ssl_validation_has_no_effect_on_http() -> None:
    port = free_port()  # nothing listens: the probe ends unreachable (3), after the warning
    done = cli("probe", f"http://127.0.0.1:{port}", "--skip-ssl-validation", "--timeout", "2")
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        "registry-config probe: warning: --skip-ssl-validation has no effect on an http:// URL (plain HTTP has no "
        "certificate to skip): drop it, or write https:// if the registry speaks TLS\n"
    )
