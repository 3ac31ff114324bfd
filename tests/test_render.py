"""Renderers: every output parsed back by the format's own reader, and checked."""

from __future__ import annotations

import builtins
import json
import sys
import warnings
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import host_ports, hostile_text, registry_specs

from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery
from registry_config.errors import InvalidInput, RegistryConfigError, RegistryConfigWarning
from registry_config.plan import StagingPlan, plan_from_discovery
from registry_config.policy import InsecurityPolicy
from registry_config.render import (
    ContainerdHostsFile,
    containerd_host_directory,
    render_containerd_hosts,
    render_daemon_json,
    render_registries_conf,
    render_tree,
)
from registry_config.spec import RegistrySpec, SecurityMode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

CONSUL_URL = "docker_registry.service.dc1.consul:8080"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _plan(url: str, *, skip: bool = False, extra: tuple[str, ...] = ()) -> StagingPlan:
    spec = RegistrySpec.from_url(url, skip_ssl_validation=skip)
    query = ServiceQuery("docker_registry", default_port=spec.port)
    found = Discovery(
        query, [ServiceInstance("10.244.2.7", spec.port), ServiceInstance("10.244.2.6", spec.port)], source="test"
    )
    return plan_from_discovery(spec, found, extra_insecure=extra)


def _parsed(files: tuple[ContainerdHostsFile, ...]) -> dict[str, dict[str, Any]]:
    return {hosts_file.directory: tomllib.loads(hosts_file.content) for hosts_file in files}


# daemon.json


def test_daemon_json_from_the_go_stager_example() -> None:
    plan = _plan("http://10.244.2.6:8080")
    data = json.loads(render_daemon_json(plan))
    assert data == {"insecure-registries": ["10.244.2.6:8080", "10.244.2.7:8080"]}


def test_daemon_json_merge_keeps_every_other_key_and_order() -> None:
    existing = (
        '{"log-driver": "journald", "insecure-registries": ["10.244.2.7:8080", "old.example:5000"],'
        ' "registry-mirrors": ["https://mirror.example"], "features": {"buildkit": true}}'
    )
    with pytest.warns(RegistryConfigWarning, match="left out 'docker_registry.service.dc1.consul:8080'"):
        text = render_daemon_json(_plan(f"http://{CONSUL_URL}"), existing=existing)
    data = json.loads(text)
    assert list(data) == ["log-driver", "insecure-registries", "registry-mirrors", "features"]
    assert data["log-driver"] == "journald"
    assert data["registry-mirrors"] == ["https://mirror.example"]
    assert data["features"] == {"buildkit": True}
    # The Consul name has an underscore: dockerd would refuse to start, so it is left out.
    assert data["insecure-registries"] == ["10.244.2.7:8080", "old.example:5000", "10.244.2.6:8080"]
    assert text.endswith("}\n")
    # Rendering again over its own output changes nothing: deterministic and deduplicated.
    with pytest.warns(RegistryConfigWarning):
        assert render_daemon_json(_plan(f"http://{CONSUL_URL}"), existing=text) == text


def test_daemon_json_leaves_out_names_dockerd_refuses() -> None:
    policy = InsecurityPolicy.from_entries(
        ["docker_registry.service.consul:8080", "ok-name.consul:8080", "10.0.0.1:80"]
    )
    with pytest.warns(RegistryConfigWarning) as caught:
        data = json.loads(render_daemon_json(policy))
    assert data["insecure-registries"] == ["10.0.0.1:80", "ok-name.consul:8080"]
    (warning,) = caught
    assert str(warning.message).startswith("daemon.json: left out 'docker_registry.service.consul:8080': dockerd")
    assert warning.filename == __file__, "the warning points at the caller"
    # An operator's own entry is theirs: kept as it is.
    with pytest.warns(RegistryConfigWarning):
        kept = json.loads(render_daemon_json(policy, existing={"insecure-registries": ["my_host:1"]}))
    assert kept["insecure-registries"][0] == "my_host:1"


