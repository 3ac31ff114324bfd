"""The edges of redact, shorten and quote that `make mutation` found untested (docs/mutation.md).

Each test here kills mutants of registry_config/redact.py that survived the
module's own tests: a secret of exactly the shortest length redacted, a
shorter one left alone, secrets that contain one another, a limit shorter
than the ellipsis, a value that is not text.
"""

from __future__ import annotations

import pytest

from registry_config.redact import MARK, quote, redact, shorten


def test_a_secret_of_the_shortest_length_is_redacted_and_a_shorter_one_is_not() -> None:
    assert redact("pin abc, again abc", ["abc"]) == f"pin {MARK}, again {MARK}"
    # Two characters would blank out ordinary words: such a "secret" is no protection and is not looked for.
    assert redact("ab is not a word, ab", ["ab"]) == "ab is not a word, ab"
    assert redact("nothing here", ["", None]) == "nothing here"


def test_the_longest_secret_goes_first_so_none_leaks_a_tail() -> None:
    # Redacting "abc" first would leave "<redacted>def": the rest of the longer secret.
    assert redact("token abcdef", ["abc", "abcdef"]) == f"token {MARK}"
    assert redact("token abcdef", ["abcdef", "abc"]) == f"token {MARK}"


def test_a_limit_shorter_than_the_ellipsis_shows_nothing_of_the_text() -> None:
    for limit in (0, 1, 2, 3):
        assert shorten("s3cr3t-value", limit) == "..."
    assert shorten("s3cr3t-value", 4) == "s..."
    assert shorten("abc", 3) == "abc"


def test_quote_shows_any_value_as_text() -> None:
    assert quote(8080) == "'8080'"
    assert quote(ValueError("bad http://u:p4ss@h/")) == "'bad http://***@h/'"
    assert quote(None) == "'None'"


def test_quote_shows_at_most_200_characters_by_default() -> None:
    assert quote("x" * 200) == repr("x" * 200)
    assert quote("x" * 201) == repr("x" * 197 + "...")


def test_quote_takes_its_secrets_and_limit_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        quote("abc", ["abc"])  # type: ignore[misc]
    assert quote("abc", secrets=["abc"]) == repr(MARK)
