"""What every renderer configures: the registries of a plan or a policy, each in its flavour, by every name.

The three runtimes read different files, but they must agree on the same
registries. This module works out, once, which registries those are and how
each is reached:

- a plan's own registry (its URL's ``host:port``) and, when it is insecure,
  its instances, all in the plan's flavour (:class:`~registry_config.spec.SecurityMode`);
- every other entry of the plan's ``insecure_registries`` (the operator's
  extras) in an *unknown* flavour: Docker tries HTTPS without verification,
  then plain HTTP, and the other runtimes are told to do the same;
- a policy's ``host[:port]`` entries in the flavour asked for (unknown by
  default); its networks have no equivalent outside Docker.

Docker, containerd and containers match a registry to the image name exactly
as the name writes it: ``host/app`` is ``host``, ``host:443/app`` is
``host:443``. So a registry on its scheme's default port is configured under
both names (:meth:`Target.names`).
"""

from __future__ import annotations

import posixpath
import warnings
from collections.abc import Iterable
from typing import Any, Protocol, TypeAlias, TypeGuard

import attrs

from ..address import format_host, split_host_port
from ..errors import InvalidAddress, InvalidInput, RegistryConfigError, RegistryConfigWarning
from ..spec import RegistrySpec, SecurityMode

__all__ = [
    "DEFAULT_PORTS",
    "PlanLike",
    "PolicyLike",
    "Source",
    "Target",
    "check_ca_path",
    "check_source",
    "is_plan",
    "origin",
    "targets",
    "tomli_w",
    "upstreams",
    "warn",
]

DEFAULT_PORTS = {"http": 80, "https": 443}
_INSTALL_HINT = "pip install 'registry-config[toml]' (or pip install tomli-w)"


class PlanLike(Protocol):
    """What the renderers need of a plan: the registry spec and the insecure ``host:port`` entries.

    A plan that also has ``instances`` (as :class:`~registry_config.plan.StagingPlan`
    does) lets the renderers tell its own instances from the extra entries.
    """

    @property
    def spec(self) -> RegistrySpec: ...

    @property
    def insecure_registries(self) -> tuple[str, ...]: ...


class PolicyLike(Protocol):
    """What the renderers need of an insecurity policy: its normalized entries (``host[:port]`` or CIDR)."""

    @property
    def entries(self) -> tuple[str, ...]: ...


Source: TypeAlias = "PlanLike | PolicyLike"


@attrs.frozen
class Target:
    """One registry to configure: its host, its port if one is written, and how it is reached.

    ``security`` is ``None`` when the flavour is unknown (an operator's extra
    insecure entry): HTTPS without verification first, then plain HTTP, as
    Docker does for any insecure registry. ``own`` says whether it is the
    plan's registry or one of its instances (a CA given for the plan applies
    to those only).
    """

    host: str
    port: int | None
    security: SecurityMode | None
    own: bool = True

    @property
    def schemes(self) -> tuple[str, ...]:
        """The schemes to try, in order."""
        return ("https", "http") if self.security is None else (self.security.scheme,)

    @property
    def insecure(self) -> bool:
        return self.security is None or self.security.is_insecure

    @property
    def key(self) -> str:
        """The name as written: ``host:port`` (``[v6]:port``), or ``host`` when no port was given."""
        shown = format_host(self.host)
        return shown if self.port is None else f"{shown}:{self.port}"

    def names(self) -> tuple[str, ...]:
        """Every name an image reference may give this registry: ``host:port``, and ``host`` on a default port.

        ``registry.example:443`` in the https flavour is also
        ``registry.example``, the name ``docker pull registry.example/app``
        uses; an unknown flavour is named only as written (its default port
        depends on which scheme answers).
        """
        if self.port is None:
            return (self.key,)
        if self.security is not None and self.port == DEFAULT_PORTS[self.security.scheme]:
            return (self.key, format_host(self.host))
        return (self.key,)

    def has_underscore(self) -> bool:
        """Whether Docker and the containers library refuse this host (``invalid reference format``)."""
        return "_" in self.host


def is_plan(source: object) -> TypeGuard[PlanLike]:
    return hasattr(source, "spec") and hasattr(source, "insecure_registries")


