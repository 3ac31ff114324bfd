"""The distribution protocol's corners, against small loopback servers of the test's own.

Debian's registry always sends ``Docker-Content-Digest``, never rate-limits
and never redirects; the servers here do, so each branch of the client is
driven over real HTTP: a missing digest header, content that does not match
its digest, ``429`` with ``Retry-After``, a redirect towards another host,
a token realm elsewhere, hostile challenges and bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config import (
    Credentials,
    ImageNotFoundError,
    ImageReference,
    InvalidImageReference,
    ProbeError,
    RegistryAuthError,
    RegistryConfigWarning,
    RegistrySpec,
    StaticBackend,
    build_plan,
    resolve_image,
)
from registry_config.egress import DEFAULT_ALLOWED_NETWORKS, EgressGuard
from registry_config.errors import InvalidInput
from registry_config.images.challenge import Challenge, parse_challenges
from registry_config.images.distribution import _retry_after
from registry_config.images.manifest import (
    ACCEPT,
    Platform,
    PlatformEntry,
    compute_digest,
    index_entries,
    is_digest,
    media_type_of,
)

LOGIN = Credentials("alice", "pw-Secret-1234")
LOOPBACK = EgressGuard((*DEFAULT_ALLOWED_NETWORKS, "127.0.0.0/8"))
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


# -- a scripted server ---------------------------------------------------------------------------------------


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]


Answer = tuple[int, dict[str, str], bytes]
Script = Callable[[str, str, dict[str, str]], Answer]


@attrs.define
class Server:
    port: int
    seen: list[Seen]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve(script: Script) -> Iterator[Server]:
    """A loopback HTTP server answering each request with ``script(method, path, headers)``; always stopped."""
    seen: list[Seen] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen.append(Seen(self.command, self.path, headers))
            status, answer_headers, body = script(self.command, self.path, headers)
            self.send_response(status)
            answer_headers = {"Content-Length": str(len(body)), **answer_headers}
            for name, value in answer_headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _answer

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() waits for the loop's next look, and hypothesis starts many servers.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def registry_of(manifests: dict[str, tuple[dict[str, str], bytes]], *, digest_header: bool = True) -> Script:
    """A registry serving ``team/app``'s manifests by reference: (headers, body)."""

    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        prefix = "/v2/team/app/manifests/"
        if path.startswith(prefix) and path[len(prefix) :] in manifests:
            answer_headers, body = manifests[path[len(prefix) :]]
            extra = {"Docker-Content-Digest": compute_digest(body)} if digest_header else {}
            return 200, {**extra, **answer_headers}, body
        error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        if path == "/v2/team/app/tags/list":
            return 200, {}, json.dumps({"name": "team/app", "tags": sorted(manifests)}).encode()
        return 404, {"Content-Type": "application/json"}, json.dumps(error).encode()

    return script


# -- digests -------------------------------------------------------------------------------------------------


def test_without_a_digest_header_the_exact_bytes_are_hashed() -> None:
    with serve(registry_of({"1.0": ({"Content-Type": "application/json"}, MANIFEST)}, digest_header=False)) as server:
        resolved = resolve_image(server.url, "team/app:1.0")
    assert resolved.digest == DIGEST
    # application/json says nothing: the body's own mediaType is the media type.
    assert resolved.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert [seen.method for seen in server.seen][-1] == "GET"
    assert all(seen.headers["accept"] == ACCEPT for seen in server.seen)


