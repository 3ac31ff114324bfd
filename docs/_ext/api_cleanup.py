"""Make autodoc's view of attrs classes read as the API a user calls, not as attrs' and the library's plumbing.

Two things autodoc shows that a reader of the API reference cannot use:

- a private base class (``Bases: _EndpointSlot``: a slot layout detail of
  ``ServiceInstance``) or ``object``: dropped from the "Bases" line, which is
  left out when nothing public remains;
- attrs' ``NOTHING`` sentinel as the default of a field made by a factory
  (``meta=NOTHING``), and the converters' parameter types (``port: Any``):
  the signature is written from the fields instead (``port: int``,
  ``meta: Mapping[str, str] = {}``).
"""

from __future__ import annotations

from typing import Any

import attrs
from docutils import nodes
from sphinx.application import Sphinx


def public_bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[type]) -> None:
    bases[:] = [base for base in bases if base is not object and not base.__name__.startswith("_")]


def attrs_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    """An attrs class's signature from its fields: each field's declared type and default.

    attrs writes ``__init__`` with the converters' parameter types (``port: Any``)
    and its ``NOTHING`` sentinel for a default made by a factory; a reader
    wants ``port: int`` and ``meta: Mapping[str, str] = {}``.
    """
    if what not in ("class", "exception") or signature is None or not attrs.has(obj):  # type: ignore[arg-type]
        return None
    positional: list[str] = []
    keyword: list[str] = []
    for field in attrs.fields(obj):  # type: ignore[arg-type]
        if not field.init:
            continue
        text = field.alias or field.name
        if field.type is not None:
            text += f": {field.type if isinstance(field.type, str) else getattr(field.type, '__name__', field.type)}"
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:
                text += " = ..."
            else:
                text += f" = {default.factory()!r}"
        elif default is not attrs.NOTHING:
            text += f" = {default!r}"
        (keyword if field.kw_only else positional).append(text)
    parts = positional + (["*", *keyword] if keyword else [])
    return f"({', '.join(parts)})", return_annotation


def drop_empty_bases(app: Sphinx, doctree: nodes.document) -> None:
    """The "Bases:" line autodoc still writes when :func:`public_bases` left no base to name."""
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if paragraph.astext().strip() == "Bases:":
            paragraph.parent.remove(paragraph)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-bases", public_bases)
    app.connect("doctree-read", drop_empty_bases)
    app.connect("autodoc-process-signature", attrs_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
