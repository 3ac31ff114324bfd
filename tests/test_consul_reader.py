"""The Consul backend's reading of answers, against a reference reader written from Consul's rules alone.

The backend's reader is written for speed (one walk per entry, one parse per
address, no converters run twice). The reference below is the plain reading
of the rules (``../shared/consul/README.md`` and Consul's
``CheckServiceNode.BestAddress``): it imports nothing of the backend, and the
backend is asked over real HTTP, from a loopback server that sends each
generated answer verbatim, as an agent (or a proxy ignoring ``?passing``)
would. Hypothesis feeds both the same hostile answers in every address mode;
both must make the same instances and skip or remark on the same entries.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from registry_config.discovery.consul import ConsulBackend
from registry_config.discovery.model import Discovery, ServiceInstance, ServiceQuery

PAYLOADS = Path(__file__).parent / "data" / "consul"
MODES = ("service", "node", "lan", "wan", "lan_ipv4", "wan_ipv4", "lan_ipv6", "wan_ipv6")
RESOLVED = ["10.9.9.9", "fd00::9", "::ffff:10.9.9.8"]


def _resolver(host: str) -> list[str]:
    if host.startswith("missing"):
        raise OSError("Name or service not known")
    if host.startswith("boom"):
        raise RuntimeError("resolver bug")
    if host.startswith("empty"):
        return []
    return RESOLVED


# -- a loopback server that sends what it is given --------------------------------------------------------------


class Verbatim:
    """Answers every GET with ``self.body`` (and ``X-Consul-Index: 7``), exactly as set."""

    def __init__(self) -> None:
        self.body = b"[]"
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Consul-Index", "7")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def verbatim() -> Iterator[Verbatim]:
    server = Verbatim()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def backends(verbatim: Verbatim) -> Iterator[dict[tuple[str, bool], ConsulBackend]]:
    made = {
        (address, passing): ConsulBackend(verbatim.url, address=address, passing_only=passing, resolver=_resolver)
        for address in MODES
        for passing in (True, False)
    }
    yield made
    for backend in made.values():
        backend.close()


# -- the reference reader -------------------------------------------------------------------------------------

_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _nonempty(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _best_address(mode: str, fields: Mapping[str, Any]) -> tuple[object, object, bool]:
    """Address, port, and whether the choice is remarked on, as Consul's BestAddress picks them."""
    port = fields["port"]
    node_address, own = fields["node_address"], _nonempty(fields["service_address"])
    if mode == "node":
        return node_address, port, False
    if mode == "service":
        return own or node_address, port, False
    names = [mode] if "_" in mode else [mode, f"{mode}_ipv4", f"{mode}_ipv6"]
    service_tagged = fields["service_tagged"] if isinstance(fields["service_tagged"], dict) else {}
    for name in names:
        item = service_tagged.get(name)
        if isinstance(item, dict):
            address = _nonempty(item.get("Address")) or _nonempty(item.get("address"))
            if address:
                tagged_port = item["Port"] if "Port" in item else item.get("port")
                if tagged_port is None or (type(tagged_port) is int and tagged_port == 0):
                    tagged_port = port
                return address, tagged_port, False
    family = {"ipv4": 4, "ipv6": 6}.get(mode.partition("_")[2])
    own_ip = _ip(own) if own else None
    if own and (family is None or (own_ip is not None and own_ip.version == family)):
        return own, port, mode == "wan"
    node_tagged = fields["node_tagged"] if isinstance(fields["node_tagged"], dict) else {}
    for name in names:
        if _nonempty(node_tagged.get(name)):
            return node_tagged[name], port, False
    if mode == "lan":
        return node_address, port, False
    return own or node_address, port, True


def _usable_ips(text: str) -> list[str] | None:
    """What an address text stands for, or ``None`` when the entry must be skipped."""
    if any(c.isspace() or not c.isprintable() for c in text) or "," in text or "://" in text or "/" in text:
        return None
    if _ip(text) is not None:
        return [text]
    labels = text.split(".")
    if len(text) > 253 or all(label.isdigit() for label in labels) or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    if text.lower().startswith(("missing", "boom", "empty")):
        return None
    return RESOLVED


