"""Carrying a plan to the container runtimes: Docker, containerd and containers-library configuration.

A plan (anything with ``.spec`` and ``.insecure_registries``, such as
:class:`~registry_config.plan.StagingPlan`) or an
:class:`~registry_config.policy.InsecurityPolicy` (anything with
``.entries``) becomes, one module per runtime:

- :mod:`~registry_config.render.docker`: Docker's ``daemon.json``
  ``insecure-registries``, merged into the operator's file;
- :mod:`~registry_config.render.containerd`: one containerd ``hosts.toml`` per
  registry name, in the directory containerd looks it up under;
- :mod:`~registry_config.render.containers`: a containers ``registries.conf``
  (v2) for Podman, Buildah, Skopeo and CRI-O;
- :mod:`~registry_config.render.tree`: all of them, with the CA trees, as one
  ``/etc``-shaped tree (``registry-config render --output-dir``).

:mod:`~registry_config.render.model` decides, once for all three, which
registries are configured, by which names, in which flavour. What they write
is what the real clients need (``docs/howto/render.md`` has the matrix the
tests pull through). Every output is deterministic. TOML is written through
``tomli-w``, the ``toml`` extra: ``pip install 'registry-config[toml]'``.
"""

from __future__ import annotations

from .containerd import CONTAINERD_CERTS_D, ContainerdHostsFile, containerd_host_directory, render_containerd_hosts
from .containers import CONTAINERS_CONF_D, render_registries_conf
from .docker import render_daemon_json
from .model import PlanLike, PolicyLike, Source
from .tree import RUNTIMES, RenderedFile, render_tree

__all__ = [
    "CONTAINERD_CERTS_D",
    "CONTAINERS_CONF_D",
    "RUNTIMES",
    "ContainerdHostsFile",
    "PlanLike",
    "PolicyLike",
    "RenderedFile",
    "Source",
    "containerd_host_directory",
    "render_containerd_hosts",
    "render_daemon_json",
    "render_registries_conf",
    "render_tree",
]
