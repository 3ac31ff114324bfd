"""Carrying the insecurity policy to the container runtimes: Docker, containerd and Podman configuration files.

A plan (anything with ``.spec`` and ``.insecure_registries``, such as
:class:`~registry_config.plan.StagingPlan`) or an
:class:`~registry_config.policy.InsecurityPolicy` (anything with
``.entries``) becomes:

- Docker's ``daemon.json`` ``insecure-registries``, merged into the file an
  operator already has without losing any of its other keys;
- one containerd ``hosts.toml`` per registry, with the directory name
  containerd looks it up under (``/etc/containerd/certs.d/<host[:port]>/``);
- a containers ``registries.conf`` (v2) with one ``[[registry]]`` per registry.

Every output is deterministic (the same input gives the same bytes) and is
what the format's own reader accepts. TOML is written through ``tomli-w``, the
``toml`` extra: ``pip install 'registry-config[toml]'``.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeAlias, TypeGuard, cast

import attrs

from .address import format_host, split_host_port
from .errors import InvalidAddress, InvalidInput, RegistryConfigError
from .spec import RegistrySpec, SecurityMode

__all__ = [
    "CONTAINERD_CERTS_D",
    "ContainerdHostsFile",
    "containerd_host_directory",
    "render_containerd_hosts",
    "render_daemon_json",
    "render_registries_conf",
]

CONTAINERD_CERTS_D = "/etc/containerd/certs.d"
"""Where containerd's CRI plugin and ``ctr --hosts-dir`` are usually told to look (``config_path``)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
# dockerd checks every non-CIDR insecure-registries entry against the reference library's domain grammar
# (moby registry.validateHostPort): labels of letters, digits and inner hyphens, no underscore.
_DOCKERD_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")

log = logging.getLogger("registry_config.render")
_CAPABILITIES = ("pull", "resolve")
_INSTALL_HINT = "pip install 'registry-config[toml]' (or pip install tomli-w)"


class PlanLike(Protocol):
    """What the renderers need of a plan: the registry spec and the insecure ``host:port`` entries."""

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
class _Registry:
    """One registry to configure: its host, its port if one is written, and how to reach it."""

    host: str
    port: int | None
    security: SecurityMode

    @property
    def key(self) -> str:
        return containerd_host_directory(self.host, self.port, scheme=self.security.scheme)


@attrs.frozen
class ContainerdHostsFile:
    """One containerd ``hosts.toml`` and the host-namespace directory it belongs in."""

    directory: str
    """The registry host namespace: ``host:port`` (``[v6]:port``), or ``host`` for the scheme's default port."""
    content: str
    """The TOML text."""

    def path(self, root: str = CONTAINERD_CERTS_D) -> str:
        """Where containerd reads it: ``<root>/<directory>/hosts.toml``."""
        return posixpath.join(root, self.directory, "hosts.toml")


def containerd_host_directory(host: str, port: int | None, *, scheme: str = "https") -> str:
    """The host-namespace directory containerd looks a registry up under.

    containerd takes the registry host exactly as the image reference writes
    it (``registry.example:5000/app``) and looks for ``host_port_``, then
    ``host:port``, then ``_default`` under its ``config_path``. A registry
    on its scheme's default port (443 for https, 80 for http) is written
    without a port in image references (``registry.example/app``), so its
    directory is the bare host; an IPv6 host keeps its brackets, as the
    reference grammar requires (``[fd00::1]:5000``).
    """
    shown = format_host(host)
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return shown
    return f"{shown}:{port}"


def _is_plan(source: object) -> TypeGuard[PlanLike]:
    return hasattr(source, "spec") and hasattr(source, "insecure_registries")


def _check_source(source: object) -> None:
    if not _is_plan(source) and not hasattr(source, "entries"):
        raise InvalidInput(
            f"cannot render from a {type(source).__name__}: give a plan (with .spec and .insecure_registries, "
            "from build_plan) or an InsecurityPolicy (with .entries)"
        )


