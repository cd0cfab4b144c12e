"""Argument checks shared by every module: one wording for one mistake.

Layer 1 of the helpers package (imports nothing from it).
"""

from __future__ import annotations

import math
import numbers

__all__ = ["positive_int", "positive_number", "number_in", "one_of"]


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


def _tail(advice: str) -> str:
    return f" {advice}" if advice else ""


def _is_number(value) -> bool:
    """A real number that is neither a bool (a flag passed by mistake) nor NaN nor infinite."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def positive_number(value, name: str, advice: str = "") -> float:
    """Return `value` as a float when it is a finite number > 0 (a learning rate, a temperature); otherwise raise a
    ValueError that names the argument and what it got, followed by `advice` (typical values, what it does).

    `True`/`False`, strings, NaN and infinities are refused.
    """
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}.{_tail(advice)}")
    return float(value)


def number_in(value, name: str, low: float = 0.0, high: float | None = None, high_open: bool = False,
              advice: str = "") -> float:
    """Return `value` as a float when it is a finite number in `[low, high]` (`[low, high)` with `high_open`; no
    upper bound when `high` is None); otherwise raise a ValueError that names the argument, the range and what
    it got, followed by `advice` (a momentum, a beta, a smoothing).

    `True`/`False`, strings, NaN and infinities are refused as "not a number".
    """
    if not _is_number(value):
        raise ValueError(f"{name} must be a number, got {value!r}.{_tail(advice)}")
    value = float(value)
    if value < low or (high is not None and (value >= high if high_open else value > high)):
        upper = "" if high is None else f" and {'below' if high_open else 'at most'} {high:g}"
        raise ValueError(f"{name} must be at least {low:g}{upper}, got {value:g}.{_tail(advice)}")
    return value


def one_of(value, name: str, choices, advice: str = ""):
    """Return `value` when it is one of `choices`; otherwise raise a ValueError that names the argument, lists
    the choices and what it got, followed by `advice`."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.{_tail(advice)}")
    return value
