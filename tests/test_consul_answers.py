"""What one HTTP answer of Consul means (registry_config/discovery/consul/answers.py), read directly.

The backend's tests (tests/test_consul_backend.py) drive these functions over HTTP, status by status; the tests
here pin what `make mutation` found those leave open (docs/mutation.md): where the ``5xx`` range ends, how much of
a text each message shows, how much of an answer the redactor is handed (a prefix: an answer may be hundreds of
megabytes), and that the prefix still holds a long secret whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_config.discovery.consul import answers
from registry_config.discovery.consul.answers import decode_entries, echo, parse_index, raise_for_status
from registry_config.errors import (
    DiscoveryAuthError,
    DiscoveryError,
    DiscoveryProtocolError,
    DiscoveryQueryError,
    DiscoveryUnavailable,
)
from registry_config.redact import quote

WHERE = "Consul at http://127.0.0.1:8500, service 'registry'"
WINDOW = 64 * 1024  # the prefix of an answer that is redacted and shown from (answers.echo's docstring)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        # The ends of the 5xx range.
        (499, DiscoveryProtocolError),
        (500, DiscoveryUnavailable),
        (599, DiscoveryUnavailable),
        (600, DiscoveryProtocolError),
        # The statuses Consul gives a meaning, and their neighbours.
        (401, DiscoveryAuthError),
        (402, DiscoveryProtocolError),
        (403, DiscoveryAuthError),
        (428, DiscoveryProtocolError),
        (429, DiscoveryUnavailable),
        (430, DiscoveryProtocolError),
    ],
)
def test_each_status_reads_as_its_error(code: int, error: type[Exception]) -> None:
    """Guards against either end of the ``5xx`` range moving (a 599 read as "not Consul", a 499 as an outage),
    and against a neighbour of 401, 403 or 429 read as an ACL refusal or a rate limit."""
    with pytest.raises(error) as caught:
        raise_for_status(code, "upstream trouble", WHERE, ())
    assert type(caught.value) is error
    assert f"HTTP {code}" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "index"),
    [
        (None, None),
        ("0", 0),
        ("1", 1),
        (" 42\t", 42),
        ("00000000000000000007", 7),  # 20 digits
        (str(2**63), 2**63),
        (str(2**64 - 2), 2**64 - 2),
        (str(2**64 - 1), 2**64 - 1),  # the largest uint64
    ],
)
def test_an_index_that_is_a_uint64_is_read(header: str | None, index: int | None) -> None:
    assert parse_index(header, WHERE, ()) == index


@pytest.mark.parametrize(
    "header",
    [
        str(2**64),
        str(2**65),
        "99999999999999999999",
        "000000000000000000001",
        "",
        " ",
        "-1",
        "+1",
        "1.5",
        "1 2",
        "0x10",
        "1e3",
        "\u00b2",
        "\u0661",
        "seven",
    ],
)
def test_any_other_index_is_a_protocol_error(header: str) -> None:
    """Guards against the bound moving (2**64 accepted, or 2**64 - 1 refused) and against the pattern's check
    dropped: a header that is not a decimal uint64 is not Consul's, and a blocking query must not be sent it."""
    with pytest.raises(DiscoveryProtocolError, match=r"X-Consul-Index .* is not an unsigned 64-bit number"):
        parse_index(header, WHERE, ())


@given(st.integers(min_value=0, max_value=2**66))
def test_an_index_is_read_exactly_when_it_fits_64_bits(number: int) -> None:
    if number < 2**64:
        assert parse_index(str(number), WHERE, ()) == number
    else:
        with pytest.raises(DiscoveryProtocolError):
            parse_index(str(number), WHERE, ())


_REFUSED_FILTER = "rpc error making call: Failed to create boolean expression evaluator: 1:1 (0): no match found"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (500, DiscoveryQueryError),  # Consul's own status for a filter it refuses
        (502, DiscoveryUnavailable),  # a proxy's, whatever its body says
        (404, DiscoveryProtocolError),
        (400, DiscoveryQueryError),
        (399, DiscoveryProtocolError),  # below 400: not a query Consul refused
        (301, DiscoveryProtocolError),
    ],
)
def test_only_a_500_is_read_as_a_refused_filter(code: int, error: type[Exception]) -> None:
    """Guards against the filter's reading, or the ``400`` branch, spreading to other statuses: a proxy's 502
    that quotes Consul's words is an outage to retry, a redirect no query to fix."""
    with pytest.raises(error) as caught:
        raise_for_status(code, _REFUSED_FILTER, WHERE, (), filter="Service.Tags == v2")
    assert type(caught.value) is error
    assert ("refused the filter 'Service.Tags == v2'" in str(caught.value)) is (code == 500)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("No path to datacenter", "WAN federation"),
        ("rpc error making call: No cluster leader", "lost quorum"),
        ("Internal Server Error", "check the Consul servers' health and the agent's logs"),
    ],
)
def test_a_server_error_says_what_to_check(body: str, hint: str) -> None:
    """Guards against the hints swapped: each failure names its own next step, and only its own."""
    with pytest.raises(DiscoveryUnavailable) as caught:
        raise_for_status(500, body, WHERE, ())
    message = str(caught.value)
    hints = ["WAN federation", "lost quorum", "check the Consul servers' health and the agent's logs"]
    assert [known for known in hints if known in message] == [hint]


