"""Sphinx configuration: MyST Markdown, furo, autodoc; no network (intersphinx off).

Built in CI with ``sphinx-build -W --keep-going -b html docs docs/_build/html``,
so a broken reference or a docstring autodoc cannot read fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package itself, when it is not installed

import registry_config  # noqa: E402 (after the path set-up above)

project = "registry-config"
author = "registry-config developers"
copyright = "registry-config developers"
release = registry_config.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "cli_reference",
    "short_refs",
    "api_cleanup",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# docs/rendered/ holds generated runtime configs (the probe engineer's), included by literalinclude, not pages.
exclude_patterns = ["_build", "rendered", "Thumbs.db", ".DS_Store"]
root_doc = "index"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
# Types in the signature: with "description", every attrs field was listed again as a bare "Parameters" entry
# holding only its type. A field's description is its attribute docstring, documented as an attribute.
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "class"
# No napoleon: the docstrings are reST prose without Google or NumPy sections, and napoleon would read a
# property's "Summary: detail" docstring as "type: description", printing the summary as the property's type.

# Attribute names such as ``address`` exist on several classes (RegistrySpec, ConsulSimulator, ServiceInstance);
# autodoc's generated field lists refer to them unqualified, and Sphinx then warns that the reference is
# ambiguous although the page renders right. Only that warning class is silenced; broken references still fail.
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_title = f"registry-config {release}"
pygments_style = "sphinx"