def _split(entry: str, *, where: str) -> tuple[str, int | None]:
    try:
        return split_host_port(entry, where=where)
    except InvalidAddress as exc:
        raise InvalidInput(str(exc)) from None


def _registries(source: Source, security: SecurityMode | None) -> tuple[list[_Registry], list[str]]:
    """The registries to configure, deduplicated in first-seen order, and the networks left out."""
    _check_source(source)
    found: list[_Registry] = []
    networks: list[str] = []
    if _is_plan(source):
        spec = source.spec
        own = security or spec.security
        found.append(_Registry(spec.host, spec.port, own))
        # Extra entries of a verified registry's plan are insecure: read them as Docker does, HTTPS unverified.
        others = own if own.is_insecure else SecurityMode.HTTPS_UNVERIFIED
        entries: Iterable[str] = source.insecure_registries
    else:
        others = security or SecurityMode.HTTPS_UNVERIFIED
        entries = cast(PolicyLike, source).entries
    for index, entry in enumerate(entries):
        if "/" in entry:
            networks.append(entry)
            continue
        host, port = _split(entry, where=f"insecure registry #{index}")
        found.append(_Registry(host, port, others))
    unique: dict[str, _Registry] = {}
    for registry in found:
        unique.setdefault(registry.key, registry)
    return list(unique.values()), networks


def _tomli_w() -> Any:
    try:
        import tomli_w
    except ImportError as exc:
        raise RegistryConfigError(f"writing TOML (hosts.toml, registries.conf) needs tomli-w: {_INSTALL_HINT}") from exc
    return tomli_w


def _dump_toml(data: Mapping[str, Any], header: Iterable[str]) -> str:
    comments = "".join(f"# {line}\n" for line in header)
    text: str = _tomli_w().dumps(data)
    return comments + ("\n" if comments else "") + text


def _origin(source: Source) -> str:
    if _is_plan(source):
        return f"the plan for {source.spec.url}"
    return "an insecurity policy"


def render_containerd_hosts(
    source: Source, *, security: SecurityMode | None = None, ca: str | None = None
) -> tuple[ContainerdHostsFile, ...]:
    """One ``hosts.toml`` per registry, each with the directory containerd finds it in.

    From a plan: the registry itself, reached the way its spec says (or as
    ``security`` overrides), then every insecure ``host:port`` (the
    instances) the same way. From a policy: every ``host[:port]`` entry,
    reached as ``security`` says, by default HTTPS without verification
    (Docker's first try for an insecure registry); CIDR entries have no
    containerd equivalent and are left out. ``ca`` is a CA file path written
    into every HTTPS host (ignored for plain HTTP, which has no certificate).
    """
    if ca is not None and (not isinstance(ca, str) or not ca or "\n" in ca):
        raise InvalidInput(f"containerd ca {ca!r}: give the path of a PEM file")
    registries, _networks = _registries(source, security)
    files = []
    for registry in registries:
        scheme = registry.security.scheme
        url = f"{scheme}://{registry.key}"
        host: dict[str, Any] = {"capabilities": list(_CAPABILITIES)}
        if registry.security is SecurityMode.HTTPS_UNVERIFIED:
            host["skip_verify"] = True
        if ca is not None and scheme == "https":
            host["ca"] = ca
        header = [
            f"Generated by registry-config from {_origin(source)}.",
            f"Registry {registry.key} ({registry.security}): containerd reads this file as",
            posixpath.join(CONTAINERD_CERTS_D, registry.key, "hosts.toml"),
        ]
        content = _dump_toml({"server": url, "host": {url: host}}, header)
        files.append(ContainerdHostsFile(registry.key, content))
    return tuple(files)


