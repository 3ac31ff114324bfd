"""DnsBackend against a real DNS server (dnsmasq) shaped like Consul's DNS interface, and against fakes."""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.SRV
import dns.rrset
import pytest
from _dnsmasq import Dnsmasq, FakeNameserver, Node, Records, dnsmasq, reply_to
from _integration import unavailable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import registry_config.discovery.dns as dns_module
from registry_config.address import is_hostname
from registry_config.discovery.dns import DnsBackend
from registry_config.discovery.model import ServiceQuery
from registry_config.errors import (
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryQueryError,
    DiscoveryUnavailable,
    InvalidAddress,
    InvalidInput,
    MissingDependencyError,
    UnknownBackendError,
)

integration = pytest.mark.integration

NODES = (
    Node("node-a", ("10.244.2.6", "fd00:244::6")),
    Node("node-b", ("10.244.2.7", "fd00:244::7")),
)
FLEET = tuple(Node(f"reg{i:02d}", (f"10.20.{i // 200}.{i % 200 + 1}", f"fd00:20::{i + 1:x}")) for i in range(50))


def consul_records() -> Records:
    """The records of a small Consul cluster, as dnsmasq serves them."""
    records = Records().service("docker_registry", NODES, [8080, 8081])
    records = records.service("docker_registry", NODES[:1], 8080, tag="primary")
    # A service whose target dnsmasq knows only by --address: no glue in the SRV answer.
    records = records.srv("external.service.consul", "mirror.registry.test", 5000)
    records = records.address("mirror.registry.test", "10.30.0.1").address("mirror.registry.test", "fd00:30::1")
    # A target that is a CNAME: its address must be asked for, following the chain.
    records = records.srv("aliased.service.consul", "alias.registry.test", 5001).cname(
        "alias.registry.test", NODES[0].target
    )
    # Consul's "ServicePort is always 0": the query's default port stands in.
    records = records.srv("portless.service.consul", NODES[1].target, 0)
    records = records.unavailable("retired.service.consul")
    # IPv6-only nodes.
    v6 = [Node("v6-a", ("fd00:66::1",)), Node("v6-b", ("fd00:66::2",))]
    records = records.service("registry6", v6, 5000)
    # Plain DNS: a registry name with A and AAAA records and no SRV.
    records = records.host("registry.example.test", "10.40.0.1", "10.40.0.2", "fd00:40::1")
    return records + Records().host("v4only.example.test", "10.41.0.1")


@pytest.fixture
def consul_dns() -> Iterator[Dnsmasq]:
    with dnsmasq(consul_records()) as server:
        yield server


def endpoints(backend: DnsBackend, query: ServiceQuery) -> set[str]:
    return set(backend.discover(query).endpoints)


# ---------------------------------------------------------------------------------------------- names asked


@pytest.mark.parametrize(
    ("query", "domain", "expected"),
    [
        (ServiceQuery("docker_registry"), "consul", "docker_registry.service.consul."),
        (ServiceQuery("docker_registry", datacenter="dc1"), "consul", "docker_registry.service.dc1.consul."),
        (ServiceQuery("Registry", tags=("Primary",)), "consul", "primary.registry.service.consul."),
        (
            ServiceQuery("registry", datacenter="west", tags="v2"),
            "cf.internal",
            "v2.registry.service.west.cf.internal.",
        ),
        (ServiceQuery("registry.example.com"), "consul", "registry.example.com."),
        (ServiceQuery("registry.example.com."), None, "registry.example.com."),
        (ServiceQuery("registry"), None, "registry."),
    ],
)
def test_name_asked_follows_consul_naming_or_is_given(query: ServiceQuery, domain: str | None, expected: str) -> None:
    assert DnsBackend(["127.0.0.1"], domain=domain).name_for(query) == expected


@pytest.mark.parametrize(
    ("query", "domain", "message"),
    [
        (ServiceQuery("registry", tags=("a", "b")), "consul", "Consul's DNS interface filters on one tag"),
        (ServiceQuery("registry", tags=("a.b",)), "consul", "tag 'a.b' cannot be asked"),
        (ServiceQuery("bad/name"), "consul", "service name 'bad/name' cannot be asked"),
        (ServiceQuery("registry", datacenter="dc/1"), "consul", "datacenter 'dc/1' cannot be asked"),
        (ServiceQuery("registry", tags=("a",)), None, "cannot filter on tags ['a']"),
        (ServiceQuery("registry", datacenter="dc1"), None, "cannot select datacenter 'dc1'"),
        (ServiceQuery("registry.example.com", datacenter="dc1"), "consul", "is a plain DNS name"),
        (ServiceQuery("bad..name"), None, "is not a DNS name"),
    ],
)
def test_names_dns_cannot_ask_are_refused(query: ServiceQuery, domain: str | None, message: str) -> None:
    # A query the backend cannot answer as asked (DESIGN: DiscoveryQueryError, also a ValueError; a watch stops on it).
    with pytest.raises(DiscoveryQueryError, match="DNS backend") as caught:
        DnsBackend(["127.0.0.1"], domain=domain).discover(query)
    assert message in str(caught.value)


@pytest.mark.parametrize("domain", [None, "consul"])
def test_ip_literal_name_is_its_own_instance_without_asking(domain: str | None) -> None:
    backend = DnsBackend(["127.0.0.1:9"], domain=domain, timeout=0.2)
    assert backend.discover(ServiceQuery("10.244.2.6", default_port=8080)).endpoints == ("10.244.2.6:8080",)
    assert backend.discover(ServiceQuery("fd00::6", default_port=8080)).endpoints == ("[fd00::6]:8080",)


