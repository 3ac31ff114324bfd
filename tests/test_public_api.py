"""The public surface is deliberate: nothing becomes public, or stops being public, by accident."""

from __future__ import annotations

import subprocess
import sys

import registry_config
import registry_config.testing

EXPECTED = [
    "DEFAULT_ALLOWED_NETWORKS",
    "CachingBackend",
    "ConsulBackend",
    "Credentials",
    "Discovery",
    "DiscoveryAuthError",
    "DiscoveryBackend",
    "DiscoveryError",
    "DiscoveryProtocolError",
    "DiscoveryQueryError",
    "DiscoveryUnavailable",
    "DnsBackend",
    "EgressGuard",
    "EgressPolicyError",
    "EgressRule",
    "FallbackBackend",
    "ImageNotFoundError",
    "ImageReference",
    "InsecurityPolicy",
    "InvalidAddress",
    "InvalidEgressRule",
    "InvalidImageReference",
    "InvalidRegistryURL",
    "MissingDependencyError",
    "NoInstancesError",
    "ProbeError",
    "ProbeResult",
    "RegistryAuthError",
    "RegistryConfigError",
    "RegistryConfigWarning",
    "RegistrySpec",
    "RejectedInstance",
    "ReplicaMismatchError",
    "ResolvedImage",
    "SecurityMode",
    "ServiceInstance",
    "ServiceQuery",
    "StagingPlan",
    "StaticBackend",
    "UnknownBackendError",
    "__version__",
    "available_backends",
    "backend_from_url",
    "build_plan",
    "plan_from_discovery",
    "probe_registry",
    "register_backend",
    "render_auth_json",
    "render_containerd_hosts",
    "render_daemon_json",
    "render_registries_conf",
    "render_tree",
    "resolve_image",
    "rules_for",
]


def test_all_is_pinned_and_sorted() -> None:
    assert registry_config.__all__ == EXPECTED
    assert len(set(EXPECTED)) == len(EXPECTED)


def test_every_public_name_exists_and_comes_from_the_package() -> None:
    for name in registry_config.__all__:
        value = getattr(registry_config, name)
        module = getattr(value, "__module__", "registry_config")
        assert module.startswith("registry_config"), (name, module)


def test_the_test_kit_is_public() -> None:
    assert registry_config.testing.__all__ == [
        "BackendConformance",
        "ConsulSimulator",
        "FakeBackend",
        "Fault",
        "RecordedRequest",
    ]


def test_every_error_descends_from_the_root() -> None:
    errors = [getattr(registry_config, name) for name in registry_config.__all__ if name.endswith("Error")]
    errors += [registry_config.InvalidRegistryURL, registry_config.DiscoveryUnavailable]
    for error in errors:
        assert issubclass(error, registry_config.RegistryConfigError), error


def test_import_needs_no_optional_dependency_and_no_test_tool() -> None:
    code = (
        "import sys, registry_config\n"
        "bad = [m for m in ('consul', 'dns', 'pytest', 'hypothesis', 'tomli_w') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("registry_config").joinpath("py.typed").is_file()


def test_library_log_records_do_not_reach_stderr_unless_the_application_asks() -> None:
    # Without the package's NullHandler, logging's last-resort handler prints WARNING records on stderr (red in a
    # notebook). What a user must know is a RegistryConfigWarning; log records are the application's to route.
    code = (
        "import logging, registry_config\n"
        "logging.getLogger('registry_config.discovery').warning('retrying in 5s')\n"
        "logging.basicConfig(format='%(name)s: %(message)s')\n"
        "logging.getLogger('registry_config.discovery').warning('now configured')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stderr == "registry_config.discovery: now configured\n"


def test_the_display_methods_are_there_for_notebooks() -> None:
    for kind in (registry_config.StagingPlan, registry_config.Discovery, registry_config.ProbeResult):
        assert callable(getattr(kind, "_repr_html_", None)), kind
        assert callable(getattr(kind, "_repr_pretty_", None)), kind
    assert callable(registry_config.StagingPlan.to_text)
