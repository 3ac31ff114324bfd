"""The registry URL: mandatory scheme, the three security flavours, canonical text, Consul names."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import consul_hosts, hostile_text, hosts, passwords, ports, registry_specs, registry_urls

from registry_config.errors import InvalidRegistryURL
from registry_config.spec import RegistrySpec, SecurityMode

# --- accepted URLs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "canonical"),
    [
        ("http://10.244.2.6:8080", "http", "10.244.2.6", 8080, "http://10.244.2.6:8080"),
        ("http://registry", "http", "registry", 80, "http://registry:80"),
        ("https://registry", "https", "registry", 443, "https://registry:443"),
        ("https://registry/", "https", "registry", 443, "https://registry:443"),
        (
            "HTTPS://Registry.Example.COM:5000/",
            "https",
            "registry.example.com",
            5000,
            "https://registry.example.com:5000",
        ),
        (
            "http://docker_registry.service.dc1.consul:8080",
            "http",
            "docker_registry.service.dc1.consul",
            8080,
            "http://docker_registry.service.dc1.consul:8080",
        ),
        ("http://[::1]:5000", "http", "::1", 5000, "http://[::1]:5000"),
        ("https://[2001:DB8:0::1]", "https", "2001:db8::1", 443, "https://[2001:db8::1]:443"),
        ("http://host:0080", "http", "host", 80, "http://host:80"),
        ("http://localhost:65535", "http", "localhost", 65535, "http://localhost:65535"),
    ],
)
def test_from_url_parses_and_canonicalizes(url: str, scheme: str, host: str, port: int, canonical: str) -> None:
    spec = RegistrySpec.from_url(url)
    assert (spec.scheme, spec.host, spec.port) == (scheme, host, port)
    assert spec.url == canonical
    assert str(spec) == canonical
    assert RegistrySpec.from_url(canonical) == spec


def test_address_is_the_insecure_registries_key() -> None:
    assert RegistrySpec.from_url("http://10.244.2.6:8080").address == "10.244.2.6:8080"
    assert RegistrySpec.from_url("https://[fd00::5]").address == "[fd00::5]:443"
    assert RegistrySpec.from_url("http://Reg.Example").address == "reg.example:80"


# --- the three flavours of the seed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "skip", "mode", "insecure"),
    [
        ("http://registry:8080", False, SecurityMode.HTTP, True),
        ("http://registry:8080", True, SecurityMode.HTTP, True),
        ("https://registry:8443", True, SecurityMode.HTTPS_UNVERIFIED, True),
        ("https://registry:8443", False, SecurityMode.HTTPS_VERIFIED, False),
    ],
)
def test_security_modes(url: str, skip: bool, mode: SecurityMode, insecure: bool) -> None:
    spec = RegistrySpec.from_url(url, skip_ssl_validation=skip)
    assert spec.security is mode
    assert spec.is_insecure is insecure
    assert mode.is_insecure is insecure
    assert mode.scheme == spec.scheme


def test_security_mode_text() -> None:
    assert [str(mode) for mode in SecurityMode] == ["http", "https-unverified", "https-verified"]


@pytest.mark.parametrize("value", ["no", 1, None, "False"])
def test_skip_ssl_validation_must_be_a_bool(value: object) -> None:
    with pytest.raises(InvalidRegistryURL, match="skip_ssl_validation must be True or False"):
        RegistrySpec.from_url("https://registry", skip_ssl_validation=value)  # type: ignore[arg-type]


# --- refused URLs, each naming the part at fault --------------------------------------------------------------

NO_SCHEME = "has no scheme; write http://HOST:PORT for a plain-HTTP registry or https://HOST:PORT for TLS"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("docker_registry:8080", f"registry URL 'docker_registry:8080': {NO_SCHEME}"),
        ("registry.example:5000", f"registry URL 'registry.example:5000': {NO_SCHEME}"),
        ("10.0.0.1:5000", f"registry URL '10.0.0.1:5000': {NO_SCHEME}"),
        ("localhost", f"registry URL 'localhost': {NO_SCHEME}"),
        ("//registry:80", NO_SCHEME),
        ("http:registry:80", NO_SCHEME),
        ("http:/registry", NO_SCHEME),
        ("", NO_SCHEME),
        ("ftp://registry", "registry URL 'ftp://registry': scheme 'ftp' is not supported; use http or https"),
        ("docker://registry", "scheme 'docker' is not supported"),
        ("consul://127.0.0.1:8500", "scheme 'consul' is not supported"),
        ("http://user@registry", "contains '@': user-info (user:password@) is not allowed"),
        ("http://registry/v2/", "path '/v2/' is not allowed; a registry URL is scheme://host[:port]"),
        ("http://registry//", "path '//' is not allowed"),
        ("http://registry?x=1", "a query ('?...') is not allowed"),
        ("http://registry/?", "a query ('?...') is not allowed"),
        ("http://registry#top", "a fragment ('#...') is not allowed"),
        ("http://", "the host is empty"),
        ("http:///", "the host is empty"),
        ("http://:8080", "the host is empty"),
        ("http://registry:", "port '' is not a number in 1..65535"),
        ("http://registry:0", "port '0' is not a number in 1..65535"),
        ("http://registry:65536", "port '65536' is not a number in 1..65535"),
        ("http://registry:http", "port 'http' is not a number in 1..65535"),
        ("http://registry:80:80", "has more than one ':' outside brackets"),
        ("http://reg istry", "contains ' ' at column 10; remove whitespace and control characters"),
        ("http://registry\n", "contains '\\n' at column 15"),
        (" http://registry", "contains ' ' at column 0"),
        ("http://regis\x00try", "contains '\\x00' at column 12"),
        ("http://reg,istry", "'reg,istry' is neither an IP address nor a DNS name"),
        ("http://-registry", "'-registry' is neither an IP address nor a DNS name"),
        ("http://300.1.1.1", "'300.1.1.1' is neither an IP address nor a DNS name"),
        ("http://[::1", "opens '[' without closing it"),
        ("http://[10.0.0.1]", "in brackets is not an IPv6 address"),
        ("http://::1", "has more than one ':' outside brackets; write an IPv6 address as http://[ADDRESS]:PORT"),
        ("http://2001:db8::1:8080", "has more than one ':' outside brackets"),
        ("http://[fe80::1%25eth0]", "has a zone id"),
    ],
)
def test_from_url_refuses_naming_the_part(url: str, message: str) -> None:
    with pytest.raises(InvalidRegistryURL) as caught:
        RegistrySpec.from_url(url)
    assert message in str(caught.value)


def test_docker_registry_8080_is_not_read_as_a_scheme() -> None:
    """urllib.parse.urlsplit reads it as scheme 'docker_registry'; the seed needs the scheme to decide insecurity."""
    with pytest.raises(InvalidRegistryURL, match="has no scheme"):
        RegistrySpec.from_url("docker_registry:8080")


@pytest.mark.parametrize("value", [None, 8080, b"http://registry"])
def test_from_url_refuses_what_is_not_text(value: object) -> None:
    with pytest.raises(InvalidRegistryURL, match="must be text"):
        RegistrySpec.from_url(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://user:s3cret-pass@registry:8080",
        "http://user:s3cret/pass@registry",
        "http://user:s3cret?pass@registry",
        "http://user:s3cret#pass@registry",
        "http://user:s3cret@pass@registry",
        "http://user:s3cret pass@registry",
        "user:s3cret-pass@registry:8080",
        "ftp://user:s3cret-pass@registry",
        "http:/user:s3cret-pass@registry",
    ],
)
def test_a_password_is_never_echoed(url: str) -> None:
    with pytest.raises(InvalidRegistryURL) as caught:
        RegistrySpec.from_url(url)
    assert "s3cret" not in str(caught.value)
    assert "pass" not in str(caught.value).replace("password", "")


@given(
    st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
    st.sampled_from(["", "user", "u-s.er"]),
    passwords(),
    st.sampled_from(["registry", "10.0.0.1:8080", "[::1]:5000", "", "bad host"]),
    st.sampled_from(["", "/", "/v2/", "?q", "#f"]),
)
def test_no_password_reaches_any_message(scheme: str, user: str, password: str, host: str, tail: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}{tail}" if scheme else f"{user}:{password}@{host}{tail}"
    with pytest.raises(InvalidRegistryURL) as caught:
        RegistrySpec.from_url(url)
    assert password not in str(caught.value)
    assert password not in repr(caught.value)


@given(st.text())
def test_from_url_raises_only_registry_config_errors(text: str) -> None:
    try:
        spec = RegistrySpec.from_url(text)
    except InvalidRegistryURL:
        return
    assert spec.scheme in ("http", "https")


@given(hostile_text(base=registry_urls()))
def test_hostile_urls_are_refused_or_harmless(text: str) -> None:
    try:
        spec = RegistrySpec.from_url(text)
    except InvalidRegistryURL:
        return
    for forbidden in (",", " ", "\n", "@", "?", "#", "\x00"):
        assert forbidden not in spec.address
    assert spec.url.count("://") == 1


# --- canonical text, repr, value semantics --------------------------------------------------------------------


@given(registry_specs())
def test_str_round_trips(spec: RegistrySpec) -> None:
    again = RegistrySpec.from_url(
        str(spec), skip_ssl_validation=spec.skip_ssl_validation, consul_domain=spec.consul_domain
    )
    assert again == spec
    assert str(again) == str(spec)


@given(registry_urls())
def test_any_valid_url_is_accepted_lower_cased_with_a_port(url: str) -> None:
    spec = RegistrySpec.from_url(url)
    assert spec.host == spec.host.lower()
    assert spec.url.startswith(spec.scheme + "://")
    assert spec.url.rsplit(":", 1)[1] == str(spec.port)


@given(hosts(), ports())
def test_explicit_port_is_kept(host: str, port: int) -> None:
    authority = f"[{host}]" if ":" in host else host
    assert RegistrySpec.from_url(f"https://{authority}:{port}").port == port


@given(registry_specs())
def test_repr_rebuilds_the_spec(spec: RegistrySpec) -> None:
    rebuilt = eval(repr(spec), {"RegistrySpec": RegistrySpec})  # noqa: S307 (repr is documented to rebuild)
    assert rebuilt == spec


def test_repr_shows_options_only_when_set() -> None:
    assert repr(RegistrySpec.from_url("http://r")) == "RegistrySpec.from_url('http://r:80')"
    assert (
        repr(RegistrySpec.from_url("https://r", skip_ssl_validation=True, consul_domain="cf.internal"))
        == "RegistrySpec.from_url('https://r:443', skip_ssl_validation=True, consul_domain='cf.internal')"
    )


def test_specs_are_immutable_values() -> None:
    spec = RegistrySpec.from_url("http://registry:8080")
    assert spec == RegistrySpec.from_url("HTTP://REGISTRY:8080/")
    assert hash(spec) == hash(RegistrySpec.from_url("http://registry:8080"))
    assert spec != RegistrySpec.from_url("https://registry:8080")
    assert spec != RegistrySpec.from_url("http://registry:8080", consul_domain="cf.internal")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.port = 1  # type: ignore[misc]
    assert attrs.evolve(spec, port=9090).url == "http://registry:9090"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "ftp", "host": "r", "port": 80}, "registry scheme 'ftp': use 'http' or 'https'"),
        ({"scheme": "HTTP", "host": "r", "port": 80}, "registry scheme 'HTTP'"),
        ({"scheme": "http", "host": "R", "port": 80}, "registry host 'R': give it in canonical form, as 'r'"),
        ({"scheme": "http", "host": "2001:DB8:0::1", "port": 80}, "in canonical form, as '2001:db8::1'"),
        ({"scheme": "http", "host": "r:80", "port": 80}, "registry host 'r:80' is neither an IP address nor a DNS"),
        ({"scheme": "http", "host": "[::1]", "port": 80}, "give the port separately and an IPv6 address without"),
        ({"scheme": "http", "host": "a b", "port": 80}, "registry host 'a b' is neither an IP address nor a DNS"),
        ({"scheme": "http", "host": 1, "port": 80}, "registry host must be text, got int"),
        ({"scheme": "http", "host": "r", "port": 0}, "registry port 0: not a number in 1..65535"),
        ({"scheme": "http", "host": "r", "port": True}, "registry port True"),
        ({"scheme": "http", "host": "r", "port": "80"}, "registry port '80'"),
    ],
)
def test_direct_construction_is_checked_too(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRegistryURL) as caught:
        RegistrySpec(**kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)


# --- Consul service names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "service", "datacenter", "tag"),
    [
        ("docker_registry.service.consul", "docker_registry", None, None),
        ("docker_registry.service.dc1.consul", "docker_registry", "dc1", None),
        ("docker_registry.service.dc1.dc.consul", "docker_registry", "dc1", None),
        ("primary.docker_registry.service.consul", "docker_registry", None, "primary"),
        ("primary.docker_registry.service.dc1.consul", "docker_registry", "dc1", "primary"),
        ("primary.docker_registry.service.dc1.dc.consul", "docker_registry", "dc1", "primary"),
        ("_docker_registry._tcp.service.consul", "docker_registry", None, None),
        ("_docker_registry._primary.service.dc1.consul", "docker_registry", "dc1", "primary"),
        ("Docker_Registry.Service.DC1.Consul", "docker_registry", "dc1", None),
    ],
)
def test_consul_names(host: str, service: str, datacenter: str | None, tag: str | None) -> None:
    spec = RegistrySpec.from_url(f"http://{host}:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == (service, datacenter, tag)


@pytest.mark.parametrize(
    "host",
    [
        "registry.example.com",
        "10.0.0.1",
        "::1",
        "service.consul",
        "consul",
        "a.b.c.service.consul",
        "docker_registry.service.cf.internal",
        "docker_registry.node.consul",
        "docker_registry.service.dc1.dc.other",
    ],
)
def test_other_hosts_are_not_consul_names(host: str) -> None:
    spec = RegistrySpec.from_url(f"http://[{host}]" if ":" in host else f"http://{host}")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == (None, None, None)


def test_consul_domain_replaces_consul() -> None:
    """Cloud Foundry registered its services under cf.internal."""
    spec = RegistrySpec.from_url("http://docker_registry.service.dc1.cf.internal:8080", consul_domain="cf.internal")
    assert (spec.consul_service, spec.consul_datacenter) == ("docker_registry", "dc1")
    assert spec.consul_domain == "cf.internal"
    plain = RegistrySpec.from_url("http://docker_registry.service.dc1.cf.internal:8080")
    assert plain.consul_service is None


@pytest.mark.parametrize(("given_domain", "stored"), [("CF.Internal.", "cf.internal"), (".consul", "consul")])
def test_consul_domain_is_normalized(given_domain: str, stored: str) -> None:
    assert RegistrySpec.from_url("http://r", consul_domain=given_domain).consul_domain == stored
    assert RegistrySpec("http", "r", 80, consul_domain=given_domain).consul_domain == stored


@pytest.mark.parametrize("domain", ["", ".", "a b", "cf,internal", "consul:8500", "-consul", 7, None])
def test_bad_consul_domains_are_refused(domain: object) -> None:
    with pytest.raises(InvalidRegistryURL, match="consul domain"):
        RegistrySpec.from_url("http://r", consul_domain=domain)  # type: ignore[arg-type]


@given(consul_hosts(domain="consul") | consul_hosts(domain="cf.internal"))
def test_generated_consul_names_parse_back(case: tuple[str, str, str | None, str | None]) -> None:
    host, service, datacenter, tag = case
    domain = "cf.internal" if host.endswith(".cf.internal") else "consul"
    spec = RegistrySpec.from_url(f"https://{host}:8443", consul_domain=domain)
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == (service, datacenter, tag)


@given(hosts())
def test_consul_properties_never_raise(host: str) -> None:
    assume(":" not in host)
    spec = RegistrySpec.from_url(f"http://{host}")
    if spec.consul_service is None:
        assert spec.consul_tag is None
        assert spec.consul_datacenter is None
    else:
        labels = spec.host.split(".")
        assert spec.consul_service in labels or f"_{spec.consul_service}" in labels
