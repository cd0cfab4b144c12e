"""The course's facts that have one source each, and the command that brings every copy in step.

    python tools/course.py check                 # exit 1 and list every copy that differs from its source
    python tools/course.py sync                  # rewrite every copy from its source
    python tools/course.py set-repo OWNER/NAME   # publish under another GitHub address: the source, then sync

Sources and their copies:
- The repository address: `Repository` in pyproject.toml's `[project.urls]`. Copies: the setup cell (the second
  cell of every notebook, written from SETUP_TEMPLATE below, so the cell itself has one source too) and the
  README's Colab/Kaggle links. The tests derive the address from here and hold no copy.
- The road (numbers, file stems, slugs, time budgets): tools/course.toml. Copy: the budget table in
  CONTRIBUTING.md, between `<!-- budgets:start -->` and `<!-- budgets:end -->`.
- The reference numbers: src/helpers/reference_numbers.toml. Copy: the README's table (`helpers.results.
  reference_table()`), between `<!-- reference-table:start -->` and `<!-- reference-table:end -->`.
- The package's layers: `helpers.LAYERS`. Copy: CONTRIBUTING.md's numbered list (`helpers.layers_markdown()`),
  between `<!-- layers:start -->` and `<!-- layers:end -->`.

Every generated part of the repository is one of these copies: `sync` is the one command that regenerates them
(`make sync` runs it), and `tests/test_course_sources.py` fails while one is stale.

`sync` changes only those parts: a notebook's other cells, outputs and execution counts are left as they are,
so a notebook does not need to be executed again after it (the setup cell has no output outside Colab/Kaggle).
A notebook is matched to its course.toml entry by the name after its number (`08_regularization` and
`09_regularization` are both `regularization`), so renumbering a file keeps its slug and budget.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

SETUP_TEMPLATE = '''\
# Setup: on Colab or Kaggle, install this course's `helpers` package (torch is already there and is not touched).
# On your own machine (`make lab`) this cell does nothing.
import os, sys, subprocess
if "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "pixels-to-gpus @ git+https://github.com/{repo}"], check=True)'''

REPO_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")
URL_LINE = re.compile(r'^(Repository[ \t]*=[ \t]*")https://github\.com/([^"]+)(")[ \t]*$', re.M)
# The README's two links per notebook; group 2 is the address.
README_LINKS = [
    re.compile(r"(https://colab\.research\.google\.com/github/)([^/\s)]+/[^/\s)]+)(/blob/)"),
    re.compile(r"(https://kaggle\.com/kernels/welcome\?src=https://github\.com/)([^/\s)]+/[^/\s)]+)(/blob/)"),
]
BUDGETS_START, BUDGETS_END = "<!-- budgets:start -->", "<!-- budgets:end -->"
REFERENCE_START, REFERENCE_END = "<!-- reference-table:start -->", "<!-- reference-table:end -->"
LAYERS_START, LAYERS_END = "<!-- layers:start -->", "<!-- layers:end -->"
# (file, start marker, end marker) of each generated block, for the check that its markers are still there
MARKED_BLOCKS = [("CONTRIBUTING.md", BUDGETS_START, BUDGETS_END), ("README.md", REFERENCE_START, REFERENCE_END),
                 ("CONTRIBUTING.md", LAYERS_START, LAYERS_END)]


# ---------------------------------------------------------------------------------------------- the sources
def repository(root: Path = ROOT) -> str:
    """The GitHub address `OWNER/NAME`, read from pyproject.toml's `[project.urls]` `Repository`."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository", "")
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", url)
    if not match:
        raise ValueError(f"pyproject.toml: [project.urls] Repository should be https://github.com/OWNER/NAME, "
                         f"found {url!r}")
    return match.group(1)


