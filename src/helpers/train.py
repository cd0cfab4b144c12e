"""The training loop the notebooks build, in its finished form: one job, training.

Layer 3 of the helpers package: may import `env`, `plots`, `checkpoint`, `validate`, `data`, `results` and its
layer's `models`, `precision` and `metrics`, never `widgets`. `batches` is built by hand in the `three_vs_seven`
notebook, the full GPU loop in the `gpu_loop` notebook: the data on the device (`DeviceData`), the training step
(`training_parts`), the loop (`fit`, with `LossCurve` drawing it live), `evaluate`, and `python -m helpers.train`
(`main`), the same loop from the command line.

The loop's shared training step is public, for the scripts and benchmarks built on it: `training_parts` (model,
optimizer, schedule, gradient scaler and the one-batch `step`).

The notebooks, benchmarks and tests also import from here the names the loop is used with, whose homes are now
their own modules: the models (`helpers.models`), the number format (`helpers.precision`), `accuracy` and
`binary_accuracy` (`helpers.metrics`) and `sync` (`helpers.env`). They are the same objects.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .env import get_device, sync
from .metrics import accuracy, binary_accuracy
from .models import fast_cnn, simple_cnn, simple_mlp
from .precision import amp_dtype_for, amp_dtype_from_setting, autocast_for, cpu_has_native_bf16
from .validate import number_in, positive_int, positive_number

__all__ = ["batches"]
# Imported here by notebooks, benchmarks and tests since before the split (their homes are named above).
__all__ += ["binary_accuracy", "accuracy", "simple_cnn", "simple_mlp", "fast_cnn", "cpu_has_native_bf16",
            "amp_dtype_for", "amp_dtype_from_setting", "autocast_for", "sync"]


def batches(n: int, bs: int, shuffle: bool = True, generator: torch.Generator | None = None,
            device=None, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Yield index tensors that cover `range(n)` in mini-batches of `bs` (the last one may be smaller).

    With `shuffle=True` the order is a fresh random permutation each call (pass a seeded `generator` for a
    repeatable order). Indexing tensors that already sit in memory with these saves the per-example Python work
    of a `DataLoader` over a `TensorDataset` (the `gpu_loop` notebook times the feeding of the two;
    benchmarks/train_speed.py times whole epochs, with its figures in benchmarks/results/).
    Introduced in the `three_vs_seven` notebook (mini-batches and shuffling).
    """
    n = positive_int(n, "n (the number of examples batches covers)", example="len(train_x)")
    bs = positive_int(bs, "batch size bs", example="64, 256")
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device if generator is not None else "cpu")
    else:
        order = torch.arange(n)
    if device is not None:
        order = order.to(device)
    stop = n - n % bs if drop_last and n >= bs else n
    for start in range(0, stop, bs):
        yield order[start:start + bs]


# ---------------------------------------------------------------------------------------------------------
# The full GPU training loop of the `gpu_loop` notebook.
# ---------------------------------------------------------------------------------------------------------
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # mean and standard deviation of MNIST's training pixels (in [0, 1])

__all__ += [
    "MNIST_MEAN", "MNIST_STD", "DeviceData", "FAST_RECIPE", "fast_settings", "fast_model",
    "TrainingParts", "training_parts", "evaluate", "LossCurve", "fit", "main",
]
SPLITS = ("valid", "test")


def _check_images(name, x):
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 3:
        raise ValueError(
            f"DeviceData wants {name} as uint8 images [N, H, W] (as load_mnist returns them), got "
            + (f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__)
            + ". Keep the raw bytes: the conversion to float happens per batch."
        )


def _check_labels(name, x, y):
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != (len(x),):
        raise ValueError(f"DeviceData wants {name}_y as int64 class indices [{len(x)}], got "
                         + (f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__) + ".")


