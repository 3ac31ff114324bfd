"""How plans, discovery snapshots and probe results show to a person: terminal text and notebook tables.

One place renders them, so the ``registry-config`` command, IPython's
``_repr_pretty_`` and a notebook's ``_repr_html_`` say the same things in the
same order: the flag, the instances, the rules, what was rejected and why,
and the warnings. The HTML is a compact table in which every value is
escaped: host names, reasons and warnings may echo text from a discovery
service or a user, and a notebook must show it, never run it.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .discovery.model import Discovery
    from .plan import StagingPlan
    from .probe import ProbeResult
    from .spec import RegistrySpec

__all__ = [
    "discovery_html",
    "discovery_text",
    "plan_html",
    "plan_text",
    "pretty",
    "probe_html",
    "probe_text",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- text ------------------------------------------------------------------------------------------------------


def _registry_line(spec: RegistrySpec) -> str:
    state = "insecure" if spec.is_insecure else "secure"
    line = f"registry   {spec.url}  ({spec.security.value}, {state})"
    if _DEFAULT_PORTS.get(spec.scheme) == spec.port:
        # A URL without a port gets its scheme's: say so, since a registry on :5000 is a common surprise.
        line += f"\n           port {spec.port} is the {spec.scheme} default, used when the URL names no port"
    return line


def _where(discovery: Discovery) -> str:
    query = discovery.query
    where = query.name + (f" in {query.datacenter}" if query.datacenter else "")
    if query.tags:
        where += f" tagged {','.join(query.tags)}"
    return where


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in rows
    ]


def _url_is_an_added_instance(plan: StagingPlan) -> bool:
    """The URL's host is an IP address that discovery did not list: the plan added it as an instance."""
    address = plan.spec.address
    planned = [i.endpoint for i in plan.instances] + [r.instance.endpoint for r in plan.rejected]
    return address in planned and address not in plan.discovery.endpoints


def plan_text(plan: StagingPlan) -> str:
    """The plan as ``registry-config plan`` prints it: the flags on one line to paste, the rules as a table."""
    discovery = plan.discovery
    stale = ", STALE" if discovery.stale else ""
    lines = [
        _registry_line(plan.spec),
        f"instances  {len(plan.instances)} kept, {len(plan.rejected)} rejected"
        f"  (service {_where(discovery)}, via {discovery.source}{stale})",
    ]
    if _url_is_an_added_instance(plan):
        own = plan.spec.address
        lines.append(f"           the URL's own address {own} counts as an instance: the builder contacts it")
    lines += [
        "",
        "builder flags:",
        f"  {plan.builder_command_line}",
        "",
        "egress rules:",
    ]
    rows = [("PROTOCOL", "DESTINATIONS", "PORTS")]
    rows += [(rule.protocol, ",".join(rule.destinations), rule.ports_text or "-") for rule in plan.egress_rules]
    lines += _table(rows) if len(rows) > 1 else ["  (none)"]
    if plan.rejected:
        lines += ["", "rejected:"]
        lines += _table([(r.instance.endpoint, r.reason) for r in plan.rejected])
    if plan.warnings:
        lines += ["", "warnings:"]
        lines += [f"  {warning}" for warning in plan.warnings]
    return "\n".join(lines) + "\n"


def discovery_text(discovery: Discovery) -> str:
    """A snapshot as text: what was asked, where, and one line per instance."""
    flags = []
    if discovery.index is not None:
        flags.append(f"index {discovery.index}")
    if discovery.stale:
        flags.append("STALE")
    lines = [
        f"service    {_where(discovery)}  (via {discovery.source}{'; ' + ', '.join(flags) if flags else ''})",
        f"instances  {len(discovery.instances)}",
    ]
    rows = [("ENDPOINT", "NODE", "HEALTHY", "TAGS")]
    rows += [(i.endpoint, i.node or "-", _healthy(i.healthy), ",".join(i.tags) or "-") for i in discovery.instances]
    if len(rows) > 1:
        lines += _table(rows)
    if discovery.warnings:
        lines += ["warnings:"] + [f"  {warning}" for warning in discovery.warnings]
    return "\n".join(lines) + "\n"