def open_links(notebook: str, repo: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """{"Colab": url, "Kaggle": url} opening `notebook` (its path in the repository, `notebooks/NN_name.ipynb`)
    from the repository address's `main` branch; the README and the site link to these."""
    blob = f"{repo or repository(root)}/blob/main/{notebook}"
    return {"Colab": f"https://colab.research.google.com/github/{blob}",
            "Kaggle": f"https://kaggle.com/kernels/welcome?src=https://github.com/{blob}"}


def setup_source(repo: str | None = None, root: Path = ROOT) -> str:
    """The setup cell every notebook carries, installing from `repo` (default: the repository address)."""
    return SETUP_TEMPLATE.format(repo=repo or repository(root))


def road(root: Path = ROOT) -> list[dict]:
    """tools/course.toml's notebooks, in order: dicts with `number`, `stem`, `slug`, `budget_s`."""
    return tomllib.loads((root / "tools" / "course.toml").read_text(encoding="utf-8"))["notebook"]


def _name_after_number(stem: str) -> str:
    return re.sub(r"^\d+_", "", stem)


def entry_for(notebook: str | Path, root: Path = ROOT) -> dict | None:
    """The course.toml entry of a notebook file (by exact stem, else by the name after its number), or None."""
    stem = Path(notebook).name.removesuffix(".ipynb")
    entries = road(root)
    for entry in entries:
        if entry["stem"] == stem:
            return entry
    matches = [e for e in entries if _name_after_number(e["stem"]) == _name_after_number(stem)]
    return matches[0] if len(matches) == 1 else None


def budget_table(root: Path = ROOT) -> str:
    """CONTRIBUTING.md's budget table (markdown), from tools/course.toml."""
    lines = ["| # | slug | notebook | budget |", "|---|---|---|---|"]
    lines += [f"| {e['number']} | `{e['slug']}` | `{e['stem']}` | {e['budget_s']} s |" for e in road(root)]
    return "\n".join(lines)


def time_report(seconds: dict[str, float], root: Path = ROOT) -> list[tuple[str, bool]]:
    """Each notebook's time against its budget: [(line, is_warning)], for conftest.py's summary after nbval.

    `seconds` maps notebook file names to seconds. A notebook over its budget, or with none, gets a line that
    starts with WARNING; the times are reported, never asserted.
    """
    lines = []
    for name, took in sorted(seconds.items()):
        entry = entry_for(name, root)
        if entry is None:
            lines.append((f"WARNING: {name} took {took:.1f} s and has no budget: add it to tools/course.toml", True))
        elif took > entry["budget_s"]:
            lines.append((f"WARNING: {name} ({entry['slug']}) took {took:.1f} s, over its budget of "
                          f"{entry['budget_s']} s", True))
        else:
            lines.append((f"{entry['slug']:<16} {took:6.1f} s of {entry['budget_s']:>3} s   {name}", False))
    return lines


# ---------------------------------------------------------------------------------------------- the copies
def _notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _setup_cell(nb):
    """The notebook's setup cell: the second cell (tests/test_notebook_structure.py holds them to that order)."""
    cell = nb.cells[1] if len(nb.cells) > 1 else None
    if cell is None or cell.cell_type != "code" or "KAGGLE_KERNEL_RUN_TYPE" not in cell.source:
        return None
    return cell


def _between(text: str, start: str, end: str, body: str) -> str:
    """`text` with what lies between the markers `start` and `end` replaced by `body`."""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def _readme_text(text: str, repo: str) -> str:
    from helpers.results import reference_table  # the package, as `make .venv` installs it

    for pattern in README_LINKS:
        text = pattern.sub(lambda m: m.group(1) + repo + m.group(3), text)
    return _between(text, REFERENCE_START, REFERENCE_END, reference_table())


def _contributing_text(text: str, root: Path) -> str:
    from helpers import layers_markdown

    text = _between(text, BUDGETS_START, BUDGETS_END, budget_table(root))
    return _between(text, LAYERS_START, LAYERS_END, layers_markdown())


def _planned(root: Path) -> tuple[dict[Path, str], list[str]]:
    """({file: the text it should have} for every file holding a copy, [copies it cannot place])."""
    import nbformat  # only the notebook copies need it

    repo = repository(root)
    setup = setup_source(repo)
    planned, problems = {}, []
    for path in _notebooks(root):
        text = path.read_text(encoding="utf-8")
        nb = nbformat.reads(text, as_version=4)
        cell = _setup_cell(nb)
        if cell is None:
            problems.append(f"notebooks/{path.name}: its second cell is not the setup cell "
                            "(copy the setup cell from another notebook)")
        elif cell.source != setup:
            cell.source = setup
            text = nbformat.writes(nb, version=4) + "\n"
        planned[path] = text
    readme = root / "README.md"
    planned[readme] = _readme_text(readme.read_text(encoding="utf-8"), repo)
    contributing = root / "CONTRIBUTING.md"
    planned[contributing] = _contributing_text(contributing.read_text(encoding="utf-8"), root)
    return planned, problems


def out_of_step(root: Path = ROOT) -> list[str]:
    """What differs from its source, one line each (empty when every copy agrees)."""
    planned, problems = _planned(root)
    problems += [f"{p.relative_to(root)}: differs from its source" for p, text in planned.items()
                 if p.read_text(encoding="utf-8") != text]
    readme = (root / "README.md").read_text(encoding="utf-8")
    repo = repository(root)
    for path in _notebooks(root):
        rel = f"notebooks/{path.name}"
        for link in open_links(rel, repo).values():
            if link not in readme:
                problems.append(f"README.md: no link {link}")
    for name, start, end in MARKED_BLOCKS:
        text = (root / name).read_text(encoding="utf-8")
        if start not in text or end not in text:
            problems.append(f"{name}: the markers {start} … {end} of a generated block are missing")
    return problems


def sync(root: Path = ROOT) -> list[Path]:
    """Rewrite every copy from its source; return the files that changed."""
    planned, problems = _planned(root)
    if problems:
        raise ValueError("; ".join(problems))
    changed = []
    for path, text in planned.items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def set_repo(repo: str, root: Path = ROOT) -> list[Path]:
    """Make `repo` (`OWNER/NAME` on GitHub) the repository address, then sync; return the files that changed."""
    if not REPO_PATTERN.fullmatch(repo):
        raise ValueError(f"{repo!r} is not a GitHub address: give OWNER/NAME, e.g. "
                         f"`python tools/course.py set-repo my-org/pixels-to-gpus`")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    if not URL_LINE.search(text):
        raise ValueError('pyproject.toml has no line `Repository = "https://github.com/OWNER/NAME"` '
                         "under [project.urls]")
    new = URL_LINE.sub(lambda m: f"{m.group(1)}https://github.com/{repo}{m.group(3)}", text)
    changed = []
    if new != text:
        pyproject.write_text(new, encoding="utf-8")
        changed.append(pyproject)
    return changed + sync(root)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    sub.add_parser("sync")
    sub.add_parser("set-repo").add_argument("repo", help="OWNER/NAME on GitHub")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = out_of_step()
        for line in problems:
            print(line)
        if problems:
            print("Run `python tools/course.py sync` and commit the result.", file=sys.stderr)
        return 1 if problems else 0
    try:
        changed = set_repo(args.repo) if args.command == "set-repo" else sync()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    if not changed:
        print("every copy already agrees with its source")
    return 0


if __name__ == "__main__":
    sys.exit(main())
