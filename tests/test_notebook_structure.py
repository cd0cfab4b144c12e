"""Every notebook opens the same way and ends with a recap and questions (see CONTRIBUTING.md)."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cells_in_fixed_order(path):
    cells = _cells(path)
    number = path.name[:2]
    title, setup, imports = cells[0], cells[1], cells[2]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {number} "), "cell 1: '# NN · Title'"
    assert "**Goal" in title.source and "**Prerequisites" in title.source, "cell 1 states the goal and prerequisites"
    assert setup.cell_type == "code" and "KAGGLE_KERNEL_RUN_TYPE" in setup.source and "--no-deps" in setup.source, \
        "cell 2 is the Colab/Kaggle install guard"
    src = imports.source
    assert imports.cell_type == "code", "cell 3 is imports, set_seed, device"
    positions = [src.find("import "), src.find("set_seed("), src.find("get_device(")]
    assert -1 not in positions and positions == sorted(positions), "cell 3: imports, then set_seed, then get_device"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_recap_and_questions(path):
    text = "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")
    assert re.search(r"^## Recap", text, re.M), "a '## Recap' section"
    if path.name[:2] != "00":
        assert re.search(r"^## Questions", text, re.M), "a '## Questions' section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_self_checked_exercises(path):
    code = "\n".join(c.source for c in _cells(path) if c.cell_type == "code")
    assert "check(" in code, "exercises graded with helpers.exercises.check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_lists_its_mistakes_and_has_a_solution(path):
    """An exercise cell names the wrong answers learners give (`mistakes=`): `check` runs each of them through the
    check on every call, so nbval, which runs every exercise cell, tests every listed mistake. Its collapsed
    solution cell asserts the same check, so the right answer is tested too."""
    cells = [c for c in _cells(path) if c.cell_type == "code"]
    hidden = [c for c in cells if c.metadata.get("jupyter", {}).get("source_hidden")]
    names = []
    for c in cells:
        found = re.search(r'^check\("(\d+\.\d+) ', c.source, re.M)
        if found and c not in hidden:
            names.append(found.group(1))
            assert "mistakes=" in c.source, f"exercise {found.group(1)} lists no likely mistakes (mistakes=)"
    assert names, "no exercise found"
    for name in names:
        assert any(f'assert check("{name} ' in c.source for c in hidden), f"exercise {name}: no collapsed solution " \
                                                                             f"that ends with assert check(...)"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] >= "03"], ids=lambda p: p.name)
def test_has_a_build_exercise_from_the_gradients_notebook_on(path):
    """From 03 on, each notebook has one exercise in which the learner writes a function (or class) that its
    check runs: the collapsed solution defines it and asserts the check, so nbval runs the solution, and `check`
    runs every listed wrong function, on every run."""
    solutions = [c.source for c in _cells(path) if c.cell_type == "code" and c.source.startswith("# SOLUTION")]
    assert any(re.search(r"^(def|class) ", s, re.M) and "assert check(" in s for s in solutions), \
        "no build exercise: a collapsed solution that defines a function or class and ends with assert check(...)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_never_imports_torchvision_or_fastai_vision_unguarded(path):
    for cell in _cells(path):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if re.match(r"\s*(import torchvision|from torchvision|from fastai\.vision|import fastai\.vision)", line):
                assert line.startswith((" ", "\t")), f"{path.name}: unguarded `{line.strip()}` (CI cannot load it)"


def _numbered(text):
    return [int(n) for n in re.findall(r"^(\d+)\. ", text, re.M)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_questions_are_answered_in_one_collapsed_markdown_cell(path):
    """The last cell answers every question, one answer per question, folded in a <details> block that opens the
    same way in JupyterLab, Colab, Kaggle and on GitHub (no code cell to run, no JupyterLab-only hidden source)."""
    cells = _cells(path)
    last = cells[-1]
    assert last.cell_type == "markdown", "the answers are the last cell, a markdown cell"
    assert last.source.startswith("<details><summary>Answers") and last.source.rstrip().endswith("</details>")
    assert "source_hidden" not in last.metadata.get("jupyter", {}), "<details> folds it already"
    text = "\n".join(c.source for c in cells[:-1] if c.cell_type == "markdown")
    questions = re.search(r"^## Questions\s*\n(.*?)(?=^#|\Z)", text, re.M | re.S)
    assert questions, "a '## Questions' section before the answers"
    asked, answered = _numbered(questions.group(1)), _numbered(last.source)
    assert asked == list(range(1, len(asked) + 1)) and 8 <= len(asked) <= 12, f"questions numbered 1..N: {asked}"
    assert answered == asked, f"{len(asked)} questions, answers numbered {answered}"
