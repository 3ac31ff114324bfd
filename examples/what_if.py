# %% [markdown]
# # What if? The plan as registry instances come and go
#
# A stager plans for every staging request, and the registry's instances change underneath it: a new instance
# is registered, one is drained, one registers with its real port, someone poisons the catalog. This notebook
# replays those events against a `FakeBackend` (the test kit's backend whose answers we publish by hand) and
# shows, after each one, what changes in the builder's `-insecureDockerRegistries` flag and in the egress rules.
#
# Run it as a script (`python examples/what_if.py`) or open it as a notebook (`jupytext --to notebook`).

# %%
from registry_config import (
    EgressGuard,
    EgressPolicyError,
    NoInstancesError,
    RegistrySpec,
    ServiceInstance,
    StagingPlan,
    build_plan,
)
from registry_config.testing import FakeBackend

spec = RegistrySpec.from_url("http://docker_registry.service.dc1.consul:8080")
backend = FakeBackend()


def rules(plan: StagingPlan) -> list[str]:
    return [str(rule) for rule in plan.egress_rules]


def show(title: str, plan: StagingPlan, before: StagingPlan | None = None) -> None:
    """Print the plan, and what changed since ``before``."""
    print(f"== {title}")
    print("   insecure:", ",".join(plan.insecure_registries) or "(none)")
    print("   rules:   ", "; ".join(rules(plan)) or "(none)")
    for rejection in plan.rejected:
        print("   rejected:", rejection)
    if before is not None:
        added = sorted(set(plan.insecure_registries) - set(before.insecure_registries))
        removed = sorted(set(before.insecure_registries) - set(plan.insecure_registries))
        print("   flag:     +", added or "-", " -", removed or "-")
        print("   rules:   ", "unchanged" if rules(plan) == rules(before) else f"{rules(before)} -> {rules(plan)}")


# %% [markdown]
# ## The seed: two instances, registered with `ServicePort` 0
#
# A port of 0 means the registry URL's port. The two neighbouring addresses compact into one `/31`.

# %%
backend.set_instances([ServiceInstance("10.244.2.6", 8080), ServiceInstance("10.244.2.7", 8080)])
seed = build_plan(spec, backend)
show("seed", seed)
assert seed.insecure_registries == ("10.244.2.6:8080", "10.244.2.7:8080", "docker_registry.service.dc1.consul:8080")
assert rules(seed) == ["tcp 10.244.2.6/31 8080"]

# %% [markdown]
# In a notebook, a plan is also a table: the flag, the instances, the rules, what was rejected and why, and the
# warnings (`plan.to_text()` is the same as text, as `registry-config plan` prints it).

# %%
seed  # noqa: B018 (a notebook shows a cell's last expression: here, the plan's table)

# %% [markdown]
# ## A third instance comes up next door
#
# The flag gains one entry. The rule stays one rule: three addresses that are not a CIDR block become a range,
# which still covers nothing else.

# %%
backend.set_instances([*backend.instances, ServiceInstance("10.244.2.8", 8080)])
scaled = build_plan(spec, backend)
show("scale up to three", scaled, seed)
assert "10.244.2.8:8080" in scaled.insecure_registries
assert len(scaled.egress_rules) == 1
assert all(scaled.egress_rules[0].allows(f"10.244.2.{n}", 8080) for n in (6, 7, 8))
assert not scaled.egress_rules[0].allows("10.244.2.5", 8080)
assert not scaled.egress_rules[0].allows("10.244.2.9", 8080)

# %% [markdown]
# ## One instance registers with its real port
#
# The original stager ignored `ServicePort`; here a non-zero port is honoured, in the flag and in the rules: the
# instance on port 5000 gets a rule of its own, and port 8080 is not opened on it.

# %%
backend.set_instances([*backend.instances, ServiceInstance("10.244.3.1", 5000)])
ported = build_plan(spec, backend)
show("an instance on port 5000", ported, scaled)
assert "10.244.3.1:5000" in ported.insecure_registries
assert any(rule.allows("10.244.3.1", 5000) for rule in ported.egress_rules)
assert not any(rule.allows("10.244.3.1", 8080) for rule in ported.egress_rules)

# %% [markdown]
# ## One is drained
#
# Gone from the flag and from the rules: a staging task planned now cannot reach it.

# %%
backend.set_instances([i for i in backend.instances if str(i.address) != "10.244.2.7"])
drained = build_plan(spec, backend)
show("10.244.2.7 drained", drained, ported)
assert "10.244.2.7:8080" not in drained.insecure_registries
assert not any(rule.allows("10.244.2.7", 8080) for rule in drained.egress_rules)

# %% [markdown]
# ## Someone poisons the catalog
#
# Three registrations that no registry should have: the cloud metadata service, the cell's loopback, and a
# public address. The egress guard drops each, with its reason, and the rest of the plan does not change.

# %%
poison = [ServiceInstance("169.254.169.254", 80), ServiceInstance("127.0.0.1", 8080), ServiceInstance("8.8.8.8", 53)]
backend.set_instances([*backend.instances, *poison])
poisoned = build_plan(spec, backend)
show("poisoned", poisoned, drained)
assert poisoned.insecure_registries == drained.insecure_registries
assert poisoned.egress_rules == drained.egress_rules
assert {str(r.instance.address) for r in poisoned.rejected} == {"169.254.169.254", "127.0.0.1", "8.8.8.8"}

# %%
poisoned  # noqa: B018 (the table lists each rejected instance with its reason)

# %% [markdown]
# With a strict guard the same snapshot fails the plan instead: a stager that would rather stop than stage
# around a poisoned catalog.

# %%
try:
    build_plan(spec, backend, guard=EgressGuard(on_violation="error"))
except EgressPolicyError as error:
    print("EgressPolicyError -", error)
else:
    raise AssertionError("a strict guard must refuse a poisoned snapshot")

# %% [markdown]
# ## Order does not matter
#
# The same instances in another order give byte-identical flags and rules (the Go stager's map order made a
# different flag at every staging).

# %%
shuffled = FakeBackend(instances=list(reversed(backend.instances)))
assert build_plan(spec, shuffled).builder_args == poisoned.builder_args
print("same flags whatever the order:", poisoned.builder_command_line)

# %% [markdown]
# ## The registry gets a CA-signed certificate
#
# A verified HTTPS registry needs no insecure flag at all; the egress rules stay the same.

# %%
secure = build_plan(RegistrySpec.from_url("https://docker_registry.service.dc1.consul:8080"), backend)
show("https, verified", secure, poisoned)
assert secure.insecure_registries == ()
assert secure.egress_rules == poisoned.egress_rules

# %% [markdown]
# ## Every instance is gone
#
# Nothing to stage from: `NoInstancesError` says so (the original stager said only "missing docker registry"),
# unless the caller asked for an empty plan.

# %%
backend.set_instances([])
try:
    build_plan(spec, backend)
except NoInstancesError as error:
    print("NoInstancesError -", error)
empty = build_plan(spec, backend, allow_empty=True)
show("no instances, allow_empty=True", empty)
assert empty.egress_rules == ()