def _fields(entry: Mapping[str, Any], health: bool) -> dict[str, Any]:
    if not health:
        return {
            "node": entry.get("Node"),
            "node_address": entry.get("Address"),
            "node_tagged": entry.get("TaggedAddresses"),
            "service_address": entry.get("ServiceAddress"),
            "service_tagged": entry.get("ServiceTaggedAddresses"),
            "port": entry.get("ServicePort"),
            "tags": entry.get("ServiceTags"),
            "meta": entry.get("ServiceMeta"),
            "service_id": entry.get("ServiceID"),
        }
    node = entry["Node"] if isinstance(entry.get("Node"), dict) else {}
    service = entry["Service"] if isinstance(entry.get("Service"), dict) else {}
    return {
        "node": node.get("Node"),
        "node_address": node.get("Address"),
        "node_tagged": node.get("TaggedAddresses"),
        "service_address": service.get("Address"),
        "service_tagged": service.get("TaggedAddresses"),
        "port": service.get("Port"),
        "tags": service.get("Tags"),
        "meta": service.get("Meta"),
        "service_id": service.get("ID"),
    }


def reference(
    entries: list[Any], mode: str, passing: bool, default_port: int | None
) -> tuple[list[ServiceInstance], set[int]]:
    """The instances the rules make of ``entries``, and the positions of the entries skipped or remarked on."""
    instances: list[ServiceInstance] = []
    noted: set[int] = set()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            noted.add(position)
            continue
        healthy: bool | None = None
        if passing:
            checks = entry.get("Checks")
            if isinstance(checks, list):
                healthy = all(isinstance(c, dict) and c.get("Status") == "passing" for c in checks)
                if not healthy:
                    noted.add(position)
                    continue
        fields = _fields(entry, passing)
        if fields["port"] is None:
            fields["port"] = 0  # Service.Port is omitted when 0
        address, port, remarked = _best_address(mode, fields)
        if remarked:
            noted.add(position)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            noted.add(position)
            continue
        if port == 0:
            if default_port is None:
                noted.add(position)
                continue
            port = default_port
        ips = _usable_ips(address) if isinstance(address, str) and address else None
        if ips is None:
            noted.add(position)
            continue
        tags = fields["tags"]
        meta = fields["meta"]
        for ip in ips:
            instances.append(
                ServiceInstance(
                    ip,
                    port,
                    node=fields["node"] if isinstance(fields["node"], str) else None,
                    service_id=fields["service_id"] if isinstance(fields["service_id"], str) else None,
                    tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
                    meta={k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}
                    if isinstance(meta, dict)
                    else {},
                    healthy=healthy,
                )
            )
    return instances, noted


def _noted_positions(found: Discovery) -> set[int]:
    return {int(match) for warning in found.warnings for match in re.findall(r"entry #(\d+)", warning)}


def _ask(backend: ConsulBackend, verbatim: Verbatim, entries: list[Any], default_port: int | None) -> Discovery:
    verbatim.body = json.dumps(entries).encode()
    return backend.discover(ServiceQuery("registry", default_port=default_port))


def _check(found: Discovery, entries: list[Any], mode: str, passing: bool, default_port: int | None) -> None:
    instances, noted = reference(entries, mode, passing, default_port)
    expected = Discovery(found.query, instances, source="reference")
    assert found.instances == expected.instances
    assert [dict(i.meta) for i in found.instances] == [dict(i.meta) for i in expected.instances]
    assert [i.healthy for i in found.instances] == [i.healthy for i in expected.instances]
    assert [i.endpoint for i in found.instances] == [str(i) for i in expected.instances]
    assert _noted_positions(found) == noted
    assert all("\n" not in warning for warning in found.warnings)


# -- the payloads of a live agent, the documentation and the seed ----------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("payload", "passing"),
    [
        ("catalog-service-live.json", False),
        ("health-service-live.json", True),
        ("catalog-service-web.json", False),
        ("health-service-my-service.json", True),
        ("seed-catalog-service.json", False),
    ],
)
@pytest.mark.parametrize("default_port", [None, 5000])
def test_the_payloads_read_as_the_rules_say(
    backends: dict[tuple[str, bool], ConsulBackend],
    verbatim: Verbatim,
    payload: str,
    passing: bool,
    mode: str,
    default_port: int | None,
) -> None:
    entries = json.loads((PAYLOADS / payload).read_text())
    found = _ask(backends[(mode, passing)], verbatim, entries, default_port)
    _check(found, json.loads((PAYLOADS / payload).read_text()), mode, passing, default_port)


# -- hostile answers -------------------------------------------------------------------------------------------

