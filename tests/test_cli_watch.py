"""``registry-config watch`` against the Consul simulator: a plan per change, JSON lines, clean stops."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _integration import free_port

from registry_config.cli import build_parser, main
from registry_config.cli import watch as watch_cli
from registry_config.testing.consul import ConsulSimulator

URL = "http://docker_registry.service.dc1.consul:8080"
TOKEN = "w4tch-t0ken-s3cret"


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator() as simulator:
        simulator.register("docker_registry", "10.0.0.5", node="cell-1")
        yield simulator


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)


def backend_url(sim: ConsulSimulator) -> str:
    # A short blocking wait (the default is Consul's 5 minutes) so that these tests see the watch's next query.
    return f"consul://127.0.0.1:{sim.port}?watch_wait=1&watch_min_interval=0.05"


# A deadline for things that happen at once on an idle machine: generous, since the machine is shared. Polling
# ends as soon as the condition holds; the deadline only bounds a failure.
DEADLINE = 30.0


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: its wait is the polling interval
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s; {what}")
        pause.wait(0.02)


def answered_after(sim: ConsulSimulator, change: Callable[[], object]) -> None:
    """Make ``change`` and wait until the watch has taken Consul's answer to it and asked again.

    The watch asks again only after its reader took the previous snapshot, so
    a request after the change means the change was seen and processed.
    """
    before = len(sim.requests)
    change()
    wait_until(lambda: len(sim.requests) > before, what=f"no request after the change; {sim.requests!r}")


class Watching:
    """``watch.run`` in a thread, its output collected line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.args = build_parser().parse_args(["watch", *argv])
        self.out = io.StringIO()
        self.stop = threading.Event()
        self.status: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.status = watch_cli.run(self.args, stop=self.stop, out=self.out)
        except BaseException as exc:
            self.error = exc

    def lines(self) -> list[str]:
        return [line for line in self.out.getvalue().splitlines() if line]

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def wait_for(self, condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
        def done() -> bool:
            if self.error is not None:
                raise AssertionError(f"watch failed: {self.error!r}")
            return condition()

        wait_until(done, timeout, f"output so far:\n{self.out.getvalue()}")

    def finish(self) -> int | None:
        self.stop.set()
        self.thread.join(timeout=DEADLINE)
        assert not self.thread.is_alive()
        return self.status


def test_json_lines_as_instances_appear_and_disappear(sim: ConsulSimulator) -> None:
    run = Watching([URL, "--backend", backend_url(sim), "--json"])
    run.wait_for(lambda: len(run.lines()) == 1)
    first = run.records()[0]
    assert first["builder_args"] == [
        "-dockerRegistryURL",
        "http://docker_registry.service.dc1.consul:8080",
        "-insecureDockerRegistries",
        "10.0.0.5:8080,docker_registry.service.dc1.consul:8080",
    ]
    assert first["egress_rules"] == [{"destinations": ["10.0.0.5"], "log": False, "ports": [8080], "protocol": "tcp"}]
    assert first["instances"] == ["10.0.0.5:8080"]
    assert first["discovery"]["service"] == "docker_registry"
    assert first["discovery"]["datacenter"] == "dc1"
    assert first["discovery"]["index"] == sim.index

    sim.register("docker_registry", "10.0.0.6", node="cell-2")
    run.wait_for(lambda: len(run.lines()) == 2)
    assert run.records()[1]["instances"] == ["10.0.0.5:8080", "10.0.0.6:8080"]
    assert "10.0.0.6:8080" in run.records()[1]["builder_args"][3]

    sim.deregister("docker_registry-cell-1")
    run.wait_for(lambda: len(run.lines()) == 3)
    third = run.records()[2]
    assert third["instances"] == ["10.0.0.6:8080"]
    assert [rule["destinations"] for rule in third["egress_rules"]] == [["10.0.0.6"]]
    assert "10.0.0.5" not in json.dumps(third["egress_rules"])
    assert run.finish() == 0


def test_unchanged_plans_are_not_printed_again(sim: ConsulSimulator) -> None:
    run = Watching([URL, "--backend", backend_url(sim), "--json"])
    run.wait_for(lambda: len(run.lines()) == 1)
    answered_after(sim, sim.touch)  # a new index, the same data
    answered_after(sim, lambda: sim.reset_index(1))  # the index going backwards
    answered_after(sim, lambda: sim.register("other", "10.9.9.9"))  # another service
    assert len(run.lines()) == 1
    # A real change now prints the second line: nothing was printed for the three above, in between.
    sim.register("docker_registry", "10.0.0.6", node="cell-2")
    run.wait_for(lambda: len(run.lines()) == 2)
    assert run.records()[1]["instances"] == ["10.0.0.5:8080", "10.0.0.6:8080"]
    assert run.finish() == 0


def test_no_instance_left_is_reported_and_the_watch_goes_on(sim: ConsulSimulator) -> None:
    run = Watching([URL, "--backend", backend_url(sim), "--json"])
    run.wait_for(lambda: len(run.lines()) == 1)
    sim.deregister_service("docker_registry")
    run.wait_for(lambda: len(run.lines()) == 2)
    error = run.records()[1]
    assert error["error"] == "NoInstancesError"
    assert "docker_registry" in error["message"]
    sim.register("docker_registry", "10.0.0.7", node="cell-7")
    run.wait_for(lambda: len(run.lines()) == 3)
    assert run.records()[2]["instances"] == ["10.0.0.7:8080"]
    assert run.finish() == 0


def test_human_output(sim: ConsulSimulator) -> None:
    run = Watching([URL, "--backend", backend_url(sim)])
    run.wait_for(lambda: "egress rules:" in run.out.getvalue())
    sim.register("docker_registry", "10.0.0.6", node="cell-2")
    run.wait_for(lambda: run.out.getvalue().count("--- plan") == 2)
    assert run.finish() == 0
    text = run.out.getvalue()
    assert f"--- plan (index {sim.index})" in text
    assert "-insecureDockerRegistries" in text
    assert "10.0.0.6:8080" in text.split("--- plan")[2]


def test_count_stops_after_n_plans(sim: ConsulSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["watch", URL, "--backend", backend_url(sim), "--json", "--count", "1"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["instances"] == ["10.0.0.5:8080"]


def test_service_option_and_skip_ssl_validation(sim: ConsulSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    sim.register("registry2", "10.0.1.1", port=5000, node="cell-9")
    status = main(
        [
            "watch",
            "https://registry.example:443",
            "--skip-ssl-validation",
            "--backend",
            backend_url(sim),
            "--service",
            "registry2",
            "--json",
            "--count",
            "1",
        ]
    )
    assert status == 0
    record = json.loads(capsys.readouterr().out)
    assert record["instances"] == ["10.0.1.1:5000"]
    assert record["insecure"] is True
    assert "10.0.1.1:5000" in record["insecure_registries"]


def test_token_file_reaches_consul_and_never_the_output(
    sim: ConsulSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    sim.add_token(TOKEN, name="stager")
    status = main(
        ["watch", URL, "--backend", backend_url(sim), "--consul-token-file", str(token_file), "--json", "--count", "1"]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert sim.requests[-1].token == "stager"
    assert sim.requests[-1].token_source == "header"
    assert TOKEN not in captured.out + captured.err


def test_a_token_in_the_backend_url_is_refused(sim: ConsulSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["watch", URL, "--backend", f"{backend_url(sim)}&token={TOKEN}", "--count", "1"])
    captured = capsys.readouterr()
    assert status == 2
    assert TOKEN not in captured.out + captured.err
    assert "token_file" in captured.err
    assert sim.requests == []


def test_first_failure_is_exit_3_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    status = main(["watch", URL, "--backend", f"consul://127.0.0.1:{port}?timeout=2", "--count", "1"])
    captured = capsys.readouterr()
    assert status == 3
    assert f"http://127.0.0.1:{port}" in captured.err
    assert "'docker_registry'" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_auth_failure_is_exit_3(sim: ConsulSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    sim.fail(403, "ACL not found")
    assert main(["watch", URL, "--backend", backend_url(sim), "--count", "1"]) == 3
    assert "ACL not found" in capsys.readouterr().err


def test_invalid_url_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "docker_registry:8080", "--count", "1"]) == 2
    assert "scheme" in capsys.readouterr().err.lower()


def test_count_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["watch", URL, "--count", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_later_failures_do_not_end_the_watch(sim: ConsulSimulator) -> None:
    run = Watching([URL, "--backend", backend_url(sim), "--json"])
    run.wait_for(lambda: len(run.lines()) == 1)
    sim.fail(500, "No cluster leader", times=3)
    run.wait_for(lambda: sum(1 for r in sim.requests if r.fault) == 3)
    sim.register("docker_registry", "10.0.0.6", node="cell-2")
    run.wait_for(lambda: len(run.lines()) == 2)
    assert run.records()[1]["instances"] == ["10.0.0.5:8080", "10.0.0.6:8080"]
    assert run.finish() == 0


def _spawn(sim: ConsulSimulator) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("CONSUL_HTTP_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "registry_config", "watch", URL, "--backend", backend_url(sim), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize(("sent", "expected"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_signal_ends_the_command_promptly(sim: ConsulSimulator, sent: signal.Signals, expected: int) -> None:
    process = _spawn(sim)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert json.loads(first)["instances"] == ["10.0.0.5:8080"]
        # Signal it while it waits in a blocking query (the case that must not wait the query out).
        wait_until(lambda: any(r.param("index") for r in sim.requests), what=f"no blocking query: {sim.requests!r}")
        wait = max(float((r.param("wait") or "0s").rstrip("s")) for r in sim.requests if r.param("index"))
        process.send_signal(sent)
        # Stopping closes the in-flight query; the bound only says it does not outlive one blocking wait.
        _, err = process.communicate(timeout=wait + DEADLINE)
        assert process.returncode == expected, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
