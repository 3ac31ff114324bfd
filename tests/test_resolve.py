"""resolve_image against Debian's docker-registry: three flavours, Basic and token logins, replicas that drift."""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
import pytest
import trustme
from _registry import (
    REGISTRY_NAME,
    RunningRegistry,
    _self_signed,
    ca_registry,
    http_registry,
    registry_ca,
    run_registry,
    self_signed_registry,
    write_leaf,
)
from _registry_auth import (
    PASSWORD,
    USER,
    Deployed,
    Pushed,
    Pusher,
    htpasswd_registry,
    push_image,
    push_index,
    replica_pair,
    token_issuer,
    token_registry,
)

from registry_config import (
    Credentials,
    ImageNotFoundError,
    ImageReference,
    InvalidImageReference,
    ProbeError,
    RegistryAuthError,
    RegistrySpec,
    ReplicaMismatchError,
    StagingPlan,
    StaticBackend,
    build_plan,
    resolve_image,
)
from registry_config.egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard
from registry_config.images.resolve import check_login

__all__ = [  # fixtures imported for pytest, named so that linters see them used
    "ca_registry",
    "htpasswd_registry",
    "http_registry",
    "registry_ca",
    "replica_pair",
    "self_signed_registry",
    "token_registry",
]

pytestmark = pytest.mark.integration

LOGIN = Credentials(USER, PASSWORD)
LOOPBACK = EgressGuard((*DEFAULT_ALLOWED_NETWORKS, "127.0.0.0/8"))
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the three flavours, anonymous ---------------------------------------------------------------------------

_PUSHED: dict[int, dict[str, Pushed]] = {}


def _flavour(request: pytest.FixtureRequest, name: str) -> tuple[RunningRegistry, RegistrySpec, str | None]:
    """The registry of ``name``, the spec a user would write for it, and the CA to pass (verified flavour)."""
    registry: RunningRegistry = request.getfixturevalue(name)
    if name == "http_registry":
        spec, push_url, verify, bundle = (
            RegistrySpec.from_url(f"http://127.0.0.1:{registry.port}"),
            f"http://127.0.0.1:{registry.port}",
            False,
            None,
        )
    elif name == "self_signed_registry":
        spec = RegistrySpec.from_url(f"https://localhost:{registry.port}", skip_ssl_validation=True)
        push_url, verify, bundle = f"https://127.0.0.1:{registry.port}", False, None
    else:
        assert registry.ca_pem is not None
        spec = RegistrySpec.from_url(f"https://localhost:{registry.port}")
        push_url, verify, bundle = f"https://localhost:{registry.port}", str(registry.ca_pem), str(registry.ca_pem)
    if registry.port not in _PUSHED:
        pusher = Pusher(push_url, verify=verify)
        _PUSHED[registry.port] = {
            "team/multi:1.0": push_index(pusher, "team/multi", "1.0", marker=name),
            "team/single:1.0": push_image(pusher, "team/single", "1.0", marker=name),
        }
    return registry, spec, bundle


