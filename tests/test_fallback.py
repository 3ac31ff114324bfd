"""FallbackBackend: the first answer wins, and when none comes, every cause is carried and shown."""

from __future__ import annotations

import threading

import pytest

from registry_config.discovery.fallback import FallbackBackend
from registry_config.discovery.model import ServiceInstance, ServiceQuery
from registry_config.discovery.static import StaticBackend
from registry_config.errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryUnavailable,
    InvalidInput,
)
from registry_config.testing.fakes import FakeBackend

QUERY = ServiceQuery("docker_registry", default_port=8080)
A = [ServiceInstance("10.244.2.6", 8080), ServiceInstance("10.244.2.7", 8080)]
B = [ServiceInstance("10.244.9.9", 8080)]


def _down(source: str, error: DiscoveryError | None = None) -> FakeBackend:
    fake = FakeBackend(source=source)
    fake.fail(error or DiscoveryUnavailable(f"{source}: connection refused"))
    return fake


def test_the_first_answer_wins_and_the_others_are_not_asked() -> None:
    first, second = FakeBackend(A, source="consul"), FakeBackend(B, source="static")
    found = FallbackBackend([first, second]).discover(QUERY)
    assert found.endpoints == ("10.244.2.6:8080", "10.244.2.7:8080")
    assert found.source == "consul"
    assert found.warnings == ()
    assert second.discover_calls == 0


def test_an_empty_answer_is_an_answer() -> None:
    assert FallbackBackend([FakeBackend([]), FakeBackend(B)]).discover(QUERY).instances == ()


def test_a_failing_primary_falls_back_with_a_warning() -> None:
    primary = _down("consul")
    found = FallbackBackend([primary, FakeBackend(B, source="static")]).discover(QUERY)
    assert found.endpoints == ("10.244.9.9:8080",)
    assert found.warnings == (
        "discovery backend #1 FakeBackend(0 instances, source='consul') failed: consul: connection refused; "
        "answered by backend #2",
    )


def test_all_unavailable_is_unavailable_with_every_cause() -> None:
    first, second = _down("consul"), _down("dns")
    with pytest.raises(DiscoveryUnavailable) as caught:
        FallbackBackend([first, second]).discover(QUERY)
    error = caught.value
    assert str(error) == (
        "all 2 discovery backends failed for 'docker_registry': "
        "#1 FakeBackend(0 instances, source='consul'): DiscoveryUnavailable: consul: connection refused; "
        "#2 FakeBackend(0 instances, source='dns'): DiscoveryUnavailable: dns: connection refused"
    )
    assert [str(cause) for cause in error.causes] == ["consul: connection refused", "dns: connection refused"]
    assert all(isinstance(cause, DiscoveryUnavailable) for cause in error.causes)


def test_mixed_failures_are_a_plain_discovery_error() -> None:
    with pytest.raises(DiscoveryError) as caught:
        FallbackBackend([_down("consul", DiscoveryAuthError("403 ACL not found")), _down("dns")]).discover(QUERY)
    assert type(caught.value) is DiscoveryError
    assert [type(cause) for cause in caught.value.causes] == [DiscoveryAuthError, DiscoveryUnavailable]


def test_all_auth_failures_stay_auth_errors() -> None:
    with pytest.raises(DiscoveryAuthError):
        FallbackBackend([_down("a", DiscoveryAuthError("403")), _down("b", DiscoveryAuthError("403"))]).discover(QUERY)


def test_a_foreign_exception_is_wrapped_as_a_cause() -> None:
    broken = FakeBackend(source="cmdb")
    broken.fail(ConnectionResetError("reset by peer"))
    with pytest.raises(DiscoveryError) as caught:
        FallbackBackend([broken]).discover(QUERY)
    (cause,) = caught.value.causes
    assert isinstance(cause, DiscoveryError)
    assert str(cause) == "FakeBackend raised ConnectionResetError: reset by peer"
    assert isinstance(cause.__cause__, ConnectionResetError)


def test_it_needs_backends() -> None:
    with pytest.raises(InvalidInput, match="at least one backend"):
        FallbackBackend([])
    with pytest.raises(InvalidInput, match="backend #2 is a str, not a discovery backend"):
        FallbackBackend([FakeBackend(), "consul://h"])  # type: ignore[list-item]


def test_watch_follows_the_first_backend_that_starts() -> None:
    primary, secondary = _down("consul"), FakeBackend(A, source="static")
    stop = threading.Event()
    feed = FallbackBackend([primary, secondary]).watch(QUERY, stop=stop)
    first = next(feed)
    assert first.endpoints == ("10.244.2.6:8080", "10.244.2.7:8080")
    assert "failed" in first.warnings[0]
    secondary.set_instances(B)
    assert next(feed).endpoints == ("10.244.9.9:8080",)
    stop.set()
    assert list(feed) == []


def test_watch_that_breaks_mid_way_starts_again_from_the_primary() -> None:
    primary, secondary = FakeBackend(A, source="consul"), FakeBackend(B, source="static")
    fallback = FallbackBackend([primary, secondary])
    fallback.retry_delay = 0.01
    stop = threading.Event()
    feed = fallback.watch(QUERY, stop=stop)
    assert next(feed).source == "consul"
    primary.fail(DiscoveryUnavailable("consul: connection reset"))  # the running watch raises this
    moved = next(feed)
    assert moved.source == "static"
    assert moved.endpoints == ("10.244.9.9:8080",)
    primary.fail(None)
    secondary.fail(DiscoveryUnavailable("static gone"))  # the secondary's watch breaks: back to the primary
    back = next(feed)
    assert back.source == "consul"
    stop.set()
    assert list(feed) == []


def test_watch_when_no_backend_starts_raises_every_cause() -> None:
    with pytest.raises(DiscoveryUnavailable) as caught:
        next(FallbackBackend([_down("consul"), _down("dns")]).watch(QUERY, stop=threading.Event()))
    assert len(caught.value.causes) == 2


def test_close_closes_every_backend_once_even_if_one_fails() -> None:
    class BadClose(FakeBackend):
        def close(self) -> None:
            super().close()
            raise DiscoveryUnavailable("close failed")

    first, second = BadClose(), FakeBackend()
    with FallbackBackend([first, second]) as fallback:
        pass
    fallback.close()
    assert (first.close_calls, second.close_calls) == (1, 1)


def test_repr_lists_the_backends() -> None:
    fallback = FallbackBackend([StaticBackend(["10.0.0.1:5000"]), FakeBackend()])
    assert (
        repr(fallback) == "FallbackBackend([StaticBackend(['10.0.0.1:5000']), FakeBackend(0 instances, source='fake')])"
    )
