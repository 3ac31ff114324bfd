"""Egress rules for the staging container, and the guard that decides which addresses may get one.

Threat model
------------
The seed's design opens the staging container's firewall to every address that
discovery (Consul's catalog, DNS) returns for the registry service, and the
staging container runs code and images that the platform does not trust. So
whoever can register a service instance, or poison the answer, chooses where
that untrusted code may connect: the cloud metadata service at
169.254.169.254 (instance credentials), the cell's own loopback services, other
tenants, or the public internet (exfiltration). Two defences live here:

* :class:`EgressGuard` refuses instance addresses outside the networks an
  operator approved before any rule is made: private networks by default, and
  never loopback, link-local, metadata, unspecified, multicast, broadcast or
  reserved addresses unless a listed network names them explicitly.
* :func:`rules_for` opens exactly the ``(address, port)`` pairs that were kept
  and not one more: compaction merges addresses only where the merged rule
  covers nothing else.

:class:`EgressRule` is validated as Diego's BBS validates a
``SecurityGroupRule`` (``models/security_groups.go``), so a rule this library
makes is never refused at task creation (the original Go stager sent a
protocol ``"TCP"``, which BBS refuses), and operators' rules read from BBS or
Cloud Controller JSON are checked before they reach a task.

The modules, one idea each (import the names from here; the modules are the
package's own layout):

* :mod:`~registry_config.egress.rule`: :class:`EgressRule`;
* :mod:`~registry_config.egress.display`: a rule shown in a notebook (IPython's ``_repr_pretty_``, ``_repr_html_``);
* :mod:`~registry_config.egress.formats`: BBS and Cloud Controller JSON, read and written;
* :mod:`~registry_config.egress.guard`: :class:`EgressGuard`, :class:`RejectedInstance`,
  :data:`DEFAULT_ALLOWED_NETWORKS`;
* :mod:`~registry_config.egress.compaction`: :func:`rules_for`;
* ``_checks`` (BBS's checks of a rule), ``_addresses`` (how an address is read) and ``_messages``
  (how a refused value is shown), private to the package.
"""

from __future__ import annotations

from . import _checks, guard
from .compaction import rules_for
from .guard import EgressGuard, RejectedInstance
from .rule import EgressRule

# Assigned, not imported, so that the comments document them here, where users import them (Sphinx reads a
# ``#:`` comment from the module that holds the assignment). Each is the very object of its module.

#: Private networks, the guard's default: RFC 1918, carrier-grade NAT shared space (RFC 6598) and IPv6 unique local
#: (RFC 4193).
DEFAULT_ALLOWED_NETWORKS = guard.DEFAULT_ALLOWED_NETWORKS

#: The protocols BBS accepts, exactly as it spells them (lower case only).
PROTOCOLS = _checks.PROTOCOLS

__all__ = [
    "DEFAULT_ALLOWED_NETWORKS",
    "PROTOCOLS",
    "EgressGuard",
    "EgressRule",
    "RejectedInstance",
    "rules_for",
]