class DeviceData:
    """Images held on the device as uint8, turned into normalised float batches only when a batch is drawn.

    Three sets: `train_x`/`train_y` (what `fit` learns from), `valid_x`/`valid_y` (what `fit` reports after each
    epoch and every choice is made on), and, optionally, `test_x`/`test_y` (scored once, at the end, with
    `evaluate(model, data, "test")`; None when not given). Images are uint8 `[N, 28, 28]` (a quarter of the
    memory of float32, so the whole training set fits on any GPU), labels int64 class indices. `inputs(x)`
    converts a uint8 batch to float `[B, 1, 28, 28]`: divide by 255, subtract the mean, divide by the standard
    deviation. `DeviceData.mnist(device)` holds `mnist_splits()`: 50,000 training images, 10,000 validation
    images held out from MNIST's training set, MNIST's 10,000 test images. Introduced in the `gpu_loop` notebook.
    """

    def __init__(self, train_x, train_y, valid_x, valid_y, device=None, mean: float = MNIST_MEAN, std: float = MNIST_STD,
                 *, test_x=None, test_y=None):
        if (test_x is None) != (test_y is None):
            raise ValueError("DeviceData wants both test_x and test_y (the test images and their labels), or neither.")
        sets = [("train", train_x, train_y), ("valid", valid_x, valid_y)]
        if test_x is not None:
            sets.append(("test", test_x, test_y))
        for name, x, _ in sets:
            _check_images(f"{name}_x", x)
        for name, x, y in sets:
            _check_labels(name, x, y)
        self.device = torch.device(device) if device is not None else get_device()
        self.train_x, self.train_y = train_x.to(self.device), train_y.to(self.device)
        self.valid_x, self.valid_y = valid_x.to(self.device), valid_y.to(self.device)
        self.test_x = test_x.to(self.device) if test_x is not None else None
        self.test_y = test_y.to(self.device) if test_y is not None else None
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def mnist(cls, device=None, n_train: int | None = None, n_valid: int = 10_000, n_test: int | None = None,
              seed: int = 42) -> "DeviceData":
        """MNIST's three sets on `device`, from `helpers.data.mnist_splits(n_valid, seed)`.

        `n_valid`: how many of MNIST's 60,000 training images are held out for validation (the same seed always
        holds out the same ones); `n_train`: train on only the first `n_train` of the others (default: all
        60,000 − `n_valid`); `n_test`: keep only the first `n_test` of the 10,000 test images (default: all).
        """
        from .data import mnist_splits

        if n_train is not None:
            n_train = positive_int(n_train, "n_train", example="None (all), 10_000")
        if n_test is not None:
            n_test = positive_int(n_test, "n_test", example="None (all 10,000), 2_000")
        s = mnist_splits(n_valid, seed)
        if n_train is not None and n_train > len(s.train_x):
            raise ValueError(f"n_train={n_train:,} is more than the {len(s.train_x):,} training images left after "
                             f"holding out n_valid={n_valid:,} for validation: lower it, or pass None for all of them.")
        if n_test is not None and n_test > len(s.test_x):
            raise ValueError(f"n_test={n_test:,} is more than MNIST's {len(s.test_x):,} test images: lower it, or "
                             "pass None for all of them.")
        return cls(s.train_x[:n_train], s.train_y[:n_train], s.valid_x, s.valid_y, device,
                   test_x=s.test_x[:n_test], test_y=s.test_y[:n_test])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels of one evaluation set: "valid" or "test"."""
        if name not in SPLITS:
            raise ValueError(f"split must be 'valid' (choices are made on it) or 'test' (scored once, at the end), "
                             f"got {name!r}.")
        if name == "test" and self.test_x is None:
            raise ValueError("This DeviceData holds no test set: build it with DeviceData.mnist(...), or pass "
                             "test_x= and test_y= when you make it.")
        return (self.valid_x, self.valid_y) if name == "valid" else (self.test_x, self.test_y)

    def inputs(self, x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 images `[B, H, W]` on the device -> normalised float32 `[B, 1, H, W]`."""
        x = x.unsqueeze(1).float().div_(255).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    @property
    def n_train(self) -> int:
        return len(self.train_x)

    def __repr__(self) -> str:
        test = f", test {tuple(self.test_x.shape)}" if self.test_x is not None else ""
        return (f"DeviceData(train {tuple(self.train_x.shape)}, valid {tuple(self.valid_x.shape)}{test}, "
                f"uint8 on {self.device})")


