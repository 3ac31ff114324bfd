"""EgressGuard: private networks by default; special addresses only where a network inside their class opens them."""

# The tables of exact messages read best at one case a line, however long.
# ruff: noqa: E501

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config import EgressPolicyError, InvalidAddress, RegistryConfigError, ServiceInstance
from registry_config.egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard, RejectedInstance
from registry_config.egress.guard import _plain_ipv4
from registry_config.errors import InvalidInput


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1", "100.127.255.254",
     "fc00::1", "fd00::1", "fdff:ffff::1", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_default_allows_private_networks(address: str) -> None:
    assert EgressGuard().reason(address) is None
    assert EgressGuard().allows(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "169.254.169.254 is link-local (the cloud metadata service); not in the allowed networks"),
        ("169.254.1.1", "169.254.1.1 is link-local; not in the allowed networks"),
        ("fe80::1", "fe80::1 is link-local; not in the allowed networks"),
        ("127.0.0.1", "127.0.0.1 is loopback; not in the allowed networks"),
        ("127.8.9.10", "127.8.9.10 is loopback; not in the allowed networks"),
        ("::1", "::1 is loopback; not in the allowed networks"),
        ("0.0.0.0", "0.0.0.0 is unspecified ('this network', 0.0.0.0/8); not in the allowed networks"),
        ("::", ":: is the unspecified address; not in the allowed networks"),
        ("224.0.0.1", "224.0.0.1 is multicast; not in the allowed networks"),
        ("ff02::1", "ff02::1 is multicast; not in the allowed networks"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address; not in the allowed networks"),
        ("240.0.0.1", "240.0.0.1 is reserved (240.0.0.0/4); not in the allowed networks"),
        (
            "::ffff:169.254.169.254",
            # Python 3.13 writes a mapped address as ::ffff:169.254.169.254, earlier ones as ::ffff:a9fe:a9fe.
            f"{ipaddress.ip_address('::ffff:169.254.169.254')} (IPv4-mapped 169.254.169.254) is link-local "
            "(the cloud metadata service); not in the allowed networks",
        ),
        (
            "8.8.8.8",
            "8.8.8.8 is a public address; not in the allowed networks "
            "(10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, fc00::/7)",
        ),
        (
            "2001:4860:4860::8888",
            "2001:4860:4860::8888 is a public address; not in the allowed networks "
            "(10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, fc00::/7)",
        ),
        ("172.32.0.1", "172.32.0.1 is a public address; not in the allowed networks "
         "(10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, fc00::/7)"),
        (
            "100.100.100.200",
            "100.100.100.200 is the cloud metadata service (Alibaba Cloud); the allowed network 100.64.0.0/10 covers "
            "it, but such addresses are opened only by a network inside 100.100.100.200/32: list 100.100.100.200/32 "
            "(or a network inside it) to allow it",
        ),
        (
            "fd00:ec2::254",
            "fd00:ec2::254 is the cloud metadata service (AWS, IPv6); the allowed network fc00::/7 covers it, but such "
            "addresses are opened only by a network inside fd00:ec2::254/128: list fd00:ec2::254/128 (or a network "
            "inside it) to allow it",
        ),
    ],
)  # fmt: skip
def test_default_refuses_with_a_sentence(address: str, reason: str) -> None:
    assert EgressGuard().reason(address) == reason
    assert not EgressGuard().allows(address)


def test_loopback_listed_explicitly_is_allowed_for_local_tests() -> None:
    guard = EgressGuard(["127.0.0.0/8"])
    assert guard.reason("127.0.0.1") is None
    assert guard.reason("::ffff:127.0.0.1") is None
    assert guard.reason("10.0.0.1") == "10.0.0.1 is not in the allowed networks (127.0.0.0/8)"
    assert EgressGuard(["::1"]).reason("::1") is None