# ---------------------------------------------------------------------------------------------- dnsmasq: SRV


@integration
def test_srv_with_glue_gives_ports_from_records_and_addresses_from_additional(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server])
    found = backend.discover(ServiceQuery("docker_registry", default_port=9999))
    assert set(found.endpoints) == {
        "10.244.2.6:8080",
        "10.244.2.7:8081",
        "[fd00:244::6]:8080",
        "[fd00:244::7]:8081",
    }
    assert {instance.node for instance in found.instances} == {"node-a", "node-b"}
    assert found.source == f"dns://{consul_dns.server}"
    assert found.warnings == ()
    # The glue was used: nobody asked dnsmasq for the targets' addresses.
    assert consul_dns.asked("docker_registry.service.consul", "SRV") == 1
    assert consul_dns.asked(NODES[0].target, "A") == 0
    assert consul_dns.asked(NODES[0].target, "AAAA") == 0


@integration
def test_srv_with_datacenter_and_tag(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server])
    assert endpoints(backend, ServiceQuery("docker_registry", datacenter="dc1", tags=("primary",))) == {
        "10.244.2.6:8080",
        "[fd00:244::6]:8080",
    }
    assert consul_dns.asked("primary.docker_registry.service.dc1.consul", "SRV") == 1


@integration
def test_srv_without_glue_asks_the_target_addresses(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server])
    found = backend.discover(ServiceQuery("external"))
    assert set(found.endpoints) == {"10.30.0.1:5000", "[fd00:30::1]:5000"}
    assert found.instances[0].node == "mirror.registry.test"
    assert consul_dns.asked("mirror.registry.test", "A") == 1
    assert consul_dns.asked("mirror.registry.test", "AAAA") == 1
    # No glue over UDP: asked again over TCP (dnsmasq logs both), in case glue was dropped to fit.
    assert consul_dns.asked("external.service.consul", "SRV") == 2


@integration
def test_srv_target_behind_a_cname_is_followed(consul_dns: Dnsmasq) -> None:
    found = DnsBackend([consul_dns.server]).discover(ServiceQuery("aliased"))
    assert set(found.endpoints) == {"10.244.2.6:5001", "[fd00:244::6]:5001"}


@integration
def test_srv_port_zero_uses_the_default_port_or_is_skipped_with_a_warning(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server])
    assert endpoints(backend, ServiceQuery("portless", default_port=5000)) == {
        "10.244.2.7:5000",
        "[fd00:244::7]:5000",
    }
    found = backend.discover(ServiceQuery("portless"))
    assert found.instances == ()
    assert found.warnings == (
        "SRV record portless.service.consul -> 'node-b.node.dc1.consul' port 0: "
        "port 0 and the query has no default_port; skipped",
    )


@integration
def test_srv_target_dot_means_not_available(consul_dns: Dnsmasq) -> None:
    found = DnsBackend([consul_dns.server]).discover(ServiceQuery("retired", default_port=5000))
    assert found.instances == ()
    assert len(found.warnings) == 1
    assert "target '.' means the service is not offered there (RFC 2782)" in found.warnings[0]


@integration
def test_ipv6_only_nodes(consul_dns: Dnsmasq) -> None:
    found = DnsBackend([consul_dns.server]).discover(ServiceQuery("registry6"))
    assert found.endpoints == ("[fd00:66::1]:5000", "[fd00:66::2]:5000")
    assert all(instance.address.version == 6 for instance in found.instances)


@integration
def test_server_on_ipv6_loopback() -> None:
    with dnsmasq(consul_records(), listen="::1") as server:
        assert server.server.startswith("[::1]:")
        backend = DnsBackend.from_url(f"dns://{server.server}")
        assert endpoints(backend, ServiceQuery("docker_registry")) == {
            "10.244.2.6:8080",
            "10.244.2.7:8081",
            "[fd00:244::6]:8080",
            "[fd00:244::7]:8081",
        }


# ---------------------------------------------------------------------------------------------- dnsmasq: A/AAAA


@integration
def test_a_only_name_uses_the_default_port(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server], domain=None)
    found = backend.discover(ServiceQuery("registry.example.test", default_port=5000))
    assert found.endpoints == ("10.40.0.1:5000", "10.40.0.2:5000", "[fd00:40::1]:5000")
    # auto: SRV first, found nothing, then A and AAAA.
    assert consul_dns.asked("registry.example.test", "SRV") == 1
    assert consul_dns.asked("registry.example.test", "A") == 1
    # The same name through the default (Consul) domain: a dotted name is asked as given.
    assert endpoints(DnsBackend([consul_dns.server]), ServiceQuery("v4only.example.test", default_port=443)) == {
        "10.41.0.1:443"
    }


@integration
def test_record_a_never_asks_srv_and_record_srv_never_asks_a(consul_dns: Dnsmasq) -> None:
    query = ServiceQuery("registry.example.test", default_port=5000)
    assert len(DnsBackend([consul_dns.server], domain=None, record="a").discover(query)) == 3
    assert consul_dns.asked("registry.example.test", "SRV") == 0
    assert DnsBackend([consul_dns.server], domain=None, record="srv").discover(query).instances == ()
    assert consul_dns.asked("registry.example.test", "A") == 1
    # Forcing A on a Consul service finds nothing: dnsmasq, like Consul, has only SRV under that name.
    forced = DnsBackend([consul_dns.server], record="a").discover(ServiceQuery("docker_registry", default_port=1))
    assert forced.instances == ()
    assert consul_dns.asked("docker_registry.service.consul", "A") == 1


