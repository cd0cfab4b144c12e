"""Timing plumbing: the fastest of a few runs, the feeding of batches, a training step in each setting.

Layer 3 of the helpers package: imports `env` (for `sync` and `seconds_per_call`) and `validate`. Not a lesson: the `gpu_loop` and
`transfer` notebooks call these instead of showing timer loops (the `convolutions` notebook's small timer,
`helpers.env.seconds_per_call`, is the one built in view).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .env import seconds_per_call, sync
from .validate import positive_int

__all__ = ["best_seconds", "feeding_seconds", "step_milliseconds"]


def best_seconds(fn, repeats: int = 3, device="cpu", threads: int | None = None) -> float:
    """Seconds that `fn()` takes, the fastest of `repeats` runs: a busy machine only ever slows a run down, so the
    least disturbed run is the best estimate. The GPU's queue is synchronised before and after each run, and
    `threads` (when given) sets torch's thread count for the timing only. Timing plumbing, not a lesson: the
    `gpu_loop` notebook (and `transfer`) call it instead of showing a timer loop. The timer itself is
    `helpers.env.seconds_per_call`, the convolutions notebook's; each timed call ends with its own `sync`, so the
    queue is also empty when the next one starts.
    """
    repeats = positive_int(repeats, "repeats", example="3")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(positive_int(threads, "threads", example="1"))
    try:
        sync(device)

        def run_and_wait():
            fn()
            sync(device)

        return seconds_per_call(run_and_wait, repeat=repeats, warmup=0)
    finally:
        torch.set_num_threads(before)


def feeding_seconds(make_batches, n_batches: int, device, repeats: int = 3, threads: int | None = 1) -> float:
    """Seconds per batch to take `n_batches` (x, y) pairs from a fresh `make_batches()` iterator and have them on
    `device`: the feeding alone, no model. Best of `repeats`, on one thread by default (timings with several
    threads swing wildly when the machine is busy). Timing plumbing of the `gpu_loop` notebook.
    """
    n_batches = positive_int(n_batches, "n_batches", example="300")
    device = torch.device(device)

    def feed():
        for _, (xb, yb) in zip(range(n_batches), make_batches()):
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)

    return best_seconds(feed, repeats, device, threads) / n_batches


def step_milliseconds(make_model, xb: torch.Tensor, yb: torch.Tensor, device, *, channels_last: bool = False,
                      amp_dtype: torch.dtype | None = None, n: int = 10, repeats: int = 3) -> float:
    """Milliseconds per training step (forward, cross-entropy, backward, AdamW) of `make_model()` on one batch,
    stepped over and over: `channels_last` stores model and batch in that memory order, `amp_dtype` runs the step
    under autocast (None: float32). Three steps warm up, then the best of `repeats` runs of `n` steps counts.
    Timing plumbing of the `gpu_loop` notebook.
    """
    device = torch.device(device)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = make_model().to(device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = xb.to(device).contiguous(memory_format=fmt), yb.to(device)

    def steps(k):
        for _ in range(k):
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    steps(3)
    n = positive_int(n, "n", example="10")
    return best_seconds(lambda: steps(n), repeats, device) / n * 1e3
