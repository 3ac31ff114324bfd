"""Docker image references, read the way the Docker daemon reads them.

A stager that is handed ``registry.internal:5000/team/app:1.2`` must know
which registry the daemon will contact (``registry.internal:5000``) to tell
whether that registry is insecure. Guessing from the text goes wrong in the
corners Docker settled long ago: ``ubuntu`` is ``docker.io/library/ubuntu``,
``foo/bar`` is on Docker Hub but ``foo.com/bar`` and ``foo:5000/bar`` are
not, ``test.com:5000`` alone is the image ``test.com`` tagged ``5000``.

This is a port of the grammar and normalization of Docker's reference
library (``github.com/distribution/reference``: ``regexp.go``,
``reference.go``, ``normalize.go``) and of the digest checks of
``go-digest``, with two deliberate additions, both refusing what no daemon
could contact: a bracketed domain must be a real IPv6 address, and a port
must be in 1..65535.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

from .address import bad_character, format_host_port, problem_character, split_host_port
from .errors import InvalidAddress, InvalidImageReference
from .redact import quote, redact, secrets_of

if TYPE_CHECKING:
    from .policy import InsecurityPolicy

__all__ = ["DEFAULT_DOMAIN", "ImageReference"]

DEFAULT_DOMAIN = "docker.io"
"""Docker Hub's canonical domain: where a reference without one points."""

_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_NAME_TOTAL_LENGTH_MAX = 255
# A name of 255, ':' and a tag of 128, '@' and the longest digest ("sha512:" and 128 hex digits), with room to spare.
_TEXT_LENGTH_MAX = 600

# The productions of distribution/reference regexp.go; Go's \w is ASCII-only,
# so it is spelled out (Python's \w would admit any Unicode letter).
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6_ADDRESS + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?")
_ANCHORED_NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")")
_DOMAIN_AND_PORT_RE = re.compile(_DOMAIN_AND_PORT)
_PATH_COMPONENT_RE = re.compile(_PATH_COMPONENT)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# go-digest: the algorithms a Docker build registers, with their hex length.
_DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


def _may_hold_userinfo(text: str) -> bool:
    """Whether ``text`` may carry ``user:password@``: a URL, or an '@' that does not start a valid digest."""
    return "://" in text or ("@" in text and not _DIGEST_RE.fullmatch(text.rpartition("@")[2]))


