"""An :class:`~registry_config.egress.EgressRule` shown in a notebook: a one-line summary and a small HTML table.

IPython and Jupyter look for ``_repr_pretty_`` (the pretty printer's
protocol) and ``_repr_html_`` on the objects they display; the rule's methods
call the functions here. Nothing here imports IPython: the pretty printer is
whatever object with a ``text`` method IPython passes in.

Destinations are listed up to :data:`SHOWN`, then counted ("(and 998 more)"), so
a compacted rule over a large network stays one line and one small table;
``rule.destinations`` has them all. Every value in the HTML is escaped: the
description and annotations are free text, read from an operator's JSON.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rule import EgressRule

__all__ = ["SHOWN", "html_table", "summary"]

#: How many destinations a display lists before it counts the rest.
SHOWN = 10


def _destinations(rule: EgressRule, separator: str, quote: bool) -> str:
    shown = [html.escape(text) if quote else text for text in rule.destinations[:SHOWN]]
    more = len(rule.destinations) - len(shown)
    return separator.join(shown) + (f"{separator if quote else ' '}(and {more} more)" if more > 0 else "")


def summary(rule: EgressRule) -> str:
    """One line: ``EgressRule tcp → 10.0.0.0/31 ports 8080``, with ICMP's type and code, and ``(logged)``."""
    text = f"EgressRule {rule.protocol} → {_destinations(rule, ', ', quote=False)}"
    if rule.ports is not None:
        text += f" ports {rule.ports_text}"
    if rule.port_range is not None:
        text += f" ports {_range(rule.port_range)}"
    if rule.icmp_info is not None:
        text += f" type {rule.icmp_info[0]} code {rule.icmp_info[1]}"
    return text + (" (logged)" if rule.log else "")


def _range(port_range: tuple[int, int]) -> str:
    """A range as a range, even of one port (Cloud Controller's ``ports_text`` writes that as the port)."""
    return f"{port_range[0]}-{port_range[1]}"


def html_table(rule: EgressRule) -> str:
    """A table with a row per field that is set: protocol, destinations, ports or range, ICMP, log, and text."""
    rows: list[tuple[str, str]] = [
        ("protocol", html.escape(rule.protocol)),
        ("destinations", _destinations(rule, "<br>", quote=True)),
    ]
    if rule.ports is not None:
        rows.append(("ports", html.escape(", ".join(str(port) for port in rule.ports))))
    if rule.port_range is not None:
        rows.append(("port range", html.escape(_range(rule.port_range))))
    if rule.icmp_info is not None:
        rows.append(("ICMP type, code", html.escape(f"{rule.icmp_info[0]}, {rule.icmp_info[1]}")))
    rows.append(("log", "yes" if rule.log else "no"))
    if rule.annotations:
        rows.append(("annotations", "<br>".join(html.escape(text) for text in rule.annotations)))
    if rule.description is not None:
        rows.append(("description", html.escape(rule.description)))
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="registry-config-egress-rule"><caption>EgressRule</caption>{body}</table>'