def test_head_is_asked_first() -> None:
    manifests = {"1.0": ({"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)}
    with serve(registry_of(manifests)) as server:
        resolved = resolve_image(server.url, "team/app:1.0")
    assert resolved.digest == DIGEST
    assert server.seen[0].method == "HEAD"
    assert server.seen[0].path == "/v2/team/app/manifests/1.0"


def test_content_that_does_not_match_the_digest_asked_for_is_refused() -> None:
    other = b'{"schemaVersion": 2, "tampered": true}'
    with (
        serve(registry_of({DIGEST: ({}, other)}, digest_header=False)) as server,
        pytest.raises(ProbeError, match="not the digest asked for"),
    ):
        resolve_image(server.url, f"team/app@{DIGEST}")


def test_a_header_digest_other_than_the_one_asked_for_is_refused() -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        return 200, {"Docker-Content-Digest": "sha256:" + "1" * 64}, MANIFEST

    with (
        serve(script) as server,
        pytest.raises(ProbeError, match=r"must serve a digest reference with that digest|its bytes hash to"),
    ):
        resolve_image(server.url, f"team/app@{DIGEST}")


def test_a_header_that_the_bytes_contradict_is_refused() -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        if method == "HEAD":
            return 200, {"Docker-Content-Digest": "not-a-digest"}, MANIFEST
        return 200, {"Docker-Content-Digest": "sha256:" + "2" * 64}, MANIFEST

    with serve(script) as server, pytest.raises(ProbeError, match="its bytes hash to"):
        resolve_image(server.url, "team/app:1.0")


# -- statuses ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "words"),
    [
        ({"Retry-After": "7"}, "retry after 7 seconds"),
        ({"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"}, "retry after 2037-10-21T07:28:00+00:00"),
        ({}, "retry later"),
        ({"Retry-After": "soon\u00e9"}, "retry later (Retry-After: 'soon"),
    ],
)
def test_rate_limiting_says_when_to_retry(retry_after: dict[str, str], words: str) -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        return 429, retry_after, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'

    with serve(script) as server, pytest.raises(ProbeError, match="HTTP 429") as caught:
        resolve_image(server.url, "team/app:1.0")
    assert words in str(caught.value)


def test_a_server_error_and_a_denial() -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        status = 403 if "denied" in path else 500
        body = {"errors": [{"code": "DENIED", "message": f"Authorization: Basic {LOGIN.basic} {LOGIN.password}"}]}
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

    with serve(script) as server:
        with pytest.raises(ProbeError, match="HTTP 500") as failed:
            resolve_image(server.url, "team/app:1.0", credentials=LOGIN)
        with pytest.raises(RegistryAuthError, match="denied access to 'team/denied'") as denied:
            resolve_image(server.url, "team/denied:1.0", credentials=LOGIN)
    for caught in (failed, denied):
        assert LOGIN.password not in str(caught.value)
        assert LOGIN.basic not in str(caught.value)


def test_an_unknown_tag_names_the_tags_there_are() -> None:
    manifests = {"1.0": ({}, MANIFEST), "1.1": ({}, MANIFEST)}
    words = r"not the tag '2\.0' \(its tags: '1\.0', '1\.1'\)"
    with serve(registry_of(manifests)) as server, pytest.raises(ImageNotFoundError, match=words):
        resolve_image(server.url, "team/app:2.0")


def test_a_redirect_is_never_followed_and_the_login_stays_home() -> None:
    with serve(registry_of({"1.0": ({}, MANIFEST)})) as elsewhere:

        def script(method: str, path: str, headers: dict[str, str]) -> Answer:
            if "authorization" not in headers:
                return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
            return 302, {"Location": f"{elsewhere.url}{path}"}, b""

        with serve(script) as server, pytest.raises(ProbeError, match="never followed") as caught:
            resolve_image(server.url, "team/app:1.0", credentials=LOGIN)
    assert elsewhere.seen == []
    assert LOGIN.password not in str(caught.value)


def test_a_server_that_never_answers_costs_one_timeout_per_instance() -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ProbeError, match=r"within 0\.5s"):
            resolve_image(url, "team/app:1.0", timeout=0.5)
        assert time.monotonic() - started < 3 * 0.5 + 2


# -- logins --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def token_world(token_answer: Answer | None = None) -> Iterator[tuple[Server, Server, Server]]:
    """Two instances of a registry wanting a Bearer token from a realm on another port, and that realm."""

    def realm_script(method: str, path: str, headers: dict[str, str]) -> Answer:
        if token_answer is not None:
            return token_answer
        if headers.get("authorization") not in (None, f"Basic {LOGIN.basic}"):
            return 401, {}, b"{}"
        return 200, {"Content-Type": "application/json"}, b'{"token": "tok-abcdef123456"}'

    with serve(realm_script) as realm:

        def registry_script(method: str, path: str, headers: dict[str, str]) -> Answer:
            if headers.get("authorization") != "Bearer tok-abcdef123456":
                challenge = f'Bearer realm="{realm.url}/token?x=1",service="svc",scope="repository:team/app:pull"'
                return 401, {"WWW-Authenticate": challenge}, b""
            return 200, {"Docker-Content-Digest": DIGEST}, MANIFEST

        with serve(registry_script) as registry, serve(registry_script) as replica:
            yield registry, replica, realm


def test_the_login_goes_to_the_realm_and_only_the_token_to_the_registry() -> None:
    with token_world() as (registry, _, realm):
        resolved = resolve_image(registry.url, "team/app:1.0", credentials=LOGIN)
    assert resolved.digest == DIGEST
    assert [seen.headers.get("authorization") for seen in realm.seen] == [f"Basic {LOGIN.basic}"]
    assert realm.seen[0].path.startswith("/token?x=1&service=svc&scope=repository%3Ateam%2Fapp%3Apull&account=alice")
    sent = [seen.headers.get("authorization") for seen in registry.seen]
    assert sent[0] is None
    assert set(sent[1:]) == {"Bearer tok-abcdef123456"}  # never the password


def test_instances_share_one_token() -> None:
    with token_world() as (registry, replica, realm):
        plan = build_plan(
            RegistrySpec.from_url(f"http://127.0.0.1:{registry.port}"),
            StaticBackend([registry.address, replica.address]),
            guard=LOOPBACK,
        )
        resolved = resolve_image(plan, "team/app:1.0", all_instances=True, credentials=LOGIN)
    assert dict(resolved.digests) == {registry.address: DIGEST, replica.address: DIGEST}
    assert len(realm.seen) == 1
    assert replica.seen
    assert registry.seen


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        ((200, {}, b'{"nothing": 1}'), ProbeError, "without a token"),
        ((200, {}, b"[[[["), ProbeError, "without a token"),
        ((200, {}, b'{"token": "bad token\\n"}'), ProbeError, "without a token"),
        ((500, {}, b""), ProbeError, "answered HTTP 500"),
        ((403, {}, b""), RegistryAuthError, "refused the credentials"),
    ],
)
def test_a_realm_that_answers_badly(answer: Answer, error: type[Exception], words: str) -> None:
    with token_world(answer) as (registry, _, _), pytest.raises(error, match=words):
        resolve_image(registry.url, "team/app:1.0", credentials=LOGIN)


