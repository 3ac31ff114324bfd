"""Registry credentials: a user name and a password that no ``repr``, message or log ever shows.

A private image needs a login, and a login that reaches a log line or a
traceback is a leaked login. :class:`Credentials` keeps the password out of
its ``repr`` and ``str`` (and out of attrs' generated comparison output), so
printing a value, an exception that holds one, or a debug dump of locals
shows the user name only. A registry token is the password of a token user
(Docker's ``<token>`` user for identity tokens is written the same way).

The command line never takes a password as an argument (the process list
shows argv to every user of the machine): :func:`load_credentials` reads the
file named by ``--credentials-file``, or else by the
``REGISTRY_CONFIG_CREDENTIALS_FILE`` environment variable.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from .errors import InvalidInput
from .redact import quote

__all__ = ["CREDENTIALS_FILE_VARIABLE", "Credentials", "load_credentials"]

CREDENTIALS_FILE_VARIABLE = "REGISTRY_CONFIG_CREDENTIALS_FILE"
"""The environment variable naming the credentials file when ``--credentials-file`` is not given."""

_MAX_FILE_BYTES = 64 * 1024  # a user:password line; anything larger is not a credentials file


def _check_text(field: str, value: object, *, allow_colon: bool) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"credentials: the {field} must be text, got {type(value).__name__}")
    if not value:
        raise InvalidInput(f"credentials: the {field} is empty; give a non-empty {field}")
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        # A newline or NUL in a header value is a header injection, and no registry accepts one.
        raise InvalidInput(f"credentials: the {field} holds a control character (a newline?); remove it")
    if not allow_colon and ":" in value:
        raise InvalidInput(
            "credentials: the username holds ':', which Basic authentication cannot carry "
            "(the first ':' separates the user from the password)"
        )


@attrs.frozen(repr=False)
class Credentials:
    """A registry login: ``username`` and ``password`` (or a token as the password).

    ``repr`` and ``str`` show the user name only. ``username`` may not hold
    ``:`` (Basic authentication splits at the first one); neither may hold a
    control character.
    """

    username: str
    password: str = attrs.field(repr=False, eq=True)

    def __attrs_post_init__(self) -> None:
        _check_text("username", self.username, allow_colon=False)
        _check_text("password", self.password, allow_colon=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read one ``user:password`` line (split at the first ``:``, the trailing newline dropped).

        Raises :class:`~registry_config.errors.InvalidInput` naming the file
        (never its content) when it cannot be read or is not one such line.
        """
        where = quote(os.fspath(path))
        try:
            with Path(path).open("rb") as stream:
                raw = stream.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidInput(f"credentials file {where}: cannot read it ({exc.strerror or exc})") from None
        if len(raw) > _MAX_FILE_BYTES:
            raise InvalidInput(f"credentials file {where} is larger than {_MAX_FILE_BYTES} bytes; give one line")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"credentials file {where} is not UTF-8 text (byte {exc.start})") from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if "\n" in text or "\r" in text:
            raise InvalidInput(f"credentials file {where} holds more than one line; give one user:password line")
        username, colon, password = text.partition(":")
        if not colon:
            raise InvalidInput(f"credentials file {where} has no ':'; write one line user:password")
        try:
            return cls(username, password)
        except InvalidInput as exc:
            raise InvalidInput(f"credentials file {where}: {exc}") from None

    @property
    def basic(self) -> str:
        """``base64(user:password)``: the value of a Basic ``Authorization`` header and of an ``auths`` entry."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<redacted>)"

    def __str__(self) -> str:
        return f"{self.username}:<redacted>"


def load_credentials(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials in ``path``, else in the file ``REGISTRY_CONFIG_CREDENTIALS_FILE`` names, else ``None``.

    An empty variable counts as unset. This is how the command line reads
    ``--credentials-file``: a password never travels in argv.
    """
    if path is None:
        named = (os.environ if environ is None else environ).get(CREDENTIALS_FILE_VARIABLE, "")
        if not named:
            return None
        path = named
    return Credentials.from_file(path)
