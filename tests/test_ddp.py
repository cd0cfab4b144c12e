"""helpers.distributed: the DDP script of the `distributed` notebook, run for real with torchrun (2 processes, Gloo,
CPU), and in-process as a single rank."""

import json

import pytest
import torch
from torch.utils.data import DistributedSampler

import helpers.distributed as distributed
from helpers.checkpoint import load_checkpoint
from helpers.data import MNIST_FILES, DataNotFoundError, find_mnist_file, mnist_splits
from helpers.distributed import epoch_shard, free_port, launch, read_log, torchrun_command, train_ddp


@pytest.mark.parametrize("n, world_size", [(12, 2), (10, 3), (10, 4), (7, 7), (100, 8)])
@pytest.mark.parametrize("epoch", [0, 3])
def test_epoch_shard_matches_torchs_distributed_sampler(n, world_size, epoch):
    shards = [epoch_shard(n, epoch, seed=5, rank=r, world_size=world_size) for r in range(world_size)]
    for rank, shard in enumerate(shards):
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=5, drop_last=True)
        sampler.set_epoch(epoch)
        assert shard.tolist() == list(sampler)
    assert len({len(s) for s in shards}) == 1, "every rank gets the same number of examples"
    together = torch.cat(shards)
    assert len(together.unique()) == len(together) == n - n % world_size, "no example twice, at most W - 1 left out"


