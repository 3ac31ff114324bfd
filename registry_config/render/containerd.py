"""containerd's ``hosts.toml``: one file per registry name, in the directory containerd looks it up under.

containerd (``config_path`` of the CRI plugin, or ``ctr --hosts-dir``) takes
the registry host exactly as the image reference writes it and reads
``<config_path>/<host[:port]>/hosts.toml``. It uses the scheme of each host
URL as written, never falling back from HTTPS to HTTP by itself, so Docker's
fallback for an insecure registry of unknown flavour is written out: an
``https`` host with ``skip_verify``, then an ``http`` one. It reads a relative
``ca`` path relative to that host's directory, so CA paths are absolute.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

import attrs

from ..address import format_host
from ..spec import SecurityMode
from .model import DEFAULT_PORTS, Source, Target, check_ca_path, origin, targets, tomli_w, upstreams

__all__ = [
    "CONTAINERD_CERTS_D",
    "ContainerdHostsFile",
    "containerd_host_directory",
    "render_containerd_hosts",
]

CONTAINERD_CERTS_D = "/etc/containerd/certs.d"
"""Where containerd's CRI plugin and ``ctr --hosts-dir`` are usually told to look (``config_path``)."""

_CAPABILITIES = ("pull", "resolve")
_UPSTREAM_SERVERS = {"docker.io": "https://registry-1.docker.io"}


@attrs.frozen
class ContainerdHostsFile:
    """One containerd ``hosts.toml`` and the host-namespace directory it belongs in."""

    directory: str
    """The registry host namespace as image references write it: ``host:port`` (``[v6]:port``), or ``host``."""
    content: str
    """The TOML text."""

    def path(self, root: str = CONTAINERD_CERTS_D) -> str:
        """Where containerd reads it: ``<root>/<directory>/hosts.toml``."""
        return posixpath.join(root, self.directory, "hosts.toml")


def containerd_host_directory(host: str, port: int | None, *, scheme: str = "https") -> str:
    """The host-namespace directory containerd looks a registry up under, for its shortest name.

    A registry on its scheme's default port (443 for https, 80 for http) is
    usually written without a port in image references
    (``registry.example/app``), so this is the bare host; the renderers also
    write ``host:443`` (``host:80``) for references that spell the port. An
    IPv6 host keeps its brackets, as the reference grammar requires.
    """
    shown = format_host(host)
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return shown
    return f"{shown}:{port}"


def _host_entries(target: Target, name: str, ca: str | None) -> list[tuple[str, dict[str, Any]]]:
    """``(url, settings)`` for each way to reach ``target`` under ``name``, in the order to try them."""
    entries = []
    for scheme in target.schemes:
        settings: dict[str, Any] = {"capabilities": list(_CAPABILITIES)}
        if scheme == "https" and target.security is not SecurityMode.HTTPS_VERIFIED:
            settings["skip_verify"] = True
        if scheme == "https" and ca is not None and target.own:
            settings["ca"] = ca
        entries.append((f"{scheme}://{name}", settings))
    return entries


def _toml_value(value: Any) -> str:
    """``value`` as TOML on one line (a string, a boolean or a list of strings), escaped by tomli-w."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    line: str = tomli_w().dumps({"v": value})
    return line.partition(" = ")[2].rstrip("\n")


def _file(server: str, hosts: Iterable[tuple[str, dict[str, Any]]], header: list[str]) -> str:
    """The file, each host an inline table under ``[host]``.

    containerd 1.6 parses TOML with go-toml v1, which cuts a table header at
    its first ``]``: ``[host."http://[fd00::1]:5000"]`` (an IPv6 registry) is
    a syntax error there, while a quoted key inside ``[host]`` is read right.
    """
    lines = [*(f"# {line}" for line in header), "", f"server = {_toml_value(server)}", "", "[host]"]
    for url, settings in hosts:
        key = tomli_w().dumps({url: True}).rpartition(" = ")[0]
        fields = ", ".join(f"{name} = {_toml_value(value)}" for name, value in settings.items())
        lines.append(f"{key} = {{ {fields} }}")
    return "\n".join(lines) + "\n"


def render_containerd_hosts(
    source: Source,
    *,
    security: SecurityMode | None = None,
    ca: str | None = None,
    mirror_of: Iterable[str] = (),
) -> tuple[ContainerdHostsFile, ...]:
    """One ``hosts.toml`` per registry name, each with the directory containerd finds it in.

    From a plan: the registry itself, then (when insecure) each instance, in
    the plan's flavour (or as ``security`` overrides it); then each extra
    entry with Docker's fallback (``https`` with ``skip_verify``, then
    ``http``). From a policy: every ``host[:port]`` entry as ``security``
    says, by default with the same fallback; CIDR entries have no containerd
    equivalent and are left out. A registry on its scheme's default port gets
    two files: ``host`` and ``host:443`` (``host:80``).

    ``ca`` is the absolute path of the CA file where it is installed, written
    into the plan's own https hosts (a relative path is refused: containerd
    would read it relative to the host's directory).

    ``mirror_of`` (for example ``("docker.io",)``) adds a ``hosts.toml`` for
    each upstream whose hosts are the plan's registry and instances, with
    ``pull`` and ``resolve``: images of that upstream are pulled through the
    plan's registry, and from the upstream itself when none answers.
    """
    ca = check_ca_path(ca)
    mirrors = upstreams(mirror_of)
    found, _networks = targets(source, security)
    files: list[ContainerdHostsFile] = []
    seen: set[str] = set()
    for target in found:
        for name in target.names():
            if name in seen:
                continue
            seen.add(name)
            hosts = _host_entries(target, name, ca)
            flavour = target.security or "flavour unknown: https without verification, then http"
            header = [
                f"Generated by registry-config from {origin(source)}.",
                f"Registry {name} ({flavour}): containerd reads this file as",
                posixpath.join(CONTAINERD_CERTS_D, name, "hosts.toml"),
            ]
            files.append(ContainerdHostsFile(name, _file(hosts[-1][0], hosts, header)))
    own = [target for target in found if target.own]
    for upstream in mirrors:
        hosts = []
        for target in own:
            hosts.extend(_host_entries(target, target.key, ca))
        header = [
            f"Generated by registry-config from {origin(source)}.",
            f"{upstream} pulled through the mirror {', '.join(t.key for t in own)}; containerd reads this file as",
            posixpath.join(CONTAINERD_CERTS_D, upstream, "hosts.toml"),
        ]
        server = _UPSTREAM_SERVERS.get(upstream, f"https://{upstream}")
        files.append(ContainerdHostsFile(upstream, _file(server, hosts, header)))
    return tuple(files)
