"""The experiments behind the course's explorers: plain functions that train or descend once and report.

Layer 3 of the helpers package: imports `data`, `train`, `autograd`, `language` and `validate` (its own and lower
layers), never `explorer_plots`
or `widgets`, which sit on top of it. A notebook or a test calls these directly; the explorers of
`helpers.widgets` only put sliders on their keyword arguments.

- `run_experiment(...)` trains the 3-vs-7 classifier of the `three_vs_seven` notebook and returns a `History`.
- `gradient_noise(...)` and `compare_batch_sizes(...)` measure what the batch size changes.
- `quadratic_data()` and `quadratic_descent(...)` are the `gradients` notebook's noisy quadratic and gradient
  descent on it.
- `experiment_data(data)` is the 3-vs-7 data every experiment trains on (loaded once, then cached).
- `temperature_samples(model, temperature, ...)` draws names from the `language_model` notebook's trained
  next-character model at a temperature and measures the entropy of its next-character distributions.
- `attention_patterns(model, name, temperature, ...)` runs the `attention` notebook's tiny GPT on one name and
  returns every head's attention weights, the next-character distribution at every position, and names sampled
  at a temperature.
- `tiny_graph(...)` and `tiny_graph_step(...)` are the `backprop` notebook's one-neuron network, run forward
  and backward with `helpers.autograd.Value`, and one gradient step on its weights.

When a run "diverged" is said once, in `DIVERGENCE_RULE` (built from `BLOWUP_FACTOR` and `DIVERGENCE_WINDOW`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import attention as attn
from . import language
from .autograd import Value, topological_order
from .data import three_vs_seven
from .metrics import binary_accuracy
from .train import batches
from .validate import one_of, positive_int, positive_number

__all__ = [
    "OPTIMIZERS",
    "MODELS",
    "BLOWUP_FACTOR",
    "DIVERGENCE_WINDOW",
    "DIVERGENCE_RULE",
    "divergence_window",
    "QUADRATIC_VERDICTS",
    "History",
    "experiment_data",
    "check_experiment_args",
    "run_experiment",
    "gradient_noise",
    "compare_batch_sizes",
    "quadratic_data",
    "quadratic_descent",
    "quadratic_loss_grid",
    "TEMPERATURE_RANGE",
    "temperature_samples",
    "attention_patterns",
    "GRAPH_RANGE",
    "GRAPH_PARAMS",
    "tiny_graph",
    "tiny_graph_step",
]

OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam"}
MODELS = {"linear": "linear 784→1", "mlp": "MLP 784→30→ReLU→1"}

# The divergence rule, said once. The sigmoid keeps the 3-vs-7 loss below 1, so a too-high learning rate
# shows as the loss rising far above its start and staying there, more often than as inf.
BLOWUP_FACTOR = 1.5
DIVERGENCE_WINDOW = 100
DIVERGENCE_RULE = (
    f"a run diverged when its loss becomes inf/NaN, or when the training loss averaged over the last "
    f"{DIVERGENCE_WINDOW} steps (or one epoch, when an epoch has fewer) reaches {BLOWUP_FACTOR:g}x its first "
    f"value; training stops there, and the step named is the first one in that window above {BLOWUP_FACTOR:g}x"
)


def divergence_window(steps_per_epoch: int) -> int:
    """How many steps the loss is averaged over before a run counts as diverged (see `DIVERGENCE_RULE`):
    `DIVERGENCE_WINDOW`, or one epoch when an epoch is shorter. A blow-up must last, not be one bad batch."""
    return min(DIVERGENCE_WINDOW, positive_int(steps_per_epoch, "steps_per_epoch"))


# What each verdict of `quadratic_descent` means, in words.
QUADRATIC_VERDICTS = {
    "converged": "converged: the loss reached the bottom of the valley",
    "oscillating": "oscillating: each step jumps across the valley and back (lr is near the edge)",
    "diverged": "diverged: each step overshoots by more than the last, and the loss grows",
    "slow": "still far from the minimum: the steps are too small (raise the learning rate or take more steps)",
}

_DATA_CACHE: dict[str, tuple] = {}


# --------------------------------------------------------------------------------------------------
# The pure core: train the 3-vs-7 model once and report what happened.
# --------------------------------------------------------------------------------------------------
@dataclass
class History:
    """What one training run did. Read it as an object (`h.valid_acc`) or a dict (`h["valid_acc"]`).

    `train_loss` has one value per optimizer step; `valid_loss` and `valid_acc` one per finished epoch.
    `status` is "ok" or "diverged" (by `DIVERGENCE_RULE`); when diverged, `diverged_at` is the step (counted
    from 0) where training stopped: the loss became inf/NaN there (`reason="nonfinite"`) or first passed
    `BLOWUP_FACTOR` times its start (`reason="rose"`). Introduced in the `three_vs_seven` notebook.
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


