"""Self-checks for the notebooks' exercises: feedback that says what is wrong, not just `AssertionError`.

Layer 1 of the helpers package. Introduced in the `start` notebook.

    answer = ...                      # the learner writes code here
    check("1.1 the mean three", answer, expected, hint="average over the first dimension",
          mistakes=[(threes.mean(), "that is the mean of every pixel of every image: average over dim=0 only"),
                    (threes.sum(0), "that is the sum: divide by the number of images, or use .mean(0)")])

prints one line: ✅ when it matches, ⏳ when the cell still holds `...` or None, and ❌ with the reason
otherwise. The reason is the explanation of a known mistake when the answer matches one of `mistakes` (with
the same tolerance and rules as the right answer), else what is structurally wrong (wrong type, wrong shape,
wrong dtype, wrong values and by how much). It returns True only on a match with `expected`, so a solution
cell can `assert check(...)` and the tests notice when a solution stops working. Each call also runs the
listed mistakes through the check (even while the answer is still `...`) and raises when one of them would
pass, or would get another mistake's explanation: a check that cannot catch its own mistakes is an author's
error, and the notebook tests find it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

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
            if isinstance(answer, torch.Tensor) and answer.numel() != 1:
                return (f"expected a number, got {_describe(answer)}: that is {answer.numel():,} values, not one "
                        f"(reduce them first, with .sum() or .mean(), then .item())." if answer.numel() else
                        f"expected a number, got {_describe(answer)}, an empty tensor.")
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


_MISTAKES_EXAMPLE = 'mistakes=[(wrong_value, "what that mistake means and how to fix it")]'


def _validated_mistakes(mistakes: Any) -> list[tuple[Any, str]]:
    """Return `mistakes` as a list of (wrong value, explanation) pairs, or raise a TypeError saying how to write it."""
    if mistakes is None:
        return []
    if isinstance(mistakes, dict):
        raise TypeError(f"mistakes must be a list of (wrong value, explanation) pairs, not a dict (a tensor cannot "
                        f"be a key): write {_MISTAKES_EXAMPLE}.")
    if not isinstance(mistakes, (list, tuple)):
        raise TypeError(f"mistakes must be a list of (wrong value, explanation) pairs, got {_describe(mistakes)}: "
                        f"write {_MISTAKES_EXAMPLE}.")
    if len(mistakes) == 2 and isinstance(mistakes[1], str):  # a list of pairs never holds a bare string
        raise TypeError(f"mistakes must be a list of pairs; this looks like one pair on its own: wrap it in a "
                        f"list, {_MISTAKES_EXAMPLE}.")
    pairs = []
    for i, pair in enumerate(mistakes):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise TypeError(f"mistakes[{i}] must be a (wrong value, explanation) pair, got {_describe(pair)}: "
                            f"write {_MISTAKES_EXAMPLE}.")
        wrong, why = pair
        if not isinstance(why, str) or not why.strip():
            raise TypeError(f"mistakes[{i}] must end with a sentence explaining the mistake and its fix, got "
                            f"{_describe(why)}: write {_MISTAKES_EXAMPLE}.")
        pairs.append((wrong, why))
    return pairs


def _matches(answer: Any, value: Any, rtol: float, atol: float) -> bool:
    try:
        return explain_mismatch(answer, value, rtol, atol) is None
    except Exception:  # an answer of a surprising type simply is not this mistake
        return False


def _verdict(answer: Any, expected: Any, test: Callable[[Any], str | None] | None, rtol: float, atol: float) -> str | None:
    """None when `answer` is right, else the sentence saying why not (a test that raises gives its error)."""
    try:
        return test(answer) if test is not None else explain_mismatch(answer, expected, rtol, atol)
    except Exception as e:  # a learner's answer of a surprising type should give feedback, not a traceback
        return f"checking the answer raised {type(e).__name__}: {e}"


def _is_mistake(answer: Any, answer_why: str | None, wrong: Any, wrong_why: str | None, by_sentence: bool,
                rtol: float, atol: float) -> bool:
    """Whether a wrong answer is this listed mistake: equal to its wrong value (the rules of `explain_mismatch`),
    or, for a wrong function graded by a `test` (`by_sentence`), rejected by the test with the very same sentence."""
    return answer_why == wrong_why if by_sentence else _matches(answer, wrong, rtol, atol)


def _checked_mistakes(name: str, pairs: list[tuple[Any, str]], expected: Any,
                      test: Callable[[Any], str | None] | None, rtol: float,
                      atol: float) -> list[tuple[Any, str, str, bool]]:
    """Run every listed mistake through the check itself; return (wrong, explanation, sentence, by_sentence) each.

    Raises a ValueError (an author's error, shown even before an answer) when the check accepts a wrong value as
    right (it could never catch that mistake), or when a wrong value would get another pair's explanation (an
    earlier pair's, or none: a NaN equals nothing, not even itself)."""
    checked = []
    for i, (wrong, explanation) in enumerate(pairs):
        sentence = _verdict(wrong, expected, test, rtol, atol)
        if sentence is None:
            graded = "its test accepts it" if test is not None else "it matches expected"
            raise ValueError(f"check({name!r}): mistakes[{i}] is accepted as the right answer ({graded}), so the "
                             f"check cannot catch this mistake: fix the wrong value, or make the check stricter.")
        by_sentence = test is not None and callable(wrong)
        if not by_sentence and not _matches(wrong, wrong, rtol, atol):
            raise ValueError(f"check({name!r}): mistakes[{i}] ({_describe(wrong)}) does not match itself (a NaN "
                             f"equals nothing), so no answer could ever get its explanation.")
        for j, (earlier, _, earlier_sentence, earlier_by_sentence) in enumerate(checked):
            if _is_mistake(wrong, sentence, earlier, earlier_sentence, earlier_by_sentence, rtol, atol):
                how = (f"its test rejects both with the same sentence ({sentence!r})" if earlier_by_sentence
                       else "they are equal within rtol/atol")
                raise ValueError(f"check({name!r}): mistakes[{i}] would get the explanation of mistakes[{j}] "
                                 f"({how}): drop one of them, or make the check tell them apart.")
        checked.append((wrong, explanation, sentence, by_sentence))
    return checked


def check(
    name: str,
    answer: Any,
    expected: Any = None,
    hint: str | None = None,
    test: Callable[[Any], str | None] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    mistakes: Sequence[tuple[Any, str]] | None = None,
    code_hint: str | None = None,
) -> bool:
    """Grade one exercise and print the feedback. Returns True when the answer is right.

    Give either `expected` (compared by value, shape and dtype) or `test`, a function that returns None for a
    right answer and a sentence explaining the problem otherwise.

    `mistakes` names the wrong answers learners really give: a list of `(wrong_value, explanation)` pairs (a
    wrong value can be a number, a tensor, a list, anything `expected` can be). A wrong answer that matches a
    wrong value, with the same `rtol`/`atol` and rules as `explain_mismatch`, prints that explanation instead of
    the structural message. With `test`, a wrong value may also be a wrong *function* (for an exercise whose
    answer is a function): functions cannot be compared, so a learner's answer is that mistake when `test`
    rejects it with the very same sentence as the wrong function.

    Every call, even before an answer, runs each listed mistake through the check itself and raises a
    ValueError (an author's error) when the check would accept it as right, or when it would get another pair's
    explanation instead of its own (two wrong values equal within the tolerance, two wrong functions the test
    rejects with the same sentence). So every exercise cell that runs tests its own list of mistakes.

    Hints come in two steps. `hint` points at the idea (which function, which shape, which formula) and is
    printed with every wrong answer; `code_hint` is the code itself, printed only from the second wrong answer
    to the same exercise on: the learner sees the idea first, and the code only after another try.
    """
    if code_hint is not None and not hint:
        raise ValueError(f"check({name!r}): code_hint is the second step of a hint; give hint= (the idea, "
                         "without the code) too.")
    known_mistakes = _checked_mistakes(name, _validated_mistakes(mistakes), expected, test, rtol, atol)
    if answer is Ellipsis or answer is None:
        print(f"⏳ Exercise {name}: not answered yet — replace the ... with your code and run the cell again.")
        return False
    why = _verdict(answer, expected, test, rtol, atol)
    if why is not None:
        why = next((explanation for wrong, explanation, sentence, by_sentence in known_mistakes
                    if _is_mistake(answer, why, wrong, sentence, by_sentence, rtol, atol)), why)
    if why is None:
        print(f"✅ Exercise {name}: correct!")
        return True
    _wrong_tries[name] = tries = _wrong_tries.get(name, 0) + 1
    message = f"❌ Exercise {name}: not yet — {why}" + (f"\n   Hint: {hint}" if hint else "")
    if code_hint is not None:
        message += (f"\n   Second hint (code): {code_hint}" if tries > 1
                    else "\n   (Try again: after a second wrong answer the hint shows the code.)")
    print(message)
    return False


# How many wrong answers each exercise has had in this kernel: the second one unlocks `code_hint`.
_wrong_tries: dict[str, int] = {}
