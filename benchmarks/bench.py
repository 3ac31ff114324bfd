"""Benchmarks of registry-config, printed as one Markdown table with the machine they ran on.

Run it from the repository root::

    .venv/bin/python benchmarks/bench.py           # the full run (under two minutes on 2 cores)
    .venv/bin/python benchmarks/bench.py --quick   # a smoke run: small sizes, one repetition

Every number of a row is measured side by side in the same run, so that the
ratios compare like with like:

- plan from Consul at 1k, 10k and 100k instances: the wall time of
  ``build_plan`` with a ``ConsulBackend`` against the floor, fetching and
  decoding the very request the backend makes (``requests.get(url).json()``)
  from the same simulator over the same loopback HTTP; their ratio; and the
  growth from 10k to 100k;
- the steady state behind ``CachingBackend``: plans per second for 100
  instances, and Consul requests per plan (the simulator's request log);
- compaction: rules and destinations for the 1,024 addresses of a /22,
  compacted and one rule per instance;
- peak memory (tracemalloc) of ``build_plan`` at 100k instances.

The Consul simulator runs in a child process, so that its JSON encoding
neither shares the GIL with the code measured nor counts in its memory. The
instances are a seeded random sample of ``10.0.0.0/12`` (about one address in
ten), registered as the seed's registry registers (``ServicePort`` 0), so
compaction has real work to do and a run is reproducible. Timings are medians
of several repetitions; ``build_plan`` runs with its composition cache cleared
before each repetition (the cost of a snapshot that changed), and the
"warm" column is the same call again with the snapshot unchanged.
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

GOALS = {
    "ratio10k": 1.5,  # build_plan at 10k within 1.5x the fetch-and-decode floor
    "growth": 11.0,  # time at 100k / time at 10k
    "plans_per_s": 20_000.0,  # cached plans per second for 100 instances
    "requests_per_plan": 0.0,  # Consul requests per cached plan
}


# -- the simulator, in a child process -----------------------------------------------------------------------


def addresses(count: int, seed: int = SEED) -> list[str]:
    """``count`` distinct addresses of ``NETWORK``, the same ones for the same seed."""
    rng = random.Random(seed)
    first = int(NETWORK.network_address) + 1
    picked = rng.sample(range(first, first + NETWORK.num_addresses - 2), count)
    return [str(ipaddress.IPv4Address(value)) for value in picked]


def replay_answers(sim: Any) -> None:
    """Compute each answer of the simulator once per index, and replay it byte for byte after that.

    The simulator builds every answer afresh (a deep copy of each entry, then
    indented JSON): about 1.4 s for 10k health entries, more than a real
    Consul agent spends. Replaying keeps what the client sees identical (same
    bytes, same headers, same index) while the floor measures the HTTP
    transfer and the decoding, not the simulator's encoder. Blocking queries
    (``index``), ``cached`` reads and errors are never replayed.
    """
    original = sim._answer
    memo: dict[Any, Any] = {}

    def answer(kind: str, service: str, query: list[tuple[str, str]], token: str | None) -> Any:
        if any(key in ("index", "wait", "cached") for key, _ in query):
            return original(kind, service, query, token)
        key = (sim.index, kind, service, tuple(query), token)
        if key not in memo:
            result = original(kind, service, query, token)
            if result[0] != 200:
                return result
            memo.clear()
            memo[key] = result
        status, headers, body = memo[key]
        return status, dict(headers), body

    sim._answer = answer


def serve(as_is: bool) -> None:
    """The child: a ConsulSimulator driven by one-line commands on stdin, answers on stdout."""
    from registry_config.testing.consul import ConsulSimulator

    with ConsulSimulator() as sim:
        if not as_is:
            replay_answers(sim)
        print(f"URL {sim.url}", flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "populate":
                sim.clear()
                for i, address in enumerate(addresses(int(args[0]))):
                    sim.register(SERVICE, address, node=f"cell-{i}")
                answer: Any = sim.index
            elif command == "count":
                blocking = sum(1 for request in sim.requests if request.param("index") is not None)
                answer = {"blocking": blocking, "other": len(sim.requests) - blocking}
            elif command == "warm":
                # Encode the answer to the floor's request once, here, without an HTTP round trip.
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

    def __init__(self, *, as_is: bool = False) -> None:
        self._child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", *(["--simulator-as-is"] if as_is else [])],
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


def consul_backend(url: str) -> Any:
    from registry_config.discovery.consul import ConsulBackend

    # The simulator's first answer at 100k instances takes longer than the default 5 s timeout.
    return ConsulBackend(url, timeout=300)


def floor_request(sim: Simulator) -> str:
    """The path and query of the last request the backend made, blocking-query parameters left out."""
    last = sim.ask("last")
    query = [(key, value) for key, value in last["query"] if key not in ("index", "wait")]
    encoded = "&".join(f"{key}={value}" if value else key for key, value in query)
    return f"{last['path']}" + (f"?{encoded}" if encoded else "")


def consul_rows(sim: Simulator, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    spec = RegistrySpec.from_url(URL)
    # The request the backend makes does not depend on the size: learn it once, on a single instance.
    sim.ask("populate", 1)
    with consul_backend(sim.url) as backend:
        build_plan(spec, backend)
    request = floor_request(sim)
    url = sim.url + request
    rows = []
    for size in sizes:
        sim.ask("populate", size)
        big = size >= 100_000
        reps = min(2, repeat) if big else repeat
        sim.ask("warm", request)  # the simulator encodes its answer once, untimed (see replay_answers)
        with consul_backend(sim.url) as backend, requests.Session() as session:
            plans: list[Any] = []

            def fetch(session: requests.Session = session) -> object:
                return session.get(url, timeout=300).json()

            def plan(backend: Any = backend, plans: list[Any] = plans) -> object:
                plans[:] = [build_plan(spec, backend)]
                return plans[0]

            clear = plan_module._compose.cache_clear
            # Interleave the measures, so that a slow moment of the machine does not land on one of them only.
            floor_t, plan_t, warm_t = [], [], []
            for _ in range(reps):
                floor_t.append(median_time(fetch, 1))
                plan_t.append(median_time(plan, 1, before=clear))
                if not big:  # at 100k it costs as much as the plan itself: skipped to stay in budget
                    warm_t.append(median_time(plan, 1))
            made = plans[0]
            assert len(made.instances) == size, (len(made.instances), size)
            clear()
        rows.append(
            {
                "instances": size,
                "floor": statistics.median(floor_t),
                "plan": statistics.median(plan_t),
                "warm": statistics.median(warm_t) if warm_t else None,
                "rules": len(made.egress_rules),
                "destinations": sum(len(rule.destinations) for rule in made.egress_rules),
                "repeat": reps,
            }
        )
        del made, plans
        print(f"  consul {size:>7,}: floor {rows[-1]['floor']:.3f}s plan {rows[-1]['plan']:.3f}s", file=sys.stderr)
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


def peak_memory(sim: Simulator, size: int) -> dict[str, Any]:
    """Peak traced memory of one build_plan; the simulator still holds ``size`` instances from consul_rows."""
    spec = RegistrySpec.from_url(URL)
    plan_module._compose.cache_clear()
    with consul_backend(sim.url) as backend:
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
    return {"instances": size, "peak": peak, "retained": current}


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
    rows = {row["instances"]: row for row in results["consul"]}
    for size, row in rows.items():
        ratio = row["plan"] / row["floor"]
        goal, met = "", ""
        if size == 10_000:
            goal, met = f"≤ {GOALS['ratio10k']}x", verdict(ratio <= GOALS["ratio10k"])
        extra = f" (unchanged snapshot {ms(row['warm'])})" if row["warm"] is not None else ""
        runs = {1: "one run", 2: "mean of 2"}.get(row["repeat"], f"median of {row['repeat']}")
        yield (
            f"| plan from Consul, {size:,} instances: build_plan {ms(row['plan'])}{extra} vs floor "
            f"{ms(row['floor'])}, {runs} | {ratio:.2f}x the floor | {goal} | {met} |"
        )
    if 10_000 in rows and 100_000 in rows:
        growth = rows[100_000]["plan"] / rows[10_000]["plan"]
        floor_growth = rows[100_000]["floor"] / rows[10_000]["floor"]
        above = (rows[100_000]["plan"] - rows[100_000]["floor"]) / (rows[10_000]["plan"] - rows[10_000]["floor"])
        yield (
            f"| growth 10k → 100k instances (build_plan; the floor grows {floor_growth:.1f}x, build_plan's time "
            f"above the floor {above:.1f}x) | {growth:.1f}x | "
            f"≤ {GOALS['growth']:.0f}x | {verdict(growth <= GOALS['growth'])} |"
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
    comp = results["compaction"]
    rules, destinations = comp["compact"]
    flat_rules, flat_destinations = comp["per_instance"]
    yield (
        f"| compaction, {comp['instances']:,} instances filling a /22: compact vs one rule per instance | "
        f"{rules} rule, {destinations} destination ({', '.join(d for ds in comp['shown'] for d in ds)}) vs "
        f"{flat_rules:,} rules, {flat_destinations:,} destinations | 1 destination | "
        f"{verdict(destinations == 1)} |"
    )
    for row in rows.values():
        yield (
            f"| egress rules for {row['instances']:,} random instances of 10.0.0.0/12 (compacted) | "
            f"{row['rules']} rule(s), {row['destinations']:,} destinations | | |"
        )
    memory = results["memory"]
    yield (
        f"| peak memory of build_plan at {memory['instances']:,} instances (tracemalloc) | "
        f"{memory['peak'] / 2**20:,.0f} MiB (plan kept: {memory['retained'] / 2**20:,.0f} MiB) | | |"
    )


def progress(start: float, what: str) -> None:
    print(f"  {what} done at {time.perf_counter() - start:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON after the table")
    parser.add_argument(
        "--simulator-as-is",
        action="store_true",
        help="let the simulator encode every answer afresh (slow: the floor then mostly measures the simulator)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.simulator_as_is)
        return 0
    start = time.perf_counter()
    sizes = [100, 1_000] if args.quick else [1_000, 10_000, 100_000]
    repeat = 1 if args.quick else 5
    results: dict[str, Any] = {"machine": machine(), "mode": "quick" if args.quick else "full"}
    with Simulator(as_is=args.simulator_as_is) as sim:
        results["consul"] = consul_rows(sim, sizes, repeat)
        progress(start, "consul rows")
        results["memory"] = peak_memory(sim, sizes[-1])
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
