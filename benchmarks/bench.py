"""Benchmarks of registry-config, printed as one Markdown table with the machine they ran on.

Run it from the repository root::

    .venv/bin/python benchmarks/bench.py           # the full run (under two minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick   # a smoke run: small sizes, one repetition

Every number of a row is measured side by side in the same run, so that the
ratios compare like with like:

- plan from Consul at 1k, 10k and 100k instances, from the catalog endpoint
  (``passing_only=False``) and from the health endpoint (the default): the
  wall time of ``build_plan`` with a ``ConsulBackend`` against the floor,
  fetching and decoding the very request the backend makes
  (``requests.Session().get(url).json()``) from the same simulator over the
  same loopback HTTP; their ratio; and the growth from 10k to 100k. At each
  size the floors and plans of both endpoints are measured in turn, round
  after round, and the medians compared;
- peak traced memory (tracemalloc) of one ``build_plan`` at 100k instances,
  everything allocated during the call counting, the response body
  included, over the size of the answer's bytes;
- the steady state behind ``CachingBackend``: plans per second for 100
  instances, and Consul requests per plan (the simulator's request log);
- compaction: rules and destinations for the 1,024 addresses of a /22,
  compacted and one rule per instance.

Each goal of issue 14 is printed with its verdict. The Consul simulator runs
in a child process, so that its JSON encoding neither shares the GIL with
the code measured nor counts in its memory; it sends compact JSON, as Consul
does, and keeps each answer it encoded until the catalog changes (the
benchmark has it encode each answer once, untimed, before the timed rounds).
The instances are a seeded random sample of ``10.0.0.0/12`` (about one
address in ten), registered as the seed's registry registers
(``ServicePort`` 0), so compaction has real work to do and a run is
reproducible. ``build_plan`` runs with its composition cache cleared before
each timed run (the cost of a snapshot that changed), and the "unchanged
snapshot" figure is the same call again with the snapshot unchanged. The
garbage collector stays on throughout.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry_config import RegistrySpec, ServiceInstance, StaticBackend  # noqa: E402 (after the path set-up)
from registry_config import plan as plan_module  # noqa: E402
from registry_config.plan import build_plan  # noqa: E402

SERVICE = "docker_registry"
URL = f"http://{SERVICE}.service.dc1.consul:8080"
NETWORK = ipaddress.IPv4Network("10.0.0.0/12")
SEED = 20260101

# The goals of issue 14, each checked (and its verdict printed) by report().
GOALS = {
    "ratio": 1.0,  # build_plan within the fetch-and-decode floor, at 10k and 100k, catalog and health
    "growth": 11.0,  # build_plan's time at 100k / at 10k
    "memory": 2.0,  # peak traced memory of one plan at 100k / size of the answer's bytes
    "plans_per_s": 100_000.0,  # cached plans per second for 100 instances
    "requests_per_plan": 0.0,  # Consul requests per cached plan
    "seconds": 120.0,  # the whole full run
}
# The two endpoints a ConsulBackend asks: the catalog (passing_only=False) and the health endpoint (the default).
ENDPOINTS = {"catalog": False, "health": True}


# -- the simulator, in a child process -----------------------------------------------------------------------


def addresses(count: int, seed: int = SEED) -> list[str]:
    """``count`` distinct addresses of ``NETWORK``, the same ones for the same seed."""
    rng = random.Random(seed)
    first = int(NETWORK.network_address) + 1
    picked = rng.sample(range(first, first + NETWORK.num_addresses - 2), count)
    return [str(ipaddress.IPv4Address(value)) for value in picked]


def serve() -> None:
    """The child: a ConsulSimulator driven by one-line commands on stdin, answers on stdout."""
    from registry_config.testing.consul import ConsulSimulator

    with ConsulSimulator() as sim:
        print(f"URL {sim.url}", flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "populate":
                # The stand-in for Consul, not what is measured: its collector paused while it registers (100k
                # registrations took 33 s with it, a third of that without), and what it then holds frozen out of
                # later collections, so that serving an answer does not walk them again.
                gc.disable()
                try:
                    gc.unfreeze()
                    sim.clear()
                    for i, address in enumerate(addresses(int(args[0]))):
                        sim.register(SERVICE, address, node=f"cell-{i}")
                    gc.collect()
                    gc.freeze()
                finally:
                    gc.enable()
                answer: Any = sim.index
            elif command == "count":
                blocking = sum(1 for request in sim.requests if request.param("index") is not None)
                answer = {"blocking": blocking, "other": len(sim.requests) - blocking}
            elif command == "warm":
                # Encode the answer to the floor's request here, untimed, without an HTTP round trip: the simulator
                # keeps it (and each entry's JSON) until the catalog changes.
                path, _, query = args[0].partition("?")
                kind = "health" if path.startswith("/v1/health/") else "catalog"
                sim._answer(kind, path.rpartition("/")[2], urllib.parse.parse_qsl(query, keep_blank_values=True), None)
                answer = sim.index
            elif command == "last":
                request = sim.requests[-1]
                answer = {"path": request.path, "query": list(request.query)}
            elif command == "quit":
                break
            else:
                answer = f"unknown command {command!r}"
            print(json.dumps(answer), flush=True)


class Simulator:
    """The parent's handle on the child simulator."""

    def __init__(self) -> None:
        self._child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line.startswith("URL "):
            self.close()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.url = line.split()[1]

    def ask(self, *words: object) -> Any:
        assert self._child.stdin is not None
        assert self._child.stdout is not None
        self._child.stdin.write(" ".join(str(word) for word in words) + "\n")
        self._child.stdin.flush()
        return json.loads(self._child.stdout.readline())

    def close(self) -> None:
        if self._child.poll() is None:
            try:
                assert self._child.stdin is not None
                self._child.stdin.write("quit\n")
                self._child.stdin.flush()
                self._child.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._child.kill()
                self._child.wait()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- measuring -----------------------------------------------------------------------------------------------


