"""render_auth_json: the login under every name a runtime looks it up by, merged into the operator's file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config import Credentials, RegistrySpec, StaticBackend, build_plan, render_auth_json
from registry_config.auth import auth_names, write_auth_json
from registry_config.egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard
from registry_config.errors import InvalidInput, InvalidRegistryURL

LOGIN = Credentials("alice", "s3cret:pw")
AUTH = base64.b64encode(b"alice:s3cret:pw").decode()


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("https://registry.example", ("registry.example:443", "registry.example")),
        ("https://registry.example:443", ("registry.example:443", "registry.example")),
        ("http://registry.example", ("registry.example:80", "registry.example")),
        ("https://registry.example:5000", ("registry.example:5000",)),
        ("http://registry.example:443", ("registry.example:443",)),  # 443 is not http's default port
        ("https://[fd00::1]", ("[fd00::1]:443", "[fd00::1]")),
        ("http://10.0.0.5:5000", ("10.0.0.5:5000",)),
    ],
)
def test_names_follow_the_default_port_facts(url: str, names: tuple[str, ...]) -> None:
    assert auth_names(url) == names
    assert auth_names(RegistrySpec.from_url(url)) == names
    auths = json.loads(render_auth_json(url, LOGIN))["auths"]
    assert list(auths) == list(names)
    assert all(entry == {"auth": AUTH} for entry in auths.values())


def test_a_plan_adds_every_instance() -> None:
    plan = build_plan(
        RegistrySpec.from_url("https://docker_registry.service.dc1.consul"),
        StaticBackend(["10.0.0.5:443", "10.0.0.6:5000", "[fd00::7]:443"]),
    )
    assert auth_names(plan) == (
        "docker_registry.service.dc1.consul:443",
        "docker_registry.service.dc1.consul",
        "10.0.0.5:443",
        "10.0.0.6:5000",
        "[fd00::7]:443",
    )


def test_an_ip_literal_registry_that_is_also_its_instance_is_named_once() -> None:
    guard = EgressGuard((*DEFAULT_ALLOWED_NETWORKS,))
    plan = build_plan(RegistrySpec.from_url("http://10.0.0.5:5000"), StaticBackend(["10.0.0.5"]), guard=guard)
    assert auth_names(plan) == ("10.0.0.5:5000",)


def test_merging_keeps_everything_else_and_replaces_our_entries_whole() -> None:
    existing = {
        "auths": {
            "other.example": {"auth": "b3RoZXI6cHc="},
            "registry.example:5000": {"auth": "old", "identitytoken": "would-win-over-auth"},
        },
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud"},
        "HttpHeaders": {"User-Agent": "x"},
    }
    text = render_auth_json("https://registry.example:5000", LOGIN, existing=json.dumps(existing))
    merged = json.loads(text)
    assert merged["credsStore"] == "desktop"
    assert merged["credHelpers"] == {"gcr.io": "gcloud"}
    assert merged["HttpHeaders"] == {"User-Agent": "x"}
    assert merged["auths"]["other.example"] == {"auth": "b3RoZXI6cHc="}
    assert merged["auths"]["registry.example:5000"] == {"auth": AUTH}
    assert list(merged) == ["auths", "credsStore", "credHelpers", "HttpHeaders"]  # order kept
    # The same from bytes and from a mapping; merging twice changes nothing.
    assert render_auth_json("https://registry.example:5000", LOGIN, existing=json.dumps(existing).encode()) == text
    assert render_auth_json("https://registry.example:5000", LOGIN, existing=existing) == text
    assert render_auth_json("https://registry.example:5000", LOGIN, existing=text) == text


@pytest.mark.parametrize(
    ("existing", "words"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"auths": []}', "'auths' is a JSON list"),
        ('{"auths": "x"}', "'auths' is a JSON str"),
        ('{"n": NaN}', "cannot be read"),
        ('{"n": Infinity}', "cannot be read"),
        ('{"n": ' + "1" * 5000 + "}", "cannot be read"),
        ('{"n": ' + "[" * 100000 + "]" * 100000 + "}", "cannot be read"),
        (b"\xff\xfe{}", "not UTF-8"),
        (42, "must be text or a mapping"),
    ],
)
def test_a_file_that_cannot_be_merged_into_is_a_clear_error(existing: Any, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        render_auth_json("https://registry.example", LOGIN, existing=existing)


def test_an_empty_file_is_a_new_one() -> None:
    assert json.loads(render_auth_json("https://r.example", LOGIN, existing="  \n")) == json.loads(
        render_auth_json("https://r.example", LOGIN)
    )


def test_a_mapping_holding_nan_is_refused_not_written() -> None:
    with pytest.raises(InvalidInput, match="NaN or Infinity"):
        render_auth_json("https://r.example", LOGIN, existing={"x": [float("nan")]})


def test_a_lone_surrogate_in_the_old_file_still_gives_text_that_encodes() -> None:
    text = render_auth_json("https://r.example", LOGIN, existing='{"note": "\\ud800 and caf\u00e9"}')
    text.encode("utf-8")
    assert json.loads(text)["note"] == "\ud800 and caf\u00e9"


def test_bad_sources_and_credentials() -> None:
    with pytest.raises(InvalidInput, match="give a plan"):
        render_auth_json(object(), LOGIN)  # type: ignore[arg-type]
    with pytest.raises(InvalidRegistryURL):
        render_auth_json("registry:5000", LOGIN)
    with pytest.raises(InvalidInput, match="must be a Credentials"):
        render_auth_json("https://r.example", ("alice", "pw"))  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    st.dictionaries(st.text(max_size=12), json_values, max_size=4),
)
def test_any_operator_file_keeps_its_other_keys(top: dict[str, Any], auths: dict[str, Any]) -> None:
    top.pop("auths", None)
    existing = {**top, "auths": auths}
    merged = json.loads(render_auth_json("https://registry.example", LOGIN, existing=json.dumps(existing)))
    names = set(auth_names("https://registry.example"))
    assert {key: value for key, value in merged.items() if key != "auths"} == top
    assert {key: value for key, value in merged["auths"].items() if key not in names} == {
        key: value for key, value in auths.items() if key not in names
    }
    assert all(merged["auths"][name] == {"auth": LOGIN.basic} for name in names)


def test_write_auth_json_creates_0600_and_merges_atomically(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    write_auth_json(path, "https://registry.example", LOGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["auths"]["registry.example"] == {"auth": AUTH}
    # An operator's wider file is narrowed; its other entries survive.
    path.write_text(json.dumps({"auths": {"other": {"auth": "x"}}}))
    os.chmod(path, 0o644)
    write_auth_json(path, "https://registry.example:5000", LOGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())["auths"]) == {"other", "registry.example:5000"}
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"]  # no temporary file left behind


def test_write_auth_json_leaves_a_broken_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{broken")
    with pytest.raises(InvalidInput, match=r"auth\.json.*not valid JSON"):
        write_auth_json(path, "https://registry.example", LOGIN)
    assert path.read_text() == "{broken"
