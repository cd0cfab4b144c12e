"""After the notebooks ran (in the same pytest session), every headline number they own was recorded and passed.

`make test` sets HELPERS_RESULTS; the root conftest.py runs this file last. Run alone (no notebooks collected)
it skips, saying why.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import NOTEBOOKS_RAN  # the notebooks this session collected (conftest.py stashes them)
from helpers.results import references
from tools.course import entry_for, road  # notebook file -> its slug, from tools/course.toml


def _recorded():
    path = os.environ.get("HELPERS_RESULTS")
    if not path or not Path(path).is_file():
        return None
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_every_reference_of_the_notebooks_that_ran_was_recorded(request):
    ran = request.config.stash.get(NOTEBOOKS_RAN, set())
    if not ran:
        pytest.skip("no notebook ran in this session: `make test` runs the notebooks and then this check")
    records = _recorded()
    if records is None:
        pytest.skip("HELPERS_RESULTS is not set: `make test` sets it")
    device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    ran_slugs = {entry["slug"] for entry in map(entry_for, ran) if entry}
    expected = [
        r for r in references().values()
        if r.notebook in ran_slugs and (r.device is None or r.device == device)
    ]
    assert expected, "no reference entries belong to the notebooks that ran"
    by_name = {}
    for rec in records:
        by_name.setdefault(rec["name"], []).append(rec)
    missing = [r.name for r in expected if r.name not in by_name]
    assert not missing, f"these headline numbers were never checked by their notebook: {missing}"
    failed = [(n, rec["value"]) for n, recs in by_name.items() for rec in recs if not rec["ok"]]
    assert not failed, f"results outside their reference tolerance: {failed}"


def test_every_reference_names_its_notebook_by_slug():
    slugs = {entry["slug"] for entry in road()}
    wrong = [r.name for r in references().values() if r.notebook not in slugs or not r.name.startswith(f"{r.notebook}/")]
    assert not wrong, f"reference entries must be named 'slug/what' with notebook = the slug (tools/course.toml): {wrong}"


def test_every_score_says_which_data_it_is_on():
    unsaid = [r.name for r in references().values()
              if any(w in r.name for w in ("accuracy", "loss", "nll")) and r.data_set == "—"]
    assert not unsaid, ("name these figures '..._valid_...' or '..._test_...', or give them a `split` in "
                        f"reference_numbers.toml, so the README's table says which data each one is on: {unsaid}")
