"""rules_for: the Go stager's one rule per instance, and exact compaction that never opens one pair more."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config import EgressGuard, InvalidEgressRule, ServiceInstance
from registry_config.egress import EgressRule, rules_for
from registry_config.egress.compaction import _address_text
from registry_config.errors import InvalidInput


def bbs(rules: tuple[EgressRule, ...]) -> list[dict[str, object]]:
    return [rule.to_bbs() for rule in rules]


def test_go_stager_shape_without_compaction() -> None:
    found = [ServiceInstance("10.244.2.7", 8080), ServiceInstance("10.244.2.6", 8080)]
    assert bbs(rules_for(found, compact=False)) == [
        {"protocol": "tcp", "destinations": ["10.244.2.6"], "ports": [8080], "log": False},
        {"protocol": "tcp", "destinations": ["10.244.2.7"], "ports": [8080], "log": False},
    ]


def test_without_compaction_one_rule_per_pair_sorted_by_address_then_port() -> None:
    found = [
        ServiceInstance("fd00::1", 80),
        ServiceInstance("10.0.0.2", 443),
        ServiceInstance("10.0.0.2", 80),
        ServiceInstance("10.0.0.1", 80),
        ServiceInstance("10.0.0.1", 80, node="duplicate"),
    ]
    assert [str(rule) for rule in rules_for(found, compact=False)] == [
        "tcp 10.0.0.1 80",
        "tcp 10.0.0.2 80",
        "tcp 10.0.0.2 443",
        "tcp fd00::1 80",
    ]


def test_two_go_stager_instances_compact_to_one_range_rule() -> None:
    found = [ServiceInstance("10.244.2.6", 8080), ServiceInstance("10.244.2.7", 8080)]
    assert bbs(rules_for(found)) == [
        {"protocol": "tcp", "destinations": ["10.244.2.6/31"], "ports": [8080], "log": False}
    ]


def test_a_contiguous_slash_22_is_one_rule_with_one_destination() -> None:
    base = int(ipaddress.IPv4Address("10.4.0.0"))
    found = [ServiceInstance(ipaddress.IPv4Address(base + i), 5000) for i in range(1024)]
    found = found[700:] + found[:700][::-1]
    (rule,) = rules_for(found)
    assert rule.to_bbs() == {"protocol": "tcp", "destinations": ["10.4.0.0/22"], "ports": [5000], "log": False}


def test_an_unaligned_run_is_one_range_and_gaps_split_it() -> None:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    found = [ServiceInstance(ipaddress.IPv4Address(base + i), 5000) for i in [*range(3, 1000), 1001, 1003, 1004]]
    (rule,) = rules_for(found)
    assert rule.destinations == ("10.0.0.3-10.0.3.231", "10.0.3.233", "10.0.3.235-10.0.3.236")


def test_addresses_group_by_their_exact_port_set() -> None:
    found = [
        ServiceInstance("10.0.0.1", 80),
        ServiceInstance("10.0.0.1", 443),
        ServiceInstance("10.0.0.2", 80),
        ServiceInstance("10.0.0.3", 5000),
        ServiceInstance("10.0.0.3", 5001),
        ServiceInstance("10.0.0.3", 5002),
        ServiceInstance("10.0.0.4", 5000),
        ServiceInstance("10.0.0.4", 5001),
        ServiceInstance("10.0.0.4", 5002),
        ServiceInstance("10.0.0.5", 80),
    ]
    rules = rules_for(found)
    assert bbs(rules) == [
        {"protocol": "tcp", "destinations": ["10.0.0.2", "10.0.0.5"], "ports": [80], "log": False},
        {"protocol": "tcp", "destinations": ["10.0.0.1"], "ports": [80, 443], "log": False},
        {"protocol": "tcp", "destinations": ["10.0.0.3-10.0.0.4"], "port_range": {"start": 5000, "end": 5002},
         "log": False},
    ]  # fmt: skip
    # 10.0.0.2 and 10.0.0.5 share port 80 but 10.0.0.3-4 do not: a range over them would open more
    assert not any(rule.allows("10.0.0.3", 80) for rule in rules)


def test_two_consecutive_ports_are_a_range_and_lone_ports_a_list() -> None:
    (pair,) = rules_for([ServiceInstance("10.0.0.1", 5000), ServiceInstance("10.0.0.1", 5001)])
    assert pair.port_range == (5000, 5001)
    assert pair.ports is None
    (apart,) = rules_for([ServiceInstance("10.0.0.1", 5000), ServiceInstance("10.0.0.1", 5002)])
    assert apart.ports == (5000, 5002)


def test_ipv4_and_ipv6_share_a_rule_but_never_a_destination() -> None:
    found = [
        ServiceInstance("fd00::1", 5000),
        ServiceInstance("10.0.0.1", 5000),
        ServiceInstance("fd00::", 5000),
        ServiceInstance("255.255.255.255", 5000),
        ServiceInstance("::", 5000),
    ]
    (rule,) = rules_for(found)
    assert rule.destinations == ("10.0.0.1", "255.255.255.255", "::", "fd00::/127")


def test_an_ipv4_mapped_address_becomes_its_ipv4_address() -> None:
    found = [ServiceInstance("::ffff:10.0.0.1", 5000), ServiceInstance("10.0.0.0", 5000)]
    assert rules_for(found)[0].destinations == ("10.0.0.0/31",)
    assert rules_for(found, compact=False)[0].destinations == ("10.0.0.0",)


def test_udp_rules_and_refused_protocols() -> None:
    assert rules_for([ServiceInstance("10.0.0.1", 53)], protocol="udp")[0].protocol == "udp"
    for protocol in ("TCP", "all", "icmp"):
        with pytest.raises(InvalidEgressRule, match="rules_for makes 'tcp' or 'udp' rules"):
            rules_for([ServiceInstance("10.0.0.1", 53)], protocol=protocol)


def test_no_instances_no_rules_and_non_instances_refused() -> None:
    assert rules_for([]) == ()
    assert rules_for([], compact=False) == ()
    with pytest.raises(InvalidInput, match=r"instance #0 is a str"):
        rules_for(["10.0.0.1:80"])  # type: ignore[list-item]


@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.integers(0, 2**32 - 1))
def test_address_text_matches_ipaddress(value: int, shift: int, value4: int) -> None:
    assert _address_text(6, value >> shift) == str(ipaddress.IPv6Address(value >> shift))
    assert _address_text(4, value4) == str(ipaddress.IPv4Address(value4))


# -- properties ----------------------------------------------------------------------------------------------------

V4_BASE = int(ipaddress.IPv4Address("10.0.0.0"))
V6_BASE = int(ipaddress.IPv6Address("fd00::"))
PORTS = [80, 443, 5000, 5001, 5002, 8080]


def v4(offset: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(V4_BASE + offset)


def v6(offset: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(V6_BASE + offset)


# Offsets in a small window, so that neighbours, gaps of one and aligned blocks are all common.
offsets = st.integers(0, 24)
addresses = st.one_of(offsets.map(v4), offsets.map(v6), offsets.map(lambda n: v4(2**20 - 8 + n)))


@st.composite
def instance_sets(draw: st.DrawFn) -> list[ServiceInstance]:
    """Instances on a few ports per example, so that many addresses share a port set and runs form."""
    in_play = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
    return draw(st.lists(st.builds(ServiceInstance, addresses, st.sampled_from(in_play)), max_size=60))


def universe(found: list[ServiceInstance]) -> set[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """Every pair near the instances: their addresses and neighbours, on the ports in play and the ones beside them."""
    near = {ipaddress.ip_address(int(i.address) + d) for i in found for d in (-2, -1, 0, 1, 2)}
    near |= {v4(-1), v4(0), v4(25), v6(-1), v6(0), v6(25), v4(2**20 - 9)}
    ports = {*PORTS, 79, 81, 442, 4999, 5003, 8079, 8081}
    return {(address, port) for address in near for port in ports}


@given(instance_sets(), st.booleans())
def test_rules_allow_exactly_the_instances_pairs(found: list[ServiceInstance], compact: bool) -> None:
    rules = rules_for(found, compact=compact)
    pairs = {(instance.address, instance.port) for instance in found}
    # The rules as BBS would read them back from their own JSON, so the text says what the rule does.
    reread = [EgressRule.from_bbs(rule.to_bbs()) for rule in rules]
    assert reread == list(rules)
    for address, port in universe(found):
        expected = (address, port) in pairs
        assert any(rule.allows(address, port) for rule in rules) == expected, (address, port)
        assert any(rule.allows(address, port) for rule in reread) == expected, (address, port)


@given(instance_sets())
def test_compaction_is_minimal_for_its_shape(found: list[ServiceInstance]) -> None:
    rules = rules_for(found)
    ports_by_address: dict[object, set[int]] = {}
    for instance in found:
        ports_by_address.setdefault(instance.address, set()).add(instance.port)
    port_sets = {frozenset(ports) for ports in ports_by_address.values()}
    assert len(rules) == len(port_sets)
    for rule in rules:
        covered = sorted(
            (address for address, ports in ports_by_address.items() if any(rule.allows(address, p) for p in ports)),
            key=lambda a: (a.version, int(a)),  # type: ignore[attr-defined]
        )
        runs = sum(
            1
            for index, address in enumerate(covered)
            if index == 0
            or covered[index - 1].version != address.version  # type: ignore[attr-defined]
            or int(covered[index - 1]) + 1 != int(address)  # type: ignore[call-overload]
        )
        assert len(rule.destinations) == runs


@given(instance_sets(), st.randoms(use_true_random=False), st.booleans())
def test_output_does_not_depend_on_input_order(found: list[ServiceInstance], rnd: random.Random, compact: bool) -> None:
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert bbs(rules_for(found, compact=compact)) == bbs(rules_for(shuffled, compact=compact))


def _reference_rules(found: list[ServiceInstance], compact: bool) -> list[dict[str, object]]:
    """rules_for as it was before the one-port fast path (a set of ports per address), in BBS JSON."""
    by_family: tuple[dict[int, set[int]], dict[int, set[int]]] = ({}, {})
    for instance in found:
        ip = instance.address
        mapped = getattr(ip, "ipv4_mapped", None)
        ip = mapped if mapped is not None else ip
        by_family[0 if ip.version == 4 else 1].setdefault(int(ip), set()).add(instance.port)
    if not compact:
        return [
            {"protocol": "tcp", "destinations": [_address_text(version, value)], "ports": [port], "log": False}
            for version, family in zip((4, 6), by_family, strict=True)
            for value, ports in sorted(family.items())
            for port in sorted(ports)
        ]
    groups: dict[frozenset[int], tuple[list[int], list[int]]] = {}
    for family_index, family in enumerate(by_family):
        for value, ports in family.items():
            groups.setdefault(frozenset(ports), ([], []))[family_index].append(value)
    rules = []
    for port_set, families in groups.items():
        destinations = []
        for version, values in zip((4, 6), families, strict=True):
            values.sort()
            start = 0
            for index in range(1, len(values) + 1):
                if index == len(values) or values[index] != values[index - 1] + 1:
                    first, last = values[start], values[index - 1]
                    size = last - first + 1
                    bits = 32 if version == 4 else 128
                    if first == last:
                        text = _address_text(version, first)
                    elif size & (size - 1) == 0 and first % size == 0:
                        text = f"{_address_text(version, first)}/{bits - size.bit_length() + 1}"
                    else:
                        text = f"{_address_text(version, first)}-{_address_text(version, last)}"
                    destinations.append(text)
                    start = index
        ports = sorted(port_set)
        rule: dict[str, object] = {"protocol": "tcp", "destinations": destinations}
        if len(ports) >= 2 and ports[-1] - ports[0] + 1 == len(ports):
            rule["port_range"] = {"start": ports[0], "end": ports[-1]}
        else:
            rule["ports"] = ports
        rule["log"] = False
        rules.append((ports, rule))
    rules.sort(key=lambda item: item[0])
    return [rule for _, rule in rules]


@given(instance_sets(), st.booleans())
def test_rules_are_those_the_former_way_made(found: list[ServiceInstance], compact: bool) -> None:
    assert bbs(rules_for(found, compact=compact)) == _reference_rules(found, compact)


# -- the guard's kept instances, both families, embedded forms included ------------------------------------------

SPECIAL_V4 = [int(ipaddress.IPv4Address(text)) for text in ("169.254.169.254", "127.0.0.1", "0.0.0.0")]


def _embed(form: int, value: int) -> ipaddress.IPv6Address:
    """An IPv4 address (as an int) in one of the IPv6 forms that carry one: mapped, NAT64, 6to4, compatible."""
    prefix = (0xFFFF << 32, int(ipaddress.IPv6Address("64:ff9b::")), 0x2002 << 112, 0)[form]
    return ipaddress.IPv6Address(prefix | (value << 80 if form == 2 else value))


v4_values = st.one_of(offsets.map(lambda n: V4_BASE + n), st.sampled_from(SPECIAL_V4))
guard_addresses = st.one_of(
    v4_values.map(ipaddress.IPv4Address),
    offsets.map(v6),
    st.sampled_from(["::1", "::", "fe80::1", "fd00:ec2::254"]).map(ipaddress.IPv6Address),
    st.builds(_embed, st.integers(0, 3), v4_values),
)
guard_networks = st.lists(
    st.sampled_from(
        ["0.0.0.0/0", "::/0", "10.0.0.0/28", "10.0.0.16/29", "169.254.169.254/32", "127.0.0.0/8", "64:ff9b::/96",
         "2002::/16", "fd00::/123", "fc00::/7", "10.0.0.0/8"]
    ),
    max_size=5,
)  # fmt: skip


def _where_packets_go(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> object:
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


@given(st.lists(st.builds(ServiceInstance, guard_addresses, st.sampled_from(PORTS)), max_size=40), guard_networks,
       st.booleans())  # fmt: skip
def test_rules_for_the_kept_allow_exactly_the_kept_pairs(
    found: list[ServiceInstance], allowed: list[str], compact: bool
) -> None:
    """Guard then rules, as a plan does: the rules open each kept pair and nothing else, refused ones least of all."""
    kept, rejected = EgressGuard(allowed).check(found)
    rules = rules_for(kept, compact=compact)
    pairs = {(_where_packets_go(instance.address), instance.port) for instance in kept}
    near = {type(i.address)(int(i.address) + d) for i in found for d in (-1, 0, 1) if int(i.address) + d >= 0}
    for address in near:
        for port in {*PORTS, 79, 8081}:
            expected = (_where_packets_go(address), port) in pairs
            assert any(rule.allows(address, port) for rule in rules) == expected, (address, port)
    for refused in rejected:
        assert not any(rule.allows(refused.instance.address, refused.instance.port) for rule in rules), refused


# -- every run shape, written out: a test per mutant that random instances only sometimes produce ------------------


def _expected_destination(base: ipaddress.IPv4Address | ipaddress.IPv6Address, start: int, size: int) -> str:
    """The destination one run of ``size`` addresses from ``base + start`` must be written as, worked out apart:
    the address alone, a CIDR when the run is a whole aligned block, else a ``first-last`` range."""
    first, last = base + start, base + start + size - 1
    if size == 1:
        return str(first)
    if size & (size - 1) == 0 and int(first) % size == 0:
        return f"{first}/{first.max_prefixlen - (size.bit_length() - 1)}"
    return f"{first}-{last}"


@pytest.mark.parametrize(
    "base",
    [
        ipaddress.IPv4Address("0.0.0.0"),
        ipaddress.IPv4Address("10.0.0.0"),
        ipaddress.IPv6Address("::"),
        ipaddress.IPv6Address("fd00::"),
    ],
    ids=["ipv4-zero", "ipv4", "ipv6-zero", "ipv6"],
)
def test_each_run_is_written_as_the_one_destination_that_covers_exactly_it(
    base: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Every run of 1 to 17 addresses starting at every offset 0 to 17 from the base (so at every alignment; from
    0, where ``first`` is small, too): one destination, the right one, and read back from its text it opens the
    run's addresses and not the ones beside it."""
    for start in range(18):
        for size in range(1, 18):
            found = [ServiceInstance(base + start + i, 8080) for i in range(size)]
            (rule,) = rules_for(found)
            assert rule.destinations == (_expected_destination(base, start, size),), (start, size)
            (reread,) = (EgressRule.from_bbs(rule.to_bbs()),)
            for offset in range(max(0, start - 1), start + size + 1):
                inside = start <= offset < start + size
                assert reread.allows(base + offset, 8080) is inside, (start, size, offset)


