"""The edges of registry URLs and specs that `make mutation` found untested (docs/mutation.md).

Each test here kills mutants of registry_config/spec.py that survived
tests/test_spec.py: a spec built directly (its default security, its port
range, a host holding a password, a non-canonical host whose canonical form
sorts first), the keyword-only options, the Consul host forms that are one
label away from a service name, a URL with a second ``#`` or ``?``, and how
much of a refused value a message shows.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from registry_config.errors import InvalidRegistryURL
from registry_config.spec import RegistrySpec, SecurityMode


def _refusal(build: Callable[[], object]) -> str:
    with pytest.raises(InvalidRegistryURL) as caught:
        build()
    return str(caught.value)


# --- a spec built directly ------------------------------------------------------------------------------------


def test_a_spec_built_directly_is_verified_https_unless_told_otherwise() -> None:
    """Guards against a default of ``skip_ssl_validation=True``: every directly built HTTPS spec insecure."""
    spec = RegistrySpec("https", "registry", 443)
    assert spec.skip_ssl_validation is False
    assert spec.security is SecurityMode.HTTPS_VERIFIED
    assert spec.is_insecure is False
    assert repr(spec) == "RegistrySpec.from_url('https://registry:443')"


def test_a_spec_built_directly_refuses_port_65536_and_keeps_65535() -> None:
    """Guards against an upper bound of 65536: a port no socket can use, accepted when the spec is built directly."""
    assert RegistrySpec("http", "registry", 65535).url == "http://registry:65535"
    message = _refusal(lambda: RegistrySpec("http", "registry", 65536))
    assert message == "registry port 65536: not a number in 1..65535"


def test_a_host_holding_a_password_is_never_echoed_when_built_directly() -> None:
    """Guards against quoting the host as plain text: ``user:password@`` in it would be shown in the message.

    ``from_url`` refuses an ``@`` before anything is quoted; a spec built
    directly has only the host's own redaction (as one entry) to hide it.
    """
    for host in ("user:s3cret-pass@registry", "user:s3cret pass@registry", "s3cret-pass@registry"):
        message = _refusal(lambda host=host: RegistrySpec("http", host, 80))  # type: ignore[misc]
        assert "s3cret" not in message
        assert "registry host '***@registry' is neither an IP address nor a DNS name" in message


def test_a_non_canonical_host_is_refused_even_when_its_canonical_form_sorts_first() -> None:
    """Guards against refusing only a host whose canonical form sorts after it (as upper case and zeros do).

    ``1::2:0:0:0:0`` compresses the first run of zeros where the canonical
    ``1:0:0:2::`` compresses the longer one: the canonical text sorts first.
    """
    message = _refusal(lambda: RegistrySpec("http", "1::2:0:0:0:0", 80))
    assert message == "registry host '1::2:0:0:0:0': give it in canonical form, as '1:0:0:2::'"
    assert RegistrySpec.from_url("http://[1::2:0:0:0:0]").host == "1:0:0:2::"


def test_the_options_are_keyword_only() -> None:
    """Guards against ``consul_domain`` or ``skip_ssl_validation`` taken by position (after the port or the URL)."""
    with pytest.raises(TypeError):
        RegistrySpec("http", "registry", 80, "cf.internal")  # type: ignore[misc]
    with pytest.raises(TypeError):
        RegistrySpec("http", "registry", 80, True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        RegistrySpec.from_url("http://registry", True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        RegistrySpec.from_url("http://registry", False, "cf.internal")  # type: ignore[misc]
    spec = RegistrySpec("http", "registry", 80, consul_domain="cf.internal")
    assert spec.consul_domain == "cf.internal"


# --- Consul host names one label away from a service name -----------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        # The long datacenter form is <service>.service.<dc>.dc.<domain>: both labels must be exactly those.
        "docker_registry.node.dc1.dc.consul",
        "docker_registry.query.dc1.dc.consul",
        "docker_registry.web.dc1.dc.consul",
        "docker_registry.service.dc1.zz.consul",
        "docker_registry.service.dc1.az.consul",
        "docker_registry.service.dc1.east.consul",
    ],
)
def test_the_datacenter_form_needs_both_the_service_and_the_dc_label(host: str) -> None:
    """Guards against reading a node, query or other name (or a dc label that is not ``dc``) as a Consul service."""
    spec = RegistrySpec.from_url(f"http://{host}:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == (None, None, None)


@pytest.mark.parametrize("tag", ["udp", "web", "zone-b", "v2", "tcp2"])
def test_an_rfc2782_tag_is_a_tag_whatever_it_sorts_after(tag: str) -> None:
    """Guards against treating any tag other than ``_tcp`` itself as "no tag": ``_udp`` or ``_web`` sort after it."""
    spec = RegistrySpec.from_url(f"http://_docker_registry._{tag}.service.dc1.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("docker_registry", "dc1", tag)


def test_only_two_leading_underscores_make_the_rfc2782_form() -> None:
    """Guards against reading ``_tag.service`` (one underscore label) as ``_service._tag``: service and tag swapped."""
    spec = RegistrySpec.from_url("http://_primary.docker_registry.service.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("docker_registry", None, "_primary")
    spec = RegistrySpec.from_url("http://primary._docker_registry.service.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("_docker_registry", None, "primary")


def test_a_lone_underscore_label_is_a_tag_not_an_empty_service_name() -> None:
    """Guards against reading ``_._web`` as the RFC 2782 form: a service named '' (the empty name)."""
    spec = RegistrySpec.from_url("http://_._web.service.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("_web", None, "_")


def test_a_one_character_service_name_has_the_rfc2782_form_too() -> None:
    """Guards against a minimum of two characters after the underscore: ``_r._tcp`` read as service '_tcp', tag '_r'."""
    spec = RegistrySpec.from_url("http://_r._tcp.service.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("r", None, None)
    spec = RegistrySpec.from_url("http://_r._web.service.dc1.consul:8080")
    assert (spec.consul_service, spec.consul_datacenter, spec.consul_tag) == ("r", "dc1", "web")


# --- a second '#' or '?' --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://registry#a#b", "a fragment ('#...') is not allowed"),
        ("http://registry/#a#b#c", "a fragment ('#...') is not allowed"),
        ("http://registry?a?b", "a query ('?...') is not allowed"),
        ("http://registry?a=1?b=2#c#d", "a query ('?...') is not allowed"),
    ],
)
def test_a_second_fragment_or_query_mark_is_refused_as_such(url: str, message: str) -> None:
    """Guards against splitting at every ``#`` or ``?``: a ValueError escaping instead of the URL's own error."""
    assert message in _refusal(lambda: RegistrySpec.from_url(url))