def _fail(text: object, rule: str) -> InvalidImageReference:
    """The error for ``text``, echoed redacted: a URL pasted as a reference may carry a password."""
    if isinstance(text, str) and _may_hold_userinfo(text):
        return InvalidImageReference(
            f"image reference {quote(text, entry=True, limit=200)}: {redact(rule, secrets_of(text))}"
        )
    return InvalidImageReference(f"image reference {quote(text, limit=300)}: {rule}")


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go ``splitDockerDomain``: which part is a registry, which the repository."""
    maybe_domain, slash, maybe_remote = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, _OFFICIAL_PREFIX + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == _LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain or maybe_domain.lower() != maybe_domain:
        # A '.' or ':' marks a host or host:port; an upper-case letter cannot
        # start a repository, so Docker reads that component as a host too.
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = _OFFICIAL_PREFIX + remote
    return domain, remote


def _explain(text: str, full: str, domain: str) -> InvalidImageReference:
    """Say which rule of the grammar ``full`` (``text`` normalized) breaks."""
    if text.startswith("[") and "/" not in text:
        return _fail(text, "an [IPv6] registry alone is not an image; write [ADDRESS]:PORT/REPOSITORY[:TAG]")
    name, at, digest = full.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        return _fail(text, f"digest {digest!r} is not ALGORITHM:HEX (such as sha256: and at least 32 hex digits)")
    last_slash = name.rfind("/")
    repository, colon, tag = name[last_slash + 1 :].partition(":")
    if colon and not _TAG_RE.fullmatch(tag):
        return _fail(
            text,
            f"tag {tag!r} breaks the tag rule: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
        )
    if not _DOMAIN_AND_PORT_RE.fullmatch(domain):
        extra = " ('_' is not allowed in a registry's name)" if "_" in domain else ""
        return _fail(
            text,
            f"registry {domain!r} is not host[:port] with a host of letters, digits, '-' and dots "
            f"or an [IPv6] address{extra}",
        )
    path = name[len(domain) + 1 : last_slash + 1] + repository
    for component in path.split("/"):
        if not component:
            return _fail(text, "the repository has an empty path component ('//' or a '/' at an end)")
        if not _PATH_COMPONENT_RE.fullmatch(component):
            return _fail(
                text,
                f"repository path component {component!r} breaks the naming rule: lower-case letters and "
                "digits, separated by one '.', one or two '_', or any number of '-', "
                "starting and ending with a letter or digit",
            )
    return _fail(text, "invalid reference format: expected [REGISTRY/]REPOSITORY[:TAG][@DIGEST]")


def _bad_character_words(text: str) -> str | None:
    bad = bad_character(text)
    return None if bad is None else f"contains {bad[1]} at column {bad[0]}"


def _check_digest(text: str, digest: str) -> None:
    """go-digest ``Digest.Validate``: a known algorithm and exactly its length of lower-case hex."""
    algorithm, _, encoded = digest.partition(":")
    size = _DIGEST_ALGORITHMS.get(algorithm)
    if size is None:
        known = ", ".join(sorted(_DIGEST_ALGORITHMS))
        raise _fail(text, f"digest algorithm {algorithm!r} is not supported (Docker knows {known})")
    if len(encoded) != size:
        raise _fail(text, f"a {algorithm} digest has {size} hex digits, this one has {len(encoded)}")
    if not _LOWER_HEX_RE.fullmatch(encoded):
        raise _fail(text, f"a {algorithm} digest is written in lower-case hex")


def _parse(text: object) -> tuple[str, str, str | None, str | None]:
    """(domain, path, tag, digest) of ``text``, as ``reference.ParseNormalizedNamed`` would give them."""
    if not isinstance(text, str):
        raise InvalidImageReference(f"an image reference must be text, got {type(text).__name__}")
    if not text:
        raise _fail(text, "repository name must have at least one component")
    if len(text) > _TEXT_LENGTH_MAX:
        # Before any regular expression: Python's backtracking engine (unlike Go's RE2) is slow on long hostile text.
        raise InvalidImageReference(
            f"image reference {quote(text, entry=_may_hold_userinfo(text), limit=80)}: {len(text)} characters is "
            f"longer than any reference Docker accepts ({_TEXT_LENGTH_MAX} at most)"
        )
    if "://" in text:
        raise _fail(text, "has a scheme; an image reference is [REGISTRY/]REPOSITORY[:TAG][@DIGEST], without one")
    if "@" in text and "/" in text.rpartition("@")[2]:  # a digest holds no '/': this '@' ends user-info
        raise _fail(
            text,
            "holds user-info ('user:password@') before the repository; give credentials to the client, "
            "not the reference",
        )
    bad = problem_character(text) if _may_hold_userinfo(text) else _bad_character_words(text)
    if bad is not None:
        raise _fail(text, f"{bad}; remove whitespace and control characters")
    if _IDENTIFIER_RE.fullmatch(text):
        raise _fail(text, "cannot be a 64-character hexadecimal string: that is an image ID, not a name")
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise _fail(text, f"repository name {remote!r} must be lowercase")
    full = f"{domain}/{remainder}"
    match = _REFERENCE_RE.fullmatch(full)
    if match is None:
        if full.lower() != full and _REFERENCE_RE.fullmatch(full.lower()):
            raise _fail(text, "repository name must be lowercase")
        raise _explain(text, full, domain)
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _ANCHORED_NAME_RE.fullmatch(name)
    if name_match is None or name_match.group(1) is None:  # pragma: no cover - the domain is always there
        raise _fail(text, "invalid reference format: expected [REGISTRY/]REPOSITORY[:TAG][@DIGEST]")
    domain, path = name_match.group(1), name_match.group(2)
    if len(path) > _NAME_TOTAL_LENGTH_MAX:
        raise _fail(text, f"repository name must not be more than {_NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        _check_digest(text, digest)
    _registry_of(text, domain)
    return domain, path, tag, digest


def _registry_of(text: str, domain: str) -> str:
    """The ``host[:port]`` a daemon contacts for ``domain``: lower-cased, IPv6 compressed, in brackets."""
    if domain == DEFAULT_DOMAIN:
        return DEFAULT_DOMAIN
    try:
        host, port = split_host_port(domain, where="registry")
    except InvalidAddress as exc:
        raise _fail(text, f"registry {domain!r} cannot be contacted: {exc}") from None
    return host if port is None else format_host_port(host, port)


@attrs.frozen(repr=False)
class ImageReference:
    """A Docker image reference, normalized: ``docker.io/library/ubuntu:22.04``.

    Build it with :meth:`parse`. ``str(ref)`` is the full normalized name and
    ``ImageReference.parse(str(ref)) == ref``; :attr:`familiar` is the short
    form Docker prints; :attr:`registry` is what the daemon contacts and what
    an :class:`~registry_config.policy.InsecurityPolicy` is asked about.
    """

    domain: str
    """The registry part as Docker keeps it (``docker.io`` for Docker Hub, case as written)."""
    path: str
    """The repository path on that registry (``library/ubuntu``)."""
    tag: str | None = None
    """The tag, or ``None``: the daemon then pulls ``latest``, unless a digest is given."""
    digest: str | None = None
    """The content digest (``sha256:...``), or ``None``."""

    def __attrs_post_init__(self) -> None:
        try:
            parsed = _parse(str(self))
        except InvalidImageReference as exc:
            raise InvalidImageReference(f"{exc}; build image references with ImageReference.parse") from None
        if parsed != (self.domain, self.path, self.tag, self.digest):
            raise InvalidImageReference(
                f"image reference {str(self)!r} is not in normalized form; "
                f"use ImageReference.parse({str(self)!r}), which gives {_text(*parsed)!r}"
            )

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Read ``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`` as the Docker daemon does; refuse what it refuses."""
        return cls(*_parse(text))

    @property
    def name(self) -> str:
        """``domain/path``, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def registry(self) -> str:
        """The ``host[:port]`` the Docker daemon contacts (``docker.io`` for Docker Hub), lower-cased."""
        return _registry_of(str(self), self.domain)

    @property
    def familiar(self) -> str:
        """The short form Docker shows: ``ubuntu``, ``user/app:1``, ``registry:5000/app``."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path
            rest = name[len(_OFFICIAL_PREFIX) :]
            if name.startswith(_OFFICIAL_PREFIX) and "/" not in rest:
                name = rest
        return _text("", name, self.tag, self.digest)

    def is_insecure_under(self, policy: InsecurityPolicy) -> bool:
        """Whether ``policy`` lets the daemon pull this image insecurely (HTTP or an unverified certificate)."""
        return policy.is_insecure(self.registry)

    def __str__(self) -> str:
        return _text(self.domain, self.path, self.tag, self.digest)

    def __repr__(self) -> str:
        return f"ImageReference.parse({str(self)!r})"


def _text(domain: str, path: str, tag: str | None, digest: str | None) -> str:
    text = f"{domain}/{path}" if domain else path
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    return text
