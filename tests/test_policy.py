"""InsecurityPolicy: moby's insecure-registries semantics, with its test vectors.

The vectors come from moby ``registry/config_test.go`` (``TestLoadInsecureRegistries``)
and ``registry/registry_test.go`` (``TestIsSecureIndex``, ``TestNewIndexInfo``), with
moby's mock resolver (``overrideLookupIP``). Moby asks "is it secure"; we ask "is it
insecure", so every expectation is negated.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import host_ports, hostile_text, hostnames, ipv4_addresses, ports

from registry_config.errors import InvalidAddress
from registry_config.policy import ALWAYS_INSECURE, InsecurityPolicy

MOBY_HOSTS = {
    "localhost": ["127.0.0.1", "::1"],
    "example.com": ["42.42.42.42"],
    "other.com": ["43.43.43.43"],
}


def moby_lookup(host: str) -> list[str]:
    """moby's overrideLookupIP: a few names, and 'no such host' for the rest."""
    try:
        return MOBY_HOSTS[host]
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "lookup: no such host") from None


def policy(entries: Iterable[str] = ()) -> InsecurityPolicy:
    return InsecurityPolicy.from_entries(entries, resolver=moby_lookup)


# TestIsSecureIndex: (address, insecure-registries, moby's "secure")
IS_SECURE_INDEX = [
    ("docker.io", [], True),
    ("example.com", [], True),
    ("example.com", ["example.com"], False),
    ("localhost", ["localhost:5000"], False),
    ("localhost:5000", ["localhost:5000"], False),
    ("localhost", ["example.com"], False),
    ("127.0.0.1:5000", ["127.0.0.1:5000"], False),
    ("localhost", [], False),
    ("localhost:5000", [], False),
    ("127.0.0.1", [], False),
    ("localhost", ["example.com"], False),
    ("127.0.0.1", ["example.com"], False),
    ("example.com", [], True),
    ("example.com", ["example.com"], False),
    ("127.0.0.1", ["example.com"], False),
    ("127.0.0.1:5000", ["example.com"], False),
    ("example.com:5000", ["42.42.0.0/16"], False),
    ("example.com", ["42.42.0.0/16"], False),
    ("example.com:5000", ["42.42.42.42/8"], False),
    ("127.0.0.1:5000", ["127.0.0.0/8"], False),
    ("42.42.42.42:5000", ["42.1.1.1/8"], False),
    ("invalid.example.com", ["42.42.0.0/16"], True),
    ("invalid.example.com", ["invalid.example.com"], False),
    ("invalid.example.com:5000", ["invalid.example.com"], True),
    ("invalid.example.com:5000", ["invalid.example.com:5000"], False),
]


@pytest.mark.parametrize(("name", "entries", "secure"), IS_SECURE_INDEX)
def test_is_secure_index_vectors(name: str, entries: list[str], secure: bool) -> None:
    assert policy(entries).is_insecure(name) is not secure


# TestNewIndexInfo, "mirrors" (insecure: example.com) and "custom insecure" (42.42.0.0/16) cases.
@pytest.mark.parametrize(
    ("entries", "name", "secure"),
    [
        (["example.com"], "docker.io", True),
        (["example.com"], "index.docker.io", True),
        (["example.com"], "example.com", False),
        (["example.com"], "example.com:5000", True),
        (["example.com"], "127.0.0.1", False),
        (["example.com"], "127.0.0.1:5000", False),
        (["example.com"], "127.255.255.255", False),
        (["example.com"], "127.255.255.255:5000", False),
        (["example.com"], "::1", False),
        (["example.com"], "[::1]:5000", False),
        (["example.com"], "::2", True),  # IPv6 has a single loopback address
        (["example.com"], "[::2]:5000", True),
        (["example.com"], "other.com", True),
        (["42.42.0.0/16"], "example.com", False),
        (["42.42.0.0/16"], "example.com:5000", False),
        (["42.42.0.0/16"], "127.0.0.1", False),
        (["42.42.0.0/16"], "127.0.0.1:5000", False),
        (["42.42.0.0/16"], "42.42.0.1:5000", False),
        (["42.42.0.0/16"], "42.43.0.1:5000", True),
        (["42.42.0.0/16"], "other.com", True),
    ],
)
def test_new_index_info_vectors(entries: list[str], name: str, secure: bool) -> None:
    assert policy(entries).is_insecure(name) is not secure


