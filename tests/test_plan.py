"""build_plan and StagingPlan: the original Go stager's vectors, determinism, and what reaches a flag or a rule."""

from __future__ import annotations

import ipaddress
import json
import random
import warnings

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import host_ports, hostile_text

from registry_config import (
    Discovery,
    DiscoveryError,
    DiscoveryUnavailable,
    EgressPolicyError,
    InvalidAddress,
    InvalidRegistryURL,
    NoInstancesError,
    RegistryConfigError,
    RegistryConfigWarning,
    RegistrySpec,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
    build_plan,
)
from registry_config.discovery.backend import BackendBase
from registry_config.egress import EgressGuard, EgressRule
from registry_config.errors import InvalidInput
from registry_config.plan import plan_from_discovery, query_for

SEED_URL = "http://docker_registry.service.dc1.consul:8080"


def ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def go_builder_parse(value: str) -> list[str]:
    """The Go builder's parser of -insecureDockerRegistries, as the original code does it."""
    entries = []
    for raw in value.split(","):
        entry = raw.strip()
        if "://" in entry:
            raise ValueError(f"no scheme allowed: {entry}")
        if ":" not in entry:
            raise ValueError(f"ip:port expected: {entry}")
        entries.append(entry)
    return entries


def rules_as_pairs(plan_rules: tuple[EgressRule, ...]) -> list[dict[str, object]]:
    """The rules' BBS form, reduced to what the Go stager's test compares."""
    keys = ("protocol", "destinations", "ports")
    return [{key: value for key, value in rule.to_bbs().items() if key in keys} for rule in plan_rules]


class TestGoStagerVectors:
    """The original Go stager's test: Consul answers two addresses, the URL's port is hardcoded."""

    def backend(self) -> StaticBackend:
        return StaticBackend(["10.244.2.6", "10.244.2.7"])

    def test_http_registry_gets_both_instances_in_the_insecure_flag(self) -> None:
        plan = build_plan(RegistrySpec.from_url("http://10.244.2.6:8080"), self.backend(), compact=False)
        assert plan.builder_args == (
            "-dockerRegistryURL",
            "http://10.244.2.6:8080",
            "-insecureDockerRegistries",
            "10.244.2.6:8080,10.244.2.7:8080",
        )
        assert rules_as_pairs(plan.egress_rules) == [
            {"protocol": "tcp", "destinations": ["10.244.2.6"], "ports": [8080]},
            {"protocol": "tcp", "destinations": ["10.244.2.7"], "ports": [8080]},
        ]

    def test_https_registry_has_no_insecure_flag_and_the_same_rules(self) -> None:
        http = build_plan(RegistrySpec.from_url("http://10.244.2.6:8080"), self.backend(), compact=False)
        https = build_plan(RegistrySpec.from_url("https://10.244.2.6:8080"), self.backend(), compact=False)
        assert https.builder_args == ("-dockerRegistryURL", "https://10.244.2.6:8080")
        assert https.insecure_registries == ()
        assert https.egress_rules == http.egress_rules

    def test_skip_ssl_validation_makes_https_insecure(self) -> None:
        spec = RegistrySpec.from_url("https://10.244.2.6:8080", skip_ssl_validation=True)
        plan = build_plan(spec, self.backend())
        assert plan.insecure_registries == ("10.244.2.6:8080", "10.244.2.7:8080")

    def test_rules_are_lower_case_tcp(self) -> None:
        plan = build_plan(RegistrySpec.from_url("http://10.244.2.6:8080"), self.backend())
        assert {rule.protocol for rule in plan.egress_rules} == {"tcp"}


def test_seed_scenario_with_a_consul_name_adds_the_name_itself() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    plan = build_plan(spec, StaticBackend(["10.244.2.7", "10.244.2.6"]))
    assert plan.insecure_registries == (
        "10.244.2.6:8080",
        "10.244.2.7:8080",
        "docker_registry.service.dc1.consul:8080",
    )
    assert plan.discovery.query == ServiceQuery("docker_registry", datacenter="dc1", default_port=8080)
    assert go_builder_parse(plan.builder_args[3]) == list(plan.insecure_registries)


