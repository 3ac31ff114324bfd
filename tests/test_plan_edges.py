"""Tests written for the mutants of ``registry_config/plan.py`` that the module's tests let live (docs/mutation.md).

Each pins one behaviour a wrong answer in the plan's composition would change: a default, a keyword-only contract,
what an error names.
"""

from __future__ import annotations

import inspect

import pytest

from registry_config import (
    Discovery,
    InvalidAddress,
    NoInstancesError,
    RegistryConfigWarning,
    RegistrySpec,
    ServiceInstance,
    ServiceQuery,
    StaticBackend,
    build_plan,
)
from registry_config.plan import StagingPlan, plan_from_discovery, query_for

PLAIN = RegistrySpec.from_url("http://registry.test:8080")


def test_build_plan_compacts_its_egress_rules_by_default() -> None:
    """Two neighbouring addresses on one port are one /31 destination unless compaction is turned off: a default
    that turned it off would hand the stager one rule per instance (100k rules for 100k instances)."""
    backend = StaticBackend([ServiceInstance("10.0.0.0", 8080), ServiceInstance("10.0.0.1", 8080)])
    plan = build_plan(PLAIN, backend)
    assert [rule.destinations for rule in plan.egress_rules] == [("10.0.0.0/31",)]
    one_each = build_plan(PLAIN, backend, compact=False)
    assert [rule.destinations for rule in one_each.egress_rules] == [("10.0.0.0",), ("10.0.0.1",)]
    discovery = backend.discover(query_for(PLAIN))
    assert plan_from_discovery(PLAIN, discovery).egress_rules == plan.egress_rules


@pytest.mark.parametrize(
    ("function", "positional"),
    [
        (build_plan, {"spec", "backend"}),
        (plan_from_discovery, {"spec", "discovery"}),
        (query_for, {"spec"}),
        (StagingPlan.to_json, {"self"}),
    ],
    ids=["build_plan", "plan_from_discovery", "query_for", "to_json"],
)
def test_options_are_keyword_only(function: object, positional: set[str]) -> None:
    """Options are passed by name (``compact=False``, ``service=...``): a positional ``False`` or a name in the
    wrong slot would silently mean something else, so the signatures refuse them."""
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    assert {p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY} == positional
    with pytest.raises(TypeError):
        query_for(PLAIN, "other")  # type: ignore[misc]


def test_no_instances_names_the_datacenter_only_when_the_query_has_one() -> None:
    """The error says where discovery looked: ``in datacenter 'dc2'`` when one was asked for, nothing otherwise
    (a message naming ``None`` as the datacenter sends the operator looking for a datacenter that is not there)."""
    empty = StaticBackend([])
    with pytest.raises(NoInstancesError) as in_dc2:
        build_plan(PLAIN, empty, datacenter="dc2")
    assert "in datacenter 'dc2'" in str(in_dc2.value)
    with pytest.raises(NoInstancesError) as anywhere:
        build_plan(PLAIN, empty)
    assert "in datacenter" not in str(anywhere.value)
    query = ServiceQuery("registry", default_port=8080, datacenter="dc3")
    with pytest.raises(NoInstancesError, match="in datacenter 'dc3'"):
        plan_from_discovery(PLAIN, Discovery(query, [], source="static"))


def test_an_extra_registry_without_a_port_is_shown_cut_at_120_characters() -> None:
    """A long entry is shown cut to 120 characters in the error, the cut marked, so that a pasted file does not
    flood the terminal and the message stays one line."""
    host = ".".join(["a" * 60] * 4)  # 243 characters: a valid DNS name, longer than the limit
    with pytest.raises(InvalidAddress) as caught:
        build_plan(PLAIN, StaticBackend(["10.0.0.1:8080"]), extra_insecure=[host])
    assert repr(host[:117] + "...") in str(caught.value)
    assert host[:118] not in str(caught.value)


def test_an_extra_registry_with_a_comma_is_shown_cut_at_120_characters() -> None:
    """The comma error shows the entry cut to 120 characters too (the same limit as the port error)."""
    entry = "registry.test:5000," + "b" * 300
    with pytest.raises(InvalidAddress) as caught:
        build_plan(PLAIN, StaticBackend(["10.0.0.1:8080"]), extra_insecure=[entry])
    assert repr(entry[:117] + "...") in str(caught.value)
    assert entry[:118] not in str(caught.value)


def test_the_builder_command_line_is_text_a_person_can_paste() -> None:
    """``builder_command_line`` is a property holding the shell-quoted flags, not a method to call: templates and
    f-strings read it as an attribute."""
    plan = build_plan("http://10.0.0.1:5000", None)
    line = plan.builder_command_line
    assert isinstance(line, str)
    assert line == "-dockerRegistryURL http://10.0.0.1:5000 -insecureDockerRegistries 10.0.0.1:5000"


def test_a_plan_of_only_the_url_names_the_datacenter_discovery_looked_in() -> None:
    """When discovery finds nothing and the plan holds only the URL's own address, the warning says where it
    looked, the datacenter included when the query names one, and only then."""
    with pytest.warns(RegistryConfigWarning, match=r"found no instance of service 'registry' in datacenter 'dc2'"):
        build_plan("http://10.0.0.1:5000", StaticBackend([]), service="registry", datacenter="dc2")
    with pytest.warns(RegistryConfigWarning) as caught:
        build_plan("http://10.0.0.1:5000", StaticBackend([]), service="registry")
    assert [str(w.message) for w in caught if "in datacenter" in str(w.message)] == []
    assert any("found no instance of service 'registry':" in str(w.message) for w in caught)
