"""The conformance suite can fail: every check is shown failing on a backend broken in the way it guards against.

The reference suite (:class:`Reference`, over :class:`FakeBackend` with a
catalog) passes every check; each broken backend of ``broken_backends.py``
fails the check that owns the promise it breaks. The how-to's backend, broken
in the two ways a reader of the how-to reported, fails too.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import broken_backends as broken
import pytest
from _integration import child_pytest_env

from registry_config.address import IPAddress
from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.discovery.registry import BackendRegistry
from registry_config.discovery.static import StaticBackend
from registry_config.errors import DiscoveryProtocolError, DiscoveryUnavailable
from registry_config.testing import conformance
from registry_config.testing.conformance import BackendConformance, Registration, unsupported
from registry_config.testing.fakes import FakeBackend

HOWTO = Path(__file__).resolve().parent.parent / "docs" / "howto"


class Reference(BackendConformance):
    """Every hook defined, over FakeBackend: passes every check (so the failures below are the fixtures')."""

    watch_timeout = 2.0
    stop_timeout = 0.5
    backend_class: type[FakeBackend] = FakeBackend

    def setup_method(self, method: object) -> None:
        super().setup_method(method)
        self.urls: dict[str, list[ServiceInstance]] = {}
        self.backend_registry = BackendRegistry(builtins=False, entry_points=False)
        self.backend_registry.register("fake", self._from_url)

    def _from_url(self, url: str) -> DiscoveryBackend:
        return FakeBackend(catalog=[Registration(self.service, i) for i in self.urls[url]])

    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        return self.backend_class(catalog=registrations)

    def replace_instances(self, backend: DiscoveryBackend, instances: Sequence[ServiceInstance]) -> None:
        assert isinstance(backend, FakeBackend)
        backend.set_catalog([Registration(self.service, i) for i in instances])

    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        return StaticBackend([str(address) for address in addresses])

    def make_failing_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryUnavailable("fake: connection refused"))
        return fake

    def make_garbled_backend(self) -> DiscoveryBackend:
        fake = FakeBackend()
        fake.fail(DiscoveryProtocolError("fake: the answer is not JSON"))
        return fake

    def is_closed(self, backend: DiscoveryBackend) -> bool:
        assert isinstance(backend, FakeBackend)
        return backend.closed

    def backend_url(self, instances: Sequence[ServiceInstance]) -> str:
        url = f"fake:{len(self.urls)}"
        self.urls[url] = list(instances)
        return url


def _over(backend: type[FakeBackend], **attributes: Any) -> type[Reference]:
    return type(f"Over{backend.__name__}", (Reference,), {"backend_class": backend, **attributes})


class NotABackend(Reference):
    def make_catalog_backend(self, registrations: Sequence[Registration]) -> DiscoveryBackend:
        return object()  # type: ignore[return-value]


class IgnoresDefaultPort(Reference):
    def make_portless_backend(self, addresses: Sequence[IPAddress]) -> DiscoveryBackend:
        return StaticBackend([f"{ServiceInstance(address, 80).endpoint}" for address in addresses])


class ForeignErrors(Reference):
    def make_failing_backend(self) -> DiscoveryBackend:
        return broken.ForeignErrors()


class GarbledTypeError(Reference):
    def make_garbled_backend(self) -> DiscoveryBackend:
        return broken.GarbledTypeError()


class UrlIgnored(Reference):
    def _from_url(self, url: str) -> DiscoveryBackend:
        return FakeBackend()  # a factory that forgets to read its URL


class Undeclared(Reference):
    """No query field declared: a bare TypeError for a field it does not honour still fails."""

    query_fields = frozenset()

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return broken.TypeErrorForWhatItIgnores(instances)


def _run(suite: type[BackendConformance], test: str) -> None:
    instance = suite()
    instance.setup_method(None)
    try:
        method = getattr(instance, test)
        assert method is not None, f"{suite.__name__}.{test} is not collected"
        method()
    finally:
        instance.teardown_method(None)


