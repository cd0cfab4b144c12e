"""The helpers package has layers; a module may import only from its own layer or lower ones."""

import ast
from pathlib import Path

import pytest

import helpers

PKG = Path(__file__).resolve().parents[1] / "src" / "helpers"
LAYERS = {module: layer for layer, modules in helpers.LAYERS.items() for module in modules}


def _helper_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif node.level == 1:
                names.update(a.name for a in node.names)
            elif node.module and node.module.startswith("helpers."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("helpers."))
    return names


def test_every_module_has_a_layer():
    modules = {p.stem for p in PKG.glob("*.py")} - {"__init__"}
    missing = modules - set(LAYERS)
    assert not missing, f"give these modules a layer in helpers.LAYERS (src/helpers/__init__.py): {missing}"


@pytest.mark.parametrize("module", sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__"))
def test_no_module_imports_a_higher_layer(module):
    own = LAYERS.get(module, 0)
    higher = {m for m in _helper_imports(PKG / f"{module}.py") if LAYERS.get(m, 0) > own}
    assert not higher, f"helpers.{module} (layer {own}) imports higher-layer modules {higher}"


def test_the_checker_sees_imports():
    # guards against a checker that can never fail
    assert "env" in _helper_imports(PKG / "results.py")

