"""Every "notebook NN" written in the repository points at a notebook that exists, and where a title follows the
number ("notebook 08 (Activations and normalization)", "08 · Activations and normalization"), it is that
notebook's title. Inserting a notebook renumbers the ones after it; this test finds every stale mention.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MENTION = re.compile(r"\b[Nn]otebooks? (\d\d)((?:(?:,| and| or| to|–|/) ?\d\d)*)(?:'s)?"
                     r"(?: ?\(([^)\n]{3,80})\)| · ([^\n|*`\"\\]{3,80}))?")
DOT_TITLE = re.compile(r"\b(\d\d) · ([A-Z][^\n|*`\"\\]{2,80})")


def _titles() -> dict[str, str]:
    titles = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = "".join(json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"])
        m = re.match(r"#\s*(\d\d) · (.+)", first)
        assert m, f"{nb.name}: the first cell should start with '# NN · Title'"
        assert m.group(1) == nb.name[:2], f"{nb.name}: its title says {m.group(1)}"
        titles[m.group(1)] = m.group(2).strip()
    return titles


def _texts():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if not f.endswith((".py", ".md", ".toml", ".ipynb", ".cfg", ".yml")) or f == "tests/test_notebook_references.py":
            continue
        path = ROOT / f
        if not path.is_file():
            continue
        if f.endswith(".ipynb"):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for i, cell in enumerate(cells):
                yield f"{f} cell {i}", "".join(cell["source"])
        else:
            yield f, path.read_text(encoding="utf-8")


def _starts_with_a_title(text: str, titles: dict[str, str]) -> str | None:
    for number, title in titles.items():
        if text.lower().startswith(title.lower()):
            return number
    return None


def test_every_notebook_mention_points_at_an_existing_notebook_with_its_title():
    titles = _titles()
    assert len(titles) >= 13
    problems = []
    for where, text in _texts():
        for m in MENTION.finditer(text):
            numbers = [m.group(1)] + re.findall(r"\d\d", m.group(2) or "")
            for n in numbers:
                if n not in titles:
                    problems.append(f"{where}: '{m.group(0)}' names notebook {n}, which does not exist")
            follow = m.group(3) or m.group(4)
            if follow and len(numbers) == 1:
                owner = _starts_with_a_title(follow, titles)
                if owner is not None and owner != numbers[0]:
                    problems.append(f"{where}: '{m.group(0)}' gives the title of notebook {owner}")
        for m in DOT_TITLE.finditer(text):
            owner = _starts_with_a_title(m.group(2), titles)
            if owner is not None and owner != m.group(1):
                problems.append(f"{where}: '{m.group(0)}' pairs number {m.group(1)} with notebook {owner}'s title")
    assert not problems, "stale notebook numbers:\n" + "\n".join(problems[:40])


def test_the_checker_catches_a_stale_number():
    titles = {"03": "Gradients and SGD", "04": "MNIST 3 vs 7 from scratch"}
    m = MENTION.search("as notebook 04 (Gradients and SGD) showed")
    assert m and _starts_with_a_title(m.group(3), titles) == "03"
    assert MENTION.search("notebooks 01 and 02 did").group(2).strip() == "and 02"


@pytest.mark.parametrize("stem", [e["stem"] for e in __import__("tomllib").loads(
    (ROOT / "tools" / "course.toml").read_text(encoding="utf-8"))["notebook"]])
def test_the_road_in_course_toml_matches_the_files(stem):
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    if not path.exists():
        pytest.skip(f"{stem} is planned, not written yet")
    assert path.is_file()