def test_a_broad_network_does_not_open_special_addresses() -> None:
    guard = EgressGuard(["0.0.0.0/0", "::/0"])
    assert guard.reason("8.8.8.8") is None
    assert guard.reason("2001:db8::1") is None
    for special in ("169.254.169.254", "127.0.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "::"):
        assert guard.reason(special) is not None, special
    assert guard.reason("169.254.169.254") == (
        "169.254.169.254 is link-local (the cloud metadata service); the allowed network 0.0.0.0/0 covers it, but "
        "such addresses are opened only by a network inside 169.254.169.254/32: list 169.254.169.254/32 (or a "
        "network inside it) to allow it"
    )
    # ::/0 holds no IPv4 address, mapped or not: a mapped address is judged as IPv4
    assert EgressGuard(["::/0"]).reason("::ffff:8.8.8.8") is not None


def test_link_local_listed_still_keeps_the_metadata_service_closed() -> None:
    guard = EgressGuard(["169.254.0.0/16"])
    assert guard.reason("169.254.1.1") is None
    assert guard.reason("169.254.169.254") is not None
    assert EgressGuard(["169.254.169.254"]).reason("169.254.169.254") is None
    assert EgressGuard(["169.254.169.254/32", "10.0.0.0/8"]).reason("169.254.169.254") is None


def test_a_network_inside_a_special_block_opens_only_itself() -> None:
    guard = EgressGuard(["127.0.0.0/24"])
    assert guard.reason("127.0.0.9") is None
    assert guard.reason("127.0.1.1") is not None


def test_allowed_networks_are_parsed_and_canonical() -> None:
    guard = EgressGuard(
        ["192.168.0.0/16", ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8", "fd00::1", "::ffff:0:0/104"]
    )
    assert guard.allowed_networks == (
        ipaddress.ip_network("0.0.0.0/8"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("fd00::1/128"),
    )
    assert guard == EgressGuard(["fd00::1/128", "::ffff:0:0/104", "192.168.0.0/16", "10.0.0.0/8"])
    assert hash(guard) == hash(EgressGuard(["fd00::1/128", "::ffff:0:0/104", "192.168.0.0/16", "10.0.0.0/8"]))
    assert EgressGuard("10.0.0.0/8").allowed_networks == (ipaddress.ip_network("10.0.0.0/8"),)
    assert EgressGuard().allowed_networks == tuple(
        sorted(DEFAULT_ALLOWED_NETWORKS, key=lambda n: (n.version, int(n.network_address)))
    )


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        (["10.0.0.0/33"], "allowed_networks[0]: '10.0.0.0/33' is not an IP network; give a CIDR such as 10.0.0.0/8 or a single IP address"),
        (["10.0.0.0/8", "nope"], "allowed_networks[1]: 'nope' is not an IP network; give a CIDR such as 10.0.0.0/8 or a single IP address"),
        (["10.0.0.1/8"], "allowed_networks[0]: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8? (or list the single address)"),
        ([" 10.0.0.0/8"], "allowed_networks[0]: ' 10.0.0.0/8' is not an IP network; give a CIDR such as 10.0.0.0/8 or a single IP address"),
        (["fe80::/10%eth0"], "allowed_networks[0]: 'fe80::/10%eth0' is not an IP network; give a CIDR such as 10.0.0.0/8 or a single IP address"),
        ([""], "allowed_networks[0]: '' is not an IP network; give a CIDR such as 10.0.0.0/8 or a single IP address"),
        ([10], "allowed_networks[0]: 10 is not an IP network; give text such as '10.0.0.0/8'"),
        (5, "allowed_networks: expected a list of networks, got int"),
    ],
)  # fmt: skip
def test_bad_networks_are_refused_with_clear_messages(networks: Any, message: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        EgressGuard(networks)
    assert str(info.value) == message


def test_on_violation_is_checked() -> None:
    with pytest.raises(InvalidInput, match="on_violation must be 'drop' or 'error', got 'raise'"):
        EgressGuard(on_violation="raise")  # type: ignore[arg-type]


def test_reason_refuses_what_is_not_an_address() -> None:
    with pytest.raises(InvalidAddress, match=r"egress guard: 'registry\.internal' is not an IP address"):
        EgressGuard().reason("registry.internal")


INSTANCES = [
    ServiceInstance("10.0.0.2", 8080),
    ServiceInstance("169.254.169.254", 80),
    ServiceInstance("10.0.0.1", 8080),
    ServiceInstance("8.8.8.8", 443),
    ServiceInstance("fd00::1", 5000),
]


def test_check_keeps_and_rejects_in_the_order_given() -> None:
    kept, rejected = EgressGuard().check(iter(INSTANCES))
    assert kept == (INSTANCES[0], INSTANCES[2], INSTANCES[4])
    assert [r.instance for r in rejected] == [INSTANCES[1], INSTANCES[3]]
    assert rejected[0] == RejectedInstance(
        INSTANCES[1], "169.254.169.254 is link-local (the cloud metadata service); not in the allowed networks"
    )
    assert str(rejected[0]) == (
        "169.254.169.254:80: 169.254.169.254 is link-local (the cloud metadata service); not in the allowed networks"
    )


def test_check_in_error_mode_names_the_first_refused_instance() -> None:
    with pytest.raises(EgressPolicyError) as info:
        EgressGuard(on_violation="error").check(INSTANCES)
    message = str(info.value)
    assert message.startswith(
        "egress guard refused registry instance 169.254.169.254:80: 169.254.169.254 is link-local (the cloud metadata "
        "service); not in the allowed networks."
    )
    assert "8.8.8.8" not in message
    assert "allowed_networks" in message
    kept, rejected = EgressGuard(on_violation="error").check([INSTANCES[0], INSTANCES[2]])
    assert kept == (INSTANCES[0], INSTANCES[2])
    assert rejected == ()


def test_check_refuses_what_is_not_an_instance() -> None:
    with pytest.raises(InvalidInput, match=r"instance #1 is a str, not a ServiceInstance"):
        EgressGuard().check([INSTANCES[0], "10.0.0.1:80"])  # type: ignore[list-item]


def test_long_network_lists_are_cut_in_messages() -> None:
    guard = EgressGuard([f"10.{i}.0.0/16" for i in range(9)])
    assert guard.reason("8.8.8.8") == (
        "8.8.8.8 is a public address; not in the allowed networks (10.0.0.0/16, 10.1.0.0/16, 10.2.0.0/16, "
        "10.3.0.0/16, 10.4.0.0/16, 10.5.0.0/16 and 3 more)"
    )
    assert EgressGuard([]).reason("10.0.0.1") == "10.0.0.1 is not in the allowed networks (none are allowed)"


# -- properties ----------------------------------------------------------------------------------------------------

SPECIAL_BLOCKS = [
    ipaddress.ip_network(text)
    for text in (
        "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32", "255.255.255.255/32", "::/128", "::1/128",
        "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "240.0.0.0/4",
    )
]  # fmt: skip

interesting_v4 = st.one_of(
    st.ip_addresses(v=4),
    st.sampled_from(["169.254.169.254", "127.0.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.5", "10.0.0.1"]).map(
        ipaddress.IPv4Address
    ),
)
networks_v4 = st.builds(lambda a, n: ipaddress.ip_network((a, n), strict=False), interesting_v4, st.integers(0, 32))


def oracle(address: ipaddress.IPv4Address, allowed: list[ipaddress.IPv4Network]) -> bool:
    """The documented rule, written with ipaddress alone."""
    covering = [network for network in allowed if address in network]
    if not covering:
        return False
    blocks = [block for block in SPECIAL_BLOCKS if block.version == 4 and address in block]
    if not blocks:
        return True
    block = min(blocks, key=lambda b: b.num_addresses)  # the most specific class
    return any(network.subnet_of(block) for network in covering)  # type: ignore[arg-type]


@given(interesting_v4, st.lists(networks_v4, max_size=4))
def test_guard_follows_its_documented_rule(
    address: ipaddress.IPv4Address, allowed: list[ipaddress.IPv4Network]
) -> None:
    guard = EgressGuard(allowed)
    assert (guard.reason(address) is None) == oracle(address, allowed)


@given(interesting_v4, st.lists(networks_v4, max_size=4))
def test_a_mapped_address_is_judged_as_its_ipv4(
    address: ipaddress.IPv4Address, allowed: list[ipaddress.IPv4Network]
) -> None:
    guard = EgressGuard(allowed)
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (guard.reason(mapped) is None) == (guard.reason(address) is None)


@given(st.one_of(st.ip_addresses(), st.text(max_size=40)), st.lists(st.text(max_size=20), max_size=3))
def test_garbage_raises_only_library_errors(address: Any, networks: list[str]) -> None:
    try:
        guard = EgressGuard(networks)
    except RegistryConfigError:
        guard = EgressGuard()
    try:
        reason = guard.reason(address)
    except RegistryConfigError:
        return
    assert reason is None or isinstance(reason, str)


@given(
    st.lists(st.one_of(interesting_v4, st.ip_addresses(v=6)), max_size=12),
    st.lists(st.one_of(networks_v4, st.sampled_from(SPECIAL_BLOCKS)), max_size=4),
)
def test_check_keeps_exactly_what_reason_allows(
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address], allowed: list[ipaddress.IPv4Network]
) -> None:
    """check() keeps most IPv4 addresses by a binary search over precomputed ranges: the same verdicts as reason()."""
    guard = EgressGuard(allowed)
    instances = [ServiceInstance(address, 80 + index) for index, address in enumerate(addresses)]
    kept, rejected = guard.check(instances)
    assert kept == tuple(i for i in instances if guard.reason(i.address) is None)
    assert rejected == tuple(
        RejectedInstance(i, why) for i in instances if (why := guard.reason(i.address)) is not None
    )


@pytest.mark.parametrize(
    ("allowed", "inside", "outside"),
    [
        (["0.0.0.0/0"], ["1.0.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
                         "100.100.100.199", "100.100.100.201", "223.255.255.255"],
         ["0.255.255.255", "127.0.0.1", "169.254.0.0", "169.254.255.255", "100.100.100.200", "224.0.0.0",
          "255.255.255.255"]),
        (["169.254.0.0/16"], [], ["169.254.169.254", "169.254.0.1"]),  # allowed, but by reason()'s longer way
        (["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8"], ["10.0.0.0", "11.255.255.255"], ["12.0.0.0", "9.255.255.255"]),
    ],
)  # fmt: skip
def test_the_fast_ranges_of_check_exclude_every_special_block(
    allowed: list[str], inside: list[str], outside: list[str]
) -> None:
    guard = EgressGuard(allowed)
    starts, ends = _plain_ipv4(guard._allowed)
    ranges = list(zip(starts, ends, strict=True))
    assert ranges == sorted(ranges)
    for text in inside + outside:
        value = int(ipaddress.IPv4Address(text))
        assert any(first <= value <= last for first, last in ranges) == (text in inside), text
        kept, _ = guard.check([ServiceInstance(text, 80)])
        assert bool(kept) == (guard.reason(text) is None), text
