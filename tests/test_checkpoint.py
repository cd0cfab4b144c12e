"""helpers.checkpoint: atomic saves, safe loads, random states; and THE RESUME TEST (kill -9, restart, same weights)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.checkpoint import CheckpointError, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state

ROOT = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path, name: str):
    return sorted(p.name for p in folder.iterdir() if p.name != name)


def test_round_trip_of_a_training_state(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "run.pt", model=model.state_dict(), opt=opt.state_dict(), epoch=3,
                           history={"loss": [0.5, 0.25]})
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["history"] == {"loss": [0.5, 0.25]}
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=1e-2)
    fresh.load_state_dict(state["opt"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert _leftovers(tmp_path, "run.pt") == []


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "run.pt", epoch=1)
    before = path.read_bytes()
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")  # some bytes reach the disk, then the "crash"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, epoch=2)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert _leftovers(tmp_path, "run.pt") == []


def test_unpicklable_state_fails_cleanly(tmp_path):
    with pytest.raises(Exception):
        save_checkpoint(tmp_path / "run.pt", f=lambda x: x)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume=False"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "run.pt", w=torch.randn(100, 100))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="Delete it"):
        load_checkpoint(path)


class NotAllowed:
    pass


def test_unsafe_objects_are_refused(tmp_path):
    path = tmp_path / "unsafe.pt"
    torch.save({"x": NotAllowed()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def _draws(g):
    return (random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3), torch.randperm(10, generator=g))


def test_rng_states_round_trip_through_a_safe_file(tmp_path):
    g = torch.Generator().manual_seed(7)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leave a cached gaussian in NumPy's state
    save_checkpoint(tmp_path / "rng.pt", rng=get_rng_state(g))
    first = _draws(g)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"], g)
    second = _draws(g)
    assert first[:3] == second[:3]
    assert torch.equal(first[3], second[3]) and torch.equal(first[4], second[4])
    third = _draws(g)
    assert not torch.equal(second[4], third[4]) or not torch.equal(second[3], third[3])  # the states moved on


def test_set_rng_state_rejects_other_dicts():
    with pytest.raises(KeyError, match="get_rng_state"):
        set_rng_state({"torch": torch.get_rng_state()})


# ---------------------------------------------------------------------------------------------------------
# The resume test: a real training process, killed with SIGKILL after its first checkpoint, then restarted.
# ---------------------------------------------------------------------------------------------------------
CONFIG = ["--model", "mlp", "--epochs", "4", "--n-train", "8000", "--n-valid", "1000", "--bs", "128",
          "--seed", "123", "--device", "cpu"]


def _train_cmd(checkpoint: Path, out: Path):
    return [sys.executable, "-m", "helpers.train", *CONFIG, "--checkpoint", str(checkpoint), "--out", str(out)]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # the same thread count in every run: the same float sums
    return env


@pytest.mark.slow
def test_training_killed_mid_run_resumes_to_identical_weights(tmp_path):
    full_out, full_ckpt = tmp_path / "full.pt", tmp_path / "full_ckpt.pt"
    out, ckpt = tmp_path / "resumed.pt", tmp_path / "ckpt.pt"
    uninterrupted = subprocess.Popen(_train_cmd(full_ckpt, full_out), env=_env(), cwd=tmp_path,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = subprocess.Popen(_train_cmd(ckpt, out), env=_env(), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ckpt.exists():  # wait for the first checkpoint (epoch 1), then pull the plug at once
        assert victim.poll() is None, f"the training process ended early: {victim.communicate()[1].decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared within 120 s"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not out.exists(), "the process finished before it was killed: the test proved nothing"
    killed_at = load_checkpoint(ckpt)["epoch"]
    assert 1 <= killed_at < 4, f"killed after epoch {killed_at} of 4"

    resumed = subprocess.run(_train_cmd(ckpt, out), env=_env(), cwd=tmp_path, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.communicate()[1].decode()[-2000:]

    a, b = load_checkpoint(full_out), load_checkpoint(out)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after resuming"
    for k in ("epoch", "train_loss", "valid_loss", "valid_acc", "batch_loss", "lr"):
        assert a["history"][k] == b["history"][k], f"history {k!r} differs after resuming"
    assert a["history"]["epoch"] == [1, 2, 3, 4]
    assert a["history"]["valid_acc"][-1] > 0.9  # it really trained
