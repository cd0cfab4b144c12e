"""How long loading MNIST takes: the first time (parse the verified IDX files) and from the `.pt` cache.

Prints one JSON object. Both timings load what a notebook loads, the train and the test split, in a fresh
in-memory state; the cache goes to the `mnist/` folder of a temporary data root (HELPERS_DATA_DIR), so the
repository's data folder is untouched. The raw files come from MNIST_DIR (or ../shared/data/mnist, or the data
folder when they are already there). The environment is restored when `main` returns.

    .venv/bin/python benchmarks/data_load.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHED_LOAD_GOAL_S = 0.2
REPEATS = 5


def _raw_files_dir(names) -> Path:
    from helpers.data import default_data_dir

    candidates = [os.environ.get("MNIST_DIR"), ROOT.parent / "shared" / "data" / "mnist", default_data_dir("mnist")]
    for folder in candidates:
        if folder and all((Path(folder) / n).is_file() for n in names):
            return Path(folder).expanduser().resolve()
    sys.exit(
        "benchmarks/data_load.py needs the four MNIST files: export MNIST_DIR=/path/to/mnist "
        f"(looked in {', '.join(str(c) for c in candidates if c)})."
    )


def _load_both(data) -> float:
    data.clear_memory_cache()  # a fresh in-memory state, as in a new kernel
    start = time.perf_counter()
    data.load_mnist("train")
    data.load_mnist("test")
    return time.perf_counter() - start


def main() -> dict:
    import torch

    import helpers.data as data

    raw = _raw_files_dir(data.MNIST_FILES)
    saved = {k: os.environ.get(k) for k in ("MNIST_DIR", "HELPERS_DATA_DIR")}
    try:
        with tempfile.TemporaryDirectory(prefix="p2g-data-bench-") as tmp:
            os.environ["MNIST_DIR"] = str(raw)
            os.environ["HELPERS_DATA_DIR"] = tmp  # an empty data root: the first load finds no .pt cache
            mnist_dir = data.default_data_dir("mnist")
            assert mnist_dir == Path(tmp) / "mnist"
            first = _load_both(data)
            caches = sorted(p.name for p in mnist_dir.glob("*.pt"))
            assert len(caches) == 2, f"expected a .pt cache per split, found {caches}"
            cached = [_load_both(data) for _ in range(REPEATS)]
            data.clear_memory_cache()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    median = statistics.median(cached)
    return {
        "benchmark": "data_load",
        "what": "load_mnist('train') + load_mnist('test') in a fresh in-memory state",
        "mnist_dir": str(raw),
        "first_load_s": round(first, 4),
        "cached_load_s": round(median, 4),
        "cached_load_runs_s": [round(t, 4) for t in cached],
        "cached_load_goal_s": CACHED_LOAD_GOAL_S,
        "cached_load_ok": median <= CACHED_LOAD_GOAL_S,
        "speedup": round(first / median, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
