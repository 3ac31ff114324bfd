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
from registry_config.egress._addresses import embedded_ipv4
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


# -- IPv4 addresses embedded in IPv6 ------------------------------------------------------------------------------

ALLOW_ALL = ["0.0.0.0/0", "::/0"]


def nat64(ipv4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(ipv4))))


def six_to_four(ipv4: str) -> str:
    return str(ipaddress.IPv6Address(0x2002 << 112 | int(ipaddress.IPv4Address(ipv4)) << 80 | 1))


def compatible(ipv4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv4Address(ipv4))))


FORMS = [("NAT64", nat64), ("6to4", six_to_four), ("IPv4-compatible", compatible)]


def test_the_embedded_forms_are_spelled_as_the_issue_reports_them() -> None:
    assert nat64("169.254.169.254") == "64:ff9b::a9fe:a9fe"
    assert six_to_four("169.254.169.254") == "2002:a9fe:a9fe::1"
    assert compatible("169.254.169.254") == "::a9fe:a9fe"


@pytest.mark.parametrize(("form", "spell"), FORMS)
def test_allow_all_refuses_the_metadata_service_in_every_embedded_form(form: str, spell: Any) -> None:
    address = spell("169.254.169.254")
    assert EgressGuard(ALLOW_ALL).reason(address) == (
        f"{address} ({form} form of 169.254.169.254) is link-local (the cloud metadata service); the allowed network "
        "0.0.0.0/0 covers it, but such addresses are opened only by a network inside 169.254.169.254/32: list "
        "169.254.169.254/32 (or a network inside it) to allow it"
    )
    assert EgressGuard(["::/0"]).reason(address) == (
        f"{address} ({form} form of 169.254.169.254) is link-local (the cloud metadata service); not in the allowed "
        "networks"
    )
    assert EgressGuard().reason(address) == EgressGuard(["::/0"]).reason(address)
    # listed as the plain address must be listed, it opens (the IPv6 side by ::/0)
    assert EgressGuard(["::/0", "169.254.169.254/32"]).reason(address) is None
    # link-local listed still keeps the metadata service closed, as for the plain address
    assert EgressGuard(["::/0", "169.254.0.0/16"]).reason(address) is not None


@pytest.mark.parametrize(("form", "spell"), FORMS)
@pytest.mark.parametrize("loopback", ["127.0.0.1", "127.8.9.10"])
def test_allow_all_refuses_loopback_in_every_embedded_form(form: str, spell: Any, loopback: str) -> None:
    address = spell(loopback)
    assert EgressGuard(ALLOW_ALL).reason(address) == (
        f"{address} ({form} form of {loopback}) is loopback; the allowed network 0.0.0.0/0 covers it, but such "
        "addresses are opened only by a network inside 127.0.0.0/8: list 127.0.0.0/8 (or a network inside it) to "
        "allow it"
    )
    assert EgressGuard(["::/0", "127.0.0.0/8"]).reason(address) is None
    assert EgressGuard(["::/0", f"{loopback}/32"]).reason(address) is None
    assert EgressGuard(["::/0", "127.0.0.0/8"]).reason(spell("169.254.169.254")) is not None


@pytest.mark.parametrize(("form", "spell"), FORMS)
def test_an_embedded_private_address_needs_its_ipv4_and_its_ipv6_allowed(form: str, spell: Any) -> None:
    address = spell("10.1.2.3")
    assert EgressGuard(ALLOW_ALL).reason(address) is None
    assert EgressGuard(["::/0", "10.0.0.0/8"]).reason(address) is None
    # the IPv4 it carries is not allowed: named, with the form
    assert EgressGuard(["::/0", "192.168.0.0/16"]).reason(address) == (
        f"{address} ({form} form of 10.1.2.3) is not in the allowed networks (192.168.0.0/16, ::/0)"
    )
    # the IPv4 is allowed, the IPv6 address is not (the default guard: fc00::/7 holds none of these forms)
    assert EgressGuard().reason(address) == (
        f"{address} is not in the allowed networks (10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, "
        f"fc00::/7); it is the {form} form of 10.1.2.3, which they allow, but the IPv6 address itself must be "
        "allowed too"
    )
    # an IPv6 network listed, however exactly, never opens the IPv4 address inside
    assert EgressGuard([f"{address}/128"]).reason(address) is not None


