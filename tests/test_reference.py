"""Docker image references: the vectors of github.com/distribution/reference, read as the daemon reads them.

``ImageReference.parse`` is ``reference.ParseNormalizedNamed``: the vectors of
``reference_test.go`` (written for the un-normalized ``Parse``) are given
here with the result after Docker's normalization (``docker.io`` and
``library/`` filled in); ``normalize_test.go`` and moby's
``TestParseRepositoryInfo`` vectors are used as they are.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import HOSTILE_FRAGMENTS, hostile_text, image_references

from registry_config.address import split_host_port
from registry_config.errors import InvalidImageReference
from registry_config.policy import InsecurityPolicy
from registry_config.reference import ImageReference

F64 = "f" * 64
SHA = f"sha256:{F64}"
SHA512 = "sha512:" + "f" * 128
DIGEST = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

# reference_test.go TestReferenceParse: (input, (domain, path, tag, digest)) after normalization.
PARSE_VECTORS: list[tuple[str, tuple[str, str, str | None, str | None]]] = [
    ("test_com", ("docker.io", "library/test_com", None, None)),
    ("test.com:tag", ("docker.io", "library/test.com", "tag", None)),
    ("test.com:5000", ("docker.io", "library/test.com", "5000", None)),
    ("test.com/repo:tag", ("test.com", "repo", "tag", None)),
    ("test:5000/repo", ("test:5000", "repo", None, None)),
    ("test:5000/repo:tag", ("test:5000", "repo", "tag", None)),
    (f"test:5000/repo@{SHA}", ("test:5000", "repo", None, SHA)),
    (f"test:5000/repo:tag@{SHA}", ("test:5000", "repo", "tag", SHA)),
    ("lowercase:Uppercase", ("docker.io", "library/lowercase", "Uppercase", None)),
    ("a/" * 127 + "a:tag-puts-this-over-max", ("docker.io", "a/" * 127 + "a", "tag-puts-this-over-max", None)),
    ("sub-dom1.foo.com/bar/baz/quux", ("sub-dom1.foo.com", "bar/baz/quux", None, None)),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", ("sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None)),
    (
        "b.gcr.io/test.example.com/my-app:test.example.com",
        ("b.gcr.io", "test.example.com/my-app", "test.example.com", None),
    ),
    ("xn--n3h.com/myimage:xn--n3h.com", ("xn--n3h.com", "myimage", "xn--n3h.com", None)),
    (f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}", ("xn--7o8h.com", "myimage", "xn--7o8h.com", SHA512)),
    ("foo_bar.com:8080", ("docker.io", "library/foo_bar.com", "8080", None)),
    ("foo/foo_bar.com:8080", ("docker.io", "foo/foo_bar.com", "8080", None)),
    ("192.168.1.1", ("docker.io", "library/192.168.1.1", None, None)),
    ("192.168.1.1:tag", ("docker.io", "library/192.168.1.1", "tag", None)),
    ("192.168.1.1:5000", ("docker.io", "library/192.168.1.1", "5000", None)),
    ("192.168.1.1/repo", ("192.168.1.1", "repo", None, None)),
    ("192.168.1.1:5000/repo", ("192.168.1.1:5000", "repo", None, None)),
    ("192.168.1.1:5000/repo:5050", ("192.168.1.1:5000", "repo", "5050", None)),
    ("[2001:db8::1]/repo", ("[2001:db8::1]", "repo", None, None)),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", ("[2001:db8:1:2:3:4:5:6]", "repo", "tag", None)),
    ("[2001:db8::1]:5000/repo", ("[2001:db8::1]:5000", "repo", None, None)),
    ("[2001:db8::1]:5000/repo:tag", ("[2001:db8::1]:5000", "repo", "tag", None)),
    (f"[2001:db8::1]:5000/repo@{SHA}", ("[2001:db8::1]:5000", "repo", None, SHA)),
    (f"[2001:db8::1]:5000/repo:tag@{SHA}", ("[2001:db8::1]:5000", "repo", "tag", SHA)),
    ("[2001:db8::]:5000/repo", ("[2001:db8::]:5000", "repo", None, None)),
    ("[::1]:5000/repo", ("[::1]:5000", "repo", None, None)),
]

# reference_test.go TestReferenceParse failures, with the rule our message names.
PARSE_FAILURES = [
    ("", "repository name must have at least one component"),
    (":justtag", "empty path component"),
    (f"@{SHA}", "empty path component"),
    ("repo@sha256:" + "f" * 34, "a sha256 digest has 64 hex digits, this one has 34"),
    (f"validname@invaliddigest:{F64}", "digest algorithm 'invaliddigest' is not supported"),
    ("Uppercase:tag", "repository name 'library/Uppercase' must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "repository name 'Uppercase/lowercase' must be lowercase"),
    ("a/" * 128 + "a:tag", "repository name must not be more than 255 characters"),
    ("aa/asdf$$^/aa", "repository path component 'asdf$$^' breaks the naming rule"),
    ("[2001:db8::1]", "an [IPv6] registry alone is not an image"),
    ("[2001:db8::1]:5000", "an [IPv6] registry alone is not an image"),
    ("[2001:db8::1]:tag", "an [IPv6] registry alone is not an image"),
    ("[fe80::1%eth0]:5000/repo", "registry '[fe80::1%eth0]:5000' is not host[:port]"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_VECTORS)
def test_reference_parse_vectors(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = ImageReference.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == expected
    domain, path, tag, digest = expected
    assert str(ref) == f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assert ImageReference.parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "rule"), PARSE_FAILURES)
def test_reference_parse_failures(text: str, rule: str) -> None:
    with pytest.raises(InvalidImageReference) as caught:
        ImageReference.parse(text)
    assert rule in str(caught.value)
    assert str(caught.value).startswith(f"image reference {text!r}: ")


def test_an_at_before_the_repository_is_read_as_user_info_and_withheld() -> None:
    with pytest.raises(InvalidImageReference) as caught:
        ImageReference.parse("[fe80::1%@invalidzone]:5000/repo")
    assert str(caught.value).startswith("image reference '***@invalidzone]:5000/repo': holds user-info")


# normalize_test.go TestValidateReferenceName
@pytest.mark.parametrize(
    "text",
    [
        "docker/docker",
        "library/debian",
        "debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        # TestValidateRemoteName
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ],
)
def test_valid_reference_names(text: str) -> None:
    ImageReference.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        # TestValidateRemoteName
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255" * 4 + "/docker",
    ],
)
def test_invalid_reference_names(text: str) -> None:
    with pytest.raises(InvalidImageReference):
        ImageReference.parse(text)


def test_hexadecimal_names_are_image_ids() -> None:
    with pytest.raises(InvalidImageReference, match="64-character hexadecimal string: that is an image ID"):
        ImageReference.parse(DIGEST.split(":")[1])


def test_a_scheme_is_named() -> None:
    with pytest.raises(InvalidImageReference, match="has a scheme"):
        ImageReference.parse("https://github.com/docker/docker")


# normalize_test.go TestParseRepositoryInfo: (path, familiar, full, ambiguous, domain)
REPOSITORY_INFO = [
    ("fooo/bar", "fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar", "docker.io"),
    ("library/ubuntu", "ubuntu", "docker.io/library/ubuntu", "library/ubuntu", "docker.io"),
    ("nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", None, "docker.io"),
    ("other/library", "other/library", "docker.io/other/library", None, "docker.io"),
    ("private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", None, "127.0.0.1:8000"),
    ("privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", None, "127.0.0.1:8000"),
    ("private/moonbase", "example.com/private/moonbase", "example.com/private/moonbase", None, "example.com"),
    ("privatebase", "example.com/privatebase", "example.com/privatebase", None, "example.com"),
    (
        "private/moonbase",
        "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase",
        None,
        "example.com:8000",
    ),
    ("privatebasee", "example.com:8000/privatebasee", "example.com:8000/privatebasee", None, "example.com:8000"),
    (
        "library/ubuntu-12.04-base",
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "index.docker.io/library/ubuntu-12.04-base",
        "docker.io",
    ),
    ("library/foo", "foo", "docker.io/library/foo", "docker.io/foo", "docker.io"),
    ("library/foo/bar", "library/foo/bar", "docker.io/library/foo/bar", None, "docker.io"),
    ("store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", None, "docker.io"),
    ("bar", "Foo/bar", "Foo/bar", None, "Foo"),
    ("bar", "FOO/bar", "FOO/bar", None, "FOO"),
]


@pytest.mark.parametrize(("path", "familiar", "full", "ambiguous", "domain"), REPOSITORY_INFO)
def test_repository_info(path: str, familiar: str, full: str, ambiguous: str | None, domain: str) -> None:
    for text in filter(None, (familiar, full, ambiguous)):
        ref = ImageReference.parse(text)
        assert ref.familiar == familiar
        assert str(ref) == full
        assert ref.domain == domain
        assert ref.path == path


def test_tag_and_digest_together() -> None:
    """TestParseReferenceWithTagAndDigest."""
    short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = ImageReference.parse(short)
    assert str(ref) == "docker.io/library/" + short
    assert ref.tag == "latest"
    assert ref.digest == short.split("@")[1]
    assert ref.familiar == short


@pytest.mark.parametrize(
    ("text", "equivalent"),
    [
        ("redis", "docker.io/library/redis"),
        ("redis:latest", "docker.io/library/redis:latest"),
        ("docker.io/library/redis:latest", "docker.io/library/redis:latest"),
        (f"redis@{DIGEST}", f"docker.io/library/redis@{DIGEST}"),
        (f"docker.io/library/redis@{DIGEST}", f"docker.io/library/redis@{DIGEST}"),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp"),
        ("dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
        ("docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"),
        (f"dmcgowan/myapp@{DIGEST}", f"docker.io/dmcgowan/myapp@{DIGEST}"),
        (f"docker.io/dmcgowan/myapp@{DIGEST}", f"docker.io/dmcgowan/myapp@{DIGEST}"),
        (DIGEST.split(":")[1][:-1], "docker.io/library/" + DIGEST.split(":")[1][:-1]),
        ("dbcc1", "docker.io/library/dbcc1"),
        # ParseNormalizedNamed (not ParseAnyReference) reads a bare digest as image 'sha256' tagged with the hex.
        (DIGEST, f"docker.io/library/{DIGEST}"),
    ],
)
def test_parse_any_reference_named_vectors(text: str, equivalent: str) -> None:
    """TestParseAnyReference, for the references that are names."""
    assert str(ImageReference.parse(text)) == equivalent
    assert ImageReference.parse(text) == ImageReference.parse(equivalent)


@pytest.mark.parametrize(
    ("text", "domain", "path"),
    [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ("localhost/foo", "localhost", "foo"),
        ("localhost:5000/foo", "localhost:5000", "foo"),
        ("localhost", "docker.io", "library/localhost"),
    ],
)
def test_normalized_split_hostname(text: str, domain: str, path: str) -> None:
    """TestNormalizedSplitHostname."""
    ref = ImageReference.parse(text)
    assert (ref.domain, ref.path) == (domain, path)


# moby registry_test.go TestParseRepositoryInfo: which registry (index) the daemon contacts.
@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("fooo/bar", "docker.io"),
        ("ubuntu", "docker.io"),
        ("index.docker.io/public/moonbase", "docker.io"),
        ("docker.io/ubuntu-12.04-base", "docker.io"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000"),
        ("[::1]:8000/privatebase", "[::1]:8000"),
        ("[::2]:8000/private/moonbase", "[::2]:8000"),
        ("localhost:8000/privatebase", "localhost:8000"),
        ("localhost/privatebase", "localhost"),
        ("example.com:8000/privatebase", "example.com:8000"),
        ("Example.COM:8000/privatebase", "example.com:8000"),
        ("[2001:DB8:0:0:0:0:0:1]:5000/app", "[2001:db8::1]:5000"),
        ("registry-1.docker.io/library/ubuntu", "registry-1.docker.io"),
    ],
)
def test_registry_is_what_the_daemon_contacts(text: str, registry: str) -> None:
    assert ImageReference.parse(text).registry == registry


# --- where we refuse what Docker's grammar lets through: nothing could be contacted there ----------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("registry:0/app", "port '0' is not a number in 1..65535"),
        ("registry:99999/app", "port '99999' is not a number in 1..65535"),
        ("[:::::]/app", "in brackets is not an IPv6 address"),
        ("[ffff]:5000/app", "in brackets is not an IPv6 address"),
    ],
)
def test_uncontactable_registries_are_refused(text: str, rule: str) -> None:
    with pytest.raises(InvalidImageReference, match="cannot be contacted") as caught:
        ImageReference.parse(text)
    assert rule in str(caught.value)


def test_underscore_in_a_registry_name_is_refused_as_docker_does() -> None:
    """Docker's domain grammar has no '_': an image cannot name docker_registry.service.consul as its registry."""
    with pytest.raises(InvalidImageReference, match=r"'_' is not allowed in a registry's name"):
        ImageReference.parse("docker_registry.service.dc1.consul:8080/app:1.0")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("app:-x", "tag '-x' breaks the tag rule"),
        ("app:" + "t" * 129, "breaks the tag rule"),
        ("app:tàg", "breaks the tag rule"),
        ("app@sha256:abc", "digest 'sha256:abc' is not ALGORITHM:HEX"),
        ("app@SHA256:" + F64, "must be lowercase"),
        ("app@sha256:" + "F" * 64, "a sha256 digest is written in lower-case hex"),
        ("app@md5:" + "f" * 32, "digest algorithm 'md5' is not supported (Docker knows sha256, sha384, sha512)"),
        ("reg istry/app", "contains ' ' at column 3"),
        ("app\n", "contains '\\n' at column 3"),
        ("a,b/app", "breaks the naming rule"),
        ("registry.example/app/", "empty path component"),
    ],
)
def test_each_refusal_names_its_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidImageReference) as caught:
        ImageReference.parse(text)
    assert rule in str(caught.value)


