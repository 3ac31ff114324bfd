"""``registry-config plan --backend dns://...`` end to end, against dnsmasq."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from _dnsmasq import Dnsmasq, Node, Records, dnsmasq

import registry_config.discovery.dns as dns_module
from registry_config.cli import main

NODES = (Node("node-a", ("10.244.2.6", "fd00:244::6")), Node("node-b", ("10.244.2.7",)))
URL = "http://docker_registry.service.dc1.consul:8080"


@pytest.fixture
def server() -> Iterator[Dnsmasq]:
    with dnsmasq(Records().service("docker_registry", NODES, 8080)) as running:
        yield running


@pytest.mark.integration
def test_plan_with_a_dns_backend(server: Dnsmasq, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", URL, "--backend", f"dns://{server.server}?domain=consul", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["instances"] == ["10.244.2.6:8080", "10.244.2.7:8080", "[fd00:244::6]:8080"]
    assert plan["builder_args"] == [
        "-dockerRegistryURL",
        URL,
        "-insecureDockerRegistries",
        "10.244.2.6:8080,10.244.2.7:8080,[fd00:244::6]:8080,docker_registry.service.dc1.consul:8080",
    ]
    assert plan["discovery"]["source"] == f"dns://{server.server}"
    # The datacenter in the URL reached the name asked.
    assert server.asked("docker_registry.service.dc1.consul", "SRV") == 1


@pytest.mark.integration
def test_plan_with_no_instance_in_dns_exits_4(server: Dnsmasq, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "http://nosuch.service.consul:8080", "--backend", f"dns://{server.server}"]) == 4
    assert "no registry instance found" in capsys.readouterr().err


def test_plan_with_a_silent_dns_server_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        assert main(["plan", URL, "--backend", f"dns://127.0.0.1:{port}?timeout=0.3"]) == 3
    err = capsys.readouterr().err
    assert err == (
        f"registry-config plan: error: DNS server 127.0.0.1:{port} asked docker_registry.service.dc1.consul SRV: "
        "no answer within 0.3s; check that the server runs and listens on that address and port "
        "(Consul's DNS is on port 8600 by default)\n"
    )


def test_plan_with_the_system_resolver_and_no_resolv_conf_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dns_module, "RESOLV_CONF", "/nonexistent/resolv.conf")
    assert main(["plan", URL, "--backend", "dns:"]) == 3
    err = capsys.readouterr().err
    assert "no system nameserver to ask" in err
    assert "Traceback" not in err


def test_plan_with_a_bad_dns_backend_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", URL, "--backend", "dns://127.0.0.1?record=mx"]) == 2
    assert "record 'mx' is not one of auto, srv, a" in capsys.readouterr().err