def test_query_for_uses_service_then_consul_name_then_host() -> None:
    spec = RegistrySpec.from_url("https://primary.docker_registry.service.dc2.consul:5000")
    assert query_for(spec) == ServiceQuery("docker_registry", datacenter="dc2", tags=("primary",), default_port=5000)
    assert query_for(spec, service="other", datacenter="dc9").name == "other"
    assert query_for(spec, service="other", datacenter="dc9").datacenter == "dc9"
    plain = RegistrySpec.from_url("https://registry.example.internal")
    assert query_for(plain) == ServiceQuery("registry.example.internal", default_port=443)


@pytest.mark.parametrize(
    ("url", "service", "datacenter"),
    [
        ("https://primary.docker_registry.service.dc2.consul:5000", None, None),
        ("https://primary.docker_registry.service.dc2.consul:5000", "other", "dc9"),
        ("http://docker_registry.service.consul:8080", None, "dc1"),
        ("https://registry.example.internal", None, None),
        ("http://10.0.0.1:5000", "", ""),
    ],
)
def test_query_for_is_memoized_and_answers_as_built_afresh(
    url: str, service: str | None, datacenter: str | None
) -> None:
    spec = RegistrySpec.from_url(url)
    tag = spec.consul_tag
    fresh = ServiceQuery(
        service or spec.consul_service or spec.host,
        datacenter=datacenter or spec.consul_datacenter,
        tags=(tag,) if tag else (),
        default_port=spec.port,
    )
    first = query_for(spec, service=service, datacenter=datacenter)
    assert first == fresh
    assert query_for(RegistrySpec.from_url(url), service=service, datacenter=datacenter) is first
    other = attrs.evolve(spec, port=spec.port + 1)  # an equal host, another port: another query
    assert query_for(other, service=service, datacenter=datacenter).default_port == spec.port + 1


def test_query_for_refuses_bad_names_as_before_even_unhashable_ones() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    with pytest.raises(RegistryConfigError, match="must be non-empty text"):
        query_for(spec, service=["docker_registry"])  # type: ignore[arg-type]
    with pytest.raises(RegistryConfigError, match="must be a single word"):
        query_for(spec, service="a b")
    with pytest.raises(RegistryConfigError, match="must be a single word"):
        query_for(spec, service="a b")  # a failure is not cached as an answer either


def test_without_a_backend_an_ip_literal_url_is_its_own_instance() -> None:
    plan = build_plan(RegistrySpec.from_url("http://127.0.0.1:5000"), guard=EgressGuard(["127.0.0.0/8"]))
    assert plan.insecure_registries == ("127.0.0.1:5000",)
    assert [instance.endpoint for instance in plan.instances] == ["127.0.0.1:5000"]
    assert plan.discovery.source == "the registry URL"
    assert plan.warnings == ()


def test_without_a_backend_the_urls_host_name_is_resolved_by_the_system() -> None:
    # localhost is in every /etc/hosts: the system resolver answers it without a network.
    plan = build_plan("http://localhost:5000", guard=EgressGuard(["127.0.0.0/8", "::1"]))
    assert "127.0.0.1:5000" in [instance.endpoint for instance in plan.instances]
    assert plan.discovery.source == "static"
    assert plan.insecure_registries[-1] == "localhost:5000"


def test_instance_ports_win_over_the_url_port() -> None:
    backend = StaticBackend(["10.0.0.1:5000", "10.0.0.2"])
    plan = build_plan(RegistrySpec.from_url("http://registry.internal:8080"), backend)
    assert plan.insecure_registries == ("10.0.0.1:5000", "10.0.0.2:8080", "registry.internal:8080")


def test_ipv6_instances_are_bracketed_everywhere() -> None:
    plan = build_plan(RegistrySpec.from_url("http://[fd00::1]:5000"), StaticBackend(["fd00::1", "[fd00::2]:5001"]))
    assert plan.insecure_registries == ("[fd00::1]:5000", "[fd00::2]:5001")
    assert go_builder_parse(plan.builder_args[3]) == ["[fd00::1]:5000", "[fd00::2]:5001"]
    assert plan.builder_args[1] == "http://[fd00::1]:5000"