@pytest.mark.parametrize(("form", "spell"), FORMS)
def test_check_drops_embedded_forms_too(form: str, spell: Any) -> None:
    instances = [ServiceInstance(spell("169.254.169.254"), 80), ServiceInstance(spell("10.0.0.1"), 80)]
    kept, rejected = EgressGuard(ALLOW_ALL).check(instances)
    assert kept == (instances[1],)
    assert [r.instance for r in rejected] == [instances[0]]
    assert f"{form} form of 169.254.169.254" in rejected[0].reason
    with pytest.raises(EgressPolicyError, match=f"{form} form of 169.254.169.254"):
        EgressGuard(ALLOW_ALL, on_violation="error").check(instances)


def test_unspecified_and_loopback_ipv6_are_judged_as_themselves() -> None:
    """``::`` and ``::1`` lie in ``::/96`` but are IPv6's own addresses, not IPv4-compatible 0.0.0.0 and 0.0.0.1."""
    guard = EgressGuard(["::/0", "0.0.0.0/8"])
    assert guard.reason("::") == (
        ":: is the unspecified address; the allowed network ::/0 covers it, but such addresses are opened only by a "
        "network inside ::/128: list ::/128 (or a network inside it) to allow it"
    )
    assert guard.reason("::1") is not None
    assert guard.reason("::2") is None  # IPv4-compatible 0.0.0.2, whose class 0.0.0.0/8 is listed
    assert EgressGuard(["::1"]).reason("::1") is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("64:ff9b::a9fe:a9fe", ("169.254.169.254", "NAT64")),
        ("64:ff9b::", ("0.0.0.0", "NAT64")),
        ("64:ff9b::ffff:ffff", ("255.255.255.255", "NAT64")),
        ("2002:a9fe:a9fe::", ("169.254.169.254", "6to4")),
        ("2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff", ("169.254.169.254", "6to4")),
        ("2002::", ("0.0.0.0", "6to4")),
        ("::a9fe:a9fe", ("169.254.169.254", "IPv4-compatible")),
        ("::2", ("0.0.0.2", "IPv4-compatible")),
        ("::ffff:ffff", ("255.255.255.255", "IPv4-compatible")),
        ("::ffff", ("0.0.255.255", "IPv4-compatible")),
        ("::", None),
        ("::1", None),
        ("::ffff:a9fe:a9fe", None),  # IPv4-mapped: unmap() reads it, as the IPv4 address itself
        ("64:ff9b::1:0:0", None),  # outside the /96
        ("64:ff9b:1::a9fe:a9fe", None),  # RFC 8215's local-use prefix: not one of the forms decided
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2003::", None),
        ("1::", None),
        ("fd00::a9fe:a9fe", None),
    ],
)
def test_embedded_ipv4_reads_each_form_and_nothing_else(address: str, expected: tuple[str, str] | None) -> None:
    found = embedded_ipv4(ipaddress.IPv6Address(address))
    assert found == (None if expected is None else (ipaddress.IPv4Address(expected[0]), expected[1]))
    if found is not None and found[1] == "6to4":
        assert found[0] == ipaddress.IPv6Address(address).sixtofour


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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
COMPATIBLE = ipaddress.ip_network("::/96")
MAPPED = ipaddress.ip_network("::ffff:0:0/96")
IPV6_OWN = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))


