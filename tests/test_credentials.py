"""Credentials: the password never shown, read from one user:password line, from a file or the environment."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import passwords

from registry_config import Credentials
from registry_config.credentials import CREDENTIALS_FILE_VARIABLE, load_credentials
from registry_config.errors import InvalidInput

users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-@", min_size=1, max_size=20)


@given(users, passwords())
def test_repr_and_str_never_show_the_password(user: str, password: str) -> None:
    credentials = Credentials(user, password)
    for shown in (repr(credentials), str(credentials), f"{credentials}", f"{credentials!r}", repr([credentials])):
        assert password not in shown
        assert user in shown
    assert repr(credentials) == f"Credentials(username={user!r}, password=<redacted>)"


@given(users, passwords())
def test_basic_is_base64_of_user_colon_password(user: str, password: str) -> None:
    assert base64.b64decode(Credentials(user, password).basic).decode() == f"{user}:{password}"


def test_compared_by_value_and_copied_without_losing_the_password() -> None:
    assert Credentials("u", "pw1") == Credentials("u", "pw1")
    assert Credentials("u", "pw1") != Credentials("u", "pw2")
    assert copy.deepcopy(Credentials("u", "pw1")).password == "pw1"


@pytest.mark.parametrize(
    ("user", "password", "words"),
    [
        ("", "pw", "username is empty"),
        ("u", "", "password is empty"),
        ("a:b", "pw", "username holds ':'"),
        ("u\n", "pw", "control character"),
        ("u", "pw\r\nX-Injected: 1", "control character"),
        ("u", "pw\x00", "control character"),
    ],
)
def test_values_no_registry_accepts_are_refused(user: str, password: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        Credentials(user, password)
    if len(password) > 3:
        assert password not in str(caught.value)


def test_types_are_checked() -> None:
    with pytest.raises(InvalidInput, match="must be text"):
        Credentials("u", 1234)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "user", "password"),
    [
        (b"alice:s3cret\n", "alice", "s3cret"),
        (b"alice:s3cret\r\n", "alice", "s3cret"),
        (b"alice:s3cret", "alice", "s3cret"),
        (b"alice:pa:ss:word\n", "alice", "pa:ss:word"),  # split at the first colon
        (b"alice: spaced \n", "alice", " spaced "),  # kept as written: a password may have spaces
        ("jos\u00e9:p\u00e4ss\n".encode(), "jos\u00e9", "p\u00e4ss"),
    ],
)
def test_from_file_reads_one_line(tmp_path: Path, content: bytes, user: str, password: str) -> None:
    path = tmp_path / "login"
    path.write_bytes(content)
    assert Credentials.from_file(path) == Credentials(user, password)
    assert Credentials.from_file(str(path)) == Credentials(user, password)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"alice\n", "has no ':'"),
        (b"alice:one\nbob:two\n", "more than one line"),
        (b"alice:pw\n\n", "more than one line"),
        (b":pw\n", "username is empty"),
        (b"alice:\n", "password is empty"),
        (b"", "has no ':'"),
        (b"alice:\xff\xfe\n", "not UTF-8"),
        (b"alice:" + b"x" * 70000, "larger than"),
    ],
)
def test_from_file_refuses_what_is_not_one_line_and_never_echoes_it(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "login"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=words) as caught:
        Credentials.from_file(path)
    assert str(path) in str(caught.value)
    assert "one\n" not in str(caught.value)
    assert "two" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read it") as caught:
        Credentials.from_file(tmp_path / "absent")
    assert "absent" in str(caught.value)


@given(users, passwords())
def test_from_file_round_trips_any_password(user: str, password: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "login"
        path.write_text(f"{user}:{password}\n", encoding="utf-8")
        assert Credentials.from_file(path) == Credentials(user, password)


def test_load_credentials_prefers_the_path_then_the_environment(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("one:pw-one\n")
    second.write_text("two:pw-two\n")
    environ = {CREDENTIALS_FILE_VARIABLE: str(second)}
    assert load_credentials(first, environ=environ) == Credentials("one", "pw-one")
    assert load_credentials(None, environ=environ) == Credentials("two", "pw-two")
    assert load_credentials(None, environ={}) is None
    assert load_credentials(None, environ={CREDENTIALS_FILE_VARIABLE: ""}) is None


def test_load_credentials_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "login"
    path.write_text("env:pw-env\n")
    monkeypatch.setenv(CREDENTIALS_FILE_VARIABLE, str(path))
    assert load_credentials() == Credentials("env", "pw-env")
    monkeypatch.delenv(CREDENTIALS_FILE_VARIABLE)
    assert load_credentials() is None
