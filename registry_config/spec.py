"""The registry URL a stager is given, and the security flavour it implies.

The seed makes the scheme carry meaning (``http`` is insecure), so the scheme
is mandatory: ``docker_registry:8080`` is refused rather than read, as
:func:`urllib.parse.urlsplit` would, as scheme ``docker_registry``. A refused
URL raises :class:`InvalidRegistryURL` naming the part at fault, and never
echoes a password it carried.
"""

from __future__ import annotations

import enum
import re

import attrs

from .address import format_host_port, is_hostname, parse_ip, problem_character, split_host_port
from .errors import InvalidAddress, InvalidRegistryURL
from .redact import quote

__all__ = ["RegistrySpec", "SecurityMode"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SecurityMode(enum.Enum):
    """The seed's three flavours of registry; the first two are insecure to a Docker client."""

    HTTP = "http"
    """Plain HTTP."""
    HTTPS_UNVERIFIED = "https-unverified"
    """HTTPS whose certificate is not verified (self-signed): ``skip_ssl_validation``."""
    HTTPS_VERIFIED = "https-verified"
    """HTTPS with a certificate that verifies (CA-signed)."""

    @property
    def is_insecure(self) -> bool:
        """Whether a Docker client must list the registry in ``insecure-registries``."""
        return self is not SecurityMode.HTTPS_VERIFIED

    @property
    def scheme(self) -> str:
        """The URL scheme this mode speaks."""
        return "http" if self is SecurityMode.HTTP else "https"

    def __str__(self) -> str:
        return self.value


def _fail(url: str, problem: str) -> InvalidRegistryURL:
    # Every problem here is worded by this module and quotes no part of the URL that may hold user-info
    # (an '@' anywhere is refused before any part is quoted).
    return InvalidRegistryURL(f"registry URL {quote(url, entry=True)}: {problem}")


def _normalize_domain(domain: object) -> object:
    """``Consul.`` and ``consul`` are one domain; anything not text is left for the check to refuse."""
    return domain.strip(".").lower() if isinstance(domain, str) else domain


@attrs.frozen(repr=False)
class RegistrySpec:
    """A private registry's URL, parsed and checked: scheme, host, port and how secure it is.

    Build it with :meth:`from_url`. ``str(spec)`` is the canonical
    ``scheme://host:port`` and ``RegistrySpec.from_url(str(spec))`` gives the
    spec back (with the same keyword options).
    """

    scheme: str
    host: str
    port: int
    skip_ssl_validation: bool = attrs.field(default=False, kw_only=True)
    consul_domain: str = attrs.field(default="consul", kw_only=True, converter=_normalize_domain)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.scheme, str) or self.scheme not in _DEFAULT_PORTS:
            raise InvalidRegistryURL(f"registry scheme {quote(self.scheme, limit=40)}: use 'http' or 'https'")
        if not isinstance(self.host, str):
            raise InvalidRegistryURL(f"registry host must be text, got {type(self.host).__name__}")
        ip = parse_ip(self.host)
        if ip is None and not is_hostname(self.host):
            raise InvalidRegistryURL(
                f"registry host {quote(self.host, entry=True, limit=120)} is neither an IP address nor a DNS name; "
                "give the port separately and an IPv6 address without brackets"
            )
        canonical = str(ip) if ip is not None else self.host.lower()
        if canonical != self.host:
            raise InvalidRegistryURL(f"registry host {self.host!r}: give it in canonical form, as {canonical!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            shown = repr(self.port) if isinstance(self.port, int) else quote(self.port, limit=40)
            raise InvalidRegistryURL(f"registry port {shown}: not a number in 1..65535")
        if not isinstance(self.skip_ssl_validation, bool):
            raise InvalidRegistryURL(
                f"skip_ssl_validation must be True or False, got {type(self.skip_ssl_validation).__name__}"
            )
        if not isinstance(self.consul_domain, str):
            raise InvalidRegistryURL(f"consul domain must be text, got {type(self.consul_domain).__name__}")
        if not is_hostname(self.consul_domain):
            raise InvalidRegistryURL(
                f"consul domain {quote(self.consul_domain, limit=120)} is not a DNS name; "
                "give one such as 'consul' or 'cf.internal'"
            )

    @classmethod
    def from_url(cls, url: str, *, skip_ssl_validation: bool = False, consul_domain: str = "consul") -> RegistrySpec:
        """Parse ``scheme://host[:port][/]``; refuse anything else with the part at fault."""
        if not isinstance(url, str):
            raise InvalidRegistryURL(f"registry URL must be text, got {type(url).__name__}")
        bad = problem_character(url)
        if bad is not None:
            raise _fail(url, f"{bad}; remove whitespace and control characters")
        match = _SCHEME.match(url)
        if match is None or not url[match.end() :].startswith("//"):
            raise _fail(
                url,
                "has no scheme; write http://HOST:PORT for a plain-HTTP registry or "
                "https://HOST:PORT for TLS (the scheme decides whether it is insecure)",
            )
        scheme = match.group(1).lower()
        if scheme not in _DEFAULT_PORTS:
            raise _fail(url, f"scheme {quote(match.group(1), limit=40)} is not supported; use http or https")
        rest = url[match.end() + 2 :]
        authority, path, query, fragment = _split_rest(rest)
        if "@" in rest:
            # Anywhere, not only in the authority: a password may hold '/', '?' or '#',
            # and then what follows it would be reported (echoed) as a path, query or fragment.
            raise _fail(
                url,
                "contains '@': user-info (user:password@) is not allowed; "
                "give registry credentials to the client, not the URL",
            )
        if path not in ("", "/"):
            raise _fail(url, f"path {quote(path, limit=80)} is not allowed; a registry URL is scheme://host[:port]")
        if query is not None:
            raise _fail(url, "a query ('?...') is not allowed")
        if fragment is not None:
            raise _fail(url, "a fragment ('#...') is not allowed")
        if not authority or (authority.startswith(":") and authority.count(":") == 1):
            raise _fail(url, "the host is empty")
        if not authority.startswith("[") and authority.count(":") > 1:
            raise _fail(url, "has more than one ':' outside brackets; write an IPv6 address as http://[ADDRESS]:PORT")
        try:
            host, port = split_host_port(authority, where="host")
        except InvalidAddress as exc:
            raise _fail(url, str(exc)) from None
        return cls(
            scheme,
            host,
            port if port is not None else _DEFAULT_PORTS[scheme],
            skip_ssl_validation=skip_ssl_validation,
            consul_domain=consul_domain,
        )

    @property
    def url(self) -> str:
        """The canonical ``scheme://host:port`` (IPv6 in brackets, port always present)."""
        return f"{self.scheme}://{self.address}"

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets): the registry's key in Docker's ``insecure-registries``."""
        return format_host_port(self.host, self.port)

    @property
    def security(self) -> SecurityMode:
        """Which of the seed's three flavours this registry is configured as."""
        if self.scheme == "http":
            return SecurityMode.HTTP
        return SecurityMode.HTTPS_UNVERIFIED if self.skip_ssl_validation else SecurityMode.HTTPS_VERIFIED

    @property
    def is_insecure(self) -> bool:
        """Whether the builder must be told the registry is insecure."""
        return self.security.is_insecure

    @property
    def consul_service(self) -> str | None:
        """The Consul service name when the host is ``[tag.]svc.service[.dc[.dc]].<domain>``."""
        parts = _consul_parts(self.host, self.consul_domain)
        return parts[0] if parts else None

    @property
    def consul_datacenter(self) -> str | None:
        """The datacenter named in a Consul host, if any."""
        parts = _consul_parts(self.host, self.consul_domain)
        return parts[1] if parts else None

    @property
    def consul_tag(self) -> str | None:
        """The tag named in a Consul host (``tag.svc.service.consul``), if any."""
        parts = _consul_parts(self.host, self.consul_domain)
        return parts[2] if parts else None

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        options = ""
        if self.skip_ssl_validation:
            options += ", skip_ssl_validation=True"
        if self.consul_domain != "consul":
            options += f", consul_domain={self.consul_domain!r}"
        return f"RegistrySpec.from_url({self.url!r}{options})"


