"""Every parser a user or a discovery service can feed: hostile input raises our errors, never another.

Registry URLs, backend URLs (and the Consul and DNS backends' own URL
parsers), static entries, insecure-registry entries and names, image
references, Discovery values built from a service's answers, and BBS / Cloud
Controller security-group JSON. A parser may accept or refuse; what it may
not do is raise ``TypeError``, ``KeyError``, ``IndexError``, ``ValueError``
from a lower layer or anything else that is not a ``RegistryConfigError``.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import HOSTILE_FRAGMENTS, hostile_text, image_references, registry_urls

from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.discovery.registry import BackendRegistry, backend_name
from registry_config.discovery.static import StaticBackend
from registry_config.egress import EgressRule
from registry_config.errors import RegistryConfigError
from registry_config.policy import InsecurityPolicy
from registry_config.redact import quote, redact
from registry_config.reference import ImageReference
from registry_config.spec import RegistrySpec

# Text with the characters that broke parsers before, and plain arbitrary text.
TEXT = st.one_of(
    st.text(max_size=60), hostile_text(), st.text(alphabet="".join(HOSTILE_FRAGMENTS) + "a1.", max_size=30)
)
# Anything JSON can decode to: what a discovery service or an operator's file may hold.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def only_ours(parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``parse``; a refusal must be a RegistryConfigError (whatever else escapes fails the test)."""
    try:
        return parse(*args, **kwargs)
    except RegistryConfigError as exc:
        message = str(exc)
    assert message, "an error without a message"
    return None


def no_resolution(host: str) -> Iterable[object]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def junk_resolver(host: str) -> Iterable[object]:
    return ["not-an-ip", "10.0.0.1", None, 42, "fe80::1%eth0", "::ffff:10.0.0.2"]


def _scheme_prefixed(draw: st.DrawFn, schemes: list[str]) -> str:
    return draw(st.sampled_from(schemes)) + draw(TEXT)


# -- registry URLs ----------------------------------------------------------------------------------


@FUZZ
@given(text=TEXT | st.builds(lambda a, b: a + b, st.sampled_from(["http://", "https://", "HTTP://"]), TEXT))
def test_registry_spec_from_url(text: str) -> None:
    spec = only_ours(RegistrySpec.from_url, text)
    if spec is not None:
        assert RegistrySpec.from_url(str(spec)) == spec


@FUZZ
@given(url=registry_urls(), junk=TEXT, at=st.integers(min_value=0, max_value=80))
def test_registry_spec_from_mutated_urls(url: str, junk: str, at: int) -> None:
    only_ours(RegistrySpec.from_url, url[:at] + junk + url[at:])


@FUZZ
@given(url=registry_urls(), domain=TEXT, skip=st.booleans())
def test_registry_spec_consul_domain(url: str, domain: str, skip: bool) -> None:
    only_ours(RegistrySpec.from_url, url, skip_ssl_validation=skip, consul_domain=domain)


# -- backend URLs -----------------------------------------------------------------------------------

BACKEND_PREFIXES = ["static:", "static://", "dns:", "dns://", "consul://", "consul+https://", "nope:", "Static:"]


@FUZZ
@given(text=TEXT | st.builds(lambda a, b: a + b, st.sampled_from(BACKEND_PREFIXES), TEXT))
def test_backend_from_url(text: str) -> None:
    registry = BackendRegistry(entry_points=False)
    backend = only_ours(registry.from_url, text)
    if backend is not None:
        backend.close()
    only_ours(backend_name, text)
    assert isinstance(redact(text, entry=True), str)


