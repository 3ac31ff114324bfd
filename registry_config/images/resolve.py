"""Pinning an image: the digest a tag points to, asked of the registry's instances as a pull would ask them.

The seed's first aim is that scaling an application up fetches *the same
layers*. A tag can move between two pulls; a digest cannot. So a stager
resolves ``app:1.2`` once, through the plan's instances in the plan's
security mode, and stages ``host:port/app@sha256:...``. With
``all_instances=True`` it asks every instance and refuses to pin when they
disagree (or some lack the tag): exactly the case where a scale-up served by
another replica would fetch other layers.
"""

from __future__ import annotations

import math
import os
import ssl
import types
import warnings
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

import attrs

from .._reduce import by_fields
from ..address import format_host, format_host_port
from ..credentials import Credentials
from ..errors import (
    ImageNotFoundError,
    InvalidImageReference,
    InvalidInput,
    ProbeError,
    RegistryConfigWarning,
    ReplicaMismatchError,
)
from ..reference import ImageReference
from ..spec import RegistrySpec, SecurityMode
from .distribution import DistributionClient, ManifestAnswer, TokenCache
from .manifest import INDEX_TYPES, Platform, index_entries

__all__ = ["ResolvedImage", "check_login", "resolve_image"]

DEFAULT_TAG = "latest"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _digests(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen
class ResolvedImage:
    """An image reference pinned to a content digest, and which instances said so.

    ``digest`` (``sha256:...``) and ``media_type`` are those of the index, or
    of the platform's manifest when a platform was asked for; ``reference``
    is the :class:`~registry_config.reference.ImageReference` pinned by
    digest; ``pinned`` is its text, named by the registry URL's own
    ``host:port``; ``instance`` is the ``ip:port`` (or ``host:port``) that
    answered; ``digests`` maps every instance asked to the digest it served.
    """

    digest: str
    media_type: str
    reference: ImageReference
    pinned: str
    instance: str
    digests: Mapping[str, str] = attrs.field(converter=_digests, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "pinned": self.pinned,
            "digest": self.digest,
            "media_type": self.media_type,
            "reference": str(self.reference),
            "instance": self.instance,
            "digests": dict(self.digests),
        }

    def __str__(self) -> str:
        return self.pinned

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied by its fields (``digests`` as a dict), rebuilt by the constructor."""
        return by_fields(self)


class _InstanceLike(Protocol):
    @property
    def endpoint(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def address(self) -> Any: ...


class _PlanLike(Protocol):
    @property
    def spec(self) -> RegistrySpec: ...

    @property
    def instances(self) -> tuple[_InstanceLike, ...]: ...


ResolveSource: TypeAlias = "_PlanLike | RegistrySpec | str"


@attrs.frozen
class _Target:
    """One instance to ask: how it is named, and how to connect to it."""

    label: str
    base_url: str
    connect_to: str | None


def _source(source: object) -> tuple[RegistrySpec, tuple[_InstanceLike, ...] | None]:
    if isinstance(source, str):
        return RegistrySpec.from_url(source), None
    if isinstance(source, RegistrySpec):
        return source, None
    spec = getattr(source, "spec", None)
    instances = getattr(source, "instances", None)
    if isinstance(spec, RegistrySpec) and instances is not None:
        return spec, tuple(instances)
    raise InvalidInput(
        f"cannot resolve through a {type(source).__name__}: give a plan (from build_plan), a RegistrySpec or a "
        "registry URL"
    )


def _targets(spec: RegistrySpec, instances: tuple[_InstanceLike, ...] | None) -> tuple[_Target, ...]:
    if instances is None:
        return (_Target(spec.address, spec.url, None),)
    if not instances:
        raise ProbeError(f"the plan for {spec.url} has no instance to ask; discovery found none that the guard kept")
    targets = []
    for instance in instances:
        ip = str(instance.address)
        if spec.security is SecurityMode.HTTPS_VERIFIED:
            # Connect to the instance, check its certificate for the registry's name: as a pull of host:port does.
            base = f"https://{format_host_port(spec.host, instance.port)}"
            targets.append(_Target(instance.endpoint, base, ip))
        else:
            targets.append(_Target(instance.endpoint, f"{spec.scheme}://{instance.endpoint}", None))
    return tuple(dict.fromkeys(targets))


def _names_of(spec: RegistrySpec, instances: tuple[_InstanceLike, ...] | None) -> set[str]:
    names = {spec.address}
    if spec.port == _DEFAULT_PORTS[spec.scheme]:
        names.add(format_host(spec.host))
    names.update(instance.endpoint for instance in instances or ())
    return names


def _writes_domain(text: str) -> bool:
    """Whether ``text`` names a registry: Docker's rule for the first path component (normalize.go)."""
    first, slash, _ = text.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost" or first.lower() != first)


def _reference(reference: object, spec: RegistrySpec, instances: tuple[_InstanceLike, ...] | None) -> tuple[str, str]:
    """(repository path, tag or digest) of ``reference``, refusing one that names another registry."""
    if isinstance(reference, ImageReference):
        parsed, domain = reference, reference.registry
    elif isinstance(reference, str):
        if _writes_domain(reference):
            parsed = ImageReference.parse(reference)
            domain = parsed.registry
        else:
            # No registry written: the repository is on this one (not Docker Hub's library/ namespace).
            try:
                parsed = ImageReference.parse(f"localhost/{reference}")
            except InvalidImageReference as exc:
                raise InvalidImageReference(str(exc).replace("'localhost/", "'", 1)) from None
            domain = None
    else:
        raise InvalidImageReference(f"an image reference must be text or an ImageReference, got {type(reference)}")
    if domain is not None and domain not in _names_of(spec, instances):
        raise InvalidImageReference(
            f"image reference {str(parsed)!r} names the registry {domain!r}, not {spec.address!r}; "
            "give the reference without a registry (repo:tag) or with this registry's host:port"
        )
    return parsed.path, parsed.digest or parsed.tag or DEFAULT_TAG


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise InvalidInput(f"timeout {timeout!r}: give a positive number of seconds")
    return float(timeout)


def _check_ca_bundle(ca_bundle: str | os.PathLike[str] | None) -> str | None:
    if ca_bundle is None:
        return None
    path = os.fspath(ca_bundle)
    if not os.path.exists(path):
        raise InvalidInput(f"CA bundle {path!r} does not exist; give the PEM file (or directory) of the registry's CA")
    try:
        if os.path.isdir(path):
            ssl.create_default_context(capath=path)
        else:
            ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise InvalidInput(f"CA bundle {path!r} cannot be loaded ({exc}); give a PEM file of CA certificates") from None
    return path


def _pinned(spec: RegistrySpec, path: str, digest: str, instance: str) -> tuple[ImageReference, str]:
    pinned = f"{spec.address}/{path}@{digest}"
    try:
        return ImageReference.parse(pinned), pinned
    except InvalidImageReference:
        # A Consul name with '_' is no Docker reference: the pin names the instance that answered instead.
        fallback = ImageReference.parse(f"{instance}/{path}@{digest}")
        warnings.warn(
            f"{spec.host!r} cannot be written in an image reference (Docker refuses '_' in a registry name); "
            f"pinned as {str(fallback)!r}, by the instance that answered",
            RegistryConfigWarning,
            stacklevel=3,
        )
        return fallback, str(fallback)


def _select_platform(
    client: DistributionClient, path: str, answer: ManifestAnswer, wanted: Platform, reference: str
) -> ManifestAnswer:
    if answer.media_type not in INDEX_TYPES and answer.body is None:
        warnings.warn(
            f"platform {str(wanted)!r} has no effect: {path}:{reference} is a single manifest "
            f"({answer.media_type}), not an index",
            RegistryConfigWarning,
            stacklevel=4,
        )
        return answer
    full = answer if answer.body is not None else client.manifest(path, answer.digest, want_body=True)
    entries = index_entries(full.body or b"")
    if entries is None:
        warnings.warn(
            f"platform {str(wanted)!r} has no effect: {path}:{reference} is a single manifest, not an index",
            RegistryConfigWarning,
            stacklevel=4,
        )
        return full
    for entry in entries:
        if wanted.matches(entry):
            return ManifestAnswer(entry.digest, entry.media_type or answer.media_type)
    offered = ", ".join(sorted({entry.platform for entry in entries})) or "none"
    raise ImageNotFoundError(
        f"{client.where}: {path}:{reference} has no manifest for platform {str(wanted)!r} (the index offers: {offered})"
    )


def _client(
    target: _Target,
    *,
    spec: RegistrySpec,
    credentials: Credentials | None,
    timeout: float,
    ca_bundle: str | None,
    tokens: TokenCache,
) -> DistributionClient:
    verify: bool | str = False
    if spec.security is SecurityMode.HTTPS_VERIFIED:
        verify = ca_bundle if ca_bundle is not None else True
    return DistributionClient(
        target.base_url,
        where=target.label if target.label != spec.address else spec.url,
        verify=verify,
        connect_to=target.connect_to,
        credentials=credentials,
        timeout=timeout,
        ca_bundle=ca_bundle,
        registry_scheme=spec.scheme,
        registry_address=spec.address,
        tokens=tokens,
    )


def _ask(
    target: _Target,
    *,
    spec: RegistrySpec,
    path: str,
    reference: str,
    platform: Platform | None,
    credentials: Credentials | None,
    timeout: float,
    ca_bundle: str | None,
    tokens: TokenCache,
) -> ManifestAnswer:
    with _client(
        target, spec=spec, credentials=credentials, timeout=timeout, ca_bundle=ca_bundle, tokens=tokens
    ) as client:
        answer = client.manifest(path, reference)
        if platform is not None:
            answer = _select_platform(client, path, answer, platform, reference)
        return answer


def resolve_image(
    source: ResolveSource,
    reference: str | ImageReference,
    *,
    credentials: Credentials | None = None,
    all_instances: bool = False,
    platform: str | None = None,
    timeout: float = 10.0,
    ca_bundle: str | os.PathLike[str] | None = None,
) -> ResolvedImage:
    """Ask the registry which digest ``reference`` points to, and pin it.

    ``source`` is a :class:`~registry_config.plan.StagingPlan` (its instances
    are asked, in its security mode; in the verified flavour each instance's
    certificate is checked for the registry's name), a
    :class:`~registry_config.spec.RegistrySpec` or a registry URL (the URL's
    own address is asked). ``reference`` is ``repo[:tag]``, ``repo@digest``
    (checked to exist), or a reference naming this registry; no tag means
    ``latest``.

    Without ``all_instances`` the instances are asked in order until one
    answers (an unreachable one is skipped); with it every instance is asked,
    and :class:`~registry_config.errors.ReplicaMismatchError` names those
    that disagree or lack the image. For an index (a multi-platform image)
    the index's digest is pinned, or, with ``platform="linux/amd64"``, that
    platform's manifest. ``timeout`` bounds each request; ``ca_bundle`` is a
    PEM file (or directory) of CAs to trust instead of the system's.

    Raises :class:`~registry_config.errors.ImageNotFoundError` (repository,
    tag, digest or platform unknown), :class:`~registry_config.errors.RegistryAuthError`
    (a login is needed, or was refused), :class:`~registry_config.errors.ProbeError`
    (unreachable, TLS failure, rate-limited, not a registry),
    :class:`~registry_config.errors.InvalidImageReference` and
    :class:`~registry_config.errors.InvalidInput` for bad arguments.
    """
    spec, instances = _source(source)
    path, ref = _reference(reference, spec, instances)
    if credentials is not None and not isinstance(credentials, Credentials):
        raise InvalidInput(f"credentials must be a Credentials, got {type(credentials).__name__}")
    wanted = Platform.parse(platform) if platform is not None else None
    seconds = _check_timeout(timeout)
    bundle = _check_ca_bundle(ca_bundle)
    targets = _targets(spec, instances)
    tokens: TokenCache = {}

    def ask(target: _Target) -> ManifestAnswer:
        return _ask(
            target,
            spec=spec,
            path=path,
            reference=ref,
            platform=wanted,
            credentials=credentials,
            timeout=seconds,
            ca_bundle=bundle,
            tokens=tokens,
        )

    shown = f"{path}@{ref}" if ":" in ref else f"{path}:{ref}"
    if not all_instances:
        failures: list[str] = []
        for target in targets:
            try:
                answer = ask(target)
            except ProbeError as exc:
                failures.append(str(exc))
                continue
            pinned_reference, pinned = _pinned(spec, path, answer.digest, target.label)
            return ResolvedImage(
                answer.digest, answer.media_type, pinned_reference, pinned, target.label, {target.label: answer.digest}
            )
        if len(failures) == 1:
            raise ProbeError(failures[0])
        raise ProbeError(
            f"no instance of {spec.url} answered for {shown}: "
            + "; ".join(failures[:8])
            + ("; ..." if len(failures) > 8 else "")
        )

    answers: dict[str, ManifestAnswer | None] = {}
    missing: list[ImageNotFoundError] = []
    for target in targets:
        try:
            answers[target.label] = ask(target)
        except ImageNotFoundError as exc:
            answers[target.label] = None
            missing.append(exc)
    found = {label: answer for label, answer in answers.items() if answer is not None}
    if not found:
        # Every instance lacks it: the image is not there, which no replica disagreement explains.
        raise missing[0]
    digests = {label: (answer.digest if answer is not None else None) for label, answer in answers.items()}
    distinct = {digest for digest in digests.values() if digest is not None}
    if len(distinct) > 1 or None in digests.values():
        lacking = sorted(label for label, digest in digests.items() if digest is None)
        groups: dict[str, list[str]] = {}
        for label, digest in digests.items():
            if digest is not None:
                groups.setdefault(digest, []).append(label)
        parts = [f"{digest} on {', '.join(labels)}" for digest, labels in groups.items()]
        if lacking:
            parts.append(f"missing on {', '.join(lacking)}")
        raise ReplicaMismatchError(
            f"the instances of {spec.url} disagree on {shown}: "
            + "; ".join(parts)
            + ": a scale-up could fetch other layers; sync the replicas (push the image to each) before pinning",
            digests=digests,
        )
    first_label, first = next(iter(found.items()))
    pinned_reference, pinned = _pinned(spec, path, first.digest, first_label)
    return ResolvedImage(
        first.digest,
        first.media_type,
        pinned_reference,
        pinned,
        first_label,
        {label: answer.digest for label, answer in found.items()},
    )


def check_login(
    source: ResolveSource,
    credentials: Credentials | None = None,
    *,
    timeout: float = 10.0,
    ca_bundle: str | os.PathLike[str] | None = None,
) -> str:
    """Check that the registry lets ``credentials`` in (``GET /v2/`` with the login flow); return who answered.

    The same instances, security mode and login flow as
    :func:`resolve_image`, without an image: what a probe asks to tell a
    wrong password from a wrong image. Returns the instance (``ip:port`` or
    ``host:port``) that accepted the login; raises
    :class:`~registry_config.errors.RegistryAuthError` when the login is
    missing or refused, :class:`~registry_config.errors.ProbeError` when no
    instance can be asked.
    """
    spec, instances = _source(source)
    if credentials is not None and not isinstance(credentials, Credentials):
        raise InvalidInput(f"credentials must be a Credentials, got {type(credentials).__name__}")
    seconds = _check_timeout(timeout)
    bundle = _check_ca_bundle(ca_bundle)
    tokens: TokenCache = {}
    failures: list[str] = []
    for target in _targets(spec, instances):
        try:
            with _client(
                target, spec=spec, credentials=credentials, timeout=seconds, ca_bundle=bundle, tokens=tokens
            ) as client:
                client.check_login()
        except ProbeError as exc:
            failures.append(str(exc))
            continue
        return target.label
    raise ProbeError("; ".join(failures[:8]))