@integration
def test_a_records_without_a_default_port_are_refused(consul_dns: Dnsmasq) -> None:
    with pytest.raises(InvalidInput, match="has address records but no port") as caught:
        DnsBackend([consul_dns.server], domain=None).discover(ServiceQuery("registry.example.test"))
    assert "pass default_port" in str(caught.value)


# ---------------------------------------------------------------------------------------------- the fleet


@integration
@pytest.mark.parametrize(
    "edns_packet_max",
    [
        None,  # dnsmasq's 1232 bytes: 50 SRV records do not fit, the UDP answer is truncated (TC)
        4096,  # the SRV records fit, but dnsmasq drops the glue that does not: no TC, glue missing
    ],
)
def test_fleet_of_fifty_is_found_entirely(edns_packet_max: int | None) -> None:
    ports = [5000 + i for i in range(len(FLEET))]
    records = Records().service("fleet", FLEET, ports)
    with dnsmasq(records, edns_packet_max=edns_packet_max) as server:
        # What makes the test meaningful: plain UDP gets only part of the fleet.
        plain = dns.query.udp(dns.message.make_query("fleet.service.consul", "SRV"), "127.0.0.1", port=server.port)
        assert plain.flags & dns.flags.TC
        assert len(plain.answer[0]) < 50 if plain.answer else True
        found = DnsBackend([server.server]).discover(ServiceQuery("fleet"))
        assert len(found) == 100
        assert {(instance.node, instance.port) for instance in found.instances} == {
            (node.name, port) for node, port in zip(FLEET, ports, strict=True)
        }
        assert set(found.endpoints) == {
            f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}"
            for node, port in zip(FLEET, ports, strict=True)
            for ip in node.addresses
        }
        assert found.warnings == ()
        # The TCP answer carried all the glue: no target was asked one by one.
        assert sum(server.asked(node.target, "A") for node in FLEET) == 0


@integration
def test_edns0_brings_a_mid_sized_answer_in_one_datagram() -> None:
    nodes = FLEET[:20]
    with dnsmasq(Records().service("mid", nodes, 5000), edns_packet_max=4096) as server:
        # Without EDNS0 the answer (about 1.9 kB) does not fit in 512 bytes.
        plain = dns.query.udp(dns.message.make_query("mid.service.consul", "SRV"), "127.0.0.1", port=server.port)
        assert plain.flags & dns.flags.TC
        found = DnsBackend([server.server]).discover(ServiceQuery("mid"))
        assert len(found) == 40
        # With it: one UDP question, no TCP retry (dnsmasq would log a second query), no target asked.
        assert server.asked("mid.service.consul", "SRV") == 2  # the plain one above, and ours
        assert sum(server.asked(node.target, "A") for node in nodes) == 0


def test_queries_carry_edns0_with_a_4096_byte_payload() -> None:
    seen: list[tuple[int, int]] = []

    def answer(query: dns.message.Message) -> dns.message.Message:
        seen.append((query.edns, query.payload))
        return srv_reply(query, [("node-a.node.dc1.consul.", 5000, "10.0.0.1")])

    with FakeNameserver(answer) as fake:
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert seen == [(0, 4096)]


@integration
def test_one_backend_serves_many_threads(consul_dns: Dnsmasq) -> None:
    backend = DnsBackend([consul_dns.server])
    query = ServiceQuery("docker_registry")
    expected = backend.discover(query).instances
    results: list[object] = []

    def work() -> None:
        for _ in range(5):
            try:
                results.append(backend.discover(query).instances)
            except Exception as exc:  # reported below, with the others
                results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [expected] * 40


# ---------------------------------------------------------------------------------------------- no instances


@integration
def test_nxdomain_is_an_authoritative_empty_answer(consul_dns: Dnsmasq) -> None:
    found = DnsBackend([consul_dns.server]).discover(ServiceQuery("nosuch", default_port=5000))
    assert found.instances == ()
    assert found.warnings == ()
    # NXDOMAIN means no record of any type: no A/AAAA fallback is asked.
    assert consul_dns.asked("nosuch.service.consul", "A") == 0


@integration
def test_empty_answer_is_no_instances(consul_dns: Dnsmasq) -> None:
    # The node name exists (A records) but has no SRV: NOERROR with an empty answer.
    found = DnsBackend([consul_dns.server], record="srv").discover(ServiceQuery(NODES[0].target))
    assert found.instances == ()


# ---------------------------------------------------------------------------------------------- failures


def test_silent_server_times_out_within_bounds() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        backend = DnsBackend([f"127.0.0.1:{port}"], timeout=0.3)
        started = time.monotonic()
        with pytest.raises(DiscoveryUnavailable) as caught:
            backend.discover(ServiceQuery("docker_registry"))
        elapsed = time.monotonic() - started
    assert elapsed < 3 * 0.3 + 2  # derived from the timeout: generous on a shared machine, far from "hangs"
    assert str(caught.value) == (
        f"DNS server 127.0.0.1:{port} asked docker_registry.service.consul SRV: no answer within 0.3s; "
        "check that the server runs and listens on that address and port (Consul's DNS is on port 8600 by default)"
    )
    assert isinstance(caught.value.__cause__, dns.exception.Timeout)