CHECKS = sorted(name for name in vars(BackendConformance) if name.startswith("test_"))

BROKEN: list[tuple[type[BackendConformance], str, str]] = [
    (NotABackend, "test_is_a_discovery_backend", "object lacks part of the protocol"),
    (_over(broken.DropsOne), "test_discover_finds_exactly_the_instances", r"discovered \[.*\], expected \['10"),
    (_over(broken.PortZeroLeaks), "test_instances_are_valid", "port 0 is not in 1..65535"),
    (_over(broken.DropsMetadata), "test_instances_carry_their_own_metadata_in_any_order", "carries .*'node': None"),
    (_over(broken.ShufflesMetadata), "test_instances_carry_their_own_metadata_in_any_order", "expected"),
    (_over(broken.IgnoresName), "test_name_selects_the_service", "among other services: discovered"),
    (_over(broken.TypeErrorForUnknown), "test_name_selects_the_service", "unknown service: discover raised TypeError"),
    (_over(broken.IgnoresDatacenter), "test_datacenter_selects_its_instances", "own datacenter: discovered"),
    (_over(broken.TypeErrorForUnknown), "test_datacenter_selects_its_instances", "discover raised TypeError"),
    (_over(broken.IgnoresTags), "test_tags_select_their_instances", "tag 'primary': discovered"),
    (_over(broken.TypeErrorForUnknown), "test_tags_select_their_instances", "unknown tag: discover raised TypeError"),
    (Undeclared, "test_name_selects_the_service", "another service: discover raised TypeError"),
    (Undeclared, "test_datacenter_selects_its_instances", "another datacenter: discover raised TypeError"),
    (Undeclared, "test_tags_select_their_instances", "with a tag: discover raised TypeError"),
    (_over(broken.EmptyIsAnOutage), "test_no_instances_is_an_empty_answer_or_no_instances_error", "Unavailable"),
    (_over(broken.ReadsOnce), "test_discover_answers_alike_every_time_and_from_every_thread", "differs from"),
    (IgnoresDefaultPort, "test_default_port_applies_to_portless_answers", "expected port 5000"),
    (ForeignErrors, "test_failures_are_discovery_errors", "discover raised ConnectionRefusedError"),
    (GarbledTypeError, "test_garbled_answers_are_discovery_errors", "discover raised TypeError"),
    (UrlIgnored, "test_builds_from_its_url", "built from 'fake:0': discovered \\[\\]"),
    (_over(broken.FirstSnapshotEmpty), "test_watch_yields_a_first_snapshot", r"first snapshot: discovered \[\]"),
    (_over(broken.IgnoresStop), "test_watch_returns_after_stop", "watch still running 0.5 s after stop was set"),
    (_over(broken.IgnoresStop), "test_watch_with_stop_already_set_returns", "although stop was set before"),
    (_over(broken.Chatty), "test_watch_follows_changes_without_repeating_itself", "did not change"),
    (_over(broken.YieldsTwice), "test_watch_follows_changes_without_repeating_itself", "same instances again"),
    # A window twice the period: a starved watch thread under load still repeats itself inside it.
    (
        _over(broken.PeriodicDuplicate, watch_window=3.0),
        "test_watch_follows_changes_without_repeating_itself",
        r"(step |change #)\d+.*(did not change|previous snapshot again|as well)",
    ),
    (_over(broken.CloseTwiceFails), "test_close_is_idempotent", "already closed"),
    (_over(broken.CloseDoesNothing), "test_close_takes_effect", "not closed 0.5 s after close"),
    (_over(broken.ExitDoesNothing), "test_exit_closes", "not closed 0.5 s after leaving its with block"),
    (_over(broken.EnterReturnsNone), "test_is_a_context_manager", "__enter__ returned None"),
]


@pytest.mark.parametrize("test", CHECKS)
def test_the_reference_backend_passes(test: str) -> None:
    _run(Reference, test)