# One epoch of `fit` with `fast_model(device)` and these settings passes 99 % test accuracy (benchmarks/cpu_time_to_99.py,
# results in benchmarks/results/). The optimizer settings are tuomaso/train_mnist_fast's (a short memory: beta1
# 0.7, beta2 0.9, and no momentum cycling, so beta1 stays 0.7); label smoothing is ours. Chosen on the validation
# split of `mnist_splits` (benchmarks/results/cpu_levers.json); pass them as `fit(model, data, 1, **FAST_RECIPE)`.
FAST_RECIPE = {"lr": 1e-2, "bs": 256, "betas": (0.7, 0.9), "cycle_momentum": False, "label_smoothing": 0.1,
               "wd": 0.01}


def fast_settings(device) -> dict:
    """`fit`'s `amp` and `channels_last` for the fast recipe on `device`, as a dict to pass on with `**`.

    CUDA: autocast (bf16, or float16 with a gradient scaler where bf16 is not native) and channels_last. CPU:
    channels_last (its convolutions run faster on height × width × channels), and bf16 autocast only where
    `cpu_has_native_bf16()`: elsewhere it would be slower than float32. Other devices (MPS): fit's defaults.
    Introduced in the `gpu_loop` notebook.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return {"amp": True, "channels_last": True}
    if device.type == "cpu":
        return {"amp": cpu_has_native_bf16(), "channels_last": True}
    return {"amp": "auto", "channels_last": "auto"}


def fast_model(device) -> nn.Sequential:
    """The fast recipe's network for `device`: `fast_cnn(24)` on a CPU that trains in float32 (no native bf16),
    `fast_cnn()` (32 first-layer filters) everywhere else.

    In float32 on a CPU the second convolution's multiply-adds are most of a training step; 24 first-layer filters
    give it a quarter fewer inputs, so a quarter less of its work, for a validation accuracy within a tenth of a
    point (benchmarks/results/cpu_levers_float32.json). Where the device computes in bf16 or float16 the step is
    cheap already and the recipe keeps its 32 filters (benchmarks/results/cpu_levers.json). The device decides, in
    plain sight, as in `fast_settings`. Introduced in the `gpu_loop` notebook.
    """
    device = torch.device(device)
    return fast_cnn(24) if device.type == "cpu" and not cpu_has_native_bf16() else fast_cnn()


TrainingParts = namedtuple("TrainingParts", ["model", "opt", "sched", "scaler", "step"])
TrainingParts.__doc__ = (
    "What training_parts builds: `model` (the one to call: the model, or its torch.compile'd wrapper), `opt` "
    "(AdamW), `sched` (OneCycleLR), `scaler` (GradScaler, active with float16 only) and `step(xb, yb)` -> loss."
)


def training_parts(model: nn.Module, device, n_epochs: int, steps_per_epoch: int, lr: float, *, wd: float = 0.01,
                   amp_dtype: torch.dtype | None = None, channels_last: bool = False, compile: bool = False,
                   betas: tuple[float, float] = (0.9, 0.999), cycle_momentum: bool = True,
                   label_smoothing: float = 0.0) -> TrainingParts:
    """The training step `fit` uses, for code that feeds batches its own way (the script of `helpers.distributed`,
    the DataLoader loop of benchmarks/train_speed.py).

    Moves `model` to `device` (and to channels_last if asked) and builds AdamW with weight decay `wd`, the
    one-cycle schedule peaking at `lr` over `n_epochs` × `steps_per_epoch` steps, and the gradient scaler (active
    with float16 only). `betas` are AdamW's; `cycle_momentum=True` lets the schedule move beta1 between 0.95 and
    0.85 against the learning rate (OneCycleLR's default), False keeps `betas[0]`; `label_smoothing` goes to the
    cross-entropy loss. Returns a `TrainingParts(model, opt, sched, scaler, step)`: `model` is the model, or its
    `torch.compile`d wrapper with `compile=True` (call that one); `step(xb, yb)` is one update on a batch (forward
    under `autocast_for(device, amp_dtype)`, cross-entropy loss, backward, optimizer step, schedule step) and
    returns the loss, detached. Introduced in the `gpu_loop` notebook (its loop, written out by hand).
    """
    device = torch.device(device)
    n_epochs = positive_int(n_epochs, "n_epochs", example="1, 8")
    steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch", example="math.ceil(n_train / bs)")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    # On a GPU the fused AdamW updates every parameter in one kernel instead of several per tensor: with a model
    # this small, kernel launches are most of a step's time. The CPU keeps the default implementation.
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=tuple(betas), weight_decay=wd,
                            fused=True if device.type == "cuda" else None)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=n_epochs, steps_per_epoch=steps_per_epoch,
                                                cycle_momentum=cycle_momentum)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    step_model = torch.compile(model) if compile else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def step(xb, yb):
        with autocast_for(device, amp_dtype):
            loss = loss_fn(step_model(xb), yb)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        return loss.detach()

    return TrainingParts(step_model, opt, sched, scaler, step)


def evaluate(model: nn.Module, data: DeviceData, split: str = "valid", *, bs: int = 1024,
             amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` on one of `data`'s sets, without gradients.

    `split="valid"` (the default, what `fit` reports after each epoch) or `"test"`: the test set is scored once,
    at the end, after every choice has been made on the validation set. Puts the model in eval mode and leaves
    it there; `fit` switches back to train mode. Introduced in the `gpu_loop` notebook.
    """
    x, y = data.split(split)
    bs = positive_int(bs, "bs", example="1024")
    model.eval()
    total_loss = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    with torch.no_grad(), autocast_for(data.device, amp_dtype):
        for start in range(0, len(x), bs):
            xb = data.inputs(x[start:start + bs], channels_last)
            yb = y[start:start + bs]
            logits = model(xb).float()
            total_loss += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(dim=1) == yb).sum()
    n = len(x)
    return total_loss.item() / n, correct.item() / n