FLAVOURS = ["http_registry", "self_signed_registry", "ca_registry"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_index_tag_resolves_to_the_digest_of_the_bytes_pushed(request: pytest.FixtureRequest, flavour: str) -> None:
    registry, spec, bundle = _flavour(request, flavour)
    pushed = _PUSHED[registry.port]["team/multi:1.0"]
    resolved = resolve_image(spec, "team/multi:1.0", ca_bundle=bundle)
    assert resolved.digest == pushed.digest == _sha256(pushed.body)
    assert resolved.media_type == OCI_INDEX
    assert resolved.pinned == f"{spec.address}/team/multi@{pushed.digest}"
    assert resolved.reference == ImageReference.parse(resolved.pinned)
    assert str(resolved) == resolved.pinned
    assert resolved.instance == spec.address
    assert dict(resolved.digests) == {spec.address: pushed.digest}
    # The URL text gives the same answer as the spec (the flavour read from the URL).
    if not spec.skip_ssl_validation:
        assert resolve_image(spec.url, "team/multi:1.0", ca_bundle=bundle) == resolved


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_single_manifest_and_a_platform_of_an_index(request: pytest.FixtureRequest, flavour: str) -> None:
    registry, spec, bundle = _flavour(request, flavour)
    single = _PUSHED[registry.port]["team/single:1.0"]
    resolved = resolve_image(spec, f"{spec.address}/team/single:1.0", ca_bundle=bundle)
    assert (resolved.digest, resolved.media_type) == (single.digest, OCI_MANIFEST)
    multi = _PUSHED[registry.port]["team/multi:1.0"]
    for platform, digest in multi.children:
        on = resolve_image(spec, "team/multi:1.0", platform=platform, ca_bundle=bundle)
        assert (on.digest, on.media_type) == (digest, OCI_MANIFEST)
        assert on.pinned == f"{spec.address}/team/multi@{digest}"
    with pytest.raises(ImageNotFoundError, match=r"no manifest for platform 'linux/s390x'.*linux/amd64, linux/arm64"):
        resolve_image(spec, "team/multi:1.0", platform="linux/s390x", ca_bundle=bundle)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_digest_reference_is_checked_to_exist(request: pytest.FixtureRequest, flavour: str) -> None:
    registry, spec, bundle = _flavour(request, flavour)
    pushed = _PUSHED[registry.port]["team/multi:1.0"]
    resolved = resolve_image(spec, f"team/multi@{pushed.digest}", ca_bundle=bundle)
    assert resolved.digest == pushed.digest
    absent = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFoundError, match="not the digest"):
        resolve_image(spec, f"team/multi@{absent}", ca_bundle=bundle)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_unknown_tag_and_an_unknown_repository_are_told_apart(request: pytest.FixtureRequest, flavour: str) -> None:
    _, spec, bundle = _flavour(request, flavour)
    with pytest.raises(ImageNotFoundError, match=r"has the repository 'team/multi' but not the tag '9\.9'.*'1\.0'"):
        resolve_image(spec, "team/multi:9.9", ca_bundle=bundle)
    with pytest.raises(ImageNotFoundError, match="does not know the repository 'team/absent'") as caught:
        resolve_image(spec, "team/absent:1.0", ca_bundle=bundle)
    assert isinstance(caught.value, LookupError)


def test_no_tag_means_latest(http_registry: RunningRegistry) -> None:
    spec = RegistrySpec.from_url(f"http://127.0.0.1:{http_registry.port}")
    pushed = push_image(Pusher(spec.url), "team/latest", "latest", marker="latest")
    assert resolve_image(spec, "team/latest").digest == pushed.digest


def test_the_verified_flavour_asks_each_instance_by_ip_checking_the_certificate_for_the_registry_name(
    request: pytest.FixtureRequest,
) -> None:
    registry, _, bundle = _flavour(request, "ca_registry")
    pushed = _PUSHED[registry.port]["team/multi:1.0"]
    # registry.test resolves nowhere: only connecting to the instance's IP, with TLS checked for the name, works.
    spec = RegistrySpec.from_url(f"https://{REGISTRY_NAME}:{registry.port}")
    plan = build_plan(spec, StaticBackend(["127.0.0.1"]), guard=LOOPBACK)
    resolved = resolve_image(plan, "team/multi:1.0", ca_bundle=bundle)
    assert resolved.digest == pushed.digest
    assert resolved.instance == f"127.0.0.1:{registry.port}"
    assert resolved.pinned == f"{REGISTRY_NAME}:{registry.port}/team/multi@{pushed.digest}"
    # Without the CA the certificate does not verify, and the error says what to do.
    with pytest.raises(ProbeError, match="ca_bundle"):
        resolve_image(plan, "team/multi:1.0")


def test_a_plain_http_url_for_a_tls_registry_is_a_probe_error(request: pytest.FixtureRequest) -> None:
    registry, _, _ = _flavour(request, "self_signed_registry")
    with pytest.raises(ProbeError, match=f"127.0.0.1:{registry.port}"):
        resolve_image(f"http://127.0.0.1:{registry.port}", "team/multi:1.0", timeout=5)


