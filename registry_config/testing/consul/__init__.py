"""A Consul agent for tests: the catalog and health service endpoints, over real HTTP on loopback.

Consul cannot be installed everywhere a stager's tests run, and a mock at the
Python level would let a client's HTTP handling (status codes, headers,
plain-text error bodies, blocking queries, timeouts) go untested.
:class:`ConsulSimulator` answers as a live Consul agent does, so the real
``py-consul`` client (or any other) can be pointed at ``sim.url``::

    from registry_config.testing.consul import ConsulSimulator

    with ConsulSimulator() as sim:
        sim.register("docker_registry", "10.0.0.5", node="cell-1")   # ServicePort 0
        sim.register("docker_registry", "10.0.0.6", node="cell-2")
        backend = ConsulBackend(sim.url)
        ...

Each rule of Consul's lives in the module named after it, with the Consul
source it follows:

- :mod:`.params`: the query parameters and the token, their exact error texts;
- :mod:`.catalog`: the state, the Raft and per-service indexes, blocking waits;
- :mod:`.filtering`: the ``?filter=`` language (go-bexpr) and its refusals;
- :mod:`.shapes`: the JSON a live agent sends, and its encoding;
- :mod:`.acl`: tokens, filtering by ACL, the headers that say so;
- :mod:`.faults`: what can be put in place of an answer;
- :mod:`.recording`: the request log, which never holds a token;
- :mod:`.server`: the HTTP transport and routing;
- :mod:`.simulator`: the public API, and the order in which a request is
  handled (log, faults, parameters, datacenter, leader, token, filter,
  blocking wait, answer).

``docs/consul-simulator.md`` lists what it reproduces and what it does not.
"""

from __future__ import annotations

from .faults import Fault
from .params import parse_duration
from .recording import RecordedRequest
from .simulator import ConsulSimulator

__all__ = ["ConsulSimulator", "Fault", "RecordedRequest", "parse_duration"]