def test_docker_hub_is_never_insecure_even_when_it_resolves_to_loopback() -> None:
    loopback = InsecurityPolicy.from_entries(["127.0.0.0/8"], resolver=lambda host: ["127.0.0.1"])
    assert not loopback.is_insecure("docker.io")
    assert not loopback.is_insecure("index.docker.io")
    assert not loopback.is_insecure("DOCKER.IO")
    # Only those two names are special, as in moby: the registry endpoint follows the usual rules.
    assert loopback.is_insecure("registry-1.docker.io")


def test_a_name_that_does_not_resolve_is_secure() -> None:
    assert not policy(["0.0.0.0/0", "::/0"]).is_insecure("nowhere.example")


def test_any_resolved_address_in_a_network_makes_it_insecure() -> None:
    mixed = InsecurityPolicy.from_entries(["10.0.0.0/8"], resolver=lambda host: ["192.0.2.1", "10.1.2.3"])
    assert mixed.is_insecure("mixed.example")
    assert mixed.is_insecure("mixed.example:5000")


def test_loopback_is_always_insecure_whatever_the_entries() -> None:
    for entries in ([], ["example.com"], ["10.0.0.0/8"]):
        assert policy(entries).is_insecure("127.0.0.1")
        assert policy(entries).is_insecure("[::1]:5000")
        assert policy(entries).is_insecure("localhost:5000")
    assert [str(n) for n in ALWAYS_INSECURE] == ["127.0.0.0/8", "::1/128"]


def test_ipv4_mapped_addresses_match_ipv4_networks_as_in_go() -> None:
    mapped = InsecurityPolicy.from_entries(["10.0.0.0/8"], resolver=lambda host: ["::ffff:10.1.1.1"])
    assert mapped.is_insecure("mapped.example")
    assert InsecurityPolicy.from_entries([]).is_insecure("::ffff:127.0.0.1")


def test_the_port_is_significant_for_host_keys() -> None:
    p = policy(["registry.internal:5000"])
    assert p.is_insecure("registry.internal:5000")
    assert not p.is_insecure("registry.internal")
    assert not p.is_insecure("registry.internal:5001")


def test_host_keys_compare_case_insensitively() -> None:
    assert policy(["Registry.Internal:5000"]).is_insecure("REGISTRY.internal:5000")


def test_ipv6_keys_match_in_any_spelling() -> None:
    p = policy(["2001:db8::1", "[2001:DB8:0:0::2]:80"])
    assert p.is_insecure("2001:db8::1")
    assert p.is_insecure("[2001:db8::1]")
    assert p.is_insecure("[2001:db8::2]:80")
    assert not p.is_insecure("[2001:db8::2]:81")
    assert not p.is_insecure("[2001:db8::1]:80")


def test_the_resolver_is_not_asked_about_ip_literals_or_listed_keys() -> None:
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        return ["192.0.2.1"]

    p = InsecurityPolicy.from_entries(["listed.example", "10.0.0.0/8"], resolver=resolver)
    assert p.is_insecure("listed.example")
    assert p.is_insecure("10.0.0.5:5000")
    assert not p.is_insecure("unlisted.example")
    assert asked == ["unlisted.example"]


def test_the_default_resolver_is_the_system_one() -> None:
    assert InsecurityPolicy.from_entries([]).is_insecure("localhost:5000")