@pytest.mark.parametrize(
    ("challenge", "credentials", "words"),
    [
        ("", LOGIN, "no Basic or Bearer challenge"),
        ('Negotiate realm="x"', LOGIN, r"challenges: 'negotiate'"),
        ('Bearer realm="ftp://example/token"', LOGIN, "is not an http"),
        ('Bearer realm="http://user:pw@127.0.0.1:1/token"', LOGIN, "user-info"),
        ('Bearer service="x"', None, "is not an http"),
        ('Bearer realm="http://bad host:1/token"', LOGIN, "cannot be asked"),
        ('Bearer realm="http://[::1/token"', LOGIN, "is not an http"),
        ('Bearer realm="http://127.0.0.1:99999/token"', LOGIN, "is not an http"),
    ],
)
def test_challenges_that_cannot_be_answered(challenge: str, credentials: Credentials | None, words: str) -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        return 401, ({"WWW-Authenticate": challenge} if challenge else {}), b""

    with serve(script) as server, pytest.raises(RegistryAuthError, match=words):
        resolve_image(server.url, "team/app:1.0", credentials=credentials)


# -- arguments -----------------------------------------------------------------------------------------------


def test_bad_arguments_fail_before_any_request(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1"
    with pytest.raises(InvalidInput, match="timeout"):
        resolve_image(url, "app:1", timeout=0)
    with pytest.raises(InvalidInput, match="timeout"):
        resolve_image(url, "app:1", timeout=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="OS/ARCHITECTURE"):
        resolve_image(url, "app:1", platform="amd64")
    with pytest.raises(InvalidInput, match="does not exist"):
        resolve_image(url, "app:1", ca_bundle=tmp_path / "absent.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidInput, match="cannot be loaded"):
        resolve_image(url, "app:1", ca_bundle=tmp_path / "junk.pem")
    with pytest.raises(InvalidInput, match="must be a Credentials"):
        resolve_image(url, "app:1", credentials=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="give a plan"):
        resolve_image(42, "app:1")  # type: ignore[arg-type]
    with pytest.raises(InvalidImageReference, match="must be text"):
        resolve_image(url, 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageReference, match="'App:1'"):
        resolve_image(url, "App:1")
    with pytest.raises(InvalidImageReference, match="names the registry 'localhost'"):
        resolve_image(url, "localhost/app:1")
    with pytest.warns(RegistryConfigWarning, match="holds only the registry URL's own address"):
        empty = build_plan(RegistrySpec.from_url(url), StaticBackend([]), allow_empty=True)  # 127.0.0.1: refused
    with pytest.raises(ProbeError, match="no instance to ask"):
        resolve_image(empty, "app:1")


def test_references_naming_this_registry_in_any_spelling() -> None:
    with serve(registry_of({"1.0": ({}, MANIFEST)})) as server:
        plan = build_plan(
            RegistrySpec.from_url(f"http://localhost:{server.port}"), StaticBackend([server.address]), guard=LOOPBACK
        )
        for text in (f"localhost:{server.port}/team/app:1.0", f"{server.address}/team/app:1.0", "team/app:1.0"):
            resolved = resolve_image(plan, text)
            assert resolved.pinned == f"localhost:{server.port}/team/app@{DIGEST}"
        ref = ImageReference.parse(f"localhost:{server.port}/team/app:1.0")
        assert resolve_image(plan, ref).digest == DIGEST


def test_a_consul_name_is_pinned_by_the_instance_with_a_warning() -> None:
    with serve(registry_of({"1.0": ({}, MANIFEST)})) as server:
        plan = build_plan(
            RegistrySpec.from_url(f"http://docker_registry.service.consul:{server.port}"),
            StaticBackend([server.address]),
            guard=LOOPBACK,
        )
        with pytest.warns(RegistryConfigWarning, match="Docker refuses '_'"):
            resolved = resolve_image(plan, "team/app:1.0")
    assert resolved.pinned == f"{server.address}/team/app@{DIGEST}"
    assert resolved.instance == server.address


def test_a_platform_asked_of_a_single_manifest_warns_that_it_has_no_effect() -> None:
    manifests = {"1.0": ({"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)}
    with serve(registry_of(manifests)) as server, pytest.warns(RegistryConfigWarning, match="has no effect"):
        resolved = resolve_image(server.url, "team/app:1.0", platform="linux/amd64")
    assert resolved.digest == DIGEST


def test_to_dict_is_json() -> None:
    with serve(registry_of({"1.0": ({}, MANIFEST)})) as server:
        resolved = resolve_image(server.url, "team/app:1.0")
    assert json.loads(json.dumps(resolved.to_dict())) == {
        "pinned": f"{server.address}/team/app@{DIGEST}",
        "digest": DIGEST,
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "reference": f"{server.address}/team/app@{DIGEST}",
        "instance": server.address,
        "digests": {server.address: DIGEST},
    }
    assert hash(resolved) == hash(attrs.evolve(resolved))


# -- pure parts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (['Basic realm="Registry Realm"'], [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            [
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"'
            ],
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
        ),
        (
            ['Basic realm="a, b", Bearer realm="x",error="insufficient_scope"'],
            [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "x", "error": "insufficient_scope"})],
        ),
        (
            ['BEARER Realm = "q\\"uoted" , Service=plain'],
            [Challenge("bearer", {"realm": 'q"uoted', "service": "plain"})],
        ),
        (["Basic dXNlcjpwYXNz=="], [Challenge("basic", {})]),
        (["Basic", "Bearer realm=x"], [Challenge("basic", {}), Challenge("bearer", {"realm": "x"})]),
        (['Bearer realm="unterminated'], [Challenge("bearer", {"realm": "unterminated"})]),
        ([""], []),
        ([", ,"], []),
    ],
)
def test_challenges_are_read_as_docker_reads_them(headers: list[str], expected: list[Challenge]) -> None:
    assert list(parse_challenges(headers)) == expected


