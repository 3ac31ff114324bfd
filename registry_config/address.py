"""What a host, an IP and a ``host:port`` look like, in one place.

Registry URLs, static backend entries, insecure-registry entries and discovery
answers all carry hosts and ports. They are checked here, once, so that every
path into a builder flag or an egress rule refuses the same hostile text (a
comma, a space, a newline, a scheme) in the same way.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Union

from .errors import InvalidAddress
from .redact import quote, redact, secrets_of

__all__ = [
    "IPAddress",
    "bad_character",
    "format_host",
    "format_host_port",
    "is_hostname",
    "parse_ip",
    "parse_port",
    "problem_character",
    "split_host_port",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007 (a runtime alias; `|` needs 3.10 objects)

# A DNS label as Consul and Docker accept it: letters, digits, '-' and '_'
# (Consul service names such as docker_registry use underscores).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


def bad_character(text: str) -> tuple[int, str] | None:
    """Return the column and a printable form of the first whitespace or control character."""
    for column, char in enumerate(text):
        if char.isspace() or not char.isprintable():
            return column, repr(char)
    return None


def problem_character(text: str) -> str | None:
    """Where ``text`` holds whitespace or a control character, in words, counted on the text as shown.

    Messages show an entry redacted (:func:`registry_config.redact.redact`
    with ``entry=True``), so the column is counted on that text: the one the
    reader sees. A bad character inside a withheld part (a password) is
    reported without its place.
    """
    bad = bad_character(redact(text, entry=True))
    if bad is not None:
        return f"contains {bad[1]} at column {bad[0]}"
    if bad_character(text) is not None:
        return "contains whitespace or a control character in a part not shown (user-info, query or fragment)"
    return None


_IPv4Address = ipaddress.IPv4Address
_inet_pton = socket.inet_pton
_inet_ntoa = socket.inet_ntoa
_AF_INET = socket.AF_INET
_from_bytes = int.from_bytes


def parse_ip(text: str) -> IPAddress | None:
    """The IP address ``text`` spells, or ``None``; zone ids (``fe80::1%eth0``) are not addresses here.

    Discovery parses one address per instance (10k and more per answer), and
    :func:`ipaddress.ip_address` costs a few microseconds in pure Python. So a
    dotted quad goes through the C ``inet_pton`` first, and is taken only when
    it is exactly the canonical text of what it parsed to (``inet_ntoa`` gives
    it back unchanged): such text is read the same way by ``ipaddress``,
    whatever the platform's ``inet_pton`` accepts. Anything else (IPv6, a
    leading zero, a stray space) goes to ``ipaddress``, which decides alone.
    """
    if "%" in text:
        return None
    if ":" not in text:
        try:
            packed = _inet_pton(_AF_INET, text)
        except (OSError, ValueError):  # ValueError: an embedded NUL
            pass
        else:
            if _inet_ntoa(packed) == text:
                return _IPv4Address(_from_bytes(packed, "big"))
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_hostname(text: str) -> bool:
    """Whether ``text`` is a DNS name (labels of letters, digits, ``-`` and ``_``)."""
    if not text or len(text) > 253:
        return False
    labels = text.split(".")
    if all(label.isdigit() for label in labels):
        return False  # '300.1.2.3' or '1234' is a broken IP, not a name
    return all(_LABEL.match(label) for label in labels)


def parse_port(text: str, *, where: str) -> int:
    """A port number in 1..65535 from its decimal text."""
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise InvalidAddress(f"{where}: port {quote(text, limit=40)} is not a number in 1..65535")
    return int(text)


def split_host_port(text: str, *, where: str = "address") -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``ip``, ``[v6]`` or ``[v6]:port``; the port may be missing.

    The host comes back lower-cased, without brackets, and is an IP literal or
    a DNS name; anything else raises :class:`InvalidAddress` naming ``where``.
    The entry is echoed redacted (an ``@`` is refused before anything else, so
    a password never reaches a message), and ``where`` is scrubbed of the
    entry's secrets too, in case a caller quoted the entry into it.
    """
    if not isinstance(text, str):
        raise InvalidAddress(f"{where}: expected text, got {type(text).__name__}")
    try:
        return _split_host_port(text, where)
    except InvalidAddress as exc:
        message = redact(str(exc), secrets_of(text) if "@" in text else ())
    raise InvalidAddress(message)  # outside the handler: the unscrubbed error is not kept as its context


def _split_host_port(text: str, where: str) -> tuple[str, int | None]:
    shown = quote(text, entry=True, limit=120)
    if "@" in text:
        raise InvalidAddress(
            f"{where}: {shown} holds user-info ('user:password@'); give host[:port] only, and credentials to the client"
        )
    bad = problem_character(text)
    if bad is not None:
        raise InvalidAddress(f"{where}: {shown} {bad}; an address is a host or IP with an optional :port, nothing else")
    if "://" in text:
        raise InvalidAddress(f"{where}: {shown} has a scheme; give host[:port] without one")
    if not text:
        raise InvalidAddress(f"{where}: the address is empty")
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InvalidAddress(f"{where}: {shown} opens '[' without closing it")
        host, rest = text[1:close], text[close + 1 :]
        if "%" in host:
            raise InvalidAddress(
                f"{where}: {quote(host, entry=True, limit=80)} has a zone id "
                f"({quote(host[host.index('%') :], limit=24)}); zone ids are not supported: give the registry's "
                "routable (global or unique local) address"
            )
        ip = parse_ip(host)
        if ip is None or ip.version != 6:
            raise InvalidAddress(f"{where}: {quote(host, entry=True, limit=80)} in brackets is not an IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise InvalidAddress(
                    f"{where}: {shown} has {quote(rest, entry=True, limit=40)} after ']'; expected ':port'"
                )
            port = parse_port(rest[1:], where=where)
        return str(ip), port
    if text.count(":") > 1:
        ip = parse_ip(text)
        if ip is None:
            raise InvalidAddress(
                f"{where}: {shown} is not an IPv6 address; write an IPv6 address with a port as [addr]:port"
            )
        return str(ip), None
    host, sep, port_text = text.partition(":")
    ip = parse_ip(host)
    if ip is None and not is_hostname(host):
        raise InvalidAddress(
            f"{where}: {quote(host, entry=True, limit=120)} is neither an IP address nor a DNS name "
            "(letters, digits, '-', '_' and dots)"
        )
    if sep:
        port = parse_port(port_text, where=where)
    return (str(ip) if ip is not None else host.lower()), port


def format_host(host: str | IPAddress) -> str:
    """The host as it appears before ``:port``: IPv6 in brackets."""
    text = str(host)
    return f"[{text}]" if ":" in text else text


def format_host_port(host: str | IPAddress, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"{format_host(host)}:{port}"