# --- reading entries: TestLoadInsecureRegistries -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:80", "[2001:db8::1]:80"),
        ("http://mytest.com", "mytest.com"),
        ("https://mytest.com", "mytest.com"),
        ("HTTP://mytest.com", "mytest.com"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("Docker_Registry.Service.Consul:8080", "docker_registry.service.consul:8080"),
    ],
)
def test_load_insecure_registries_keys(entry: str, key: str) -> None:
    assert policy([entry]).entries == (key,)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("svn://mytest.com", "insecure registry #1 'svn://mytest.com' should not contain '://'"),
        ("-invalid-registry", "'-invalid-registry' is neither an IP address nor a DNS name"),
        ("mytest-.com", "'mytest-.com' is neither an IP address nor a DNS name"),
        ("1200:0000:AB00:1234:0000:2552:7777:1313:8080", "is not an IPv6 address"),
        ("mytest.com:500000", "port '500000' is not a number in 1..65535"),
        ('"mytest.com"', "is neither an IP address nor a DNS name"),
        ('"mytest.com:5000"', "is neither an IP address nor a DNS name"),
        ("mytest.com:0", "port '0' is not a number in 1..65535"),
        ("", "the address is empty"),
        ("http://", "the address is empty"),
        ("a, b", "contains ' ' at column 2"),
        ("a\nb", "contains '\\n' at column 1"),
        ("a,b", "'a,b' is neither an IP address nor a DNS name"),
        ("http://mytest.com/", "is neither host[:port] nor a CIDR network"),
        ("http://http://mytest.com", "should not contain '://'"),
        ("10.0.0.0/33", "is not a valid CIDR network"),
        ("10.0.0.0/255.0.0.0", "is neither host[:port] nor a CIDR network"),
        ("10.0.0/8", "is not a valid CIDR network"),
        ("fe80::%eth0/64", "is neither host[:port] nor a CIDR network"),
        ("registry/8", "is neither host[:port] nor a CIDR network"),
    ],
)
def test_load_insecure_registries_errors(entry: str, message: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        policy(["good.example", entry])
    assert message in str(caught.value)
    assert "insecure registry #1" in str(caught.value)


@pytest.mark.parametrize(
    "entry",
    [
        "http://user:s3cretpw@registry:5000",
        "https://u:s3cretpw@10.0.0.0/8",
        "u:s3cretpw@registry",
        "ftp://u:s3cretpw@h",
    ],
)
def test_a_password_in_an_entry_is_never_echoed(entry: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        policy([entry])
    assert "s3cretpw" not in str(caught.value)


@pytest.mark.parametrize("value", [None, 5000, [b"registry"], [["registry"]]])
def test_entries_must_be_text(value: object) -> None:
    with pytest.raises(InvalidAddress, match="insecure registr"):
        InsecurityPolicy.from_entries(value)  # type: ignore[arg-type]


def test_a_single_string_is_one_entry() -> None:
    assert InsecurityPolicy.from_entries("registry:5000").entries == ("registry:5000",)


def test_scheme_prefixes_are_stripped_with_a_warning_that_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="registry_config.policy"):
        p = policy(["http://mytest.com", "HTTPS://other.example:8443", "plain.example"])
    assert p.entries == ("mytest.com", "other.example:8443", "plain.example")
    assert p.warnings == (
        "insecure registry #0 'http://mytest.com' should not contain 'http://' "
        "(the Docker daemon would never match it); using 'mytest.com'",
        "insecure registry #1 'HTTPS://other.example:8443' should not contain 'HTTPS://' "
        "(the Docker daemon would never match it); using 'other.example:8443'",
    )
    assert [record.getMessage() for record in caplog.records] == list(p.warnings)
    assert p.is_insecure("mytest.com")


def test_docker_hub_entries_are_dropped_with_a_warning() -> None:
    p = policy(["docker.io", "https://index.docker.io", "docker.io:443"])
    assert p.entries == ("docker.io:443",)
    assert len(p.warnings) == 2
    assert "names Docker Hub, which the daemon never treats as insecure; ignored" in p.warnings[0]
    assert "should not contain 'https://'" in p.warnings[1]
    assert "names Docker Hub" in p.warnings[1]


def test_entries_are_normalized_deduplicated_and_ordered() -> None:
    p = policy(
        [
            "10.0.0.1/8",
            "b.example:80",
            "B.example:80",
            "a.example",
            "http://a.example",
            "192.0.2.42/24",
            "10.0.0.0/8",
            "fd00::/8",
            "[2001:db8::1]:5000",
            "10.0.0.0/16",
        ]
    )
    assert p.entries == (
        "[2001:db8::1]:5000",
        "a.example",
        "b.example:80",
        "10.0.0.0/8",
        "10.0.0.0/16",
        "192.0.2.0/24",
        "fd00::/8",
    )
    assert p.hosts == ("[2001:db8::1]:5000", "a.example", "b.example:80")
    assert p.networks == tuple(
        ipaddress.ip_network(n) for n in ("10.0.0.0/8", "10.0.0.0/16", "192.0.2.0/24", "fd00::/8")
    )


@given(st.lists(host_ports() | ipv4_addresses().map(lambda ip: f"{ip}/24"), max_size=8), st.randoms())
def test_order_and_duplicates_do_not_matter(entries: list[str], random: object) -> None:
    shuffled = entries + entries[:2]
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    a = InsecurityPolicy.from_entries(entries)
    b = InsecurityPolicy.from_entries(shuffled)
    assert a == b
    assert a.entries == b.entries
    assert len(set(a.entries)) == len(a.entries)


@given(st.lists(host_ports(), max_size=6))
def test_entries_read_back_to_the_same_policy(entries: list[str]) -> None:
    p = InsecurityPolicy.from_entries(entries)
    assert InsecurityPolicy.from_entries(p.entries) == p
    assert InsecurityPolicy.from_entries(p.entries).entries == p.entries


@given(hostnames(), ports())
def test_every_listed_key_is_insecure(host: str, port: int) -> None:
    p = InsecurityPolicy.from_entries([f"{host}:{port}"], resolver=moby_lookup)
    assert p.is_insecure(f"{host.upper()}:{port}")


@given(ipv4_addresses(), st.integers(min_value=0, max_value=32), ipv4_addresses())
def test_cidr_membership_is_exact(network_ip: ipaddress.IPv4Address, prefix: int, ip: ipaddress.IPv4Address) -> None:
    network = ipaddress.ip_network(f"{network_ip}/{prefix}", strict=False)
    p = InsecurityPolicy.from_entries([f"{network_ip}/{prefix}"], resolver=lambda host: [ip])
    expected = ip in network or ip.is_loopback
    assert p.is_insecure("name.example") is expected
    assert p.is_insecure(f"{ip}:5000") is expected


@given(st.lists(st.text(), max_size=4))
def test_from_entries_raises_only_invalid_address(entries: list[str]) -> None:
    try:
        p = InsecurityPolicy.from_entries(entries, resolver=moby_lookup)
    except InvalidAddress:
        return
    for entry in p.entries:
        for forbidden in (",", " ", "\n", "://", "@"):
            assert forbidden not in entry


@given(st.lists(hostile_text(base=host_ports()), min_size=1, max_size=3))
def test_hostile_entries_never_survive_as_hostile_keys(entries: list[str]) -> None:
    try:
        p = InsecurityPolicy.from_entries(entries, resolver=moby_lookup)
    except InvalidAddress:
        return
    for entry in p.entries:
        assert all(char.isprintable() and not char.isspace() for char in entry)
        for forbidden in (",", "://", "@", ";", "'", '"', "`", "$"):
            assert forbidden not in entry


@given(st.text())
def test_is_insecure_raises_only_invalid_address(name: str) -> None:
    with contextlib.suppress(InvalidAddress):
        assert isinstance(policy([]).is_insecure(name), bool)


# --- text --------------------------------------------------------------------------------------------------------


def test_str_and_repr() -> None:
    p = InsecurityPolicy.from_entries(["http://b.example", "10.0.0.0/8", "a.example:5000"])
    assert str(p) == (
        "insecure registries: a.example:5000, b.example, 10.0.0.0/8 (loopback 127.0.0.0/8 and ::1/128 always)"
    )
    assert repr(p) == "InsecurityPolicy.from_entries(['a.example:5000', 'b.example', '10.0.0.0/8'])"
    assert eval(repr(p), {"InsecurityPolicy": InsecurityPolicy}) == p  # noqa: S307 (repr is documented to rebuild)
    assert repr(policy([])) == "InsecurityPolicy.from_entries([], resolver=...)"
    assert str(InsecurityPolicy.from_entries([])).startswith("insecure registries: none ")


def test_equality_ignores_resolver_and_warnings() -> None:
    assert policy(["http://a.example"]) == InsecurityPolicy.from_entries(["a.example"])
    assert hash(policy(["a.example"])) == hash(InsecurityPolicy.from_entries(["a.example"]))
    assert policy(["a.example"]) != policy(["a.example:80"])


@pytest.mark.parametrize(
    ("hosts", "networks", "message"),
    [
        (("a, b",), (), "is not normalized"),
        (("A.example",), (), "is not normalized"),
        (("http://a.example",), (), "is not normalized"),
        (("10.0.0.0/8",), (), "is not normalized"),
        (("b.example", "a.example"), (), "unique and sorted"),
        (("a.example", "a.example"), (), "unique and sorted"),
        ((), ("10.0.0.0/8",), "is not an IP network"),
        (["a.example"], (), "are tuples"),
    ],
)
def test_direct_construction_keeps_the_invariants(hosts: object, networks: object, message: str) -> None:
    with pytest.raises(InvalidAddress, match=message):
        InsecurityPolicy(hosts, networks)  # type: ignore[arg-type]


def test_direct_construction_of_normalized_entries_works() -> None:
    built = InsecurityPolicy(("a.example", "b.example:80"), (ipaddress.ip_network("10.0.0.0/8"),))
    assert built == InsecurityPolicy.from_entries(["b.example:80", "10.0.0.0/8", "a.example"])
