"""Bug detectors for a training loop: run them on your own loop and read what they find.

Layer 3 of the helpers package: may import `env`, `plots`, `exercises`, `data`, `results`; never `train`,
`optim` or `widgets`. Introduced in the `bug_zoo` notebook, where every bug is first met as a runnable
experiment and `outputs_sum_to_one` is built by hand.

Each detector returns a `Report`: a list of `Finding`s, each saying *what* looks wrong, *why* it matters and
how to *fix* it. An empty report means that detector found nothing. Printing a report gives one block per
finding; `report.fired` is the set of detector names that fired (the notebook's bug × detector table).

    report = check_training_step(model, loss_fn, opt, (xb, yb), step_fn=my_step)
    check_eval_mode(model, expect="eval")          # before measuring validation accuracy
    check_shuffling(batches(n, bs), labels=train_y)  # does the order of the examples mix the classes?
    check_overlap(train_x, valid_x)                  # is the validation set really unseen?
    check_causal(model, x)                           # does a sequence model read the future?
    test = GuardedTestSet(test_x, test_y)            # score models on the test set through it ...
    check_test_set(test)                             # ... and it says whether choices were made on it

`run_detectors` runs all of them on one setup and returns one report; `detectors_by_scenario` runs it on every
scenario of a list (a correct setting and what each bug changes), and `detector_table` (a pandas table) or
`helpers.plots.plot_detector_grid` (a picture) shows the bug × detector table of the `bug_zoo` notebook.

`check_training_step` trains on a copy of nothing: it snapshots the model's weights, the optimizer's state,
the gradients and the random number generator, runs your step, and puts everything back, so calling it never
changes what your notebook computes afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from helpers.validate import positive_int

__all__ = [
    "Finding",
    "Report",
    "standard_step",
    "outputs_sum_to_one",
    "check_targets",
    "check_outputs",
    "check_training_step",
    "check_eval_mode",
    "check_shuffling",
    "check_overlap",
    "check_causal",
    "GuardedTestSet",
    "check_test_set",
    "run_detectors",
    "detector_table",
    "detectors_by_scenario",
    "DETECTORS",
]

# Every detector name a report can contain, with a one-line description (the notebook's table uses them).
DETECTORS = {
    "accumulating_gradients": "gradients pile up across steps (no zero_grad)",
    "target_dtype": "targets have the wrong dtype for the loss",
    "target_shape": "targets and outputs have shapes that do not fit (or silently broadcast)",
    "target_range": "class indices outside 0..C-1",
    "softmax_before_loss": "outputs are already probabilities for a loss that wants logits",
    "relu_before_loss": "outputs are never negative for a loss that wants logits (a ReLU after the last layer)",
    "loss_not_falling": "loss does not fall when training on one repeated batch",
    "nan_loss": "loss is NaN or infinite",
    "loss_error": "computing the loss raised an error",
    "step_error": "the training step raised an error",
    "params_unchanged": "the training step does not change the parameters",
    "no_gradient": "parameters that get no gradient",
    "optimizer_params": "the optimizer does not hold the model's parameters",
    "mode": "model in the wrong train/eval mode",
    "unshuffled": "batches come in long runs of one label",
    "overlap": "validation examples that are also training examples",
    "future_leak": "a sequence model's prediction changes when a later token changes (no causal mask)",
    "test_set_tuning": "several models were scored on the test set: a choice was made on it",
}

_SENTINEL = 1.0e4  # planted in .grad before one step: a step that never zeroes the gradients keeps it


@dataclass
class Finding:
    """One problem: which detector saw it, what it saw, why that matters, and how to fix it."""

    detector: str
    what: str
    why: str
    fix: str

    def __str__(self) -> str:
        return f"⚠️  [{self.detector}] {self.what}\n    why: {self.why}\n    fix: {self.fix}"


@dataclass
class Report:
    """What one or more detectors found. Empty (falsy `findings`, `ok` True) when nothing looked wrong."""

    title: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, detector: str, what: str, why: str, fix: str) -> None:
        if detector not in DETECTORS:  # a typo here would make a detector silently untestable
            raise ValueError(f"unknown detector name {detector!r}; known: {', '.join(DETECTORS)}")
        self.findings.append(Finding(detector, what, why, fix))

    def extend(self, other: "Report") -> None:
        self.findings += other.findings
        self.notes += other.notes

    @property
    def ok(self) -> bool:
        """True when no detector fired."""
        return not self.findings

    @property
    def fired(self) -> set[str]:
        """The names of the detectors that found something."""
        return {f.detector for f in self.findings}

    def __contains__(self, detector: str) -> bool:
        return detector in self.fired

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self):
        return iter(self.findings)

    def __str__(self) -> str:
        if self.ok:
            lines = [f"✅ {self.title}: no problems found."]
        else:
            n = len(self.findings)
            lines = [f"❌ {self.title}: {n} problem{'s' if n > 1 else ''} found."]
            lines += [str(f) for f in self.findings]
        lines += [f"ℹ️  {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the readable form
        p.text(str(self))


# --------------------------------------------------------------------------------------------- helpers


def standard_step(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer, batch) -> torch.Tensor:
    """The correct training step: zero the gradients, forward, loss, backward, step. Returns the loss.

    This is the default `step_fn` of `check_training_step`; write yours with the same signature.
    """
    x, y = batch
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def outputs_sum_to_one(outputs: torch.Tensor, atol: float = 1e-3) -> bool:
    """True when every row of `outputs` lies in [0, 1] and sums to one: they are probabilities already.

    Built by hand in the `bug_zoo` notebook (the softmax-before-cross-entropy bug).
    """
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2:
        raise ValueError(
            f"outputs_sum_to_one expects a 2-D tensor [N, classes], got {getattr(outputs, 'shape', type(outputs))}."
        )
    o = outputs.detach().float()
    in_range = bool(((o >= 0) & (o <= 1)).all())
    return in_range and bool(torch.allclose(o.sum(dim=1), torch.ones(len(o), device=o.device), atol=atol))


def _loss_kind(loss_fn) -> str:
    """Which family a loss belongs to: 'ce', 'nll', 'bce_logits', 'bce', 'regression' or 'custom'."""
    table = [
        ("ce", (nn.CrossEntropyLoss,), (F.cross_entropy,)),
        ("nll", (nn.NLLLoss,), (F.nll_loss,)),
        ("bce_logits", (nn.BCEWithLogitsLoss,), (F.binary_cross_entropy_with_logits,)),
        ("bce", (nn.BCELoss,), (F.binary_cross_entropy,)),
        ("regression", (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss),
         (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss)),
    ]
    for kind, classes, functions in table:
        if isinstance(loss_fn, classes) or any(loss_fn is f for f in functions):
            return kind
    return "custom"


def _require_tensor(name: str, value, where: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a tensor, got {type(value).__name__}.")


def _unpack_batch(batch, where: str):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"{where} expects batch=(x, y), a tuple of two tensors (inputs and targets), got "
            f"{type(batch).__name__}{'' if not isinstance(batch, (tuple, list)) else f' of length {len(batch)}'}."
        )
    x, y = batch
    _require_tensor("x (batch[0])", x, where)
    _require_tensor("y (batch[1])", y, where)
    if len(x) != len(y):
        raise ValueError(f"{where}: the batch has {len(x)} inputs but {len(y)} targets; they must match.")
    if len(x) < 2:
        raise ValueError(f"{where}: give a batch of at least 2 examples (got {len(x)}); 32-128 works best.")
    return x, y


# ------------------------------------------------------------------------------------ static detectors


def check_targets(outputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> Report:
    """Look at the targets a loss gets beside the model's outputs: dtype, shape, range.

    Fires `target_dtype` (float class indices for cross-entropy, integer targets for BCE or MSE),
    `target_shape` (shapes that do not fit, or that broadcast to a bigger tensor such as [N, 1] against [N]),
    `target_range` (class indices outside 0..C-1).
    """
    _require_tensor("outputs", outputs, "check_targets")
    _require_tensor("targets", targets, "check_targets")
    if not callable(loss_fn):
        raise TypeError(f"check_targets: loss_fn must be callable (e.g. nn.CrossEntropyLoss()), got {loss_fn!r}.")
    report = Report("check_targets")
    kind = _loss_kind(loss_fn)
    out, y = outputs.detach(), targets.detach()
    if kind in ("ce", "nll"):
        if out.ndim != 2:
            report.add("target_shape", f"the outputs have shape {tuple(out.shape)}, not [N, classes]",
                       "cross-entropy scores every class for every example: it needs one row of C logits per example",
                       "make the last layer output C numbers per example, e.g. nn.Linear(hidden, 10)")
            return report
        if y.is_floating_point():
            if y.shape == out.shape:  # soft labels (class probabilities) are allowed
                if not torch.allclose(y.float().sum(1), torch.ones(len(y), device=y.device), atol=1e-3):
                    report.add("target_dtype", "float targets of shape [N, C] whose rows do not sum to one",
                               "float targets of the outputs' shape are read as class probabilities",
                               "pass class indices as a LongTensor of shape [N] (y.long()), or rows that sum to 1")
            else:
                report.add("target_dtype", f"float targets of shape {tuple(y.shape)} for a cross-entropy loss",
                           "cross-entropy reads class indices only from an integer (long) tensor; float targets must "
                           "be class probabilities of shape [N, C], so this raises an error (or means something else)",
                           "turn the labels into class indices: y = y.long()")
            return report
        if y.ndim != 1:
            report.add("target_shape", f"integer targets of shape {tuple(y.shape)}, expected [N] = [{len(out)}]",
                       "cross-entropy wants one class index per example, in a 1-D tensor",
                       "flatten them: y = y.reshape(-1) (or y.squeeze(1))")
            return report
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
            report.add("target_range", f"class indices from {int(y.min())} to {int(y.max())}, but the model "
                       f"outputs only {out.shape[1]} classes (0..{out.shape[1] - 1})",
                       "each target indexes a column of the outputs; an index past the end is an error (or a crash "
                       "on the GPU)",
                       "map the labels to 0..C-1 (e.g. 3→1, 7→0) or give the last layer more outputs")
        return report
    if (kind == "custom" and not y.is_floating_point() and not y.is_complex() and out.ndim == y.ndim + 1
            and out.shape[:-1] == y.shape and out.ndim >= 3):
        # a sequence model's class indices, one per position ([batch, T] against [batch, T, C] logits): a loss of
        # its own (e.g. `helpers.attention.sequence_loss`) flattens them; nothing here compares them element-wise
        return report
    # every other loss compares outputs and targets element by element
    if kind in ("bce", "bce_logits", "regression") and not y.is_floating_point():
        loss_name = type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else loss_fn.__name__
        report.add("target_dtype", f"{y.dtype} targets for {loss_name}",
                   "this loss subtracts or multiplies outputs and targets element by element and needs float targets",
                   "convert them: y = y.float()")
    if out.shape != y.shape:
        try:
            full = torch.broadcast_shapes(out.shape, y.shape)
        except RuntimeError:
            full = None
        if full is None:
            report.add("target_shape", f"outputs of shape {tuple(out.shape)} and targets of shape {tuple(y.shape)} "
                       "do not broadcast", "the loss compares them element by element, so this fails",
                       "make them the same shape, e.g. outputs.squeeze(1) or y.unsqueeze(1)")
        elif math.prod(full) > max(out.numel(), y.numel()):
            report.add("target_shape", f"outputs of shape {tuple(out.shape)} against targets of shape "
                       f"{tuple(y.shape)} broadcast to {tuple(full)}",
                       "broadcasting silently compares every output with every target, so the loss no longer "
                       "matches each prediction with its own label and the model learns (almost) nothing",
                       "make the shapes equal: outputs.squeeze(1) (or y.unsqueeze(1)) before the loss")
    return report


def check_outputs(outputs: torch.Tensor, loss_fn) -> Report:
    """Look at what the model gives the loss: probabilities where logits are expected, or the reverse.

    Fires `softmax_before_loss` when the rows already sum to one for cross-entropy, when every output lies in
    [0, 1] for BCEWithLogitsLoss, or when NLLLoss gets something other than log-probabilities; and
    `relu_before_loss` when cross-entropy or BCEWithLogitsLoss gets (at least 8) outputs none of which is
    negative: raw logits of a working model are negative for the classes it rules out, so outputs that never are
    have been through a ReLU (or another non-negative function) after the last layer.
    """
    _require_tensor("outputs", outputs, "check_outputs")
    report = Report("check_outputs")
    kind = _loss_kind(loss_fn)
    out = outputs.detach().float()
    if kind == "ce" and out.ndim == 2 and outputs_sum_to_one(out):
        report.add("softmax_before_loss", "the outputs are already probabilities (each row sums to one)",
                   "cross-entropy applies its own (log-)softmax; a second softmax squeezes every score into [0, 1], "
                   "so the loss can never get near 0 and the gradients shrink: training crawls",
                   "remove the softmax from the model (nn.Softmax / .softmax(1)) and feed raw logits to the loss")
    elif kind in ("ce", "bce_logits") and out.numel() >= 8 and bool((out >= 0).all()) \
            and not (kind == "bce_logits" and bool((out <= 1).all())):  # all in [0, 1]: the sigmoid, below
        report.add("relu_before_loss", f"no output is negative ({float((out == 0).float().mean()):.0%} of them are "
                   "exactly 0): the logits went through a ReLU (or another function that is never negative)",
                   "the loss wants logits, which go below 0 for what the model rules out; a ReLU clips every negative "
                   "score to 0, where its gradient is 0, so a wrong class can never be pushed below 0, and a clipped "
                   "right class gets no signal at all. Training often still works, which is why this bug ships",
                   "remove the activation after the last layer (an nn.ReLU at the end of the nn.Sequential) and feed "
                   "the raw scores to the loss")
    elif kind == "nll" and out.ndim == 2:
        if outputs_sum_to_one(out):
            report.add("softmax_before_loss", "NLLLoss gets probabilities, not log-probabilities",
                       "NLLLoss only picks -output[target]; it expects log_softmax outputs",
                       "use log_softmax instead of softmax, or drop it and use nn.CrossEntropyLoss")
        elif not torch.allclose(out.exp().sum(1), torch.ones(len(out), device=out.device), atol=1e-3):
            report.add("softmax_before_loss", "NLLLoss gets raw scores, not log-probabilities",
                       "without log_softmax, NLLLoss can push one score to -inf and the loss has no floor",
                       "add .log_softmax(dim=1), or feed the raw scores to nn.CrossEntropyLoss instead")
    elif kind == "bce_logits" and out.numel() >= 8 and bool(((out >= 0) & (out <= 1)).all()):
        report.add("softmax_before_loss", "every output lies in [0, 1]: it looks like a sigmoid was applied already",
                   "BCEWithLogitsLoss applies its own sigmoid; a second one squeezes the predictions to (0.5, 0.73)",
                   "remove the sigmoid from the model, or use nn.BCELoss on probabilities")
    elif kind == "bce" and not bool(((out >= 0) & (out <= 1)).all()):
        report.add("softmax_before_loss", "BCELoss gets values outside [0, 1] (logits, not probabilities)",
                   "BCELoss takes log(p) and log(1-p), which only exist for probabilities",
                   "use nn.BCEWithLogitsLoss on the raw outputs (safer), or apply a sigmoid first")
    return report


# ------------------------------------------------------------------------------- the training step

_KNOWN_ERRORS = [
    ("leaf Variable that requires grad is being used in an in-place operation",
     "a parameter was changed in place (e.g. `weights -= lr * weights.grad`) while autograd was recording",
     "wrap hand-written updates in `with torch.no_grad():`, or let optimizer.step() do them"),
    ("expected target dtype to be Long",
     "cross-entropy got float targets where it needs class indices",
     "pass y.long()"),
    ("expected scalar type Long",
     "a loss got float targets where it needs class indices",
     "pass y.long()"),
    ("Target size",
     "the targets' shape differs from the outputs' shape",
     "reshape one of them (outputs.squeeze(1) or y.unsqueeze(1))"),
    ("multi-target not supported",
     "cross-entropy got targets of shape [N, 1]",
     "flatten them: y.reshape(-1)"),
    ("can't be cast to the desired output type",
     "integer targets met float outputs in a loss that needs floats",
     "pass y.float()"),
    ("backward through the graph a second time",
     "the step reuses a graph that a previous backward() already freed (a tensor computed outside the step)",
     "compute everything that needs gradients inside the step, or .detach() what you carry over"),
    ("does not require grad and does not have a grad_fn",
     "the loss is not connected to any parameter (computed under no_grad, or from detached tensors)",
     "compute the loss with gradients on, from the model's outputs"),
]


def _explain_error(err: BaseException) -> tuple[str, str]:
    message = str(err)
    for needle, why, fix in _KNOWN_ERRORS:
        if needle in message:
            return why, fix
    return ("the step cannot run, so nothing else about it can be checked",
            "read the last line of the traceback (run your step once on its own to see it)")


class _Snapshot:
    """Weights, buffers, optimizer state, gradients, mode and RNG state, to put back after an experiment."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.model_state = copy.deepcopy(model.state_dict())
        self.opt_state = copy.deepcopy(optimizer.state_dict())
        self.grads = {p: (None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()}
        self.modes = {m: m.training for m in model.modules()}
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        with torch.no_grad():
            self.model.load_state_dict(self.model_state)
        self.optimizer.load_state_dict(copy.deepcopy(self.opt_state))
        for p, g in self.grads.items():
            p.grad = None if g is None else g.clone()
        for m, mode in self.modes.items():
            m.training = mode
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


@contextlib.contextmanager
def _restored_afterwards(model: nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[Callable[[], None]]:
    """Snapshot the model and the optimizer (see `_Snapshot`); put them back on exit, even when an exception
    leaves the block. Yields the `restore` function, so an experiment can also start afresh in between."""
    snapshot = _Snapshot(model, optimizer)
    try:
        yield snapshot.restore
    finally:
        snapshot.restore()


def _mode_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    kinds = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
    return [(name or type(model).__name__, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def _check_train_mode(report: Report, model: nn.Module, layers: list[tuple[str, nn.Module]]) -> None:
    """Add a `mode` finding when the model (or any of its dropout / batch-norm layers) is not in training mode."""
    wrong = [name for name, m in layers if not m.training]
    if layers and not model.training and not wrong:  # model.training set off by hand, its layers still on
        wrong = [type(model).__name__]
    if wrong:
        report.add("mode", f"the model is in eval mode during training ({', '.join(wrong[:3])} "
                   f"{'is' if len(wrong) == 1 else 'are'} not training)",
                   "in eval mode dropout does nothing and batch norm stops learning its statistics, so the "
                   "model trains without its regularisation",
                   "call model.train() at the start of every epoch (after any evaluation)")


def _loss_value(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass
class _Trial:
    """What every phase of `check_training_step` works on, and the report they all add to."""

    model: nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    step_fn: Callable
    n_steps: int
    min_drop: float
    report: Report

    @property
    def trainable(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]


# Each phase adds its findings to `t.report`; one that returns False ends the check (the later phases could only
# repeat its error). `check_training_step` puts the model and optimizer back as they were before every phase.


def _phase_mode(t: _Trial) -> bool:
    """Dropout and batch norm must be in training mode while training (`mode`)."""
    _check_train_mode(t.report, t.model, _mode_layers(t.model))
    return True


def _phase_optimizer_params(t: _Trial) -> bool:
    """Does the optimizer hold every trainable parameter of the model (`optimizer_params`)?"""
    held = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
    missing = [n for n, p in t.model.named_parameters() if p.requires_grad and id(p) not in held]
    if missing:
        t.report.add("optimizer_params", f"{len(missing)} of the model's parameters are not in the optimizer "
                     f"({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''})",
                     "the optimizer only updates the tensors it was given; a model created (or re-created) after "
                     "the optimizer trains nothing",
                     "create the optimizer after the model: opt = torch.optim.SGD(model.parameters(), lr=lr)")
    return True


def _phase_outputs_and_targets(t: _Trial) -> bool:
    """The outputs and the targets, without gradients (`check_targets`, `check_outputs`)."""
    with torch.no_grad():
        outputs = t.model(t.x)
    if isinstance(outputs, torch.Tensor):
        t.report.extend(check_targets(outputs, t.y, t.loss_fn))
        t.report.extend(check_outputs(outputs, t.loss_fn))
    return True


def _phase_gradients(t: _Trial) -> bool:
    """One clean backward of our own: is the loss finite (`nan_loss`), which parameters get a gradient
    (`no_gradient`)? A loss that raises (`loss_error`) ends the check."""
    for p in t.model.parameters():
        p.grad = None
    try:
        loss = t.loss_fn(t.model(t.x), t.y)
        loss.backward()
    except Exception as err:  # noqa: BLE001 - a learner's loss can raise anything; explain it
        why, fix = _explain_error(err)
        t.report.add("loss_error", f"loss_fn(model(x), y) raised {type(err).__name__}: {err}", why, fix)
        return False
    if not torch.isfinite(loss.detach()).all():
        t.report.add("nan_loss", f"the loss of the first batch is already {float(loss.detach()):.4g}",
                     "a NaN or infinite loss makes every gradient NaN, and one NaN step ruins every weight",
                     "look for log(0), division by zero, or inputs that were not scaled (pixels 0..255)")
    frozen = [n for n, p in t.model.named_parameters() if not p.requires_grad]
    unused = [n for n, p in t.model.named_parameters() if p.requires_grad and p.grad is None]
    if frozen:
        t.report.add("no_gradient", f"{len(frozen)} parameters have requires_grad=False ({', '.join(frozen[:3])})",
                     "they never change; fine if you froze them on purpose (fine-tuning), a bug otherwise",
                     "p.requires_grad_(True) for the parameters you want trained")
    if unused:
        t.report.add("no_gradient", f"{len(unused)} parameters get no gradient ({', '.join(unused[:3])})",
                     "the loss does not depend on them: a layer defined in __init__ but never used in forward, "
                     "or a path cut by .detach() / torch.no_grad()",
                     "use the layer in forward (or delete it), and keep the path from parameters to loss unbroken")
    return True


def _phase_one_step(t: _Trial) -> bool:
    """One step of `step_fn` with a planted gradient: a step that zeroes the gradients throws it away
    (`accumulating_gradients` when it stays), a step must move the weights (`params_unchanged`). A step that
    raises (`step_error`) ends the check."""
    trainable, params = t.trainable, list(t.model.parameters())
    for p in trainable:
        p.grad = torch.full_like(p, _SENTINEL)
    before = [p.detach().clone() for p in params]
    try:
        t.step_fn(t.model, t.loss_fn, t.optimizer, (t.x, t.y))
    except Exception as err:  # noqa: BLE001
        why, fix = _explain_error(err)
        t.report.add("step_error", f"your training step raised {type(err).__name__}: {err}", why, fix)
        return False
    kept = [p.grad for p in trainable if p.grad is not None]
    if kept:
        near = sum(int(((g - _SENTINEL).abs() < _SENTINEL / 2).sum()) for g in kept)
        total = sum(g.numel() for g in kept)
        if near > 0.9 * total:
            t.report.add("accumulating_gradients", "the gradients from before the step were still there after it "
                         "(the step adds to .grad and never zeroes it)",
                         "backward() adds to .grad; without zero_grad() each step follows the sum of all past "
                         "gradients, which grows step after step and overshoots",
                         "call optimizer.zero_grad() before loss.backward() in every step")
    if trainable and all(torch.equal(p.detach(), b) for p, b in zip(params, before)):
        t.report.add("params_unchanged", "no parameter changed during the step",
                     "a step that does not move the weights does not train: optimizer.step() is missing, lr=0, "
                     "the optimizer holds other tensors, or zero_grad() runs between backward() and step() and "
                     "clears the gradients before step() can use them",
                     "keep the order zero_grad(), forward + loss, backward(), step(), with lr > 0 and an optimizer "
                     "built from model.parameters()")
    return True


def _phase_one_batch(t: _Trial) -> bool:
    """Overfit one batch: `n_steps` steps on it must drive the loss down by `min_drop` (`loss_not_falling`)
    and keep it finite (`nan_loss`); a step that raises is a `step_error`."""
    for p in t.model.parameters():
        p.grad = None
    losses: list[float] = []
    for _ in range(t.n_steps):
        try:
            value = _loss_value(t.step_fn(t.model, t.loss_fn, t.optimizer, (t.x, t.y)))
        except Exception as err:  # noqa: BLE001 - e.g. a loss that turns NaN and then crashes
            why, fix = _explain_error(err)
            t.report.add("step_error", f"step {len(losses) + 1} of the one-batch test raised "
                         f"{type(err).__name__}: {err}", why, fix)
            return False
        if value is None:  # the step returned nothing: measure the loss ourselves
            with torch.no_grad():
                value = float(t.loss_fn(t.model(t.x), t.y))
        losses.append(value)
        if not math.isfinite(value):
            break
    if not all(math.isfinite(v) for v in losses):
        bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        t.report.add("nan_loss", f"the loss became {losses[bad]} at step {bad + 1} of {t.n_steps} on one batch "
                     f"(it started at {losses[0]:.3g})",
                     "the updates overshoot and the weights blow up; once a NaN appears it spreads to every weight",
                     "lower the learning rate (try 10x smaller), and check the inputs are scaled to about [0, 1]")
    else:
        end = min(losses[-3:])
        if end > losses[0] * (1 - t.min_drop):
            t.report.add("loss_not_falling", f"on one repeated batch the loss went from {losses[0]:.3g} to "
                         f"{end:.3g} in {t.n_steps} steps (less than a {t.min_drop:.0%} drop)",
                         "any working model and loop can memorise a single batch; if it cannot, the loop, the "
                         "loss or the learning rate is wrong",
                         "fix the other findings first; then try a learning rate 10x smaller and 10x larger")
    t.report.notes.append(f"one-batch test: loss {losses[0]:.3g} → {losses[-1]:.3g} in {len(losses)} steps")
    return True


_PHASES = (_phase_mode, _phase_optimizer_params, _phase_outputs_and_targets, _phase_gradients, _phase_one_step,
           _phase_one_batch)


def check_training_step(
    model: nn.Module,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    batch,
    step_fn: Callable | None = None,
    n_steps: int = 50,
    min_drop: float = 0.3,
    verbose: bool = True,
) -> Report:
    """Run every training-step detector on `step_fn(model, loss_fn, optimizer, batch)`; print and return the report.

    `step_fn` is your own training step (default: `standard_step`, the correct one); it may return the loss.
    The detectors: the mode (`mode`: dropout/batch-norm layers left in eval mode), the targets and the outputs
    (`check_targets`, `check_outputs`), parameters that get no gradient (`no_gradient`) or that the optimizer
    does not hold (`optimizer_params`), one step with a planted gradient (`accumulating_gradients` when the
    step keeps it, `params_unchanged` when nothing moves, `step_error` when it raises), and `n_steps` steps on
    this one batch (`nan_loss`; `loss_not_falling` unless the loss drops by at least `min_drop`, i.e. 30 %).
    Every phase starts from the model and optimizer as they were passed in, and they are restored afterwards
    (weights, optimizer state, gradients, modes, random state), even if your step raises something unexpected.
    Introduced in the `bug_zoo` notebook.
    """
    where = "check_training_step"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where}: model must be an nn.Module, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError(f"{where}: loss_fn must be callable, e.g. nn.CrossEntropyLoss(), got {loss_fn!r}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"{where}: optimizer must be a torch.optim.Optimizer (e.g. torch.optim.SGD(model.parameters(), lr=0.1)), "
            f"got {type(optimizer).__name__}."
        )
    x, y = _unpack_batch(batch, where)
    step_fn = standard_step if step_fn is None else step_fn
    if not callable(step_fn):
        raise TypeError(f"{where}: step_fn must be a function step_fn(model, loss_fn, optimizer, batch), got {step_fn!r}.")
    n_steps = positive_int(n_steps, f"{where}: n_steps", example="50 (the default)", minimum=2)
    if not 0 < min_drop < 1:
        raise ValueError(f"{where}: min_drop is a fraction of the first loss, between 0 and 1; got {min_drop!r}.")

    trial = _Trial(model, loss_fn, optimizer, x, y, step_fn, n_steps, min_drop, Report(where))
    try:
        with _restored_afterwards(model, optimizer) as restore:
            for phase in _PHASES:
                restore()
                if not phase(trial):
                    break
    finally:
        if verbose:
            print(trial.report)
    return trial.report


# --------------------------------------------------------------------------------------- evaluation


def check_eval_mode(model: nn.Module, expect: str = "eval", x: torch.Tensor | None = None) -> Report:
    """Check the model's mode before evaluating (`expect="eval"`) or training (`expect="train"`).

    Looks at every dropout and batch-norm layer. With an input `x`, also runs a copy of the model twice on it:
    in eval mode the two answers must be equal (this catches hand-made dropout layers as well).
    Prints nothing; returns a `Report` (detector `mode`). Introduced in the `bug_zoo` notebook.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"check_eval_mode: model must be an nn.Module, got {type(model).__name__}.")
    if expect not in ("eval", "train"):
        raise ValueError(f"check_eval_mode: expect must be 'eval' (before measuring) or 'train', got {expect!r}.")
    if x is not None:
        _require_tensor("x", x, "check_eval_mode")
    report = Report(f"check_eval_mode(expect={expect!r})")
    layers = _mode_layers(model)
    if expect == "eval":
        wrong = [name for name, m in layers if m.training]
        if wrong:
            report.add("mode", f"evaluating with {len(wrong)} layer(s) in training mode ({', '.join(wrong[:3])})",
                       "in training mode dropout zeroes random activations and batch norm uses the batch's own "
                       "statistics (and updates its running ones), so the metric is noisy and pessimistic",
                       "call model.eval() before evaluating (and model.train() before training again)")
        elif x is not None:
            probe = copy.deepcopy(model)
            state = torch.get_rng_state()
            with torch.no_grad():
                a, b = probe(x), probe(x)
            torch.set_rng_state(state)
            if isinstance(a, torch.Tensor) and not torch.equal(a, b):
                report.add("mode", "the same input gives two different outputs: something random is still on",
                           "a layer of your own (e.g. a hand-made dropout) ignores self.training, or the model is "
                           "still in training mode",
                           "call model.eval(), and make random layers do nothing when self.training is False")
    else:
        _check_train_mode(report, model, layers)
    if not layers:
        report.notes.append("the model has no dropout or batch-norm layers: train and eval mode compute the same thing")
    return report


def check_shuffling(batches: Iterable, labels: torch.Tensor | None = None, max_batches: int | None = None) -> Report:
    """See whether the order in which batches arrive mixes the classes, or comes in long runs of one label.

    `batches` is a DataLoader or any iterable of `(x, y)` batches, or of index tensors (as from
    `helpers.train.batches`) together with `labels`, the full label tensor they index. Fires `unshuffled`
    when the longest run of one label is far longer than a shuffled order would give. `max_batches` (a positive
    whole number, or None for all) stops early on a long loader. Introduced in the `bug_zoo` notebook.
    """
    if labels is not None:
        _require_tensor("labels", labels, "check_shuffling")
    if max_batches is not None:
        max_batches = positive_int(max_batches, "check_shuffling: max_batches", example="20, or None for every batch")
    try:
        iterator = iter(batches)
    except TypeError:
        raise TypeError(
            f"check_shuffling expects an iterable of batches (a DataLoader, a list of (x, y), or index tensors), "
            f"got {type(batches).__name__}."
        ) from None
    seen, per_batch = [], []
    for i, item in enumerate(iterator):
        if max_batches is not None and i >= max_batches:
            break
        if isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[1], torch.Tensor):
            y = item[1]
        elif isinstance(item, torch.Tensor) and not item.is_floating_point() and item.dtype != torch.bool:
            if labels is None:
                raise ValueError(
                    "check_shuffling got index tensors but no labels: pass the labels they index, "
                    "e.g. check_shuffling(batches(len(train_y), bs), labels=train_y)."
                )
            y = labels[item.to(labels.device)]
        else:
            raise TypeError(
                f"check_shuffling: batch {i} is {type(item).__name__}; expected (x, y) or a tensor of indices."
            )
        y = y.detach().reshape(-1).cpu()
        if y.is_floating_point() and not bool((y == y.round()).all()):
            raise ValueError("check_shuffling needs class labels (whole numbers), not continuous targets.")
        seen.append(y)
        per_batch.append(len(y.unique()) == 1)
    if not seen:
        raise ValueError("check_shuffling got no batches: is the loader or the list empty?")
    seq = torch.cat(seen)
    if len(seq) < 2:
        raise ValueError("check_shuffling needs at least 2 labels to judge an order.")
    pool = labels.detach().reshape(-1).cpu() if labels is not None else seq
    _, counts = pool.unique(return_counts=True)
    if len(counts) < 2:
        raise ValueError("check_shuffling: every label is the same class, so the order cannot be judged.")
    p = float(counts.max()) / float(counts.sum())
    # the longest run of identical labels in the order the batches arrive
    change = torch.nonzero(seq[1:] != seq[:-1]).reshape(-1)
    edges = torch.cat([torch.tensor([-1]), change, torch.tensor([len(seq) - 1])])
    longest = int((edges[1:] - edges[:-1]).max())
    # in a shuffled order the longest run grows like log(n) / log(1/p)
    expected = math.log(len(seq)) / math.log(1 / p)
    limit = max(10.0, 3 * expected)
    pure = sum(per_batch)
    report = Report("check_shuffling")
    if longest > limit:
        report.add("unshuffled", f"{longest} examples in a row have the same label ({pure} of {len(per_batch)} "
                   f"batches hold a single class); a shuffled order would give runs of about {expected:.0f}",
                   "the model is pulled towards whatever class it saw last, so the loss jumps at every change of "
                   "class and the final weights favour the last class",
                   "shuffle the training order every epoch: DataLoader(..., shuffle=True) or batches(n, bs, shuffle=True)")
    report.notes.append(f"longest run of one label: {longest} (a shuffled order gives about {expected:.0f})")
    return report


def check_overlap(train_x: torch.Tensor, valid_x: torch.Tensor) -> Report:
    """Count validation examples that also appear, identically, in the training set (detector `overlap`).

    Evaluating on examples the model trained on measures memory, not generalisation. Introduced in the `bug_zoo`
    notebook.
    """
    _require_tensor("train_x", train_x, "check_overlap")
    _require_tensor("valid_x", valid_x, "check_overlap")
    if train_x.shape[1:] != valid_x.shape[1:]:
        raise ValueError(
            f"check_overlap: examples of shape {tuple(train_x.shape[1:])} (train) and {tuple(valid_x.shape[1:])} "
            "(valid) cannot be compared: pass the two inputs in the same form."
        )
    if len(valid_x) == 0 or len(train_x) == 0:
        raise ValueError("check_overlap needs at least one training and one validation example.")
    def to_bytes(t):
        return t.detach().cpu().contiguous().reshape(len(t), -1).numpy()

    train_rows = {row.tobytes() for row in to_bytes(train_x)}
    n_shared = sum(row.tobytes() in train_rows for row in to_bytes(valid_x))
    report = Report("check_overlap")
    if n_shared:
        report.add("overlap", f"{n_shared} of {len(valid_x)} validation examples ({n_shared / len(valid_x):.0%}) are "
                   "also in the training set",
                   "the model has seen (and may have memorised) these answers, so the metric is optimistic",
                   "evaluate on examples kept apart from training: a separate split, made before any training")
    return report


# ------------------------------------------------------------------------------------- sequence models


def check_causal(model: nn.Module, x: torch.Tensor, atol: float = 1e-5) -> Report:
    """Does a next-token model read the future? (detector `future_leak`)

    `model` maps int64 tokens `[batch, T]` to outputs `[batch, T, ...]`, the output at position t predicting token
    t + 1 from tokens 0…t only. For each position t ≥ 1, the check changes token t of every sequence in `x` (to the
    next token id) and compares the outputs at positions 0…t-1 before and after: with a correct causal mask they
    cannot change. If any moves by more than `atol`, the model's training loss is a lie: it can copy the answer
    from the input instead of predicting it. Runs a copy of the model in eval mode, without gradients, so your
    model and its random state are untouched. Introduced in the `attention` notebook.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"check_causal: model must be an nn.Module, got {type(model).__name__}.")
    _require_tensor("x", x, "check_causal")
    if x.ndim != 2 or x.dtype != torch.int64 or x.shape[1] < 2:
        raise ValueError(f"check_causal wants int64 token sequences [batch, T] with T ≥ 2, got {x.dtype} "
                         f"{tuple(x.shape)}.")
    probe = copy.deepcopy(model).eval()
    report = Report("check_causal")
    with torch.no_grad():
        before = probe(x)
        n_tokens = before.shape[-1] if before.ndim == 3 else int(x.max()) + 1
        leaks = []
        for t in range(1, x.shape[1]):
            changed = x.clone()
            changed[:, t] = (changed[:, t] + 1) % n_tokens
            moved = (probe(changed)[:, :t] - before[:, :t]).abs().max().item()
            if moved > atol:
                leaks.append((t, moved))
    report.notes.append(f"changed each of the tokens 1..{x.shape[1] - 1} in {len(x)} sequence(s), one at a time")
    if leaks:
        t, moved = max(leaks, key=lambda leak: leak[1])
        report.add("future_leak", f"changing a later token changed earlier outputs at {len(leaks)} of "
                   f"{x.shape[1] - 1} positions (by up to {moved:.3g}, when token {t} changed)",
                   "the prediction for position t may use only tokens 0..t; a model that sees later tokens can read the "
                   "answer from its input, so its training loss falls far below what any honest predictor reaches, "
                   "and it fails when it generates, where the future does not exist yet",
                   "mask the attention scores of future positions with -inf before the softmax (a lower-triangular "
                   "mask; is_causal=True in F.scaled_dot_product_attention)")
    return report


# ------------------------------------------------------------------------------------------- test set


def _fingerprint(model: nn.Module) -> str:
    """A digest of every parameter and buffer: two models (or one model at two moments) with the same weights
    share it, any change of a weight changes it."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    return digest.hexdigest()


class GuardedTestSet:
    """A test set that remembers which models were scored on it (for `check_test_set`, detector `test_set_tuning`).

    The test set gives an honest estimate only for a model chosen without it: every choice (the epoch to stop at,
    the learning rate, which of several models wins) is made on a validation set, and the final model is scored
    on the test set once. Keep the test images behind this guard and score with `accuracy(model)`: it records a
    fingerprint of the model's weights, so scoring one final model twice is fine, while scoring several models (or
    one model after more training) shows that a choice could have been made on the test set. It counts only the
    models scored through it: a new guard around images that were already used starts from zero, so wrap each test
    slice once, before its first look, and keep that guard.

        test = GuardedTestSet(test_x, test_y)
        test.accuracy(final_model)      # once, at the end
        check_test_set(test)            # quiet: one model was scored

    `x` are the inputs exactly as the model takes them, `y` the class indices. Introduced in the `bug_zoo`
    notebook.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        _require_tensor("x", x, "GuardedTestSet")
        _require_tensor("y", y, "GuardedTestSet")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"GuardedTestSet needs as many labels as inputs, at least one: got {len(x)} inputs and "
                             f"{len(y)} labels.")
        self.x, self.y = x, y
        self.scores: dict[str, float] = {}  # fingerprint of the weights -> accuracy

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_models(self) -> int:
        """How many different models (different weights) have been scored on this test set."""
        return len(self.scores)

    def accuracy(self, model: nn.Module, bs: int = 1000) -> float:
        """The fraction of test examples whose largest output is the right class, in eval mode, without gradients.

        Puts the model in eval mode and leaves it there. Records the model's fingerprint and score."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"GuardedTestSet.accuracy: model must be an nn.Module, got {type(model).__name__}.")
        bs = positive_int(bs, "GuardedTestSet.accuracy: bs", example="1000")
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(self.x), bs):
                out = model(self.x[start:start + bs])
                correct += int((out.argmax(dim=1) == self.y[start:start + bs]).sum())
        acc = correct / len(self.x)
        self.scores[_fingerprint(model)] = acc
        return acc


def check_test_set(test_set: GuardedTestSet) -> Report:
    """Say whether choices could have been made on the test set (detector `test_set_tuning`).

    Fires when more than one model (more than one set of weights) has been scored on `test_set`, a
    `GuardedTestSet`: picking among them by test accuracy, or training on after a look, makes the chosen model's
    test figure optimistic, because part of its lead is luck on these very images. Quiet when at most one model
    was scored. Introduced in the `bug_zoo` notebook.
    """
    if not isinstance(test_set, GuardedTestSet):
        raise TypeError(f"check_test_set wants a GuardedTestSet (score your models through it: "
                        f"test = GuardedTestSet(test_x, test_y); test.accuracy(model)), got {type(test_set).__name__}.")
    report = Report("check_test_set")
    scores = sorted(test_set.scores.values())
    if len(scores) > 1:
        report.add("test_set_tuning", f"{len(scores)} different models were scored on these {len(test_set):,} test "
                   f"examples (accuracies from {scores[0]:.3f} to {scores[-1]:.3f})",
                   "choosing among them by their test score makes the chosen model's score optimistic: part of its "
                   "lead is luck on these very examples, and it does not hold on new data",
                   "make every choice (epochs, learning rate, which model) on a validation set; score only the final "
                   "model on the test set, once, at the end")
    report.notes.append(f"test set: {len(test_set):,} examples, {len(scores)} model(s) scored on it")
    return report


# -------------------------------------------------------------------------------------- all at once


def run_detectors(model: nn.Module, loss_fn, optimizer: torch.optim.Optimizer, batch, *,
                  step_fn: Callable | None = None, eval_model: nn.Module | None = None,
                  eval_x: torch.Tensor | None = None, order: Iterable | None = None,
                  labels: torch.Tensor | None = None, train_x: torch.Tensor | None = None,
                  valid_x: torch.Tensor | None = None, test_set: GuardedTestSet | None = None,
                  causal_x: torch.Tensor | None = None) -> Report:
    """Run every detector of this module on one training setup and return one combined, silent `Report`.

    Each detector runs on what it needs, and is skipped when that is not given:
    `check_training_step(model, loss_fn, optimizer, batch, step_fn=step_fn)` always;
    `check_eval_mode(eval_model, expect="eval", x=eval_x)` with `eval_model` (the model as you would evaluate it);
    `check_shuffling(order, labels=labels)` with `order`; `check_overlap(train_x, valid_x)` with both;
    `check_test_set(test_set)` with `test_set`; `check_causal(model, causal_x)` with `causal_x` (token sequences,
    for a next-token model such as the `attention` notebook's). Introduced in the `bug_zoo` notebook, where it
    fills the bug × detector table.
    """
    report = Report("run_detectors")
    report.extend(check_training_step(model, loss_fn, optimizer, batch, step_fn=step_fn, verbose=False))
    if eval_model is not None:
        report.extend(check_eval_mode(eval_model, expect="eval", x=eval_x))
    if order is not None:
        report.extend(check_shuffling(order, labels=labels))
    if (train_x is None) != (valid_x is None):
        raise ValueError("run_detectors: give both train_x and valid_x (for check_overlap), or neither.")
    if train_x is not None:
        report.extend(check_overlap(train_x, valid_x))
    if test_set is not None:
        report.extend(check_test_set(test_set))
    if causal_x is not None:
        report.extend(check_causal(model, causal_x))
    return report


def detector_table(fired: Mapping[str, Iterable[str]]):
    """A table with one row per scenario and one column per detector that fired anywhere, ✔ where it fired.

    `fired` maps a scenario's name (a bug, or "correct loop") to the detector names that fired on it (e.g.
    `report.fired`). Columns follow the order of `DETECTORS`. Returns a pandas DataFrame. Introduced in the
    `bug_zoo` notebook.
    """
    import pandas as pd  # only this table needs pandas

    fired = {name: set(names) for name, names in fired.items()}
    unknown = set().union(*fired.values()) - set(DETECTORS) if fired else set()
    if unknown:
        raise ValueError(f"detector_table: unknown detector name(s) {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    columns = [d for d in DETECTORS if any(d in names for names in fired.values())]
    return pd.DataFrame({name: {d: "✔" if d in names else "" for d in columns} for name, names in fired.items()},
                        index=columns).T


_RUN_DETECTORS_OPTIONS = {"step_fn", "eval_model", "eval_x", "order", "labels", "train_x", "valid_x", "test_set",
                          "causal_x"}


def detectors_by_scenario(scenarios: Mapping[str, Mapping], correct: Mapping) -> dict[str, set[str]]:
    """Run every detector on each scenario and return `{scenario: names of the detectors that fired}`.

    `correct` is the correct setting: the keyword arguments of `run_detectors`, except that `model` and
    `eval_model` are functions that build a fresh model, and `optimizer` is a function from the model's
    parameters to an optimizer (so that every scenario starts from fresh weights and a fresh optimizer). Each
    scenario is a dict of the settings it changes, e.g. `{"step_fn": my_step}` or `{"optimizer": lambda p:
    torch.optim.SGD(p, lr=30.0)}`; `{}` is the correct loop itself, the control. Introduced in the `bug_zoo`
    notebook, which draws the result with `helpers.plots.plot_detector_grid`.
    """
    needed = {"model", "loss_fn", "optimizer", "batch"}
    if not needed <= set(correct):
        raise ValueError(f"detectors_by_scenario: the correct setting needs {sorted(needed)}; "
                         f"missing {sorted(needed - set(correct))}.")
    unknown = set(correct) - needed - _RUN_DETECTORS_OPTIONS
    if unknown:
        raise ValueError(f"detectors_by_scenario: the correct setting sets {sorted(unknown)}, which run_detectors does "
                         f"not have; it has {sorted(needed | _RUN_DETECTORS_OPTIONS)}.")
    fired = {}
    for name, changes in scenarios.items():
        setting = {**correct, **changes}
        unknown = set(setting) - needed - _RUN_DETECTORS_OPTIONS
        if unknown:
            raise ValueError(f"detectors_by_scenario: scenario {name!r} sets {sorted(unknown)}, which run_detectors "
                             f"does not have; it has {sorted(needed | _RUN_DETECTORS_OPTIONS)}.")
        model = setting.pop("model")()
        optimizer = setting.pop("optimizer")(model.parameters())
        if setting.get("eval_model") is not None:
            setting["eval_model"] = setting["eval_model"]()
        loss_fn, batch = setting.pop("loss_fn"), setting.pop("batch")
        fired[name] = run_detectors(model, loss_fn, optimizer, batch, **setting).fired
    return fired