# --- how much of a refused value a message shows --------------------------------------------------------------

# Each place that quotes a refused value: its limit, how a refused text of that place starts and ends, and what
# refuses it. A text of any length is made by filling in between.
_QUOTED: dict[str, tuple[int, str, str, Callable[[str], object]]] = {
    "from_url's scheme": (40, "s", "", lambda text: RegistrySpec.from_url(f"{text}://registry")),
    "from_url's path": (80, "/", "", lambda text: RegistrySpec.from_url(f"http://registry{text}")),
    "the scheme": (40, "s", "", lambda text: RegistrySpec(text, "registry", 80)),
    "the host": (120, "h", ",", lambda text: RegistrySpec("http", text, 80)),
    "the port": (40, "8", "", lambda text: RegistrySpec("http", "registry", text)),  # type: ignore[arg-type]
    "the consul domain": (120, "d", ",", lambda text: RegistrySpec("http", "registry", 80, consul_domain=text)),
}


@pytest.mark.parametrize("place", sorted(_QUOTED))
def test_a_refused_value_is_shown_whole_up_to_its_limit_and_cut_after(place: str) -> None:
    """Guards against a limit one off: a value of exactly the limit cut for nothing, or one past it shown whole."""
    limit, head, tail, build = _QUOTED[place]
    text = head + "x" * (limit - len(head) - len(tail)) + tail
    assert len(text) == limit
    assert f"'{text}'" in _refusal(lambda: build(text))
    longer = head + "x" * (limit + 1 - len(head) - len(tail)) + tail
    assert f"'{longer[: limit - 3]}...'" in _refusal(lambda: build(longer))
