"""The backend registry: names, lazy imports, entry points, install hints and redaction."""

from __future__ import annotations

import importlib.metadata
import ipaddress
import logging
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config.discovery.backend import DiscoveryBackend
from registry_config.discovery.model import ServiceQuery
from registry_config.discovery.registry import (
    ENTRY_POINT_GROUP,
    BackendInfo,
    BackendRegistry,
    available_backends,
    backend_from_url,
    backend_name,
)
from registry_config.discovery.static import StaticBackend
from registry_config.errors import InvalidAddress, InvalidInput, RegistryConfigError, UnknownBackendError
from registry_config.redact import MARK, redact
from registry_config.testing.fakes import FakeBackend

QUERY = ServiceQuery("docker_registry", default_port=8080)


def _endpoints(backend: DiscoveryBackend) -> tuple[str, ...]:
    return backend.discover(QUERY).endpoints


@pytest.fixture
def no_entry_points(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Entry points replaced by an empty list; the list of calls shows when they were read."""
    calls: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        return []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return calls


def _fake_entry_points(
    monkeypatch: pytest.MonkeyPatch, points: list[tuple[str, str]], calls: list[str] | None = None
) -> None:
    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        if calls is not None:
            calls.append(group)
        assert group == ENTRY_POINT_GROUP
        return [importlib.metadata.EntryPoint(name, value, group) for name, value in points]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module ``rc_test_plugin`` with a backend class, which nothing has imported yet."""
    (tmp_path / "rc_test_plugin.py").write_text(
        textwrap.dedent(
            """
            from registry_config.discovery.static import StaticBackend

            class Plugin:
                @staticmethod
                def from_url(url):
                    return StaticBackend([url.partition(":")[2]])

            NOT_CALLABLE = 42

            def returns_junk(url):
                return "not a backend"

            def raises_value_error(url):
                raise ValueError("cannot parse " + url)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rc_test_plugin", raising=False)
    yield "rc_test_plugin"
    sys.modules.pop("rc_test_plugin", None)


# -- built-ins --------------------------------------------------------------------------------


def test_static_url_lists_entries_with_and_without_ports() -> None:
    backend = backend_from_url("static:10.0.0.1:8080,[fd00::1]:5000,10.0.0.2")
    assert isinstance(backend, StaticBackend)
    assert _endpoints(backend) == ("10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:5000")


def test_static_url_resolves_names_when_discovering() -> None:
    backend = backend_from_url("static://localhost:5000")
    assert ipaddress.ip_address("127.0.0.1") in {i.address for i in backend.discover(QUERY).instances}


def test_static_url_spaces_around_entries_are_ignored() -> None:
    assert _endpoints(backend_from_url("static:10.0.0.1:8080, 10.0.0.2:8080")) == ("10.0.0.1:8080", "10.0.0.2:8080")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("static:10.0.0.1:8080,,10.0.0.2", "static entry #1: the address is empty"),
        ("static:10.0.0.1:99999", "static entry #0: port '99999' is not a number in 1..65535"),
        ("static:http://10.0.0.1", "static entry #0: 'http://10.0.0.1' has a scheme"),
        ("static:10.0.0.1\n", "static entry #0: '10.0.0.1\\n' contains '\\n' at column 8"),
    ],
)
def test_static_url_refuses_bad_entries(url: str, message: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        backend_from_url(url)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("url", ["static:", "static://", "static: "])
def test_static_url_without_entries_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="lists no instance; write static:HOST"):
        backend_from_url(url)


def test_consul_and_dns_builtins_are_their_backends() -> None:
    from registry_config.discovery.consul import ConsulBackend
    from registry_config.discovery.dns import DnsBackend

    consul = backend_from_url("consul://127.0.0.1:8500?dc=dc1")
    assert isinstance(consul, ConsulBackend)
    assert "dc1" in repr(consul)
    assert "https://127.0.0.1:8500" in repr(backend_from_url("consul+https://127.0.0.1:8500"))
    assert isinstance(backend_from_url("CONSUL://127.0.0.1:8500"), ConsulBackend)
    assert isinstance(backend_from_url("dns://127.0.0.1:53"), DnsBackend)
    assert isinstance(backend_from_url("dns:"), DnsBackend)
    for backend in (consul,):
        backend.close()


def test_the_scheme_before_plus_names_the_backend() -> None:
    assert backend_name("consul+https://h:8501") == "consul"
    assert backend_name("Static:10.0.0.1") == "static"
    assert backend_name("my-cmdb.v2+grpc://x") == "my-cmdb.v2"


@pytest.mark.parametrize("url", ["10.0.0.1:8080", "", ":x", "+consul://h", "[::1]:80", "-a:b"])
def test_text_without_a_backend_name_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput, match="does not start with a backend name"):
        backend_from_url(url)


def test_unknown_name_lists_the_known_ones(no_entry_points: list[str]) -> None:
    registry = BackendRegistry()
    with pytest.raises(UnknownBackendError) as caught:
        registry.from_url("kubernetes://cluster")
    assert str(caught.value) == (
        "no discovery backend is named 'kubernetes'; known backends: consul, dns, static. "
        "Third-party backends register through the entry-point group 'registry_config.backends'."
    )
    assert isinstance(caught.value, LookupError)


def test_host_port_mistaken_for_a_backend_gets_a_hint(no_entry_points: list[str]) -> None:
    with pytest.raises(UnknownBackendError, match=r"looks like host:port; for a fixed list write static:registry\.i"):
        BackendRegistry().from_url("registry.internal:5000")


# -- missing extras ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "module", "url"), [("consul", "consul", "consul://h:8500"), ("dns", "dns", "dns:")])
def test_builtin_with_its_extra_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, no_entry_points: list[str], name: str, module: str, url: str
) -> None:
    # Make the extra's top-level module unimportable and our module not yet imported.
    for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, f"registry_config.discovery.{name}", raising=False)
    registry = BackendRegistry()
    info = registry.available()[name]
    assert not info.installed
    assert info.install_hint == f"pip install 'registry-config[{name}]'"
    # The message is ours or, when the backend module checks for itself, the backend's: both name the extra.
    with pytest.raises(UnknownBackendError, match=rf"pip install '?registry-config\[{name}\]"):
        registry.from_url(url)


def test_missing_extra_at_module_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = BackendRegistry(entry_points=False)
    registry.unregister("consul")
    # A module that imports its extra at the top, as a built-in may: the ImportError names the extra's module.
    monkeypatch.setitem(sys.modules, "consul", None)
    monkeypatch.setitem(sys.modules, "rc_test_needs_consul", None)
    registry._entries["consul"] = type(registry._entries["static"])(
        BackendInfo("consul", "rc_test_needs_consul:from_url", "built-in", "consul", ("consul",))
    )
    with pytest.raises(UnknownBackendError) as caught:
        registry.from_url("consul://h")
    assert str(caught.value) == (
        "the 'consul' backend needs the 'consul' extra, which is not installed: pip install 'registry-config[consul]'"
    )


def test_import_error_inside_a_factory_also_gets_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = BackendRegistry(entry_points=False)

    def factory(url: str) -> DiscoveryBackend:
        raise ModuleNotFoundError("No module named 'consul'", name="consul")

    registry.register("consul", factory, replace=True)
    monkeypatch.setitem(sys.modules, "consul", None)
    with pytest.raises(UnknownBackendError, match=r"cannot be imported: No module named 'consul'"):
        registry.from_url("consul://h")


# -- registration -----------------------------------------------------------------------------


def test_register_a_callable() -> None:
    registry = BackendRegistry(entry_points=False)
    seen: list[str] = []

    def factory(url: str) -> DiscoveryBackend:
        seen.append(url)
        return FakeBackend()

    registry.register("fake", factory)
    backend = registry.from_url("fake+x://anything?opt=1")
    assert isinstance(backend, FakeBackend)
    assert seen == ["fake+x://anything?opt=1"]
    assert registry.available()["fake"] == BackendInfo("fake", f"{__name__}:{factory.__qualname__}", "registered")


def test_register_module_attr_is_imported_lazily_with_a_dotted_attribute(plugin_module: str) -> None:
    registry = BackendRegistry(entry_points=False)
    registry.register("plug", f"{plugin_module}:Plugin.from_url")
    assert plugin_module not in sys.modules
    assert registry.available()["plug"].target == "rc_test_plugin:Plugin.from_url"
    assert plugin_module not in sys.modules
    assert _endpoints(registry.from_url("plug:10.9.8.7:5000")) == ("10.9.8.7:5000",)
    assert plugin_module in sys.modules


def test_a_taken_name_needs_replace() -> None:
    registry = BackendRegistry(entry_points=False)
    with pytest.raises(InvalidInput) as caught:
        registry.register("static", lambda url: FakeBackend())
    assert str(caught.value) == (
        "backend 'static' is already registered (built-in, registry_config.discovery.registry:static_from_url); "
        "pass replace=True to replace it"
    )
    registry.register("static", lambda url: FakeBackend(), replace=True)
    assert isinstance(registry.from_url("static:10.0.0.1"), FakeBackend)


@pytest.mark.parametrize("name", ["", "Upper", "a+b", "a:b", "1abc", "a b", "x" * 64, None])
def test_invalid_names_are_refused(name: Any) -> None:
    with pytest.raises(InvalidInput, match="is not valid"):
        BackendRegistry(entry_points=False).register(name, lambda url: FakeBackend())


@pytest.mark.parametrize("target", ["module", "module:", ":attr", "a b:c", "mod:attr.", 42])
def test_invalid_targets_are_refused(target: Any) -> None:
    with pytest.raises(InvalidInput):
        BackendRegistry(entry_points=False).register("x", target)


def test_unimportable_target_raises_unknown_backend() -> None:
    registry = BackendRegistry(entry_points=False)
    registry.register("gone", "rc_no_such_module_anywhere:factory")
    with pytest.raises(UnknownBackendError, match=r"backend 'gone' \(rc_no_such_module_anywhere:factory\) cannot"):
        registry.from_url("gone:x")


def test_a_factory_returning_something_else_is_refused(plugin_module: str) -> None:
    registry = BackendRegistry(entry_points=False)
    registry.register("junk", f"{plugin_module}:returns_junk")
    with pytest.raises(UnknownBackendError, match="its factory returned str, which is not a discovery backend"):
        registry.from_url("junk:x")


def test_a_factory_raising_a_foreign_error_is_wrapped_without_secrets(plugin_module: str) -> None:
    registry = BackendRegistry(entry_points=False)
    registry.register("picky", f"{plugin_module}:raises_value_error")
    with pytest.raises(InvalidInput) as caught:
        registry.from_url("picky://alice:hunter22@host?token=s3cr3tt0ken&x=1")
    message = str(caught.value)
    assert "hunter22" not in message
    assert "s3cr3tt0ken" not in message
    assert message.startswith(
        f"backend URL 'picky://***@host?token={MARK}&x=1': the 'picky' backend refused it: ValueError"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_available_backends_is_a_sorted_read_only_snapshot() -> None:
    found = available_backends()
    assert isinstance(found, types.MappingProxyType)
    assert {"consul", "dns", "static"} <= set(found)
    assert list(found) == sorted(found)
    with pytest.raises(TypeError):
        found["x"] = found["static"]  # type: ignore[index]
    assert found["consul"].extra == "consul"
    assert found["static"].installed


def test_registration_is_thread_safe() -> None:
    registry = BackendRegistry(entry_points=False)
    barrier = threading.Barrier(16)
    winners: list[int] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        barrier.wait()
        try:
            for i in range(50):
                registry.register(f"b{n}-{i}", lambda url: FakeBackend())
                registry.from_url(f"b{n}-{i}:x")
            try:
                registry.register("contended", lambda url: FakeBackend())
                winners.append(n)
            except InvalidInput:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(winners) == 1
    assert len(registry.available()) == 3 + 16 * 50 + 1


# -- entry points -----------------------------------------------------------------------------


def test_entry_points_are_read_on_first_lookup_only_once(monkeypatch: pytest.MonkeyPatch, plugin_module: str) -> None:
    calls: list[str] = []
    _fake_entry_points(monkeypatch, [("plug", f"{plugin_module}:Plugin.from_url")], calls)
    registry = BackendRegistry()
    registry.register("other", lambda url: FakeBackend())
    registry.from_url("static:10.0.0.1:80")  # a built-in name needs no scan
    assert calls == []
    assert registry.available()["plug"].origin == "entry point"
    assert plugin_module not in sys.modules  # listed, not loaded
    assert _endpoints(registry.from_url("plug:10.1.1.1:5000")) == ("10.1.1.1:5000",)
    registry.from_url("plug:10.1.1.1:5000")
    with pytest.raises(UnknownBackendError):
        registry.from_url("nothing:x")
    assert calls == [ENTRY_POINT_GROUP]


def test_a_broken_plugin_is_logged_and_skipped(
    monkeypatch: pytest.MonkeyPatch, plugin_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_entry_points(
        monkeypatch,
        [
            ("broken", "rc_no_such_plugin_module:factory"),
            ("notcallable", f"{plugin_module}:NOT_CALLABLE"),
            ("Bad+Name", f"{plugin_module}:Plugin.from_url"),
            ("static", f"{plugin_module}:Plugin.from_url"),
            ("good", f"{plugin_module}:Plugin.from_url"),
        ],
    )
    registry = BackendRegistry()
    with caplog.at_level(logging.WARNING, logger="registry_config.discovery.registry"):
        assert set(registry.available()) == {"broken", "consul", "dns", "good", "notcallable", "static"}
        with pytest.raises(UnknownBackendError, match="rc_no_such_plugin_module"):
            registry.from_url("broken:x")
        with pytest.raises(UnknownBackendError, match="is a int, not a callable"):
            registry.from_url("notcallable:x")
        assert _endpoints(registry.from_url("good:10.2.2.2:5000")) == ("10.2.2.2:5000",)
        assert isinstance(registry.from_url("static:10.0.0.1:1"), StaticBackend)  # a plugin does not shadow it
    assert set(registry.available()) == {"consul", "dns", "good", "static"}
    with pytest.raises(UnknownBackendError, match="no discovery backend is named 'broken'"):
        registry.from_url("broken:x")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "skipping entry point 'Bad+Name'" in logged
    assert "skipping entry point 'static'" in logged
    assert "skipping discovery backend plugin 'broken'" in logged
    assert "skipping discovery backend plugin 'notcallable'" in logged


def test_unreadable_entry_point_metadata_does_not_break_lookups(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        raise OSError("corrupt METADATA")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with caplog.at_level(logging.WARNING):
        assert set(BackendRegistry().available()) == {"consul", "dns", "static"}
    assert "corrupt METADATA" in caplog.text


def test_a_registration_takes_a_name_over_from_an_unloaded_entry_point(
    monkeypatch: pytest.MonkeyPatch, plugin_module: str
) -> None:
    _fake_entry_points(monkeypatch, [("plug", f"{plugin_module}:Plugin.from_url")])
    registry = BackendRegistry()
    registry.available()
    registry.register("plug", lambda url: FakeBackend())
    assert isinstance(registry.from_url("plug:x"), FakeBackend)


def test_importing_the_package_reads_no_entry_points_and_imports_no_plugin() -> None:
    code = textwrap.dedent(
        """
        import importlib.metadata, sys
        calls = []
        original = importlib.metadata.entry_points
        importlib.metadata.entry_points = lambda **kw: calls.append(kw) or original(**kw)
        import registry_config
        import registry_config.discovery.registry as registry
        import registry_config.discovery.caching, registry_config.discovery.fallback
        assert calls == [], calls
        assert not registry._default._entry_points_read
        assert "consul" not in sys.modules and "dns" not in sys.modules  # the extras load on use only
        assert "pytest" not in sys.modules
        registry.available_backends()
        assert len(calls) == 1, calls
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- redaction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("consul://127.0.0.1:8500?dc=dc1", "consul://127.0.0.1:8500?dc=dc1"),
        ("consul://user:pw@h:8500/x?dc=dc1", "consul://***@h:8500/x?dc=dc1"),
        ("consul://u:pa/ss@h:8500", "consul://***@h:8500"),  # a '/' in the password
        ("consul://h?token=abc&dc=x&api_key=k&Auth=z", f"consul://h?token={MARK}&dc=x&api_key={MARK}&Auth={MARK}"),
        ("cmdb:user:pass@host", "***@host"),
        ("consul://h?token=", "consul://h?token="),
        ("consul://h?s3cr3t", f"consul://h?{MARK}"),  # a bare query part may be a token
        ("consul://h#frag", f"consul://h#{MARK}"),
    ],
)
def test_backend_urls_are_shown_redacted(url: str, shown: str) -> None:
    assert redact(url, entry=True) == shown


SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=6, max_size=30).map(lambda s: "S3C" + s)


