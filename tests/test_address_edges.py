"""The edges of address parsing that `make mutation` found untested (docs/mutation.md).

Each test here kills mutants of registry_config/address.py that survived
tests/test_address.py: the longest DNS name there is, and the keyword-only
``where`` that every message is built from.
"""

from __future__ import annotations

import pytest

from registry_config.address import is_hostname, parse_port, split_host_port
from registry_config.errors import InvalidAddress


def _name(length: int) -> str:
    """A DNS name of exactly ``length`` characters (194 to 255): three labels of 63, then the rest."""
    return ".".join(["a" * 63] * 3 + ["b" * (length - 192)])


def test_a_name_of_253_characters_is_a_hostname_and_254_is_not() -> None:
    for length in (252, 253):
        assert len(_name(length)) == length
        assert is_hostname(_name(length)), length
    assert len(_name(254)) == 254
    assert not is_hostname(_name(254))


def test_where_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        parse_port("80", "the port")  # type: ignore[misc]
    with pytest.raises(TypeError):
        split_host_port("10.0.0.1:80", "the entry")  # type: ignore[misc]
    with pytest.raises(InvalidAddress, match=r"^the entry: port '0'"):
        split_host_port("10.0.0.1:0", where="the entry")
