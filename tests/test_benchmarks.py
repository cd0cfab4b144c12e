"""The benchmarks run and report what their docstrings promise (not how fast: speed goals live in the JSON).

Each runs in-process on a small slice of MNIST, writing its JSON to a temporary file so the committed
results under benchmarks/results/ are untouched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # whole benchmarks, even on a slice: not for `make test-fast`


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_speed():
    return _load("train_speed")


def test_train_speed_prints_one_json_object_with_the_ratios(train_speed, tmp_path, capsys):
    out = tmp_path / "speed.json"
    rc = train_speed.main(["--device", "cpu", "--model", "mlp", "--n-train", "2048", "--epochs", "2", "--bs", "256",
                           "--time-to-99", "--epochs-99", "1", "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert printed == json.loads(out.read_text())
    assert printed["device"] == "cpu" and printed["settings"]["n_train"] == 2048
    assert set(printed["loops"]) == {"ours", "dataloader", "fastai"}
    for name, loop in printed["loops"].items():
        assert len(loop["epoch_s"]) == 2 and all(t > 0 for t in loop["epoch_s"]), name
        assert 0.5 < loop["test_accuracy"] <= 1, (name, loop["test_accuracy"])  # 2,048 images: far above chance
    steady = printed["steady_epoch_s"]  # the epochs after the first: here the second of two
    assert steady == {name: loop["epoch_s"][1] for name, loop in printed["loops"].items()}
    assert printed["speedup_vs_dataloader"] == pytest.approx(steady["dataloader"] / steady["ours"])
    assert printed["speedup_vs_fastai"] == pytest.approx(steady["fastai"] / steady["ours"])
    t99 = printed["time_to_99"]  # 2,048 images and one epoch cannot reach 99 %: reported as not reached
    assert t99["model"] == "cnn" and len(t99["valid_acc"]) == 1 and t99["epochs"] is None and t99["train_s"] is None


def test_train_speed_refuses_fastai_mixed_precision_on_a_cpu(train_speed, tmp_path):
    with pytest.raises(ValueError, match="CUDA-only.*--skip-fastai"):
        train_speed.main(["--device", "cpu", "--n-train", "512", "--epochs", "1", "--amp", "on",
                          "--out", str(tmp_path / "x.json")])


def test_data_load_benchmark_reports_both_timings(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "src"))
    # main() points MNIST_DIR and HELPERS_DATA_DIR at its own folders while it runs; monkeypatch restores them
    # even if it fails half-way, and the check below shows main() itself leaves the environment as it found it.
    for key in ("MNIST_DIR", "HELPERS_DATA_DIR"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    result = _load("data_load").main()
    assert dict(os.environ) == before, "benchmarks/data_load.py's main() changed the environment"
    assert result["benchmark"] == "data_load"
    assert 0 < result["cached_load_s"] and 0 < result["first_load_s"]
    assert len(result["cached_load_runs_s"]) == 5


def test_slider_latency_times_the_live_graph():
    sys.path.insert(0, str(ROOT / "src"))
    result = _load("slider_latency").graph_latency(repeats=6)
    assert result["n"] == 6 and result["median_ms"] > 0 and result["step_median_ms"] > 0
    assert result["goal"] == {"median_ms": 100.0} and isinstance(result["ok"], bool)
    first, last = result["loss_first_and_after_steps"]
    assert last < first, "three steps of the live graph lower its loss"


def test_slider_latency_times_the_temperature_explorer():
    if not os.environ.get("NAMES_DIR"):
        pytest.skip("set NAMES_DIR to the folder holding names.txt (CI sets it)")
    sys.path.insert(0, str(ROOT / "src"))
    result = _load("slider_latency").temperature_latency(repeats=4, n_epochs=1)
    assert result["n"] == 4 and result["median_ms"] > 0 and result["draw_median_ms"] > 0
    assert result["sample_median_ms"] > 0 and result["goal"] == {"median_ms": 150.0, "p95_ms": 300.0}
    assert isinstance(result["ok"], bool) and result["model_train_s"] > 0