@pytest.mark.parametrize(
    ("module", "attr", "scheme"),
    [
        ("registry_config.discovery.consul", "ConsulBackend", "consul://"),
        ("registry_config.discovery.dns", "DnsBackend", "dns://"),
    ],
)
@FUZZ
@given(text=TEXT, option=st.sampled_from(["", "?", "?dc=", "?timeout=", "?record=", "?domain=", "?port=", "?x="]))
def test_builtin_backend_url_parsers_directly(module: str, attr: str, scheme: str, text: str, option: str) -> None:
    factory = getattr(importlib.import_module(module), attr).from_url
    if "token_file" in text:
        return  # never let fuzzed text name a file to read
    backend = only_ours(factory, scheme + text + option + text)
    if backend is not None:
        backend.close()


@pytest.mark.parametrize("url", ["consul://[", "consul://[]", "consul://[::1", "consul://]", "dns://[", "dns://[]"])
def test_broken_brackets_found_by_fuzzing(url: str) -> None:
    # ConsulBackend.from_url once let urllib's ValueError escape for these (fixed in 55db481).
    assert only_ours(BackendRegistry(entry_points=False).from_url, url) is None
    module, attr = ("consul", "ConsulBackend") if url.startswith("consul") else ("dns", "DnsBackend")
    factory = getattr(importlib.import_module(f"registry_config.discovery.{module}"), attr).from_url
    assert only_ours(factory, url) is None


# -- static entries ---------------------------------------------------------------------------------


@FUZZ
@given(entries=st.lists(TEXT, min_size=1, max_size=4), default_port=st.none() | st.integers(1, 65535))
def test_static_entries(entries: list[str], default_port: int | None) -> None:
    for resolver in (no_resolution, junk_resolver):
        backend = only_ours(StaticBackend, entries, resolver=resolver)
        if backend is not None:
            found = only_ours(backend.discover, ServiceQuery("docker_registry", default_port=default_port))
            if found is not None:
                assert all("," not in endpoint and " " not in endpoint for endpoint in found.endpoints)


# -- what a discovery service answers ---------------------------------------------------------------


@FUZZ
@given(address=JSON | TEXT, port=JSON, node=JSON, tags=JSON)
def test_service_instance_from_a_service_answer(address: Any, port: Any, node: Any, tags: Any) -> None:
    instance = only_ours(ServiceInstance, address, port, node=node, tags=tags)
    if instance is not None:
        assert "," not in instance.endpoint
        assert instance.node is None or isinstance(instance.node, str)
        assert all(isinstance(tag, str) for tag in instance.tags)
        only_ours(Discovery, ServiceQuery("svc"), [instance], source="fuzz")


@FUZZ
@given(name=TEXT, datacenter=st.none() | TEXT, tags=st.lists(TEXT, max_size=3), port=JSON)
def test_service_query(name: str, datacenter: str | None, tags: list[str], port: Any) -> None:
    only_ours(ServiceQuery, name, datacenter=datacenter, tags=tags, default_port=port)


# -- insecure-registry entries ----------------------------------------------------------------------


@FUZZ
@given(entries=st.lists(TEXT, max_size=4), name=TEXT)
def test_insecurity_policy(entries: list[str], name: str) -> None:
    for resolver in (no_resolution, junk_resolver):
        policy = only_ours(InsecurityPolicy.from_entries, entries, resolver=resolver)
        if policy is not None:
            only_ours(policy.is_insecure, name)


# -- image references -------------------------------------------------------------------------------


@FUZZ
@given(text=TEXT | image_references())
def test_image_reference_parse(text: str) -> None:
    parsed = only_ours(ImageReference.parse, text)
    if parsed is not None:
        assert ImageReference.parse(str(parsed)) == parsed


@FUZZ
@given(reference=image_references(), junk=TEXT, at=st.integers(min_value=0, max_value=60))
def test_image_reference_mutated(reference: str, junk: str, at: int) -> None:
    only_ours(ImageReference.parse, reference[:at] + junk + reference[at:])


# -- BBS and Cloud Controller security-group JSON ---------------------------------------------------

