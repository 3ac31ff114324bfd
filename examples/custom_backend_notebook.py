# %% [markdown]
# # A discovery backend of your own, in a notebook
#
# Your registries are listed somewhere registry-config does not know. Here that place is a plain text listing,
# one `address [port]` per line, the way an operator might keep it in a wiki or a config map. In a few cells:
# write the backend, plan with it, hold it to the conformance suite that the built-in backends pass, and plug
# it in by name so that `backend_from_url` (and the command line's `--backend`) know it.
#
# Run it as a script (`python examples/custom_backend_notebook.py`) or open it as a notebook with jupytext.
# `examples/custom_backend/` is the same idea as an installable package with an entry point.

# %%
from __future__ import annotations

from registry_config import (
    Discovery,
    DiscoveryUnavailable,
    RegistryConfigError,
    RegistrySpec,
    ServiceInstance,
    ServiceQuery,
    UnknownBackendError,
    available_backends,
    backend_from_url,
    build_plan,
    register_backend,
)
from registry_config.discovery import BackendBase

# %% [markdown]
# ## The backend
#
# `BackendBase` gives `watch` (by polling `discover`), `close` and the context manager; only `discover` is left.
# Three rules: build `ServiceInstance` values (an IP and a port, nothing else reaches a builder flag); a missing
# port means the query's default port (`query.port_or_default`); skip a bad line with a warning, and raise only
# `DiscoveryError`s.


# %%
class ListingBackend(BackendBase):
    """Instances from text: one ``address [port]`` per line; ``#`` starts a comment."""

    def __init__(self, listing: str, *, poll_interval: float = 5.0) -> None:
        self.listing = listing
        self.poll_interval = poll_interval
        self.down = False  # for the demonstration of failures below

    @classmethod
    def from_url(cls, url: str) -> ListingBackend:
        """``listing:10.0.0.1,10.0.0.2 5000``: lines separated by commas."""
        return cls(url.partition(":")[2].replace(",", "\n"))

    def discover(self, query: ServiceQuery) -> Discovery:
        if self.down:
            raise DiscoveryUnavailable("listing backend: the listing is not available (simulated outage)")
        instances, warnings = [], []
        for number, line in enumerate(self.listing.splitlines(), 1):
            words = line.partition("#")[0].split()
            if not words:
                continue
            try:
                port = query.port_or_default(int(words[1]) if len(words) > 1 else None)
                instances.append(ServiceInstance(words[0], port))
            except (RegistryConfigError, ValueError) as exc:
                warnings.append(f"listing line {number} {line.strip()!r}: {exc}; skipped")
        return Discovery(query, instances, source="listing", warnings=warnings)


# %% [markdown]
# ## Plan with it

# %%
listing = """
10.244.2.6            # port from the registry URL
10.244.2.7  5000      # a port of its own
registry.internal     # a name: refused, a backend resolves names first
"""
spec = RegistrySpec.from_url("http://docker_registry.service.dc1.consul:8080")
plan = build_plan(spec, ListingBackend(listing))
print(plan.builder_command_line)
for rule in plan.egress_rules:
    print(rule.to_bbs())
for warning in plan.warnings:
    print("warning:", warning)

assert plan.insecure_registries == ("10.244.2.6:8080", "10.244.2.7:5000", "docker_registry.service.dc1.consul:8080")
assert len(plan.warnings) == 1

# %% [markdown]
# A notebook shows the plan as a table, and the backend's snapshot too (`plan.discovery`: what the backend found,
# before the egress guard; its warning says which line was skipped and why).

# %%
plan  # noqa: B018 (a notebook shows a cell's last expression)

# %%
plan.discovery  # noqa: B018

# %% [markdown]
# ## Hold it to the conformance suite
#
# `BackendConformance` holds the promises of the backend protocol as tests. In a project they run under pytest
# (a `Test...` subclass in a test module); here we call them one by one. A subclass declares what its backend
# selects by (`query_fields`) and what its instances carry (`instance_fields`): a plain listing declares neither, so
# the suite checks only that it answers. A hook the backend cannot support is declared with `unsupported(why)`.

# %%
import pytest  # noqa: E402 (the suite needs pytest; the library does not)

from registry_config.testing import BackendConformance  # noqa: E402
from registry_config.testing.conformance import unsupported  # noqa: E402


def listing_of(instances: list[ServiceInstance]) -> str:
    return "\n".join(f"{instance.address} {instance.port}" for instance in instances)


class TestListingBackend(BackendConformance):
    # A listing is one service's instances: it selects by nothing the query says, and carries no metadata.
    query_fields = frozenset()
    instance_fields = frozenset()
    make_garbled_backend = unsupported("a line it cannot read is skipped with a warning, never an error")
    is_closed = unsupported("it holds nothing to free")
    backend_url = unsupported("it is registered by name below, after the suite has run")

    def make_backend(self, instances):
        return ListingBackend(listing_of(instances), poll_interval=0.02)

    def replace_instances(self, backend, instances):
        backend.listing = listing_of(instances)

    def make_portless_backend(self, addresses):
        return ListingBackend("\n".join(str(address) for address in addresses), poll_interval=0.02)

    def make_failing_backend(self):
        backend = ListingBackend("10.0.0.1 8080")
        backend.down = True
        return backend


suite = TestListingBackend()
outcomes = {}
for name in sorted(n for n in dir(suite) if n.startswith("test_") and getattr(suite, n) is not None):
    suite.setup_method(None)
    try:
        getattr(suite, name)()
        outcomes[name] = "passed"
    except pytest.skip.Exception as skip:
        outcomes[name] = f"skipped: {skip}"
    finally:
        suite.teardown_method(None)
for name, outcome in outcomes.items():
    print(f"{outcome:8} {name}")
assert all(outcome == "passed" for outcome in outcomes.values()), outcomes

# %% [markdown]
# ## Plug it in by name
#
# `register_backend` maps a name (a backend URL's scheme) to a factory that takes the whole URL. Then
# `backend_from_url` knows it, and so does `registry-config plan --backend listing:...` in a process that
# registered it (a package does it for every process with an entry point in the group
# `registry_config.backends`).
#
# A name is registered once per process: registering it again raises, so that two plugins cannot take each
# other's name by accident. In a notebook you re-run cells after editing the class, so say that replacing is
# what you mean: `replace=True`.

# %%
register_backend("listing", ListingBackend.from_url, replace=True)
print(sorted(available_backends()))

backend = backend_from_url("listing:10.244.2.6,10.244.2.7 5000")
assert build_plan(spec, backend).insecure_registries == plan.insecure_registries
print(build_plan(spec, backend).builder_command_line)

# %% [markdown]
# An unknown name is an error that lists the names known:

# %%
try:
    backend_from_url("cmdb://inventory.internal")
except UnknownBackendError as error:
    print(error)