def test_an_address_listed_twice_on_one_port_stays_in_its_port_sets_rule() -> None:
    """The same (address, port) listed twice, the port given as two equal but distinct int objects (as two parsed
    answers give them): still one port set, so one rule, not a second rule for the same port."""
    port_once, port_again = int("8080"), int("8080")
    found = [
        ServiceInstance("10.0.0.1", port_once),
        ServiceInstance("10.0.0.1", port_again),
        ServiceInstance("10.0.0.2", 8080),
    ]
    assert [str(rule) for rule in rules_for(found)] == ["tcp 10.0.0.1-10.0.0.2 8080"]


def test_an_address_of_a_subclass_of_ipaddress_is_written_in_its_own_family() -> None:
    """An address given as a subclass of ``IPv4Address`` (a caller's own type) is still an IPv4 destination, never
    read as the IPv6 address with the same integer (``::a00:1``)."""

    class MyIPv4(ipaddress.IPv4Address):
        pass

    class MyIPv6(ipaddress.IPv6Address):
        pass

    found = [ServiceInstance(MyIPv4("10.0.0.1"), 8080), ServiceInstance(MyIPv6("fd00::1"), 8080)]
    assert [type(instance.address) for instance in found] == [ipaddress.IPv4Address, ipaddress.IPv6Address]
    assert [str(rule) for rule in rules_for(found)] == ["tcp 10.0.0.1,fd00::1 8080"]
    assert [str(rule) for rule in rules_for(found, compact=False)] == ["tcp 10.0.0.1 8080", "tcp fd00::1 8080"]
    mapped = ServiceInstance(MyIPv6("::ffff:10.0.0.2"), 8080)
    assert type(mapped.address) is ipaddress.IPv4Address
    assert [str(rule) for rule in rules_for([mapped])] == ["tcp 10.0.0.2 8080"]