@given(secret=SECRET, param=st.sampled_from(["token", "acl_token", "password", "secret", "apikey", "x-auth"]))
def test_no_secret_survives_redaction(secret: str, param: str) -> None:
    for url in (
        f"consul://u:{secret}@h:8500?{param}={secret}",
        f"consul+https://{secret}@h?dc=dc1&{param}={secret}#f",
        f"any:{secret}@h?{param}={secret}",
    ):
        assert secret not in redact(url, entry=True)


@given(secret=SECRET)
def test_no_secret_in_any_registry_error(secret: str) -> None:
    registry = BackendRegistry(entry_points=False)
    for url in (f"nothere://u:{secret}@h?token={secret}", f"static://u:{secret}@h?token={secret}"):
        with pytest.raises(RegistryConfigError) as caught:
            registry.from_url(url)
        assert secret not in str(caught.value)


def test_a_backend_error_that_echoes_a_secret_is_scrubbed() -> None:
    registry = BackendRegistry(entry_points=False)

    def echoes(url: str) -> DiscoveryBackend:
        raise InvalidAddress(f"cannot use {url}")

    registry.register("echo", echoes)
    with pytest.raises(InvalidAddress) as caught:
        registry.from_url("echo://bob:pa55word@h?token=t0k3n")
    assert str(caught.value) == f"cannot use echo://{MARK}@h?token={MARK}"