def test_daemon_json_dedupes_by_docker_key_not_text() -> None:
    policy = InsecurityPolicy.from_entries(["registry.example:5000"])
    data = json.loads(render_daemon_json(policy, existing={"insecure-registries": ["Registry.Example:5000"]}))
    assert data["insecure-registries"] == ["Registry.Example:5000"]


def test_daemon_json_of_a_verified_registry_adds_nothing() -> None:
    data = json.loads(render_daemon_json(_plan("https://registry.example:5000"), existing='{"debug": true}'))
    assert data == {"debug": True, "insecure-registries": []}


def test_daemon_json_from_a_policy_keeps_networks() -> None:
    policy = InsecurityPolicy.from_entries(["10.0.0.0/8", "registry.example:5000"])
    assert json.loads(render_daemon_json(policy, existing="  \n"))["insecure-registries"] == list(policy.entries)


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ("[1, 2]", "holds a JSON list, not an object"),
        ('"text"', "holds a JSON str, not an object"),
        ("{not json", "is not valid JSON (line 1, column 2"),
        (b"\xff\xfe", "is not UTF-8 text"),
        ('{"insecure-registries": "10.0.0.1:5000"}', "'insecure-registries' must be a list of strings"),
        ('{"insecure-registries": [5000]}', "'insecure-registries' must be a list of strings"),
    ],
)
def test_daemon_json_refuses_an_existing_file_it_cannot_merge(existing: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=r"existing daemon\.json") as caught:
        render_daemon_json(_plan("http://10.244.2.6:8080"), existing=existing)
    assert message in str(caught.value)


def test_something_that_is_neither_plan_nor_policy_is_refused() -> None:
    with pytest.raises(InvalidInput, match="give a plan"):
        render_daemon_json(["10.0.0.1:5000"])  # type: ignore[arg-type]


# containerd hosts.toml


@pytest.mark.parametrize(
    ("host", "port", "scheme", "directory"),
    [
        ("registry.example", 5000, "https", "registry.example:5000"),
        ("registry.example", 443, "https", "registry.example"),
        ("registry.example", 80, "http", "registry.example"),
        ("registry.example", 443, "http", "registry.example:443"),
        ("10.0.0.1", None, "https", "10.0.0.1"),
        ("fd00::1", 5000, "https", "[fd00::1]:5000"),
        ("fd00::1", 443, "https", "[fd00::1]"),
    ],
)
def test_containerd_directory_is_the_host_as_image_references_write_it(
    host: str, port: int | None, scheme: str, directory: str
) -> None:
    assert containerd_host_directory(host, port, scheme=scheme) == directory


def test_containerd_http_registry_and_its_instances() -> None:
    files = render_containerd_hosts(_plan(f"http://{CONSUL_URL}"))
    assert [hosts_file.directory for hosts_file in files] == [CONSUL_URL, "10.244.2.6:8080", "10.244.2.7:8080"]
    assert files[0].path() == f"/etc/containerd/certs.d/{CONSUL_URL}/hosts.toml"
    assert files[1].path("/srv/certs.d") == "/srv/certs.d/10.244.2.6:8080/hosts.toml"
    for directory, data in _parsed(files).items():
        url = f"http://{directory}"
        assert data == {"server": url, "host": {url: {"capabilities": ["pull", "resolve"]}}}


def test_containerd_self_signed_registry_skips_verification_and_names_a_ca() -> None:
    files = render_containerd_hosts(_plan(f"https://{CONSUL_URL}", skip=True), ca="/etc/ssl/registry-ca.pem")
    for directory, data in _parsed(files).items():
        url = f"https://{directory}"
        assert data["server"] == url
        assert data["host"][url] == {
            "capabilities": ["pull", "resolve"],
            "skip_verify": True,
            "ca": "/etc/ssl/registry-ca.pem",
        }


