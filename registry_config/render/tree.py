"""Every runtime's files as one ``/etc``-shaped tree, ready to copy onto a machine (``render --output-dir``).

::

    etc/docker/daemon.json                                  insecure-registries (registry-mirrors)
    etc/docker/certs.d/<host:port>/ca.crt                   the CA, for a verified registry
    etc/containerd/certs.d/<host:port>/hosts.toml           one per registry name
    etc/containerd/certs.d/<host:port>/ca.crt               the CA, named by absolute path in hosts.toml
    etc/containers/registries.conf.d/registry-config.conf   Podman, Buildah, Skopeo, CRI-O
    etc/containers/certs.d/<host:port>/ca.crt               the CA, for the containers library

Paths written inside the files (containerd's ``ca``) are where the tree is
installed: under ``root`` (default ``/``), so the tree rendered for
``root="/"`` works once copied to ``/``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import InvalidInput
from .containerd import render_containerd_hosts
from .containers import render_registries_conf
from .docker import render_daemon_json
from .model import Source, Target, targets

__all__ = ["CONTAINERS_FILE", "RUNTIMES", "RenderedFile", "render_tree"]

RUNTIMES = ("docker", "containerd", "podman")
"""The runtimes :func:`render_tree` writes for; ``podman`` stands for every containers-library client."""

CONTAINERS_FILE = "registry-config.conf"
"""The name of the drop-in file in ``etc/containers/registries.conf.d/``."""


@attrs.frozen
class RenderedFile:
    """One file of the tree: its path relative to the root (``etc/...``) and its bytes."""

    path: str
    content: bytes

    def installed(self, root: str = "/") -> str:
        """Where the file goes on the machine: ``<root>/<path>``."""
        return posixpath.join(root, self.path)


def _pem(ca_pem: str | bytes | None) -> bytes | None:
    if ca_pem is None:
        return None
    data = ca_pem.encode("utf-8", "strict") if isinstance(ca_pem, str) else bytes(ca_pem)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InvalidInput("the CA is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line); give a PEM file")
    return data


def _safe(name: str) -> str:
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise InvalidInput(f"refusing the registry name {name!r} as a directory name")
    return name


def _ca_names(found: list[Target], *, underscores: bool) -> list[str]:
    """The names under which a runtime looks up the CA of the plan's own https registries."""
    names: list[str] = []
    for target in found:
        if not target.own or "https" not in target.schemes:
            continue
        if target.has_underscore() and not underscores:
            continue
        names.extend(_safe(name) for name in target.names())
    return list(dict.fromkeys(names))


def render_tree(
    source: Source,
    *,
    runtimes: Iterable[str] = RUNTIMES,
    ca_pem: str | bytes | None = None,
    root: str = "/",
    existing_daemon_json: str | bytes | Mapping[str, Any] | None = None,
    mirror_of: Iterable[str] = (),
) -> tuple[RenderedFile, ...]:
    """The files of each runtime in ``runtimes``, as an ``/etc``-shaped tree relative to ``root``.

    ``ca_pem`` (the CA certificate's PEM text) is installed for each runtime
    under every name of the plan's own https registries; containerd's
    ``hosts.toml`` names it by its absolute installed path under ``root``.
    ``existing_daemon_json`` is the operator's ``daemon.json`` to merge into;
    ``mirror_of`` is passed to each renderer. Warnings are those of the
    renderers (:class:`~registry_config.errors.RegistryConfigWarning`).
    """
    if not isinstance(root, str) or not posixpath.isabs(root) or any(c in root for c in "\n\r\0"):
        raise InvalidInput(f"root {root!r}: give the absolute directory the tree is installed under (default /)")
    wanted = tuple(dict.fromkeys(runtimes))
    for runtime in wanted:
        if runtime not in RUNTIMES:
            raise InvalidInput(f"unknown runtime {runtime!r}: choose from {', '.join(RUNTIMES)}")
    pem = _pem(ca_pem)
    mirrors = tuple(mirror_of)
    found, _networks = targets(source)
    files: list[RenderedFile] = []
    if "docker" in wanted:
        text = render_daemon_json(source, existing=existing_daemon_json, mirror_of=mirrors)
        files.append(RenderedFile("etc/docker/daemon.json", text.encode("utf-8")))
        if pem is not None:
            files.extend(
                RenderedFile(f"etc/docker/certs.d/{name}/ca.crt", pem) for name in _ca_names(found, underscores=False)
            )
    if "containerd" in wanted:
        ca_names = _ca_names(found, underscores=True)
        ca_path = None
        if pem is not None and ca_names:
            ca_file = f"etc/containerd/certs.d/{ca_names[0]}/ca.crt"
            files.append(RenderedFile(ca_file, pem))
            ca_path = posixpath.join(root, ca_file)
        for hosts_file in render_containerd_hosts(source, ca=ca_path, mirror_of=mirrors):
            directory = _safe(hosts_file.directory)
            files.append(RenderedFile(f"etc/containerd/certs.d/{directory}/hosts.toml", hosts_file.content.encode()))
    if "podman" in wanted:
        text = render_registries_conf(source, mirror_of=mirrors)
        files.append(RenderedFile(f"etc/containers/registries.conf.d/{CONTAINERS_FILE}", text.encode("utf-8")))
        if pem is not None:
            files.extend(
                RenderedFile(f"etc/containers/certs.d/{name}/ca.crt", pem)
                for name in _ca_names(found, underscores=False)
            )
    return tuple(files)
