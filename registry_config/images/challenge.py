"""Reading ``WWW-Authenticate`` challenges as Docker clients do (RFC 7235 auth-params).

A registry that wants a login answers ``401`` with one or more challenges:
``Basic realm="Registry Realm"`` (htpasswd) or ``Bearer
realm="https://auth.example/token",service="registry.example",
scope="repository:team/app:pull"`` (token authentication). The parser is
total: any header text gives a tuple of challenges (possibly empty), never an
exception, since the text comes from a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .._reduce import by_fields

__all__ = ["Challenge", "parse_challenges"]

# RFC 7230 tchar: the characters a token (a scheme or a parameter name) may hold.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SPACE = " \t"


def _params(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Challenge:
    """One challenge: its scheme, lower-cased (``basic``, ``bearer``), and its parameters (names lower-cased)."""

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_params, hash=False)

    def get(self, name: str) -> str | None:
        return self.params.get(name.lower())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied by its fields (``params`` as a dict), rebuilt by the constructor."""
        return by_fields(self)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.text)

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip(self, characters: str) -> None:
        while self.at < len(self.text) and self.text[self.at] in characters:
            self.at += 1

    def token(self) -> str:
        start = self.at
        while self.at < len(self.text) and self.text[self.at] in _TCHAR:
            self.at += 1
        return self.text[start : self.at]

    def quoted(self) -> str:
        """A quoted-string after its opening quote; an unterminated one ends at the end of the text."""
        out: list[str] = []
        while self.at < len(self.text):
            character = self.text[self.at]
            self.at += 1
            if character == "\\" and self.at < len(self.text):
                out.append(self.text[self.at])
                self.at += 1
            elif character == '"':
                break
            else:
                out.append(character)
        return "".join(out)


def _parse_one_header(text: str) -> list[Challenge]:
    reader = _Reader(text)
    challenges: list[Challenge] = []
    while not reader.done():
        reader.skip(_SPACE + ",")
        scheme = reader.token()
        if not scheme:
            if reader.done():
                break
            reader.at += 1  # a character no challenge starts with: skip it
            continue
        params: dict[str, str] = {}
        while True:
            reader.skip(_SPACE + ",")
            mark = reader.at
            name = reader.token()
            if not name:
                if not reader.done() and reader.peek() not in _TCHAR:
                    reader.at += 1
                    continue
                break
            reader.skip(_SPACE)
            if reader.peek() != "=":
                reader.at = mark  # a token without '=' starts the next challenge
                break
            reader.at += 1
            if reader.peek() == "=":
                # token68 (``Basic dXNlcg==``): not an auth-param; keep nothing of it
                reader.skip("=")
                continue
            reader.skip(_SPACE)
            if reader.peek() == '"':
                reader.at += 1
                value = reader.quoted()
            else:
                start = reader.at
                while not reader.done() and reader.peek() not in _SPACE + ",":
                    reader.at += 1
                value = reader.text[start : reader.at]
            params.setdefault(name.lower(), value)
        challenges.append(Challenge(scheme.lower(), params))
    return challenges


def parse_challenges(headers: Iterable[str]) -> tuple[Challenge, ...]:
    """Every challenge in the ``WWW-Authenticate`` header values given, in order."""
    found: list[Challenge] = []
    for value in headers:
        found.extend(_parse_one_header(value))
    return tuple(found)