def _progress(iterable, enabled):
    if not enabled:
        return None
    try:
        from fastprogress.fastprogress import master_bar
    except ImportError:  # fastprogress is a dependency, but the loop must not need it
        return None
    return master_bar(iterable)


class LossCurve:
    """A live loss curve on a fastprogress `master_bar`: the training loss of one batch now and then, and the
    validation loss after each epoch (drawn once there are two points to join), redrawn with every new point by
    `mb.update_graph`. The x axis counts epochs: `add_batch(step, loss)` takes the step since the start of the run
    and divides it by `steps_per_epoch`; `add_epoch(epoch, valid_loss)` takes the epoch just finished (1, 2, ...).

    Drawing is not training: each redraw takes tens of milliseconds, and `seconds` adds them up so that a loop can
    leave them out of its training time. `history` (a `fit` history with `epoch` and `valid_loss`) lets a resumed
    run keep the validation points of the epochs it skipped. `fit(..., live_plot=True)` draws with it.
    Introduced in the `gpu_loop` notebook.
    """

    def __init__(self, mb, n_epochs: int, steps_per_epoch: int, history: dict | None = None):
        self.mb = mb
        self.n_epochs = positive_int(n_epochs, "n_epochs", example="LossCurve(mb, n_epochs=2, steps_per_epoch=196)")
        self.steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch",
                                            example="LossCurve(mb, 2, steps_per_epoch=math.ceil(50_000 / 256))")
        self.mb.names = ["train loss (one batch)", "valid loss"]
        history = history or {"epoch": [], "valid_loss": []}
        self.train = ([], [])
        self.valid = (list(history["epoch"]), list(history["valid_loss"]))  # a resumed run keeps its epochs
        self.seconds = 0.0

    def add_batch(self, step: int, loss: float) -> None:
        self.train[0].append(step / self.steps_per_epoch)
        self.train[1].append(loss)
        self.draw()

    def add_epoch(self, epoch: int, valid_loss: float) -> None:
        self.valid[0].append(epoch)
        self.valid[1].append(valid_loss)
        self.draw()

    def draw(self) -> None:
        start = time.perf_counter()
        shown = [self.train] + ([self.valid] if len(self.valid[0]) > 1 else [])  # one point alone draws no line
        ys = [y for _, ys in shown for y in ys]
        top = max(ys) if ys else 0.0
        self.mb.update_graph([[list(xs), list(ys)] for xs, ys in shown], x_bounds=(0, self.n_epochs),
                             y_bounds=(0, 1.05 * top if top > 0 else 1.0))
        self.seconds += time.perf_counter() - start


