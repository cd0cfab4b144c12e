"""The project's notebook command: run notebooks, clean them for git, check they are clean.

    python tools/nbtool.py run   notebooks/02_*.ipynb   # execute in place (cwd = notebooks/), then clean
    python tools/nbtool.py clean notebooks/*.ipynb      # strip per-machine metadata, keep outputs
    python tools/nbtool.py check notebooks/*.ipynb      # exit 1 and list notebooks that `clean` would change
    python tools/nbtool.py from-py draft.py notebooks/NN_name.ipynb  # build a notebook from a percent script

What "clean" means (the test `tests/test_notebooks_clean.py` holds every committed notebook to it):
- notebook metadata: only the kernel spec, normalised to `python3`, and the language name;
- cell metadata: only `tags` and `jupyter` (collapsed answers) survive;
- outputs: widget views and per-run metadata go; consecutive chunks of one stream are joined; text, images
  and errors stay;
- execution counts: numbered 1, 2, 3… over the executed code cells; a code cell that was never run keeps
  no outputs (nbval fails on "unrun reference cell has outputs" otherwise).

A percent script for `from-py` separates cells with `# %%` (code) and `# %% [markdown]` (markdown, each line
starting with `# `), the format jupytext and VS Code use.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
KEEP_CELL_METADATA = ("tags", "jupyter")
DROP_MIME = ("application/vnd.jupyter.widget-view+json",)


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return `nb` cleaned in place (see the module docstring)."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.nbformat, nb.nbformat_minor = 4, 5
    count = 0
    for i, cell in enumerate(nb.cells):
        cell.metadata = nbformat.from_dict({k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata})
        if "id" not in cell or not cell.id:
            cell.id = f"cell-{i:03d}"
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if cell.execution_count is None:
            cell.outputs = []
            continue
        count += 1
        cell.execution_count = count
        outputs = []
        for out in cell.outputs:
            if (out.output_type == "stream" and outputs and outputs[-1].output_type == "stream"
                    and outputs[-1].name == out.name):
                outputs[-1].text += out.text  # one block per stream, however the kernel chunked it
                continue
            if out.output_type in ("display_data", "execute_result"):
                for mime in DROP_MIME:
                    out.data.pop(mime, None)
                if not out.data:
                    continue
                out.metadata = nbformat.from_dict(
                    {k: v for k, v in out.get("metadata", {}).items() if k.startswith("image/")}
                )
                if out.output_type == "execute_result":
                    out.execution_count = count
            outputs.append(out)
        cell.outputs = outputs
    return nb


def _dumps(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def clean_file(path: Path, check_only: bool = False) -> bool:
    """Clean one file; return True when it was already clean."""
    text = path.read_text(encoding="utf-8")
    cleaned = _dumps(clean_notebook(nbformat.reads(text, as_version=4)))
    if cleaned == text:
        return True
    if not check_only:
        tmp = path.with_suffix(".ipynb.tmp")
        tmp.write_text(cleaned, encoding="utf-8")
        tmp.replace(path)
    return False


def run_file(path: Path, timeout: int = 900) -> float:
    """Execute a notebook in place with the current environment's kernel, then clean it. Returns seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        path.write_text(_dumps(clean_notebook(nb)), encoding="utf-8")
    return time.perf_counter() - start


def from_py(script: Path, out: Path) -> None:
    """Build a notebook from a percent-format script (cells start with `# %%` or `# %% [markdown]`)."""
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif body:
            cells.append(nbformat.v4.new_code_cell(body))

    for line in script.read_text(encoding="utf-8").split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"
    out.write_text(_dumps(clean_notebook(nb)), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "clean", "check"):
        p = sub.add_parser(name)
        p.add_argument("notebooks", nargs="+", type=Path)
    p = sub.add_parser("from-py")
    p.add_argument("script", type=Path)
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)

    if args.command == "from-py":
        from_py(args.script, args.out)
        print(f"wrote {args.out}")
        return 0
    dirty = []
    for path in args.notebooks:
        if args.command == "run":
            seconds = run_file(path)
            print(f"ran {path} in {seconds:.1f} s")
        elif not clean_file(path, check_only=args.command == "check"):
            dirty.append(path)
            print(f"{'not clean' if args.command == 'check' else 'cleaned'}: {path}")
    if args.command == "check" and dirty:
        print("Run `make clean-notebooks` and commit the result.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
