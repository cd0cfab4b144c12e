"""No module in src/ or benchmarks/ imports or reaches into another project module's `_private` name.

A leading underscore says "this may change without notice": what another module needs gets a public name (as
`helpers.train.training_parts` did). Tests may use private names; the package and the benchmarks may not.
The check reads the source (AST), so it sees every import and attribute access, also inside functions:

- `from helpers.train import _x`, `from .train import _x`: importing a private name of a project module;
- `import helpers.data as data` … `data._memory_cache`, or `helpers.data._x`: reaching into one.

Other libraries' privates (torch's) are outside this rule's scope.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "src" / "helpers").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _project_module(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] == "helpers"


def private_uses(source: str) -> list[tuple[int, str]]:
    """`(line, what)` for each import of, or attribute access to, a project module's `_private` name."""
    tree = ast.parse(source)
    modules: set[str] = set()  # local names bound to project modules (or to objects imported from them)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _project_module(alias.name, 0):
                    for part in alias.name.split("."):
                        if _private(part):
                            found.append((node.lineno, f"import {alias.name}"))
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _project_module(node.module, node.level):
            where = "." * node.level + (node.module or "")
            if any(_private(part) for part in (node.module or "").split(".")):
                found.append((node.lineno, f"from {where} import …"))
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"from {where} import {alias.name}"))
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            chain = [node.attr]
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append((node.lineno, ".".join([base.id, *reversed(chain)])))
    return sorted(found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_of_another_module_is_used(path):
    rel = str(path.relative_to(ROOT))
    uses = private_uses(path.read_text(encoding="utf-8"))
    assert not uses, (
        f"{rel} uses private names of project modules: "
        + "; ".join(f"line {line}: {what}" for line, what in uses)
        + ". Give what it needs a public name (no leading underscore) with a docstring, and use that."
    )


@pytest.mark.parametrize("source, expected", [
    ("from helpers.train import _training_parts", ["from helpers.train import _training_parts"]),
    ("from .train import DeviceData, _autocast as ac", ["from .train import _autocast"]),
    ("import helpers.data as data\ndef f():\n    data._memory_cache.clear()", ["data._memory_cache"]),
    ("import helpers\nhelpers.data._sha256('x')", ["helpers.data._sha256"]),
    ("def f():\n    import helpers.widgets as W\n    W._get_data(None)", ["W._get_data"]),
    ("from helpers import train\ntrain._amp_dtype", ["train._amp_dtype"]),
    ("import helpers._secret", ["import helpers._secret"]),
    # allowed: own privates, dunders, other libraries, objects that are not project modules
    ("_cache = {}\n_cache.clear()\nself._x = 1", []),
    ("from helpers import __version__\nimport helpers\nhelpers.__doc__", []),
    ("import torch.nn as nn\nnn.modules.dropout._DropoutNd", []),
    ("class A:\n    def f(self):\n        return self._y", []),
])
def test_the_checker_catches_what_it_should_and_nothing_else(source, expected):
    assert [what for _, what in private_uses(source)] == expected
