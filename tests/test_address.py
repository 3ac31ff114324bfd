"""Hosts, IPs, ports and ``host:port`` text: the one place every other parser relies on."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import HOSTILE_FRAGMENTS, hostile_text, hostnames, ip_addresses, ports

from registry_config.address import (
    bad_character,
    format_host,
    format_host_port,
    is_hostname,
    parse_ip,
    parse_port,
    problem_character,
    split_host_port,
)
from registry_config.errors import InvalidAddress, RegistryConfigError
from registry_config.resolver import resolve, system_resolver


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", None)),
        ("10.0.0.1:8080", ("10.0.0.1", 8080)),
        ("Docker_Registry.Service.DC1.consul", ("docker_registry.service.dc1.consul", None)),
        ("docker_registry.service.dc1.consul:8080", ("docker_registry.service.dc1.consul", 8080)),
        ("localhost:1", ("localhost", 1)),
        ("localhost:65535", ("localhost", 65535)),
        ("host:0080", ("host", 80)),
        ("[::1]", ("::1", None)),
        ("[::1]:5000", ("::1", 5000)),
        ("[2001:DB8:0:0:0:0:0:1]:443", ("2001:db8::1", 443)),
        ("2001:db8::1", ("2001:db8::1", None)),
        ("_svc._tcp.example", ("_svc._tcp.example", None)),
        ("a" * 63 + ".example", ("a" * 63 + ".example", None)),
    ],
)
def test_split_host_port_accepts_and_normalizes(text: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "entry: the address is empty"),
        ("host:", "entry: port '' is not a number in 1..65535"),
        ("host:0", "entry: port '0' is not a number in 1..65535"),
        ("host:65536", "entry: port '65536' is not a number in 1..65535"),
        ("host:-1", "entry: port '-1' is not a number in 1..65535"),
        ("host:\uff18\uff10", "entry: port '\uff18\uff10' is not a number in 1..65535"),  # fullwidth "80"
        ("http://host", "entry: 'http://host' has a scheme; give host[:port] without one"),
        ("host name", "entry: 'host name' contains ' ' at column 4"),
        ("host\n", "entry: 'host\\n' contains '\\n' at column 4"),
        ("a,b", "entry: 'a,b' is neither an IP address nor a DNS name"),
        ("-host", "entry: '-host' is neither an IP address nor a DNS name"),
        ("host-", "entry: 'host-' is neither an IP address nor a DNS name"),
        ("a..b", "entry: 'a..b' is neither an IP address nor a DNS name"),
        ("host.", "entry: 'host.' is neither an IP address nor a DNS name"),
        ("300.1.2.3", "entry: '300.1.2.3' is neither an IP address nor a DNS name"),
        ("1234", "entry: '1234' is neither an IP address nor a DNS name"),
        ("a" * 64 + ".example", "is neither an IP address nor a DNS name"),
        (".".join(["a" * 60] * 5), "is neither an IP address nor a DNS name"),
        ("[::1", "entry: '[::1' opens '[' without closing it"),
        ("[::1]x", "entry: '[::1]x' has 'x' after ']'; expected ':port'"),
        ("[10.0.0.1]:80", "entry: '10.0.0.1' in brackets is not an IPv6 address"),
        ("[fe80::1%eth0]:80", "has a zone id"),
        ("fe80::1%eth0", "is not an IPv6 address; write an IPv6 address with a port as [addr]:port"),
        ("1200:0000:AB00:1234:0000:2552:7777:1313:8080", "is not an IPv6 address"),
        ("ünïcode.example", "is neither an IP address nor a DNS name"),
    ],
)
def test_split_host_port_refuses_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        split_host_port(text, where="entry")
    assert message in str(caught.value)


@pytest.mark.parametrize("value", [None, 8080, b"host:80", ["host"]])
def test_split_host_port_refuses_what_is_not_text(value: object) -> None:
    with pytest.raises(InvalidAddress, match="expected text"):
        split_host_port(value)  # type: ignore[arg-type]


def test_the_port_is_optional_and_missing_means_none() -> None:
    assert split_host_port("registry") == ("registry", None)


@given(hostnames(), ports())
def test_hostnames_with_ports_round_trip_lower_cased(host: str, port: int) -> None:
    assert split_host_port(f"{host}:{port}") == (host.lower(), port)
    assert is_hostname(host)


@given(ip_addresses(), ports())
def test_ip_literals_round_trip_through_format(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    text = format_host_port(ip, port)
    assert split_host_port(text) == (str(ip), port)
    assert split_host_port(format_host(ip)) == (str(ip), None)
    assert parse_ip(str(ip)) == ip


@given(st.text())
def test_split_host_port_raises_only_invalid_address(text: str) -> None:
    try:
        host, port = split_host_port(text)
    except InvalidAddress:
        return
    # What it accepts is safe to put on a command line and into a rule.
    assert bad_character(host) is None
    for forbidden in (",", "/", "@", "://"):
        assert forbidden not in host
    assert port is None or 1 <= port <= 65535


@given(hostile_text(base=hostnames()))
def test_hostile_fragments_never_pass_as_a_host(text: str) -> None:
    try:
        host, _ = split_host_port(text)
    except RegistryConfigError:
        return
    for fragment in HOSTILE_FRAGMENTS:
        if fragment in (":", "-", "_", "[", "]", "::"):
            continue  # legitimate inside a host[:port] or an IPv6 literal
        assert fragment not in host, (text, host)


def test_bad_character_points_at_the_first_one() -> None:
    assert bad_character("abc") is None
    assert bad_character("a b\tc") == (1, "' '")
    assert bad_character("ab\x00") == (2, "'\\x00'")
    assert bad_character("\u2028") == (0, "'\\u2028'")


def test_parse_port_names_where() -> None:
    assert parse_port("443", where="x") == 443
    with pytest.raises(InvalidAddress, match=r"^registry URL: port '1e3' is not a number in 1..65535$"):
        parse_port("1e3", where="registry URL")


def test_parse_ip_refuses_zones_and_names() -> None:
    assert parse_ip("fe80::1%eth0") is None
    assert parse_ip("localhost") is None
    assert parse_ip("010.0.0.1") is None  # leading zeros are ambiguous (octal), as in Go


def _by_ipaddress(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """What parse_ip answered before its inet_pton fast path: ipaddress alone decides."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "text",
    [
        "10.1.1.1",
        "0.0.0.0",
        "255.255.255.255",
        "010.1.1.1",
        "1.2.3.04",
        "1.2.3",
        "1.2.3.4.5",
        "1..2.3",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.4\n",
        "1.2.3.4\x00",
        "0x1.2.3.4",
        "256.1.1.1",
        "1.2.3.-1",
        "+1.2.3.4",
        "\uff11.2.3.4",  # a full-width digit
        "\u0661.2.3.4",  # an Arabic-Indic digit: str.isdigit says yes, an IP says no
        "1.2.3.4/32",
        "",
        "::ffff:10.0.0.1",
        "::1",
    ],
)
def test_parse_ip_fast_path_agrees_with_ipaddress(text: str) -> None:
    found = parse_ip(text)
    assert found == _by_ipaddress(text)
    assert type(found) is type(_by_ipaddress(text))


