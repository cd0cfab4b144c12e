"""The README tells the truth: both commands, every notebook with its links, the data sets.

(Its generated reference table is guarded with every other generated part by tests/test_course_sources.py.)
"""

import re
from pathlib import Path

from helpers.data import DATASETS
from tools.course import repository  # the address's one source: pyproject.toml's [project.urls]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

REPO = repository()


def test_two_commands_and_ci_calls_the_test_command():
    assert "make lab" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\s*$", ci, re.M), ".ci/run must call the README's test command"
    lint = re.search(r"^make lint\s*$", ci, re.M)
    assert lint and lint.start() < re.search(r"^make test\s*$", ci, re.M).start(), \
        ".ci/run must run the linter (`make lint`) before the tests"


def test_every_notebook_is_listed_with_colab_and_kaggle_links():
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        rel = f"notebooks/{nb.name}"
        assert f"colab.research.google.com/github/{REPO}/blob/main/{rel}" in README, nb.name
        assert f"kaggle.com/kernels/welcome?src=https://github.com/{REPO}/blob/main/{rel}" in README, nb.name
    for link in re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", README):
        assert (ROOT / link).is_file(), f"README links to a missing notebook: {link}"


def test_the_data_section_names_every_data_set_its_source_licence_and_variable():
    section = re.search(r"^## Data\n(.*?)^## ", README, re.S | re.M)
    assert section, "README lost its Data section"
    text = section.group(1)
    for ds in DATASETS.values():
        assert ds.licence in text and ds.dir_env in text and f"data/{ds.folder}/" in text, ds.folder
    assert "karpathy/makemore" in text and "LeCun" in text and "HELPERS_DATA_DIR" in text
    ci = (ROOT / ".ci" / "run").read_text()
    for ds in DATASETS.values():
        assert f"export {ds.dir_env}=" in ci and f"../shared/data/{ds.folder}" in ci, ds.dir_env