_ADDRESSES = st.sampled_from(
    [
        "10.0.0.1",
        "10.0.0.2",
        "010.0.0.1",
        "10.0.0.1 ",
        "10.0.0.1,10.0.0.2",
        "10.0.0.0/8",
        "http://10.0.0.1",
        "256.0.0.1",
        "fd00::1",
        "::ffff:10.0.0.3",
        "fe80::1%eth0",
        "registry.internal",
        "REGISTRY.internal",
        "missing.internal",
        "boom.internal",
        "empty.internal",
        "bad name",
        "a\nb",
        "",
        "0.0.0.0",
        "169.254.169.254",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 70000),
    st.sampled_from([0, 80, 5000, 65535, 65536]),
    st.floats(allow_nan=False, allow_infinity=False),
    _ADDRESSES,
    st.text(max_size=6),
)
_TAG_NAMES = st.sampled_from(["lan", "wan", "lan_ipv4", "wan_ipv4", "lan_ipv6", "wan_ipv6", "Address", "k"])
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TAG_NAMES, inner)),
    max_leaves=6,
)
_GOOD_ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1", "::ffff:10.0.0.3", "registry.internal", ""])


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: most entries must get far enough to make instances."""
    return st.one_of(good, good, good, bad)


_PORTS = _mostly(st.sampled_from([0, 80, 5000]), st.one_of(st.sampled_from([None, True, -1, 65536, "80"]), _VALUES))
_ADDRESS = _mostly(_GOOD_ADDRESSES, st.one_of(_ADDRESSES, _VALUES))
# A service's tagged address as a live agent spells it, as the documentation does, both, or broken.
_SERVICE_TAGGED_ITEM = st.one_of(
    st.fixed_dictionaries({}, optional={"Address": _ADDRESS, "Port": _PORTS}),
    st.fixed_dictionaries({}, optional={"address": _ADDRESS, "port": _PORTS}),
    st.fixed_dictionaries({}, optional={"Address": _ADDRESS, "Port": _PORTS, "address": _ADDRESS, "port": _PORTS}),
    _VALUES,
)
_SERVICE_TAGGED = _mostly(st.dictionaries(_TAG_NAMES, _SERVICE_TAGGED_ITEM, max_size=3), _VALUES)
_NODE_TAGGED = _mostly(st.dictionaries(_TAG_NAMES, _ADDRESS, max_size=3), _VALUES)
_META = _mostly(
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=3), _VALUES
)
_TAGS = _mostly(st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3), _VALUES)
_NODE = _mostly(st.sampled_from(["cell-1", "cell-2", "", "n,1", "n\n"]), _VALUES)
_IDS = _mostly(st.text(max_size=5), _VALUES)

_CATALOG_ENTRY = st.fixed_dictionaries(
    {"Address": _ADDRESS, "ServicePort": _PORTS},
    optional={
        "Node": _NODE,
        "TaggedAddresses": _NODE_TAGGED,
        "ServiceAddress": _ADDRESS,
        "ServiceTaggedAddresses": _SERVICE_TAGGED,
        "ServiceTags": _TAGS,
        "ServiceMeta": _META,
        "ServiceID": _IDS,
    },
)
_CHECK = st.fixed_dictionaries(
    {"Status": st.sampled_from(["passing", "passing", "warning", "critical", 1, None])},
    optional={
        "CheckID": st.sampled_from(["serfHealth", "_node_maintenance", "_service_maintenance:r-1", 3]),
        "Notes": st.one_of(st.text(max_size=8), st.none()),
    },
)
_CHECKS = _mostly(st.lists(_mostly(_CHECK, _VALUES), max_size=3), _VALUES)
_HEALTH_ENTRY = st.fixed_dictionaries(
    {
        "Node": _mostly(
            st.fixed_dictionaries({"Address": _ADDRESS}, optional={"Node": _NODE, "TaggedAddresses": _NODE_TAGGED}),
            _VALUES,
        ),
        "Service": _mostly(
            st.fixed_dictionaries(
                {},
                # Port is often absent: a live agent leaves it out when it is 0.
                optional={
                    "Port": _PORTS,
                    "Address": _ADDRESS,
                    "TaggedAddresses": _SERVICE_TAGGED,
                    "Tags": _TAGS,
                    "Meta": _META,
                    "ID": _IDS,
                },
            ),
            _VALUES,
        ),
    },
    optional={"Checks": _CHECKS},
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    mode=st.sampled_from(MODES),
    passing=st.booleans(),
    default_port=st.sampled_from([None, 8080]),
)
def test_the_reader_answers_as_the_rules_say(
    backends: dict[tuple[str, bool], ConsulBackend],
    verbatim: Verbatim,
    data: st.DataObject,
    mode: str,
    passing: bool,
    default_port: int | None,
) -> None:
    entries = data.draw(st.lists(_mostly(_HEALTH_ENTRY if passing else _CATALOG_ENTRY, _VALUES), max_size=4))
    found = _ask(backends[(mode, passing)], verbatim, entries, default_port)
    event(f"instances: {len(found.instances) > 0}, warnings: {len(found.warnings) > 0}")
    _check(found, entries, mode, passing, default_port)


def test_the_reference_is_not_vacuous(backends: dict[tuple[str, bool], ConsulBackend], verbatim: Verbatim) -> None:
    """The reference makes instances and notes skips on the live payload: the comparison has teeth."""
    entries = json.loads((PAYLOADS / "health-service-live.json").read_text())
    instances, noted = reference(entries, "service", True, 5000)
    assert [str(i) for i in instances] == ["10.244.2.6:8080"]
    assert noted == {1}  # cell-2 is in maintenance
    found = _ask(backends[("service", True)], verbatim, entries, 5000)
    assert found.endpoints == ("10.244.2.6:8080",)


def _catalog(service_address: str = "", service_tagged: object = None, node_tagged: object = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Node": "n1", "Address": "10.0.0.1", "ServiceAddress": service_address}
    entry["ServicePort"] = 8080
    if service_tagged is not None:
        entry["ServiceTaggedAddresses"] = service_tagged
    if node_tagged is not None:
        entry["TaggedAddresses"] = node_tagged
    return entry


@pytest.mark.parametrize(
    ("entry", "mode", "endpoint", "remarked"),
    [
        # The service's own tagged address first, the lan_ipv4 an agent adds counting for "lan".
        (_catalog("10.2.2.2", {"lan_ipv4": {"Address": "10.1.1.1", "Port": 81}}), "lan", "10.1.1.1:81", False),
        (
            _catalog("10.2.2.2", {"lan": {"Address": "10.1.1.1", "Port": 81}}, {"lan": "10.5.5.5"}),
            "lan",
            "10.1.1.1:81",
            False,
        ),
        # A tagged port of 0 keeps the service's port (BestAddress: "if wan.Port != 0").
        (_catalog("", {"wan": {"Address": "198.18.0.9", "Port": 0}}), "wan", "198.18.0.9:8080", False),
        # Both spellings: the agent's capitalised one wins; the documentation's alone is read too.
        (
            _catalog("", {"wan": {"Address": "198.18.0.1", "Port": 443, "address": "198.18.0.2", "port": 80}}),
            "wan",
            "198.18.0.1:443",
            False,
        ),
        (_catalog("", {"wan": {"address": "198.18.0.2", "port": 80}}), "wan", "198.18.0.2:80", False),
        # Then the service's address (remarked on for wan), then the node's tagged address, then the node's.
        (_catalog("10.2.2.2", None, {"wan": "198.18.5.5"}), "wan", "10.2.2.2:8080", True),
        (_catalog("", None, {"wan": "198.18.5.5"}), "wan", "198.18.5.5:8080", False),
        (_catalog("", None, {"wan_ipv4": "198.18.5.6"}), "wan", "198.18.5.6:8080", False),
        (_catalog("10.2.2.2", None, {"lan": "10.5.5.5"}), "lan", "10.2.2.2:8080", False),
        (_catalog("", None, {}), "lan", "10.0.0.1:8080", False),
        (_catalog("", None, {}), "wan", "10.0.0.1:8080", True),
        # A family mode takes the service's address only of its family.
        (_catalog("10.2.2.2", None, {"lan_ipv6": "fd00::5"}), "lan_ipv6", "[fd00::5]:8080", False),
        (_catalog("fd00::1", None, {"lan_ipv4": "10.3.3.3"}), "lan_ipv4", "10.3.3.3:8080", False),
        (_catalog("10.2.2.2", None, {}), "wan_ipv4", "10.2.2.2:8080", False),
        (_catalog("", None, {}), "wan_ipv4", "10.0.0.1:8080", True),
        (_catalog("fd00::1", None, {}), "lan_ipv4", "[fd00::1]:8080", True),
    ],
)
def test_tagged_address_rules(
    backends: dict[tuple[str, bool], ConsulBackend],
    verbatim: Verbatim,
    entry: dict[str, Any],
    mode: str,
    endpoint: str,
    remarked: bool,
) -> None:
    found = _ask(backends[(mode, False)], verbatim, [entry], None)
    assert found.endpoints == (endpoint,)
    assert bool(found.warnings) is remarked
    _check(found, [entry], mode, False, None)