def render_registries_conf(source: Source, *, security: SecurityMode | None = None) -> str:
    """A containers ``registries.conf`` (v2) with one ``[[registry]]`` per registry, ``insecure`` as needed.

    ``location`` is the registry as image references name it (the scheme's
    default port left out, which is how Podman matches it). Suitable for
    ``/etc/containers/registries.conf.d/``. CIDR entries of a policy have no
    equivalent and are named in a comment.
    """
    registries, networks = _registries(source, security)
    header = [f"Generated by registry-config from {_origin(source)}.", "containers-registries.conf(5), version 2."]
    if networks:
        header.append(
            f"Left out (registries.conf has no networks): {', '.join(networks)}; list their registries by host:port."
        )
    tomli_w = _tomli_w()
    # tomli-w writes short arrays of tables inline; registries.conf is read by people too, so each
    # [[registry]] gets its own header, with its keys still written (and escaped) by tomli-w.
    tables = "".join(
        "\n[[registry]]\n" + tomli_w.dumps({"location": registry.key, "insecure": registry.security.is_insecure})
        for registry in registries
    )
    return "".join(f"# {line}\n" for line in header) + tables


def _entry_key(entry: str) -> str:
    """How Docker compares two ``insecure-registries`` entries: normalized ``host[:port]``, or the text."""
    if "/" in entry:
        return entry.strip().lower()
    try:
        host, port = split_host_port(entry.strip())
    except InvalidAddress:
        return entry
    return format_host(host) if port is None else f"{format_host(host)}:{port}"


def _existing_object(existing: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    if existing is None:
        return {}
    if isinstance(existing, Mapping):
        return dict(existing)
    if isinstance(existing, bytes):
        try:
            existing = existing.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"existing daemon.json is not UTF-8 text (byte {exc.start}); fix the file first"
            ) from None
    if not isinstance(existing, str):
        raise InvalidInput(f"existing daemon.json must be text or a mapping, got {type(existing).__name__}")
    if not existing.strip():
        return {}
    try:
        loaded = json.loads(existing)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"existing daemon.json is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it first: the Docker daemon would refuse to start with it"
        ) from None
    if not isinstance(loaded, dict):
        raise InvalidInput(
            f"existing daemon.json holds a JSON {type(loaded).__name__}, not an object; the Docker daemon "
            'expects an object such as {"insecure-registries": [...]}'
        )
    return loaded


def _dockerd_accepts(entry: str) -> bool:
    """Whether dockerd's ``validateHostPort`` accepts ``entry`` (a CIDR or an IP always passes)."""
    if "/" in entry:
        return True
    host, _ = split_host_port(entry, where="insecure registry")
    if ":" in host or host.replace(".", "").isdigit():
        return True
    return all(_DOCKERD_LABEL.match(label) for label in host.split("."))


def render_daemon_json(source: Source, *, existing: str | bytes | Mapping[str, Any] | None = None) -> str:
    """Docker's ``daemon.json`` with the insecure registries merged into ``existing`` (its text or its object).

    Every other key of ``existing`` is kept, in its order; entries already
    listed stay first and in place, new ones follow, none twice. From a plan
    the entries are its ``insecure_registries``; from a policy, its entries
    (CIDRs included: Docker understands them).

    A new entry whose host name dockerd would refuse (a label with ``_``,
    as in ``docker_registry.service.consul``) is left out with a logged
    warning: dockerd refuses to start on such a file, and Docker cannot name
    an image on that host anyway, so the instances' IP entries are what counts.
    """
    _check_source(source)
    data = _existing_object(existing)
    current = data.get("insecure-registries", [])
    if not isinstance(current, list) or not all(isinstance(item, str) for item in current):
        raise InvalidInput(
            "existing daemon.json: 'insecure-registries' must be a list of strings such as ['10.0.0.5:5000']"
        )
    new = source.insecure_registries if _is_plan(source) else cast(PolicyLike, source).entries
    merged: dict[str, str] = {}
    for entry in current:
        merged.setdefault(_entry_key(entry), entry)
    for entry in new:
        if not _dockerd_accepts(entry):
            log.warning("daemon.json: left out %r: dockerd refuses host names with '_' in insecure-registries", entry)
            continue
        merged.setdefault(_entry_key(entry), entry)
    data["insecure-registries"] = list(merged.values())
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