def fit(model: nn.Module, data: DeviceData, n_epochs: int, lr: float, bs: int = 256, *, wd: float = 0.01,
        seed: int | None = None, amp: bool | str = "auto", channels_last: bool | str = "auto",
        compile: bool = False, checkpoint_path=None, resume: bool = True, progress: bool = True,
        log_every: int = 25, betas: tuple[float, float] = (0.9, 0.999), cycle_momentum: bool = True,
        label_smoothing: float = 0.0, live_plot: bool = False) -> dict:
    """Train `model` on `data` for `n_epochs` with AdamW and a one-cycle schedule peaking at `lr`; return the history.

    The loop of the `gpu_loop` notebook: batches are shuffled index slices of the uint8 images already on the device
    (`batches`), converted per batch (`data.inputs`); mixed precision with `torch.autocast` (`amp="auto"`: bf16 on
    a GPU, float16 + gradient scaler on GPUs without bf16, off on the CPU); `channels_last="auto"` on GPUs only;
    `compile=True` runs `torch.compile` (its time is reported separately as `compile_s`).

    The optimizer is AdamW with weight decay `wd` and `betas`; the schedule cycles beta1 against the learning rate
    unless `cycle_momentum=False`; `label_smoothing` softens the cross-entropy's targets. The course's fastest
    recipe is `fit(fast_model(device), data, 1, **FAST_RECIPE, **fast_settings(device))`.
    With `progress=True` a fastprogress bar shows the loss every `log_every` batches; `live_plot=True` also draws
    the training loss (and each epoch's validation loss) as a curve that grows while it trains. Drawing takes
    tens of milliseconds a time: that time is left out of `train_s` and reported as `plot_s`.

    `seed` seeds the generator that orders the data (default: drawn from torch's global generator, so `set_seed`
    makes a run repeatable). With `checkpoint_path`, the model, optimizer, schedule, scaler, epoch, history and
    every random state are saved atomically after each epoch; with `resume=True` an existing checkpoint there is
    loaded first, and training continues exactly where it stopped: on the CPU with the same weights, bit for bit,
    as a run never interrupted (tested); on a GPU that also needs deterministic kernels (`gpu_loop` notebook).
    A checkpoint made on another kind of device or with another precision is refused with a clear message.

    Validation after each epoch is on `data`'s validation set; the test set is never touched here (score it once,
    at the end, with `evaluate(model, data, "test")`).

    Returns a dict of lists: per epoch `epoch`, `train_loss`, `valid_loss`, `valid_acc`, `epoch_s` (train + validation
    seconds), `train_s` (training seconds only); per batch `batch_loss` and `lr`; plus `compile_s` and `plot_s`.
    Introduced in the `gpu_loop` notebook.
    """
    if not isinstance(data, DeviceData):
        raise TypeError(f"fit wants the data as a DeviceData (see DeviceData.mnist), got {type(data).__name__}.")
    n_epochs = positive_int(n_epochs, "n_epochs", example="1, 8")
    positive_number(lr, "lr", advice="It is the peak of the one-cycle schedule: try 3e-3.")
    bs = positive_int(bs, "bs", example="256")
    log_every = positive_int(log_every, "log_every", example="25")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be two numbers in [0, 1), AdamW's (beta1, beta2), e.g. (0.9, 0.999) or "
                         f"(0.7, 0.9), got {betas!r}.")
    for i, b in enumerate(betas):
        number_in(b, f"betas[{i}]", 0.0, 1.0, high_open=True,
                  advice="Each beta is a decay rate in [0, 1): (0.9, 0.999) or (0.7, 0.9), say.")
    number_in(label_smoothing, "label_smoothing", 0.0, 1.0, high_open=True, advice="Try 0.1 (0 turns it off).")
    device = data.device
    amp_dtype = amp_dtype_from_setting(amp, device)
    if channels_last == "auto":
        channels_last = device.type == "cuda"
    step_model, opt, sched, scaler, step = training_parts(model, device, n_epochs, math.ceil(data.n_train / bs), lr,
                                                          wd=wd, amp_dtype=amp_dtype, channels_last=channels_last,
                                                          compile=compile, betas=betas, cycle_momentum=cycle_momentum,
                                                          label_smoothing=label_smoothing)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else int(torch.randint(2**62, (), dtype=torch.int64)))
    config = {"n_epochs": n_epochs, "lr": float(lr), "bs": bs, "wd": float(wd), "n_train": data.n_train,
              "betas": [float(b) for b in betas], "cycle_momentum": bool(cycle_momentum),
              "label_smoothing": float(label_smoothing),
              "model": type(model).__name__, "n_params": sum(p.numel() for p in model.parameters()),
              # the data-order generator's state and the gradient scaler's only fit the same device and precision
              "device": device.type, "amp_dtype": str(amp_dtype).replace("torch.", "")}
    history = {"epoch": [], "train_loss": [], "valid_loss": [], "valid_acc": [], "epoch_s": [], "train_s": [],
               "batch_loss": [], "lr": [], "compile_s": 0.0, "plot_s": 0.0}
    start_epoch = 0
    if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
        ckpt = load_checkpoint(checkpoint_path)
        if ckpt.get("config") != config:
            raise ValueError(
                f"The checkpoint {checkpoint_path} belongs to another run: it was saved with {ckpt.get('config')}, "
                f"this call asks for {config}. Use another checkpoint_path, or resume=False to start afresh."
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], generator)
        history = {"plot_s": 0.0, **ckpt["history"]}
        start_epoch = ckpt["epoch"]

    def train_step(idx):
        return step(data.inputs(data.train_x[idx], channels_last), data.train_y[idx])

    epochs = range(start_epoch, n_epochs)
    mb = _progress(epochs, progress and len(epochs) > 0)
    steps_per_epoch = math.ceil(data.n_train / bs)
    curve = LossCurve(mb, n_epochs, steps_per_epoch, history) if mb is not None and live_plot else None
    for epoch in (mb if mb is not None else epochs):
        model.train()
        sync(device)
        t0 = time.perf_counter()
        losses, lrs = [], []
        order = batches(data.n_train, bs, generator=generator)
        if mb is not None:
            from fastprogress.fastprogress import progress_bar

            order = progress_bar(list(order), parent=mb)
        for i, idx in enumerate(order):
            if compile and epoch == start_epoch and i == 0:  # the first call compiles: time it on its own
                sync(device)
                tc = time.perf_counter()
                losses.append(train_step(idx))
                sync(device)
                history["compile_s"] += time.perf_counter() - tc
                t0 += time.perf_counter() - tc
            else:
                losses.append(train_step(idx))
            lrs.append(sched.get_last_lr()[0])
            if mb is not None and i % log_every == 0:
                loss_now = losses[-1].item()  # .item() waits for the GPU: only now and then
                mb.child.comment = f"loss {loss_now:.3f}"
                if curve is not None:  # drawing is not training: its time leaves the timer
                    tp = time.perf_counter()
                    curve.add_batch(epoch * steps_per_epoch + i + 1, loss_now)
                    history["plot_s"] += time.perf_counter() - tp
                    t0 += time.perf_counter() - tp
        sync(device)
        train_s = time.perf_counter() - t0
        valid_loss, valid_acc = evaluate(step_model, data, amp_dtype=amp_dtype, channels_last=channels_last)
        sync(device)
        batch_loss = torch.stack(losses).float().cpu().tolist()
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(sum(batch_loss) / len(batch_loss))
        history["valid_loss"].append(valid_loss)
        history["valid_acc"].append(valid_acc)
        history["epoch_s"].append(time.perf_counter() - t0)
        history["train_s"].append(train_s)
        history["batch_loss"] += batch_loss
        history["lr"] += lrs
        if curve is not None:
            tp = time.perf_counter()
            curve.add_epoch(epoch + 1, valid_loss)
            history["plot_s"] += time.perf_counter() - tp
        if mb is not None:
            mb.write(f"epoch {epoch + 1}/{n_epochs}: train loss {history['train_loss'][-1]:.4f}, "
                     f"valid loss {valid_loss:.4f}, accuracy {valid_acc:.4f}")
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                            scaler=scaler.state_dict(), epoch=epoch + 1, rng=get_rng_state(generator),
                            history=history, config=config)
    model.train()
    return history