def embedded(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an embedded form carries, written from the RFCs with ipaddress alone (mapped ones too)."""
    if address.version == 4:
        return None
    if address in MAPPED or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour  # type: ignore[union-attr]
    if address in COMPATIBLE and address not in IPV6_OWN:
        return ipaddress.IPv4Address(int(address))
    return None


def plain_rule(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    """The documented rule for one address, with ipaddress alone."""
    covering = [network for network in allowed if network.version == address.version and address in network]
    if not covering:
        return False
    blocks = [block for block in SPECIAL_BLOCKS if block.version == address.version and address in block]
    if not blocks:
        return True
    block = min(blocks, key=lambda b: b.num_addresses)  # the most specific class
    return any(network.subnet_of(block) for network in covering)  # type: ignore[arg-type]


def oracle(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    """The class docstring's rule: a mapped address is its IPv4; another embedded form needs both allowed."""
    inner = embedded(address)
    if inner is None:
        return plain_rule(address, allowed)
    if address in MAPPED:
        return plain_rule(inner, allowed)
    return plain_rule(inner, allowed) and plain_rule(address, allowed)


def in_refused_class_unopened(address: IPAddress, listed: tuple[IPNetwork, ...]) -> bool:
    """In a refused class, and no listed network that covers it lies inside that class's block."""
    blocks = [block for block in SPECIAL_BLOCKS if block.version == address.version and address in block]
    return bool(blocks) and not any(
        network.version == address.version and address in network and network.subnet_of(block)  # type: ignore[arg-type]
        for network in listed
        for block in blocks
    )


# Addresses of both families: IPv4 ones near the special classes, any IPv6 address, IPv6's own special addresses,
# and each embedded form of an interesting IPv4 address.
embedded_forms = st.one_of(
    interesting_v4.map(lambda a: ipaddress.IPv6Address(int(MAPPED.network_address) | int(a))),
    interesting_v4.map(lambda a: ipaddress.IPv6Address(int(NAT64.network_address) | int(a))),
    st.builds(lambda a, low: ipaddress.IPv6Address(0x2002 << 112 | int(a) << 80 | low), interesting_v4,
              st.integers(0, 2**80 - 1)),
    interesting_v4.map(lambda a: ipaddress.IPv6Address(int(a))),
)  # fmt: skip
interesting_v6 = st.one_of(
    st.ip_addresses(v=6),
    st.sampled_from(["::", "::1", "fe80::1", "fd00:ec2::254", "ff02::1", "fd00::1", "2001:db8::1"]).map(
        ipaddress.IPv6Address
    ),
    embedded_forms,
)
any_address = st.one_of(interesting_v4, interesting_v6)
networks_v6 = st.builds(lambda a, n: ipaddress.ip_network((a, n), strict=False), interesting_v6, st.integers(0, 128))
network_lists = st.lists(
    st.one_of(
        networks_v4,
        networks_v6,
        st.sampled_from(SPECIAL_BLOCKS),
        st.sampled_from(["0.0.0.0/0", "::/0", "64:ff9b::/96", "2002::/16", "::/96", "::ffff:0:0/96"]).map(
            ipaddress.ip_network
        ),
    ),
    max_size=5,
)


@given(any_address, network_lists)
def test_guard_follows_its_documented_rule(address: IPAddress, allowed: list[IPNetwork]) -> None:
    guard = EgressGuard(allowed)
    assert (guard.reason(address) is None) == oracle(address, guard.allowed_networks)


@given(any_address, network_lists, st.booleans())
def test_a_kept_address_is_never_in_a_refused_class_that_no_listed_network_opens(
    address: IPAddress, allowed: list[IPNetwork], allow_all: bool
) -> None:
    """Neither the address nor the IPv4 address it carries, whatever is listed, an explicit allow-all included."""
    guard = EgressGuard([*allowed, *(map(ipaddress.ip_network, ALLOW_ALL) if allow_all else ())])
    if guard.reason(address) is not None:
        return
    listed = guard.allowed_networks
    inner = embedded(address)
    if inner is None or address not in MAPPED:
        assert not in_refused_class_unopened(address, listed), address
    if inner is not None:
        assert not in_refused_class_unopened(inner, listed), (address, inner)
        assert any(network.version == 4 and inner in network for network in listed), (address, inner)


@given(interesting_v4, network_lists)
def test_every_embedded_form_is_refused_when_its_ipv4_is(
    address: ipaddress.IPv4Address, allowed: list[IPNetwork]
) -> None:
    guard = EgressGuard(allowed)
    if guard.reason(address) is None:
        return
    for spell in (nat64, six_to_four, compatible):
        form = ipaddress.IPv6Address(spell(str(address)))
        if form in IPV6_OWN:
            continue  # IPv6's own addresses, judged as themselves
        why = guard.reason(form)
        assert why is not None, form
        assert f"form of {address})" in why, why


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


# -- the fast path of check() answers as reason() does, at every edge of the special blocks --------------------------

# The IPv4 special blocks, written out here rather than read from the guard: the metadata addresses, broadcast
# inside reserved, the adjacent multicast and reserved blocks.
_V4_SPECIAL_BLOCKS = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "169.254.169.254/32",
        "100.100.100.200/32",
        "255.255.255.255/32",
        "0.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_V4_SPECIAL_EDGES = sorted(
    {
        edge + delta
        for block in _V4_SPECIAL_BLOCKS
        for edge in (int(block.network_address), int(block.broadcast_address))
        for delta in (-2, -1, 0, 1, 2)
        if 0 <= edge + delta < 2**32
    }
)
_edge_networks = st.builds(
    lambda value, prefix: ipaddress.IPv4Network((value, prefix), strict=False),
    st.sampled_from(_V4_SPECIAL_EDGES),
    st.integers(0, 32),
)
_ipv6_covering_ipv4_values = st.sampled_from(["::/0", "::/96", "::/64", "fd00::/8"]).map(ipaddress.IPv6Network)