@pytest.mark.parametrize(
    ("suite", "test", "message"), BROKEN, ids=[f"{suite.__name__}-{test[5:]}" for suite, test, _ in BROKEN]
)
def test_the_suite_catches_a_broken_backend(suite: type[BackendConformance], test: str, message: str) -> None:
    with pytest.raises((AssertionError, RuntimeError), match=message):
        _run(suite, test)


def test_every_check_fails_on_some_broken_backend() -> None:
    assert len(CHECKS) >= 21
    assert sorted({test for _, test, _ in BROKEN}) == CHECKS


# -- hooks: reported when undefined, left out when declared unsupported ----------------------------


class Minimal(BackendConformance):
    query_fields = frozenset()

    def make_backend(self, instances: Sequence[ServiceInstance]) -> DiscoveryBackend:
        return FakeBackend(instances)


MinimalDeclared: type[Minimal] = type(
    "MinimalDeclared", (Minimal,), {hook: unsupported("the fixture says so") for hook in conformance._HOOK_TESTS}
)


HOOK_CHECKS = [(hook, test) for hook, tests in conformance._HOOK_TESTS.items() for test in tests]


@pytest.mark.parametrize(("hook", "test"), HOOK_CHECKS)
def test_an_undefined_hook_skips_saying_how_to_declare_it(
    hook: str, test: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(conformance.REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=rf"does not define {hook}\(.*: {hook} = unsupported\('why'\)"):
        _run(Minimal, test)


@pytest.mark.parametrize(("hook", "test"), HOOK_CHECKS)
def test_an_undefined_hook_fails_when_integration_is_required(
    hook: str, test: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(conformance.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"does not define {hook}.*REGISTRY_CONFIG_REQUIRE_INTEGRATION=1"):
        _run(Minimal, test)


def test_a_declared_field_without_a_catalog_hook_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoCatalog(Minimal):
        query_fields = frozenset({"name"})

    monkeypatch.setenv(conformance.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"honours the query's name .*query_fields = frozenset\(\[\]\)"):
        _run(NoCatalog, "test_name_selects_the_service")


def test_a_hook_declared_unsupported_leaves_its_checks_out() -> None:
    for test in (test for tests in conformance._HOOK_TESTS.values() for test in tests):
        assert getattr(MinimalDeclared, test) is None, test
        assert callable(getattr(Minimal, test)), test

    class SupportedAgain(MinimalDeclared):  # type: ignore[valid-type,misc]
        def is_closed(self, backend: DiscoveryBackend) -> bool:
            return False

    assert callable(SupportedAgain.test_close_takes_effect)
    assert SupportedAgain.test_builds_from_its_url is None


def test_declarations_are_checked_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match=r"query_fields: unknown \['tag'\]"):
        type("Typo", (Minimal,), {"query_fields": frozenset({"tag"})})
    with pytest.raises(TypeError, match=r"instance_fields: unknown \['address'\]"):
        type("Typo", (Minimal,), {"instance_fields": frozenset({"address", "node"})})
    with pytest.raises(TypeError, match="say why"):
        unsupported("")


def test_the_suite_collects_no_declared_hook_check(tmp_path: Path) -> None:
    (tmp_path / "test_declared.py").write_text(
        "from registry_config.testing.conformance import BackendConformance, unsupported\n"
        "from registry_config.testing.fakes import FakeBackend\n"
        "\n"
        "class TestDeclared(BackendConformance):\n"
        "    query_fields = frozenset()\n"
        + "".join(f"    {hook} = unsupported('the test says so')\n" for hook in conformance._HOOK_TESTS)
        + "\n"
        "    def make_backend(self, instances):\n"
        "        return FakeBackend(instances)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "test_declared.py"],
        cwd=tmp_path,
        env=child_pytest_env(**{conformance.REQUIRE_VARIABLE: "1"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    expected = len(CHECKS) - sum(len(tests) for tests in conformance._HOOK_TESTS.values())
    assert result.stdout.strip().splitlines()[-1].startswith(f"{expected} passed in"), result.stdout[-500:]


# -- the how-to's backend, broken as a reader broke it ---------------------------------------------


@pytest.fixture
def howto(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The how-to's test module (and so its backend), imported from docs/howto as a reader runs it."""
    monkeypatch.syspath_prepend(str(HOWTO))
    for name in ("inventory_backend", "test_inventory_backend"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield importlib.import_module("test_inventory_backend")
    for name in ("inventory_backend", "test_inventory_backend"):
        sys.modules.pop(name, None)


def _howto_suite(howto: ModuleType, discover: Any) -> type[BackendConformance]:
    """The how-to's own test class, over an InventoryBackend whose ``discover`` is ``discover``."""
    base = howto.InventoryBackend
    variant = type("BrokenInventoryBackend", (base,), {"discover": discover})

    def make_catalog_backend(self: Any, registrations: Sequence[Registration]) -> DiscoveryBackend:
        made = howto.TestInventoryBackend.make_catalog_backend(self, registrations)
        return variant(made.path, poll_interval=made.poll_interval)  # type: ignore[no-any-return]

    def make_garbled_backend(self: Any) -> DiscoveryBackend:
        return variant(howto.TestInventoryBackend.make_garbled_backend(self).path)  # type: ignore[no-any-return]

    suite: type[BackendConformance] = type(
        "BrokenHowto",
        (howto.TestInventoryBackend,),
        {"make_catalog_backend": make_catalog_backend, "make_garbled_backend": make_garbled_backend},
    )
    return suite


def test_the_howto_backend_passes_as_shipped(howto: ModuleType) -> None:
    for test in CHECKS:
        if getattr(howto.TestInventoryBackend, test) is not None:
            _run(howto.TestInventoryBackend, test)


def test_the_howto_backend_returning_every_service_fails(howto: ModuleType) -> None:
    def discover(self: Any, query: ServiceQuery) -> Discovery:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        found = [
            instance
            for service in data
            for instance in howto.InventoryBackend.discover(self, ServiceQuery(service, tags=query.tags)).instances
        ]
        return Discovery(query, found, source="inventory")

    with pytest.raises(AssertionError, match="'docker_registry' among other services: discovered"):
        _run(_howto_suite(howto, discover), "test_name_selects_the_service")


def test_the_howto_backend_letting_json_errors_escape_fails(howto: ModuleType) -> None:
    def discover(self: Any, query: ServiceQuery) -> Discovery:
        json.loads(self.path.read_text(encoding="utf-8"))  # unguarded: a garbled file raises JSONDecodeError
        return howto.InventoryBackend.discover(self, query)  # type: ignore[no-any-return]

    with pytest.raises(AssertionError, match="garbled source: discover raised JSONDecodeError"):
        _run(_howto_suite(howto, discover), "test_garbled_answers_are_discovery_errors")


def test_the_docstring_example_runs_against_the_howto_backend(howto: ModuleType) -> None:
    """The module docstring's example uses the how-to's own helper, as it is shipped, and passes."""
    doc = conformance.__doc__ or ""
    lines = doc.split("helper)::\n", 1)[-1].splitlines()
    end = next(n for n, line in enumerate(lines) if line and not line.startswith("    "))
    code = "\n".join(line[4:] for line in lines[:end])
    assert "class TestInventoryBackend(BackendConformance)" in code, doc[:2000]
    namespace: dict[str, Any] = {}
    exec(compile(code, "conformance-docstring", "exec"), namespace)  # noqa: S102 (our own docstring)
    suite = namespace["TestInventoryBackend"]
    for test in ("test_name_selects_the_service", "test_tags_select_their_instances"):
        _run(suite, test)
    _run(suite, "test_instances_carry_their_own_metadata_in_any_order")
    _run(suite, "test_watch_follows_changes_without_repeating_itself")


def test_the_base_class_is_not_collected_and_the_kit_does_not_import_pytest() -> None:
    assert not BackendConformance.__name__.startswith("Test")
    code = (
        "import sys, registry_config.testing.conformance, registry_config.testing.fakes; "
        "assert 'pytest' not in sys.modules, 'the test kit imported pytest'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
