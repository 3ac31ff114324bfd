"""The fast decoder of Consul's answers: only the fields the reader uses, typed, straight from the bytes.

A 100k-entry answer decoded by :func:`json.loads` is millions of dicts and
strings, most of them fields no plan reads (``ServiceProxy``, ``Weights``,
``CreateIndex``...), which the garbage collector then walks again and again.
msgspec decodes into the :class:`~msgspec.Struct` s below instead: the
fields it does not know are skipped without being built, the structs are
``gc=False`` (they hold no cycles), and the tags are tuples.

One struct, :class:`Entry`, reads both endpoints, because the caller does
not say which one answered: the catalog's flat entry (``Node`` a string,
``ServiceAddress``, ``ServicePort``...) and the health endpoint's nested one
(``Node`` and ``Service`` objects, ``Checks``) have no other key in common,
and ``Node`` is either a string or an object, which msgspec tells apart.
The reader looks only at the fields of the endpoint it asked.

Tagged addresses (a dict per node and per service) matter only to the
``lan``/``wan`` address modes, not to the default ``service`` mode: they are
kept as :class:`msgspec.Raw`, the entry's own bytes, and decoded by
:func:`tagged` only when a mode reads them.

The types are strict: an answer that does not fit them exactly (a port that
is a string, a tag that is a number, an entry that is not an object...) is
refused whole by :func:`decode_typed`, and the caller decodes it again with
the generic decoder, whose per-entry checks skip only the bad entry with a
warning. So the typed path only ever sees values the generic path would have
read the same way, and the two give the same instances (tests hold them to
it). A tagged address's ``Port`` keeps "absent" (:data:`UNSET`) apart from
``null``, as the generic reader does.
"""

from __future__ import annotations

import json

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["UNSET", "Check", "Entry", "HealthNode", "HealthService", "TaggedAddress", "decode_typed", "tagged"]

ABSENT = msgspec.Raw()
"""A tagged-address field the entry does not have."""


class TaggedAddress(msgspec.Struct, gc=False):
    """A service's tagged address: ``{"Address", "Port"}`` as the agent sends it, lowercase as the docs write it."""

    Address: str | None = None
    Port: int | UnsetType | None = UNSET
    address: str | None = None
    port: int | None = None


class Check(msgspec.Struct, gc=False):
    """A health check: its status, and its id and notes for maintenance."""

    CheckID: str | None = None
    Status: str | None = None
    Notes: str | None = None


class HealthNode(msgspec.Struct, gc=False):
    """The ``Node`` of a health entry; its tagged addresses are plain strings."""

    Node: str | None = None
    Address: str | None = None
    TaggedAddresses: msgspec.Raw = ABSENT


class HealthService(msgspec.Struct, gc=False):
    """The ``Service`` of a health entry (``Port`` is absent when 0)."""

    ID: str | None = None
    Address: str | None = None
    Port: int | None = None
    Tags: tuple[str, ...] | None = None
    Meta: dict[str, str] | None = None
    TaggedAddresses: msgspec.Raw = ABSENT


class Entry(msgspec.Struct, gc=False):
    """An entry of either endpoint: the catalog's flat fields, or the health endpoint's Node, Service, Checks."""

    Node: str | HealthNode | None = None
    # The catalog's entry.
    Address: str | None = None
    ServiceAddress: str | None = None
    ServicePort: int | None = None
    ServiceTags: tuple[str, ...] | None = None
    ServiceMeta: dict[str, str] | None = None
    ServiceID: str | None = None
    TaggedAddresses: msgspec.Raw = ABSENT
    ServiceTaggedAddresses: msgspec.Raw = ABSENT
    # The health endpoint's entry.
    Service: HealthService | None = None
    Checks: list[Check] | None = None


_DECODER = msgspec.json.Decoder(list[Entry])
_NODE_TAGGED = msgspec.json.Decoder(dict[str, str] | None)
_SERVICE_TAGGED = msgspec.json.Decoder(dict[str, TaggedAddress] | None)


def decode_typed(body: str | bytes) -> list[Entry] | None:
    """The entries of ``body`` if it is a JSON list that fits :class:`Entry` exactly, else ``None``.

    ``None`` says "decode it the generic way": that is also how a body that
    is not JSON, not a list, or nested too deep gets the generic path's
    error, word for word.
    """
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None


def tagged(raw: msgspec.Raw, *, service: bool) -> object:
    """A tagged-address field as the reader takes it: ``None`` when absent, typed when it fits, else plain JSON.

    A node's map is of strings, a service's of :class:`TaggedAddress`; a map
    that does not fit (``{"lan": 5}``) is decoded by :func:`json.loads`, as
    the generic path decodes it, and the reader's checks decide.
    """
    if not raw:
        return None
    try:
        return (_SERVICE_TAGGED if service else _NODE_TAGGED).decode(raw)
    except msgspec.ValidationError:
        return json.loads(bytes(raw))  # valid JSON: msgspec checked its syntax while skipping it