@pytest.mark.parametrize("value", [None, 1, b"ubuntu", ["ubuntu"]])
def test_parse_refuses_what_is_not_text(value: object) -> None:
    with pytest.raises(InvalidImageReference, match="must be text"):
        ImageReference.parse(value)  # type: ignore[arg-type]


# --- value semantics --------------------------------------------------------------------------------------------


def test_repr_and_value_semantics() -> None:
    ref = ImageReference.parse("ubuntu:22.04")
    assert repr(ref) == "ImageReference.parse('docker.io/library/ubuntu:22.04')"
    assert eval(repr(ref), {"ImageReference": ImageReference}) == ref  # noqa: S307 (repr is documented to rebuild)
    assert ref == ImageReference.parse("docker.io/library/ubuntu:22.04")
    assert hash(ref) == hash(ImageReference.parse("index.docker.io/library/ubuntu:22.04"))
    assert ref.name == "docker.io/library/ubuntu"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ref.tag = "latest"  # type: ignore[misc]
    assert str(attrs.evolve(ref, tag="24.04")) == "docker.io/library/ubuntu:24.04"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("docker.io", "ubuntu"), "is not in normalized form; use ImageReference.parse('docker.io/ubuntu')"),
        (("index.docker.io", "library/ubuntu"), "not in normalized form"),
        (("registry.example", "app", "-bad"), "breaks the tag rule"),
        (("registry.example/x", "app"), "not in normalized form"),
    ],
)
def test_direct_construction_must_be_normalized(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidImageReference) as caught:
        ImageReference(*args)
    assert message in str(caught.value)


