"""StaticBackend and the discovery values it produces."""

from __future__ import annotations

import ipaddress
import random
import socket

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config import (
    Discovery,
    DiscoveryBackend,
    DiscoveryUnavailable,
    InvalidAddress,
    RegistryConfigError,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
)
from registry_config.address import format_host_port

QUERY = ServiceQuery("docker_registry", default_port=8080)


def fake_resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def test_entries_of_every_shape() -> None:
    resolver = fake_resolver({"registry.internal": ["10.0.0.7", "fd00::7", "not-an-ip"]})
    backend = StaticBackend(
        [
            "10.0.0.1",
            "10.0.0.2:5000",
            "[fd00::1]:5001",
            "fd00::2",
            "registry.internal:81",
            ServiceInstance("10.0.0.9", 9),
        ],
        resolver=resolver,
    )
    snapshot = backend.discover(QUERY)
    assert snapshot.endpoints == (
        "10.0.0.1:8080",
        "10.0.0.2:5000",
        "10.0.0.7:81",
        "10.0.0.9:9",
        "[fd00::1]:5001",
        "[fd00::2]:8080",
        "[fd00::7]:81",
    )
    assert snapshot.source == "static"
    assert isinstance(backend, DiscoveryBackend)


def test_duplicates_collapse_and_order_does_not_matter() -> None:
    one = StaticBackend(["10.0.0.2", "10.0.0.1", "10.0.0.1:8080"]).discover(QUERY)
    two = StaticBackend(["10.0.0.1", "10.0.0.2"]).discover(QUERY)
    assert one == two
    assert len(one) == 2


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("10.0.0.1:0", "port '0'"),
        ("10.0.0.1:65536", "port '65536'"),
        ("10.0.0.1,10.0.0.2", "neither an IP address nor a DNS name"),
        ("10.0.0.1 10.0.0.2", "contains ' '"),
        ("10.0.0.1\n-evil", "contains '\\n'"),
        ("http://10.0.0.1", "has a scheme"),
        ("[10.0.0.1]:80", "not an IPv6 address"),
        ("fd00::1:80:zz", "not an IPv6 address"),
        ("", "empty"),
        ("300.1.2.3", "neither an IP address nor a DNS name"),
    ],
)
def test_bad_entries_fail_at_construction_naming_the_entry(entry: str, fragment: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        StaticBackend(["10.0.0.9", entry])
    assert "static entry #1" in str(info.value)
    assert fragment in str(info.value)


def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    backend = StaticBackend(["missing.internal"], resolver=fake_resolver({}))
    with pytest.raises(DiscoveryUnavailable, match=r"cannot resolve 'missing\.internal'"):
        backend.discover(QUERY)


def test_no_port_and_no_default_is_a_clear_error() -> None:
    with pytest.raises(RegistryConfigError, match="has no port"):
        StaticBackend(["10.0.0.1"]).discover(ServiceQuery("x"))


def test_snapshots_are_immutable() -> None:
    snapshot = StaticBackend(["10.0.0.1"]).discover(QUERY)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.instances = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.instances[0].meta["x"] = "y"  # type: ignore[index]


def test_watch_yields_first_snapshot_and_stops() -> None:
    import threading

    stop = threading.Event()
    backend = StaticBackend(["10.0.0.1"])
    backend.poll_interval = 0.01
    watcher = backend.watch(QUERY, stop=stop)
    first = next(watcher)
    assert first.endpoints == ("10.0.0.1:8080",)
    stop.set()
    assert list(watcher) == []
    backend.close()
    backend.close()


def test_instance_values() -> None:
    instance = ServiceInstance("fd00::1", 5000, tags=["a"], meta={"k": "v"})
    assert instance.address == ipaddress.IPv6Address("fd00::1")
    assert instance.endpoint == "[fd00::1]:5000"
    assert instance.tags == ("a",)
    assert hash(instance) == hash(ServiceInstance("fd00::1", 5000, tags=["a"], meta={"k": "v"}))
    with pytest.raises(InvalidAddress, match="resolves names"):
        ServiceInstance("registry.internal", 5000)
    for port in (0, 65536, True, "80"):
        with pytest.raises(InvalidAddress):
            ServiceInstance("10.0.0.1", port)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a b", "a,b", "a\nb"])
def test_query_refuses_text_that_is_not_one_word(name: str) -> None:
    with pytest.raises(RegistryConfigError):
        ServiceQuery(name)


def test_discovery_refuses_what_is_not_an_instance() -> None:
    with pytest.raises(RegistryConfigError):
        Discovery(QUERY, ["10.0.0.1:80"], source="x")  # type: ignore[list-item]


def test_ipv4_mapped_addresses_become_ipv4() -> None:
    instance = ServiceInstance("::ffff:10.0.0.1", 8080)
    assert instance.address == ipaddress.IPv4Address("10.0.0.1")
    assert instance.endpoint == "10.0.0.1:8080"
    assert ServiceInstance(ipaddress.IPv6Address("::ffff:10.0.0.1"), 8080) == ServiceInstance("10.0.0.1", 8080)


# -- the package's fast paths build what the public constructors build --------------------------------------------

_texts = st.none() | st.text(max_size=8)
_meta_maps = st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)


