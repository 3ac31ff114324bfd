"""Pickling for the frozen value objects that hold a read-only mapping.

A value object keeps its mapping read-only as a ``types.MappingProxyType``,
which pickle cannot take: without help, a :class:`~registry_config.discovery.model.ServiceInstance`
(its ``meta``), and with it every discovery and plan, a
:class:`~registry_config.images.resolve.ResolvedImage` (its ``digests``) or a
:class:`~registry_config.images.challenge.Challenge` could not cross to a worker
process (``multiprocessing``, ``concurrent.futures``) nor be ``deepcopy``-ed.
:func:`by_fields` reduces such an object to its class and its fields, the
mappings as plain dicts; it is rebuilt by its own constructor, checks and all.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["by_fields"]


def by_fields(value: Any) -> tuple[Callable[[type[Any], Mapping[str, Any]], Any], tuple[Any, ...]]:
    """What ``__reduce__`` returns for an attrs value object: rebuild it from its fields."""
    cls = type(value)
    fields = {field.alias: _plain(getattr(value, field.name)) for field in attrs.fields(cls) if field.init}
    return _rebuild, (cls, fields)


def _rebuild(cls: type[Any], fields: Mapping[str, Any]) -> Any:
    return cls(**fields)


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, types.MappingProxyType) else value