def test_a_reference_naming_another_registry_is_refused(http_registry: RunningRegistry) -> None:
    spec = RegistrySpec.from_url(f"http://127.0.0.1:{http_registry.port}")
    with pytest.raises(InvalidImageReference, match=r"names the registry 'other.example:5000'"):
        resolve_image(spec, "other.example:5000/team/multi:1.0")
    with pytest.raises(InvalidImageReference, match=r"'docker.io'"):
        resolve_image(spec, ImageReference.parse("team/multi:1.0"))


# -- logins --------------------------------------------------------------------------------------------------


def _assert_no_secret(exc: BaseException) -> None:
    """The password appears nowhere in the exception, its chain, or their reprs."""
    seen: BaseException | None = exc
    while seen is not None:
        assert PASSWORD not in str(seen)
        assert PASSWORD not in repr(seen)
        seen = seen.__cause__ or seen.__context__


def test_basic_auth_with_htpasswd(htpasswd_registry: Deployed) -> None:
    pushed = htpasswd_registry.images["team/app:1.0"]
    resolved = resolve_image(htpasswd_registry.url, "team/app:1.0", credentials=LOGIN)
    assert resolved.digest == pushed.digest
    with pytest.raises(RegistryAuthError, match=r"asks for a Basic login.*no credentials were given") as missing:
        resolve_image(htpasswd_registry.url, "team/app:1.0")
    with pytest.raises(RegistryAuthError, match="refused the credentials of user 'alice'") as refused:
        resolve_image(htpasswd_registry.url, "team/app:1.0", credentials=Credentials(USER, PASSWORD + "-wrong"))
    for caught in (missing, refused):
        _assert_no_secret(caught.value)


def test_token_auth_with_a_login(token_registry: Deployed) -> None:
    assert token_registry.issuer is not None
    seen = token_registry.issuer.requests_seen
    before = len(seen)
    resolved = resolve_image(token_registry.url, "team/app:1.0", credentials=LOGIN)
    assert resolved.digest == token_registry.images["team/app:1.0"].digest
    path, query, authorization = seen[before]
    assert path == "/token"
    assert query["service"] == ["registry.test"]
    assert query["scope"] == ["repository:team/app:pull"]
    assert query["account"] == [USER]
    assert authorization == f"Basic {LOGIN.basic}"


def test_token_auth_anonymously_for_a_public_repository(token_registry: Deployed) -> None:
    assert token_registry.issuer is not None
    seen = token_registry.issuer.requests_seen
    before = len(seen)
    resolved = resolve_image(token_registry.url, "public/app:1.0")
    assert resolved.digest == token_registry.images["public/app:1.0"].digest
    assert [authorization for _, _, authorization in seen[before:]] == [None]
    with pytest.raises(RegistryAuthError, match=r"wants a login to read 'team/app'.*give credentials"):
        resolve_image(token_registry.url, "team/app:1.0")


def test_token_auth_with_a_wrong_password(token_registry: Deployed) -> None:
    with pytest.raises(RegistryAuthError, match=r"token realm .* refused the credentials of user 'alice'") as caught:
        resolve_image(token_registry.url, "team/app:1.0", credentials=Credentials(USER, PASSWORD + "-wrong"))
    _assert_no_secret(caught.value)


def test_a_login_is_never_sent_to_a_plain_http_realm_of_an_https_registry(tmp_path: Path) -> None:
    with token_issuer(tmp_path / "issuer") as issuer:
        bundle = tmp_path / "issuer" / "token-signer.pem"
        tls = _self_signed(tmp_path)
        with run_registry(tmp_path / "registry", flavour="tls-token", tls=tls, token=(issuer.realm, bundle)) as reg:
            spec = RegistrySpec.from_url(f"https://127.0.0.1:{reg.port}", skip_ssl_validation=True)
            with pytest.raises(RegistryAuthError, match="refusing to send the password in clear text") as caught:
                resolve_image(spec, "team/app:1.0", credentials=LOGIN)
            _assert_no_secret(caught.value)
            assert issuer.requests_seen == []
            # Anonymously (nothing secret to leak) the realm is asked; the registry then wants a login.
            with pytest.raises(RegistryAuthError, match="give credentials"):
                resolve_image(spec, "team/app:1.0")
            assert [authorization for _, _, authorization in issuer.requests_seen] == [None]