@pytest.mark.parametrize(
    "text",
    ["::ffff:10.0.0.1", "::ffff:0:0", "::10.0.0.1", "::7fff:ffff:ffff", "::8000:0:0", "::1:0:0:0", "::1:0:0:1"],
)
def test_address_text_at_the_edges_of_the_embedded_ipv4_forms(text: str) -> None:
    """Around 2**48, where the fast C formatter takes over from ``ipaddress``: each writes what ``str`` does (the
    IPv4-mapped and -compatible forms are where the two formatters can disagree)."""
    value = int(ipaddress.IPv6Address(text))
    assert _address_text(6, value) == str(ipaddress.IPv6Address(value))


def test_two_ports_far_apart_are_a_list_never_a_range() -> None:
    """5000 and 10001 are two ports, not the 5,002 between them: only a set of consecutive ports is a range."""
    found = [ServiceInstance("10.0.0.1", 5000), ServiceInstance("10.0.0.1", 10001)]
    (rule,) = rules_for(found)
    assert (rule.ports, rule.port_range) == ((5000, 10001), None)
    (small,) = rules_for([ServiceInstance("10.0.0.1", 2), ServiceInstance("10.0.0.1", 5)])
    assert (small.ports, small.port_range) == ((2, 5), None)


def test_three_hundred_consecutive_ports_are_one_range() -> None:
    """A long run of ports (past the integers Python shares, 256) is still written as one range."""
    found = [ServiceInstance("10.0.0.1", port) for port in range(20000, 20300)]
    (rule,) = rules_for(found)
    assert (rule.ports, rule.port_range) == (None, (20000, 20299))


def test_rules_for_takes_its_options_by_keyword_only() -> None:
    """``rules_for(found, False)`` would read as "not compacted" to one reader and "udp" to another: refused."""
    with pytest.raises(TypeError):
        rules_for([ServiceInstance("10.0.0.1", 80)], False)  # type: ignore[misc]
