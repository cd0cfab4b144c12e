"""The Colab/Kaggle setup cell really installs the course, run the way Colab and Kaggle run it.

On Colab and Kaggle, torch, numpy, matplotlib, ipywidgets and fastai come preinstalled and this course does not;
every notebook's second cell installs the course's `helpers` with `pip install --no-deps`, so that the
preinstalled torch is never touched. Here, offline:

- a throwaway virtual environment, made by this interpreter (`sys.executable`) with `--without-pip`, sees this
  environment's installed packages as its preinstalled ones: a `.pth` file adds a folder of links to every entry
  of this environment's site-packages except the course's own install (Colab has none). A venv made with
  `--system-site-packages` would see the base interpreter's packages, not this environment's; and one with its
  own bundled pip and setuptools fails to build this project (`license = "Apache-2.0"` wants setuptools>=77);
- the cell is the notebooks' setup cell (tests/test_course_sources.py holds all of them to one text) with the
  GitHub address replaced by this clone, pinned to HEAD (`git+file://localhost<root>@<sha>`: pip 23.2 refuses
  `git+file:///<root>`), so it installs the committed state, as Colab would install the pushed one;
- Colab is announced by a fake `google.colab` in `sys.modules`, Kaggle by `KAGGLE_KERNEL_RUN_TYPE`; pip runs
  with no index, no cache and no build isolation (it builds with the preinstalled setuptools).

Checks: `helpers` is imported from the throwaway environment's own site-packages (not the editable `src/`),
torch is the preinstalled one (same version, same files, nothing written), and the start notebook's setup and
imports cells run in one process, as they would in one kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import torch

from tools.course import repository, setup_source

ROOT = Path(__file__).resolve().parents[1]

START = ROOT / "notebooks" / "00_start_here.ipynb"
# This environment's entries that are the course itself (Colab has none of them preinstalled), and its bytecode
# cache (the throwaway environment writes its own).
OWN = ("helpers", "pixels_to_gpus", "__editable__", "__pycache__")

pytestmark = pytest.mark.slow


def _git(*args) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def head() -> str:
    if shutil.which("git") is None:
        pytest.skip("needs git: pip clones the repository the way the setup cell does")
    try:
        return _git("rev-parse", "HEAD")
    except subprocess.CalledProcessError:
        pytest.skip(f"{ROOT} is not a git checkout: the test installs its committed HEAD")


@pytest.fixture
def throwaway(tmp_path) -> dict:
    """A venv with no pip of its own, whose "preinstalled" packages are links into this environment's."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    own_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    preinstalled = tmp_path / "preinstalled"
    preinstalled.mkdir()
    ours = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for site in ours:
        for entry in site.iterdir():
            if not entry.name.startswith(OWN) and not (preinstalled / entry.name).exists():
                (preinstalled / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    # addsitedir, not a bare path: the preinstalled folder's own .pth files are processed, as in a real install
    (own_site / "_preinstalled.pth").write_text(f"import site; site.addsitedir({str(preinstalled)!r})\n")
    return {"python": python, "site": own_site, "preinstalled": preinstalled, "ours": ours}


def _env(tmp_path: Path, where: str) -> dict:
    """The child's environment: nothing that points at this checkout or this venv; pip offline, no isolation."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                                                     "KAGGLE_KERNEL_RUN_TYPE")}
    env.update(PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull,
               PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", HOME=str(tmp_path / "home"), MPLBACKEND="Agg")
    # pip reads an option's environment value into the option's destination, `build_isolation`: 0 turns it off
    env["PIP_NO_BUILD_ISOLATION"] = "0"
    if where == "kaggle":
        env["KAGGLE_KERNEL_RUN_TYPE"] = "Interactive"
    return env


FIRST_CELLS = r'''
import importlib.metadata, json, sys, types
cells = json.load(open(sys.argv[1]))
if sys.argv[2] == "colab":
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's kernel has imported
kernel = {}  # one namespace for both cells, like one kernel
for name, source in cells:
    exec(compile(source, name, "exec"), kernel)
import helpers, torch
dist = importlib.metadata.distribution("pixels-to-gpus")
print(json.dumps({"helpers": helpers.__file__, "torch": torch.__file__, "torch_version": torch.__version__,
                  "device": str(kernel["device"]), "direct_url": json.loads(dist.read_text("direct_url.json"))}))
'''


def _snapshot(sites) -> dict:
    """What a reinstall of torch would change: the names in this environment's site-packages, and the
    modification times of torch's top-level files and of its installation record."""
    torch_dir = Path(torch.__file__).parent
    record = [p / "RECORD" for site in sites for p in site.glob("torch-*.dist-info")]
    snap = {str(p): sorted(e.name for e in p.iterdir() if e.name != "__pycache__") for p in sites}
    snap["torch"] = sorted((p.name, p.stat().st_mtime_ns) for p in [*torch_dir.glob("*.py"), *record])
    return snap


@pytest.mark.parametrize("where", ["colab", "kaggle"])
def test_setup_cell_installs_helpers_and_leaves_torch_alone(tmp_path, head, throwaway, where):
    clone = f"git+file://localhost{ROOT.as_posix()}@{head}"
    setup = setup_source()
    assert f"git+https://github.com/{repository()}" in setup
    setup = setup.replace(f"git+https://github.com/{repository()}", clone)
    imports = nbformat.read(START, as_version=4).cells[2].source
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps([["<setup cell>", setup], ["<imports cell>", imports]]))
    script = tmp_path / "first_cells.py"
    script.write_text(FIRST_CELLS)
    (tmp_path / "home").mkdir()
    before = _snapshot(throwaway["ours"])

    run = subprocess.run([str(throwaway["python"]), str(script), str(cells), where], cwd=tmp_path,
                         env=_env(tmp_path, where), capture_output=True, text=True, timeout=600)

    assert run.returncode == 0, f"the setup and imports cells failed:\n{run.stdout}\n{run.stderr}"
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    site = throwaway["site"]
    assert Path(facts["helpers"]).parent == site / "helpers", f"helpers came from {facts['helpers']}"
    assert facts["direct_url"]["vcs_info"]["commit_id"] == head, "the committed HEAD was installed"
    assert Path(facts["torch"]).parent == throwaway["preinstalled"] / "torch", f"torch came from {facts['torch']}"
    assert facts["torch_version"] == torch.__version__ and facts["device"] == "cpu"
    installed = sorted(p.name for p in site.iterdir())
    assert installed == ["_preinstalled.pth", "helpers", "pixels_to_gpus-0.1.0.dist-info"], \
        f"--no-deps installs the course alone; the throwaway site-packages holds {installed}"
    assert _snapshot(throwaway["ours"]) == before, "the preinstalled packages (this environment's) were changed"


def test_on_your_own_machine_the_setup_cell_does_nothing(tmp_path, throwaway):
    """Neither Colab nor Kaggle: no pip, so `helpers` stays missing in the throwaway environment."""
    probe = setup_source() + "\nimport importlib.util\nprint(importlib.util.find_spec('helpers') is None)\n"
    run = subprocess.run([str(throwaway["python"]), "-c", probe], cwd=tmp_path, env=_env(tmp_path, "local"),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True" and sorted(p.name for p in throwaway["site"].iterdir()) == ["_preinstalled.pth"]