def test_containerd_verified_registry_on_the_default_port_under_both_names() -> None:
    # containerd looks up "registry.example" for registry.example/app and "registry.example:443" for
    # registry.example:443/app: both directories, each naming the server as the reference does.
    files = render_containerd_hosts(_plan("https://registry.example"))
    assert [hosts_file.directory for hosts_file in files] == ["registry.example:443", "registry.example"]
    for directory, data in _parsed(files).items():
        url = f"https://{directory}"
        assert data == {"server": url, "host": {url: {"capabilities": ["pull", "resolve"]}}}


@pytest.mark.parametrize(("url", "port"), [("http://registry.example", 80), ("https://registry.example:443", 443)])
def test_every_renderer_writes_both_default_port_forms(url: str, port: int) -> None:
    plan = _plan(url, skip=url.startswith("https"))
    names = {"registry.example", f"registry.example:{port}", "10.244.2.6", f"10.244.2.6:{port}"}
    assert names <= set(json.loads(render_daemon_json(plan))["insecure-registries"])
    assert names <= {f.directory for f in render_containerd_hosts(plan)}
    assert names <= {r["location"] for r in tomllib.loads(render_registries_conf(plan))["registry"]}


def test_containerd_extra_entries_of_a_verified_plan_get_dockers_fallback() -> None:
    # The extra's flavour is unknown: https without verification first, then http, as Docker does.
    files = render_containerd_hosts(
        _plan("https://registry.example:5000", extra=("legacy.example:5001",)), ca="/etc/ssl/ca.pem"
    )
    data = _parsed(files)
    own = data["registry.example:5000"]
    assert own["host"] == {
        "https://registry.example:5000": {"capabilities": ["pull", "resolve"], "ca": "/etc/ssl/ca.pem"}
    }
    legacy = data["legacy.example:5001"]
    assert list(legacy["host"]) == ["https://legacy.example:5001", "http://legacy.example:5001"]
    assert legacy["host"]["https://legacy.example:5001"] == {"capabilities": ["pull", "resolve"], "skip_verify": True}
    assert legacy["host"]["http://legacy.example:5001"] == {"capabilities": ["pull", "resolve"]}
    assert legacy["server"] == "http://legacy.example:5001"


def test_an_insecure_plans_own_instances_stay_in_its_flavour_and_extras_fall_back() -> None:
    data = _parsed(render_containerd_hosts(_plan("http://10.244.2.6:8080", extra=("10.0.0.9:5000",))))
    assert list(data["10.244.2.7:8080"]["host"]) == ["http://10.244.2.7:8080"]
    assert list(data["10.0.0.9:5000"]["host"]) == ["https://10.0.0.9:5000", "http://10.0.0.9:5000"]


def test_an_ipv6_registry_is_written_so_containerd_1_6_can_read_it() -> None:
    # go-toml v1 (containerd 1.6) cuts [host."http://[fd00::1]:5000"] at the first ']': no table headers.
    (hosts_file,) = render_containerd_hosts(_plan("http://[fd00::1]:5000"))[:1]
    assert '\n[host]\n"http://[fd00::1]:5000" = { capabilities = ["pull", "resolve"] }\n' in hosts_file.content
    assert "[host." not in hosts_file.content


@pytest.mark.parametrize("ca", ["ca.pem", "./certs/ca.pem", "", "line\nbreak", 5])
def test_a_ca_path_containerd_would_misread_is_refused(ca: object) -> None:
    with pytest.raises(InvalidInput, match="CA path"):
        render_containerd_hosts(_plan("https://registry.example"), ca=ca)  # type: ignore[arg-type]


def test_containerd_from_a_policy_leaves_networks_out_and_takes_the_mode_asked_for() -> None:
    policy = InsecurityPolicy.from_entries(["10.0.0.0/8", "[fd00::1]:5000", "registry.example"])
    default = _parsed(render_containerd_hosts(policy))
    assert set(default) == {"[fd00::1]:5000", "registry.example"}
    assert default["[fd00::1]:5000"]["host"]["https://[fd00::1]:5000"]["skip_verify"] is True
    assert default["[fd00::1]:5000"]["server"] == "http://[fd00::1]:5000"
    plain = _parsed(render_containerd_hosts(policy, security=SecurityMode.HTTP))
    assert plain["registry.example"]["server"] == "http://registry.example"


