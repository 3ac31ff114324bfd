"""``registry-config render``: printed and written files, parsed back."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from registry_config.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

URL = "http://10.244.2.6:8080"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
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
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "etc/containerd/certs.d/10.244.2.6:8080/hosts.toml",
        "etc/containerd/certs.d/10.244.2.7:8080/hosts.toml",
    ]
    data = tomllib.loads((tmp_path / "etc/containerd/certs.d/10.244.2.7:8080/hosts.toml").read_text())
    assert data["server"] == "http://10.244.2.7:8080"
    assert f"wrote {tmp_path / 'etc/containerd/certs.d/10.244.2.6:8080/hosts.toml'}" in capsys.readouterr().out


def test_output_dir_writes_every_runtime_and_the_ca_trees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM)
    out = tmp_path / "out"
    argv = ["render", "https://registry.example", "--instance", "10.0.0.5", "--insecure-registry", "10.0.0.9:5000"]
    assert main([*argv, "--ca", str(ca), "--output-dir", str(out), "--root", "/srv/node"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "etc/containerd/certs.d/10.0.0.9:5000/hosts.toml",
        "etc/containerd/certs.d/registry.example/hosts.toml",
        "etc/containerd/certs.d/registry.example:443/ca.crt",
        "etc/containerd/certs.d/registry.example:443/hosts.toml",
        "etc/containers/certs.d/registry.example/ca.crt",
        "etc/containers/certs.d/registry.example:443/ca.crt",
        "etc/containers/registries.conf.d/registry-config.conf",
        "etc/docker/certs.d/registry.example/ca.crt",
        "etc/docker/certs.d/registry.example:443/ca.crt",
        "etc/docker/daemon.json",
    ]
    assert all((out / p).read_text() == PEM for p in written if p.endswith("ca.crt"))
    hosts = tomllib.loads((out / "etc/containerd/certs.d/registry.example/hosts.toml").read_text())
    # The CA is named where the tree is installed (--root), never relative to the host's directory.
    assert (
        hosts["host"]["https://registry.example"]["ca"]
        == "/srv/node/etc/containerd/certs.d/registry.example:443/ca.crt"
    )
    assert json.loads((out / "etc/docker/daemon.json").read_text()) == {"insecure-registries": ["10.0.0.9:5000"]}
    assert capsys.readouterr().out.count("wrote ") == len(written)


def test_a_relative_ca_is_printed_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "render",
                "https://registry.example:5000",
                "--instance",
                "10.0.0.5",
                "--for",
                "containerd",
                "--ca",
                "ca.pem",
            ]
        )
        == 0
    )
    host = tomllib.loads(capsys.readouterr().out)["host"]["https://registry.example:5000"]
    assert host["ca"] == str(tmp_path / "ca.pem")


def test_options_without_effect_when_printing_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["render", "https://registry.example", "--instance", "10.0.0.5", "--for", "docker"]
    assert main([*argv, "--root", "/srv", "--ca", "/ca.pem", "--mirror-of", "docker.io"]) == 0
    captured = capsys.readouterr()
    assert "warning: --root has no effect without --output-dir" in captured.err
    assert "warning: --ca is not printed for docker: its CA goes in a certs.d directory" in captured.err
    assert json.loads(captured.out) == {"insecure-registries": [], "registry-mirrors": ["https://registry.example:443"]}


def test_warnings_are_one_line_each_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "http://docker_registry.service.consul:8080", "--for", "docker", *INSTANCES]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "warning" in line]
    assert lines == [
        "registry-config render: warning: daemon.json: left out 'docker_registry.service.consul:8080': dockerd "
        "refuses host names with '_' in insecure-registries (and would not start); images are pulled from the "
        "instances' addresses instead"
    ]
    assert "docker_registry" not in captured.out


def test_containerd_self_signed_with_a_ca(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["render", "https://10.244.2.6:8443", "--skip-ssl-validation", "--for", "containerd", "--ca", "/ca.pem"]
    assert main([*argv, "--instance", "10.244.2.6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ==> /etc/containerd/certs.d/10.244.2.6:8443/hosts.toml\n")
    host = tomllib.loads(out)["host"]["https://10.244.2.6:8443"]
    assert host == {"capabilities": ["pull", "resolve"], "skip_verify": True, "ca": "/ca.pem"}


def test_podman_registries_conf(tmp_path: Path) -> None:
    assert main(["render", URL, "--for", "podman", *INSTANCES, "--output-dir", str(tmp_path)]) == 0
    data = tomllib.loads((tmp_path / "etc/containers/registries.conf.d/registry-config.conf").read_text())
    assert data == {
        "registry": [
            {"location": "10.244.2.6:8080", "insecure": True},
            {"location": "10.244.2.7:8080", "insecure": True},
        ]
    }


def test_a_static_backend_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", URL, "--for", "docker", "--backend", "static:10.244.2.9:8080"]) == 0
    # The URL's own address is where the builder pulls from: insecure too (DESIGN, IP-literal registry URL).
    assert json.loads(capsys.readouterr().out)["insecure-registries"] == ["10.244.2.6:8080", "10.244.2.9:8080"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--for", "docker", "--daemon-json", "/nonexistent/daemon.json"], "cannot read it"),
        (["--for", "podman", "--daemon-json", "/etc/hostname"], "--daemon-json applies to --for docker only"),
        ([], "give exactly one --for RUNTIME to print, or --output-dir DIR"),
        (["--for", "docker", "--for", "podman"], "give exactly one --for RUNTIME to print"),
        (["--output-dir", "/tmp", "--root", "relative"], "root 'relative': give the absolute directory"),
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


# Files are written atomically: a full disk or a merge that cannot be written leaves the operator's file as it was.


def _render_in_place(tmp_path: Path, existing: bytes, *, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``render --daemon-json DIR/etc/docker/daemon.json --output-dir DIR``, a subprocess (maybe RLIMIT_FSIZE)."""
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_bytes(existing)

    def small_files() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    argv = [sys.executable, "-m", "registry_config", "render", URL, *INSTANCES, "--for", "docker"]
    return subprocess.run(
        [*argv, "--daemon-json", str(daemon), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=small_files,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_a_full_disk_leaves_the_old_daemon_json_intact(tmp_path: Path) -> None:
    old = json.dumps({"log-opts": {"note": "x" * 4000}, "insecure-registries": ["old.example:5000"]}).encode()
    done = _render_in_place(tmp_path, old, limit=1024)
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"registry-config render: error: cannot write {str(daemon)!r} (File too large)")
    assert "that file is unchanged; nothing was written" in done.stderr
    assert daemon.read_bytes() == old
    assert [p.name for p in daemon.parent.iterdir()] == ["daemon.json"], "no temporary file left behind"


def test_without_the_limit_the_same_command_writes_it(tmp_path: Path) -> None:
    old = json.dumps({"log-opts": {"note": "x" * 4000}, "insecure-registries": ["old.example:5000"]}).encode()
    done = _render_in_place(tmp_path, old)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "etc" / "docker" / "daemon.json").read_text())
    assert data["insecure-registries"] == ["old.example:5000", "10.244.2.6:8080", "10.244.2.7:8080"]


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        (b'{"labels": ["\\udcff"], "insecure-registries": []}', "holds a lone surrogate"),
        (b'{"max-concurrent-downloads": NaN}', "holds NaN, which is not JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", "holds a number of 5000 digits"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_a_merge_that_cannot_be_written_exits_2_and_changes_nothing(
    tmp_path: Path, existing: bytes, message: str
) -> None:
    done = _render_in_place(tmp_path, existing)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("registry-config render: error: existing daemon.json")
    assert message in done.stderr
    assert (tmp_path / "etc" / "docker" / "daemon.json").read_bytes() == existing


def test_auth_json_is_merged_with_the_login_from_the_credentials_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    login = tmp_path / "login"
    login.write_text("stager:s3cret-Pa55\n")
    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {"other.example": {"auth": "eDp5"}}, "credsStore": "none"}')
    auth.chmod(0o644)
    argv = ["render", "https://registry.example", "--for", "podman", "--instance", "10.0.0.5"]
    assert main([*argv, "--auth-json", str(auth), "--credentials-file", str(login)]) == 0
    captured = capsys.readouterr()
    assert "s3cret-Pa55" not in captured.out + captured.err
    data = json.loads(auth.read_text())
    assert data["credsStore"] == "none"
    assert data["auths"]["other.example"] == {"auth": "eDp5"}
    assert {"registry.example", "registry.example:443", "10.0.0.5:443"} <= set(data["auths"])
    assert oct(auth.stat().st_mode & 0o777) == "0o600"


def test_auth_json_without_a_login_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_CONFIG_CREDENTIALS_FILE", raising=False)
    auth = tmp_path / "auth.json"
    argv = ["render", "https://registry.example", "--for", "podman", "--instance", "10.0.0.5"]
    assert main([*argv, "--auth-json", str(auth)]) == 2
    assert "--credentials-file" in capsys.readouterr().err
    assert not auth.exists()
