"""The one redaction path (redact, then shorten) and atomic file writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config.files import PRIVATE_MODE, write_atomically
from registry_config.redact import MARK, quote, redact, shorten

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
