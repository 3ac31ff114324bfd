"""The one redaction path (redact, then shorten) and atomic file writes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import SECRET_MARK, marked_secrets

from registry_config import ImageReference, InsecurityPolicy, RegistrySpec, StaticBackend, build_plan, probe_registry
from registry_config.discovery.registry import backend_from_url
from registry_config.errors import InvalidRegistryURL, RegistryConfigError
from registry_config.files import PRIVATE_MODE, write_atomically
from registry_config.redact import MARK, quote, redact, secrets_of, shorten

TOKEN = "3f1c2b9e-5a7d-4c11-9e0f-7b6a5d4c3b2a"


def test_known_secret_is_replaced_everywhere() -> None:
    assert redact(f"echo {TOKEN} and {TOKEN}", [TOKEN]) == f"echo {MARK} and {MARK}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:pa/ss@host:5000/x", "https://***@host:5000/x"),
        ("consul://u:p@w@127.0.0.1:8500", "consul://***@127.0.0.1:8500"),
        ("https://r:5000?token=abcdef&x=1", f"https://r:5000?token={MARK}&x=1"),
        ("X-Consul-Token: abcdefgh", f"X-Consul-Token: {MARK}"),
        ("Authorization: Bearer abc.def.ghi", f"Authorization: {MARK}"),
        ("got Basic dXNlcjpwYXNzd29yZA== back", f"got Basic {MARK} back"),
    ],
)
def test_urls_queries_and_headers_are_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


@given(st.integers(min_value=0, max_value=120), st.integers(min_value=10, max_value=100))
def test_a_token_straddling_the_cut_never_leaks(before: int, limit: int) -> None:
    shown = quote("x" * before + TOKEN + "y" * 50, secrets=[TOKEN], limit=limit)
    for size in range(6, len(TOKEN) + 1):
        for start in range(len(TOKEN) - size + 1):
            assert TOKEN[start : start + size] not in shown


def test_shorten_and_quote() -> None:
    assert shorten("abcdef", 5) == "ab..."
    assert shorten("abc", 5) == "abc"
    assert quote("a\nb") == "'a\\nb'"


def test_atomic_write_creates_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    write_atomically(target, "{}")
    assert target.read_text() == "{}"
    target.chmod(0o640)
    write_atomically(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]


def test_atomic_write_through_a_symlink_replaces_the_target(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomically(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_private_files_are_never_wider_than_0600(tmp_path: Path) -> None:
    new = tmp_path / "auth.json"
    write_atomically(new, "{}", private=True)
    assert stat.S_IMODE(new.stat().st_mode) == PRIVATE_MODE
    wide = tmp_path / "config.json"
    wide.write_text("{}")
    wide.chmod(0o644)
    write_atomically(wide, "{}", private=True)
    assert stat.S_IMODE(wide.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"old": true}')
    with pytest.raises(UnicodeEncodeError):
        write_atomically(target, "\udcff")
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["daemon.json"]


# --- every parser that echoes an entry: no piece of a secret in any message, repr, str or chained exception ---


def _everything_shown(exc: BaseException) -> str:
    """Every text an exception can show: str and repr of it and of everything chained to it."""
    seen: list[str] = []
    pending: list[BaseException | None] = [exc]
    visited: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in visited:
            continue
        visited.add(id(current))
        seen += [str(current), repr(current), *(repr(arg) for arg in current.args)]
        pending += [current.__cause__, current.__context__]
    return "\n".join(seen)


def _entry_parsers(secret: str) -> list[tuple[str, Callable[[], object]]]:
    url_query = secret.replace("&", "").replace("=", "")  # in a query, '&' and '=' would end the value by rule
    return [
        ("registry URL user-info", lambda: RegistrySpec.from_url(f"https://user:{secret}@registry:5000/")),
        ("registry URL token user-info", lambda: RegistrySpec.from_url(f"http://{secret}@registry:5000")),
        ("registry URL query", lambda: RegistrySpec.from_url(f"https://registry:5000?token={url_query}")),
        ("registry URL bare query", lambda: RegistrySpec.from_url(f"https://registry:5000/?{url_query}")),
        ("registry URL fragment", lambda: RegistrySpec.from_url(f"https://registry:5000#{secret}")),
        ("insecure entry", lambda: InsecurityPolicy.from_entries([f"admin:{secret}@registry:5000"])),
        ("insecure URL entry", lambda: InsecurityPolicy.from_entries([f"https://admin:{secret}@registry:5000"])),
        ("static entry", lambda: StaticBackend(["10.0.0.1:5000", f"admin:{secret}@10.0.0.2:5000"])),
        ("static backend URL", lambda: backend_from_url(f"static:admin:{secret}@10.0.0.2:5000")),
        ("unknown backend URL", lambda: backend_from_url(f"nothere://admin:{secret}@h:1?token={url_query}")),
        ("dns backend URL", lambda: backend_from_url(f"dns://admin:{secret}@127.0.0.1:53")),
        ("probe instance", lambda: probe_registry("http://127.0.0.1:9", instances=[f"admin:{secret}@10.0.0.1:5000"])),
        ("image reference URL", lambda: ImageReference.parse(f"https://u:{secret}@registry:5000/app")),
        ("image reference user-info", lambda: ImageReference.parse(f"u:{secret}@registry:5000/app:1")),
        (
            "extra insecure entry",
            lambda: build_plan(
                RegistrySpec.from_url("http://registry:5000"),
                StaticBackend(["10.0.0.1:5000"]),
                extra_insecure=[f"admin:{secret}@registry:5001"],
            ),
        ),
    ]


@given(marked_secrets())
def test_no_entry_parser_echoes_any_piece_of_a_secret(secret: str) -> None:
    for what, parse in _entry_parsers(secret):
        try:
            parse()
        except RegistryConfigError as exc:
            shown = _everything_shown(exc)
            assert SECRET_MARK not in shown, f"{what}: {shown}"
        else:
            raise AssertionError(f"{what} accepted an entry carrying a secret")


@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=8, max_size=60),
    st.integers(min_value=0, max_value=150),
    st.integers(min_value=10, max_value=120),
)
def test_a_random_secret_around_the_cut_never_leaks(secret: str, before: int, limit: int) -> None:
    assume(len(set(secret)) > 3)
    shown = quote("x" * before + secret + "y" * 50, secrets=[secret], limit=limit)
    text = eval(shown)  # noqa: S307 (quote returns a repr of a str; this reads it back)
    for size in range(8, len(secret) + 1):
        for start in range(len(secret) - size + 1):
            assert secret[start : start + size] not in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://u:p w@host:5000", "https://***@host:5000"),  # a blank in the password
        ("u:p'w\"@host:5000", "***@host:5000"),
        ("https://r:5000?token=abc&dc=dc1", f"https://r:5000?token={MARK}&dc=dc1"),
        ("https://r:5000?abcdef", f"https://r:5000?{MARK}"),
        ("https://r:5000#frag", f"https://r:5000#{MARK}"),
        ("u:p://x@h", "***@h"),  # a '://' inside the password is no scheme
        ("registry:5000", "registry:5000"),
    ],
)
def test_entries_are_redacted_whole(text: str, shown: str) -> None:
    assert redact(text, entry=True) == shown


def test_a_secret_is_also_redacted_in_its_repr_spelling() -> None:
    secret = "pa'ss\\word"
    assert redact(f"echo {secret!r}", [secret]) == f"echo '{MARK}'" or secret not in redact(repr(secret), [secret])
    assert "ss\\\\word" not in redact(repr(f"x {secret}"), [secret])


def test_secrets_of_an_entry() -> None:
    assert set(secrets_of("consul://user:pa/ss@h?token=t0k3n&dc=dc1#frag")) == {"user:pa/ss", "pa/ss", "t0k3n", "frag"}
    assert secrets_of("registry:5000") == ()


def test_column_numbers_count_the_text_as_shown() -> None:
    with pytest.raises(InvalidRegistryURL) as caught:
        RegistrySpec.from_url("http://user:longpassword@registry:5000/\t")
    message = str(caught.value)
    assert "longpassword" not in message
    shown = "http://***@registry:5000/\t"
    assert f"at column {shown.index(chr(9))}" in message
