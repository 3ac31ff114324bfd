"""CachingBackend over the real ConsulBackend (py-consul over HTTP) against the Consul simulator, with faults.

ConsulBackend's watch backs off silently on errors (it logs and retries):
exactly the watch that could make a cache serve an outdated snapshot as
fresh forever. These tests show the cache's ``watch_ttl`` bound catching it,
and what an idle stager costs Consul with the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from _integration import need_module

from registry_config.discovery.caching import CachingBackend
from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.model import ServiceQuery
from registry_config.errors import DiscoveryUnavailable
from registry_config.testing.consul import ConsulSimulator

QUERY = ServiceQuery("docker_registry", default_port=8080)


@pytest.fixture(autouse=True, scope="module")
def _py_consul() -> None:
    """The backend needs the consul extra: without it, skip (or fail under REGISTRY_CONFIG_REQUIRE_INTEGRATION=1)."""
    need_module("consul", package="'registry-config[consul]'")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until ``condition`` holds; the deadline only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def sim() -> Iterator[ConsulSimulator]:
    with ConsulSimulator() as simulator:
        simulator.register("docker_registry", "10.244.2.6", node="cell-1")
        simulator.register("docker_registry", "10.244.2.7", node="cell-2")
        yield simulator


def _consul(sim: ConsulSimulator, **options: object) -> ConsulBackend:
    settings: dict[str, object] = {"timeout": 0.5, "watch_wait": 0.2, "watch_min_interval": 0.01}
    settings.update(options)
    return ConsulBackend(sim.url, **settings)  # type: ignore[arg-type]


def _plain_reads(sim: ConsulSimulator) -> int:
    """Requests that are not blocking queries: what a plan would cost without the cache."""
    return sum(1 for request in sim.requests if request.param("index") is None)


def test_steady_state_costs_no_round_trip(sim: ConsulSimulator) -> None:
    clock = Clock()
    with CachingBackend(_consul(sim), ttl=0.01, watch_ttl=60.0, clock=clock) as cache:
        assert cache.discover(QUERY).endpoints == ("10.244.2.6:8080", "10.244.2.7:8080")
        _until(lambda: len(sim.requests) >= 3)  # the watcher's first read, then a blocking query
        sim.register("docker_registry", "10.244.2.8", node="cell-3")
        _until(lambda: len(cache.discover(QUERY)) == 3)  # only the watcher can bring it: the clock stands still
        reads = _plain_reads(sim)
        for _ in range(500):
            assert len(cache.discover(QUERY)) == 3
        clock.advance(50)  # five thousand ttl's, still within watch_ttl
        assert len(cache.discover(QUERY)) == 3
        assert _plain_reads(sim) == reads == 2  # the first discover and the watch's first read


def test_an_idle_stager_costs_at_most_one_request_a_minute_with_the_defaults(sim: ConsulSimulator) -> None:
    """Defaults throughout; the cache's clock runs ten minutes of continuous planning while Consul is idle.

    The watch holds one blocking query (5 minutes by default, so it cannot
    return within the test); every other request is the cache's own re-check.
    """
    clock = Clock()
    with CachingBackend(ConsulBackend(sim.url), clock=clock) as cache:
        cache.discover(QUERY)
        _until(lambda: any(r.param("index") is not None for r in sim.requests))
        blocking = [r for r in sim.requests if r.param("index") is not None]
        assert [r.param("wait") for r in blocking] == ["300s"]
        start = len(sim.requests)
        for _ in range(600 * 4):  # a plan every quarter of a second for ten minutes
            clock.advance(0.25)
            assert len(cache.discover(QUERY)) == 2
        spent = len(sim.requests) - start
        # One re-check per watch_ttl (120 s): 5 in ten minutes, half the goal of one a minute; and they do
        # happen (an outage the watch hides is noticed).
        assert 4 <= spent <= 6
        assert all(r.param("index") is None for r in sim.requests[start:])


def test_an_outage_the_watch_hides_is_caught_within_watch_ttl(sim: ConsulSimulator) -> None:
    clock = Clock()
    with CachingBackend(_consul(sim), ttl=1.0, watch_ttl=30.0, max_stale=120.0, clock=clock) as cache:
        cache.discover(QUERY)
        sim.register("docker_registry", "10.244.2.8", node="cell-3")
        _until(lambda: len(cache.discover(QUERY)) == 3)  # only the watcher can bring it: the clock stands still
        sim.fail(500, "No cluster leader", times=10_000)  # the watch now retries quietly
        clock.advance(29)
        assert not cache.discover(QUERY).stale  # nothing tells it yet
        clock.advance(2)
        found = cache.discover(QUERY)
        assert found.stale
        assert len(found) == 3
        assert found.warnings[-1].startswith("discovery failed: Consul at http://127.0.0.1:")
        assert "No cluster leader" in found.warnings[-1]
        assert found.warnings[-1].endswith("serving a snapshot 31 s old")
        clock.advance(90)
        with pytest.raises(DiscoveryUnavailable, match="older than max_stale=120 s, so it is not served"):
            cache.discover(QUERY)
        sim.clear_faults()
        clock.advance(2)
        assert not cache.discover(QUERY).stale


@pytest.mark.parametrize("fault", ["drop", "hang", "503", "garbage"])
def test_faults_during_a_refresh_serve_the_last_snapshot(sim: ConsulSimulator, fault: str) -> None:
    clock = Clock()
    timeout = 0.5
    with CachingBackend(_consul(sim, timeout=timeout), ttl=1.0, max_stale=60.0, background=False, clock=clock) as cache:
        good = cache.discover(QUERY)
        if fault == "drop":
            sim.drop(times=5)
        elif fault == "hang":
            sim.hang(seconds=30.0, times=5)  # far longer than the backend's timeout: a slow answer
        elif fault == "503":
            sim.fail(503, "rpc error: too many requests", times=5)
        else:
            sim.respond_raw("<html>proxy error</html>", content_type="text/html", times=5)
        clock.advance(2)
        started = time.monotonic()
        found = cache.discover(QUERY)
        assert time.monotonic() - started < 3 * timeout + 2  # bounded by the backend's timeout
        assert found.stale
        assert found.instances == good.instances
        assert found.warnings[-1].startswith("discovery failed: Consul at ")
        assert found.warnings[-1].endswith("serving a snapshot 2 s old")


def test_flapping_health_is_followed_and_nothing_is_lost(sim: ConsulSimulator) -> None:
    with CachingBackend(_consul(sim), ttl=0.01, watch_ttl=60.0) as cache:
        cache.discover(QUERY)
        for round_ in range(6):
            status = "critical" if round_ % 2 == 0 else "passing"
            sim.register("docker_registry", "10.244.2.9", node="cell-9", service_id="flapper", status=status)
            wanted = 2 if status == "critical" else 3
            _until(lambda wanted=wanted: len(cache.discover(QUERY)) == wanted)  # type: ignore[misc]
            if round_ == 3:
                sim.drop(times=3)  # a blip mid-watch
        assert not cache.discover(QUERY).stale
