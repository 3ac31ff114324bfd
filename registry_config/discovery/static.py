"""A fixed list of registry instances: the simplest backend, and the one ``build_plan`` uses by default."""

from __future__ import annotations

from collections.abc import Iterable

from ..address import format_host, format_host_port, split_host_port
from ..errors import DiscoveryUnavailable, InvalidInput
from ..redact import quote
from ..resolver import Resolver, resolve
from .backend import BackendBase
from .model import Discovery, ServiceInstance, ServiceQuery

__all__ = ["StaticBackend"]


class StaticBackend(BackendBase):
    """Instances given up front: ``ip``, ``ip:port``, ``[v6]:port``, ``host[:port]`` or :class:`ServiceInstance`.

    Entries are checked when the backend is made, so a typo fails at once
    with the entry named. Names are resolved on every ``discover`` through
    ``resolver`` (default: the system's), each address becoming an instance;
    a missing port means the query's ``default_port``.
    """

    def __init__(self, entries: Iterable[str | ServiceInstance], *, resolver: Resolver | None = None) -> None:
        if isinstance(entries, str):
            entries = [entries]
        self._entries: tuple[ServiceInstance | tuple[str, int | None], ...] = tuple(
            entry if isinstance(entry, ServiceInstance) else split_host_port(entry, where=f"static entry #{i}")
            for i, entry in enumerate(entries)
        )
        self._resolver = resolver

    def discover(self, query: ServiceQuery) -> Discovery:
        instances: list[ServiceInstance] = []
        warnings: list[str] = []
        for entry in self._entries:
            if isinstance(entry, ServiceInstance):
                instances.append(entry)
                continue
            host, given_port = entry
            port = query.port_or_default(given_port)
            if port is None:
                raise InvalidInput(
                    f"static entry {host!r} has no port and the query for {query.name!r} has no "
                    "default_port; write host:port or pass default_port"
                )
            try:
                addresses = resolve(host, self._resolver)
            except OSError as exc:
                raise DiscoveryUnavailable(
                    f"static backend: cannot resolve {host!r} ({quote(exc, limit=120)}); check the name and the "
                    "resolver (DNS, /etc/hosts, Consul's DNS forwarding)"
                ) from exc
            if not addresses:
                warnings.append(f"static entry {host!r} resolved to no usable address; skipped")
            instances.extend(ServiceInstance(address, port) for address in addresses)
        return Discovery(query, instances, source="static", warnings=warnings)

    def __repr__(self) -> str:
        shown = [str(entry) if isinstance(entry, ServiceInstance) else _entry_text(*entry) for entry in self._entries]
        return f"StaticBackend({shown!r})"


def _entry_text(host: str, port: int | None) -> str:
    return format_host(host) if port is None else format_host_port(host, port)
