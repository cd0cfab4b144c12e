"""Session-wide pytest glue for `make test`.

- The notebooks run under nbval after the unit tests; `tests/test_reference_results.py` is moved to the very
  end so it can read what the notebooks recorded through `check_result` (the file named by HELPERS_RESULTS).
- Each notebook's wall-clock time under nbval is written to build/notebook_times.json (or the file named by
  NOTEBOOK_TIMES: `make test-portable` keeps its own), and the summary at the
  end reports it against the notebook's budget, found by slug in tools/course.toml (a WARNING line for a
  notebook over budget; speed goals are reported, never asserted, so the suite does not fail on time).
- A test must never leave `os.environ` changed (it would leak into every later test and every nbval kernel):
  the environment at the end of the session is compared with the one at its start, and any difference fails
  the run, naming the variables.
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
# The session's state lives in pytest's stash (`config.stash`, `item.stash`), under these keys:
ENV_AT_START = pytest.StashKey[dict]()  # os.environ when the session started
NOTEBOOK_TIMES = pytest.StashKey[dict]()  # notebook file name -> seconds under nbval
NOTEBOOKS_RAN = pytest.StashKey[set]()  # the notebook files collected (tests/test_reference_results.py reads it)
STARTED = pytest.StashKey[float]()  # on a notebook cell's item: when it started


def pytest_sessionstart(session):
    session.config.stash[ENV_AT_START] = dict(os.environ)
    session.config.stash[NOTEBOOK_TIMES] = {}


_PYTESTS_OWN = {"PYTEST_CURRENT_TEST"}  # pytest sets and removes it around each test
# Variables libraries ADD to their own process on import or first use, whatever a test does; every notebook kernel
# that imports them adds the same. Only their addition is tolerated: a test that changes or removes one still fails.
ADDED_BY_LIBRARIES = {
    "KMP_DUPLICATE_LIB_OK": "scikit-learn, on import (fastai imports it)",
    "KMP_INIT_AT_FORK": "scikit-learn, on import (fastai imports it)",
    "TORCHINDUCTOR_CACHE_DIR": "torch's inductor, on first use, set to its default folder",
    "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR": "torch.compile, before it loads a compiled kernel",
}


def environment_changes(before: dict, after: dict) -> list[str]:
    """One line per variable that was added, removed or changed between two snapshots of `os.environ`
    (additions of `ADDED_BY_LIBRARIES` aside)."""
    before = {k: v for k, v in before.items() if k not in _PYTESTS_OWN}
    after = {k: v for k, v in after.items() if k not in _PYTESTS_OWN}
    lines = [f"  {k} was added (= {after[k]!r})" for k in sorted(after.keys() - before.keys())
             if k not in ADDED_BY_LIBRARIES]
    lines += [f"  {k} was removed (was {before[k]!r})" for k in sorted(before.keys() - after.keys())]
    lines += [f"  {k} changed from {before[k]!r} to {after[k]!r}"
              for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


@pytest.fixture
def restore_environ():
    """Puts `os.environ` back as it was after the test, for code whose library sets variables it cannot be told
    not to set (torch.compile's inductor adds TORCHINDUCTOR_CACHE_DIR and a pointer variable of its own)."""
    before = dict(os.environ)
    yield
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(autouse=True)
def close_figures():
    """Closes every matplotlib figure a test opened, so that figures do not pile up over the session (matplotlib
    warns past 20 open ones, and each holds memory). A no-op for tests that never imported pyplot."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def _check_environment(session) -> None:
    changes = environment_changes(session.config.stash[ENV_AT_START], dict(os.environ))
    if not changes:
        return
    message = ("\nERROR: the test session changed os.environ, so later tests and every nbval kernel saw another "
               "environment:\n" + "\n".join(changes) + "\nA test that sets a variable must restore it: use "
               "pytest's monkeypatch.setenv/delenv (or run the code in a subprocess).")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    if session.exitstatus == 0:
        session.exitstatus = 1  # pytest.ExitCode.TESTS_FAILED


PERSONALITY_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS",
                         "HELPERS_CPU_BF16")


def pytest_report_header(config):
    """Which CPU personality the notebooks compute with (tools/personality.py): a failure in a checked output is
    read against it."""
    import torch

    set_here = [f"{k}={os.environ[k]}" for k in PERSONALITY_VARIABLES if k in os.environ]
    return (f"CPU personality: capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} "
            f"threads; " + (", ".join(set_here) if set_here else "the machine's default"))


def pytest_collection_modifyitems(session, config, items):
    last = [i for i in items if i.nodeid.startswith("tests/test_reference_results.py")]
    rest = [i for i in items if i not in last]
    items[:] = rest + last
    config.stash[NOTEBOOKS_RAN] = {Path(str(i.fspath)).name for i in rest if Path(str(i.fspath)).suffix == ".ipynb"}


def pytest_runtest_protocol(item, nextitem):
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        item.config.stash[NOTEBOOK_TIMES].setdefault(path.name, 0.0)
        item.stash[STARTED] = time.perf_counter()


def pytest_runtest_teardown(item, nextitem):
    start = item.stash.get(STARTED, None)
    if start is not None:
        item.config.stash[NOTEBOOK_TIMES][Path(str(item.fspath)).name] += time.perf_counter() - start


def pytest_sessionfinish(session, exitstatus):
    _check_environment(session)
    times = session.config.stash.get(NOTEBOOK_TIMES, {})
    if not times:
        return
    out = Path(os.environ.get("NOTEBOOK_TIMES") or ROOT / "build" / "notebook_times.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: round(v, 1) for k, v in sorted(times.items())}, indent=1) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    times = config.stash.get(NOTEBOOK_TIMES, {})
    if not times:
        return
    title = "notebook seconds under nbval, against each one's budget (tools/course.toml)"
    if any(k in os.environ for k in PERSONALITY_VARIABLES):  # budgets are for the machine's own personality
        title += "; this run used another CPU personality, so it is slower than the budgets assume"
    terminalreporter.section(title)
    from tools.course import time_report  # here, not at the top: tests copy this file where tools/ is not

    for line, warning in time_report(times):
        terminalreporter.write_line(line, yellow=warning, bold=warning)