def main(argv=None) -> int:
    """`python -m helpers.train`: train a model on MNIST from the command line, with checkpoints and resume.

    Trains on MNIST's training images less the `--n-valid` held out for validation (reported after each epoch);
    `--test` scores the test set once, at the end. The resume test (tests/test_checkpoint.py) runs this, kills it
    mid-run, and runs it again. Writes the final weights and history to `--out` and prints one JSON line per
    epoch. Introduced in the `gpu_loop` notebook.
    """
    p = argparse.ArgumentParser(prog="python -m helpers.train", description=main.__doc__)
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--bs", type=int, default=256)
    p.add_argument("--n-valid", type=int, default=10_000,
                   help="hold out N of MNIST's 60,000 training images for validation (default 10,000)")
    p.add_argument("--n-train", type=int, default=None,
                   help="train on only the first N of the other training images (default: all)")
    p.add_argument("--n-test", type=int, default=None, help="with --test: score only the first N test images")
    p.add_argument("--test", action="store_true", help="score the test set once, after training")
    p.add_argument("--seed", type=int, default=42, help="seeds the model's initial weights and the data order")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: get_device())")
    p.add_argument("--checkpoint", default=None, help="checkpoint file, written after each epoch")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint and start afresh")
    p.add_argument("--out", default=None, help="file for the final weights and history")
    args = p.parse_args(argv)
    from .env import set_seed

    set_seed(args.seed)
    device = get_device(args.device)
    data = DeviceData.mnist(device, n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test)
    model = simple_cnn() if args.model == "cnn" else simple_mlp()
    history = fit(model, data, args.epochs, args.lr, args.bs, seed=args.seed, checkpoint_path=args.checkpoint,
                  resume=not args.no_resume, progress=False)
    for i, e in enumerate(history["epoch"]):
        print(json.dumps({"epoch": e, "train_loss": history["train_loss"][i], "valid_acc": history["valid_acc"][i]}))
    if args.test:
        test_loss, test_acc = evaluate(model, data, "test")
        history["test_loss"], history["test_acc"] = test_loss, test_acc
        print(json.dumps({"test_loss": test_loss, "test_acc": test_acc}))
    if args.out:
        save_checkpoint(args.out, model=model.state_dict(), history=history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
