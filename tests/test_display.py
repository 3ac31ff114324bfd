"""Plans, snapshots and probe results as a person sees them: ``to_text``, notebooks' HTML, IPython's pretty text."""

from __future__ import annotations

import html.parser
import ipaddress

import pytest
from _integration import need_module
from hypothesis import given
from hypothesis import strategies as st

from registry_config import (
    Discovery,
    ProbeResult,
    RegistryConfigWarning,
    RegistrySpec,
    SecurityMode,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
    build_plan,
    plan_from_discovery,
)
from registry_config.plan import query_for

SEED = "http://docker_registry.service.dc1.consul:8080"
ALLOWED_TAGS = {"table", "caption", "tr", "th", "td", "code", "br"}


class Parsed(html.parser.HTMLParser):
    """The tags, attributes and text of an HTML fragment; HTML entities decoded as a browser would."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag == "br" and self.rows:
            self.rows[-1].append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.rows:
            self.rows[-1].append(data)

    def cells(self) -> dict[str, str]:
        """Each row's header and its cell's text (the header is the first piece of text in the row)."""
        table = {}
        for row in self.rows:
            header, *rest = row
            table[header] = "".join(rest)
        return table


def test_plan_html_is_a_compact_table_of_everything_a_reader_acts_on() -> None:
    plan = build_plan(SEED, StaticBackend(["10.0.0.2", "10.0.0.1", "169.254.169.254"]))
    parsed = Parsed(plan._repr_html_())
    assert set(parsed.tags) <= ALLOWED_TAGS
    cells = parsed.cells()
    assert cells["builder flags"] == plan.builder_command_line
    assert cells["insecure registries"].split("\n") == list(plan.insecure_registries)
    assert cells["instances (2)"].split("\n") == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert cells["egress rules (1)"] == str(plan.egress_rules[0])  # the rule's own text (tcp, destinations, ports)
    assert plan.egress_rules[0].ports == (8080,)
    assert cells["rejected (1)"] == f"169.254.169.254:8080: {plan.rejected[0].reason}"
    assert "metadata" in plan.rejected[0].reason
    assert cells["warnings (0)"] == "\u2014"
    assert cells["discovery"] == "docker_registry in dc1 via static"
    caption = "".join(parsed.text).split("builder flags")[0]
    assert caption == f"StagingPlan for {SEED} (http, insecure)"


def test_plan_html_says_an_implied_port() -> None:
    plan = build_plan("https://registry.internal", StaticBackend(["10.0.0.1"]))
    assert "port 443 is the https default" in Parsed(plan._repr_html_()).text[0]


def test_plan_html_of_fifty_instances_stays_one_table_row_per_field() -> None:
    found = [f"10.0.{n // 200}.{n % 200 + 1}" for n in range(50)]
    plan = build_plan(SEED, StaticBackend(found))
    parsed = Parsed(plan._repr_html_())
    assert parsed.tags.count("tr") == 7
    assert len(parsed.cells()["instances (50)"].split("\n")) == 50


hostile = (
    st.lists(
        st.sampled_from(
            ["<", ">", "&", '"', "'", "a", " ", "/", "=", "script", "img", "onerror", "\u2028", "é", "&lt;"]
        ),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(lambda text: text.strip() == text and bool(text))
)


@given(source=hostile, warning=hostile)
def test_every_value_in_the_html_is_escaped(source: str, warning: str) -> None:
    spec = RegistrySpec.from_url(SEED)
    discovery = Discovery(
        query_for(spec), [ServiceInstance("10.0.0.1", 8080)], source=source, warnings=[warning], stale=True
    )
    plan = plan_from_discovery(spec, discovery)
    for text in (plan._repr_html_(), discovery._repr_html_()):
        parsed = Parsed(text)
        assert set(parsed.tags) <= ALLOWED_TAGS  # no tag of the hostile text became markup
        assert {name for name, _ in parsed.attributes} <= {"class", "style"}
        shown = "".join(parsed.text)
        assert warning in shown
        assert source in shown


def test_to_text_is_what_the_cli_prints() -> None:
    plan = build_plan(SEED, StaticBackend(["10.0.0.2", "10.0.0.1", "169.254.169.254"]))
    destinations = ",".join(plan.egress_rules[0].destinations)  # compaction's business: 10.0.0.1/31 or a range
    width = max(len(destinations), len("DESTINATIONS"))
    assert plan.to_text() == (
        f"registry   {SEED}  (http, insecure)\n"
        "instances  2 kept, 1 rejected  (service docker_registry in dc1, via static)\n"
        "\n"
        "builder flags:\n"
        f"  -dockerRegistryURL {SEED} -insecureDockerRegistries "
        "10.0.0.1:8080,10.0.0.2:8080,docker_registry.service.dc1.consul:8080\n"
        "\n"
        "egress rules:\n"
        f"  PROTOCOL  {'DESTINATIONS':<{width}}  PORTS\n"
        f"  tcp       {destinations:<{width}}  8080\n"
        "\n"
        "rejected:\n"
        f"  169.254.169.254:8080  {plan.rejected[0].reason}\n"
    )


def test_to_text_shows_warnings_and_an_implied_port() -> None:
    spec = RegistrySpec.from_url("http://10.0.0.9", skip_ssl_validation=True)
    with pytest.warns(RegistryConfigWarning, match="no effect"):
        plan = build_plan(spec, StaticBackend(["10.0.0.1"]))
    text = plan.to_text()
    assert "\n           port 80 is the http default, used when the URL names no port\n" in text
    assert text.endswith(f"\nwarnings:\n  {plan.warnings[0]}\n")


def test_ipython_pretty_prints_the_text_not_the_repr() -> None:
    pretty = need_module("IPython.lib.pretty", package="ipython")
    plan = build_plan(SEED, StaticBackend(["10.0.0.1"]))
    assert pretty.pretty(plan) == plan.to_text().rstrip("\n")
    discovery = plan.discovery
    assert pretty.pretty(discovery) == discovery.to_text().rstrip("\n")


def test_discovery_text_and_html() -> None:
    query = ServiceQuery("docker_registry", datacenter="dc1", tags=("primary",), default_port=8080)
    discovery = Discovery(
        query,
        [
            ServiceInstance("10.0.0.2", 5000, node="cell-2", tags=("primary", "v2"), healthy=False),
            ServiceInstance("10.0.0.1", 5000, node="cell-1", healthy=True),
        ],
        source="consul",
        index=7,
        stale=True,
    )
    assert discovery.to_text() == (
        "service    docker_registry in dc1 tagged primary  (via consul; index 7, STALE)\n"
        "instances  2\n"
        "  ENDPOINT       NODE    HEALTHY  TAGS\n"
        "  10.0.0.1:5000  cell-1  yes      -\n"
        "  10.0.0.2:5000  cell-2  no       primary,v2\n"
    )
    cells = Parsed(discovery._repr_html_()).cells()
    assert cells["source"] == "consul (STALE)"
    assert cells["index"] == "7"
    assert (
        cells["instances (2)"]
        == "10.0.0.1:5000 node cell-1 healthy\n10.0.0.2:5000 node cell-2 tags primary,v2 UNHEALTHY"
    )


def probe(target: str, *, matches: bool, diagnosis: str, instances: tuple[ProbeResult, ...] = ()) -> ProbeResult:
    return ProbeResult(
        reachable=True,
        status=401 if matches else 400,
        api_version="registry/2.0" if matches else None,
        auth_challenge='Bearer realm="https://auth.example/token"' if matches else None,
        observed=SecurityMode.HTTPS_VERIFIED if matches else None,
        matches=matches,
        diagnosis=diagnosis,
        instances=instances,
        target=target,
    )


def test_probe_result_displays() -> None:
    bad = probe("10.0.0.2:5000 as registry.internal", matches=False, diagnosis="not a <registry> & says so")
    result = probe("https://registry.internal:5000", matches=True, diagnosis="answers as configured", instances=(bad,))
    parsed = Parsed(result._repr_html_())
    assert set(parsed.tags) <= ALLOWED_TAGS
    cells = parsed.cells()
    assert cells["answer"] == "HTTP 401, registry/2.0, Bearer auth"
    assert cells["observed"] == "https-verified"
    assert cells["verdict"] == "as configured"
    assert cells["instance 10.0.0.2:5000 as registry.internal"] == (
        "NOT A REGISTRY (HTTP 400; observed -)\nnot a <registry> & says so"
    )
    pretty = need_module("IPython.lib.pretty", package="ipython")
    shown = pretty.pretty(result)
    assert shown.splitlines()[:4] == [
        "registry   https://registry.internal:5000",
        "answer     HTTP 401, registry/2.0, Bearer auth",
        "observed   https-verified",
        "verdict    as configured",
    ]
    assert "  10.0.0.2:5000 as registry.internal  NOT A REGISTRY  (HTTP 400; observed -)" in shown


def test_an_ipv6_plan_displays_bracketed_endpoints() -> None:
    plan = build_plan("http://[fd00::1]:5000", StaticBackend(["[fd00::2]:5000"]))
    cells = Parsed(plan._repr_html_()).cells()
    assert cells["instances (2)"].split("\n") == ["[fd00::1]:5000", "[fd00::2]:5000"]
    assert ipaddress.ip_address("fd00::2") in {i.address for i in plan.instances}


def test_to_text_says_when_the_urls_own_address_was_added() -> None:
    added = build_plan("http://10.244.2.9:5000", StaticBackend(["10.244.2.6"])).to_text()
    assert added.splitlines()[1:3] == [
        "instances  2 kept, 0 rejected  (service 10.244.2.9, via static)",
        "           the URL's own address 10.244.2.9:5000 counts as an instance: the builder contacts it",
    ]
    found = build_plan("http://10.244.2.9:5000", StaticBackend(["10.244.2.9", "10.244.2.6"])).to_text()
    assert "counts as an instance" not in found
    named = build_plan(SEED, StaticBackend(["10.0.0.1"])).to_text()
    assert "counts as an instance" not in named
