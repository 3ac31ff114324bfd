"""The conformance suite can fail: broken backends are caught, each by the test that owns the promise."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import pytest

from registry_config.discovery.backend import BackendBase, StopSignal
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.testing.conformance import BackendConformance
from registry_config.testing.fakes import FakeBackend


class _Suite(BackendConformance):
    watch_timeout = 2.0
    stop_timeout = 0.5
    quiet_period = 0.3


def _run(suite: type[BackendConformance], test: str) -> None:
    instance = suite()
    instance.setup_method(None)
    try:
        getattr(instance, test)()
    finally:
        instance.teardown_method(None)


class _DropsOne(FakeBackend):
    def discover(self, query: ServiceQuery) -> Discovery:
        found = super().discover(query)
        return Discovery(query, found.instances[1:], source="drops-one")


class _IgnoresStop(FakeBackend):
    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        yield self.discover(query)
        deadline = time.monotonic() + 3.0  # a watch that ignores stop (bounded, to let the test end)
        while time.monotonic() < deadline:
            time.sleep(0.01)


class _Chatty(BackendBase):
    """Yields a snapshot at every poll, changed or not."""

    def __init__(self, instances: Sequence[ServiceInstance]) -> None:
        self.instances = list(instances)

    def discover(self, query: ServiceQuery) -> Discovery:
        return Discovery(query, self.instances, source="chatty")

    def watch(self, query: ServiceQuery, *, stop: StopSignal | None = None) -> Iterator[Discovery]:
        while stop is None or not stop.is_set():
            yield self.discover(query)
            time.sleep(0.05)


class _ForeignErrors(BackendBase):
    def discover(self, query: ServiceQuery) -> Discovery:
        raise ConnectionRefusedError("refused")


class _CloseTwiceFails(FakeBackend):
    def close(self) -> None:
        if self.closed:
            raise RuntimeError("already closed")
        super().close()


class DropsOne(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> FakeBackend:
        return _DropsOne(instances)


class IgnoresStop(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> FakeBackend:
        return _IgnoresStop(instances)


class Chatty(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> _Chatty:
        return _Chatty(instances)

    def replace_instances(self, backend: object, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, _Chatty)
        backend.instances = list(instances)


class ForeignErrors(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> FakeBackend:
        return FakeBackend(instances)

    def make_failing_backend(self) -> _ForeignErrors:
        return _ForeignErrors()


class CloseTwiceFails(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> FakeBackend:
        return _CloseTwiceFails(instances)


class NotABackend(_Suite):
    def make_backend(self, instances: Sequence[ServiceInstance]) -> object:  # type: ignore[override]
        return object()


@pytest.mark.parametrize(
    ("suite", "test", "message"),
    [
        (DropsOne, "test_discover_finds_exactly_the_instances", r"discovered \[.*\], expected \['10.244.2.6:8080'"),
        (IgnoresStop, "test_watch_returns_after_stop", "watch still running 0.5 s after stop was set"),
        (Chatty, "test_watch_yields_only_on_change", "although the instances did not change"),
        (ForeignErrors, "test_failures_are_discovery_errors", "discover raised ConnectionRefusedError"),
        (NotABackend, "test_is_a_discovery_backend", "object lacks part of the protocol"),
    ],
)
def test_the_suite_catches_a_broken_backend(suite: type[BackendConformance], test: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        _run(suite, test)


def test_close_twice_failing_is_caught() -> None:
    with pytest.raises(RuntimeError, match="already closed"):
        _run(CloseTwiceFails, "test_close_is_idempotent")


def test_undefined_hooks_skip_with_the_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match="replace_instances"):
        _run(DropsOne, "test_watch_yields_only_on_change")
    with pytest.raises(pytest.skip.Exception, match="make_failing_backend"):
        _run(DropsOne, "test_failures_are_discovery_errors")


def test_the_base_class_is_not_collected_and_the_kit_does_not_import_pytest() -> None:
    assert not BackendConformance.__name__.startswith("Test")
    code = (
        "import sys, registry_config.testing.conformance, registry_config.testing.fakes; "
        "assert 'pytest' not in sys.modules, 'the test kit imported pytest'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