def test_the_deadline_bounds_a_whole_discovery_of_many_targets() -> None:
    """Sixty glue-less targets answered just inside the timeout would take 24s; the deadline stops it."""
    slow = threading.Event()  # never set: wait() is the server's own slowness, not the test's synchronisation
    targets = [(f"n{i}.node.dc1.consul.", 5000, None) for i in range(30)]

    def answer(query: dns.message.Message) -> dns.message.Message:
        if query.question[0].rdtype == dns.rdatatype.SRV:
            return srv_reply(query, targets)
        slow.wait(0.4)
        return reply_to(query, rcode=dns.rcode.NXDOMAIN)

    timeout, deadline = 1.0, 1.5
    with FakeNameserver(answer) as fake:
        backend = DnsBackend([fake.server], timeout=timeout, deadline=deadline)
        started = time.monotonic()
        with pytest.raises(DiscoveryUnavailable, match=r"deadline of 1\.5s") as caught:
            backend.discover(ServiceQuery("docker_registry"))
        elapsed = time.monotonic() - started
    assert elapsed < deadline + 3 * timeout + 2
    assert elapsed >= deadline * 0.9
    assert "raise the deadline" in str(caught.value)


def test_a_tcp_answer_that_drips_is_cut_at_the_timeout() -> None:
    """A server that sends a byte every 0.2s over TCP: the exchange ends at its timeout, not at the server's will."""

    def drip(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(512)
        conn.sendall(b"\x02\x00")  # announces 512 bytes
        while not stop.wait(0.2):
            try:
                conn.sendall(b"\x00")
            except OSError:
                return

    timeout = 0.5
    with FakeNameserver(lambda query: reply_to(query, flags=dns.flags.TC), tcp_raw=drip) as fake:
        started = time.monotonic()
        with pytest.raises(DiscoveryUnavailable, match="no answer within") as caught:
            DnsBackend([fake.server], timeout=timeout, deadline=60).discover(ServiceQuery("docker_registry"))
        elapsed = time.monotonic() - started
    assert elapsed < 3 * timeout + 2
    assert isinstance(caught.value.__cause__, dns.exception.Timeout)
    assert [transport for _, _, transport in fake.queries] == ["udp"]  # then TCP, where the drip began


def test_deadline_option_and_checks() -> None:
    backend = DnsBackend.from_url("dns://10.0.0.2?deadline=3.5&timeout=1")
    assert repr(backend) == "DnsBackend(['10.0.0.2:53'], domain='consul', record='auto', timeout=1, deadline=3.5)"
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(InvalidInput, match="deadline must be a positive number"):
            DnsBackend(deadline=bad)
    with pytest.raises(InvalidInput, match="deadline='soon' is not a number"):
        DnsBackend.from_url("dns://10.0.0.2?deadline=soon")


@integration
def test_refused_is_unavailable_naming_server_and_name(consul_dns: Dnsmasq) -> None:
    # dnsmasq refuses names outside its local domains (it has no upstream).
    with pytest.raises(DiscoveryUnavailable) as caught:
        DnsBackend([consul_dns.server], domain=None).discover(ServiceQuery("registry.elsewhere", default_port=1))
    message = str(caught.value)
    assert consul_dns.server in message
    assert "registry.elsewhere SRV" in message
    assert "answered REFUSED" in message


@pytest.mark.parametrize("rcode", [dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP])
def test_server_failures_are_unavailable(rcode: dns.rcode.Rcode) -> None:
    with (
        FakeNameserver(lambda query: reply_to(query, rcode=rcode)) as fake,
        pytest.raises(DiscoveryUnavailable, match=f"answered {dns.rcode.to_text(rcode)}"),
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


@pytest.mark.parametrize("rcode", [dns.rcode.YXDOMAIN, dns.rcode.NOTAUTH])
def test_odd_response_codes_are_protocol_errors(rcode: dns.rcode.Rcode) -> None:
    with (
        FakeNameserver(lambda query: reply_to(query, rcode=rcode)) as fake,
        pytest.raises(DiscoveryProtocolError, match="unexpected response code"),
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


@integration
def test_next_nameserver_is_asked_when_one_fails(consul_dns: Dnsmasq) -> None:
    with FakeNameserver(lambda query: reply_to(query, rcode=dns.rcode.SERVFAIL)) as broken:
        backend = DnsBackend([broken.server, consul_dns.server], timeout=1)
        found = backend.discover(ServiceQuery("docker_registry"))
    assert len(found) == 4
    assert found.source == f"dns://{consul_dns.server}"


def test_every_failure_is_named_when_no_nameserver_answers() -> None:
    with (
        FakeNameserver(lambda query: reply_to(query, rcode=dns.rcode.SERVFAIL)) as one,
        FakeNameserver(lambda query: b"\x00garbage") as two,
        pytest.raises(DiscoveryUnavailable) as caught,
    ):
        DnsBackend([one.server, two.server], timeout=1).discover(ServiceQuery("docker_registry"))
    message = str(caught.value)
    assert message.startswith("no DNS server answered docker_registry.service.consul SRV: ")
    assert one.server in message
    assert two.server in message
    assert [type(cause) for cause in caught.value.causes] == [DiscoveryUnavailable, DiscoveryProtocolError]


def test_garbage_answer_is_a_protocol_error() -> None:
    with (
        FakeNameserver(lambda query: query.id.to_bytes(2, "big") + b"\x81\x80\x00\x01garbage") as fake,
        pytest.raises(DiscoveryProtocolError, match="the answer is not valid DNS") as caught,
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert fake.server in str(caught.value)


def test_answer_to_another_question_is_a_protocol_error() -> None:
    def other(query: dns.message.Message) -> dns.message.Message:
        return reply_to(dns.message.make_query("elsewhere.test", "SRV", id=query.id))

    with FakeNameserver(other) as fake, pytest.raises(DiscoveryProtocolError):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


def test_truncated_answer_without_tcp_is_unavailable() -> None:
    # The fake has no TCP listener: the retry over TCP is refused.
    with (
        FakeNameserver(lambda query: reply_to(query, flags=dns.flags.TC)) as fake,
        pytest.raises(DiscoveryUnavailable, match="cannot reach it \\(ConnectionRefusedError"),
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert fake.queries == [("docker_registry.service.consul.", "SRV", "udp")]


def test_truncated_answer_is_asked_again_over_tcp() -> None:
    def truncated(query: dns.message.Message) -> dns.message.Message:
        return srv_reply(query, [("node-a.node.dc1.consul.", 5000, "10.0.0.1")], truncated=True)

    def whole(query: dns.message.Message) -> dns.message.Message:
        return srv_reply(query, [("node-a.node.dc1.consul.", 5000, "10.0.0.1")])

    with FakeNameserver(truncated, tcp=True, tcp_handler=whole) as fake:
        found = DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert found.endpoints == ("10.0.0.1:5000",)
    assert [transport for *_, transport in fake.queries] == ["udp", "tcp"]


def test_server_without_edns_is_asked_again_without_it() -> None:
    def answer(query: dns.message.Message) -> dns.message.Message:
        if query.edns >= 0:
            return reply_to(query, rcode=dns.rcode.FORMERR)
        return srv_reply(query, [("node-a.node.dc1.consul.", 5000, "10.0.0.1")])

    with FakeNameserver(answer) as fake:
        found = DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert found.endpoints == ("10.0.0.1:5000",)
    assert len(fake.queries) == 2


def test_garbage_from_every_nameserver_is_a_protocol_error() -> None:
    with (
        FakeNameserver(lambda query: b"\x00garbage") as one,
        FakeNameserver(lambda query: b"\x01garbage") as two,
        pytest.raises(DiscoveryProtocolError, match=r"^no DNS server answered") as caught,
    ):
        DnsBackend([one.server, two.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert len(caught.value.causes) == 2


def test_truncated_even_over_tcp_is_a_protocol_error() -> None:
    def truncated(query: dns.message.Message) -> dns.message.Message:
        return reply_to(query, flags=dns.flags.TC)

    with (
        FakeNameserver(truncated, tcp=True) as fake,
        pytest.raises(DiscoveryProtocolError, match="truncated even over TCP"),
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


def test_cname_loop_is_a_protocol_error() -> None:
    def loop(query: dns.message.Message) -> dns.message.Message:
        response = reply_to(query)
        qname = query.question[0].name.to_text()
        response.answer.append(dns.rrset.from_text(qname, 0, "IN", "CNAME", "b.loop.test."))
        response.answer.append(dns.rrset.from_text("b.loop.test.", 0, "IN", "CNAME", qname))
        return response

    with FakeNameserver(loop) as fake, pytest.raises(DiscoveryProtocolError, match="ChainTooLong"):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


def test_missing_glue_with_tcp_blocked_asks_the_targets_over_udp() -> None:
    def answer(query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        if question.rdtype == dns.rdatatype.SRV:
            return srv_reply(query, [("far.node.dc1.consul.", 5000, None)])
        response = reply_to(query)
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", "10.0.0.7"))
        return response

    with FakeNameserver(answer) as fake:  # no TCP listener: the TCP retry is refused
        found = DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert found.endpoints == ("10.0.0.7:5000",)
    assert [(name, rdtype) for name, rdtype, _ in fake.queries] == [
        ("docker_registry.service.consul.", "SRV"),
        ("far.node.dc1.consul.", "A"),
        ("far.node.dc1.consul.", "AAAA"),
    ]


def test_unreachable_target_lookup_fails_the_discovery() -> None:
    """A target without glue whose lookup fails is not silently dropped: the snapshot would be incomplete."""

    def answer(query: dns.message.Message) -> dns.message.Message:
        if query.question[0].rdtype == dns.rdatatype.SRV:
            return srv_reply(query, [("far.node.dc1.consul.", 5000, None)])
        return reply_to(query, rcode=dns.rcode.SERVFAIL)

    with (
        FakeNameserver(answer, tcp=True) as fake,
        pytest.raises(DiscoveryUnavailable, match=r"far\.node\.dc1\.consul A"),
    ):
        DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))


# ---------------------------------------------------------------------------------------------- hostile data


def srv_reply(
    query: dns.message.Message,
    records: list[tuple[str | dns.name.Name, int, str | None]],
    *,
    truncated: bool = False,
    ttl: int = 0,
) -> dns.message.Message:
    """An SRV answer with glue for the records that give an address."""
    response = reply_to(query)
    qname = query.question[0].name
    if query.question[0].rdtype != dns.rdatatype.SRV:
        return response
    rrset = response.find_rrset(response.answer, qname, dns.rdataclass.IN, dns.rdatatype.SRV, create=True)
    rrset.update_ttl(ttl)
    for target, port, address in records:
        name = target if isinstance(target, dns.name.Name) else dns.name.from_text(target)
        rrset.add(dns.rdtypes.IN.SRV.SRV(dns.rdataclass.IN, dns.rdatatype.SRV, 1, 1, port, name), ttl)
        if address is not None:
            glue = response.find_rrset(response.additional, name, dns.rdataclass.IN, dns.rdatatype.A, create=True)
            glue.add(dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, address), ttl)
    if truncated:
        response.flags |= dns.flags.TC
    return response


def test_hostile_targets_never_reach_an_instance() -> None:
    hostile = [
        (dns.name.Name([b"evil,10", b"0", b"0", b"1", b""]), 5000, "10.0.0.9"),  # a comma, for the builder's list
        (dns.name.Name([b"a b", b"node", b""]), 5000, "10.0.0.9"),  # a space
        (dns.name.Name([b"x\nnewline", b""]), 5000, "10.0.0.9"),  # a control character
        (dns.name.Name([b"http://x", b""]), 5000, "10.0.0.9"),  # a scheme
        ("10.0.0.8.", 5000, "10.0.0.8"),  # an address where a host name belongs
        ("good.node.dc1.consul.", 5001, "10.0.0.1"),
    ]
    with FakeNameserver(lambda query: srv_reply(query, hostile), tcp=True) as fake:
        found = DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert found.endpoints == ("10.0.0.1:5001",)
    assert found.instances[0].node == "good"
    assert len(found.warnings) == 5
    assert all("the target is not a host name; skipped" in warning for warning in found.warnings)
    assert all("\n" not in warning for warning in found.warnings)


def test_glue_for_names_that_are_not_targets_is_ignored() -> None:
    def answer(query: dns.message.Message) -> dns.message.Message:
        response = srv_reply(query, [("good.node.dc1.consul.", 5000, "10.0.0.1")])
        stray = dns.rrset.from_text("other.node.dc1.consul.", 0, "IN", "A", "169.254.169.254")
        response.additional.append(stray)
        return response

    with FakeNameserver(answer) as fake:
        found = DnsBackend([fake.server], timeout=1).discover(ServiceQuery("docker_registry"))
    assert found.endpoints == ("10.0.0.1:5000",)


_LABEL_BYTES = st.binary(min_size=1, max_size=12)
_TARGETS = st.lists(_LABEL_BYTES, min_size=1, max_size=4).map(lambda labels: dns.name.Name([*labels, b""]))
_RECORDS = st.lists(
    st.tuples(_TARGETS, st.integers(0, 65535), st.none() | st.ip_addresses(v=4).map(str)), min_size=1, max_size=6
)


def test_any_srv_answer_gives_clean_instances_or_warnings() -> None:
    served: list[list[tuple[dns.name.Name, int, str | None]]] = [[]]

    def answer(query: dns.message.Message) -> dns.message.Message:
        if query.question[0].rdtype == dns.rdatatype.SRV:
            return srv_reply(query, served[0])
        return reply_to(query, rcode=dns.rcode.NXDOMAIN)

    with FakeNameserver(answer, tcp=True) as fake:
        backend = DnsBackend([fake.server], timeout=2)

        @given(records=_RECORDS, default_port=st.none() | st.integers(1, 65535))
        @settings(suppress_health_check=[HealthCheck.too_slow])
        def check(records: list[tuple[dns.name.Name, int, str | None]], default_port: int | None) -> None:
            served[0] = records
            found = backend.discover(ServiceQuery("docker_registry", default_port=default_port))
            addresses = {ipaddress.ip_address(address) for _, _, address in records if address is not None}
            ports = {port for _, port, _ in records} | ({default_port} if default_port else set())
            for instance in found.instances:
                assert instance.address in addresses
                assert instance.port in ports
                assert instance.node is not None
                assert is_hostname(instance.node)
                assert "," not in instance.endpoint
                assert " " not in instance.endpoint
            for warning in found.warnings:
                assert warning.isprintable()

        check()


def test_garbage_raises_only_discovery_errors() -> None:
    served: list[tuple[bytes, bool]] = [(b"", False)]

    def answer(query: dns.message.Message) -> bytes:
        payload, keep_header = served[0]
        if keep_header:
            return query.id.to_bytes(2, "big") + b"\x81\x80" + payload
        return payload

    with FakeNameserver(answer, tcp=True) as fake:
        backend = DnsBackend([fake.server], timeout=0.5)

        @given(payload=st.binary(max_size=300), keep_header=st.booleans())
        @settings(suppress_health_check=[HealthCheck.too_slow])
        def check(payload: bytes, keep_header: bool) -> None:
            served[0] = (payload, keep_header)
            message = ""
            try:
                backend.discover(ServiceQuery("docker_registry", default_port=1))
            except DiscoveryError as exc:
                message = str(exc)
            assert message.isprintable()

        check()


# ---------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("dns:", "DnsBackend(None, domain='consul', record='auto', timeout=2)"),
        ("dns://", "DnsBackend(None, domain='consul', record='auto', timeout=2)"),
        (
            "dns://127.0.0.1:8600?domain=consul&record=auto&timeout=2",
            "DnsBackend(['127.0.0.1:8600'], domain='consul', record='auto', timeout=2)",
        ),
        ("dns://[::1]:53", "DnsBackend(['[::1]:53'], domain='consul', record='auto', timeout=2)"),
        ("DNS://10.0.0.2/", "DnsBackend(['10.0.0.2:53'], domain='consul', record='auto', timeout=2)"),
        ("dns://10.0.0.2?port=5353", "DnsBackend(['10.0.0.2:5353'], domain='consul', record='auto', timeout=2)"),
        (
            "dns://10.0.0.2,10.0.0.3:8600?domain=",
            "DnsBackend(['10.0.0.2:53', '10.0.0.3:8600'], domain=None, record='auto', timeout=2)",
        ),
        (
            "dns:?domain=cf.internal.&record=srv&timeout=0.5",
            "DnsBackend(None, domain='cf.internal', record='srv', timeout=0.5)",
        ),
        (
            "dns://consul.local:8600?record=a",
            "DnsBackend(['consul.local:8600'], domain='consul', record='a', timeout=2)",
        ),
    ],
)
def test_from_url(url: str, expected: str) -> None:
    assert repr(DnsBackend.from_url(url)) == expected


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        ("consul://127.0.0.1", InvalidInput, "expected dns://HOST[:PORT]"),
        ("127.0.0.1:53", InvalidInput, "expected dns://HOST[:PORT]"),
        ("dns://127.0.0.1:99999", InvalidAddress, "port '99999' is not a number"),
        ("dns://user@127.0.0.1", InvalidInput, "user-info"),
        ("dns://127.0.0.1/path", InvalidInput, "path '/path' is not allowed"),
        ("dns://127.0.0.1#x", InvalidInput, "a fragment"),
        ("dns://127.0.0.1?dc=dc1", InvalidInput, "unknown option 'dc'; known: domain, record, timeout"),
        ("dns://127.0.0.1?timeout=2&timeout=3", InvalidInput, "option 'timeout' is given twice"),
        ("dns://127.0.0.1?timeout=soon", InvalidInput, "timeout='soon' is not a number of seconds"),
        ("dns://127.0.0.1?timeout=0", InvalidInput, "timeout must be a positive number"),
        ("dns://127.0.0.1?timeout=nan", InvalidInput, "timeout must be a positive number"),
        ("dns://127.0.0.1?record=mx", InvalidInput, "record 'mx' is not one of auto, srv, a"),
        ("dns://127.0.0.1?domain=bad domain", InvalidInput, "domain 'bad domain' is not a DNS name"),
        ("dns://127.0.0.1?port=0", InvalidInput, "port='0' is not a number in 1..65535"),
        ("dns://127.0.0.1?min_interval=9&max_interval=3", InvalidInput, "min_interval 9.0 is above max_interval"),
        ("dns://127.0.0.1,bad host", InvalidAddress, "DNS nameserver #1"),
        ("dns://127.0.0.1?garbage", InvalidInput, "cannot read the options"),
    ],
)
def test_from_url_refuses_with_the_part_at_fault(url: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        DnsBackend.from_url(url)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "dns://user:s3cret@127.0.0.1",
        "dns://127.0.0.1?token=s3cret",
        "dnz://user:s3cret@127.0.0.1?token=s3cret",
    ],
)
def test_from_url_never_echoes_what_may_be_a_secret(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        DnsBackend.from_url(url)
    assert "s3cret" not in str(caught.value)


def test_constructor_checks() -> None:
    with pytest.raises(InvalidInput, match="nameservers is empty"):
        DnsBackend([])
    with pytest.raises(InvalidAddress, match="port 0 is not a number"):
        DnsBackend(port=0)
    with pytest.raises(InvalidInput, match="record 'AAAA' is not one of"):
        DnsBackend(record="AAAA")
    with pytest.raises(InvalidInput, match="domain '' is not a DNS name"):
        DnsBackend(domain="")
    assert repr(DnsBackend("10.0.0.1", port=8600)) == (
        "DnsBackend(['10.0.0.1:8600'], domain='consul', record='auto', timeout=2)"
    )


def test_missing_dnspython_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [module for module in sys.modules if module == "dns" or module.startswith("dns.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as caught:
        DnsBackend(["127.0.0.1"])
    assert "pip install 'registry-config[dns]'" in str(caught.value)
    assert isinstance(caught.value, UnknownBackendError)  # what callers caught before the subclass existed


@integration
def test_nameserver_host_name_goes_through_the_injected_resolver(consul_dns: Dnsmasq) -> None:
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    backend = DnsBackend([f"consul-dns.internal:{consul_dns.port}"], resolver=resolver)
    assert len(backend.discover(ServiceQuery("docker_registry"))) == 4
    assert asked == ["consul-dns.internal"]


def test_nameserver_that_does_not_resolve_is_unavailable() -> None:
    def resolver(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(DiscoveryUnavailable, match=r"cannot resolve nameserver 'consul-dns\.internal'"):
        DnsBackend(["consul-dns.internal"], resolver=resolver).discover(ServiceQuery("docker_registry"))


def test_nameserver_that_resolves_to_nothing_is_unavailable() -> None:
    with pytest.raises(DiscoveryUnavailable, match="the nameservers resolved to no address"):
        DnsBackend(["consul-dns.internal"], resolver=lambda host: []).discover(ServiceQuery("docker_registry"))


def test_system_configuration_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(dns_module, "RESOLV_CONF", "/nonexistent/resolv.conf")
    with pytest.raises(DiscoveryUnavailable) as caught:
        DnsBackend.from_url("dns:").discover(ServiceQuery("docker_registry"))
    assert "/nonexistent/resolv.conf is missing or lists none" in str(caught.value)
    assert "dns://127.0.0.1:8600" in str(caught.value)


@integration
def test_system_configuration_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    """resolv.conf cannot name a port: this needs dnsmasq on port 53 of another loopback address."""
    server = Dnsmasq(consul_records(), listen="127.0.0.153")
    server.port = 53
    try:
        try:
            server.start()
        except RuntimeError:
            unavailable("cannot run dnsmasq on 127.0.0.153:53 here (not root, or the port is taken)")
        conf = tmp_path / "resolv.conf"  # type: ignore[operator]
        conf.write_text("# written by test_dns\nsearch example.test\nnameserver 127.0.0.153\n")
        monkeypatch.setattr(dns_module, "RESOLV_CONF", str(conf))
        found = DnsBackend.from_url("dns:").discover(ServiceQuery("docker_registry"))
        assert len(found) == 4
        assert found.source == "dns://127.0.0.153:53"
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------- watch


def test_interval_is_the_ttl_within_bounds() -> None:
    backend = DnsBackend(["127.0.0.1"], min_interval=2, max_interval=30)
    assert backend.interval_for(0) == 2
    assert backend.interval_for(10) == 10
    assert backend.interval_for(86400) == 30
    assert backend.interval_for(None) == 5  # poll_interval, when the answer had no TTL to go by


@integration
def test_watch_yields_when_dnsmasq_serves_other_records() -> None:
    first = Records().service("docker_registry", NODES[:1], 8080)
    second = Records().service("docker_registry", NODES, 8080)
    stop = threading.Event()
    seen: list[tuple[str, ...]] = []
    with dnsmasq(first, ttl=1) as server:
        backend = DnsBackend([server.server], timeout=1, min_interval=0.2, max_interval=0.5)
        watch = backend.watch(ServiceQuery("docker_registry"), stop=stop)
        seen.append(next(watch).endpoints)
        asked_before = server.asked("docker_registry.service.consul", "SRV")
        server.restart(second)
        seen.append(next(watch).endpoints)
        stop.set()
        assert list(watch) == []
    assert seen == [
        ("10.244.2.6:8080", "[fd00:244::6]:8080"),
        ("10.244.2.6:8080", "10.244.2.7:8080", "[fd00:244::6]:8080", "[fd00:244::7]:8080"),
    ]
    assert asked_before == 1


def test_watch_polls_on_the_ttl_and_yields_only_changes() -> None:
    state = {"address": "10.0.0.1"}
    times: list[float] = []

    def answer(query: dns.message.Message) -> dns.message.Message:
        times.append(time.monotonic())
        return srv_reply(query, [("node-a.node.dc1.consul.", 5000, state["address"])], ttl=1)

    stop = threading.Event()
    yielded: list[tuple[str, ...]] = []
    changed = threading.Event()

    def consume(backend: DnsBackend) -> None:
        for discovery in backend.watch(ServiceQuery("docker_registry"), stop=stop):
            yielded.append(discovery.endpoints)
            if len(yielded) == 2:
                changed.set()

    with FakeNameserver(answer) as fake:
        backend = DnsBackend([fake.server], timeout=1, min_interval=0.3, max_interval=10)
        consumer = threading.Thread(target=consume, args=(backend,))
        consumer.start()
        try:
            # The answer does not change: more polls, no second yield.
            _poll_until(lambda: len(times) >= 3, within=30)
            assert yielded == [("10.0.0.1:5000",)]
            state["address"] = "10.0.0.2"
            assert changed.wait(10)
        finally:
            stop.set()
            consumer.join(10)
    assert not consumer.is_alive()
    assert yielded == [("10.0.0.1:5000",), ("10.0.0.2:5000",)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 3
    # The TTL (1s) sets the pace, not min_interval (0.3s): allow scheduling slack below, none needed above.
    assert min(gaps) >= 0.9


def _poll_until(condition: Callable[[], bool], *, within: float) -> None:
    """Wait for ``condition`` by polling, failing after ``within`` seconds (a bound, not a pace)."""
    end = time.monotonic() + within
    idle = threading.Event()
    while not condition():
        assert time.monotonic() < end, "the condition did not come true in time"
        idle.wait(0.02)


def test_watch_stops_before_asking_when_stop_is_set() -> None:
    stop = threading.Event()
    stop.set()
    assert list(DnsBackend(["127.0.0.1:9"], timeout=0.2).watch(ServiceQuery("x"), stop=stop)) == []


@pytest.mark.parametrize("error", [RecursionError("deep"), struct.error("unpack"), TypeError])
def test_whatever_dnspython_raises_on_an_answer_is_a_protocol_error(
    monkeypatch: pytest.MonkeyPatch, error: BaseException | type[BaseException]
) -> None:
    def fails(*args: object, **kwargs: object) -> object:
        raise error

    monkeypatch.setattr(dns.query, "udp", fails)
    with pytest.raises(DiscoveryProtocolError, match="the answer is not valid DNS") as caught:
        DnsBackend(["127.0.0.1:9"], timeout=0.5).discover(ServiceQuery("docker_registry"))
    assert caught.value.__cause__ is not None