BBS_KEYS = ["protocol", "destinations", "ports", "port_range", "icmp_info", "log", "annotations"]
ASG_KEYS = ["protocol", "destination", "ports", "type", "code", "log", "description"]
NEAR_VALUES = st.one_of(
    JSON,
    st.sampled_from(["tcp", "udp", "icmp", "all", "TCP", "icmpv6", ""]),
    st.sampled_from(["10.0.0.1", "10.0.0.0/8", "10.0.0.1-10.0.0.9", "::1", "0.0.0.0/0", "10.0.0.1,10.0.0.2"]),
    st.sampled_from(["80", "80,443", "1-65535", "0", "65536", "8080-80", " 80"]),
    st.fixed_dictionaries({"start": JSON, "end": JSON}),
    st.fixed_dictionaries({"type": JSON, "code": JSON}),
    st.lists(st.sampled_from(["10.0.0.1", "10.0.0.0/24", "x"]) | st.integers(0, 70000), max_size=3),
)


@FUZZ
@given(data=JSON | st.dictionaries(st.sampled_from(BBS_KEYS), NEAR_VALUES, max_size=6))
def test_egress_rule_from_bbs(data: Any) -> None:
    rule = only_ours(EgressRule.from_bbs, data)
    if rule is not None:
        assert EgressRule.from_bbs(rule.to_bbs()) == rule


@FUZZ
@given(data=JSON | st.dictionaries(st.sampled_from(ASG_KEYS), NEAR_VALUES, max_size=6))
def test_egress_rule_from_asg(data: Any) -> None:
    rule = only_ours(EgressRule.from_asg, data)
    if rule is not None:
        for written in rule.to_asg():
            only_ours(EgressRule.from_asg, written)


# -- long hostile text: refused by our errors, in linear time -----------------------------------------------------
# Python's regular expressions backtrack (Go's RE2 does not): a pattern such as [a-z]+(-[a-z]+)* or
# [A-Za-z][A-Za-z0-9.-]*:// is quadratic or worse on a long run of the characters it repeats. These inputs
# took minutes before the parsers bounded their input and redaction stopped using such a pattern; a
# regression shows as a test that runs for minutes, not as a flaky clock assertion.

LONG = [
    "a" + "-a" * 20000 + "!",
    "a" + ".a" * 20000 + "A",
    "a" * 5000 + "." + "b-" * 5000 + ":1/x!",
    "repo:" + "a" * 100000,
    "repo@sha256:" + "a" * 100000,
    "http://" + "a" * 100000 + " x",
    "a://" * 30000 + "@",
    "?" + "token" * 30000,
    "a@" * 50000,
]


@pytest.mark.parametrize("text", LONG, ids=lambda text: f"{text[:12]}...{len(text)}")
def test_long_hostile_text_is_refused_by_every_parser(text: str) -> None:
    for parse in (
        ImageReference.parse,
        RegistrySpec.from_url,
        lambda t: InsecurityPolicy.from_entries([t]),
        lambda t: StaticBackend([t]),
        BackendRegistry(entry_points=False).from_url,
    ):
        only_ours(parse, text)
    assert len(quote(text, limit=200)) < 220
    assert len(quote(text, entry=True, limit=200)) < 220


@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40) | TEXT)
def test_unicode_digits_and_letters_never_become_numbers_or_names(text: str) -> None:
    # str.isdigit() accepts '²' and '٣', which int() reads or refuses: neither may escape or pass as a port.
    only_ours(RegistrySpec.from_url, f"http://registry:{text}")
    for candidate in (f"10.0.0.1:{text}", f"registry:{text}/app"):
        backend = only_ours(StaticBackend, [candidate], resolver=junk_resolver)
        if backend is not None:
            found = only_ours(backend.discover, ServiceQuery("svc", default_port=1))
            assert found is None or all(1 <= instance.port <= 65535 for instance in found.instances)
        only_ours(ImageReference.parse, candidate)
        only_ours(InsecurityPolicy.from_entries, [candidate])