def experiment_data(data=None) -> tuple:
    """The `(train_x, train_y, valid_x, valid_y)` an experiment trains on, as float tensors, images flattened.

    `None` means `helpers.three_vs_seven()`, loaded on the first call and cached for the next ones (call it
    once up front to keep the loading out of a timing); otherwise `data` is checked and returned as floats.
    """
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


def check_experiment_args(lr, bs, n_epochs, optimizer, seed, model, n_train: int) -> None:
    """Raise a ValueError that says what is wrong and how to fix it, for any bad argument of `run_experiment`
    on a training set of `n_train` examples (the explorers call it before they build a widget)."""
    positive_number(lr, "lr", advice="Try 0.1 or 1.0.")
    if lr > 1e38:
        raise ValueError(f"lr={lr:g} does not fit in a float32 (at most about 3.4e38); the slider stops at 10.")
    sizes = f"from 1 to {n_train} (the training set's size), such as 64 or 256"
    if positive_int(bs, "bs (batch size)", example=sizes) > n_train:
        raise ValueError(f"bs (batch size) must be at most the training set's size, {n_train}, got {bs!r}. "
                         f"Typical values: {sizes}.")
    positive_int(n_epochs, "n_epochs", example="1 to 20")
    one_of(optimizer.lower() if isinstance(optimizer, str) else optimizer, "optimizer", OPTIMIZERS)
    one_of(model.lower() if isinstance(model, str) else model, "model", MODELS)
    positive_int(seed, "seed", example="42 or 0", minimum=0)


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

    Same numbers as `loss.backward()` (a test checks it against autograd), with less work per step than autograd
    on this small model: it helps keep a slider change within the explorers' latency goal, which
    benchmarks/slider_latency.py measures (its figures are in benchmarks/results/).
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
    squared error of the sigmoid (the `three_vs_seven` notebook's design); `optimizer` is "sgd", "momentum" (0.9) or "adam"
    (`torch.optim`). Each epoch visits the training set in a new order drawn from a generator seeded with
    `seed` (`helpers.train.batches`), so the same arguments give the same history. The data is
    `helpers.three_vs_seven()` (loaded once, then cached) unless `data=(train_x, train_y, valid_x, valid_y)`.
    `progress(step, total_steps)`, if given, is called every few steps (the explorers drive a progress bar).
    When `DIVERGENCE_RULE` says the run diverged, training stops and `status` says "diverged". (The sigmoid
    keeps this loss below 1, so a too-high learning rate shows up as the loss rising and staying up, e.g. the
    MLP at lr 10 with SGD, rather than as inf; the linear model with SGD trains fine across the whole 1e-4..10
    slider.) Introduced in the `three_vs_seven` notebook.
    """
    train_x, train_y, valid_x, valid_y = experiment_data(data)
    n_train = len(train_x)
    check_experiment_args(lr, bs, n_epochs, optimizer, seed, model, n_train)
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
        window = divergence_window(steps_per_epoch)
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
    replacement: the noise is exactly 0 when the batch is the whole training set). Introduced in the
    `three_vs_seven` notebook.
    """
    train_x, train_y, _, _ = experiment_data(data)
    n = len(train_x)
    bs_values = list(bs_values)
    for b in bs_values:  # before int(): a batch size of 2.5 is an error, not 2
        check_experiment_args(1.0, b, 1, "sgd", seed, model, n)
    bs_values = [int(b) for b in bs_values]
    positive_int(n_draws, "n_draws", example="32")
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

    Introduced in the `three_vs_seven` notebook.
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
# The `gradients` notebook's toy: fit a noisy quadratic by gradient descent, with two parameters so the loss is a map.
# --------------------------------------------------------------------------------------------------


def quadratic_data(seed: int = 42, n: int = 20):
    """The `gradients` notebook's toy: `time = arange(n)` and `speed`, a noisy quadratic with its lowest point at time 7.

    Seeded by its own generator (the same numbers as `set_seed(seed)` followed by `torch.randn(n)`), so it
    never moves the notebook's random stream. Introduced in the `gradients` notebook.
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


def quadratic_loss_grid(t, b_fixed, speed, a_grid, c_grid) -> torch.Tensor:
    """The mean squared error of `a t² + b_fixed t + c` against `speed` at every (a, c) of the grids, in one
    broadcast: the loss surface `quadratic_descent` walks on, for a contour map."""
    pred = a_grid[..., None] * t**2 + b_fixed * t + c_grid[..., None]
    return ((pred - speed) ** 2).mean(-1)


def quadratic_descent(lr: float, n_steps: int = 30, time=None, speed=None, start=(0.0, 40.0),
                      center: float = 10.0, scale: float = 10.0) -> dict:
    """Gradient descent on (a, c) of the `gradients` notebook's model `a t² + b t + c`, `t = (time - center) / scale`,
    with `b` held at its best (least-squares) value so the loss is a map over two numbers; mean squared error.

    Returns the path of (a, c), the loss before each step and after the last, the best (a, b, c) and loss,
    and a verdict: "converged", "oscillating" (each step jumps across the valley), "diverged" (the loss grows)
    or "slow" (still far from the minimum: the steps are too small). `max_stable_lr` is 2 / the largest
    curvature: above it every step overshoots by more than the last. `QUADRATIC_VERDICTS` says each verdict
    in words. Introduced in the `gradients` notebook.
    """
    positive_number(lr, "lr", advice="Try 0.1.")
    n_steps = positive_int(n_steps, "n_steps", example="30")
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
# Sampling names from a next-character model at a temperature (the `language_model` notebook).
# --------------------------------------------------------------------------------------------------
TEMPERATURE_RANGE = (0.1, 5.0)  # the temperature explorer's slider, and its entropy curve


def temperature_samples(model, temperature: float = 1.0, n_names: int = 12, seed: int = 0, known=None,
                        context: int | None = None) -> dict:
    """Draw `n_names` names from a next-character `model` at `temperature` and say how spread out its choices are.

    `model` maps int64 contexts `[batch, context]` to 27 logits (the notebook's `CharMLP`); `context` defaults
    to `model.context`. The draws use a generator seeded with `seed`, so the same seed at another temperature
    uses the same random numbers: what changes between two temperatures is the temperature's doing. Returns a
    dict with
    - `names` (list of str) and `known` (for each name: is it in `known`, e.g. the training names; None without);
    - `first_probs`: the distribution of the first letter at this temperature, `first_probs_t1` at T = 1;
    - `first_entropy`: its entropy in nats (0: certain; `max_entropy` = log 27: uniform);
    - `mean_entropy`: the average entropy of every next-character distribution the names were drawn from
      (each step of each name, the end included);
    - `curve_t`, `curve_entropy`: the first letter's entropy over `TEMPERATURE_RANGE`.
    A temperature of 0 or below raises a ValueError that says why. Introduced in the `language_model` notebook.
    """
    n_names = positive_int(n_names, "n_names", example="12")
    seed = positive_int(seed, "seed", example="0, 1, 2", minimum=0)
    context = language.model_context(model, context, "temperature_samples")
    was_training = getattr(model, "training", False)
    params = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    device = params.device if params is not None else torch.device("cpu")
    with _one_thread(), torch.no_grad():
        if was_training:
            model.eval()
        try:
            first_logits = model(torch.zeros(1, context, dtype=torch.int64, device=device))[0].float().cpu()
            first_probs = language.temperature_probs(first_logits, temperature)  # checks the temperature
            names = language.sample_names(model, n_names, temperature, context=context,
                                          generator=torch.Generator().manual_seed(seed))
            X, _ = language.context_pairs(names, context)
            step_probs = language.temperature_probs(model(X.to(device)).float().cpu(), temperature)
        finally:
            if was_training:
                model.train()
        curve_t = np.geomspace(*TEMPERATURE_RANGE, 60)
        curve_t32 = torch.as_tensor(curve_t, dtype=torch.float32)
        curve = language.entropy(torch.softmax(first_logits[None, :] / curve_t32[:, None], dim=1))
    known_set = set(known) if known is not None else None
    return {
        "temperature": float(temperature), "seed": seed, "names": names,
        "known": [n in known_set for n in names] if known_set is not None else None,
        "first_probs": first_probs, "first_probs_t1": torch.softmax(first_logits, dim=0),
        "first_entropy": float(language.entropy(first_probs)),
        "mean_entropy": float(language.entropy(step_probs).mean()),
        "max_entropy": math.log(language.VOCAB_SIZE),
        "curve_t": curve_t, "curve_entropy": curve.numpy(),
    }


# --------------------------------------------------------------------------------------------------
# Looking inside the tiny GPT of the `attention` notebook.
# --------------------------------------------------------------------------------------------------


def attention_patterns(model, name: str = "emma", temperature: float = 1.0, n_names: int = 8, seed: int = 0) -> dict:
    """Run a trained `TinyGPT` on one name and report what each head looks at and what the model predicts.

    The model reads "." + `name` (lower-case letters; at most `model.context - 1` of them). Returns a dict with
    - `inputs`: the characters read, one per position ('.', then the name), `targets`: what comes next at each;
    - `weights`: float `[layers, heads, T, T]`, row t = how much position t's head attends to each position ≤ t;
    - `probs`: `[T, 27]`, the next-character distribution at every position at `temperature`, and `loss`: the
      name's average cross-entropy (nats per character, at T = 1, the end marker included);
    - `names`: `n_names` names drawn at `temperature` with a generator seeded with `seed` (same seed, same
      random numbers: two temperatures are compared on the same draws).
    A temperature ≤ 0, a character outside a–z or a name too long for the context raise a ValueError that says
    why. Introduced in the `attention` notebook.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'emma', got {type(name).__name__}.")
    name = name.strip().lower()
    if language.MARK in name:
        raise ValueError(f"type the name without the marker '{language.MARK}': the model adds it at the start.")
    n_names = positive_int(n_names, "n_names", example="8")
    seed = positive_int(seed, "seed", example="0, 1, 2", minimum=0)
    language.temperature_probs(torch.zeros(1), temperature)  # checks the temperature, with the reason
    if len(name) + 1 > model.context:
        raise ValueError(f"{name!r} has {len(name)} letters; this model reads at most {model.context - 1} "
                         f"(its context is {model.context} positions, one of them the start marker).")
    X, Y = attn.name_sequences([name], len(name) + 1)
    device = next(model.parameters()).device
    was_training = model.training
    with _one_thread(), torch.no_grad():
        model.eval()
        try:
            logits = model(X.to(device))[0].float().cpu()
            weights = torch.stack([w[0].float().cpu() for w in model.attention_weights()])
            names = attn.generate_names(model, n_names, temperature, generator=torch.Generator().manual_seed(seed))
        finally:
            model.train(was_training)
    return {
        "name": name, "temperature": float(temperature), "seed": seed,
        "inputs": list(language.decode(X[0])), "targets": list(language.decode(Y[0])),
        "weights": weights.numpy(), "probs": language.temperature_probs(logits, temperature).numpy(),
        "loss": float(torch.nn.functional.cross_entropy(logits, Y[0])),
        "names": names,
    }


# --------------------------------------------------------------------------------------------------
# The `backprop` notebook's live graph: one hidden neuron, forward and backward with the hand-made engine.
# --------------------------------------------------------------------------------------------------

GRAPH_RANGE = 3.0  # every input and weight of the graph explorer lies in [-GRAPH_RANGE, GRAPH_RANGE]
GRAPH_PARAMS = ("w1", "w2", "b", "v")  # what a gradient step changes (the inputs x1, x2 stay put)


def _graph_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number between {-GRAPH_RANGE:g} and {GRAPH_RANGE:g}, got {value!r}.")
    value = float(value)
    if not -GRAPH_RANGE <= value <= GRAPH_RANGE:  # also refuses NaN
        raise ValueError(f"{name} = {value:g} is outside the explorer's range [{-GRAPH_RANGE:g}, {GRAPH_RANGE:g}] "
                         f"(its sliders' range); pick a value inside it.")
    return value


def tiny_graph(x1: float = 1.0, x2: float = -0.5, w1: float = 0.5, w2: float = -1.0, b: float = 0.2,
               v: float = -0.5, target: float = 1.0) -> dict:
    """Forward and backward pass of the graph explorer's network, with `helpers.autograd.Value`.

    One hidden neuron and one output: `h = tanh(w1·x1 + w2·x2 + b)`, `ŷ = v·h`, `loss = (ŷ − target)²`.
    Every number must lie in [−3, 3] (`GRAPH_RANGE`, the sliders' range); anything else is a ValueError that
    says so. Returns `{"root", "loss", "prediction", "values", "grads", "settings"}`: the loss `Value` (its
    graph holds every node's value and gradient, in a fixed order), the loss and ŷ as floats, each named
    node's value and gradient by label, and the settings it was called with. Introduced in the `backprop`
    notebook.
    """
    settings = {name: _graph_number(value, name) for name, value in
                (("x1", x1), ("x2", x2), ("w1", w1), ("w2", w2), ("b", b), ("v", v), ("target", target))}
    leaf = {name: Value(value, label=name) for name, value in settings.items() if name != "target"}
    p1 = leaf["w1"] * leaf["x1"]
    p1.label = "w1·x1"
    p2 = leaf["w2"] * leaf["x2"]
    p2.label = "w2·x2"
    s = p1 + p2
    s.label = "sum"
    z = s + leaf["b"]
    z.label = "z"
    h = z.tanh()
    h.label = "h"
    y_hat = leaf["v"] * h
    y_hat.label = "ŷ"
    err = y_hat + Value(-settings["target"], label="−target")
    err.label = "ŷ − target"
    loss = err ** 2
    loss.label = "loss"
    loss.backward()
    nodes = topological_order(loss)
    return {"root": loss, "loss": loss.data, "prediction": y_hat.data,
            "values": {n.label: n.data for n in nodes}, "grads": {n.label: n.grad for n in nodes},
            "settings": settings}


def tiny_graph_step(lr: float = 0.1, **settings) -> tuple[dict, list[str]]:
    """One gradient-descent step on the weights of `tiny_graph`: each of `GRAPH_PARAMS` moves by −lr × its
    gradient; the inputs and the target stay. A weight that would leave [−3, 3] stops at the edge.

    Returns the new settings and the names of the weights held at the edge. Introduced in the `backprop`
    notebook.
    """
    positive_number(lr, "lr", advice="Try 0.1.")
    g = tiny_graph(**settings)
    new, held = dict(g["settings"]), []
    for name in GRAPH_PARAMS:
        moved = new[name] - lr * g["grads"][name]
        if abs(moved) > GRAPH_RANGE:
            held.append(name)
            moved = math.copysign(GRAPH_RANGE, moved)
        new[name] = moved
    return new, held
