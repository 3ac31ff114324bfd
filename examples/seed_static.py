# %% [markdown]
# # The seed scenario with a static list of instances
#
# The original design hands the stager `-dockerRegistryURL=http://docker_registry.service.dc1.consul:8080`
# and has it find every running registry instance. Here the instances come from a static list, so this runs
# anywhere: no Consul, no DNS. (`examples/seed_consul.py` runs the same scenario against a simulated Consul.)

# %%
from registry_config import RegistrySpec, StaticBackend, build_plan

spec = RegistrySpec.from_url("http://docker_registry.service.dc1.consul:8080")
print(repr(spec), spec.security, "insecure" if spec.is_insecure else "secure")
print("consul service:", spec.consul_service, "datacenter:", spec.consul_datacenter)

# %% [markdown]
# Two instances registered without a port (Consul's `ServicePort` 0): the URL's port applies. A third
# address, poisoned into the list, is the cloud metadata service: the egress guard drops it.

# %%
backend = StaticBackend(["10.244.2.6", "10.244.2.7", "169.254.169.254"])
plan = build_plan(spec, backend)

print(plan.builder_command_line)
for rule in plan.egress_rules:
    print(rule.to_bbs())
for rejected in plan.rejected:
    print("rejected", rejected.instance.endpoint, "-", rejected.reason)

# %% [markdown]
# The same plan for a machine, as JSON:

# %%
print(plan.to_json(indent=2))

# %%
assert plan.insecure_registries == (
    "10.244.2.6:8080",
    "10.244.2.7:8080",
    "docker_registry.service.dc1.consul:8080",
)
assert all(rule.allows("10.244.2.6", 8080) or rule.allows("10.244.2.7", 8080) for rule in plan.egress_rules)
assert not any(rule.allows("169.254.169.254", 8080) for rule in plan.egress_rules)