def test_the_options_are_keyword_only() -> None:
    """Guards against ``limit`` or ``filter`` taken by position (a filter text read as a limit, or the reverse)."""
    with pytest.raises(TypeError):
        echo("text", (), 10)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        raise_for_status(500, _REFUSED_FILTER, WHERE, (), "Service.Tags == v2")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("make", "char", "limit"),
    [
        (lambda: raise_for_status(502, "z" * 1000, WHERE, ()), "z", 200),
        (lambda: raise_for_status(403, b"z" * 1000, WHERE, ()), "z", 200),
        (lambda: parse_index("9" * 1000, WHERE, ()), "9", 40),
        (lambda: decode_entries("<" * 1000, WHERE, ()), "<", 60),
        (lambda: decode_entries(b"<" * 1000, WHERE, ()), "<", 60),
        (
            lambda: raise_for_status(
                500, "Failed to create boolean expression evaluator", WHERE, (), filter="#" * 1000
            ),
            "#",
            120,
        ),
    ],
    ids=["status", "status-bytes", "index", "body", "body-bytes", "filter"],
)
def test_each_message_shows_a_long_text_cut_to_its_limit(make: Callable[[], object], char: str, limit: int) -> None:
    """Guards against a limit moving by one: each quotes ``limit`` characters at most, the last three the ellipsis."""
    with pytest.raises(DiscoveryError) as caught:
        make()
    message = str(caught.value)
    assert char * (limit - 3) + "...'" in message
    assert char * (limit - 2) not in message


def test_echo_shows_200_characters_by_default() -> None:
    assert echo("a" * 200, ()) == "'" + "a" * 200 + "'"
    assert echo("a" * 201, ()) == "'" + "a" * 197 + "...'"


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text ``answers`` hands the redactor (the real one still runs)."""
    lengths: list[int] = []

    def spy(value: object, *, secrets: Sequence[str], limit: int) -> str:
        lengths.append(len(value) if isinstance(value, str) else -1)
        return quote(value, secrets=secrets, limit=limit)

    monkeypatch.setattr(answers, "quote", spy)
    return lengths


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("a" * WINDOW, (), WINDOW),  # at the window: whole
        ("a" * (WINDOW + 1), (), WINDOW),
        ("a" * 1_000_000, (), WINDOW),
        ("a" * 1_000_000, ("s" * 30,), WINDOW + 60),  # twice the longest secret more
        ("a" * 1_000_000, ("s" * 30, "t" * 100, ""), WINDOW + 200),
        ("a" * 1_000_000, ("s" * 40_000,), WINDOW + 80_000),  # a sum, not a bitwise or: 80,000 has bit 16 set
        # Bytes are cut at four per character (UTF-8's most) before decoding: a window of 4-byte characters still.
        ("\U0001f600" * 100_000, (), WINDOW),
    ],
)
def test_the_redactor_is_handed_a_bounded_prefix(
    handed: list[int], text: str, secrets: tuple[str, ...], expected: int
) -> None:
    """Guards against the window growing with the answer (a 100 MB body redacted whole for a 200-character
    message) or shrinking below 64 KiB plus twice the longest secret, on text and on bytes alike."""
    echo(text, secrets)
    echo(text.encode(), secrets)
    assert handed == [expected, expected]


def test_a_status_answer_is_decoded_from_a_bounded_prefix(handed: list[int]) -> None:
    """As above, for the body of a refused status (read for the filter and datacenter hints, then echoed)."""
    with pytest.raises(DiscoveryUnavailable):
        raise_for_status(502, ("\U0001f600" * 100_000).encode(), WHERE, ())
    assert handed == [WINDOW]


class _Sliced(bytes):
    """A body that notes each slice taken of it."""

    taken: list[slice]

    def __getitem__(self, key: Any) -> Any:
        self.taken.append(key)
        return super().__getitem__(key)


def _sliced(text: str) -> _Sliced:
    body = _Sliced(text.encode())
    body.taken = []
    return body


def test_a_bytes_body_is_decoded_from_four_bytes_a_character_of_the_window() -> None:
    """Guards against decoding more of a body than a window of characters can need (UTF-8 takes at most four
    bytes a character): a 100 MB answer decoded whole for a 200-character message. Or less, which would shorten
    the window of 4-byte characters."""
    body = _sliced("x" * 1_000_000)
    echo(body, ())
    assert body.taken[:1] == [slice(None, 4 * WINDOW)]
    body = _sliced("x" * 1_000_000)
    with pytest.raises(DiscoveryUnavailable):
        raise_for_status(502, body, WHERE, ())
    assert body.taken[:1] == [slice(None, 4 * WINDOW)]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_secret_longer_than_the_window_is_still_redacted(as_bytes: bool) -> None:
    """Guards against a prefix cut inside a long secret: its first 200 characters shown, unredacted."""
    secret = "".join(f"{n:08x}" for n in range(10_000))  # 80,000 characters, no repeat an accident could redact
    body: Any = f"x {secret} y"
    if as_bytes:
        body = body.encode()
    shown = echo(body, [secret])
    assert secret[:8] not in shown
    assert shown.startswith("'x <redacted>")
