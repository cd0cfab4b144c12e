"""Sliders that retrain a real model: learning rate, batch size, and gradient descent on a toy quadratic.

Layer 4 of the helpers package: may import `env`, `plots`, `data`, `results`, `train`, never the other way.
Each explorer is a thin widget over a pure function that a notebook (or a test) can call directly:

- `run_experiment(...)` trains the 3-vs-7 classifier of notebook 04 and returns a `History`;
  `lr_explorer()` puts sliders on its arguments and redraws the curves after every change.
- `compare_batch_sizes(...)` and `gradient_noise(...)` measure what the batch size changes;
  `batch_size_explorer()` shows them as a table and plots.
- `quadratic_descent(...)` runs gradient descent on notebook 03's noisy quadratic;
  `quadratic_lr_explorer()` draws every step on the loss surface.

A notebook shows an explorer with one line (`lr_explorer()`); outside a live Jupyter front end (nbval, a
static viewer) the same line shows the last run's plot and numbers instead of the sliders.
Plots are drawn with matplotlib's Agg renderer into PNG bytes shown by an `Image` widget: fast, and it works
in every front end (JupyterLab, Colab, Kaggle, VS Code) without ipympl.
Introduced in notebook 04 (`lr_explorer`, `batch_size_explorer`) and notebook 03 (`quadratic_lr_explorer`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import io
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .data import three_vs_seven
from .train import batches, binary_accuracy

__all__ = [
    "OPTIMIZERS",
    "MODELS",
    "History",
    "run_experiment",
    "gradient_noise",
    "compare_batch_sizes",
    "quadratic_data",
    "quadratic_descent",
    "lr_explorer",
    "batch_size_explorer",
    "quadratic_lr_explorer",
]

OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam"}
MODELS = {"linear": "linear 784→1", "mlp": "MLP 784→30→ReLU→1"}
# A run counts as diverged when its loss becomes inf/NaN, or when the training loss, averaged over the last
# _WINDOW steps, climbs to BLOWUP_FACTOR times where it started (the sigmoid keeps this loss below 1, so it saturates instead of
# reaching inf: "rose far above its start" is how a too-high learning rate shows here).
BLOWUP_FACTOR = 1.5
_WINDOW = 100  # ... averaged over this many steps (or one epoch, when an epoch has fewer)

_DATA_CACHE: dict[str, tuple] = {}


# --------------------------------------------------------------------------------------------------
# The pure core: train the 3-vs-7 model once and report what happened.
# --------------------------------------------------------------------------------------------------


@dataclass
class History:
    """What one training run did. Read it as an object (`h.valid_acc`) or a dict (`h["valid_acc"]`).

    `train_loss` has one value per optimizer step; `valid_loss` and `valid_acc` one per finished epoch.
    `status` is "ok" or "diverged"; when diverged, `diverged_at` is the step (counted from 0) where the loss
    became inf/NaN (`reason="nonfinite"`) or where it first passed 1.5x its start, once the loss averaged over
    the last 100 steps (or one epoch) was above that (`reason="rose"`); training stopped there.
    Introduced in notebook 04.
    """

    lr: float
    bs: int
    n_epochs: int
    optimizer: str
    model: str
    seed: int
    n_train: int
    steps_per_epoch: int
    train_loss: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    valid_acc: list = field(default_factory=list)
    seconds: float = 0.0
    status: str = "ok"
    diverged_at: int | None = None
    reason: str = ""

    def __getitem__(self, key):
        if key not in self.__dataclass_fields__ and key not in ("final_valid_acc", "final_valid_loss", "message"):
            raise KeyError(f"History has no field {key!r}; fields: {', '.join(self.__dataclass_fields__)}.")
        return getattr(self, key)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def steps(self) -> int:
        """Optimizer steps taken (the updates the model saw)."""
        return len(self.train_loss)

    @property
    def final_valid_acc(self) -> float:
        return self.valid_acc[-1] if self.valid_acc else float("nan")

    @property
    def final_valid_loss(self) -> float:
        return self.valid_loss[-1] if self.valid_loss else float("nan")

    @property
    def settings(self) -> str:
        return (f"lr {self.lr:.3g} · bs {self.bs} · {self.n_epochs} epoch{'s' * (self.n_epochs != 1)} · "
                f"{OPTIMIZERS.get(self.optimizer, self.optimizer)} · {self.model}")

    @property
    def message(self) -> str:
        """One sentence, in words, about how the run went."""
        if self.status == "diverged":
            if self.reason == "nonfinite":
                what = f"the loss exploded at step {self.diverged_at} (it became inf/NaN)"
            else:
                start = self.train_loss[0] if self.train_loss else float("nan")
                what = (f"the loss rose above {BLOWUP_FACTOR:g}x where it started ({start:.3f}) at step "
                        f"{self.diverged_at} and stayed there")
            return what + ": the learning rate is too high. Training stopped there."
        acc, loss = self.final_valid_acc, self.final_valid_loss
        first, last = self.train_loss[0], float(np.mean(self.train_loss[-max(1, self.steps_per_epoch // 4):]))
        text = f"valid accuracy {acc:.1%}, valid loss {loss:.4f}, train loss {last:.4f} after {self.steps} steps"
        if last > 0.8 * first:
            text += " — the loss has barely moved: the learning rate is too low (or train longer)"
        return text


def _get_data(data):
    if data is None:
        if "three_vs_seven" not in _DATA_CACHE:
            _DATA_CACHE["three_vs_seven"] = tuple(three_vs_seven())
        return _DATA_CACHE["three_vs_seven"]
    try:
        train_x, train_y, valid_x, valid_y = data
    except (TypeError, ValueError):
        raise ValueError(
            "data must be (train_x, train_y, valid_x, valid_y), like helpers.three_vs_seven() returns; "
            f"got {type(data).__name__}."
        ) from None
    for name, x, y in (("train", train_x, train_y), ("valid", valid_x, valid_y)):
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise ValueError(f"data's {name} x and y must be tensors.")
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),) or len(x) == 0:
            raise ValueError(
                f"data's {name} split must be x [N, 784] and y [N] with N > 0, got x {tuple(x.shape)} and "
                f"y {tuple(y.shape)}. Flatten images with .reshape(-1, 784)."
            )
    return train_x.float(), train_y.float(), valid_x.float(), valid_y.float()


def _check_args(lr, bs, n_epochs, optimizer, seed, model, n_train):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive, finite number (try 0.1 or 1.0), got {lr!r}.")
    if lr > 1e38:
        raise ValueError(f"lr={lr:g} does not fit in a float32 (at most about 3.4e38); the slider stops at 10.")
    if isinstance(bs, bool) or not isinstance(bs, (int, np.integer)) or not 1 <= bs <= n_train:
        raise ValueError(
            f"bs (batch size) must be a whole number from 1 to {n_train} (the training set's size), got {bs!r}."
        )
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer)) or n_epochs < 1:
        raise ValueError(f"n_epochs must be a whole number of at least 1, got {n_epochs!r}.")
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {optimizer!r}.")
    if not isinstance(model, str) or model.lower() not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got {model!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number such as 42, got {seed!r}.")


def _make_model(model: str, seed: int) -> nn.Module:
    # fork_rng: seeding here leaves the notebook's own random stream exactly where it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == "linear":
            return nn.Linear(784, 1)
        return nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1))


def _make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr)


def _mse_of_sigmoid(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The course's 3-vs-7 loss: squared distance between the sigmoid's probability and the 0/1 target."""
    return ((torch.sigmoid(logits.reshape(-1)) - y) ** 2).mean()


