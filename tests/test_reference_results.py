"""After the notebooks ran (in the same pytest session), every headline number they own was recorded and passed.

`make test` sets HELPERS_RESULTS; the root conftest.py runs this file last. Run alone (no notebooks collected)
it skips, saying why.
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from helpers.results import references

ROOT = Path(__file__).resolve().parents[1]


def _recorded():
    path = os.environ.get("HELPERS_RESULTS")
    if not path or not Path(path).is_file():
        return None
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _owners(ran):
    """The `notebook` values of the reference entries that the notebook files in `ran` produce: each file's slug
    (tools/course.toml, matched by tools/course.py's `entry_for`) and, while some entries are still named by number
    (`NN/what`), its number, unless the file's slug already names entries of its own (two files share a number
    while the road is being renumbered)."""
    course = _course_tool()
    named = {str(r.notebook) for r in references().values() if r.notebook}
    owners = set()
    for name in ran:
        entry = course.entry_for(Path(name).stem)
        slug = entry["slug"] if entry else None
        if slug in named:
            owners.add(slug)
        else:
            owners.add(name[:2])
    return owners


def _course_tool():
    spec = importlib.util.spec_from_file_location("p2g_course", ROOT / "tools" / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_reference_of_the_notebooks_that_ran_was_recorded(request):
    ran = getattr(request.config, "_p2g_notebooks", set())
    if not ran:
        pytest.skip("no notebook ran in this session: `make test` runs the notebooks and then this check")
    records = _recorded()
    if records is None:
        pytest.skip("HELPERS_RESULTS is not set: `make test` sets it")
    device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    expected = [
        r for r in references().values()
        if r.notebook and str(r.notebook) in _owners(ran) and (r.device is None or r.device == device)
    ]
    assert expected, "no reference entries belong to the notebooks that ran"
    by_name = {}
    for rec in records:
        by_name.setdefault(rec["name"], []).append(rec)
    missing = [r.name for r in expected if r.name not in by_name]
    assert not missing, f"these headline numbers were never checked by their notebook: {missing}"
    failed = [(n, rec["value"]) for n, recs in by_name.items() for rec in recs if not rec["ok"]]
    assert not failed, f"results outside their reference tolerance: {failed}"