# -- replicas ------------------------------------------------------------------------------------------------


def _replica_plan(pair: tuple[Deployed, Deployed]) -> tuple[StagingPlan, str, str]:
    first, second = pair
    a, b = f"127.0.0.1:{first.registry.port}", f"127.0.0.1:{second.registry.port}"
    plan = build_plan(RegistrySpec.from_url(f"http://{a}"), StaticBackend([a, b]), guard=LOOPBACK)
    return plan, a, b


def test_replicas_that_agree(replica_pair: tuple[Deployed, Deployed]) -> None:
    plan, a, b = _replica_plan(replica_pair)
    digest = replica_pair[0].images["team/app:1.0"].digest
    assert replica_pair[1].images["team/app:1.0"].digest == digest
    resolved = resolve_image(plan, "team/app:1.0", all_instances=True)
    assert resolved.digest == digest
    assert dict(resolved.digests) == {a: digest, b: digest}
    assert resolved.instance == plan.instances[0].endpoint  # the first in the plan's (deterministic) order


def test_replicas_serving_different_digests_are_caught_and_named(replica_pair: tuple[Deployed, Deployed]) -> None:
    plan, a, b = _replica_plan(replica_pair)
    first, second = (deployed.images["team/app:2.0"].digest for deployed in replica_pair)
    assert first != second
    # Asking one instance pins whatever it serves: the drift goes unseen.
    alone = resolve_image(plan, "team/app:2.0")
    assert alone.digest == {a: first, b: second}[alone.instance]
    with pytest.raises(ReplicaMismatchError) as caught:
        resolve_image(plan, "team/app:2.0", all_instances=True)
    assert dict(caught.value.digests) == {a: first, b: second}
    message = str(caught.value)
    assert f"{first} on {a}" in message
    assert f"{second} on {b}" in message
    assert "scale-up could fetch other layers" in message


def test_a_replica_lacking_the_tag_is_caught(replica_pair: tuple[Deployed, Deployed]) -> None:
    plan, a, b = _replica_plan(replica_pair)
    digest = replica_pair[0].images["team/app:3.0"].digest
    with pytest.raises(ReplicaMismatchError, match=f"missing on {b}") as caught:
        resolve_image(plan, "team/app:3.0", all_instances=True)
    assert dict(caught.value.digests) == {a: digest, b: None}
    with pytest.raises(ImageNotFoundError, match=r"not the tag '4\.0'"):
        resolve_image(plan, "team/app:4.0", all_instances=True)


def test_an_unreachable_instance_is_skipped_unless_every_instance_is_asked(
    replica_pair: tuple[Deployed, Deployed],
) -> None:
    from _integration import free_port

    dead = f"127.0.0.1:{free_port()}"
    live = f"127.0.0.1:{replica_pair[0].registry.port}"
    plan = build_plan(RegistrySpec.from_url(f"http://{live}"), StaticBackend([dead, live]), guard=LOOPBACK)
    # The dead instance first, whatever order the plan sorted them in.
    plan = attrs.evolve(plan, instances=tuple(sorted(plan.instances, key=lambda i: i.endpoint != dead)))
    assert plan.instances[0].endpoint == dead
    resolved = resolve_image(plan, "team/app:1.0", timeout=5)
    assert resolved.instance == live
    with pytest.raises(ProbeError, match=dead):
        resolve_image(plan, "team/app:1.0", all_instances=True, timeout=5)
    every_dead = build_plan(RegistrySpec.from_url(f"http://{dead}"), StaticBackend([dead]), guard=LOOPBACK)
    with pytest.raises(ProbeError, match=f"{dead}.*refused"):
        resolve_image(every_dead, "team/app:1.0", timeout=5)


