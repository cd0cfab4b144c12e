"""Committed notebooks are clean (tools/nbtool.py) and their execution counts agree with their outputs."""

from pathlib import Path

import nbformat
import pytest

from tools import nbtool

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    assert nbtool.clean_file(path, check_only=True), f"{path.name} is not clean: run `make clean-notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_was_executed(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unrun = [i for i, c in enumerate(code) if c.execution_count is None]
    assert not unrun, f"{path.name}: code cells {unrun} were never run: `make run-notebooks NB=notebooks/{path.name}`"
    errors = [c.execution_count for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: cells {errors} were committed with an error output"


def test_cleaner_drops_machine_metadata():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1+1"), nbformat.v4.new_code_cell("2")])
    nb.metadata["kernelspec"] = {"name": "my-venv", "display_name": "Mine", "language": "python"}
    nb.metadata["widgets"] = {"state": {}}
    nb.cells[0].execution_count = 7
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=7)]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="stale")]  # never run, yet has output
    nb.cells.append(nbformat.v4.new_code_cell("print(1); print(2)", execution_count=9, outputs=[
        nbformat.v4.new_output("stream", text="1\n"), nbformat.v4.new_output("stream", text="2\n")]))
    nbtool.clean_notebook(nb)
    assert nb.metadata == {"kernelspec": nbtool.KERNELSPEC, "language_info": {"name": "python"}}
    assert nb.cells[0].execution_count == 1 and nb.cells[0].outputs[0].execution_count == 1
    assert nb.cells[0].metadata == {}
    assert nb.cells[1].outputs == []
    assert [o.text for o in nb.cells[2].outputs] == ["1\n2\n"] and nb.cells[2].execution_count == 2