def _healthy(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _verdict(result: ProbeResult) -> str:
    if not result.reachable:
        return "UNREACHABLE"
    if result.matches:
        return "as configured"
    return "MISMATCH" if result.observed is not None else "NOT A REGISTRY"


def _answer(result: ProbeResult) -> str:
    if result.status is None:
        return "none"
    answer = f"HTTP {result.status}"
    if result.api_version:
        answer += f", {result.api_version}"
    if result.auth_challenge:
        answer += f", {result.auth_challenge.split(' ', 1)[0]} auth"
    return answer


def _observed(result: ProbeResult) -> str:
    return result.observed.value if result.observed is not None else "-"


def probe_text(result: ProbeResult, *, configured: str | None = None) -> str:
    """What was asked, what answered, the verdict and the sentence to act on; then each instance."""
    asked = f"  (configured {configured})" if configured else ""
    lines = [
        f"registry   {result.target or '-'}{asked}",
        f"answer     {_answer(result)}",
        f"observed   {_observed(result)}",
        f"verdict    {_verdict(result)}",
        textwrap.fill(result.diagnosis, width=100, initial_indent="  ", subsequent_indent="  "),
    ]
    if result.instances:
        lines += ["", "instances:"]
        for instance in result.instances:
            lines.append(
                f"  {instance.target}  {_verdict(instance)}  ({_answer(instance)}; observed {_observed(instance)})"
            )
            if not instance.matches:
                lines.append(
                    textwrap.fill(instance.diagnosis, width=100, initial_indent="    ", subsequent_indent="    ")
                )
    return "\n".join(lines) + "\n"


def pretty(text: str, name: str, printer: Any, cycle: bool) -> None:
    """IPython's ``_repr_pretty_``: the text, line by line (these values hold no cycles; guard anyway)."""
    if cycle:
        printer.text(f"{name}(...)")
        return
    for index, line in enumerate(text.rstrip("\n").split("\n")):
        if index:
            printer.break_()
        printer.text(line)


# -- HTML ------------------------------------------------------------------------------------------------------

_STYLE = "border-collapse:collapse;text-align:left;font-size:0.9em"
_CELL = "padding:2px 8px;vertical-align:top;text-align:left"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _list(items: Iterable[str], *, code: bool = False) -> str:
    """Escaped items, one per line; an em dash for none."""
    shown = [f"<code>{_e(item)}</code>" if code else _e(item) for item in items]
    return "<br>".join(shown) if shown else "&mdash;"


def _html_table(caption: str, rows: Sequence[tuple[str, str]]) -> str:
    """A two-column table; ``caption`` and the labels are escaped here, the cells arrive escaped."""
    body = "".join(
        f'<tr><th style="{_CELL}">{_e(label)}</th><td style="{_CELL}">{cell}</td></tr>' for label, cell in rows
    )
    return f'<table class="registry-config" style="{_STYLE}"><caption>{_e(caption)}</caption>{body}</table>'


def plan_html(plan: StagingPlan) -> str:
    """The plan as a compact HTML table: flag, instances, rules, rejected with reasons, warnings."""
    spec = plan.spec
    state = "insecure" if spec.is_insecure else "secure"
    caption = f"StagingPlan for {spec.url} ({spec.security.value}, {state})"
    if _DEFAULT_PORTS.get(spec.scheme) == spec.port:
        caption += f"; port {spec.port} is the {spec.scheme} default"
    discovery = plan.discovery
    source = f"{_where(discovery)} via {discovery.source}" + (" (STALE)" if discovery.stale else "")
    rows = [
        ("builder flags", f"<code>{_e(plan.builder_command_line)}</code>"),
        ("insecure registries", _list(plan.insecure_registries, code=True)),
        ("discovery", _e(source)),
        (f"instances ({len(plan.instances)})", _list((i.endpoint for i in plan.instances), code=True)),
        (f"egress rules ({len(plan.egress_rules)})", _list((str(rule) for rule in plan.egress_rules), code=True)),
        (
            f"rejected ({len(plan.rejected)})",
            "<br>".join(f"<code>{_e(r.instance.endpoint)}</code>: {_e(r.reason)}" for r in plan.rejected) or "&mdash;",
        ),
        (f"warnings ({len(plan.warnings)})", _list(plan.warnings)),
    ]
    return _html_table(caption, rows)


def discovery_html(discovery: Discovery) -> str:
    """A snapshot as a compact HTML table: query, source, index, instances (with node and tags), warnings."""
    instances = [
        f"<code>{_e(i.endpoint)}</code>"
        + (f" node {_e(i.node)}" if i.node else "")
        + (f" tags {_e(','.join(i.tags))}" if i.tags else "")
        + ("" if i.healthy is None else (" healthy" if i.healthy else " UNHEALTHY"))
        for i in discovery.instances
    ]
    rows = [
        ("source", _e(discovery.source) + (" (STALE)" if discovery.stale else "")),
        ("index", _e(discovery.index) if discovery.index is not None else "&mdash;"),
        (f"instances ({len(discovery.instances)})", "<br>".join(instances) or "&mdash;"),
        (f"warnings ({len(discovery.warnings)})", _list(discovery.warnings)),
    ]
    return _html_table(f"Discovery of {_where(discovery)}", rows)


def probe_html(result: ProbeResult) -> str:
    """A probe result as a compact HTML table: answer, observed mode, verdict, diagnosis, then each instance."""
    rows = [
        ("answer", _e(_answer(result))),
        ("observed", _e(_observed(result))),
        ("verdict", _e(_verdict(result))),
        ("diagnosis", _e(result.diagnosis)),
    ]
    for instance in result.instances:
        rows.append(
            (
                f"instance {instance.target}",
                f"{_e(_verdict(instance))} ({_e(_answer(instance))}; observed {_e(_observed(instance))})"
                + ("" if instance.matches else f"<br>{_e(instance.diagnosis)}"),
            )
        )
    return _html_table(f"ProbeResult for {result.target or '-'}", rows)