@given(st.one_of(st.text(alphabet="0123456789.x: \n", max_size=20), ip_addresses().map(str)))
def test_parse_ip_agrees_with_ipaddress_on_anything(text: str) -> None:
    assert parse_ip(text) == _by_ipaddress(text)


def test_format_host_brackets_only_ipv6() -> None:
    assert format_host("::1") == "[::1]"
    assert format_host(ipaddress.ip_address("10.0.0.1")) == "10.0.0.1"
    assert format_host_port("registry", 80) == "registry:80"
    assert format_host_port(ipaddress.ip_address("2001:db8::1"), 5000) == "[2001:db8::1]:5000"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("host\t:80", "contains '\\t' at column 4"),
        ("u:p ss@host\n", "contains '\\n' at column 8"),  # counted on '***@host\n', the text shown
        (
            "u:p ss@host",
            "contains whitespace or a control character in a part not shown (user-info, query or fragment)",
        ),
        ("host:80", None),
    ],
)
def test_problem_character_counts_columns_on_the_text_as_shown(text: str, words: str | None) -> None:
    assert problem_character(text) == words


@pytest.mark.parametrize(
    "text",
    ["user:s3cr3t@host:80", "http://user:s3cr3t@host:80", "u:s3/cr?e#t@host", "u:s3cr3t@[::1]:5000", "us:s3cr3t @h"],
)
def test_an_entry_with_user_info_is_refused_without_its_password(text: str) -> None:
    with pytest.raises(InvalidAddress, match="user-info") as caught:
        split_host_port(text, where="entry")
    assert "s3" not in str(caught.value)
    assert caught.value.__context__ is None


