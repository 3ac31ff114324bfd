"""What a manifest answer means: media types, content digests, and picking a platform out of an index.

The digest is the identity a pin relies on, so it is checked, not trusted:
a ``Docker-Content-Digest`` header must be a well-formed digest, a body is
hashed over its exact bytes (never re-serialized JSON), and a reference by
digest must get back content with that digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import attrs

from ..errors import InvalidInput

__all__ = [
    "ACCEPT",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "Platform",
    "PlatformEntry",
    "compute_digest",
    "index_entries",
    "is_digest",
    "media_type_of",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
"""Media types of a multi-platform index (OCI image index, Docker manifest list)."""
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
"""Media types of a single-platform image manifest."""

ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
"""The ``Accept`` header a current Docker or containerd client sends for a manifest."""

_HASHES = {"sha256": (hashlib.sha256, 64), "sha384": (hashlib.sha384, 96), "sha512": (hashlib.sha512, 128)}
_DIGEST_RE = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)")
_PLATFORM_PART = re.compile(r"[a-z0-9][a-z0-9._-]*")


def is_digest(text: str) -> bool:
    """A digest this library can check: ``sha256:``/``sha384:``/``sha512:`` and that many lower-case hex digits."""
    match = _DIGEST_RE.fullmatch(text)
    return match is not None and len(match.group(2)) == _HASHES[match.group(1)][1]


def compute_digest(body: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` over the exact bytes of ``body``."""
    factory, _ = _HASHES[algorithm]
    return f"{algorithm}:{factory(body).hexdigest()}"


def media_type_of(content_type: str | None, body: bytes | None = None) -> str:
    """The manifest's media type: the ``Content-Type`` without parameters, else the body's ``mediaType``."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared and declared not in ("application/json", "text/plain", "application/octet-stream"):
        return declared
    if body:
        document = _json_object(body)
        value = document.get("mediaType") if document is not None else None
        if isinstance(value, str) and value:
            return value
        if document is not None and isinstance(document.get("manifests"), list):
            return OCI_INDEX  # an OCI index may omit mediaType; it is the one with "manifests"
    return declared or "application/octet-stream"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


@attrs.frozen
class Platform:
    """``os/architecture[/variant]`` as Docker's ``--platform`` writes it (``linux/amd64``, ``linux/arm/v7``)."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        if not isinstance(text, str):
            raise InvalidInput(f"platform must be text such as 'linux/amd64', got {type(text).__name__}")
        parts = text.strip().lower().split("/")
        if not 2 <= len(parts) <= 3 or not all(_PLATFORM_PART.fullmatch(part) for part in parts):
            raise InvalidInput(f"platform {text[:80]!r}: write OS/ARCHITECTURE[/VARIANT], such as linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, entry: PlatformEntry) -> bool:
        """Docker's rule: OS and architecture equal; a variant asked for must be the entry's (arm64's default v8)."""
        if entry.os != self.os or entry.architecture != self.architecture:
            return False
        if self.variant is None:
            return True
        variant = entry.variant
        if variant is None and self.architecture == "arm64":
            variant = "v8"
        return variant == self.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@attrs.frozen
class PlatformEntry:
    """One manifest listed in an index: its digest, media type and platform."""

    digest: str
    media_type: str
    os: str
    architecture: str
    variant: str | None = None

    @property
    def platform(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def index_entries(body: bytes) -> Sequence[PlatformEntry] | None:
    """The platform manifests an index lists (entries without a platform, such as attestations, left out).

    ``None`` when the body is not an index at all.
    """
    document = _json_object(body)
    if document is None or not isinstance(document.get("manifests"), list):
        return None
    entries = []
    for item in document["manifests"]:
        if not isinstance(item, dict):
            continue
        digest, platform = item.get("digest"), item.get("platform")
        if not isinstance(digest, str) or not is_digest(digest) or not isinstance(platform, dict):
            continue
        os_name, architecture = platform.get("os"), platform.get("architecture")
        if not isinstance(os_name, str) or not isinstance(architecture, str):
            continue
        variant = platform.get("variant")
        media_type = item.get("mediaType")
        entries.append(
            PlatformEntry(
                digest=digest,
                media_type=media_type if isinstance(media_type, str) else "",
                os=os_name.lower(),
                architecture=architecture.lower(),
                variant=variant.lower() if isinstance(variant, str) and variant else None,
            )
        )
    return entries
