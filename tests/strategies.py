"""Hypothesis strategies shared by the test suite: valid inputs, and hostile ones.

The names here are a small stable API for every test module: import what
you need (``from strategies import registry_urls, hostile_text``). Valid
strategies produce text the library must accept; ``hostile_*`` strategies
produce text that must never reach a builder flag or an egress rule.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

__all__ = [
    "DIGEST_ALGORITHMS",
    "HOSTILE_FRAGMENTS",
    "SECRET_MARK",
    "consul_hosts",
    "digests",
    "dns_labels",
    "docker_domains",
    "host_ports",
    "hostile_text",
    "hostnames",
    "hosts",
    "image_references",
    "ip_addresses",
    "ipv4_addresses",
    "ipv6_addresses",
    "marked_secrets",
    "passwords",
    "ports",
    "registry_specs",
    "registry_urls",
    "schemes",
    "tags",
]

_LETTERS_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
_LABEL_CHARS = _LETTERS_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "_-"

DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
"""The digest algorithms Docker accepts, with their length in hex digits."""

HOSTILE_FRAGMENTS = (
    ",",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\u00a0",
    "://",
    "http://",
    "@",
    "/",
    "?",
    "#",
    "%",
    ";",
    "$(id)",
    "`id`",
    "'",
    '"',
    "\\",
    "..",
    "[",
    "]",
    ":",
    "::",
    "-",
    "_",
    "=",
    "*",
    "é",
    "\ufeff",
)
"""Pieces of text that have broken parsers before: separators, control characters, schemes, quoting."""


@st.composite
def dns_labels(draw: st.DrawFn, *, underscores: bool = True, upper: bool = True) -> str:
    """One DNS label as Consul and registry_config accept it (1..63 chars, no '-' at an end)."""
    inner = _LABEL_CHARS
    if not underscores:
        inner = inner.replace("_", "")
    if not upper:
        inner = "".join(c for c in inner if not c.isupper())
    edge = inner.replace("-", "")
    first = draw(st.sampled_from(edge))
    middle = draw(st.text(alphabet=inner, max_size=8))
    last = draw(st.sampled_from(edge)) if middle or draw(st.booleans()) else ""
    return first + middle + last


@st.composite
def hostnames(draw: st.DrawFn, *, underscores: bool = True, upper: bool = True) -> str:
    """A DNS name of 1..4 labels, not all digits (``300.1.2.3`` is a broken IP, not a name)."""
    labels = draw(st.lists(dns_labels(underscores=underscores, upper=upper), min_size=1, max_size=4))
    if all(label.isdigit() for label in labels):
        labels.append(draw(st.sampled_from(["local", "internal", "consul", "example"])))
    return ".".join(labels)


def ipv4_addresses() -> st.SearchStrategy[ipaddress.IPv4Address]:
    """Any IPv4 address."""
    return st.ip_addresses(v=4)  # type: ignore[return-value]


def ipv6_addresses() -> st.SearchStrategy[ipaddress.IPv6Address]:
    """Any IPv6 address."""
    return st.ip_addresses(v=6)  # type: ignore[return-value]


def ip_addresses() -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Any IP address, either family."""
    return st.ip_addresses()


def ports() -> st.SearchStrategy[int]:
    """A valid TCP port, with the edges and the usual registry ports drawn often."""
    return st.one_of(st.sampled_from([1, 80, 443, 5000, 8080, 65535]), st.integers(min_value=1, max_value=65535))


def hosts() -> st.SearchStrategy[str]:
    """A host as text: a DNS name (any case, underscores), an IPv4 address or an IPv6 address (no brackets)."""
    return st.one_of(hostnames(), ipv4_addresses().map(str), ipv6_addresses().map(str))


@st.composite
def host_ports(draw: st.DrawFn, *, port: bool | None = None) -> str:
    """``host``, ``host:port``, ``ip:port`` or ``[v6]:port`` text; ``port`` forces (True) or forbids (False) one."""
    host = draw(hosts())
    with_port = draw(st.booleans()) if port is None else port
    if not with_port:
        return f"[{host}]" if ":" in host and draw(st.booleans()) else host
    return f"[{host}]:{draw(ports())}" if ":" in host else f"{host}:{draw(ports())}"


def schemes() -> st.SearchStrategy[str]:
    """``http`` or ``https`` in any letter case."""
    return st.sampled_from(["http", "https", "HTTP", "HTTPS", "Http", "hTTps"])


@st.composite
def registry_urls(draw: st.DrawFn) -> str:
    """A registry URL ``RegistrySpec.from_url`` must accept: scheme, host, maybe a port, maybe a '/'."""
    scheme = draw(schemes())
    host = draw(hosts())
    authority = f"[{host}]" if ":" in host else host
    if draw(st.booleans()):
        authority += f":{draw(ports())}"
    return f"{scheme}://{authority}{draw(st.sampled_from(['', '/']))}"


