"""What a fleet of idle stagers costs Consul, and how fast a watch held in a blocking query stops.

Run it from the repository root::

    .venv/bin/python benchmarks/fleet.py                # N = 1 and 100 over 30 s each, about two minutes
    .venv/bin/python benchmarks/fleet.py --window 300   # a window long enough to see the cache's re-checks
    .venv/bin/python benchmarks/fleet.py --quick        # a smoke run: N = 1 and 5 over 3 s

Each stager is what a stager process holds: a ``CachingBackend`` over a
``ConsulBackend``, both with their defaults, against the Consul simulator on
loopback. One driver thread makes every stager plan (``build_plan``) over
and over while Consul does not change: an idle fleet. The simulator's
request log counts what they cost:

- start-up: the first plan's read, the cache's watcher's first read and its
  first blocking query (held by the simulator: nothing changes);
- the window: every request after start-up, as requests per stager per
  minute. With the defaults, a watcher's blocking query waits 5 minutes and
  the cache re-checks a watched snapshot every 2 minutes (``watch_ttl``), so
  the steady state is 60/120 + 60/300 = 0.7 requests per stager per minute;
  a window shorter than 2 minutes shows none of them, which is why the
  configured steady state is printed beside what was measured;
- for comparison, one stager with the former defaults (``watch_wait`` 1 s,
  ``watch_ttl`` 60 s): about one request per second.

Then the stop: a ``ConsulBackend.watch`` (defaults) is started, its
blocking query held by the simulator, and ``stop`` set; the time until the
watch returns is measured (median and worst of several), as is closing all
each cache of the large fleet (its watcher held).

The goals (``docs/performance.md``, "Fleet"): at most 1 request per stager
per minute when idle; a watch stops in under 1 s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry_config.discovery.caching import CachingBackend  # noqa: E402 (after the path set-up)
from registry_config.discovery.consul import ConsulBackend  # noqa: E402
from registry_config.discovery.model import ServiceQuery  # noqa: E402
from registry_config.plan import build_plan  # noqa: E402
from registry_config.spec import RegistrySpec  # noqa: E402
from registry_config.testing.consul import ConsulSimulator  # noqa: E402

URL = "http://docker_registry.service.dc1.consul:8080"
SPEC = RegistrySpec.from_url(URL)
GOAL_REQUESTS = 1.0
GOAL_STOP = 1.0
STEADY_STATE = 60 / 120 + 60 / 300  # the cache's re-check per watch_ttl, the watch's query per wait


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the fleet did not settle in time")
        time.sleep(0.05)


def _held(sim: ConsulSimulator) -> int:
    return sum(1 for request in sim.requests if request.param("index") is not None)


def fleet(stagers: int, window: float, pause: float = 0.01, **consul_options: float) -> dict[str, float]:
    """Requests per stager per minute of ``stagers`` idle stagers planning for ``window`` seconds."""
    watch_ttl = consul_options.pop("watch_ttl", None)
    with ConsulSimulator() as sim:
        sim.register("docker_registry", "10.244.2.6", node="cell-1")
        sim.register("docker_registry", "10.244.2.7", node="cell-2")
        caches = [
            CachingBackend(ConsulBackend(sim.url, **consul_options))  # type: ignore[arg-type]
            if watch_ttl is None
            else CachingBackend(ConsulBackend(sim.url, **consul_options), watch_ttl=watch_ttl)  # type: ignore[arg-type]
            for _ in range(stagers)
        ]
        try:
            for cache in caches:
                build_plan(SPEC, cache)
            _until(lambda: _held(sim) >= stagers, timeout=60)  # every watcher is in its blocking query
            startup = len(sim.requests)
            plans = 0
            done = threading.Event()

            def plan_continuously() -> None:
                nonlocal plans
                while not done.is_set():
                    for cache in caches:
                        build_plan(SPEC, cache)
                        plans += 1
                    done.wait(pause)  # a breath between rounds: the machine is shared

            driver = threading.Thread(target=plan_continuously, daemon=True)
            started = time.monotonic()
            driver.start()
            done.wait(window)
            done.set()
            driver.join()
            elapsed = time.monotonic() - started
            spent = len(sim.requests) - startup
        finally:
            closes = []
            for cache in caches:
                closing = time.monotonic()
                cache.close()
                closes.append(time.monotonic() - closing)
    return {
        "stagers": stagers,
        "window": elapsed,
        "plans": plans,
        "startup_per_stager": startup / stagers,
        "requests": spent,
        "per_stager_per_minute": spent / stagers / (elapsed / 60),
        "close_median": statistics.median(closes),
        "close_worst": max(closes),
    }


def stop_times(repeat: int) -> list[float]:
    """Seconds from ``stop.set()`` to the end of a default watch whose blocking query the server holds."""
    times = []
    with ConsulSimulator() as sim:
        sim.register("docker_registry", "10.244.2.6", node="cell-1")
        query = ServiceQuery("docker_registry", default_port=8080)
        for _ in range(repeat):
            with ConsulBackend(sim.url) as backend:
                stop = threading.Event()
                held_before = _held(sim)
                thread = threading.Thread(target=lambda b=backend, s=stop: list(b.watch(query, stop=s)), daemon=True)
                thread.start()
                _until(lambda held_before=held_before: _held(sim) > held_before, timeout=30)
                time.sleep(0.2)  # let the query settle in the server's hold
                started = time.monotonic()
                stop.set()
                thread.join(timeout=600)
                times.append(time.monotonic() - started)
    return times


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of idle planning per fleet (30)")
    parser.add_argument("--large", type=int, default=100, help="stagers in the large fleet (100)")
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between two rounds of plans (0.01)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s windows, 5 stagers")
    args = parser.parse_args(argv)
    window, large = (3.0, 5) if args.quick else (args.window, args.large)

    print(
        f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}; window {window:g} s, "
        f"a round of plans every {args.pause:g} s"
    )
    rows = [
        ("defaults", fleet(1, window, args.pause)),
        ("defaults", fleet(large, window, args.pause)),
        (
            "former defaults (wait 1 s, watch_ttl 60 s)",
            fleet(1, window, args.pause, watch_wait=1.0, watch_min_interval=0.2, watch_ttl=60.0),
        ),
    ]
    print()
    print(
        "| stagers | settings | start-up requests per stager | plans in the window | Consul requests in the window "
        "| requests per stager per minute | goal (<= 1) |"
    )
    print("|---:|---|---:|---:|---:|---:|---|")
    for settings, row in rows:
        rate = row["per_stager_per_minute"]
        verdict = _verdict(rate <= GOAL_REQUESTS) if settings == "defaults" else "(for comparison)"
        print(
            f"| {row['stagers']:.0f} | {settings} | {row['startup_per_stager']:.0f} | {row['plans']:.0f} "
            f"| {row['requests']:.0f} | {rate:.2f} | {verdict} |"
        )
    print(
        f"\nSteady state with the defaults, from the configured periods (re-check per watch_ttl 120 s, one blocking "
        f"query per wait 300 s): {STEADY_STATE:.1f} requests per stager per minute ({_verdict(STEADY_STATE <= 1)})."
    )
    times = stop_times(3 if args.quick else 7)
    worst = max(times)
    print()
    print("| stopping | median | worst | goal (< 1 s) |")
    print("|---|---:|---:|---|")
    print(
        f"| a default watch held in a blocking query | {statistics.median(times) * 1000:.0f} ms "
        f"| {worst * 1000:.0f} ms | {_verdict(worst < GOAL_STOP)} |"
    )
    large_row = rows[1][1]
    print(
        f"| closing a cache (its watcher held), each of {large_row['stagers']:.0f} "
        f"| {large_row['close_median'] * 1000:.0f} ms | {large_row['close_worst'] * 1000:.0f} ms "
        f"| {_verdict(large_row['close_worst'] < GOAL_STOP)} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
