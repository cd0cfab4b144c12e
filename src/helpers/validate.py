"""Argument checks shared by every module: one wording for one mistake.

Layer 1 of the helpers package (imports nothing from it).
"""

from __future__ import annotations

import numbers

__all__ = ["positive_int"]


def positive_int(value, name: str, example: str | None = None, minimum: int = 1) -> int:
    """Return `value` as an int when it is a whole number ≥ `minimum`; otherwise raise a ValueError that names
    the argument, what it got and (with `example`) typical values.

    `True`/`False` are refused (Python counts them as 1 and 0, but passing one is always a mistake), and so are
    floats, even 3.0: a batch size or an epoch count is counted, not measured.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum
    if not ok:
        bound = "a positive whole number" if minimum == 1 else f"a whole number ≥ {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}" + (f". Typical values: {example}." if example else "."))
    return int(value)
