# %% [markdown]
# # The seed scenario with Consul
#
# The original design registers the private registry with Consul as `docker_registry` and gives the stager
# `-dockerRegistryURL=http://docker_registry.service.dc1.consul:8080`. The stager asks Consul for every
# instance and turns them into the builder's `-insecureDockerRegistries` flag and the staging container's
# egress rules. The registry registers itself with `ServicePort` 0 ("we rely on a hardcoded port"): the
# URL's port, 8080, stands in for it.
#
# No Consul is needed to run this: `ConsulSimulator` is a Consul HTTP API on loopback, the one the
# library's own tests use. Point `ConsulBackend` at a real agent (`http://127.0.0.1:8500`) and nothing
# else changes.

# %%
from registry_config.discovery.consul import ConsulBackend
from registry_config.plan import build_plan
from registry_config.spec import RegistrySpec
from registry_config.testing.consul import ConsulSimulator

consul = ConsulSimulator()
print("simulated Consul at", consul.url)

# %% [markdown]
# Two registry VMs register `docker_registry` without a port, as the seed's agent scripts do.

# %%
consul.register("docker_registry", "10.244.2.6", node="registry-0", port=0)
consul.register("docker_registry", "10.244.2.7", node="registry-1", port=0)

# %% [markdown]
# The stager's side: parse the URL (the host names the Consul service and datacenter), ask Consul for
# the healthy instances, and compose the plan.

# %%
spec = RegistrySpec.from_url("http://docker_registry.service.dc1.consul:8080")
print("service", spec.consul_service, "in", spec.consul_datacenter, "-", spec.security)

with ConsulBackend(consul.url) as backend:
    plan = build_plan(spec, backend)

print(plan.builder_command_line)
for rule in plan.egress_rules:
    print(rule.to_bbs())

# %% [markdown]
# A third instance appears, unhealthy: with the default `passing_only=True` it is not staged from.

# %%
consul.register("docker_registry", "10.244.2.8", node="registry-2", port=0, status="critical")
with ConsulBackend(consul.url) as backend:
    again = build_plan(spec, backend)
print(again.instances == plan.instances, [instance.endpoint for instance in again.instances])

# %% [markdown]
# What the seed asks for, checked: both instances with the URL's port in the flag, and egress rules that
# allow exactly those two (ip, port) pairs, here compacted to one rule for `10.244.2.6/31`.

# %%
assert plan.builder_args == (
    "-dockerRegistryURL",
    "http://docker_registry.service.dc1.consul:8080",
    "-insecureDockerRegistries",
    "10.244.2.6:8080,10.244.2.7:8080,docker_registry.service.dc1.consul:8080",
)
for address in ("10.244.2.5", "10.244.2.6", "10.244.2.7", "10.244.2.8"):
    for port in (8080, 8081):
        allowed = any(rule.allows(address, port) for rule in plan.egress_rules)
        assert allowed == (address in ("10.244.2.6", "10.244.2.7") and port == 8080), (address, port)
assert not any(rule.allows("10.244.2.8", 8080) for rule in again.egress_rules)
consul.close()