def test_a_where_that_quoted_the_entry_raw_is_scrubbed() -> None:
    # A caller (build_plan's extra_insecure) may put the entry itself into `where`.
    entry = "admin:hunter2/x@host:5000"
    with pytest.raises(InvalidAddress) as caught:
        split_host_port(entry, where=f"extra insecure registry #0 {entry!r}")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__context__ is None


# --- resolver -------------------------------------------------------------------------------------------------


def test_an_ip_literal_resolves_to_itself_without_asking() -> None:
    def fail(host: str) -> list[str]:
        raise AssertionError(f"resolver asked about {host}")

    assert resolve("10.0.0.1", fail) == (ipaddress.ip_address("10.0.0.1"),)
    assert resolve("2001:DB8::1", fail) == (ipaddress.ip_address("2001:db8::1"),)


def test_resolve_dedups_sorts_and_drops_junk() -> None:
    answers = [
        "10.0.0.2",
        ipaddress.ip_address("10.0.0.1"),
        "10.0.0.2",
        "::1",
        "not-an-ip",
        "fe80::1%eth0",
        b"10.0.0.3",
    ]
    assert resolve("name", lambda host: answers) == tuple(
        ipaddress.ip_address(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "::1", "fe80::1")
    )


def test_resolve_strips_zone_from_ip_objects() -> None:
    scoped = ipaddress.IPv6Address("fe80::1%eth0")
    assert resolve("name", lambda host: [scoped]) == (ipaddress.IPv6Address("fe80::1"),)


def test_a_resolver_answering_one_string_is_read_as_one_address() -> None:
    assert resolve("name", lambda host: "10.0.0.1") == (ipaddress.ip_address("10.0.0.1"),)  # type: ignore[arg-type,return-value]


def test_resolve_passes_os_errors_on() -> None:
    def missing(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "no such host")

    with pytest.raises(OSError, match="no such host"):
        resolve("missing.example", missing)


def test_system_resolver_knows_localhost() -> None:
    assert ipaddress.ip_address("127.0.0.1") in resolve("localhost")


def test_system_resolver_turns_idna_errors_into_gaierror() -> None:
    with pytest.raises(socket.gaierror, match="cannot encode"):
        system_resolver("a" * 64 + ".example")


@pytest.mark.parametrize("text", ["[fe80::1%eth0]:5000", "[fe80::1%25eth0]", "[fe80::1%1]:80"])
def test_a_zone_id_is_refused_as_a_zone_id(text: str) -> None:
    with pytest.raises(InvalidAddress, match=r"has a zone id .*zone ids are not supported"):
        split_host_port(text, where="entry")


@pytest.mark.parametrize("answer", [None, 42, 1.5])
def test_a_resolver_answering_no_addresses_at_all_is_an_oserror(answer: object) -> None:
    with pytest.raises(OSError, match="resolver answered"):
        resolve("registry.example", lambda _host: answer)  # type: ignore[arg-type,return-value]
