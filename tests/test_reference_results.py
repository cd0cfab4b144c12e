"""After the notebooks ran (in the same pytest session), every headline number they own was recorded and passed.

`make test` sets HELPERS_RESULTS; the root conftest.py runs this file last. Run alone (no notebooks collected)
it skips, saying why.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from helpers.results import references, tomllib

COURSE = Path(__file__).resolve().parents[1] / "tools" / "course.toml"


def _slugs(notebook_files) -> set[str]:
    """The slugs (tools/course.toml) of notebooks that ran, matched by the name after the number."""
    by_name = {e["stem"][3:]: e["slug"] for e in tomllib.loads(COURSE.read_text(encoding="utf-8"))["notebook"]}
    return {by_name[Path(f).stem[3:]] for f in notebook_files if Path(f).stem[3:] in by_name}


def _recorded():
    path = os.environ.get("HELPERS_RESULTS")
    if not path or not Path(path).is_file():
        return None
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_every_reference_of_the_notebooks_that_ran_was_recorded(request):
    ran = getattr(request.config, "_p2g_notebooks", set())
    if not ran:
        pytest.skip("no notebook ran in this session: `make test` runs the notebooks and then this check")
    records = _recorded()
    if records is None:
        pytest.skip("HELPERS_RESULTS is not set: `make test` sets it")
    device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    ran_numbers, ran_slugs = {name[:2] for name in ran}, _slugs(ran)
    expected = [
        r for r in references().values()
        if r.notebook and (str(r.notebook) in ran_slugs or str(r.notebook)[:2] in ran_numbers)
        and (r.device is None or r.device == device)
    ]
    assert expected, "no reference entries belong to the notebooks that ran"
    by_name = {}
    for rec in records:
        by_name.setdefault(rec["name"], []).append(rec)
    missing = [r.name for r in expected if r.name not in by_name]
    assert not missing, f"these headline numbers were never checked by their notebook: {missing}"
    failed = [(n, rec["value"]) for n, recs in by_name.items() for rec in recs if not rec["ok"]]
    assert not failed, f"results outside their reference tolerance: {failed}"