@given(st.lists(st.text(max_size=80), max_size=3))
def test_any_header_text_parses_without_an_exception(headers: list[str]) -> None:
    for challenge in parse_challenges(headers):
        assert challenge.scheme == challenge.scheme.lower()


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=10)


@given(
    _token,
    st.dictionaries(_token, st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=4),
)
def test_a_written_challenge_reads_back(scheme: str, params: dict[str, str]) -> None:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = scheme + " " + ", ".join(f"{name}={quoted(value)}" for name, value in params.items())
    assert parse_challenges([header]) == (Challenge(scheme, params),)


def test_digests_and_media_types() -> None:
    assert is_digest(DIGEST)
    assert is_digest("sha512:" + "a" * 128)
    assert not is_digest("sha256:" + "A" * 64)
    assert not is_digest("sha256:" + "a" * 63)
    assert not is_digest("md5:" + "a" * 32)
    assert compute_digest(b"", "sha256") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert media_type_of("application/vnd.oci.image.index.v1+json; charset=utf-8") == (
        "application/vnd.oci.image.index.v1+json"
    )
    assert media_type_of("application/json", b'{"manifests": []}') == "application/vnd.oci.image.index.v1+json"
    assert media_type_of(None, b"garbage") == "application/octet-stream"
    assert media_type_of("application/json", b"[]") == "application/json"


