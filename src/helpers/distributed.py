"""Data-parallel training with `torch.distributed`: the script the `distributed` notebook launches with `torchrun`.

Layer 4 of the helpers package: may import every lower layer (`env`, `files`, `checkpoint`, `validate`, `data`, `models`,
`train`).
Introduced in the `distributed` notebook ("Beyond one device").

One script, three ways to run it:

    python -m helpers.distributed --out-dir runs/single --bs 64                        # one process
    torchrun --nproc-per-node 2 -m helpers.distributed --out-dir runs/ddp --bs 32      # two processes, one machine
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host:29500 \\
        -m helpers.distributed --out-dir runs/big --bs 32                              # two machines of 8 GPUs

Under `torchrun` every process (a *rank*) builds the same model from the same seed, takes its own shard of
each global batch (`epoch_shard`: rank r gets positions r, r + W, r + 2W, … of the epoch's shuffled order,
the sharding of `torch.utils.data.DistributedSampler(shuffle=True, drop_last=True)`), and wraps the model in
`DistributedDataParallel`, which averages the gradients of all ranks with an all-reduce during `backward()`.
Every rank then takes the same optimizer step, so the weights stay identical without ever being sent.
Only rank 0 writes: the checkpoint (`checkpoint.pt`, after every epoch) and the log (`log.json`, the loss of
every step averaged over the ranks, i.e. the loss of the whole global batch). Backend: NCCL on GPUs, Gloo on
the CPU. `launch` starts the script with `torchrun` from Python (the `distributed` notebook and the tests use
it). The training function every rank runs is `train_ddp`; it validates on the images `mnist_splits` holds out
of MNIST's training set.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from .checkpoint import save_checkpoint
from .env import get_device, set_seed
from .files import atomic_write
from .models import simple_mlp
from .train import DeviceData, training_parts
from .validate import one_of, positive_int, positive_number

__all__ = ["epoch_shard", "free_port", "torchrun_command", "launch", "read_log", "max_loss_difference",
           "draw_data_parallel", "train_ddp", "main"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def epoch_shard(n: int, epoch: int, seed: int, rank: int, world_size: int) -> torch.Tensor:
    """The example indices rank `rank` of `world_size` trains on in `epoch`.

    All ranks draw the same permutation of `range(n)` (a generator seeded with `seed + epoch`, so no rank has to
    tell the others the order), cut it to a multiple of `world_size`, and rank r keeps positions r, r + W,
    r + 2W, … So consecutive blocks of `bs` of a rank's shard, taken together over the ranks, are exactly the
    consecutive blocks of `W·bs` of the permutation: the global batches one process with batch size `W·bs`
    would see. Same indices as `DistributedSampler(shuffle=True, seed=seed, drop_last=True)` after
    `set_epoch(epoch)`. Introduced in the `distributed` notebook.
    """
    n = positive_int(n, "n (the number of examples)", example="len(train_x)")
    world_size = positive_int(world_size, "world_size (the number of ranks)", example="2, 8")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be one of 0 … {world_size - 1} (world_size {world_size}), got {rank!r}.")
    if n < world_size:
        raise ValueError(f"{n} examples cannot be shared among {world_size} ranks: every rank needs at least one.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return order[: n - n % world_size][rank::world_size]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it), for the rendezvous of a local run.

    Introduced in the `distributed` notebook.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def torchrun_command(nproc_per_node: int, script_args: list[str], port: int | None = None,
                     host: str = "127.0.0.1") -> list[str]:
    """The command line that starts `nproc_per_node` copies of `python -m helpers.distributed` on this machine.

    It is `torchrun` (run as `python -m torch.distributed.run`, so it is the torch of this Python) with a static
    rendezvous at `host:port` (a free port by default). Introduced in the `distributed` notebook.
    """
    nproc_per_node = positive_int(nproc_per_node, "nproc_per_node", example="2, 8 (one per GPU)")
    if isinstance(script_args, str):
        raise TypeError("script_args must be a list of strings, e.g. ['--out-dir', 'runs/ddp', '--bs', '32'].")
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc_per_node),
            "--master-addr", host, "--master-port", str(port or free_port(host)),
            "-m", "helpers.distributed", *map(str, script_args)]


def launch(script_args: list[str], nproc_per_node: int | None = 2, timeout: float = 300, threads: int = 1) -> str:
    """Run the training script and return its output; raise with the output's tail if it fails or hangs.

    `nproc_per_node=None` runs one plain process (`python -m helpers.distributed`), no `torchrun`, no
    process group. Each process gets `OMP_NUM_THREADS=threads`, so two ranks do not fight over the cores.
    On timeout the whole process group (torchrun and its workers) is killed. Introduced in the `distributed` notebook.
    """
    cmd = ([sys.executable, "-m", "helpers.distributed", *map(str, script_args)] if nproc_per_node is None
           else torchrun_command(nproc_per_node, script_args))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and every worker it started
        out, _ = proc.communicate()
        raise TimeoutError(f"{' '.join(cmd[1:])} did not finish in {timeout:g} s and was stopped. Its last output:\n"
                           f"{out[-3000:]}\nA rank waiting forever usually means another rank died or never "
                           "started: look for its error above.") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed (exit code {proc.returncode}). Its last output:\n{out[-3000:]}")
    return out


def read_log(out_dir) -> dict:
    """The `log.json` rank 0 wrote into `out_dir`. Introduced in the `distributed` notebook."""
    path = Path(out_dir) / "log.json"
    if not path.is_file():
        raise FileNotFoundError(f"No log at {path}: run the script with --out-dir {out_dir} first (see launch).")
    return json.loads(path.read_text(encoding="utf-8"))



def max_loss_difference(out_dir_a, out_dir_b, dtype: str | None = None) -> float:
    """The largest per-step difference |loss_a − loss_b| between the logs of two runs, computed in float64.

    The two runs must have taken the same number of steps (same `--n-train`, `--epochs` and global batch). With
    `dtype` ("float32" or "float64"), both runs must have trained in that dtype. Raises a ValueError that says
    which run to launch again otherwise. The `distributed` notebook's float64 exercise checks its answer with it.
    Introduced in the `distributed` notebook.
    """
    if dtype is not None:
        one_of(dtype, "dtype", sorted(DTYPES), advice="Or None: any dtype.")
    logs = [(out_dir, read_log(out_dir)) for out_dir in (out_dir_a, out_dir_b)]
    for out_dir, log in logs:
        if dtype is not None and log["config"]["dtype"] != dtype:
            raise ValueError(f"The run in {out_dir} trained in {log['config']['dtype']}, not {dtype}: launch it "
                             f"again with '--dtype', '{dtype}'.")
    (dir_a, log_a), (dir_b, log_b) = logs
    if len(log_a["loss"]) != len(log_b["loss"]):
        raise ValueError(f"The runs in {dir_a} and {dir_b} took {len(log_a['loss'])} and {len(log_b['loss'])} steps: "
                         "compare runs with the same --n-train, --epochs and global batch (bs × processes).")
    a = torch.tensor(log_a["loss"], dtype=torch.float64)
    b = torch.tensor(log_b["loss"], dtype=torch.float64)
    return (a - b).abs().max().item()


def draw_data_parallel():
    """The diagram of one data-parallel step with two processes, as a matplotlib Figure.

    Each rank (one column) reads its own shard of the batch, runs forward + backward on a full copy of the model
    and gets its local gradient g0 or g1; the all-reduce in the middle averages them into ḡ; every rank takes
    the same optimizer step with ḡ. A note in the middle says what never travels (the data, the weights).
    Introduced in the `distributed` notebook.
    """
    import matplotlib.pyplot as plt  # here, not at the top: the training script's processes never draw
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6.2)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="black", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(x0, y0, x1, y1, text="", color="black"):
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6))
        if text:
            ax.text((x0 + x1) / 2 + 0.08, (y0 + y1) / 2, text, fontsize=9, color=color, va="center")

    for r, x in enumerate([0.3, 6.7]):
        ax.text(x + 1.5, 5.95, f"process rank {r} (GPU {r})", ha="center", fontsize=10, weight="bold")
        box(x, 4.8, 3, 0.8, f"its own shard of the batch\n(positions {r}, {r + 2}, {r + 4}, …, read locally)", "#dbe9f6")
        box(x, 3.5, 3, 0.8, "forward + backward\non a full copy of the model", "#e8f5e1")
        box(x, 2.2, 3, 0.8, f"local gradient g{r}", "#fde9d9")
        box(x, 0.3, 3, 0.8, "optimizer step with ḡ\n(the same step on every rank)", "#e8f5e1")
        arrow(x + 1.5, 4.8, x + 1.5, 4.35)
        arrow(x + 1.5, 3.5, x + 1.5, 3.05)
    box(3.9, 1.25, 2.2, 0.9, "all-reduce\nḡ = (g0 + g1) / 2", "#f9d6d5")
    arrow(3.35, 2.55, 4.6, 2.15, "g0", color="C3")
    arrow(6.65, 2.55, 5.4, 2.15, "g1", color="C3")
    arrow(4.6, 1.25, 3.35, 0.75, "ḡ", color="C3")
    arrow(5.4, 1.25, 6.65, 0.75, "ḡ", color="C3")
    ax.text(5, 3.9, "never sent between processes:\nthe data (each reads its shard)\nthe weights (same start,\nsame steps)",
            ha="center", fontsize=8.5, style="italic", color="0.35")
    ax.set_title("Data parallelism: only gradients travel, in one all-reduce per step")
    return fig

def _setup(device_name: str | None, backend: str | None):
    """Join the process group when started by torchrun; otherwise run as the only rank."""
    if "WORLD_SIZE" not in os.environ:  # a plain `python -m helpers.distributed`
        return 0, 1, get_device(device_name), False
    device = get_device(device_name)
    if device.type == "cuda":  # one GPU per process: rank 3 on a machine uses cuda:3
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    dist.init_process_group(backend)  # reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE set by torchrun
    return dist.get_rank(), dist.get_world_size(), device, True


def train_ddp(out_dir, bs: int = 32, n_epochs: int = 1, lr: float = 3e-3, n_train: int = 12000,
              n_valid: int = 10_000, hidden: int = 128, seed: int = 42, dtype: str = "float32",
              device: str | None = None, backend: str | None = None) -> dict | None:
    """Train an MLP on MNIST as one rank of a data-parallel run (or alone); rank 0 writes and returns the log.

    `bs` is the batch size *per process*: the global batch is `bs × world_size`. The data is
    `DeviceData.mnist(n_train=n_train, n_valid=n_valid)`: the first `n_train` training images after `n_valid` are
    held out of MNIST's training set; the log's `valid_acc` is the accuracy on those held-out images. Other ranks
    return None. Introduced in the `distributed` notebook.
    """
    bs = positive_int(bs, "bs (the batch size per process)", example="32, 64")
    n_epochs = positive_int(n_epochs, "n_epochs", example="1, 2")
    positive_number(lr, "lr", advice="Try 3e-3.")
    one_of(dtype, "dtype", sorted(DTYPES))
    rank, world_size, dev, distributed = _setup(device, backend)
    try:
        out_dir = Path(out_dir)
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
        set_seed(seed)  # every rank builds the same initial weights (DDP also copies rank 0's at the start)
        data = DeviceData.mnist(dev, n_train=n_train, n_valid=n_valid)
        if data.n_train < world_size * bs:
            raise ValueError(f"{data.n_train} training images are fewer than one global batch of "
                             f"{world_size} × {bs}: lower bs or raise n_train.")
        float_dtype = DTYPES[dtype]
        model = simple_mlp(hidden).to(device=dev, dtype=float_dtype)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
            if distributed else model
        steps_per_epoch = (data.n_train // world_size) // bs
        # The training step of the `gpu_loop` notebook (helpers.train.fit's), unchanged, without autocast. Under DDP
        # its backward() all-reduces (averages) the gradients of the ranks, bucket by bucket.
        parts = training_parts(net, dev, n_epochs, steps_per_epoch, lr, wd=0.01, amp_dtype=None)
        opt, sched, step = parts.opt, parts.sched, parts.step
        config = {"bs_per_process": bs, "world_size": world_size, "global_bs": bs * world_size, "n_epochs": n_epochs,
                  "lr": lr, "n_train": data.n_train, "hidden": hidden, "seed": seed, "dtype": dtype,
                  "device": dev.type, "backend": dist.get_backend() if distributed else None}
        losses = []
        t0 = time.perf_counter()
        for epoch in range(n_epochs):
            shard = epoch_shard(data.n_train, epoch, seed, rank, world_size).to(dev)
            net.train()
            for k in range(steps_per_epoch):
                idx = shard[k * bs:(k + 1) * bs]
                batch_loss = step(data.inputs(data.train_x[idx]).to(float_dtype), data.train_y[idx])
                if distributed:  # the loss of the whole global batch, for the log (one tiny extra all-reduce)
                    dist.all_reduce(batch_loss, op=dist.ReduceOp.SUM)
                    batch_loss /= world_size
                losses.append(batch_loss)
            if rank == 0:  # only one process writes, or the files would be written W times at once
                save_checkpoint(out_dir / "checkpoint.pt", model=model.state_dict(), opt=opt.state_dict(),
                                sched=sched.state_dict(), epoch=epoch + 1, config=config)
        train_s = time.perf_counter() - t0
        log = None
        if rank == 0:
            model.eval()
            with torch.no_grad():
                logits = model(data.inputs(data.valid_x).to(float_dtype))
            valid_acc = (logits.argmax(1) == data.valid_y).double().mean().item()
            log = {"config": config, "loss": torch.stack(losses).double().cpu().tolist(),
                   "valid_acc": valid_acc, "train_s": train_s}
            atomic_write(out_dir / "log.json", lambda f: f.write(json.dumps(log).encode("utf-8")))
            print(json.dumps({"world_size": world_size, "global_bs": bs * world_size, "steps": len(losses),
                              "final_loss": round(log["loss"][-1], 4), "valid_acc": round(valid_acc, 4)}))
        if distributed:
            dist.barrier()  # nobody leaves before rank 0 has written
        return log
    finally:
        if distributed:
            dist.destroy_process_group()


def main(argv=None) -> int:
    """`python -m helpers.distributed` (one process) or `torchrun … -m helpers.distributed` (several).

    Introduced in the `distributed` notebook.
    """
    p = argparse.ArgumentParser(prog="python -m helpers.distributed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", required=True, help="folder for checkpoint.pt and log.json (rank 0 writes them)")
    p.add_argument("--bs", type=int, default=32, help="batch size per process (global batch = bs × processes)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--n-train", type=int, default=12000,
                   help="train on the first N training images (after the validation images are held out)")
    p.add_argument("--n-valid", type=int, default=10_000,
                   help="hold out N of MNIST's 60,000 training images for validation (default 10,000)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", default=None, help="cpu or cuda (default: get_device(); each rank takes cuda:LOCAL_RANK)")
    p.add_argument("--backend", default=None, help="gloo or nccl (default: nccl on GPUs, gloo on the CPU)")
    a = p.parse_args(argv)
    train_ddp(a.out_dir, bs=a.bs, n_epochs=a.epochs, lr=a.lr, n_train=a.n_train, n_valid=a.n_valid, hidden=a.hidden,
              seed=a.seed, dtype=a.dtype, device=a.device, backend=a.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
