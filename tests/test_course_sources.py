"""Each fact with one source agrees with every copy of it, and one command moves them all (tools/course.py).

The repository address (pyproject.toml) and its copies: the setup cell of every notebook, the README's
Colab/Kaggle links. The road (tools/course.toml) and its copy: CONTRIBUTING.md's budget table, and the budgets
conftest.py reports the notebooks' times against.
"""

import difflib
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import course

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_copy_agrees_with_its_source():
    problems = course.out_of_step()
    assert not problems, "\n".join(problems) + "\nRun `python tools/course.py sync` and commit the result."


def test_the_address_is_a_github_repository():
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", course.repository())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_is_the_one_source_text(path):
    setup = nbformat.read(path, as_version=4).cells[1]
    assert setup.source == course.setup_source(), \
        f"{path.name}'s setup cell differs from tools/course.py's template: `python tools/course.py sync`"


def test_the_setup_cell_installs_this_repository_without_touching_torch():
    source = course.setup_source()
    assert f'"pixels-to-gpus @ git+https://github.com/{course.repository()}"' in source
    assert '"--no-deps"' in source, "--no-deps: Colab's preinstalled torch must not be replaced"
    assert '"google.colab" in sys.modules' in source and '"KAGGLE_KERNEL_RUN_TYPE" in os.environ' in source
    compile(source, "<setup cell>", "exec")


def test_budget_table_in_contributing_is_course_toml():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = re.search(re.escape(course.BUDGETS_START) + r"\n(.*?)\n" + re.escape(course.BUDGETS_END), text, re.S)
    assert block, "CONTRIBUTING.md lost its budget table's markers"
    assert block.group(1) == course.budget_table(), "`python tools/course.py sync` rewrites the table"
    for entry in course.road():
        assert f"| `{entry['slug']}` |" in block.group(1)


def test_the_road_is_consistent():
    road = course.road()
    assert [e["number"] for e in road] == [f"{i:02d}" for i in range(len(road))]
    for key in ("stem", "slug"):
        values = [e[key] for e in road]
        assert len(set(values)) == len(values), f"duplicate {key} in tools/course.toml"
    for e in road:
        assert e["stem"].startswith(e["number"] + "_") and e["budget_s"] > 0, e


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_slug_and_a_budget(path):
    entry = course.entry_for(path)
    assert entry is not None, f"{path.name} is not in tools/course.toml (number, stem, slug, budget_s)"


def test_a_renumbered_notebook_keeps_its_slug_and_budget():
    for name in ("07_activations_and_normalization.ipynb", "08_activations_and_normalization.ipynb"):
        assert course.entry_for(name)["slug"] == "activations"
    assert course.entry_for("12_distributed.ipynb")["slug"] == "distributed"
    assert course.entry_for("14_distributed.ipynb")["slug"] == "distributed"
    assert course.entry_for("10_gpu_training_loop.ipynb")["slug"] == "gpu_loop"
    assert course.entry_for("10_bug_zoo.ipynb")["slug"] == "bug_zoo"
    assert course.entry_for("99_not_a_notebook.ipynb") is None


def test_time_report_warns_over_budget_and_never_raises():
    budget = course.entry_for("00_start_here.ipynb")["budget_s"]
    lines = dict(course.time_report({"00_start_here.ipynb": budget - 1.0,
                                     "06_softmax_and_cross_entropy.ipynb": 1000.0,
                                     "99_mystery.ipynb": 3.0}))
    ok = next(line for line in lines if "00_start_here" in line)
    over = next(line for line in lines if "06_softmax" in line)
    unknown = next(line for line in lines if "99_mystery" in line)
    assert not lines[ok] and ok.startswith("start") and f"of  {budget} s" in ok
    assert lines[over] and over.startswith("WARNING") and "softmax" in over and "over its budget of 90 s" in over
    assert lines[unknown] and "no budget" in unknown and "tools/course.toml" in unknown


def _copy_course(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "CONTRIBUTING.md", "tools/course.toml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return root


def test_set_repo_rewrites_every_copy_and_only_the_copies(tmp_path):
    root = _copy_course(tmp_path)
    old = course.repository(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    before = {p: p.read_text(encoding="utf-8") for p in files}
    new = "someone-else/deep.course"

    changed = course.set_repo(new, root=root)

    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(changed) == sorted([root / "pyproject.toml", root / "README.md", *notebooks])
    assert course.repository(root) == new and course.out_of_step(root) == []
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert old not in text or path.name == "CONTRIBUTING.md", f"{path.name} still names {old}"
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert readme.count(f"colab.research.google.com/github/{new}/blob/main/notebooks/") == len(notebooks)
    for path in notebooks:
        # one line of the file changed (the setup cell's install line), so a merge with other edits stays clean
        diff = [line for line in difflib.unified_diff(before[path].splitlines(), path.read_text().splitlines(),
                                                      lineterm="", n=0) if line[:1] in "+-"
                and not line.startswith(("+++", "---"))]
        assert len(diff) == 2 and new in diff[1], (path.name, diff)

    assert course.set_repo(old, root=root)
    assert {p: p.read_text(encoding="utf-8") for p in files} == before, "set-repo back restores every byte"
    assert course.sync(root) == [], "sync after sync changes nothing"


@pytest.mark.parametrize("bad", ["pixels-to-gpus", "https://github.com/a/b", "a/b/c", "", "a b/c"])
def test_set_repo_refuses_what_is_not_an_address(tmp_path, bad):
    with pytest.raises(ValueError, match="OWNER/NAME"):
        course.set_repo(bad, root=tmp_path)


def test_no_other_file_holds_a_copy_of_the_address():
    """A new hard-coded copy (a test, a doc) would be missed by `set-repo`: derive it from `course.repository()`."""
    allowed = {"pyproject.toml", "README.md"} | {f"notebooks/{p.name}" for p in NOTEBOOKS}
    address = course.repository()
    skip = {".git", ".venv", "build", "data", "artifacts", ".pytest_cache", "__pycache__", ".ipynb_checkpoints"}
    holders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix not in {".py", ".md", ".toml", ".ipynb", ".cfg", ".yml", ".txt", ""}:
                continue
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8", errors="replace")
            if address in text and (rel not in allowed or (rel.endswith(".ipynb") and text.count(address) != 1)):
                holders.append(rel)
    assert not holders, f"copies of {address} that `python tools/course.py set-repo` does not rewrite: {holders}"


def test_a_stale_generated_block_is_found_and_sync_rewrites_it(tmp_path):
    """The README's reference table and CONTRIBUTING's layer list are copies too: `check` names them when they
    are stale, `sync` writes them back from `helpers.results.reference_table()` and `helpers.LAYERS`."""
    root = _copy_course(tmp_path)
    readme, contributing = root / "README.md", root / "CONTRIBUTING.md"
    good = {readme: readme.read_text(encoding="utf-8"), contributing: contributing.read_text(encoding="utf-8")}
    readme.write_text(good[readme].replace("| `pixels/", "| `stale/", 1), encoding="utf-8")
    contributing.write_text(good[contributing].replace("`train` · ", "", 1), encoding="utf-8")
    assert course.out_of_step(root) == ["README.md: differs from its source", "CONTRIBUTING.md: differs from its source"]
    assert sorted(course.sync(root)) == sorted([readme, contributing])
    assert {p: p.read_text(encoding="utf-8") for p in good} == good and course.out_of_step(root) == []
