"""Strict reading of configuration values: no truthy strings, no booleans as numbers, no
non-finite or absurd numbers, no unknown keys (each with a suggestion)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def unknown_keys(raw: dict[str, Any], allowed: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, reason)`` for every key of ``raw`` not in ``allowed``, with the closest
    allowed key as a suggestion where one is close."""
    allowed = sorted(allowed)
    out = []
    for key in sorted(set(raw) - set(allowed)):
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
        out.append((key, f"unknown key{hint}"))
    return out