# -- the login alone (what a probe asks) ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["htpasswd_registry", "token_registry"])
def test_check_login_tells_an_accepted_login_from_a_missing_or_refused_one(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    address = deployed.url.removeprefix("http://")
    assert check_login(deployed.url, LOGIN) == address
    wrong = Credentials(USER, PASSWORD + "-wrong")
    with pytest.raises(RegistryAuthError, match="refused the credentials of user 'alice'") as refused:
        check_login(deployed.url, wrong)
    _assert_no_secret(refused.value)
    if fixture == "htpasswd_registry":
        with pytest.raises(RegistryAuthError, match="asks for a Basic login and no credentials"):
            check_login(deployed.url)
    else:
        # An anonymous token lets anybody through GET /v2/ (distribution checks the token, not its access).
        assert check_login(deployed.url) == address


def test_check_login_on_an_open_registry(http_registry: RunningRegistry) -> None:
    url = f"http://127.0.0.1:{http_registry.port}"
    assert check_login(url) == f"127.0.0.1:{http_registry.port}"
    assert check_login(url, LOGIN) == f"127.0.0.1:{http_registry.port}"  # a login nobody asked for is harmless


# -- the verified flavour with a token realm over HTTPS ------------------------------------------------------


def test_the_token_realm_is_verified_with_the_same_trust_as_the_registry(
    tmp_path: Path, registry_ca: trustme.CA
) -> None:
    leaf, realm_leaf = registry_ca.issue_cert("localhost", REGISTRY_NAME), registry_ca.issue_cert("127.0.0.1")
    ca_pem = tmp_path / "ca.pem"
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    files = {name: write_leaf(issued, tmp_path, name) for name, issued in (("registry", leaf), ("realm", realm_leaf))}
    with token_issuer(tmp_path / "issuer", tls=files["realm"]) as issuer:
        bundle = tmp_path / "issuer" / "token-signer.pem"
        with run_registry(
            tmp_path / "registry", flavour="ca-token", tls=files["registry"], token=(issuer.realm, bundle)
        ) as registry:
            url = f"https://localhost:{registry.port}"
            pusher = Pusher(url, verify=str(ca_pem), token=issuer.mint([("team/app", ["pull", "push"])]))
            pushed = push_image(pusher, "team/app", "1.0", marker="ca-token")
            resolved = resolve_image(url, "team/app:1.0", credentials=LOGIN, ca_bundle=ca_pem)
            assert resolved.digest == pushed.digest
            assert issuer.requests_seen[-1][2] == f"Basic {LOGIN.basic}"


def test_a_realm_whose_certificate_does_not_verify_gets_no_login(tmp_path: Path, registry_ca: trustme.CA) -> None:
    # A verified registry whose token realm has a self-signed certificate: the TLS handshake with the realm
    # fails before any request, so the login is never sent.
    ca_pem = tmp_path / "ca.pem"
    registry_ca.cert_pem.write_to_path(str(ca_pem))
    tls = write_leaf(registry_ca.issue_cert("localhost"), tmp_path)
    with token_issuer(tmp_path / "issuer", tls=_self_signed(tmp_path)) as issuer:
        token_bundle = tmp_path / "issuer" / "token-signer.pem"
        with run_registry(
            tmp_path / "registry", flavour="ca-token", tls=tls, token=(issuer.realm, token_bundle)
        ) as registry:
            url = f"https://localhost:{registry.port}"
            with pytest.raises(ProbeError, match="certificate does not verify") as caught:
                resolve_image(url, "team/app:1.0", credentials=LOGIN, ca_bundle=ca_pem)
            assert "token realm" in str(caught.value)
            _assert_no_secret(caught.value)
        assert issuer.requests_seen == []


def test_an_ipv6_instance(tmp_path: Path) -> None:
    with run_registry(tmp_path, flavour="http-v6", host="::1") as registry:
        endpoint = f"[::1]:{registry.port}"
        pushed = push_image(Pusher(f"http://{endpoint}"), "team/app", "1.0", marker="v6")
        guard = EgressGuard((*DEFAULT_ALLOWED_NETWORKS, "::1/128"))
        plan = build_plan(RegistrySpec.from_url(f"http://{endpoint}"), StaticBackend([endpoint]), guard=guard)
        resolved = resolve_image(plan, f"{endpoint}/team/app:1.0", all_instances=True)
    assert resolved.digest == pushed.digest
    assert resolved.instance == endpoint
    assert resolved.pinned == f"{endpoint}/team/app@{pushed.digest}"
    assert resolved.reference.registry == endpoint
