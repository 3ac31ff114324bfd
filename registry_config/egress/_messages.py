"""How the egress package shows a value it refuses: one cut, so hostile input cannot flood a log."""

from __future__ import annotations

__all__ = ["show"]


def show(value: object) -> str:
    """A value as an error message shows it: its repr, cut short so hostile input cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
