"""Self-checks for the notebooks' exercises: feedback that says what is wrong, not just `AssertionError`.

Layer 1 of the helpers package. Introduced in notebook 00 ("how to use the course").

    answer = ...                      # the learner writes code here
    check("1.1 the mean three", answer, expected, hint="average over the first dimension")

prints one line: ✅ when it matches, ⏳ when the cell still holds `...` or None, and ❌ with the reason
(wrong type, wrong shape, wrong dtype, wrong values and by how much) otherwise. It returns True only on a
match, so a solution cell can `assert check(...)` and the tests notice when a solution stops working.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["check", "explain_mismatch"]


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if not isinstance(x, (list, tuple, dict)) else f"a {type(x).__name__}"


def explain_mismatch(answer: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-6) -> str | None:
    """Return None when `answer` matches `expected`, else one sentence saying how it differs."""
    number_expected = isinstance(expected, (int, float)) and not isinstance(expected, bool)
    if isinstance(expected, torch.Tensor) or (isinstance(answer, torch.Tensor) and not number_expected):
        if not isinstance(answer, torch.Tensor):
            return f"expected a tensor, got {_describe(answer)} (wrap it with torch.tensor(...) or keep it a tensor)."
        expected = torch.as_tensor(expected)
        if tuple(answer.shape) != tuple(expected.shape):
            return f"the shape is {tuple(answer.shape)}, but it should be {tuple(expected.shape)}."
        if answer.dtype != expected.dtype and (answer.dtype.is_floating_point != expected.dtype.is_floating_point
                                               or answer.dtype == torch.bool or expected.dtype == torch.bool):
            return f"the dtype is {answer.dtype}, but it should be {expected.dtype} (see .float(), .long(), .bool())."
        a, e = answer.detach().cpu(), expected.detach().cpu()
        if a.dtype == torch.bool or not a.dtype.is_floating_point:
            wrong = int((a != e).sum())
            return None if wrong == 0 else f"{wrong} of {a.numel()} values differ from the expected ones."
        a, e = a.double(), e.double()
        if torch.isnan(a).any() and not torch.isnan(e).any():
            return "the answer contains NaN (not a number): look for 0/0, log(0) or an overflow."
        close = torch.isclose(a, e, rtol=rtol, atol=atol)
        if bool(close.all()):
            return None
        worst = float((a - e).abs().max())
        return f"{int((~close).sum())} of {a.numel()} values are off (largest difference {worst:.3g})."
    if isinstance(expected, bool) or isinstance(answer, bool):
        return None if answer is expected or answer == expected else f"expected {expected}, got {answer!r}."
    if number_expected:  # a number is expected: a one-element tensor gets the `.item()` advice
        if not isinstance(answer, (int, float, np.number)) or isinstance(answer, bool):
            return f"expected a number, got {_describe(answer)}" + (
                " (use .item() to turn a one-element tensor into a number)." if isinstance(answer, torch.Tensor) else "."
            )
        if math.isclose(float(answer), float(expected), rel_tol=rtol, abs_tol=atol):
            return None
        return f"got {answer:.6g}, but the expected value is {expected:.6g}."
    if isinstance(expected, (tuple, list)) and isinstance(answer, (tuple, list, torch.Size)):
        if len(answer) != len(expected):
            return f"expected {len(expected)} items, got {len(answer)}."
        for i, (a, e) in enumerate(zip(answer, expected)):
            why = explain_mismatch(a, e, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    return None if answer == expected else f"expected {expected!r}, got {answer!r}."


def check(
    name: str,
    answer: Any,
    expected: Any = None,
    hint: str | None = None,
    test: Callable[[Any], str | None] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> bool:
    """Grade one exercise and print the feedback. Returns True when the answer is right.

    Give either `expected` (compared by value, shape and dtype) or `test`, a function that returns None for a
    right answer and a sentence explaining the problem otherwise.
    """
    if answer is Ellipsis or answer is None:
        print(f"⏳ Exercise {name}: not answered yet — replace the ... with your code and run the cell again.")
        return False
    try:
        why = test(answer) if test is not None else explain_mismatch(answer, expected, rtol, atol)
    except Exception as e:  # a learner's answer of a surprising type should give feedback, not a traceback
        why = f"checking the answer raised {type(e).__name__}: {e}"
    if why is None:
        print(f"✅ Exercise {name}: correct!")
        return True
    print(f"❌ Exercise {name}: not yet — {why}" + (f"\n   Hint: {hint}" if hint else ""))
    return False
