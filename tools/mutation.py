"""Mutation testing of one module with cosmic-ray, on as many workers as the machine has cores (``make mutation``).

cosmic-ray's ``local`` distributor runs one mutant at a time: the Consul
reader's 350 mutants took over an hour. Its ``http`` distributor hands the
mutants to workers, each mutating a copy of the tree of its own, so this
script makes one copy per worker, starts the workers on free loopback ports,
runs the session, and stops every worker it started by its PID, whatever
happens. The working tree is never mutated: only copies in ``--dir``.

The workers are this script (``--serve PORT``) serving cosmic-ray's own
mutate-and-test handler on 127.0.0.1 only: ``cosmic-ray http-worker`` listens
on every interface, and a request to it names the command to run.

Not part of ``.ci/run`` (docs/mutation.md: run it before a release, and after
changing a module it covers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, worker: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the worker accepts connections: exec sends it work at once."""
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the mutation worker on port {port} exited ({worker.returncode}) before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                # Connecting to a loopback port of the ephemeral range can meet itself (TCP simultaneous open,
                # source port == destination port) before anything listens there: that is not the worker.
                if probe.getsockname() != probe.getpeername():
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the mutation worker on port {port} did not listen within 30 s")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """The worker and whatever it started (its process group, led by its PID), then reaped."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _count(session: Path, query: str) -> int:
    with contextlib.closing(sqlite3.connect(session)) as db:
        (count,) = db.execute(query).fetchone()
    return int(count)


def _pending(session: Path) -> int:
    """Mutants of the session without a result (what ``cosmic-ray exec`` would run)."""
    return _count(session, "select count(*) from work_items where job_id not in (select job_id from work_results)")


def _abnormal(session: Path) -> int:
    """Mutants whose run did not end normally (a worker that failed, not a test): the score would not count them."""
    return _count(session, "select count(*) from work_results where worker_outcome not in ('NORMAL', 'SKIPPED')")


def _config(module: str, tests: str, exclude: str, ports: list[int]) -> str:
    """The session's settings: the ``http`` distributor over ``ports``, or with none the ``local`` one."""
    command = f"{BIN / 'python'} -m pytest -x -q -p no:cacheprovider {tests}"
    if ports:
        urls = ", ".join(f'"http://127.0.0.1:{port}"' for port in ports)
        distributor = (
            f'[cosmic-ray.distributor]\nname = "http"\n\n[cosmic-ray.distributor.http]\nworker-urls = [{urls}]\n'
        )
    else:
        distributor = '[cosmic-ray.distributor]\nname = "local"\n'
    excluded = f'"{exclude}"' if exclude else ""
    return (
        f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = 300.0\nexcluded-modules = []\n'
        f"test-command = {_toml_string(command)}\n\n{distributor}\n"
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n"
    )


def _toml_string(text: str) -> str:
    """A TOML literal string when the text allows one (a ``-k '...'`` in the tests does not)."""
    return f"'{text}'" if "'" not in text else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serve(port: int) -> None:
    """A worker: cosmic-ray's mutate-and-test endpoint, on loopback only, in the current directory's tree."""
    from aiohttp import web
    from cosmic_ray.distribution.http import handle_mutate_and_test  # type: ignore[import-untyped]

    app = web.Application()
    app.add_routes([web.post("/", handle_mutate_and_test)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        _serve(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", required=True, help="the module to mutate, e.g. registry_config/redact.py")
    parser.add_argument("--tests", required=True, help="pytest arguments: the module's tests")
    parser.add_argument("--dir", required=True, type=Path, help="where the copies and the session go (emptied)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="copies run side by side")
    parser.add_argument("--exclude", default="", help="a regular expression of cosmic-ray operators to leave out")
    args = parser.parse_args()
    workers = max(1, args.workers)

    shutil.rmtree(args.dir, ignore_errors=True)
    trees = [args.dir / f"tree{n}" for n in range(1, workers + 1)]
    for tree in trees:
        tree.mkdir(parents=True)
        shutil.copytree(ROOT / "registry_config", tree / "registry_config")
        shutil.copytree(ROOT / "tests", tree / "tests")
        shutil.copy2(ROOT / "pyproject.toml", tree)
    ports = [_free_port() for _ in trees] if workers > 1 else []
    config = args.dir / "config.toml"
    config.write_text(_config(args.module, args.tests, args.exclude, ports))
    # The unmutated run, here and now: through the http distributor it would go to workers not yet started, and
    # cosmic-ray's baseline fails only on failing tests, not on a worker it cannot reach.
    local = args.dir / "baseline.toml"
    local.write_text(_config(args.module, args.tests, args.exclude, []))
    session = args.dir / "session.sqlite"

    def cosmic(*argv: str | Path) -> None:
        subprocess.run([BIN / "cosmic-ray", *argv], cwd=trees[0], check=True)

    cosmic("init", config, session)
    subprocess.run([BIN / "cr-filter-operators", session, config], check=True)
    cosmic("baseline", local)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for tree, port in zip(trees[: len(ports)], ports, strict=True):  # no port: the local distributor
            with (args.dir / f"worker-{port}.log").open("wb") as log:
                # A session of its own: stopping the worker's group stops the pytest it may be running too.
                started.append(
                    subprocess.Popen(
                        [sys.executable, Path(__file__).resolve(), "--serve", str(port)],
                        cwd=tree,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
        for port, worker in zip(ports, started, strict=True):
            _wait_listening(port, worker, time.monotonic() + 30)
        cosmic("exec", config, session)
        if _pending(session):  # a worker that failed to answer leaves its mutant without a result: run those again
            cosmic("exec", config, session)
    finally:
        for worker in started:
            _stop(worker)
    pending, abnormal = _pending(session), _abnormal(session)
    if pending or abnormal:
        print(f"unfinished: {pending} mutants without a result, {abnormal} whose run failed")
        return 1
    report = subprocess.run([BIN / "cr-report", session], check=True, stdout=subprocess.PIPE, text=True).stdout
    print("\n".join(report.splitlines()[-5:]))
    print(f"survivors: {BIN / 'cr-report'} --surviving-only --show-diff {session}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:  # cosmic-ray has said why on stderr
        sys.exit(f"mutation: {Path(exc.cmd[0]).name} {exc.cmd[1]} failed (exit {exc.returncode}); see above")