def test_rank_batches_together_are_the_single_process_batches():
    n, world_size, bs = 50, 2, 4
    order = epoch_shard(n, 1, seed=0, rank=0, world_size=1)
    shards = [epoch_shard(n, 1, seed=0, rank=r, world_size=world_size) for r in range(world_size)]
    for k in range(n // (world_size * bs)):
        union = torch.cat([s[k * bs:(k + 1) * bs] for s in shards])
        assert sorted(union.tolist()) == sorted(order[k * world_size * bs:(k + 1) * world_size * bs].tolist())


def test_epochs_get_different_orders():
    assert not torch.equal(epoch_shard(100, 0, 0, 0, 2), epoch_shard(100, 1, 0, 0, 2))


@pytest.mark.parametrize("kwargs, words", [
    (dict(n=10, epoch=0, seed=0, rank=2, world_size=2), "rank must be one of 0 … 1"),
    (dict(n=10, epoch=0, seed=0, rank=0, world_size=0), "world_size"),
    (dict(n=1, epoch=0, seed=0, rank=0, world_size=2), "cannot be shared among 2 ranks"),
])
def test_epoch_shard_rejects_bad_input(kwargs, words):
    with pytest.raises(ValueError, match=words):
        epoch_shard(**kwargs)


def test_torchrun_command_uses_localhost_and_the_module_flag():
    cmd = torchrun_command(2, ["--bs", 8], port=free_port())
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2" and cmd[cmd.index("--master-addr") + 1] == "127.0.0.1"
    assert cmd[-4:] == ["-m", "helpers.distributed", "--bs", "8"]
    with pytest.raises(ValueError, match="nproc_per_node"):
        torchrun_command(0, [])


@pytest.mark.slow
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    args = ["--device", "cpu", "--n-train", "3000", "--n-valid", "500", "--epochs", "1", "--dtype", "float64"]
    out2 = launch([*args, "--bs", "16", "--out-dir", str(tmp_path / "two")], nproc_per_node=2, timeout=120)
    launch([*args, "--bs", "32", "--out-dir", str(tmp_path / "one")], nproc_per_node=None, timeout=120)
    assert out2.count('"world_size": 2') == 1, f"only rank 0 prints its summary:\n{out2}"
    two, one = read_log(tmp_path / "two"), read_log(tmp_path / "one")
    assert two["config"]["world_size"] == 2 and one["config"]["world_size"] == 1
    assert two["config"]["global_bs"] == one["config"]["global_bs"] == 32
    assert two["config"]["backend"] == "gloo"
    assert len(two["loss"]) == len(one["loss"]) == 3000 // 32
    diff = (torch.tensor(two["loss"], dtype=torch.float64) - torch.tensor(one["loss"], dtype=torch.float64)).abs()
    assert diff.max() < 1e-12, f"float64 losses differ by up to {diff.max():.2e}"
    assert one["loss"][-1] < one["loss"][0] - 0.5, "the run learned something"
    assert abs(two["valid_acc"] - one["valid_acc"]) < 1e-9
    # only rank 0 wrote: one checkpoint and one log per run, no temporary files left
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["checkpoint.pt", "log.json"]
    ckpt = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and not any(k.startswith("module.") for k in ckpt["model"])
    one_ckpt = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    for k, v in ckpt["model"].items():
        torch.testing.assert_close(v, one_ckpt["model"][k], rtol=0, atol=1e-12)


@pytest.mark.slow
def test_a_failing_rank_is_reported_not_hung(tmp_path):
    with pytest.raises(RuntimeError, match="failed"):
        launch(["--device", "cpu", "--n-train", "10", "--bs", "16", "--out-dir", str(tmp_path)], nproc_per_node=2,
               timeout=60)


def test_train_ddp_alone_trains_on_the_training_part_and_validates_on_the_held_out_images(tmp_path, monkeypatch,
                                                                                         capsys):
    try:
        for name in MNIST_FILES:
            find_mnist_file(name, download=False)
    except DataNotFoundError:
        pytest.skip("the MNIST files are not available: export MNIST_DIR=/path/to/mnist (CI sets it)")
    assert not hasattr(distributed, "train"), "the function is train_ddp: `train` is the module helpers.train"
    monkeypatch.delenv("WORLD_SIZE", raising=False)  # one plain process, no process group
    log = train_ddp(tmp_path, bs=64, n_epochs=1, n_train=1024, n_valid=3000, hidden=32, device="cpu")
    assert log == read_log(tmp_path) and log["config"]["n_train"] == 1024 and log["config"]["world_size"] == 1
    assert len(log["loss"]) == 1024 // 64 and 0.5 < log["valid_acc"] <= 1
    assert json.loads(capsys.readouterr().out)["valid_acc"] == round(log["valid_acc"], 4)
    # the reported accuracy is on the 3,000 validation images: recompute it from the saved weights
    model = distributed.simple_mlp(32)
    model.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt")["model"])
    s = mnist_splits(n_valid=3000)
    data = distributed.DeviceData(s.train_x[:1024], s.train_y[:1024], s.valid_x, s.valid_y, "cpu")
    with torch.no_grad():
        acc = (model.eval()(data.inputs(data.valid_x)).argmax(1) == data.valid_y).double().mean().item()
    assert acc == pytest.approx(log["valid_acc"], abs=1e-12)


@pytest.mark.parametrize("kwargs, match", [(dict(bs=0), "bs"), (dict(n_epochs=True), "n_epochs"),
                                           (dict(dtype="float16"), "dtype")])
def test_train_ddp_rejects_bad_settings_before_any_work(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_ddp(tmp_path, **kwargs)


def _write_log(out_dir, losses, dtype="float64"):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "log.json").write_text(json.dumps({"config": {"dtype": dtype}, "loss": losses}), encoding="utf-8")
    return out_dir


def test_max_loss_difference_is_the_largest_per_step_gap_in_float64(tmp_path):
    a = _write_log(tmp_path / "a", [1.0, 0.5, 0.25 + 2e-16])
    b = _write_log(tmp_path / "b", [1.0, 0.5 + 3e-16, 0.25])
    expected = (torch.tensor([1.0, 0.5, 0.25 + 2e-16], dtype=torch.float64)
                - torch.tensor([1.0, 0.5 + 3e-16, 0.25], dtype=torch.float64)).abs().max().item()
    assert expected > 0, "float64 keeps differences float32 would round away"
    assert distributed.max_loss_difference(a, b) == expected == distributed.max_loss_difference(b, a, dtype="float64")
    assert distributed.max_loss_difference(a, a) == 0.0


def test_max_loss_difference_says_which_run_to_launch_again(tmp_path):
    a = _write_log(tmp_path / "a", [1.0, 0.5])
    with pytest.raises(ValueError, match="trained in float32, not float64.*--dtype"):
        distributed.max_loss_difference(a, _write_log(tmp_path / "f32", [1.0, 0.5], dtype="float32"), dtype="float64")
    with pytest.raises(ValueError, match="2 and 3 steps"):
        distributed.max_loss_difference(a, _write_log(tmp_path / "long", [1.0, 0.5, 0.2]))
    with pytest.raises(FileNotFoundError, match="--out-dir"):
        distributed.max_loss_difference(a, tmp_path / "never_run")
    with pytest.raises(ValueError, match="dtype"):
        distributed.max_loss_difference(a, a, dtype="float16")


def test_draw_data_parallel_shows_two_ranks_and_the_all_reduce():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = distributed.draw_data_parallel()
    try:
        assert len(fig.axes) == 1 and not fig.axes[0].axison
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "process rank 0 (GPU 0)" in texts and "process rank 1 (GPU 1)" in texts
        assert any(t.startswith("all-reduce") for t in texts) and "only gradients travel" in fig.axes[0].get_title()
        assert len(fig.axes[0].patches) == 2 * 4 + 1  # four boxes per rank, one all-reduce
    finally:
        plt.close(fig)