def test_platforms() -> None:
    def entry(os_name: str, architecture: str, variant: str | None = None) -> PlatformEntry:
        return PlatformEntry(DIGEST, "", os_name, architecture, variant)

    assert Platform.parse("Linux/AMD64") == Platform("linux", "amd64")
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    assert Platform.parse("linux/amd64").matches(entry("linux", "amd64"))
    assert not Platform.parse("linux/amd64").matches(entry("windows", "amd64"))
    assert Platform.parse("linux/arm64/v8").matches(entry("linux", "arm64"))
    assert not Platform.parse("linux/arm/v7").matches(entry("linux", "arm", "v6"))
    for bad in ("linux", "linux/amd64/v1/x", "linux//amd64", "linux/amd 64", ""):
        with pytest.raises(InvalidInput, match="OS/ARCHITECTURE"):
            Platform.parse(bad)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_index_entries_never_raise(body: bytes) -> None:
    entries = index_entries(body)
    assert entries is None or all(is_digest(entry.digest) for entry in entries)


def test_index_entries_keep_only_platform_manifests() -> None:
    body = json.dumps(
        {
            "manifests": [
                {"digest": DIGEST, "mediaType": "m", "platform": {"os": "linux", "architecture": "amd64"}},
                {"digest": DIGEST, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
                {"digest": "sha256:short", "platform": {"os": "linux", "architecture": "arm64"}},
                "junk",
            ]
        }
    ).encode()
    assert index_entries(body) == [PlatformEntry(DIGEST, "m", "linux", "amd64")]
    assert index_entries(b'{"schemaVersion": 2}') is None


def test_retry_after_words() -> None:
    assert _retry_after("120") == "retry after 120 seconds (Retry-After)"
    assert _retry_after(None).startswith("retry later")
    assert _retry_after("99999999999").startswith("retry later")


def test_warnings_are_errors_here() -> None:
    # pytest runs with filterwarnings=error: a stray RegistryConfigWarning in the tests above would fail them.
    with pytest.raises(RegistryConfigWarning):
        warnings.warn("x", RegistryConfigWarning, stacklevel=1)


@given(st.text(max_size=40) | st.sampled_from(["app", "a/b:1", "a@sha256:" + "0" * 64, "x:5000/a", ":", "@", "/"]))
def test_any_reference_text_ends_in_a_library_error(text: str) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused, at once
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises((InvalidImageReference, ProbeError)):
            resolve_image(url, text, timeout=2)


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502])
def test_a_server_that_reflects_the_login_everywhere_never_gets_it_into_a_message(status: int) -> None:
    """Reason phrase, headers and body all echo the password and the Basic value: none reaches the error."""
    secret_bits = f"{LOGIN.password} Basic {LOGIN.basic} Authorization: Basic {LOGIN.basic}"

    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        body = {"errors": [{"code": secret_bits, "message": secret_bits}]}
        answer_headers = {
            "Retry-After": LOGIN.password,
            "WWW-Authenticate": f'Basic realm="{LOGIN.password}"' if "authorization" not in headers else secret_bits,
            "Docker-Content-Digest": LOGIN.password,
        }
        if path.endswith("/tags/list"):
            return 200, {}, json.dumps({"tags": [LOGIN.password, secret_bits]}).encode()
        return status, answer_headers, json.dumps(body).encode()

    with serve(script) as server, pytest.raises((ProbeError, RegistryAuthError, ImageNotFoundError)) as caught:
        resolve_image(server.url, "team/app:1.0", credentials=LOGIN)
    seen: BaseException | None = caught.value
    while seen is not None:
        assert LOGIN.password not in str(seen)
        assert LOGIN.basic not in str(seen)
        seen = seen.__cause__ or seen.__context__


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).filter(
    lambda text: "://" not in text  # no realm naming some host: the test's traffic stays on loopback
)


@given(
    st.one_of(
        _HEADER_TEXT,
        _HEADER_TEXT.map(lambda text: f'Bearer realm="{text}"'),
        _HEADER_TEXT.map(lambda text: f'Bearer realm="http://127.0.0.1:1/{text}",scope="{text}"'),
    )
)
def test_any_challenge_a_server_sends_ends_in_a_library_error(challenge: str) -> None:
    def script(method: str, path: str, headers: dict[str, str]) -> Answer:
        return 401, {"WWW-Authenticate": challenge}, b""

    with serve(script) as server, pytest.raises((RegistryAuthError, ProbeError)):
        resolve_image(server.url, "team/app:1.0", credentials=LOGIN, timeout=2)