class CollectorMeter:
    """The time the garbage collector spends, read from ``gc.callbacks``: the part of a plan's time that grows with
    the whole heap (the caller's objects included), not with the plan's own work."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0  # collections of the oldest generation: the ones that walk every tracked object
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2

    def __enter__(self) -> CollectorMeter:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def median_time(function: Callable[[], object], repeat: int, *, before: Callable[[], object] | None = None) -> float:
    """The median wall time of ``function`` over ``repeat`` runs, in seconds (``before`` runs untimed)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def consul_backend(url: str, *, passing_only: bool = True) -> Any:
    from registry_config.discovery.consul import ConsulBackend

    # A 100k-instance answer takes longer than the default 5 s timeout on a busy machine.
    return ConsulBackend(url, timeout=300, passing_only=passing_only)


def floor_request(sim: Simulator) -> str:
    """The path and query of the last request the backend made, blocking-query parameters left out."""
    last = sim.ask("last")
    query = [(key, value) for key, value in last["query"] if key not in ("index", "wait")]
    encoded = "&".join(f"{key}={value}" if value else key for key, value in query)
    return f"{last['path']}" + (f"?{encoded}" if encoded else "")


def consul_rows(sim: Simulator, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    """One row per size and endpoint; at each size the endpoints' floors and plans are measured alternately."""
    spec = RegistrySpec.from_url(URL)
    # The request the backend makes does not depend on the size: learn it once per endpoint, on one instance.
    sim.ask("populate", 1)
    requests_of = {}
    for endpoint, passing_only in ENDPOINTS.items():
        with consul_backend(sim.url, passing_only=passing_only) as backend:
            build_plan(spec, backend)
        requests_of[endpoint] = floor_request(sim)
    clear = plan_module._compose.cache_clear
    rows = []
    for size in sizes:
        started = time.perf_counter()
        sim.ask("populate", size)
        print(f"  consul {size:,} instances registered in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        small = size < 100_000  # the unchanged-snapshot plan costs as much as the plan at 100k: skipped there
        times: dict[str, dict[str, list[float]]] = {
            e: {"floor": [], "plan": [], "warm": [], "collector": [], "full": []} for e in ENDPOINTS
        }
        made: dict[str, Any] = {}
        body: dict[str, int] = {}
        with requests.Session() as session:
            backends = {e: consul_backend(sim.url, passing_only=p) for e, p in ENDPOINTS.items()}
            try:
                for endpoint in ENDPOINTS:
                    sim.ask("warm", requests_of[endpoint])  # the simulator encodes its answer once, untimed
                # Interleave the measures, so that a slow moment of the machine does not land on one of them only.
                for _ in range(repeat):
                    for endpoint, backend in backends.items():
                        url = sim.url + requests_of[endpoint]

                        def fetch(url: str = url, endpoint: str = endpoint, body: dict[str, int] = body) -> object:
                            response = session.get(url, timeout=300)
                            body[endpoint] = len(response.content)  # read by .json() anyway
                            return response.json()

                        meter = CollectorMeter()

                        def plan(
                            backend: Any = backend,
                            endpoint: str = endpoint,
                            made: dict[str, Any] = made,
                            meter: CollectorMeter = meter,
                        ) -> object:
                            with meter:
                                made[endpoint] = build_plan(spec, backend)
                            return made[endpoint]

                        times[endpoint]["floor"].append(median_time(fetch, 1))
                        times[endpoint]["plan"].append(median_time(plan, 1, before=clear))
                        times[endpoint]["collector"].append(meter.seconds)
                        times[endpoint]["full"].append(meter.full)
                        if small:
                            times[endpoint]["warm"].append(median_time(plan, 1))
            finally:
                for backend in backends.values():
                    backend.close()
        for endpoint in ENDPOINTS:
            plan_made = made.pop(endpoint)
            assert len(plan_made.instances) == size, (endpoint, len(plan_made.instances), size)
            measured = times[endpoint]
            rows.append(
                {
                    "instances": size,
                    "endpoint": endpoint,
                    "floor": statistics.median(measured["floor"]),
                    "plan": statistics.median(measured["plan"]),
                    "warm": statistics.median(measured["warm"]) if measured["warm"] else None,
                    "collector": statistics.median(measured["collector"]),
                    "full_collections": statistics.median(measured["full"]),
                    "rules": len(plan_made.egress_rules),
                    "destinations": sum(len(rule.destinations) for rule in plan_made.egress_rules),
                    "repeat": repeat,
                    "request": requests_of[endpoint],
                    "body": body[endpoint],
                }
            )
            del plan_made
            row = rows[-1]
            print(
                f"  consul {endpoint:>7} {size:>7,}: floor {row['floor']:.3f}s plan {row['plan']:.3f}s",
                file=sys.stderr,
            )
        clear()
    return rows


def steady_state(sim: Simulator, seconds: float) -> dict[str, Any]:
    from registry_config.discovery.caching import CachingBackend

    spec = RegistrySpec.from_url(URL)
    sim.ask("populate", 100)
    with CachingBackend(consul_backend(sim.url)) as backend:
        build_plan(spec, backend)  # the first plan fills the cache
        time.sleep(0.2)  # let a background watch settle on its blocking query
        before = sim.ask("count")
        plans = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(100):
                build_plan(spec, backend)
            plans += 100
        elapsed = time.perf_counter() - start
        after = sim.ask("count")
    return {
        "plans_per_s": plans / elapsed,
        "requests_per_plan": (after["other"] - before["other"]) / plans,
        "watch_requests": after["blocking"] - before["blocking"],
        "seconds": elapsed,
        "plans": plans,
    }


def compaction() -> dict[str, Any]:
    network = ipaddress.IPv4Network("10.1.0.0/22")
    instances = [ServiceInstance(address, 8080) for address in network]
    spec = RegistrySpec.from_url("http://10.1.0.1:8080")
    counts = {}
    for compact in (True, False):
        plan = build_plan(spec, StaticBackend(instances), compact=compact)
        counts[compact] = (len(plan.egress_rules), sum(len(rule.destinations) for rule in plan.egress_rules))
        if compact:
            shown = [list(rule.destinations) for rule in plan.egress_rules]
    return {"instances": len(instances), "compact": counts[True], "per_instance": counts[False], "shown": shown}


def peak_memory(sim: Simulator, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Peak traced memory of one build_plan per endpoint at the largest size, against the answer's size in bytes.

    The simulator still holds that many instances from :func:`consul_rows`,
    whose rows say what the answer weighs. Everything allocated during
    ``build_plan`` counts, the response body included.
    """
    spec = RegistrySpec.from_url(URL)
    size = max(row["instances"] for row in rows)
    results = []
    for row in rows:
        if row["instances"] != size:
            continue
        plan_module._compose.cache_clear()
        with consul_backend(sim.url, passing_only=ENDPOINTS[row["endpoint"]]) as backend:
            gc.collect()
            tracemalloc.start()
            try:
                plan = build_plan(spec, backend)
                current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert len(plan.instances) == size
            del plan
        plan_module._compose.cache_clear()
        results.append(
            {"instances": size, "endpoint": row["endpoint"], "peak": peak, "retained": current, "body": row["body"]}
        )
    return results


# -- the report ----------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_implementation() + " " + platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:,.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: dict[str, Any]) -> Iterator[str]:
    info = results["machine"]
    yield f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['python']}, {info['system']}."
    yield f"Mode: {results['mode']}; run took {results['elapsed']:.0f} s."
    yield ""
    yield "| measure | value | goal | verdict |"
    yield "| --- | --- | --- | --- |"
    rows = {(row["endpoint"], row["instances"]): row for row in results["consul"]}
    for (endpoint, size), row in rows.items():
        ratio = row["plan"] / row["floor"]
        goal, met = "", ""
        if size >= 10_000:
            goal, met = f"≤ {GOALS['ratio']:.1f}x", verdict(ratio <= GOALS["ratio"])
        extra = f" (unchanged snapshot {ms(row['warm'])})" if row["warm"] is not None else ""
        runs = {1: "one run"}.get(row["repeat"], f"median of {row['repeat']}")
        yield (
            f"| plan from Consul, {size:,} instances, {endpoint} endpoint: build_plan {ms(row['plan'])}{extra} vs "
            f"floor {ms(row['floor'])}, {runs} | {ratio:.2f}x the floor | {goal} | {met} |"
        )
    for endpoint in ENDPOINTS:
        if (endpoint, 10_000) in rows and (endpoint, 100_000) in rows:
            small, big = rows[endpoint, 10_000], rows[endpoint, 100_000]
            growth = big["plan"] / small["plan"]
            own = (big["plan"] - big["collector"]) / (small["plan"] - small["collector"])
            yield (
                f"| growth 10k → 100k instances, {endpoint} endpoint (build_plan; the floor grows "
                f"{big['floor'] / small['floor']:.1f}x; the garbage collector's share: {ms(small['collector'])} at "
                f"10k, {ms(big['collector'])} at 100k in {big['full_collections']:.0f} full collection(s); "
                f"without it {own:.1f}x) | {growth:.1f}x | ≤ {GOALS['growth']:.0f}x | "
                f"{verdict(growth <= GOALS['growth'])} |"
            )
    for memory in results["memory"]:
        ratio = memory["peak"] / memory["body"]
        yield (
            f"| peak memory of build_plan at {memory['instances']:,} instances, {memory['endpoint']} endpoint "
            f"(tracemalloc): {memory['peak'] / 2**20:,.0f} MiB (plan kept: {memory['retained'] / 2**20:,.0f} MiB) "
            f"for an answer of {memory['body'] / 2**20:,.1f} MiB | {ratio:.3f}x the answer | "
            f"≤ {GOALS['memory']:.0f}x | {verdict(ratio <= GOALS['memory'])} |"
        )
    steady = results["steady"]
    yield (
        f"| steady state, CachingBackend over Consul, 100 instances ({steady['plans']:,} plans) | "
        f"{steady['plans_per_s']:,.0f} plans/s | ≥ {GOALS['plans_per_s']:,.0f} | "
        f"{verdict(steady['plans_per_s'] >= GOALS['plans_per_s'])} |"
    )
    yield (
        f"| Consul requests per cached plan (besides the background watch's {steady['watch_requests']} blocking "
        f"queries in {steady['seconds']:.1f} s) | {steady['requests_per_plan']:.4f} | 0 | "
        f"{verdict(steady['requests_per_plan'] <= GOALS['requests_per_plan'])} |"
    )
    if results["mode"] == "full":
        yield (
            f"| the whole benchmark, medians of {results['repeat']} interleaved rounds | {results['elapsed']:.0f} s | "
            f"≤ {GOALS['seconds']:.0f} s | {verdict(results['elapsed'] <= GOALS['seconds'])} |"
        )
    comp = results["compaction"]
    rules, destinations = comp["compact"]
    flat_rules, flat_destinations = comp["per_instance"]
    yield (
        f"| compaction, {comp['instances']:,} instances filling a /22: compact vs one rule per instance | "
        f"{rules} rule, {destinations} destination ({', '.join(d for ds in comp['shown'] for d in ds)}) vs "
        f"{flat_rules:,} rules, {flat_destinations:,} destinations | 1 destination | "
        f"{verdict(destinations == 1)} |"
    )
    for (endpoint, size), row in rows.items():
        if endpoint == "catalog":
            yield (
                f"| egress rules for {size:,} random instances of 10.0.0.0/12 (compacted) | "
                f"{row['rules']} rule(s), {row['destinations']:,} destinations | | |"
            )


def progress(start: float, what: str) -> None:
    print(f"  {what} done at {time.perf_counter() - start:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON after the table")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    start = time.perf_counter()
    sizes = [100, 1_000] if args.quick else [1_000, 10_000, 100_000]
    repeat = 1 if args.quick else 5
    results: dict[str, Any] = {"machine": machine(), "mode": "quick" if args.quick else "full", "repeat": repeat}
    with Simulator() as sim:
        results["consul"] = consul_rows(sim, sizes, repeat)
        progress(start, "consul rows")
        results["memory"] = peak_memory(sim, results["consul"])
        progress(start, "peak memory")
        results["steady"] = steady_state(sim, 0.3 if args.quick else 2.0)
        progress(start, "steady state")
        results["compaction"] = compaction()
    results["elapsed"] = time.perf_counter() - start
    for line in report(results):
        print(line)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
