"""Headline numbers, checked against the course's reference file.

Layer 2 of the helpers package. The reference values live in `reference_numbers.toml` beside this file:
one table per result, named `"slug/what"` after the notebook that produces it (its slug in tools/course.toml,
which stays when the notebook is renumbered), with

- `value`: what we expect; `tolerance`: how far off is still a match;
- `kind`: "band" (default: value ± tolerance), "at_least" (anything ≥ value − tolerance passes: an accuracy, a
  speed-up) or "at_most" (anything ≤ value + tolerance passes: a loss, an error rate, a time);
- `anchor` / `anchor_value`: the figure of another course it is compared with (fastbook's where one exists);
- `notebook` and `description`: where it comes from and what it measures;
- `device` (optional): "cuda" or "cpu" when the result is only produced on that kind of device;
- `measured` (optional, default true): false while `value` is a goal that no run has produced yet (the README's
  table then says so instead of showing the goal as our figure).

`check_result(name, value)` prints one friendly line and raises `ResultMismatch` with an explanation when the
value is outside the tolerance. When the environment variable `HELPERS_RESULTS` names a file, every checked
result is also appended to it as one JSON line `{"name", "value", "device", "ok"}`; tests and benchmarks read it.
Introduced in the `start` notebook.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on some hosted runtimes
    import tomli as tomllib

__all__ = ["Reference", "ResultMismatch", "references", "check_result", "reference_table"]

REFERENCE_FILE = Path(__file__).with_name("reference_numbers.toml")
# The notebooks that keep fastbook's 3-vs-7 split, so their figures compare with fastbook's.
FASTBOOK_SPLIT_NOTEBOOKS = ("pixels", "gradients", "three_vs_seven", "modules")
KINDS = ("band", "at_least", "at_most")  # value ± tolerance; ≥ value − tolerance; ≤ value + tolerance


class ResultMismatch(AssertionError):
    """A headline number is outside its reference tolerance."""


@dataclass(frozen=True)
class Reference:
    name: str
    value: float
    tolerance: float
    kind: str = "band"
    anchor: str | None = None
    anchor_value: float | None = None
    notebook: str | None = None
    description: str = ""
    device: str | None = None  # "cuda" or "cpu": the result is only produced on that kind of device
    measured: bool = True  # False: `value` is a goal no run has reached yet
    split: str | None = None  # which data the figure is on; default: read from the name (see `data_set`)

    @property
    def data_set(self) -> str:
        """Which data the figure is measured on: the `split` field if given; "fastbook valid" for the 3-vs-7
        notebooks that keep fastbook's split (its validation images are MNIST's test 3s and 7s); else "test" or
        "valid" when the name says so; "—" for figures that are not scores on held-out data (counts, sizes)."""
        if self.split:
            return self.split
        if self.notebook in FASTBOOK_SPLIT_NOTEBOOKS:
            return "fastbook valid (MNIST test 3s, 7s)"
        what = self.name.partition("/")[2]
        for word in ("test", "valid"):
            if word in what.split("_"):
                return word
        return "—"

    @property
    def low(self) -> float:
        return -math.inf if self.kind == "at_most" else self.value - self.tolerance

    @property
    def high(self) -> float:
        return math.inf if self.kind == "at_least" else self.value + self.tolerance

    def accepts(self, value: float) -> bool:
        return self.low <= value <= self.high

    def expectation(self) -> str:
        if self.kind == "at_least":
            return f"at least {self.low:g}"
        if self.kind == "at_most":
            return f"at most {self.high:g}"
        return f"the reference {self.value:g} ± {self.tolerance:g}"

    def anchor_text(self) -> str:
        if self.anchor and self.anchor_value is not None:
            return f"{self.anchor}: {self.anchor_value:g}"
        return "no outside anchor"


@lru_cache(maxsize=None)
def _load(path: str) -> dict[str, Reference]:
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    refs = {}
    for name, entry in raw.items():
        unknown = set(entry) - {"value", "tolerance", "kind", "anchor", "anchor_value", "notebook", "description", "device",
                                "measured", "split"}
        if unknown or "value" not in entry or "tolerance" not in entry:
            raise ValueError(f"{path}: entry {name!r} needs value and tolerance, and has unknown keys {sorted(unknown)}")
        if entry.get("kind", "band") not in KINDS:
            raise ValueError(f"{path}: entry {name!r} has kind {entry['kind']!r}; use one of {', '.join(map(repr, KINDS))}")
        refs[name] = Reference(name=name, **entry)
    return refs


def references(path: str | Path | None = None) -> dict[str, Reference]:
    """All reference entries, by name."""
    return _load(str(path or REFERENCE_FILE))


def _format(value: float) -> str:
    if math.isfinite(value) and value.is_integer():
        return f"{value:.0f}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def check_result(name: str, value, device=None, raise_on_mismatch: bool = True) -> bool:
    """Compare a headline number with its reference, print one line, record it, and raise if it is off.

    Example: `check_result("pixels/pixel_similarity_accuracy", 0.9511)` prints
    `pixels/pixel_similarity_accuracy = 0.9511 — matches the reference 0.9511 ± 0.005; fastbook: 0.9511`.
    """
    refs = references()
    if name not in refs:
        close = [n for n in refs if n.split("/")[0] == name.split("/")[0]]
        raise KeyError(
            f"No reference number is called {name!r}. "
            + (f"Names from the same notebook: {', '.join(close)}. " if close else "")
            + f"Add an entry to {REFERENCE_FILE.name} (value, tolerance, anchor) to check a new result."
        )
    if hasattr(value, "item"):
        value = value.item()
    value = float(value)
    ref = refs[name]
    ok = math.isfinite(value) and ref.accepts(value)
    verdict = "matches" if ok else "does NOT match"
    print(f"{name} = {_format(value)} — {verdict} {ref.expectation()}; {ref.anchor_text()}")
    _record(name, value, device, ok)
    if not ok and raise_on_mismatch:
        direction = "low" if value < ref.low else "high"
        raise ResultMismatch(
            f"{name} came out at {_format(value)}, too {direction} for {ref.expectation()}. "
            "If you changed a setting (learning rate, epochs, seed), this is the course telling you it moved the "
            "result; restart the kernel and run all cells to get back the notebook's numbers."
        )
    return ok


def _record(name: str, value: float, device, ok: bool) -> None:
    target = os.environ.get("HELPERS_RESULTS")
    if not target:
        return
    if device is None:
        from .env import get_device  # same layer-1 module every notebook already imported

        device = get_device()
    line = json.dumps({"name": name, "value": value, "device": str(device), "ok": ok})
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as f:  # one short append: safe across processes
        f.write(line + "\n")


def reference_table() -> str:
    """The reference numbers as a Markdown table (the README embeds it; a test keeps the two in step)."""
    rows = [
        "| result | notebook | on | ours (reference) | tolerance | anchor |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for ref in references().values():
        tol = {"at_least": f"≥ {ref.low:g}", "at_most": f"≤ {ref.high:g}"}.get(ref.kind, f"± {ref.tolerance:g}")
        ours = f"{ref.value:g}" if ref.measured else f"not measured yet (no {ref.device or 'such'} run)"
        rows.append(f"| `{ref.name}` | {ref.notebook or ''} | {ref.data_set} | {ours} | {tol} | {ref.anchor_text()} |")
    return "\n".join(rows)
