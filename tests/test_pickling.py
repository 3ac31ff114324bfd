"""Value objects cross to other processes: pickle, copy and deepcopy give back equal objects.

A stager that fans staging requests out to a process pool sends plans and
discoveries to its workers and back. The objects holding a read-only mapping
(``ServiceInstance.meta``, ``ResolvedImage.digests``, ``Challenge.params``)
could not be pickled before; each is now rebuilt by its constructor from its
fields, with its checks.
"""

from __future__ import annotations

import concurrent.futures
import copy
import ipaddress
import multiprocessing
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import ip_addresses, ports, tags

from registry_config import ServiceInstance, StaticBackend, build_plan
from registry_config.discovery.model import Discovery, ServiceQuery
from registry_config.images.challenge import Challenge
from registry_config.images.resolve import ResolvedImage
from registry_config.reference import ImageReference

_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12)

instances = st.builds(
    ServiceInstance,
    ip_addresses(),
    ports(),
    node=st.none() | _TEXT,
    service_id=st.none() | _TEXT,
    tags=st.lists(tags(), max_size=3).map(tuple),
    meta=st.dictionaries(_TEXT, _TEXT, max_size=3),
    healthy=st.sampled_from([None, True, False]),
)


def _copies(value: Any) -> list[Any]:
    """``value`` through every pickle protocol, copy and deepcopy."""
    return [
        *(pickle.loads(pickle.dumps(value, protocol)) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)),  # noqa: S301 (our own bytes)
        copy.copy(value),
        copy.deepcopy(value),
    ]


@given(instances)
def test_an_instance_comes_back_equal(instance: ServiceInstance) -> None:
    for back in _copies(instance):
        assert type(back) is ServiceInstance
        assert back == instance
        assert hash(back) == hash(instance)
        assert dict(back.meta) == dict(instance.meta)
        assert back.endpoint == instance.endpoint
        with pytest.raises(TypeError):
            back.meta["new"] = "x"  # type: ignore[index]  # still read-only


def test_an_instance_made_by_a_backend_comes_back_equal() -> None:
    """The Consul reader's instances skip the converters (``_trusted``): they pickle all the same."""
    instance = ServiceInstance._trusted(
        ipaddress.IPv4Address("10.0.0.1"), 5000, "n", "id", ("t",), {"k": "v"}, True, "10.0.0.1:5000"
    )
    assert _copies(instance) == [instance] * (pickle.HIGHEST_PROTOCOL + 3)


def test_a_discovery_and_a_plan_come_back_equal() -> None:
    backend = StaticBackend(["10.244.2.6:5000", "10.244.2.7:5000", "[fd00::1]:5000"])
    plan = build_plan("http://registry.example:5000", backend)
    discovery = backend.discover(ServiceQuery("registry"))
    assert isinstance(discovery, Discovery)
    for back in _copies(discovery):
        assert back == discovery
        assert hash(back) == hash(discovery)
    for back in _copies(plan):
        assert back == plan
        assert back.to_json() == plan.to_json()


def test_an_image_and_a_challenge_come_back_equal() -> None:
    digest = "sha256:" + "a" * 64
    image = ResolvedImage(
        digest,
        "application/vnd.oci.image.index.v1+json",
        ImageReference.parse(f"registry.example:5000/team/app@{digest}"),
        f"registry.example:5000/team/app@{digest}",
        "10.0.0.1:5000",
        {"10.0.0.1:5000": digest, "10.0.0.2:5000": digest},
    )
    challenge = Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry"})
    for value in (image, challenge):
        for back in _copies(value):
            assert back == value


def _plan_in_a_worker(urls: list[str]) -> Any:
    return build_plan("http://registry.example:5000", StaticBackend(urls))


def test_a_plan_made_in_a_worker_process_comes_back() -> None:
    """The use that asked for it: a process pool (``spawn``: nothing shared but what pickle carries)."""
    urls = ["10.244.2.6:5000", "10.244.2.7:5000"]
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        plan = pool.submit(_plan_in_a_worker, urls).result(timeout=120)
    assert plan == _plan_in_a_worker(urls)
    assert [instance.endpoint for instance in plan.instances] == urls