def check_source(source: object) -> None:
    if not is_plan(source) and not hasattr(source, "entries"):
        raise InvalidInput(
            f"cannot render from a {type(source).__name__}: give a plan (with .spec and .insecure_registries, "
            "from build_plan) or an InsecurityPolicy (with .entries)"
        )


def origin(source: Source) -> str:
    if is_plan(source):
        return f"the plan for {source.spec.url}"
    return "an insecurity policy"


def _split(entry: str, *, where: str) -> tuple[str, int | None]:
    try:
        return split_host_port(entry, where=where)
    except InvalidAddress as exc:
        raise InvalidInput(str(exc)) from None


def _key(host: str, port: int | None) -> str:
    return Target(host, port, None).key


def targets(source: Source, security: SecurityMode | None = None) -> tuple[list[Target], list[str]]:
    """The registries to configure, deduplicated in first-seen order, and the networks left out.

    From a plan: its registry, then (when it is insecure) every instance,
    in the plan's flavour (or ``security``); then the extra entries, flavour
    unknown. A plan without ``instances`` cannot tell its instances from
    extras: an insecure one renders every entry in its own flavour, a
    verified one every entry as unknown. From a policy: every ``host[:port]``
    entry in ``security`` (unknown when ``None``).
    """
    check_source(source)
    found: list[Target] = []
    networks: list[str] = []
    if is_plan(source):
        spec = source.spec
        own = security or spec.security
        found.append(Target(spec.host, spec.port, own))
        own_keys = {_key(spec.host, spec.port)}
        instances = getattr(source, "instances", None)
        if own.is_insecure and instances is not None:
            for instance in instances:
                own_keys.add(_key(str(instance.address), instance.port))
        elif own.is_insecure:
            own_keys = {_key(*_split(entry, where="insecure registry")) for entry in source.insecure_registries}
        for index, entry in enumerate(source.insecure_registries):
            host, port = _split(entry, where=f"insecure registry #{index}")
            mine = _key(host, port) in own_keys
            found.append(Target(host, port, own if mine else None, own=mine))
    else:
        entries: Iterable[str] = source.entries  # type: ignore[union-attr]
        for index, entry in enumerate(entries):
            if "/" in entry:
                networks.append(entry)
                continue
            host, port = _split(entry, where=f"insecure registry #{index}")
            found.append(Target(host, port, security))
    unique: dict[str, Target] = {}
    for target in found:
        unique.setdefault(target.key, target)
    return list(unique.values()), networks


def upstreams(mirror_of: Iterable[str]) -> tuple[str, ...]:
    """The upstream registries to mirror, checked: ``host[:port]`` names such as ``docker.io``."""
    if isinstance(mirror_of, str):
        mirror_of = (mirror_of,)
    checked: list[str] = []
    for index, upstream in enumerate(mirror_of):
        if not isinstance(upstream, str):
            raise InvalidInput(f"mirror_of[{index}] is a {type(upstream).__name__}: give a registry name (docker.io)")
        host, port = _split(upstream, where=f"mirror_of[{index}]")
        name = _key(host.lower(), port)
        # Docker Hub has several names; the runtimes know it as docker.io.
        if name in ("index.docker.io", "registry-1.docker.io"):
            name = "docker.io"
        checked.append(name)
    return tuple(dict.fromkeys(checked))


def check_ca_path(ca: object) -> str | None:
    """``ca`` if it is an absolute path a runtime can read from anywhere; ``None`` stays ``None``."""
    if ca is None:
        return None
    if not isinstance(ca, str) or not ca or any(c in ca for c in "\n\r\0"):
        raise InvalidInput(f"CA path {ca!r}: give the absolute path of a PEM file")
    if not posixpath.isabs(ca):
        raise InvalidInput(
            f"CA path {ca!r} is relative: containerd would read it relative to the host's directory, not yours; "
            "give the absolute path where the CA file is installed (registry-config render --output-dir copies it "
            "there for you)"
        )
    return ca


def warn(message: str, *, stacklevel: int = 3) -> None:
    """Tell the user about their input or output: a :class:`RegistryConfigWarning`."""
    warnings.warn(message, RegistryConfigWarning, stacklevel=stacklevel + 1)


def tomli_w() -> Any:
    try:
        import tomli_w
    except ImportError as exc:
        raise RegistryConfigError(f"writing TOML (hosts.toml, registries.conf) needs tomli-w: {_INSTALL_HINT}") from exc
    return tomli_w
