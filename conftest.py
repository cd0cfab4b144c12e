"""Session-wide pytest glue for `make test`.

- The notebooks run under nbval after the unit tests; `tests/test_reference_results.py` is moved to the very
  end so it can read what the notebooks recorded through `check_result` (the file named by HELPERS_RESULTS).
- Each notebook's wall-clock time under nbval is written to build/notebook_times.json, and the summary at the
  end reports it against the notebook's budget, found by slug in tools/course.toml (a WARNING line for a
  notebook over budget; speed goals are reported, never asserted, so the suite does not fail on time).
"""

import importlib.util
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_times: dict[str, float] = {}
_collected_notebooks: set[str] = set()


def pytest_collection_modifyitems(session, config, items):
    last = [i for i in items if i.nodeid.startswith("tests/test_reference_results.py")]
    rest = [i for i in items if i not in last]
    items[:] = rest + last
    for item in rest:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            _collected_notebooks.add(path.name)
    config._p2g_notebooks = _collected_notebooks


def pytest_runtest_protocol(item, nextitem):
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        _times.setdefault(path.name, 0.0)
        item._p2g_start = time.perf_counter()


def pytest_runtest_teardown(item, nextitem):
    start = getattr(item, "_p2g_start", None)
    if start is not None:
        _times[Path(str(item.fspath)).name] += time.perf_counter() - start


def pytest_sessionfinish(session, exitstatus):
    if not _times:
        return
    out = ROOT / "build" / "notebook_times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({k: round(v, 1) for k, v in sorted(_times.items())}, indent=1) + "\n")


def _course_tool():
    spec = importlib.util.spec_from_file_location("p2g_course", ROOT / "tools" / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _times:
        return
    terminalreporter.section("notebook seconds under nbval, against each one's budget (tools/course.toml)")
    for line, warning in _course_tool().time_report(_times):
        terminalreporter.write_line(line, yellow=warning, bold=warning)