def _split_rest(rest: str) -> tuple[str, str, str | None, str | None]:
    """Split what follows ``scheme://`` into authority, path, query and fragment."""
    fragment = query = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    if "?" in rest:
        rest, query = rest.split("?", 1)
    slash = rest.find("/")
    if slash < 0:
        return rest, "", query, fragment
    return rest[:slash], rest[slash:], query, fragment


def _consul_parts(host: str, domain: str) -> tuple[str, str | None, str | None] | None:
    """(service, datacenter, tag) of a Consul service host name, or None for any other host."""
    suffix = "." + domain
    if not host.endswith(suffix):
        return None
    labels = host[: -len(suffix)].split(".")
    datacenter: str | None = None
    if labels[-1] == "service":
        before = labels[:-1]
    elif len(labels) >= 3 and labels[-2] == "service":
        before, datacenter = labels[:-2], labels[-1]
    elif len(labels) >= 4 and labels[-1] == "dc" and labels[-3] == "service":
        before, datacenter = labels[:-3], labels[-2]
    else:
        return None
    if len(before) == 1:
        return before[0], datacenter, None
    if len(before) == 2:
        first, second = before
        if first.startswith("_") and second.startswith("_") and len(first) > 1:
            # RFC 2782 form: _service._tag (or _tcp, which means no tag).
            return first[1:], datacenter, None if second == "_tcp" else second[1:] or None
        return second, datacenter, first
    return None