def _assert_check_agrees_with_reason(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
    """At every edge of the special blocks, check() keeps an address exactly when reason() allows it."""
    guard = EgressGuard(allowed_networks=networks)
    for value in _V4_SPECIAL_EDGES:
        address = ipaddress.IPv4Address(value)
        kept, _ = guard.check([ServiceInstance(address, 80)])
        assert bool(kept) == guard.allows(address), (str(address), [str(n) for n in networks])


@given(st.lists(_edge_networks | _ipv6_covering_ipv4_values, min_size=1, max_size=4))
def test_check_keeps_exactly_the_addresses_reason_allows_at_the_special_blocks_edges(
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> None:
    """check() keeps a plain IPv4 address after one binary search over the allowed ranges minus the special blocks
    (merged, carved); every other address goes through reason(). The two must agree everywhere, and most of all
    where allowed networks touch, overlap or end at a special block (the metadata address inside link-local, the
    adjacent multicast and reserved blocks, broadcast inside reserved), and where only IPv6 networks are allowed
    (whose integer ranges also cover IPv4's)."""
    _assert_check_agrees_with_reason(networks)


def test_allowing_only_ipv6_networks_opens_no_ipv4_address() -> None:
    """``::/0`` is every IPv6 address and no IPv4 one, though its integer range holds every IPv4 integer."""
    guard = EgressGuard(allowed_networks=["::/0"])
    kept, rejected = guard.check([ServiceInstance("10.0.0.1", 8080), ServiceInstance("fd00::1", 8080)])
    assert [str(instance.address) for instance in kept] == ["fd00::1"]
    assert [str(refused.instance.address) for refused in rejected] == ["10.0.0.1"]


def test_an_ipv6_address_whose_integer_is_an_allowed_ipv4_one_is_judged_as_ipv6() -> None:
    """``::a00:1`` (IPv4-compatible ``::10.0.0.1``) has the integer of 10.0.0.1: the IPv4 fast path must never see
    it, or allowing 10.0.0.0/8 would open an IPv6 address nobody allowed."""
    guard = EgressGuard(allowed_networks=["10.0.0.0/8"])
    kept, rejected = guard.check([ServiceInstance("::a00:1", 8080), ServiceInstance("10.0.0.1", 8080)])
    assert [str(instance.address) for instance in kept] == ["10.0.0.1"]
    assert [str(refused.instance.address) for refused in rejected] == ["::a00:1"]


def test_a_zoned_network_is_refused() -> None:
    """``ipaddress`` reads ``fe80::%eth0/64``; a zone names an interface of one machine, not a network a rule can
    open, so the guard refuses it rather than allowing a link-local network by accident."""
    with pytest.raises(InvalidAddress, match="is not an IP network"):
        EgressGuard(allowed_networks=["fe80::%eth0/64"])


@pytest.mark.parametrize(
    ("given", "allowed", "refused"),
    [("::ffff:0:0/96", "10.0.0.1", "fd00::1"), ("::ffff:10.0.0.1/128", "10.0.0.1", "10.0.0.0")],
)
def test_an_ipv4_mapped_network_allows_the_ipv4_addresses_it_maps(given: str, allowed: str, refused: str) -> None:
    """``::ffff:0:0/96`` is all of IPv4 as the wire sees it, ``::ffff:10.0.0.1/128`` exactly 10.0.0.1: each is
    read as the IPv4 network it maps, down to the last address bit."""
    guard = EgressGuard(allowed_networks=[given])
    assert guard.allows(allowed)
    assert not guard.allows(refused)


def test_the_repr_shows_the_settings_not_the_derived_intervals() -> None:
    """A guard's repr is what a person gave it; the integer intervals it derives for speed are not shown."""
    shown = repr(EgressGuard(allowed_networks=["10.0.0.0/8"]))
    assert shown == "EgressGuard(allowed_networks=(IPv4Network('10.0.0.0/8'),), on_violation='drop')"


def test_two_allowed_addresses_with_a_gap_do_not_open_the_gap() -> None:
    """The fast path merges allowed ranges that touch or overlap; two that leave one address between them stay two."""
    guard = EgressGuard(allowed_networks=["10.0.0.0/32", "10.0.0.2/32", "10.0.1.0/24", "10.0.1.128/25"])
    kept, _ = guard.check([ServiceInstance(f"10.0.0.{i}", 80) for i in range(4)])
    assert [str(instance.address) for instance in kept] == ["10.0.0.0", "10.0.0.2"]


@pytest.mark.parametrize("special", _V4_SPECIAL_BLOCKS, ids=str)
def test_check_agrees_with_reason_for_networks_that_start_or_end_at_a_special_block(
    special: ipaddress.IPv4Network,
) -> None:
    """Every network (any prefix) that holds the block's first or last address, alone and together with the block
    itself: check() keeps exactly what reason() allows at each edge (100.100.100.200/29 starts at the Alibaba
    metadata address, and must not open it)."""
    for edge in (special.network_address, special.broadcast_address):
        for prefix in range(33):
            network = ipaddress.IPv4Network((int(edge), prefix), strict=False)
            _assert_check_agrees_with_reason([network])
            _assert_check_agrees_with_reason([network, special])


def test_a_refusal_names_the_first_covering_network_and_counts_the_networks_not_shown() -> None:
    """A special address under a broad allowed network names the first network (in the order given) that covers
    it; a refusal lists six networks and says how many more there are."""
    broad = EgressGuard(allowed_networks=["0.0.0.0/0", "96.0.0.0/3"])
    assert "the allowed network 0.0.0.0/0 covers it" in (broad.reason("127.0.0.1") or "")
    for count, more in ((6, ""), (7, " and 1 more"), (13, " and 7 more")):
        guard = EgressGuard(allowed_networks=[f"10.{i}.0.0/16" for i in range(count)])
        why = guard.reason("192.0.2.1") or ""
        assert why.endswith(f"10.5.0.0/16{more})"), why


def test_on_violation_is_keyword_only() -> None:
    """``EgressGuard(networks, "error")`` is refused: whether a refused instance is dropped or raises is said by
    name."""
    with pytest.raises(TypeError):
        EgressGuard(["10.0.0.0/8"], "error")  # type: ignore[misc]