def test_is_insecure_under_asks_the_policy_about_the_registry() -> None:
    policy = InsecurityPolicy.from_entries(["registry.internal:5000"], resolver=lambda host: [])
    assert ImageReference.parse("registry.internal:5000/team/app:1").is_insecure_under(policy)
    assert not ImageReference.parse("registry.internal/team/app:1").is_insecure_under(policy)
    assert not ImageReference.parse("ubuntu").is_insecure_under(policy)
    assert ImageReference.parse("localhost:5000/app").is_insecure_under(policy) is False  # [] resolves to nothing
    assert ImageReference.parse("127.0.0.1:5000/app").is_insecure_under(policy)


# --- properties -------------------------------------------------------------------------------------------------


@given(image_references())
def test_valid_references_parse_and_round_trip(text: str) -> None:
    ref = ImageReference.parse(text)
    assert ImageReference.parse(str(ref)) == ref
    assert ImageReference.parse(ref.familiar) == ref
    assert str(ref).endswith(text.split("/")[-1])
    host, port = split_host_port(ref.registry)
    assert host == host.lower()
    assert port is None or 1 <= port <= 65535
    if ref.domain == "docker.io":
        assert ref.registry == "docker.io"
    else:
        assert split_host_port(ref.domain) == (host, port)
        assert text.startswith(ref.domain + "/")


@given(st.text())
def test_parse_raises_only_invalid_image_reference(text: str) -> None:
    try:
        ref = ImageReference.parse(text)
    except InvalidImageReference:
        return
    split_host_port(ref.registry)


@given(hostile_text(base=image_references()))
def test_hostile_text_never_reaches_the_registry(text: str) -> None:
    try:
        ref = ImageReference.parse(text)
    except InvalidImageReference:
        return
    for fragment in HOSTILE_FRAGMENTS:
        if fragment in (":", "::", "-", "[", "]"):
            continue  # legitimate in host:port and [IPv6]:port
        assert fragment not in ref.registry