@given(
    address=st.ip_addresses(v=4),
    port=st.integers(1, 65535),
    node=_texts,
    service_id=_texts,
    tags=st.lists(st.text(max_size=4), max_size=3).map(tuple),
    meta=_meta_maps,
    healthy=st.sampled_from([None, True, False]),
)
def test_trusted_instances_equal_public_ones(
    address: ipaddress.IPv4Address,
    port: int,
    node: str | None,
    service_id: str | None,
    tags: tuple[str, ...],
    meta: dict[str, str],
    healthy: bool | None,
) -> None:
    public = ServiceInstance(address, port, node=node, service_id=service_id, tags=tags, meta=meta, healthy=healthy)
    trusted = ServiceInstance._trusted(address, port, node, service_id, tags, dict(meta), healthy)
    with_text = ServiceInstance._trusted(
        address, port, node, service_id, tags, dict(meta), healthy, f"{address}:{port}"
    )
    assert with_text == public
    assert with_text.endpoint == public.endpoint == f"{address}:{port}"
    assert hash(with_text) == hash(public)
    assert repr(with_text) == repr(public)
    assert attrs.asdict(with_text) == attrs.asdict(public)
    assert trusted == public
    assert hash(trusted) == hash(public)
    assert repr(trusted) == repr(public)
    assert trusted.endpoint == public.endpoint
    assert trusted.sort_key == public.sort_key
    assert attrs.evolve(trusted, port=port) == public
    assert {trusted: 1}[public] == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        trusted.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        trusted.meta["x"] = "y"  # type: ignore[index]


def test_trusted_instances_do_not_share_the_callers_meta() -> None:
    meta = {"k": "v"}
    trusted = ServiceInstance._trusted(ipaddress.IPv4Address("10.0.0.1"), 80, None, None, (), meta, None)
    assert trusted.meta == {"k": "v"}
    empty = ServiceInstance._trusted(ipaddress.IPv4Address("10.0.0.1"), 80, None, None, (), None, None)
    assert empty == ServiceInstance("10.0.0.1", 80)
    assert dict(empty.meta) == {}


def _reference_instances(given: list[ServiceInstance]) -> tuple[ServiceInstance, ...]:
    """How a Discovery sorted and deduplicated before it was made faster: a set of (address, port) seen."""
    seen: set[tuple[object, int]] = set()
    unique = []
    for instance in sorted(given, key=lambda instance: instance.sort_key):
        if (instance.address, instance.port) not in seen:
            seen.add((instance.address, instance.port))
            unique.append(instance)
    return tuple(unique)


_small_instances = st.builds(
    ServiceInstance,
    st.sampled_from(["10.0.0.1", "10.0.0.2", "::ffff:10.0.0.2", "fd00::1", "0.0.0.1", "::1"]),
    st.sampled_from([80, 81]),
    node=st.sampled_from([None, "", "a", "b"]),
    service_id=st.sampled_from([None, "x", "y"]),
    healthy=st.sampled_from([None, True, False]),
)


@given(st.lists(_small_instances, max_size=12))
def test_discovery_sorts_and_deduplicates_as_before(given_instances: list[ServiceInstance]) -> None:
    snapshot = Discovery(QUERY, given_instances, source="x")
    expected = _reference_instances(given_instances)
    assert snapshot.instances == expected
    assert all(a is b for a, b in zip(snapshot.instances, expected, strict=True))  # the same one of equal keys


@given(st.ip_addresses(), st.integers(1, 65535))
def test_endpoint_is_the_formatted_host_and_port(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    instance = ServiceInstance(address, port)
    assert instance.endpoint == format_host_port(instance.address, port)
    assert instance.endpoint == (
        f"{instance.address}:{port}" if instance.address.version == 4 else f"[{instance.address}]:{port}"
    )


def test_the_endpoint_text_is_kept_but_is_no_field() -> None:
    instance = ServiceInstance("10.0.0.1", 80)
    assert instance.endpoint is instance.endpoint  # written once, then kept
    assert [field.name for field in attrs.fields(ServiceInstance)] == [
        "address",
        "port",
        "node",
        "service_id",
        "tags",
        "meta",
        "healthy",
    ]
    assert "_endpoint_text" not in attrs.asdict(instance)
    assert attrs.evolve(instance, port=81).endpoint == "10.0.0.1:81"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance._endpoint_text = "10.6.6.6:80"  # type: ignore[attr-defined]


# -- a snapshot's hash: what equal snapshots share, cheap at any size ----------------------------------------------


@given(
    pairs=st.lists(st.tuples(st.ip_addresses(), st.integers(1, 65535)), max_size=12, unique=True),
    order=st.randoms(use_true_random=False),
    index=st.none() | st.integers(0, 2**64 - 1),
)
def test_equal_snapshots_hash_equal_whatever_order_their_instances_came_in(
    pairs: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]], order: random.Random, index: int | None
) -> None:
    """The plan's composition cache finds a snapshot by its hash: two equal snapshots must hash equal, however
    their instances were listed (the hash reads only some of them, so it must read them after sorting)."""
    instances = [ServiceInstance(address, port) for address, port in pairs]
    shuffled = list(instances)
    order.shuffle(shuffled)
    first = Discovery(QUERY, instances, source="s", index=index, warnings=["w"])
    second = Discovery(QUERY, shuffled + instances[:1], source="s", index=index, warnings=["w"])
    assert first == second
    assert hash(first) == hash(second)
    assert {first: "plan"}[second] == "plan"


def test_snapshots_that_differ_only_inside_stay_unequal_under_one_hash() -> None:
    """The hash reads the count and the two ends; a snapshot that differs in the middle may share it, and
    equality still tells the two apart, so a cache never serves one for the other."""
    ends = [ServiceInstance("10.0.0.1", 8080), ServiceInstance("10.0.0.9", 8080)]
    one = Discovery(QUERY, [*ends, ServiceInstance("10.0.0.5", 8080)], source="s")
    other = Discovery(QUERY, [*ends, ServiceInstance("10.0.0.6", 8080)], source="s")
    assert one != other
    cache = {one: "one", other: "other"}
    assert cache[Discovery(QUERY, list(other.instances), source="s")] == "other"
    assert cache[one] == "one"