def _linear_loss_and_grads(net: nn.Linear, xb: torch.Tensor, yb: torch.Tensor) -> float:
    """The linear model's loss, with its gradients written to `.grad` by the chain rule done by hand.

    Same numbers as `loss.backward()` (a test checks it against autograd), about a third faster per step,
    which is what keeps a slider change under a tenth of a second.
    """
    w, b = net.weight, net.bias
    with torch.no_grad():
        p = torch.sigmoid(torch.addmv(b, xb, w[0]))
        diff = p - yb
        value = diff.pow(2).mean().item()
        dz = diff * p * (1 - p) * (2 / len(yb))  # d loss / d logit for each example
        w.grad = (dz @ xb).unsqueeze(0)
        b.grad = dz.sum().reshape(1)
    return value


@contextlib.contextmanager
def _one_thread():
    """Tiny matrix products run fastest on one thread, and a shared 2-core machine stays responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_experiment(lr: float = 1.0, bs: int = 256, n_epochs: int = 2, optimizer: str = "sgd", seed: int = 42,
                   model: str = "linear", data=None,
                   progress: Callable[[int, int], None] | None = None) -> History:
    """Train the 3-vs-7 classifier once and return its `History`; never raises because training diverged.

    The model is `"linear"` (784→1) or `"mlp"` (784→30→ReLU→1), seeded by `seed`; the loss is the mean
    squared error of the sigmoid (notebook 04's design); `optimizer` is "sgd", "momentum" (0.9) or "adam"
    (`torch.optim`). Each epoch visits the training set in a new order drawn from a generator seeded with
    `seed` (`helpers.train.batches`), so the same arguments give the same history. The data is
    `helpers.three_vs_seven()` (loaded once, then cached) unless `data=(train_x, train_y, valid_x, valid_y)`.
    `progress(step, total_steps)`, if given, is called every few steps (the explorers drive a progress bar).
    When the loss becomes inf/NaN, or its average over the last 100 steps (or one epoch) climbs to 1.5x its
    start, training stops and `status` says "diverged". (The sigmoid keeps this loss below 1, so a too-high
    learning rate shows up as the loss rising and staying up, e.g. the MLP at lr 10 with SGD, rather than
    as inf; the linear model with SGD trains fine across the whole 1e-4..10 slider.)
    Introduced in notebook 04.
    """
    train_x, train_y, valid_x, valid_y = _get_data(data)
    n_train = len(train_x)
    _check_args(lr, bs, n_epochs, optimizer, seed, model, n_train)
    optimizer, model, bs, n_epochs, seed = optimizer.lower(), model.lower(), int(bs), int(n_epochs), int(seed)
    steps_per_epoch = math.ceil(n_train / bs)
    hist = History(lr=float(lr), bs=bs, n_epochs=n_epochs, optimizer=optimizer, model=model, seed=seed,
                   n_train=n_train, steps_per_epoch=steps_per_epoch)
    total = steps_per_epoch * n_epochs
    report_every = max(1, total // 50)
    start = time.perf_counter()
    with _one_thread():
        net = _make_model(model, seed)
        opt = _make_optimizer(optimizer, net.parameters(), float(lr))
        gen = torch.Generator().manual_seed(seed)
        window = min(_WINDOW, steps_per_epoch)  # a blow-up must last this many steps, not be one bad batch
        running, step, losses = 0.0, 0, hist.train_loss
        for _epoch in range(n_epochs):
            for idx in batches(n_train, bs, generator=gen):
                # index_select is a plain gather: several times faster than x[idx] on a busy CPU
                xb, yb = train_x.index_select(0, idx), train_y.index_select(0, idx)
                if model == "linear":
                    loss = None
                    value = _linear_loss_and_grads(net, xb, yb)
                else:
                    loss = _mse_of_sigmoid(net(xb), yb)
                    value = loss.item()
                losses.append(value)
                running += value - (losses[step - window] if step >= window else 0.0)
                if not math.isfinite(value):
                    hist.status, hist.diverged_at, hist.reason = "diverged", step, "nonfinite"
                elif step + 1 >= window and running / window > BLOWUP_FACTOR * losses[0] > 0:
                    recent = range(step + 1 - window, step + 1)
                    first_high = next(i for i in recent if losses[i] > BLOWUP_FACTOR * losses[0])
                    hist.status, hist.diverged_at, hist.reason = "diverged", first_high, "rose"
                if hist.status == "diverged":
                    break
                if loss is not None:
                    opt.zero_grad()
                    loss.backward()
                try:
                    opt.step()
                except RuntimeError as e:  # a step so large that float32 overflows
                    if "overflow" not in str(e):
                        raise
                    hist.status, hist.diverged_at, hist.reason = "diverged", step + 1, "nonfinite"
                    break
                step += 1
                if progress is not None and step % report_every == 0:
                    progress(step, total)
            if hist.status == "diverged":
                break
            with torch.no_grad():
                logits = net(valid_x)
                hist.valid_loss.append(_mse_of_sigmoid(logits, valid_y).item())
                hist.valid_acc.append(binary_accuracy(logits, valid_y))
    if progress is not None:
        progress(total, total)
    hist.seconds = time.perf_counter() - start
    return hist


# --------------------------------------------------------------------------------------------------
# Batch size: how noisy is a mini-batch's gradient, and what does the batch size cost and buy?
# --------------------------------------------------------------------------------------------------


def _per_example_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradients of each example's loss with respect to all parameters, flattened: `[len(x), n_params]`."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss_one(p, xi, yi):
        return _mse_of_sigmoid(functional_call(net, p, (xi.unsqueeze(0),)), yi.reshape(1))

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(len(x), -1) for k in params], dim=1)


def gradient_noise(bs_values: Sequence[int], n_draws: int = 32, seed: int = 42, model: str = "linear",
                   data=None) -> dict[int, float]:
    """For each batch size, the mean distance ‖g_batch − g_full‖ between a mini-batch's gradient and the
    full-batch gradient, over `n_draws` random mini-batches, at the model's starting (seeded) weights.

    Statistics predicts about 1/sqrt(bs) (times sqrt((N − bs)/(N − 1)) because a batch is drawn without
    replacement: the noise is exactly 0 when the batch is the whole training set). Introduced in notebook 04.
    """
    train_x, train_y, _, _ = _get_data(data)
    n = len(train_x)
    bs_values = list(bs_values)
    for b in bs_values:  # before int(): a batch size of 2.5 is an error, not 2
        _check_args(1.0, b, 1, "sgd", seed, model, n)
    bs_values = [int(b) for b in bs_values]
    if not isinstance(n_draws, int) or n_draws < 1:
        raise ValueError(f"n_draws must be a whole number of at least 1, got {n_draws!r}.")
    model = model.lower()
    gen = torch.Generator().manual_seed(seed)
    with _one_thread():
        net = _make_model(model, seed)
        # one row per (batch size, draw): 1/bs on the batch's examples, so rows @ G are mini-batch gradients
        select = torch.zeros(len(bs_values) * n_draws, n)
        for i, b in enumerate(bs_values):
            for d in range(n_draws):
                select[i * n_draws + d, torch.randperm(n, generator=gen)[:b]] = 1.0 / b
        batch_grads, full = 0.0, 0.0
        chunk = 4096 if model == "linear" else 512
        for s in range(0, n, chunk):
            g = _per_example_grads(net, train_x[s:s + chunk], train_y[s:s + chunk])
            batch_grads = batch_grads + select[:, s:s + chunk] @ g
            full = full + g.sum(0)
        full = full / n
        dist = (batch_grads - full).norm(dim=1).reshape(len(bs_values), n_draws).mean(1)
    return {b: float(v) for b, v in zip(bs_values, dist)}


def compare_batch_sizes(bs_values: Sequence[int] = (4, 16, 64, 256, 1024, 4096), lr: float = 1.0,
                        n_epochs: int = 1, optimizer: str = "sgd", seed: int = 42, model: str = "linear",
                        data=None, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Train the same model at each batch size and return one row per size: steps per epoch, updates seen,
    gradient noise, seconds per epoch, final valid accuracy and loss, status, and the run's `History`.

    Introduced in notebook 04.
    """
    if not bs_values:
        raise ValueError("compare_batch_sizes needs at least one batch size, e.g. bs_values=(16, 256).")
    noise = gradient_noise(bs_values, seed=seed, model=model, data=data)
    rows = []
    for i, b in enumerate(bs_values):
        h = run_experiment(lr=lr, bs=int(b), n_epochs=n_epochs, optimizer=optimizer, seed=seed, model=model,
                           data=data)
        rows.append({
            "bs": int(b), "steps_per_epoch": h.steps_per_epoch, "updates": h.steps, "grad_noise": noise[int(b)],
            "seconds_per_epoch": h.seconds / max(1, len(h.valid_acc)), "valid_acc": h.final_valid_acc,
            "valid_loss": h.final_valid_loss, "status": h.status, "history": h,
        })
        if progress is not None:
            progress(i + 1, len(bs_values))
    return rows


# --------------------------------------------------------------------------------------------------
# Notebook 03's toy: fit a noisy quadratic by gradient descent, with two parameters so the loss is a map.
# --------------------------------------------------------------------------------------------------


def quadratic_data(seed: int = 42, n: int = 20):
    """Notebook 03's toy: `time = arange(n)` and `speed`, a noisy quadratic with its lowest point at time 7.

    Seeded by its own generator (the same numbers as `set_seed(seed)` followed by `torch.randn(n)`), so it
    never moves the notebook's random stream. Introduced in notebook 03.
    """
    gen = torch.Generator().manual_seed(seed)
    time_ = torch.arange(0, n).float()
    speed = 0.4 * (time_ - 7) ** 2 + 5 + 3 * torch.randn(n, generator=gen)
    return time_, speed


def _quad_setup(time, speed, center, scale):
    if (time is None) != (speed is None):
        raise ValueError("pass both time and speed (1-D tensors of the same length), or neither.")
    if time is None:
        time, speed = quadratic_data()
    time, speed = torch.as_tensor(time, dtype=torch.float64), torch.as_tensor(speed, dtype=torch.float64)
    if time.ndim != 1 or speed.shape != time.shape or len(time) < 3:
        raise ValueError(f"time and speed must be 1-D and the same length (≥ 3), got {tuple(time.shape)} and "
                         f"{tuple(speed.shape)}.")
    if not scale or not math.isfinite(scale):
        raise ValueError(f"scale must be a non-zero number, got {scale!r}.")
    t = (time - center) / scale
    design = torch.stack([t**2, t, torch.ones_like(t)], 1)
    best = torch.linalg.lstsq(design, speed[:, None]).solution[:, 0]  # (a, b, c) of the best quadratic
    return time, speed, t, best


def _quad_loss_grid(t, b_fixed, speed, a_grid, c_grid):
    # mean over the data of (a t² + b t + c - speed)² for every (a, c) on the grid, in one broadcast
    pred = a_grid[..., None] * t**2 + b_fixed * t + c_grid[..., None]
    return ((pred - speed) ** 2).mean(-1)


def quadratic_descent(lr: float, n_steps: int = 30, time=None, speed=None, start=(0.0, 40.0),
                      center: float = 10.0, scale: float = 10.0) -> dict:
    """Gradient descent on (a, c) of notebook 03's model `a t² + b t + c`, `t = (time - center) / scale`,
    with `b` held at its best (least-squares) value so the loss is a map over two numbers; mean squared error.

    Returns the path of (a, c), the loss before each step and after the last, the best (a, b, c) and loss,
    and a verdict: "converged", "oscillating" (each step jumps across the valley), "diverged" (the loss grows)
    or "slow" (still far from the minimum: the steps are too small). `max_stable_lr` is 2 / the largest
    curvature: above it every step overshoots by more than the last. Introduced in notebook 03.
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive, finite number (try 0.1), got {lr!r}.")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a whole number of at least 1, got {n_steps!r}.")
    time, speed, t, best = _quad_setup(time, speed, center, scale)
    b_fixed = best[1]
    design = torch.stack([t**2, torch.ones_like(t)], 1)
    hessian = 2 * design.T @ design / len(t)
    max_stable_lr = float(2 / torch.linalg.eigvalsh(hessian).max())

    def loss_of(p):
        return ((p[0] * t**2 + b_fixed * t + p[1] - speed) ** 2).mean()

    params = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    path, losses = [params.detach().clone()], []
    for _ in range(n_steps):
        loss = loss_of(params)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > 1e12:
            break
        loss.backward()
        with torch.no_grad():
            params -= lr * params.grad
            params.grad = None
        path.append(params.detach().clone())
    final = loss_of(path[-1]).item()
    losses.append(final)
    best_loss = loss_of(best[[0, 2]]).item()
    gap0, gap = losses[0] - best_loss, final - best_loss
    steps = torch.stack(path)
    moves = steps[1:] - steps[:-1]
    flips = (moves[1:] * moves[:-1]).sum(1).lt(0).float().mean().item() if len(moves) > 2 else 0.0
    if not math.isfinite(final) or final > losses[0]:
        verdict = "diverged"
    elif gap <= 0.05 * gap0:
        verdict = "converged"
    elif flips > 0.5:
        verdict = "oscillating"
    else:
        verdict = "slow"
    return {"lr": float(lr), "path": steps.numpy(), "losses": np.array(losses), "best": best.numpy(),
            "best_loss": best_loss, "verdict": verdict, "max_stable_lr": max_stable_lr,
            "time": time.numpy(), "speed": speed.numpy(), "t": t.numpy()}


# --------------------------------------------------------------------------------------------------
# Drawing: matplotlib's Agg renderer straight to PNG bytes (no pyplot, so nothing shows up twice).
# --------------------------------------------------------------------------------------------------


def _new_figure(figsize, ncols):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def _png(fig, draw: bool = True) -> bytes:
    from PIL import Image as PILImage

    if draw:
        fig.canvas.draw()
    w, h = fig.canvas.get_width_height(physical=True)
    buf = io.BytesIO()
    PILImage.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
        buf, format="png", compress_level=1)
    return buf.getvalue()


def _finite(values):
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


class _LRPlot:
    """Two panels whose frame (axes, ticks, legends) is drawn once per axis range and cached; each run only
    draws its lines on top (the current run bold, the previous one faint). Redrawing text is what makes
    matplotlib slow, so this keeps a slider change quick.
    """

    LOSS_TOP = 0.4  # the untrained model starts near 0.25; a blow-up runs off the top, where a red line marks it

    def __init__(self):
        self.fig, (self.ax_loss, self.ax_acc) = _new_figure((9.5, 3.3), 2)
        a, b = self.ax_loss, self.ax_acc
        self.prev_train, = a.plot([], [], color="0.55", lw=1, alpha=0.6, label="previous run: train")
        self.prev_valid, = a.plot([], [], "s--", color="0.55", ms=4, alpha=0.6, label="previous run: valid")
        self.train, = a.plot([], [], color="C0", lw=1.2, label="train (each mini-batch)")
        self.valid, = a.plot([], [], "o-", color="C1", ms=5, label="valid (end of epoch)")
        self.blowup = a.axvline(0, color="C3", ls=":", lw=2, label="diverged here (if it did)")
        a.set_title("Loss while training")
        a.set_xlabel("epoch")
        a.set_ylabel("loss (MSE of the sigmoid)")
        a.set_ylim(0, self.LOSS_TOP)
        a.grid(alpha=0.3)
        a.legend(loc="upper right", fontsize=8)
        self.prev_acc, = b.plot([], [], "s--", color="0.55", ms=4, alpha=0.6, label="previous run")
        self.acc, = b.plot([], [], "o-", color="C2", ms=5, label="this run")
        b.set_title("Validation accuracy")
        b.set_xlabel("epoch")
        b.set_ylabel("accuracy")
        b.grid(alpha=0.3)
        b.legend(loc="lower right", fontsize=8)
        self.dynamic = [self.prev_train, self.prev_valid, self.train, self.valid, self.blowup, self.prev_acc,
                        self.acc]
        self.fig.tight_layout()
        self.key, self.background = None, None

    @staticmethod
    def _set(lines, h):
        train, valid, acc = lines
        if h is None:
            for line in lines:
                line.set_data([], [])
            return
        train.set_data(np.arange(1, len(h.train_loss) + 1) / h.steps_per_epoch, _finite(h.train_loss))
        valid.set_data(np.arange(1, len(h.valid_loss) + 1), h.valid_loss)
        acc.set_data(np.arange(1, len(h.valid_acc) + 1), h.valid_acc)

    def _frame(self, n_epochs: int, acc_low: float):
        key = (n_epochs, acc_low)
        if key == self.key:
            return
        self.ax_loss.set_xlim(0, n_epochs)
        self.ax_acc.set_xlim(0.5, n_epochs + 0.5)
        self.ax_acc.set_ylim(acc_low, 1.0)
        for artist in self.dynamic:
            artist.set_visible(False)
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        for artist in self.dynamic:
            artist.set_visible(True)
        self.key = key

    def draw(self, h: History, prev: History | None) -> bytes:
        runs = [r for r in (h, prev) if r is not None]
        accs = [a for r in runs for a in r.valid_acc]
        acc_low = 0.9 if min(accs, default=1.0) >= 0.9 else 0.4
        self._frame(max(r.n_epochs for r in runs), acc_low)
        self._set((self.train, self.valid, self.acc), h)
        self._set((self.prev_train, self.prev_valid, self.prev_acc), prev)
        self.blowup.set_visible(h.status == "diverged")
        if h.status == "diverged":
            x = (h.diverged_at + 1) / h.steps_per_epoch
            self.blowup.set_xdata([x, x])
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in self.dynamic:
            if artist.get_visible():
                artist.axes.draw_artist(artist)
        return _png(self.fig, draw=False)


# --------------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------------

_STYLE = {"description_width": "initial"}
_CSS = """<style>
.p2g-result { font-size: 14px; line-height: 1.4; }
.p2g-result .p2g-bad { color: #b00020; font-weight: bold; }
.p2g-result .p2g-good { color: #1b5e20; font-weight: bold; }
</style>"""


def _widgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - ipywidgets is a dependency of the course
        raise ImportError("The explorers need ipywidgets: pip install 'ipywidgets>=8'.") from e
    return ipywidgets


@functools.lru_cache(maxsize=None)
def _explorer_class():
    ipywidgets = _widgets()

    class Explorer(ipywidgets.VBox):
        """A VBox of controls, a result line and a plot; `controls` names the widgets, `update()` reruns.

        Outside a live front end it shows as the last plot (image/png) and a one-line summary (text/plain).
        """

        def __init__(self, name, controls, result, plot, progress, update_fn, children):
            super().__init__(children=children)
            self.add_class("p2g-explorer")
            self.add_class(f"p2g-{name}")
            self.name, self.controls, self.result, self.plot, self.progress = name, controls, result, plot, progress
            self._update_fn = update_fn
            self.history = None  # the last run's result (a History or a dict)
            self.previous = None
            self.summary = ""
            self.timings: dict[str, float] = {}
            self.hint = "move the sliders in Jupyter to rerun"
            for w in controls.values():
                if hasattr(w, "value"):
                    w.observe(self._on_change, names="value")

        def _on_change(self, change):
            self.update()

        def update(self):
            """Rerun with the controls' current values and redraw (what every slider change does)."""
            try:
                self._update_fn(self)
            except Exception as e:  # a widget callback must never leave the learner with a dead widget
                self.result.value = (f"{_CSS}<span class='p2g-bad'>Could not run these settings:</span> "
                                     f"{html.escape(str(e))}")
                self.summary = f"error: {e}"
            return self

        def __repr__(self):
            return f"<{self.name}: {self.summary or 'not run yet'}> ({self.hint})"

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle is None:
                bundle = {}
            if isinstance(bundle, tuple):
                bundle = bundle[0]
            bundle["text/plain"] = repr(self)
            if self.plot.value:
                bundle["image/png"] = base64.b64encode(self.plot.value).decode("ascii")
            return bundle

    return Explorer


def _tag_controls(controls: dict) -> None:
    """Give each control the CSS classes the browser test looks for: `p2g-<name>` and `p2g-control`."""
    for key, w in controls.items():
        w.add_class("p2g-" + key.replace("_", "-"))
        w.add_class("p2g-control")


def _progress_bar():
    ipywidgets = _widgets()
    bar = ipywidgets.IntProgress(value=0, min=0, max=100, description="training", style=_STYLE,
                                 layout=ipywidgets.Layout(visibility="hidden", width="50%"))
    bar.add_class("p2g-progress")
    return bar


def _image():
    ipywidgets = _widgets()
    img = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
    img.add_class("p2g-plot")
    return img


def _result_html():
    ipywidgets = _widgets()
    res = ipywidgets.HTML(value="")
    res.add_class("p2g-result")
    return res


# A run that should take longer than this shows a progress bar while it trains.
_PROGRESS_STEPS = 400


def _batch_size_options(n_train: int):
    options, b = [], 1
    while b < n_train:
        options.append((str(b), b))
        b *= 2
    options.append((f"{n_train} (all)", n_train))
    return options


def lr_explorer(lr: float = 1.0, bs: int = 256, n_epochs: int = 2, optimizer: str = "sgd", seed: int = 42,
                model: str = "linear", data=None):
    """Sliders for the learning rate, batch size, epochs, optimizer, model and seed of notebook 04's 3-vs-7
    classifier; every change retrains it (`run_experiment`) and redraws the loss and accuracy, the previous
    run kept faint beside it, with a sentence that says what happened. Introduced in notebook 04.

    The defaults retrain in about a tenth of a second on a laptop CPU. Larger runs (bs=1, many epochs) show a
    progress bar and say how long they took.
    """
    ipywidgets = _widgets()
    train_x = _get_data(data)[0]
    n_train = len(train_x)
    _check_args(lr, bs, n_epochs, optimizer, seed, model, n_train)
    options = _batch_size_options(n_train)
    if bs not in [v for _, v in options]:
        options = sorted(options + [(str(bs), bs)], key=lambda o: o[1])
    controls = {
        "lr": ipywidgets.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.1, description="learning rate",
                                        readout_format=".3g", continuous_update=False, style=_STYLE),
        "bs": ipywidgets.SelectionSlider(options=options, value=bs, description="batch size",
                                         continuous_update=False, style=_STYLE),
        "n_epochs": ipywidgets.IntSlider(value=n_epochs, min=1, max=20, description="epochs",
                                         continuous_update=False, style=_STYLE),
        "optimizer": ipywidgets.Dropdown(options=[(v, k) for k, v in OPTIMIZERS.items()], value=optimizer.lower(),
                                         description="optimizer", style=_STYLE),
        "model": ipywidgets.Dropdown(options=[(v, k) for k, v in MODELS.items()], value=model.lower(),
                                     description="model", style=_STYLE),
        "seed": ipywidgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=_STYLE,
                                          layout=ipywidgets.Layout(width="150px")),
    }
    _tag_controls(controls)
    result, plot, progress = _result_html(), _image(), _progress_bar()
    drawer = _LRPlot()

    def update(ex):
        c = {k: w.value for k, w in ex.controls.items()}
        total = c["n_epochs"] * math.ceil(n_train / c["bs"])
        show = total > _PROGRESS_STEPS
        if show:
            ex.progress.max, ex.progress.value = total, 0
            ex.progress.layout.visibility = "visible"
            ex.result.value = f"{_CSS}Training {total} steps…"

        def tick(step, steps):
            ex.progress.value = step

        t0 = time.perf_counter()
        h = run_experiment(lr=float(c["lr"]), bs=int(c["bs"]), n_epochs=int(c["n_epochs"]),
                           optimizer=c["optimizer"], seed=int(c["seed"]), model=c["model"], data=data,
                           progress=tick if show else None)
        t1 = time.perf_counter()
        png = drawer.draw(h, ex.history)
        t2 = time.perf_counter()
        ex.previous, ex.history = ex.history, h
        ex.plot.value = png
        if show:
            ex.progress.layout.visibility = "hidden"
        took = f"took {h.seconds:.2f} s" if h.seconds < 10 else f"took {h.seconds:.0f} s"
        cls = "p2g-bad" if h.status == "diverged" else "p2g-good"
        body = f"<span class='{cls}'>{html.escape(h.message)}</span>"
        ex.result.value = f"{_CSS}{body}<br><small>{html.escape(h.settings)} · {took}</small>"
        ex.summary = f"{h.settings} → {h.message}"
        ex.timings = {"train_ms": 1000 * (t1 - t0), "draw_ms": 1000 * (t2 - t1)}

    top = ipywidgets.HBox([controls["lr"], controls["bs"], controls["n_epochs"]])
    bottom = ipywidgets.HBox([controls["optimizer"], controls["model"], controls["seed"], progress])
    ex = _explorer_class()("lr_explorer", controls, result, plot, progress, update,
                           children=[top, bottom, result, plot])
    return ex.update()


def _bs_figure(rows):
    fig, (a, b, c) = _new_figure((12, 3.4), 3)
    for i, r in enumerate(rows):
        h = r["history"]
        x = np.arange(1, len(h.train_loss) + 1) / h.steps_per_epoch
        k = max(1, len(h.train_loss) // 200)  # smooth very long curves so they stay readable
        y = np.convolve(_finite(h.train_loss), np.ones(k) / k, mode="valid")
        a.plot(x[k - 1:], y, lw=1, color=f"C{i % 10}", label=f"bs {r['bs']}")
    a.set_title("Training loss per epoch of data seen")
    a.set_xlabel("epochs (passes over the training set)")
    a.set_ylabel("train loss (MSE of sigmoid)")
    a.set_ylim(0, None)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    bs = np.array([r["bs"] for r in rows], dtype=float)
    noise = np.array([r["grad_noise"] for r in rows])
    positive = noise > 0
    b.loglog(bs[positive], noise[positive], "o-", color="C0", label="measured ‖g_batch − g_full‖")
    ref_at_1 = noise[0] * math.sqrt(bs[0]) if len(rows) and noise[0] > 0 else None
    if ref_at_1:
        grid = np.logspace(0, math.log10(bs.max()), 50)
        b.loglog(grid, ref_at_1 / np.sqrt(grid), "--", color="0.4", label="∝ 1/sqrt(bs)")
    b.set_title("Noise in the gradient estimate")
    b.set_xlabel("batch size (log scale)")
    b.set_ylabel("mean distance to full gradient")
    b.grid(alpha=0.3, which="both")
    b.legend(fontsize=7)
    c.semilogx(bs, [r["valid_acc"] for r in rows], "o-", color="C2", label="valid accuracy")
    c.set_xlabel("batch size (log scale)")
    c.set_ylabel("valid accuracy", color="C2")
    c.set_title("Accuracy and time per epoch")
    c.grid(alpha=0.3)
    c2 = c.twinx()
    c2.semilogx(bs, [r["seconds_per_epoch"] for r in rows], "s--", color="C3", label="seconds per epoch")
    c2.set_ylabel("seconds per epoch", color="C3")
    fig.tight_layout()
    return _png(fig)


def _bs_table(rows) -> str:
    head = ("<table class='p2g-table'><tr><th>batch size</th><th>steps per epoch</th><th>updates seen</th>"
            "<th>gradient noise</th><th>time per epoch</th><th>valid accuracy</th><th>status</th></tr>")
    body = "".join(
        f"<tr><td>{r['bs']}</td><td>{r['steps_per_epoch']}</td><td>{r['updates']}</td>"
        f"<td>{r['grad_noise']:.4f}</td><td>{r['seconds_per_epoch']:.3f} s</td>"
        f"<td>{r['valid_acc']:.1%}</td><td>{r['status']}</td></tr>"
        for r in rows)
    return f"<style>.p2g-table td, .p2g-table th {{padding: 2px 10px; text-align: right;}}</style>{head}{body}</table>"


def batch_size_explorer(bs_values: Sequence[int] = (4, 16, 64, 256, 1024, 4096), lr: float = 1.0,
                        n_epochs: int = 1, optimizer: str = "sgd", seed: int = 42, model: str = "linear",
                        data=None, run: bool = True):
    """Train the same model at several batch sizes and compare them in a table and three plots: the loss
    per epoch of data, the noise of the mini-batch gradient against 1/sqrt(bs), and accuracy and time per
    epoch. A "Run" button reruns with the learning rate, epochs and optimizer chosen above it.
    Introduced in notebook 04.
    """
    ipywidgets = _widgets()
    n_train = len(_get_data(data)[0])
    for b in bs_values:
        _check_args(lr, b, n_epochs, optimizer, seed, model, n_train)
    controls = {
        "lr": ipywidgets.FloatLogSlider(value=lr, base=10, min=-4, max=1, step=0.1, description="learning rate",
                                        readout_format=".3g", continuous_update=False, style=_STYLE),
        "n_epochs": ipywidgets.IntSlider(value=n_epochs, min=1, max=10, description="epochs",
                                         continuous_update=False, style=_STYLE),
        "optimizer": ipywidgets.Dropdown(options=[(v, k) for k, v in OPTIMIZERS.items()], value=optimizer.lower(),
                                         description="optimizer", style=_STYLE),
    }
    _tag_controls(controls)
    button = ipywidgets.Button(description="Run", button_style="primary")
    button.add_class("p2g-run")
    table = ipywidgets.HTML(value="")
    table.add_class("p2g-table")
    result, plot, progress = _result_html(), _image(), _progress_bar()

    def update(ex):
        c = {k: w.value for k, w in ex.controls.items()}
        ex.progress.max, ex.progress.value = len(bs_values), 0
        ex.progress.layout.visibility = "visible"
        ex.result.value = f"{_CSS}Training at {len(bs_values)} batch sizes…"
        t0 = time.perf_counter()
        rows = compare_batch_sizes(bs_values, lr=float(c["lr"]), n_epochs=int(c["n_epochs"]),
                                   optimizer=c["optimizer"], seed=seed, model=model, data=data,
                                   progress=lambda i, n: setattr(ex.progress, "value", i))
        ex.plot.value = _bs_figure(rows)
        ex.progress.layout.visibility = "hidden"
        table.value = _bs_table(rows)
        best = max(rows, key=lambda r: (np.nan_to_num(r["valid_acc"]), -r["bs"]))
        ex.history, ex.previous = rows, ex.history
        text = (f"lr {float(c['lr']):.3g}, {int(c['n_epochs'])} epoch(s): best valid accuracy {best['valid_acc']:.1%} "
                f"at bs {best['bs']}; the smallest batch took {rows[0]['updates']} updates, the largest "
                f"{rows[-1]['updates']} (took {time.perf_counter() - t0:.1f} s)")
        ex.result.value = f"{_CSS}{html.escape(text)}"
        ex.summary = text

    ex = _explorer_class()("batch_size_explorer", {}, result, plot, progress, update,
                           children=[ipywidgets.HBox(list(controls.values()) + [button, progress]),
                                     result, table, plot])
    ex.controls = controls  # changes wait for the button: each comparison trains several models
    ex.hint = "change the settings and press Run in Jupyter to rerun"
    ex.table = table
    button.on_click(lambda _b: ex.update())
    ex.button = button
    return ex.update() if run else ex


class _QuadPlot:
    """Three panels redrawn per run. The layout (tight_layout, about 40 ms of a redraw) is computed on the
    first draw only: the map's and the fit's limits never change, and the loss panel's ticks barely do.
    """

    def __init__(self):
        self.fig, (self.ax_map, self.ax_loss, self.ax_fit) = _new_figure((12, 3.5), 3)
        self.laid_out = False

    def draw(self, r) -> bytes:
        for ax in (self.ax_map, self.ax_loss, self.ax_fit):
            ax.clear()
        best, path = r["best"], r["path"]
        t = torch.as_tensor(r["t"], dtype=torch.float64)
        speed = torch.as_tensor(r["speed"], dtype=torch.float64)
        start, goal = path[0], np.array([best[0], best[2]])
        lo, hi = np.minimum(start, goal), np.maximum(start, goal)
        pad = (hi - lo) * 0.6 + 1.0
        a_lim, c_lim = (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])
        A, C = torch.meshgrid(torch.linspace(*a_lim, 120, dtype=torch.float64),
                              torch.linspace(*c_lim, 120, dtype=torch.float64), indexing="ij")
        L = _quad_loss_grid(t, float(best[1]), speed, A, C).numpy()
        m = self.ax_map
        m.contour(A.numpy(), C.numpy(), L, levels=np.geomspace(max(L.min(), 1e-6), L.max(), 14), cmap="viridis",
                  linewidths=0.8)
        m.plot(path[:, 0], path[:, 1], ".-", color="C3", lw=1, ms=5, label="gradient descent")
        m.plot(*start, "ko", ms=5, label="start")
        m.plot(*goal, "*", color="gold", mec="k", ms=12, label="minimum")
        m.set_xlim(*a_lim)
        m.set_ylim(*c_lim)
        m.set_title(f"Loss surface (b fixed), lr = {r['lr']:.2g}")
        m.set_xlabel("a (coefficient of t²)")
        m.set_ylabel("c (constant)")
        m.legend(fontsize=7, loc="upper right")
        losses = r["losses"]
        self.ax_loss.semilogy(np.arange(len(losses)), np.clip(losses, 1e-12, 1e12), "o-", ms=3)
        self.ax_loss.axhline(r["best_loss"], color="gold", ls="--", label="best possible")
        self.ax_loss.set_title(f"Loss per step: {r['verdict']}")
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("mean squared error (log scale)")
        self.ax_loss.legend(fontsize=7)
        self.ax_loss.grid(alpha=0.3)
        f = self.ax_fit
        f.scatter(r["time"], r["speed"], s=12, color="k", label="data")
        a, c = path[-1]
        if np.isfinite(a) and np.isfinite(c) and abs(a) < 1e6:
            f.plot(r["time"], a * r["t"] ** 2 + best[1] * r["t"] + c, color="C3", label="after the last step")
        f.set_ylim(min(r["speed"]) - 10, max(r["speed"]) + 10)
        f.set_title("The fit")
        f.set_xlabel("time")
        f.set_ylabel("speed")
        f.legend(fontsize=7)
        if not self.laid_out:
            self.fig.tight_layout()
            self.laid_out = True
        return _png(self.fig)


_QUAD_WORDS = {
    "converged": "converged: the loss reached the bottom of the valley",
    "oscillating": "oscillating: each step jumps across the valley and back (lr is near the edge)",
    "diverged": "diverged: each step overshoots by more than the last, and the loss grows",
    "slow": "still far from the minimum: the steps are too small (raise the learning rate or take more steps)",
}


def quadratic_lr_explorer(time=None, speed=None, lr: float = 0.5, n_steps: int = 30, start=(0.0, 40.0),
                          center: float = 10.0, scale: float = 10.0):
    """A log learning-rate slider over notebook 03's noisy quadratic: each change runs `n_steps` of gradient
    descent on (a, c) of `a t² + b t + c` (`t = (time - center) / scale`, b held at its best value), draws
    every step on the loss surface with the loss per step and the fit, and says "converged", "oscillating",
    "diverged" or too slow. Pass the notebook's `time` and `speed`, or leave them out to use
    `quadratic_data()`. Introduced in notebook 03.
    """
    ipywidgets = _widgets()
    if (time is None) != (speed is None):
        raise ValueError("pass both time and speed (1-D tensors of the same length), or neither.")
    if time is None:
        time, speed = quadratic_data()
    kw = {"time": time, "speed": speed, "start": start, "center": center, "scale": scale}
    edge = quadratic_descent(lr, n_steps, **kw)["max_stable_lr"]  # checks the arguments before any widget
    top = math.ceil(math.log10(edge * 3))
    controls = {
        "lr": ipywidgets.FloatLogSlider(value=lr, base=10, min=top - 4, max=top, step=0.1,
                                        description="learning rate", readout_format=".2g",
                                        continuous_update=False, style=_STYLE),
        "n_steps": ipywidgets.IntSlider(value=n_steps, min=1, max=200, description="steps",
                                        continuous_update=False, style=_STYLE),
    }
    _tag_controls(controls)
    result, plot, progress = _result_html(), _image(), _progress_bar()
    drawer = _QuadPlot()

    def update(ex):
        r = quadratic_descent(float(ex.controls["lr"].value), int(ex.controls["n_steps"].value), **kw)
        ex.plot.value = drawer.draw(r)
        ex.previous, ex.history = ex.history, r
        words = _QUAD_WORDS[r["verdict"]]
        cls = "p2g-good" if r["verdict"] == "converged" else "p2g-bad"
        final = r["losses"][-1]
        loss_text = f"{final:.4g}" if np.isfinite(final) else "inf"
        text = (f"lr {r['lr']:.2g}, {len(r['path']) - 1} steps: {words}. Final loss {loss_text} "
                f"(best possible {r['best_loss']:.4g}); steps above lr ≈ {r['max_stable_lr']:.2g} overshoot "
                f"more each time.")
        ex.result.value = f"{_CSS}<span class='{cls}'>{html.escape(r['verdict'])}</span> — {html.escape(text)}"
        ex.summary = text

    ex = _explorer_class()("quadratic_lr_explorer", controls, result, plot, progress, update,
                           children=[ipywidgets.HBox(list(controls.values())), result, plot])
    return ex.update()
