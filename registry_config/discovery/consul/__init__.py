"""Finding the registry's instances in Consul's catalog, as the seed does, and watching them change.

The seed's stager reads ``/v1/catalog/service/<service>`` with no timeout and
no status check, ignores ``ServicePort`` and reports every failure as a bare
"staging failed". :class:`ConsulBackend` asks the same question through the
maintained ``py-consul`` client (extra ``consul``), by default of the health
endpoint so that only instances whose checks pass are staged from. Each
module of this package holds one part of that:

- :mod:`.settings`: the arguments, the ``consul://`` URL and Consul's own
  environment variables, checked when a backend is made;
- :mod:`.transport`: py-consul's HTTP client interface, and what a failed
  request means;
- :mod:`.answers`: an answer's status, headers and body, as typed errors;
- :mod:`.reader`: the entries of a live agent's answer, as instances;
- :mod:`.watch`: blocking queries, rate-limited, stopped promptly;
- :mod:`.backend`: :class:`ConsulBackend`, which ties them together.

The token travels in the ``X-Consul-Token`` header only; it is never part of
a URL, a message, a ``repr`` or a log record.
"""

from __future__ import annotations

from .backend import ConsulBackend

__all__ = ["ConsulBackend"]
