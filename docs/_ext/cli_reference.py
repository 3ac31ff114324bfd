"""A Sphinx directive that prints the command line's help, taken from the argparse parser at build time.

``{cli-reference}`` renders ``registry-config --help`` and then, for every
sub-command, its description and ``--help`` text, so the CLI reference can
never drift from the parser that ``registry-config`` really runs. The help is
formatted at a fixed width so the page does not depend on the terminal the
docs are built in.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

WIDTH = 100


def _fixed_width(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH, max_help_position=32)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(title: str, ident: str, body: list[nodes.Node]) -> nodes.section:
    section = nodes.section(ids=[ident], names=[nodes.fully_normalize_name(title)])
    section += nodes.title(text=title)
    section.extend(body)
    return section


class CliReference(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from registry_config.cli import build_parser

        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(WIDTH)
        try:
            parser = build_parser()
            _fixed_width(parser)
            result: list[nodes.Node] = [nodes.literal_block(text=parser.format_help().rstrip(), language="text")]
            for name, sub in _subparsers(parser).items():
                _fixed_width(sub)
                body: list[nodes.Node] = []
                if sub.description:
                    body.append(nodes.paragraph(text=sub.description))
                body.append(nodes.literal_block(text=sub.format_help().rstrip(), language="text"))
                result.append(_section(f"registry-config {name}", f"cli-{name}", body))
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        return result


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
