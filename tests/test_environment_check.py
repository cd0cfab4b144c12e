"""The session-level guard in conftest.py: a test session that leaves os.environ changed fails, naming the variables.

Each case runs a small pytest session in a subprocess, in a temporary folder holding a copy of the repository's
conftest.py, so this session's own environment is never touched.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _session(tmp_path: Path, test_source: str, **extra_env: str) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_case.py").write_text(test_source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("P2G_PROBE", "PYTEST_", "KMP_", "TORCHINDUCTOR_", "_TORCHINDUCTOR_"))}
    env["P2G_PROBE_KEPT"] = "old"
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_leaking_test_fails_the_session_naming_each_variable(tmp_path):
    run = _session(tmp_path, (
        "import os\n"
        "def test_leaks():\n"
        "    os.environ['P2G_PROBE_ADDED'] = '1'\n"
        "    os.environ['P2G_PROBE_KEPT'] = 'new'\n"
    ))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout  # the test itself passed: the session check is what failed
    assert "the test session changed os.environ" in run.stdout
    assert "P2G_PROBE_ADDED was added (= '1')" in run.stdout
    assert "P2G_PROBE_KEPT changed from 'old' to 'new'" in run.stdout
    assert "monkeypatch" in run.stdout


def test_monkeypatch_and_restore_environ_leave_the_session_clean(tmp_path):
    run = _session(tmp_path, (
        "import os\n"
        "def test_monkeypatched(monkeypatch):\n"
        "    monkeypatch.setenv('P2G_PROBE_ADDED', '1')\n"
        "    monkeypatch.delenv('P2G_PROBE_KEPT')\n"
        "def test_restored(restore_environ):\n"
        "    os.environ['P2G_PROBE_OTHER'] = '2'\n"
        "    del os.environ['P2G_PROBE_KEPT']\n"
        "def test_a_library_adds_its_own():\n"
        "    os.environ.setdefault('KMP_INIT_AT_FORK', 'FALSE')  # what scikit-learn does on import\n"
    ))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout and "changed os.environ" not in run.stdout


def test_a_library_variable_changed_by_a_test_still_fails(tmp_path):
    run = _session(tmp_path, (
        "import os\n"
        "def test_moves_the_cache():\n"
        "    os.environ['TORCHINDUCTOR_CACHE_DIR'] = '/tmp/elsewhere'\n"
    ), TORCHINDUCTOR_CACHE_DIR="/tmp/default")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "TORCHINDUCTOR_CACHE_DIR changed from '/tmp/default' to '/tmp/elsewhere'" in run.stdout
