"""Resolve a short Python reference (``:class:`Discovery```) that Sphinx cannot place, when one object has that name.

The library's docstrings name classes as a reader of the module would,
``:class:`DiscoveryError``` rather than the full dotted path, and Sphinx
looks such a name up only in the current module and class. When that fails,
this handler looks for documented objects whose dotted name ends with the
target and links the reference if exactly one matches (an ambiguous name is
left unlinked, as before).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.nodes import make_refnode


def resolve_short_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", "")).lstrip("~.")
    if not target or " " in target:
        return None
    domain: Any = env.get_domain("py")
    suffix = "." + target
    matches = {
        name: entry
        for name, entry in domain.objects.items()
        if name.endswith(suffix) and name.startswith("registry_config.") and not entry.aliased
    }
    if len(matches) != 1:
        return None
    ((name, entry),) = matches.items()
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_short_name)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
