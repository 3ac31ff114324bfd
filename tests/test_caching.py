"""CachingBackend under fault injection: outages, slow answers, errors mid-watch, flapping, many threads."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from registry_config.discovery import caching
from registry_config.discovery.backend import BackendBase
from registry_config.discovery.caching import CachingBackend, has_native_watch
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.discovery.static import StaticBackend
from registry_config.errors import DiscoveryError, DiscoveryUnavailable, InvalidInput, NoInstancesError
from registry_config.plan import StagingPlan, build_plan
from registry_config.spec import RegistrySpec
from registry_config.testing import fakes
from registry_config.testing.fakes import FakeBackend

QUERY = ServiceQuery("docker_registry", default_port=8080)
SPEC_QUERY = QUERY  # what build_plan asks for http://docker_registry.service.consul:8080
A = (ServiceInstance("10.244.2.6", 8080), ServiceInstance("10.244.2.7", 8080))
B = (ServiceInstance("10.244.2.6", 8080), ServiceInstance("10.244.2.8", 8080))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def caches() -> Iterator[list[CachingBackend]]:
    """Caches made by a test, closed after it (their watcher threads stop)."""
    made: list[CachingBackend] = []
    yield made
    for cache in made:
        cache.close()


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _waiting_in_the_cache(threads: list[threading.Thread]) -> int:
    """How many of ``threads`` are blocked on a condition inside CachingBackend (read from their stacks)."""
    frames = sys._current_frames()
    count = 0
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        files = []
        while frame is not None:
            files.append((frame.f_code.co_filename, frame.f_code.co_name))
            frame = frame.f_back
        in_cache = any(name == caching.__file__ for name, _ in files)
        in_fake = any(name == fakes.__file__ for name, _ in files)
        if files and files[0][1] == "wait" and in_cache and not in_fake:
            count += 1
    return count


def _cache(caches: list[CachingBackend], backend: FakeBackend, **options: object) -> CachingBackend:
    cache = CachingBackend(backend, **options)  # type: ignore[arg-type]
    caches.append(cache)
    return cache


# -- answering from memory ----------------------------------------------------------------------


def test_fresh_snapshots_come_from_memory(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=5.0, clock=clock, background=False)
    first = cache.discover(QUERY)
    clock.advance(4.9)
    assert cache.discover(QUERY) is first
    assert fake.discover_calls == 1
    fake.set_instances(B)
    clock.advance(0.2)
    refreshed = cache.discover(QUERY)
    assert refreshed.instances == B
    assert not refreshed.stale
    assert fake.discover_calls == 2


def test_queries_are_cached_apart(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, clock=clock, background=False)
    other = ServiceQuery("docker_registry", datacenter="dc2", default_port=8080)
    assert cache.discover(QUERY).query == QUERY
    assert cache.discover(other).query == other
    assert fake.discover_calls == 2


# -- outages --------------------------------------------------------------------------------------


def test_an_outage_serves_the_last_snapshot_marked_stale_until_max_stale(
    clock: Clock, caches: list[CachingBackend]
) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=5.0, max_stale=300.0, clock=clock, background=False)
    good = cache.discover(QUERY)
    fake.fail(DiscoveryUnavailable("consul at http://127.0.0.1:8500: connection refused"))
    clock.advance(10)
    stale = cache.discover(QUERY)
    assert stale.stale
    assert stale.instances == good.instances
    assert stale.warnings == (
        "discovery failed: consul at http://127.0.0.1:8500: connection refused; serving a snapshot 10 s old",
    )
    assert not good.stale  # the original snapshot is untouched
    calls = fake.discover_calls
    clock.advance(2)  # within ttl of the failure: no new attempt, still stale
    assert cache.discover(QUERY).warnings[-1].endswith("serving a snapshot 12 s old")
    assert fake.discover_calls == calls
    clock.advance(288)  # 300 s: the last moment it is served
    assert cache.discover(QUERY).stale
    clock.advance(1)
    with pytest.raises(DiscoveryUnavailable) as caught:
        cache.discover(QUERY)
    assert str(caught.value) == (
        "consul at http://127.0.0.1:8500: connection refused; the last good snapshot of 'docker_registry' is "
        "301 s old, older than max_stale=300 s, so it is not served"
    )
    assert isinstance(caught.value.__cause__, DiscoveryUnavailable)


def test_recovery_ends_staleness(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=5.0, clock=clock, background=False)
    cache.discover(QUERY)
    fake.fail(DiscoveryUnavailable("down"))
    clock.advance(6)
    assert cache.discover(QUERY).stale
    fake.fail(None)
    fake.set_instances(B)
    clock.advance(5)
    back = cache.discover(QUERY)
    assert not back.stale
    assert back.instances == B
    assert back.warnings == ()


def test_no_snapshot_yet_means_the_failure_itself(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    fake.fail(DiscoveryUnavailable("consul: 500 No path to datacenter"))
    cache = _cache(caches, fake, clock=clock, background=False)
    with pytest.raises(DiscoveryUnavailable, match="No path to datacenter"):
        cache.discover(QUERY)
    fake.fail(None)
    assert cache.discover(QUERY).instances == A  # no negative caching without a snapshot to serve


def test_a_foreign_exception_becomes_a_discovery_error(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    fake.fail(TimeoutError("read timed out"))
    with pytest.raises(DiscoveryError) as caught:
        _cache(caches, fake, clock=clock, background=False).discover(QUERY)
    assert str(caught.value) == (
        "backend FakeBackend raised TimeoutError: read timed out; a backend should raise only DiscoveryError "
        "(report this to its author)"
    )
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_flapping_never_loses_the_snapshot(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=1.0, max_stale=60.0, clock=clock, background=False)
    cache.discover(QUERY)
    seen_stale = seen_fresh = 0
    for step in range(200):
        if step % 6 == 0:  # about one attempt in three fails (an attempt each second step)
            fake.fail_times(1, DiscoveryUnavailable(f"flap {step}"))
        if step % 7 == 0:
            fake.set_instances(B if fake.instances == A else A)
        clock.advance(0.7)
        found = cache.discover(QUERY)  # never raises: a failure never lasts max_stale
        assert found.instances in (A, B)
        if found.stale:
            seen_stale += 1
            assert found.warnings[-1].startswith("discovery failed: flap ")
        else:
            seen_fresh += 1
    assert seen_stale > 10
    assert seen_fresh > 10


def test_no_instances_error_is_served_stale_like_any_failure(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=1.0, clock=clock, background=False)
    cache.discover(QUERY)
    fake.fail(NoInstancesError("consul: service 'docker_registry' has no passing instance"))
    clock.advance(2)
    assert cache.discover(QUERY).stale


# -- slow answers and the herd ------------------------------------------------------------------


def test_one_refresh_at_a_time_others_serve_the_current_snapshot(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=0.05, clock=clock, background=False)
    cache.discover(QUERY)
    clock.advance(0.06)
    fake.gate = threading.Event()  # the refresh is held until the other 15 threads have their answers
    fake.set_instances(B)
    barrier = threading.Barrier(16)
    results: list[Discovery] = []

    def plan() -> None:
        barrier.wait()
        results.append(cache.discover(QUERY))

    threads = [threading.Thread(target=plan) for _ in range(16)]
    for thread in threads:
        thread.start()
    # Had the others waited for the refresh, they would never answer while it is held: this fails.
    _until(lambda: len(results) == 15 and fake.waiting == 1)
    fake.gate.set()
    for thread in threads:
        thread.join()
    assert fake.discover_calls == 2  # the first fill, then one refresh for 16 threads
    # Only the thread that refreshed got the new set; had the others waited for it, they would have it too.
    assert sorted(len(found.instances) for found in results) == [2] * 16
    assert [found.instances for found in results].count(B) == 1
    assert [found.instances for found in results].count(A) == 15
    assert not any(found.stale for found in results)


def test_threads_with_nothing_to_serve_wait_for_the_one_refresh(caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    fake.gate = threading.Event()  # the one refresh is held until the 7 other threads wait for it
    fake.fail(DiscoveryUnavailable("connection refused"))
    cache = _cache(caches, fake, background=False)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def plan() -> None:
        barrier.wait()
        try:
            cache.discover(QUERY)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=plan) for _ in range(8)]
    for thread in threads:
        thread.start()
    _until(lambda: fake.waiting == 1 and _waiting_in_the_cache(threads) == 7)
    fake.gate.set()
    for thread in threads:
        thread.join()
    assert fake.discover_calls == 1
    assert len(errors) == 8
    assert all(isinstance(error, DiscoveryUnavailable) for error in errors)
    assert len({id(error) for error in errors}) == 8  # each thread raises its own object
    assert {str(error) for error in errors} == {"connection refused"}


# -- the background watch -------------------------------------------------------------------------


def test_a_native_watch_keeps_the_cache_current_without_round_trips(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=0.01, watch_ttl=60.0, clock=clock)
    assert cache.discover(QUERY).instances == A
    _until(lambda: fake.watch_calls == 1)
    fake.set_instances(B)
    _until(lambda: cache.discover(QUERY).instances == B)
    for _ in range(200):
        assert cache.discover(QUERY).instances == B
    clock.advance(0.05)  # many ttl's: still no round trip, the watch vouches for the snapshot
    cache.discover(QUERY)
    assert fake.discover_calls == 1


def test_a_silent_watch_cannot_keep_an_outdated_snapshot_fresh_beyond_watch_ttl(
    clock: Clock, caches: list[CachingBackend]
) -> None:
    fake = FakeBackend(A, watch_errors="silent")
    cache = _cache(caches, fake, ttl=0.1, watch_ttl=60.0, max_stale=300.0, clock=clock)
    cache.discover(QUERY)
    fake.set_instances(B)  # only the watcher can bring this in: the clock stands still
    _until(lambda: cache.discover(QUERY).instances == B)
    fake.fail(DiscoveryUnavailable("consul: connection refused"))  # the watch goes quiet, as poll_watch would
    clock.advance(59)
    quiet = cache.discover(QUERY)
    assert not quiet.stale
    assert fake.discover_calls == 1
    clock.advance(2)  # past watch_ttl: the cache checks for itself and finds the outage
    checked = cache.discover(QUERY)
    assert fake.discover_calls == 2
    assert checked.stale
    assert checked.instances == B
    assert checked.warnings[-1] == "discovery failed: consul: connection refused; serving a snapshot 61 s old"


def test_an_error_mid_watch_falls_back_to_refreshing(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A, watch_errors="raise")
    cache = _cache(caches, fake, ttl=0.05, watch_ttl=60.0, max_stale=300.0, clock=clock)
    cache.discover(QUERY)
    fake.set_instances(B)
    _until(lambda: cache.discover(QUERY).instances == B)
    fake.fail(DiscoveryUnavailable("consul: 503 Service Unavailable"))  # the running watch raises
    _until(lambda: fake.watch_calls >= 2)  # the watcher gave up and is restarting
    clock.advance(1)  # past ttl: a watcher that is down vouches for nothing
    found = cache.discover(QUERY)
    assert found.stale
    assert found.instances == B
    fake.fail(None)
    fake.set_instances(A)
    clock.advance(1)
    assert cache.discover(QUERY).instances == A
    _until(lambda: fake.watch_calls >= 3)
    fake.set_instances(B)  # the restarted watcher brings changes in again
    _until(lambda: cache.discover(QUERY).instances == B)


def test_close_stops_the_watchers_and_closes_the_backend(caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = CachingBackend(fake, ttl=0.01)
    cache.discover(QUERY)
    cache.discover(ServiceQuery("other", default_port=1))
    _until(lambda: fake.watch_calls == 2)
    cache.close(timeout=5.0)
    cache.close()
    assert fake.close_calls == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("registry-config-cache:")]
    with pytest.raises(DiscoveryUnavailable, match="is closed; make a new one"):
        cache.discover(QUERY)


def test_polling_backends_get_no_background_thread(caches: list[CachingBackend]) -> None:
    static = StaticBackend(["10.0.0.1:5000"])
    cache = CachingBackend(static, ttl=0.0)
    caches.append(cache)
    before = {t.name for t in threading.enumerate()}
    cache.discover(QUERY)
    assert {t.name for t in threading.enumerate()} - before == set()


def test_its_watch_delegates_and_refreshes_the_cache(clock: Clock, caches: list[CachingBackend]) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=5.0, clock=clock, background=False)
    cache.discover(QUERY)
    stop = threading.Event()
    feed = cache.watch(QUERY, stop=stop)
    assert next(feed).instances == A
    fake.set_instances(B)
    assert next(feed).instances == B
    assert cache.discover(QUERY).instances == B
    assert fake.discover_calls == 1
    stop.set()
    assert list(feed) == []


# -- an unchanged snapshot stays the same object -------------------------------------------------------------


def test_an_equal_delivery_keeps_the_snapshot_already_served(caches: list[CachingBackend]) -> None:
    """The watch's first delivery repeats what discover returned: the cache keeps serving the first object.

    build_plan memoizes on the snapshot, so the same object makes a cached plan an identity check instead of
    a comparison of every instance.
    """
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=0.01, watch_ttl=60.0)
    first = cache.discover(QUERY)
    _until(lambda: fake.watch_resumed >= 1)  # the watcher has handled its first, equal, snapshot
    assert cache.discover(QUERY) is first
    spec = RegistrySpec.from_url("http://docker_registry.service.consul:8080")
    plan = build_plan(spec, cache)
    assert build_plan(spec, cache) is plan
    fake.set_instances(B)  # a different set replaces it
    _until(lambda: cache.discover(QUERY).instances == B)
    second = cache.discover(QUERY)
    assert second is not first
    assert cache.discover(QUERY) is second


def test_an_equal_refresh_keeps_the_snapshot_and_a_different_one_replaces_it(
    clock: Clock, caches: list[CachingBackend]
) -> None:
    fake = FakeBackend(A)
    cache = _cache(caches, fake, ttl=5.0, clock=clock, background=False)
    first = cache.discover(QUERY)
    clock.advance(6)
    again = cache.discover(QUERY)
    assert fake.discover_calls == 2
    assert again is first
    fake.set_instances(B)
    clock.advance(6)
    changed = cache.discover(QUERY)
    assert changed.instances == B
    assert changed is not first
    fake.set_instances(A)  # back to A, under a new index: equal instances, a different snapshot
    clock.advance(6)
    back = cache.discover(QUERY)
    assert back.instances == A
    assert back.index != first.index


def test_a_snapshot_that_cannot_be_hashed_is_still_stored(clock: Clock, caches: list[CachingBackend]) -> None:
    """A third-party backend may put anything in warnings: the identity trick must not break the cache."""

    class Odd(BackendBase):
        def __init__(self) -> None:
            self.calls = 0

        def discover(self, query: ServiceQuery) -> Discovery:
            self.calls += 1
            return Discovery(query, A, source="odd", warnings=[["not", "hashable"]])  # type: ignore[list-item]

    odd = Odd()
    cache = CachingBackend(odd, ttl=5.0, clock=clock, background=False)
    caches.append(cache)
    first = cache.discover(QUERY)
    clock.advance(6)
    second = cache.discover(QUERY)
    assert odd.calls == 2
    assert second == first
    assert second is not first  # not known equal by hash: stored as delivered


def test_native_watch_detection() -> None:
    class Custom(BackendBase):
        def watch(self, query: ServiceQuery, *, stop: object = None) -> Iterator[Discovery]:  # type: ignore[override]
            return iter(())

    class Declared(Custom):
        native_watch = False

    assert has_native_watch(FakeBackend())
    assert not has_native_watch(StaticBackend(["10.0.0.1"]))
    assert has_native_watch(Custom())
    assert not has_native_watch(Declared())
    assert CachingBackend(FakeBackend()).native_watch


@pytest.mark.parametrize(
    ("option", "value"), [("ttl", -1), ("max_stale", float("nan")), ("watch_ttl", "5"), ("ttl", True)]
)
def test_bad_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=f"CachingBackend {option}="):
        CachingBackend(FakeBackend(), **{option: value})  # type: ignore[arg-type]


# -- many threads ---------------------------------------------------------------------------------


def _instance_sets() -> list[tuple[ServiceInstance, ...]]:
    sets = []
    for n in range(12):
        members = [ServiceInstance(f"10.244.{n}.{k}", 8080 + (n + k) % 3) for k in range(1 + n % 5)]
        sets.append(Discovery(QUERY, members, source="x").instances)
    return sets


SPEC = RegistrySpec.from_url("http://docker_registry.service.consul:8080")


def _check_plan(plan: StagingPlan, sets: list[tuple[ServiceInstance, ...]]) -> None:
    """A plan consistent with one snapshot: flags and rules built from exactly the instances it holds."""
    assert plan.discovery.instances in sets, f"an inconsistent snapshot: {plan.discovery.endpoints}"
    assert plan.instances == plan.discovery.instances
    assert set(plan.insecure_registries) == {i.endpoint for i in plan.instances} | {SPEC.address}
    for instance in plan.instances:
        assert any(rule.allows(instance.address, instance.port) for rule in plan.egress_rules)
    held = {(i.address, i.port) for i in plan.instances}
    for other in {i for members in sets for i in members}:
        if (other.address, other.port) not in held:
            assert not any(rule.allows(other.address, other.port) for rule in plan.egress_rules)


@pytest.mark.parametrize("background", [True, False])
def test_16_threads_x_500_plans_while_instances_change(caches: list[CachingBackend], background: bool) -> None:
    sets = _instance_sets()
    fake = FakeBackend(sets[0])
    cache = _cache(caches, fake, ttl=0.002, max_stale=60.0, background=background)
    cache.discover(SPEC_QUERY)
    stop = threading.Event()
    published = {sets[0]}

    def churn() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            current = sets[n % len(sets)]
            published.add(current)
            fake.set_instances(current)
            if n % 5 == 0:
                fake.fail_times(3, DiscoveryUnavailable(f"flap {n}"))
            stop.wait(0.001)  # pacing the churn, not waiting for anything

    errors: list[BaseException] = []
    seen: list[set[tuple[ServiceInstance, ...]]] = [set() for _ in range(16)]
    stale = [0] * 16
    barrier = threading.Barrier(16)

    def plan(worker: int) -> None:
        barrier.wait()
        try:
            for _ in range(500):
                made = build_plan(SPEC, cache)
                _check_plan(made, sets)
                if made.discovery.stale:
                    stale[worker] += 1
                    assert made.discovery.warnings[-1].startswith("discovery failed: flap ")
                seen[worker].add(made.discovery.instances)
        except BaseException as exc:
            errors.append(exc)

    churner = threading.Thread(target=churn)
    churner.start()
    workers = [threading.Thread(target=plan, args=(n,)) for n in range(16)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    stop.set()
    churner.join()
    assert errors == [], errors[:3]
    everything = set().union(*seen)
    assert everything <= published
    assert len(everything) > 1, "the instances changed underneath, the threads must have seen it"
    # No thundering herd: far fewer backend calls than plans.
    assert fake.discover_calls < 16 * 500 / 4, (fake.discover_calls, elapsed)
    print(
        f"16x500 plans in {elapsed:.2f} s, {fake.discover_calls} backend calls, {len(everything)} sets seen, "
        f"{sum(stale)} stale plans"
    )
