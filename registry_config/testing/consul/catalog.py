"""The catalog's state: nodes, service instances, the Raft index, the per-service indexes, and blocking waits.

Consul gives every write a Raft index, and a service query answers the
index of the last write that touched *that* service (its instances, their
checks, the nodes they run on): agent/consul/state/catalog.go
``maxIndexForService``. So a change to another service neither wakes a
blocked query on this one nor moves its ``X-Consul-Index``. A service with no
instance answers the index of the last time any service lost its last
instance (``service_last_extinction``), or, if none ever did, the catalog's
highest index; only a registration of that service wakes its queries.

A blocked query (agent/blockingquery/blockingquery.go ``Query``) is answered
once the service's index is above the one it holds, when its wait is over,
or at once when the state store is replaced (a snapshot restore: here
:meth:`Catalog.reset_index`). Instances are listed in the order of Consul's
``services`` table: by node name, then service id, case-insensitively
(state/catalog_schema.go, the ``id`` index).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from . import shapes
from .shapes import NodeRecord, ServiceRecord

__all__ = ["Catalog", "Instance"]


@attrs.frozen
class Instance:
    """One service instance as answered: both JSON shapes (each encoded once), and what the query parameters test."""

    service: str
    service_id: str
    node: str
    datacenter: str
    catalog: Mapping[str, Any]
    health: Mapping[str, Any]
    tags: frozenset[str]  # lowercased: ``?tag=`` matches case-insensitively
    node_meta: Mapping[str, str]
    passing: bool
    _encoded: dict[str, bytes] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def build(cls, service: str, datacenter: str, catalog: Mapping[str, Any], health: Mapping[str, Any]) -> Instance:
        node = catalog.get("Node")
        service_id = catalog.get("ServiceID")
        return cls(
            service=service,
            service_id=service_id if isinstance(service_id, str) else "",
            node=node if isinstance(node, str) else "",
            datacenter=datacenter,
            catalog=catalog,
            health=health,
            tags=frozenset(_tags(catalog, health)),
            node_meta=_node_meta(catalog),
            passing=_passing(health),
        )

    def fragment(self, kind: str) -> bytes:
        """The compact JSON of one shape, encoded on first use and kept (the instance never changes)."""
        encoded = self._encoded.get(kind)
        if encoded is None:
            encoded = self._encoded[kind] = shapes.encode(self.shape(kind))
        return encoded

    def shape(self, kind: str) -> Mapping[str, Any]:
        return self.catalog if kind == "catalog" else self.health


def _tags(catalog: Mapping[str, Any], health: Mapping[str, Any]) -> Iterator[str]:
    tags = catalog.get("ServiceTags")
    service = health.get("Service")
    if not isinstance(tags, list) and isinstance(service, dict):
        tags = service.get("Tags")
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, str):
            yield tag.lower()


def _node_meta(catalog: Mapping[str, Any]) -> Mapping[str, str]:
    meta = catalog.get("NodeMeta")
    if not isinstance(meta, dict):
        return {}
    return {key: value for key, value in meta.items() if isinstance(key, str) and isinstance(value, str)}


def _passing(health: Mapping[str, Any]) -> bool:
    """Every check passing, as agent/health_endpoint.go ``filterNonPassing`` asks (node checks included)."""
    checks = health.get("Checks")
    if not isinstance(checks, list):
        return True
    return all(isinstance(check, dict) and check.get("Status") == "passing" for check in checks)


def _order(key: tuple[str, str]) -> tuple[str, str]:
    return key[0].lower(), key[1].lower()


class Catalog:
    """Thread-safe catalog state; every change is one write with its own Raft index and wakes the waiters it concerns.

    ``datacenters`` are the ones it holds, the first its own.
    """

    def __init__(self, datacenters: Iterable[str]) -> None:
        self.datacenters = tuple(datacenters)
        self.condition = threading.Condition()
        self._index = 1
        self._epoch = 0
        self._nodes: dict[tuple[str, str], NodeRecord] = {}
        # (dc, node, service id) -> (service name, record or None for a verbatim entry)
        self._owners: dict[tuple[str, str, str], str] = {}
        self._records: dict[tuple[str, str, str], ServiceRecord] = {}
        self._tables: dict[tuple[str, str], dict[tuple[str, str], Instance]] = {}
        self._service_index: dict[tuple[str, str], int] = {}
        self._extinction: dict[str, int] = {}
        self._dc_index: dict[str, int] = {}
        self._serial = 0

    # -- reading -------------------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """The Raft index of the last write."""
        with self.condition:
            return self._index

    def __len__(self) -> int:
        with self.condition:
            return sum(len(table) for table in self._tables.values())

    def service_index(self, datacenter: str, service: str) -> int:
        """``X-Consul-Index`` for a query on ``service``: never below 1 (agent/http.go ``setIndex``)."""
        with self.condition:
            return max(1, self._service_index_locked(datacenter, service))

    def _service_index_locked(self, datacenter: str, service: str) -> int:
        if self._tables.get((datacenter, service)):
            return self._service_index.get((datacenter, service), self._index)
        if datacenter in self._extinction:
            return self._extinction[datacenter]
        return self._dc_index.get(datacenter, self._index)

    def instances(self, datacenter: str, service: str) -> tuple[int, int, list[Instance]]:
        """The service's index, the epoch (how many times :meth:`reset_index` replaced the state) and the instances
        in Consul's order, read at one instant."""
        with self.condition:
            table = self._tables.get((datacenter, service), {})
            ordered = [table[key] for key in sorted(table, key=_order)]
            return max(1, self._service_index_locked(datacenter, service)), self._epoch, ordered

    def wait(self, datacenter: str, service: str, above: int, timeout: float, stop: threading.Event) -> None:
        """Hold until the service's index is above ``above``, ``timeout`` passes, the state is replaced or ``stop``."""
        deadline = time.monotonic() + timeout
        with self.condition:
            epoch = self._epoch
            while (
                max(1, self._service_index_locked(datacenter, service)) <= above
                and self._epoch == epoch
                and not stop.is_set()
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.condition.wait(remaining)

    # -- writing ---------------------------------------------------------------------------------------------------

    def _write(self) -> int:
        # Called with the lock held: one Raft write.
        self._index += 1
        return self._index

    def _touched(self, datacenter: str, service: str, index: int) -> None:
        self._service_index[(datacenter, service)] = index
        self._dc_index[datacenter] = index

    def _publish(self) -> None:
        self.condition.notify_all()

    def _build(self, datacenter: str, node: str, service_id: str) -> None:
        record = self._records[(datacenter, node, service_id)]
        node_record = self._nodes[(datacenter, node)]
        instance = Instance.build(
            record.name,
            datacenter,
            shapes.catalog_entry(node_record, record),
            shapes.health_entry(node_record, record),
        )
        self._tables.setdefault((datacenter, record.name), {})[(node, service_id)] = instance

    def _remove(self, datacenter: str, node: str, service_id: str, index: int) -> None:
        service = self._owners.pop((datacenter, node, service_id))
        self._records.pop((datacenter, node, service_id), None)
        table = self._tables.get((datacenter, service), {})
        table.pop((node, service_id), None)
        self._touched(datacenter, service, index)
        if not table:
            self._tables.pop((datacenter, service), None)
            self._service_index.pop((datacenter, service), None)
            self._extinction[datacenter] = index

    def register(
        self,
        *,
        datacenter: str,
        node: str,
        address: str,
        node_tagged_addresses: Mapping[str, str] | None,
        node_meta: Mapping[str, str] | None,
        service: str,
        service_id: str,
        tags: Iterable[str],
        service_address: str | None,
        port: int,
        meta: Mapping[str, str],
        service_tagged_addresses: Mapping[str, tuple[str, int]] | None,
        status: str,
        check: bool = True,
    ) -> None:
        """Register (or replace) one instance as an agent does, updating its node; one write."""
        with self.condition:
            index = self._write()
            tagged = dict(
                shapes.default_node_tagged_addresses(address)
                if node_tagged_addresses is None
                else node_tagged_addresses
            )
            metadata = {"consul-network-segment": ""} if node_meta is None else dict(node_meta)
            old_node = self._nodes.get((datacenter, node))
            if old_node is None:
                self._nodes[(datacenter, node)] = NodeRecord(node, address, datacenter, tagged, metadata, index, index)
            elif (old_node.address, dict(old_node.tagged_addresses), dict(old_node.meta)) != (
                address,
                tagged,
                metadata,
            ):
                self._nodes[(datacenter, node)] = attrs.evolve(
                    old_node, address=address, tagged_addresses=tagged, meta=metadata, modify_index=index
                )
                self._rebuild_node(datacenter, node, index)
            key = (datacenter, node, service_id)
            if key in self._owners and self._owners[key] != service:
                self._remove(datacenter, node, service_id, index)
            old = self._records.get(key)
            self._records[key] = ServiceRecord(
                id=service_id,
                name=service,
                tags=tuple(tags),
                address=service_address,
                port=port,
                meta=dict(meta),
                tagged_addresses=shapes.service_tagged_addresses(service_address, port, service_tagged_addresses),
                create_index=old.create_index if old is not None else index,
                modify_index=index,
                status=status,
                status_index=index,
                check=check,
            )
            self._owners[key] = service
            self._build(datacenter, node, service_id)
            self._touched(datacenter, service, index)
            self._publish()

    def _rebuild_node(self, datacenter: str, node: str, index: int) -> None:
        for dc, node_name, service_id in list(self._records):
            if (dc, node_name) == (datacenter, node):
                self._build(dc, node_name, service_id)
                self._touched(dc, self._records[(dc, node_name, service_id)].name, index)

    def register_verbatim(self, datacenter: str, service: str, catalog: dict[str, Any], health: dict[str, Any]) -> None:
        """Serve one entry exactly as given (one write); its node and id, when not strings, are made unique."""
        with self.condition:
            index = self._write()
            node = catalog.get("Node")
            service_id = catalog.get("ServiceID")
            self._serial += 1
            if not isinstance(node, str):
                node = f"<node {self._serial}>"
            if not isinstance(service_id, str):
                service_id = f"<service {self._serial}>"
            key = (datacenter, node, service_id)
            if key in self._owners:
                self._remove(datacenter, node, service_id, index)
            self._owners[key] = service
            self._tables.setdefault((datacenter, service), {})[(node, service_id)] = Instance.build(
                service, datacenter, catalog, health
            )
            self._touched(datacenter, service, index)
            self._publish()

    def deregister(self, service_id: str, node: str | None = None) -> int:
        """Remove the instances with ``service_id`` (on ``node`` only, if given); one write if any went."""
        return self._remove_where(lambda key, _service: key[2] == service_id and (node is None or key[1] == node))

    def deregister_service(self, service: str) -> int:
        """Remove every instance of ``service``, in every datacenter."""
        return self._remove_where(lambda _key, name: name == service)

    def clear(self) -> None:
        """Remove every instance (one write)."""
        with self.condition:
            index = self._write()
            for key in list(self._owners):
                self._remove(*key, index)
            self._nodes.clear()
            self._publish()

    def _remove_where(self, wanted: Callable[[tuple[str, str, str], str], bool]) -> int:
        with self.condition:
            gone = [key for key, service in self._owners.items() if wanted(key, service)]
            if gone:
                index = self._write()
                for key in gone:
                    self._remove(*key, index)
                self._publish()
            return len(gone)

    def set_status(self, service_id: str, status: str, node: str | None = None) -> int:
        """Set the service check's status of the instances with ``service_id``; one write if any changed."""
        with self.condition:
            keys = [key for key in self._owners if key[2] == service_id and (node is None or key[1] == node)]
            if not keys:
                return 0
            index = self._write()
            for dc, node_name, sid in keys:
                service = self._owners[(dc, node_name, sid)]
                record = self._records.get((dc, node_name, sid))
                if record is not None:
                    self._records[(dc, node_name, sid)] = attrs.evolve(
                        record, status=status, status_index=index, check=True
                    )
                    self._build(dc, node_name, sid)
                else:
                    instance = self._tables[(dc, service)][(node_name, sid)]
                    health = copy.deepcopy(dict(instance.health))
                    for check in health.get("Checks") or []:
                        if isinstance(check, dict) and check.get("CheckID") != "serfHealth":
                            check["Status"] = status
                    self._tables[(dc, service)][(node_name, sid)] = Instance.build(
                        service, dc, instance.catalog, health
                    )
                self._touched(dc, service, index)
            self._publish()
            return len(keys)

    def node_maintenance(self, node: str, reason: str | None, datacenter: str) -> bool:
        """Put ``node`` in maintenance (``reason`` not None) or take it out; False for an unknown node."""
        with self.condition:
            record = self._nodes.get((datacenter, node))
            if record is None:
                return False
            index = self._write()
            self._nodes[(datacenter, node)] = attrs.evolve(record, maintenance=reason, maintenance_index=index)
            self._rebuild_node(datacenter, node, index)
            self._publish()
            return True

    def service_maintenance(self, service_id: str, reason: str | None, node: str | None) -> int:
        """Put the instances with ``service_id`` in maintenance (``reason`` not None) or take them out."""
        with self.condition:
            keys = [key for key in self._records if key[2] == service_id and (node is None or key[1] == node)]
            if not keys:
                return 0
            index = self._write()
            for key in keys:
                self._records[key] = attrs.evolve(self._records[key], maintenance=reason, maintenance_index=index)
                self._build(*key)
                self._touched(key[0], self._records[key].name, index)
            self._publish()
            return len(keys)

    def touch(self, service: str | None = None, datacenter: str | None = None) -> int:
        """One write; with ``service``, one that moves that service's index (as a check's output changing does)."""
        with self.condition:
            index = self._write()
            if service is not None:
                self._touched(datacenter or self.datacenters[0], service, index)
            self._publish()
            return index

    def reset_index(self, to: int) -> None:
        """Replace the store's indexes (a snapshot restore): every index becomes ``to``; blocked queries answer."""
        with self.condition:
            self._index = to
            self._epoch += 1
            for key in self._service_index:
                self._service_index[key] = to
            for dc in self._dc_index:
                self._dc_index[dc] = to
            for dc in self._extinction:
                self._extinction[dc] = to
            self._publish()