@st.composite
def registry_specs(draw: st.DrawFn) -> object:
    """A ``RegistrySpec`` from a valid URL, with any ``skip_ssl_validation`` and a Consul domain."""
    from registry_config.spec import RegistrySpec

    return RegistrySpec.from_url(
        draw(registry_urls()),
        skip_ssl_validation=draw(st.booleans()),
        consul_domain=draw(st.sampled_from(["consul", "cf.internal", "Consul.", "service.example"])),
    )


@st.composite
def consul_hosts(draw: st.DrawFn, *, domain: str = "consul") -> tuple[str, str, str | None, str | None]:
    """``(host, service, datacenter, tag)`` for a Consul service name in one of its documented forms."""
    # 'service' and 'dc' as labels make the name ambiguous, and a leading '_' is RFC 2782's form.
    label = dns_labels(upper=False).filter(lambda t: t not in ("service", "dc") and not t.startswith("_"))
    service = draw(label)
    datacenter = draw(st.none() | label)
    tag = draw(st.none() | label)
    host = f"{service}.service"
    if datacenter is not None:
        host += f".{datacenter}" + draw(st.sampled_from(["", ".dc"]))
    if tag is not None:
        host = f"{tag}.{host}"
    return f"{host}.{domain}", service, datacenter, tag


@st.composite
def hostile_text(draw: st.DrawFn, *, base: st.SearchStrategy[str] | None = None) -> str:
    """Text that mixes hostile fragments into arbitrary (or ``base``) text, at random places."""
    text = draw(base if base is not None else st.text(max_size=20))
    for fragment in draw(st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=3)):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + fragment + text[at:]
    return text


SECRET_MARK = "Zq"
"""Starts every piece of a :func:`marked_secrets` secret; no message of the library contains it otherwise."""


@st.composite
def marked_secrets(draw: st.DrawFn, *, separators: str = "/?#@: ") -> str:
    """A secret whose pieces, between URL-confusing ``separators``, each start with :data:`SECRET_MARK`.

    A message that shows any piece of the secret (not only the whole) shows the mark.
    """
    pieces = draw(st.lists(st.text(alphabet="abcdefxy0123456789", min_size=2, max_size=6), min_size=1, max_size=5))
    cuts = draw(st.lists(st.sampled_from([*separators, "://", ""]), min_size=len(pieces), max_size=len(pieces)))
    return "".join(SECRET_MARK + piece + cut for piece, cut in zip(pieces, cuts, strict=True))


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """A password of 8+ characters, including the ones that confuse URL parsers (``/ ? # @ :``)."""
    tricky = st.sampled_from([*"/?#@:%[]", "://"])
    parts = draw(st.lists(st.text(alphabet=_LETTERS_DIGITS + "ABCXYZ!$&*", min_size=1) | tricky, min_size=1))
    return "Pw" + "".join(parts) + "x" * 6


def tags() -> st.SearchStrategy[str]:
    """A Docker tag: ``[\\w][\\w.-]{0,127}`` with Go's ASCII ``\\w``."""
    return st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@st.composite
def digests(draw: st.DrawFn) -> str:
    """A digest Docker accepts: a known algorithm and exactly its length of lower-case hex."""
    algorithm, size = draw(st.sampled_from(sorted(DIGEST_ALGORITHMS.items())))
    return f"{algorithm}:" + draw(st.text(alphabet="0123456789abcdef", min_size=size, max_size=size))


_PATH_COMPONENT = r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,4}){0,2}"


@st.composite
def docker_domains(draw: st.DrawFn) -> str:
    """A registry domain Docker's reference grammar reads as one (a '.', a ':port', or ``localhost``)."""
    name = draw(hostnames(underscores=False, upper=False))
    choice = draw(st.sampled_from(["dotted", "port", "localhost", "ipv4", "ipv6"]))
    if choice == "dotted":
        return name if "." in name else name + ".example"
    if choice == "port":
        return f"{name}:{draw(ports())}"
    if choice == "localhost":
        return "localhost" + draw(st.sampled_from(["", ":5000"]))
    if choice == "ipv4":
        return str(draw(ipv4_addresses())) + draw(st.sampled_from(["", f":{draw(ports())}"]))
    v6 = draw(ipv6_addresses())
    if v6.ipv4_mapped is not None or "." in str(v6):
        v6 = ipaddress.IPv6Address("2001:db8::1")  # Docker's grammar has no dotted quad inside brackets
    return f"[{v6}]" + draw(st.sampled_from(["", f":{draw(ports())}"]))


@st.composite
def image_references(draw: st.DrawFn) -> str:
    """Text Docker reads as an image reference: optional domain, 1..3 path components, tag, digest."""
    components = draw(st.lists(st.from_regex(_PATH_COMPONENT, fullmatch=True), min_size=1, max_size=3))
    with_domain = draw(st.booleans())
    if not with_domain:
        # Without a domain, a first component holding '.' would be read as one.
        components[0] = components[0].replace(".", "-")
    text = path = "/".join(components)
    if with_domain:
        text = f"{draw(docker_domains())}/{path}"
    if draw(st.booleans()):
        text += f":{draw(tags())}"
    if draw(st.booleans()):
        text += f"@{draw(digests())}"
    return text