# registries.conf


def test_registries_conf_lists_each_registry_insecure_but_names_it_refuses() -> None:
    with pytest.warns(RegistryConfigWarning, match=f"registries.conf: left out '{CONSUL_URL}': Podman"):
        text = render_registries_conf(_plan(f"http://{CONSUL_URL}"))
    assert text.count("[[registry]]") == 2
    assert tomllib.loads(text) == {
        "registry": [
            {"location": "10.244.2.6:8080", "insecure": True},
            {"location": "10.244.2.7:8080", "insecure": True},
        ]
    }


def test_registries_conf_of_a_verified_registry() -> None:
    data = tomllib.loads(render_registries_conf(_plan("https://registry.example:443")))
    assert data == {
        "registry": [
            {"location": "registry.example:443", "insecure": False},
            {"location": "registry.example", "insecure": False},
        ]
    }


def test_registries_conf_names_the_networks_it_cannot_hold() -> None:
    text = render_registries_conf(InsecurityPolicy.from_entries(["10.0.0.0/8", "192.168.0.0/16"]))
    assert "# Left out (registries.conf has no networks): 10.0.0.0/8, 192.168.0.0/16" in text
    assert tomllib.loads(text) == {}


def test_missing_tomli_w_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_tomli_w(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tomli_w":
            raise ImportError("No module named 'tomli_w'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tomli_w", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_tomli_w)
    for render in (render_registries_conf, render_containerd_hosts):
        with pytest.raises(RegistryConfigError, match=r"needs tomli-w: pip install 'registry-config\[toml\]'") as e:
            render(_plan("http://10.244.2.6:8080"))
        assert not isinstance(e.value, InvalidInput)


# Hostile input: whatever a policy or plan accepts renders to files their readers accept, and the runtimes agree.


def _json_strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    text.encode("utf-8")  # strictly: a lone surrogate fails here
    return json.loads(text, parse_constant=refuse)


def _rendered(source: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """Every renderer's output parsed back; only RegistryConfigWarnings may be issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        daemon = _json_strict(render_daemon_json(source))
        hosts = _parsed(render_containerd_hosts(source, **kwargs))
        conf = tomllib.loads(render_registries_conf(source, **kwargs))
    assert all(issubclass(w.category, RegistryConfigWarning) for w in caught), [str(w.message) for w in caught]
    for directory, data in hosts.items():
        assert "/" not in directory
        assert directory not in ("", ".", "..")
        assert directory.isprintable()
        assert data["server"].endswith(f"://{directory}")
        assert all(url.endswith(f"://{directory}") for url in data["host"])
    return daemon, hosts, conf


_HOSTILE_ENTRIES = st.one_of(
    host_ports(), hostile_text(base=host_ports()), st.sampled_from(["10.0.0.0/8", "fd00::/8", "a_b.consul:5000"])
)


@given(entries=st.lists(_HOSTILE_ENTRIES, max_size=6), mode=st.sampled_from([None, *SecurityMode]))
def test_any_policy_renders_to_files_their_readers_accept(entries: list[str], mode: SecurityMode | None) -> None:
    try:
        policy = InsecurityPolicy.from_entries(entries)
    except InvalidInput:
        return  # refused with the library's own error: nothing to render
    daemon, hosts, conf = _rendered(policy, security=mode)
    # Docker gets every entry but the names dockerd refuses; nothing it would choke on.
    assert list(daemon["insecure-registries"]) == [e for e in policy.entries if "_" not in e.split(":")[0]]
    for entry in daemon["insecure-registries"]:
        assert not any(c.isspace() or c == "," for c in entry)
    locations = [r["location"] for r in conf.get("registry", [])]
    assert not any("_" in location for location in locations)
    # containers lists every name containerd has, except those it refuses.
    assert locations == [d for d in hosts if "_" not in d]
    for data in hosts.values():
        schemes = [url.partition(":")[0] for url in data["host"]]
        assert schemes == (["https", "http"] if mode is None else [mode.scheme])


@given(
    spec=registry_specs(),
    instances=st.lists(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="fd00::/8"), max_size=4),
    extras=st.lists(hostile_text(base=host_ports(port=True)) | host_ports(port=True), max_size=3),
)
def test_any_plan_renders_files_on_which_the_runtimes_agree(
    spec: RegistrySpec, instances: list[Any], extras: list[str]
) -> None:
    query = ServiceQuery("registry", default_port=spec.port)
    try:
        with warnings.catch_warnings(record=True):  # the plan's notices (an IP-literal URL alone, ...)
            warnings.simplefilter("always", RegistryConfigWarning)
            plan = plan_from_discovery(
                spec,
                Discovery(query, [ServiceInstance(ip, spec.port) for ip in instances], source="t"),
                extra_insecure=extras,
                allow_empty=True,
            )
    except InvalidInput:
        return
    daemon, hosts, conf = _rendered(plan)
    locations = {r["location"] for r in conf.get("registry", [])}
    # What Docker treats as insecure, containerd and containers are configured for too, by the same name.
    for name in daemon["insecure-registries"]:
        assert name in hosts
        assert name in locations
    for name in plan.insecure_registries:
        assert name in hosts
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        tree = render_tree(plan, ca_pem=PEM, root="/srv/root")
    for file in tree:
        parts = file.path.split("/")
        assert parts[0] == "etc"
        assert ".." not in parts
        assert "" not in parts
    for file in tree:
        if file.path.endswith("hosts.toml"):
            for settings in tomllib.loads(file.content.decode())["host"].values():
                assert "ca" not in settings or settings["ca"].startswith("/srv/root/etc/containerd/certs.d/")


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["\udcff", "\ud800x", 10**400, -(10**4299)]),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@given(
    existing=st.dictionaries(st.text(max_size=8), _JSON, max_size=4),
    as_text=st.booleans(),
    ascii_only=st.booleans(),
)
def test_any_existing_daemon_json_is_merged_or_refused_with_a_typed_error(
    existing: dict[str, Any], as_text: bool, ascii_only: bool
) -> None:
    existing.pop("insecure-registries", None)
    source: Any = json.dumps(existing, ensure_ascii=ascii_only) if as_text else existing
    plan = _plan("http://10.244.2.6:8080")
    try:
        text = render_daemon_json(plan, existing=source)
    except InvalidInput as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith("existing daemon.json")
        return
    merged = _json_strict(text)
    assert merged.pop("insecure-registries") == ["10.244.2.6:8080", "10.244.2.7:8080"]
    assert merged == existing


@given(text=hostile_text(base=st.just('{"debug": true, "insecure-registries": ["a.example:5000"]}')))
def test_any_existing_text_is_merged_or_refused_with_a_typed_error(text: str) -> None:
    try:
        merged = render_daemon_json(_plan("http://10.244.2.6:8080"), existing=text)
    except InvalidInput as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith("existing daemon.json")
        return
    assert "10.244.2.6:8080" in _json_strict(merged)["insecure-registries"]


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ('{"n": ' + "9" * 5000 + "}", "holds a number of 5000 digits"),
        ('{"n": -' + "9" * 5000 + "}", "holds a number of 5001 digits"),
        ('{"n": ' + "9" * 5000 + ".5}", "too large for dockerd to read"),
        ('{"n": 1e400}', "holds the number '1e400', too large"),
        ('{"n": NaN}', "holds NaN, which is not JSON"),
        ('{"n": [-Infinity]}', "holds -Infinity, which is not JSON"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply to read"),
        ('{"labels": ["\\udcff"]}', "holds a lone surrogate ('\\udcff')"),
        ({"n": float("nan")}, "cannot be written back as JSON"),
        ({"n": {1, 2}}, "cannot be written back as JSON"),
    ],
)
def test_an_existing_daemon_json_that_cannot_be_written_back_is_a_typed_error(existing: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        render_daemon_json(_plan("http://10.244.2.6:8080"), existing=existing)
    assert message in str(caught.value)
    assert str(caught.value).startswith("existing daemon.json")


def test_a_deeply_nested_mapping_is_a_typed_error() -> None:
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(InvalidInput, match="nested too deeply to write back"):
        render_daemon_json(_plan("http://10.244.2.6:8080"), existing={"a": nested})


def test_a_plain_attrs_plan_works_too() -> None:
    @attrs.frozen
    class Plan:
        spec: RegistrySpec
        insecure_registries: tuple[str, ...]

    plan = Plan(RegistrySpec.from_url("http://10.0.0.5:5000"), ("10.0.0.5:5000", "10.0.0.6:5000"))
    assert json.loads(render_daemon_json(plan))["insecure-registries"] == ["10.0.0.5:5000", "10.0.0.6:5000"]
    assert [f.directory for f in render_containerd_hosts(plan)] == ["10.0.0.5:5000", "10.0.0.6:5000"]


# Mirroring: the plan's registry as a pull-through cache of an upstream (Docker Hub).


def test_daemon_json_mirrors_docker_hub_only() -> None:
    plan = _plan("http://mirror.example:5000")
    data = json.loads(
        render_daemon_json(plan, mirror_of=("docker.io",), existing='{"registry-mirrors": ["https://m"]}')
    )
    assert data["registry-mirrors"] == ["https://m", "http://mirror.example:5000"]
    assert "mirror.example:5000" in data["insecure-registries"], "an http mirror must be insecure for Docker too"
    with pytest.warns(RegistryConfigWarning, match="Docker mirrors Docker Hub only: no mirror of 'quay.io'"):
        other = json.loads(render_daemon_json(plan, mirror_of=("quay.io",)))
    assert "registry-mirrors" not in other


def test_daemon_json_mirror_named_by_a_consul_name_is_left_out_with_a_warning() -> None:
    with pytest.warns(RegistryConfigWarning) as caught:
        data = json.loads(render_daemon_json(_plan(f"http://{CONSUL_URL}"), mirror_of=("index.docker.io",)))
    assert "registry-mirrors" not in data
    assert any("left out the mirror 'http://docker_registry" in str(w.message) for w in caught)


def test_containerd_mirror_hosts_are_the_plans_registry_and_instances() -> None:
    files = render_containerd_hosts(_plan("https://registry.example:5000", skip=True), mirror_of=("docker.io",))
    mirror = _parsed(files)["docker.io"]
    assert mirror["server"] == "https://registry-1.docker.io"
    assert mirror["host"] == {
        f"https://{name}": {"capabilities": ["pull", "resolve"], "skip_verify": True}
        for name in ("registry.example:5000", "10.244.2.6:5000", "10.244.2.7:5000")
    }
    verified = render_containerd_hosts(_plan("https://registry.example:5000"), mirror_of=["quay.io"], ca="/ca.pem")
    assert _parsed(verified)["quay.io"] == {
        "server": "https://quay.io",
        "host": {"https://registry.example:5000": {"capabilities": ["pull", "resolve"], "ca": "/ca.pem"}},
    }


def test_registries_conf_mirror_under_the_upstreams_prefix() -> None:
    conf = tomllib.loads(render_registries_conf(_plan("http://10.244.2.6:8080"), mirror_of="registry-1.docker.io"))
    (hub,) = [r for r in conf["registry"] if r.get("prefix") == "docker.io"]
    assert hub["location"] == "docker.io"
    assert hub["mirror"] == [
        {"location": "10.244.2.6:8080", "insecure": True},
        {"location": "10.244.2.7:8080", "insecure": True},
    ]


@pytest.mark.parametrize("upstream", ["", "https://docker.io", "docker.io/library", 5])
def test_a_mirror_upstream_that_is_not_a_registry_name_is_refused(upstream: object) -> None:
    with pytest.raises(InvalidInput, match=r"mirror_of\[0\]"):
        render_registries_conf(_plan("http://10.244.2.6:8080"), mirror_of=[upstream])  # type: ignore[list-item]