def test_extra_insecure_entries_are_checked_and_appended() -> None:
    plan = build_plan(
        RegistrySpec.from_url("https://10.0.0.1:443"),
        StaticBackend(["10.0.0.1"]),
        extra_insecure=["Mirror.Internal:5000", "[fd00::9]:80", "mirror.internal:5000"],
    )
    assert plan.insecure_registries == ("mirror.internal:5000", "[fd00::9]:80")


@pytest.mark.parametrize(
    "entry",
    ["mirror.internal", "http://mirror:5000", "a:1,b:2", "a:1 b", "a:1\n-evil", "10.0.0.0/8", "", "a:0", "a:99999"],
)
def test_bad_extra_insecure_entries_are_refused(entry: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        build_plan(RegistrySpec.from_url("https://10.0.0.1"), StaticBackend(["10.0.0.1"]), extra_insecure=[entry])
    assert "extra insecure registry #0" in str(info.value)


def test_metadata_service_and_public_addresses_are_rejected_with_reasons() -> None:
    backend = StaticBackend(["10.0.0.1", "169.254.169.254", "8.8.8.8", "0.0.0.0", "127.0.0.1"])
    plan = build_plan(RegistrySpec.from_url(SEED_URL), backend)
    assert [i.endpoint for i in plan.instances] == ["10.0.0.1:8080"]
    rejected = {r.instance.endpoint: r.reason for r in plan.rejected}
    assert set(rejected) == {"169.254.169.254:8080", "8.8.8.8:8080", "0.0.0.0:8080", "127.0.0.1:8080"}
    assert all(reason for reason in rejected.values())
    flag = plan.builder_args[3]
    for bad in ("169.254", "8.8.8.8", "0.0.0.0", "127.0.0.1"):
        assert bad not in flag
        assert all(bad not in json.dumps(rule.to_bbs()) for rule in plan.egress_rules)


def test_strict_guard_raises() -> None:
    with pytest.raises(EgressPolicyError, match=r"169\.254\.169\.254"):
        build_plan(
            RegistrySpec.from_url(SEED_URL),
            StaticBackend(["10.0.0.1", "169.254.169.254"]),
            guard=EgressGuard(on_violation="error"),
        )


def test_no_instances_is_an_error_unless_allowed() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    with pytest.raises(NoInstancesError, match="docker_registry"):
        build_plan(spec, StaticBackend([]))
    plan = build_plan(spec, StaticBackend([]), allow_empty=True)
    assert plan.egress_rules == ()
    assert plan.insecure_registries == ("docker_registry.service.dc1.consul:8080",)


def test_all_rejected_says_why() -> None:
    with pytest.raises(NoInstancesError, match="egress guard refused all"):
        build_plan(RegistrySpec.from_url(SEED_URL), StaticBackend(["169.254.169.254"]))


def test_to_json_is_stable_and_complete() -> None:
    plan = build_plan(RegistrySpec.from_url(SEED_URL), StaticBackend(["10.0.0.2", "10.0.0.1", "169.254.169.254"]))
    data = json.loads(plan.to_json())
    assert data["builder_args"] == list(plan.builder_args)
    assert data["insecure"] is True
    assert data["security"] == "http"
    assert data["instances"] == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert data["rejected"][0]["instance"] == "169.254.169.254:8080"
    assert data["discovery"]["service"] == "docker_registry"
    assert data == plan.to_dict()
    assert list(data) == sorted(data)  # keys sorted: stable text for diffs and caches
    assert plan.to_json(indent=2).splitlines()[1] == '  "builder_args": ['


def test_stale_snapshot_is_noted() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    snapshot = Discovery(query_for(spec), [ServiceInstance("10.0.0.1", 8080)], source="cache", stale=True)
    plan = plan_from_discovery(spec, snapshot)
    assert any("stale" in warning for warning in plan.warnings)


def test_unchanged_snapshot_reuses_the_plan() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    snapshot = Discovery(query_for(spec), [ServiceInstance("10.0.0.1", 8080)], source="cache")
    assert plan_from_discovery(spec, snapshot) is plan_from_discovery(spec, snapshot)
    other = plan_from_discovery(spec, snapshot, compact=False)
    assert other == plan_from_discovery(spec, snapshot, compact=False)


# -- properties ------------------------------------------------------------------------------------------------

private_v4 = st.integers(int(ipaddress.IPv4Address("10.0.0.0")), int(ipaddress.IPv4Address("10.0.3.255"))).map(
    ipaddress.IPv4Address
)
private_v6 = st.integers(0, 2**12).map(lambda n: ipaddress.IPv6Address(int(ipaddress.IPv6Address("fd00::")) + n))
any_ip = st.one_of(
    private_v4,
    private_v6,
    st.ip_addresses(v=4),
    private_v4.map(lambda ip: ipaddress.IPv6Address(f"::ffff:{ip}")),
    st.sampled_from(
        ["169.254.169.254", "0.0.0.0", "127.0.0.1", "255.255.255.255", "::", "::1", "fe80::1", "::ffff:169.254.169.254"]
    ).map(ipaddress.ip_address),
)
instances = st.lists(
    st.builds(ServiceInstance, any_ip, st.sampled_from([80, 443, 5000, 5001, 8080])), min_size=1, max_size=40
)
specs = st.sampled_from(
    [
        RegistrySpec.from_url(SEED_URL),
        RegistrySpec.from_url("https://registry.internal:5000"),
        RegistrySpec.from_url("https://registry.internal:5000", skip_ssl_validation=True),
        RegistrySpec.from_url("http://[fd00::1]:5000"),
    ]
)


@given(specs, instances, st.randoms(use_true_random=False), st.booleans())
def test_plans_are_identical_under_any_instance_order(
    spec: RegistrySpec, found: list[ServiceInstance], rnd: random.Random, compact: bool
) -> None:
    shuffled = list(found)
    rnd.shuffle(shuffled)
    first = build_plan(spec, StaticBackend(found), compact=compact, allow_empty=True)
    second = build_plan(spec, StaticBackend(shuffled), compact=compact, allow_empty=True)
    assert first.to_json() == second.to_json()
    assert first.builder_args == second.builder_args


@given(specs, instances, st.booleans())
def test_rules_allow_exactly_the_kept_pairs(spec: RegistrySpec, found: list[ServiceInstance], compact: bool) -> None:
    plan = build_plan(spec, StaticBackend(found), compact=compact, allow_empty=True)
    kept = {(i.address, i.port) for i in plan.instances}
    guard = EgressGuard()
    candidates = [(i.address, i.port) for i in found]
    if (url_ip := ip_or_none(spec.host)) is not None:
        candidates.append((url_ip, spec.port))  # an IP-literal URL host is an instance like any discovered one
    assert kept == {(address, port) for address, port in candidates if guard.reason(address) is None}
    candidates = {(i.address, p) for i in found for p in (80, 443, 5000, 5001, 8080, 8081)}
    candidates |= {(ipaddress.ip_address(int(a) + d) if int(a) + d >= 0 else a, p) for a, p in kept for d in (-1, 1)}
    for address, port in candidates:
        allowed = any(rule.allows(address, port) for rule in plan.egress_rules)
        assert allowed == ((address, port) in kept), (address, port)


@given(specs, instances)
def test_every_flag_entry_passes_the_builder_parser(spec: RegistrySpec, found: list[ServiceInstance]) -> None:
    plan = build_plan(spec, StaticBackend(found), allow_empty=True)
    if spec.is_insecure and plan.insecure_registries:
        entries = go_builder_parse(plan.builder_args[3])
        assert entries == list(plan.insecure_registries)
        for entry in entries:
            assert not any(ch.isspace() or not ch.isprintable() or ch == "," for ch in entry)
            host = entry.rsplit(":", 1)[0].strip("[]")
            address = ip_or_none(host)
            if address is None or host == spec.host:
                assert host == spec.host  # a name only from the URL; the URL's own address always
            else:
                assert EgressGuard().reason(address) is None
        if spec.is_insecure:
            assert spec.address in entries


hostile = st.one_of(
    hostile_text(base=host_ports()),
    st.lists(
        st.sampled_from(["a", "1", ".", ":", ",", ";", " ", "\n", "\t", "/", "[", "]", "://", "\x00", "\u2028"])
    ).map("".join),
)


@given(st.lists(hostile, min_size=1, max_size=4))
def test_hostile_extra_entries_never_reach_the_flag(entries: list[str]) -> None:
    spec = RegistrySpec.from_url("https://10.0.0.1")
    try:
        plan = build_plan(spec, StaticBackend(["10.0.0.1"]), extra_insecure=entries)
    except InvalidAddress:
        return
    flag = plan.builder_args[3]
    assert go_builder_parse(flag) == list(plan.insecure_registries)
    assert not any(ch.isspace() or not ch.isprintable() for ch in flag)
    assert len(flag.split(",")) == len(plan.insecure_registries)


def test_no_instances_message_carries_the_backends_warnings() -> None:
    spec = RegistrySpec.from_url(SEED_URL)
    snapshot = Discovery(
        query_for(spec), [], source="consul", warnings=["Consul hid some results (X-Consul-Results-Filtered-By-ACLs)"]
    )
    with pytest.raises(NoInstancesError, match="the backend also said: Consul hid some results"):
        plan_from_discovery(spec, snapshot)


# -- an IP-literal registry URL ---------------------------------------------------------------------------------


def test_an_ip_literal_url_is_an_instance_the_builder_and_the_rules_know() -> None:
    # The newcomer's case: the builder contacts 10.244.2.9:5000, so the flag and the rules must name it.
    plan = build_plan("http://10.244.2.9:5000", StaticBackend(["10.244.2.6"]))
    assert plan.insecure_registries == ("10.244.2.6:5000", "10.244.2.9:5000")
    assert [i.endpoint for i in plan.instances] == ["10.244.2.6:5000", "10.244.2.9:5000"]
    assert any(rule.allows("10.244.2.9", 5000) for rule in plan.egress_rules)
    assert plan.warnings == ()
    assert plan.discovery.endpoints == ("10.244.2.6:5000",)  # the snapshot stays what the backend found


def test_an_https_ip_literal_url_is_opened_by_the_rules_but_not_flagged() -> None:
    plan = build_plan("https://10.244.2.9:5000", StaticBackend(["10.244.2.6"]))
    assert plan.insecure_registries == ()
    assert any(rule.allows("10.244.2.9", 5000) for rule in plan.egress_rules)


def test_an_ip_literal_url_the_guard_refuses_is_rejected_but_still_flagged() -> None:
    plan = build_plan("http://169.254.169.254:5000", StaticBackend(["10.0.0.1"]))
    assert [r.instance.endpoint for r in plan.rejected] == ["169.254.169.254:5000"]
    assert "metadata" in plan.rejected[0].reason
    assert not any(rule.allows("169.254.169.254", 5000) for rule in plan.egress_rules)
    assert plan.insecure_registries == ("10.0.0.1:5000", "169.254.169.254:5000")


def test_an_ip_literal_url_found_by_discovery_is_not_doubled() -> None:
    backend = StaticBackend([ServiceInstance("10.0.0.9", 5000, node="cell-1"), "10.0.0.1"])
    plan = build_plan("http://10.0.0.9:5000", backend)
    assert [i.endpoint for i in plan.instances] == ["10.0.0.1:5000", "10.0.0.9:5000"]
    assert plan.instances[1].node == "cell-1"  # the discovered instance, with what the backend knew
    assert plan.warnings == ()


def test_when_discovery_finds_nothing_the_plan_holds_the_url_and_warns() -> None:
    with pytest.warns(RegistryConfigWarning, match=r"found no instance of service 'registry'.*10\.0\.0\.9:5000") as got:
        plan = build_plan("http://10.0.0.9:5000", StaticBackend([]), service="registry")
    assert [i.endpoint for i in plan.instances] == ["10.0.0.9:5000"]
    assert len(plan.warnings) == 1
    assert str(got[0].message) == plan.warnings[0]
    assert got[0].filename == __file__  # pointed at the caller, not at the library


def test_when_discovery_finds_nothing_and_the_guard_refuses_the_url_there_is_no_instance() -> None:
    with pytest.raises(NoInstancesError, match=r"egress guard refused all.*127\.0\.0\.1:5000"):
        build_plan("http://127.0.0.1:5000", StaticBackend([]))


def test_plan_warnings_are_issued_each_time_even_when_the_plan_is_reused() -> None:
    spec = RegistrySpec.from_url("http://10.0.0.9:5000")
    snapshot = Discovery(query_for(spec), [], source="consul")
    with pytest.warns(RegistryConfigWarning):
        first = plan_from_discovery(spec, snapshot)
    with pytest.warns(RegistryConfigWarning):
        second = plan_from_discovery(spec, snapshot)
    assert first is second


def test_skip_ssl_validation_on_http_warns_that_it_has_no_effect() -> None:
    spec = RegistrySpec.from_url("http://10.0.0.1:5000", skip_ssl_validation=True)
    with pytest.warns(RegistryConfigWarning, match="skip_ssl_validation has no effect on an http:// registry URL"):
        plan = build_plan(spec, StaticBackend(["10.0.0.1"]))
    assert any("no effect" in warning for warning in plan.warnings)


def test_a_plan_without_notices_issues_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = build_plan(SEED_URL, StaticBackend(["10.0.0.1"]))
    assert plan.warnings == ()


# -- what build_plan accepts, and a backend's bug -----------------------------------------------------------------


def test_build_plan_takes_a_url_string() -> None:
    plan = build_plan("http://docker_registry.service.dc1.consul:8080", StaticBackend(["10.0.0.1"]))
    assert plan.spec == RegistrySpec.from_url(SEED_URL)
    with pytest.raises(InvalidRegistryURL, match="has no scheme"):
        build_plan("docker_registry:8080", StaticBackend(["10.0.0.1"]))
    with pytest.raises(InvalidInput, match="expected a RegistrySpec or a registry URL string, got int"):
        build_plan(8080, StaticBackend(["10.0.0.1"]))  # type: ignore[arg-type]


class BuggyBackend(BackendBase):
    """A third party's backend that breaks its promise: a bare TypeError, or no Discovery at all."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def discover(self, query: ServiceQuery) -> Discovery:
        if self.mode == "raise":
            raise TypeError("cannot read http://stager:s3cr3t-pw@inventory.internal/hosts?token=s3cr3t-t0ken")
        if self.mode == "ours":
            raise DiscoveryUnavailable("inventory down")
        return {"instances": []}  # type: ignore[return-value]


def test_a_backends_own_bug_becomes_a_discovery_error_naming_it() -> None:
    with pytest.raises(DiscoveryError) as info:
        build_plan(SEED_URL, BuggyBackend("raise"))
    message = str(info.value)
    assert "test_plan.BuggyBackend" in message
    assert "raised TypeError" in message
    assert "'docker_registry'" in message
    assert "s3cr3t" not in message  # what it echoes is redacted like any other text
    assert type(info.value.__cause__) is TypeError


def test_a_backend_that_returns_no_discovery_is_a_discovery_error() -> None:
    with pytest.raises(DiscoveryError, match=r"BuggyBackend returned dict .* instead of a Discovery"):
        build_plan(SEED_URL, BuggyBackend("dict"))


def test_a_backends_own_discovery_errors_pass_unchanged() -> None:
    with pytest.raises(DiscoveryUnavailable, match=r"^inventory down$"):
        build_plan(SEED_URL, BuggyBackend("ours"))


# -- the values plans are made of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("8080", "port '8080' is a str: it must be an int in 1..65535; convert it first (int('8080'))"),
        (8080.0, "port 8080.0 is a float: it must be an int in 1..65535"),
        (True, "port True is a bool: it must be an int in 1..65535"),
        (0, "port 0 is out of range: it must be an int in 1..65535"),
        (65536, "port 65536 is out of range: it must be an int in 1..65535"),
    ],
)
def test_a_service_instance_port_must_be_an_int(port: object, message: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        ServiceInstance("10.0.0.1", port)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize("entry", ["a:80,b:1", "10.0.0.1:5000,10.0.0.2:5000", ",", "a:1,"])
def test_an_extra_entry_with_a_comma_says_so(entry: str) -> None:
    with pytest.raises(InvalidAddress, match="holds a comma; give one host:port per entry"):
        build_plan(SEED_URL, StaticBackend(["10.0.0.1"]), extra_insecure=[entry])
