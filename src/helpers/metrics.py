"""What accuracy hides: confusion matrices, precision and recall, calibration.

Layer 3 of the helpers package: imports only `validate` from `helpers` itself. Introduced in the `softmax`
notebook, which builds each of these by hand first.

Conventions (the same as scikit-learn's): in a confusion matrix the rows are the true classes and the
columns the predicted ones; a class that is never predicted has precision 0, one that never occurs has
recall 0. Calibration uses the model's confidence, the largest softmax probability of each row, in
`n_bins` equal bins `(0, 1/n], (1/n, 2/n], …` (Guo et al., 2017, "On Calibration of Modern Neural Networks").
"""

from __future__ import annotations

from collections import namedtuple

import torch

from helpers.validate import positive_int

__all__ = [
    "accuracy",
    "binary_accuracy",
    "confusion_matrix",
    "precision_recall",
    "PrecisionRecall",
    "reliability_bins",
    "ReliabilityBins",
    "expected_calibration_error",
]

PrecisionRecall = namedtuple("PrecisionRecall", ["precision", "recall", "support"])
PrecisionRecall.__doc__ = "Per-class precision and recall (float tensors [C]) and support (true count, long [C])."

ReliabilityBins = namedtuple("ReliabilityBins", ["confidence", "accuracy", "counts", "edges"])
ReliabilityBins.__doc__ = (
    "Per-bin mean confidence and accuracy (float [n_bins], NaN for an empty bin), counts (long [n_bins]), "
    "and the n_bins + 1 bin edges."
)


def _class_indices(t, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    if t.ndim == 2:
        raise ValueError(
            f"{what} should be class indices of shape [N], got shape {tuple(t.shape)}. "
            "If these are logits or probabilities, pass logits.argmax(dim=1) instead."
        )
    if t.ndim != 1:
        raise ValueError(f"{what} should be a 1-D tensor of class indices, got shape {tuple(t.shape)}.")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{what} should hold whole-number class indices (dtype long), got {t.dtype}. Use .long().")
    return t.detach().to("cpu").long()


def _check_pair(preds, targets, n_classes):
    preds = _class_indices(preds, "preds")
    targets = _class_indices(targets, "targets")
    if len(preds) != len(targets):
        raise ValueError(f"got {len(preds)} predictions for {len(targets)} targets: pass one prediction per target.")
    if len(preds) == 0:
        raise ValueError("got no predictions: pass at least one prediction and target.")
    if min(int(preds.min()), int(targets.min())) < 0:
        raise ValueError("class indices must be 0 or more; found a negative one.")
    seen = max(int(preds.max()), int(targets.max())) + 1
    if n_classes is None:
        n_classes = seen
    else:
        n_classes = positive_int(n_classes, "n_classes", example="10 for MNIST's digits, or None to count them")
    if seen > n_classes:
        raise ValueError(f"found class index {seen - 1}, but n_classes={n_classes}: raise n_classes.")
    return preds, targets, n_classes


def confusion_matrix(preds, targets, n_classes: int | None = None) -> torch.Tensor:
    """Count each (true class, predicted class) pair: a long tensor [C, C], rows true, columns predicted.

    `preds` and `targets` are class indices [N]; `n_classes` defaults to the largest index seen plus one.
    The diagonal holds the correct predictions, so `cm.diag().sum() / cm.sum()` is the accuracy.
    Introduced in the `softmax` notebook.
    """
    preds, targets, n_classes = _check_pair(preds, targets, n_classes)
    flat = targets * n_classes + preds
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def precision_recall(preds, targets, n_classes: int | None = None) -> PrecisionRecall:
    """Per-class precision (of the images predicted as c, the fraction that are c) and recall (of the images
    that are c, the fraction predicted as c), plus each class's support (how many images are c).

    A class never predicted gets precision 0; a class that never occurs gets recall 0 (scikit-learn's
    `zero_division=0`). Introduced in the `softmax` notebook.
    """
    cm = confusion_matrix(preds, targets, n_classes).double()
    hits = cm.diag()
    predicted, actual = cm.sum(dim=0), cm.sum(dim=1)
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), torch.zeros_like(hits))
    recall = torch.where(actual > 0, hits / actual.clamp(min=1), torch.zeros_like(hits))
    return PrecisionRecall(precision.float(), recall.float(), actual.long())


def _check_probs(probs, targets):
    if not isinstance(probs, torch.Tensor):
        probs = torch.as_tensor(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs should be probabilities of shape [N, classes], got shape {tuple(probs.shape)}.")
    probs = probs.detach().to("cpu").double()
    targets = _class_indices(targets, "targets")
    if len(probs) != len(targets):
        raise ValueError(f"got {len(probs)} rows of probabilities for {len(targets)} targets.")
    if len(probs) == 0:
        raise ValueError("got no predictions: pass at least one row of probabilities.")
    row_sums = probs.sum(dim=1)
    if (probs < 0).any() or (probs > 1).any() or not torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-3):
        raise ValueError(
            "each row of probs should be probabilities that sum to one. "
            "If you have logits, pass logits.softmax(dim=1) instead."
        )
    if int(targets.min()) < 0 or int(targets.max()) >= probs.shape[1]:
        raise ValueError(f"targets must be class indices between 0 and {probs.shape[1] - 1}.")
    return probs, targets


def reliability_bins(probs, targets, n_bins: int = 10) -> ReliabilityBins:
    """Group predictions by confidence (the largest probability of each row) into `n_bins` equal bins and
    return each bin's mean confidence, accuracy and count: what a reliability diagram draws.

    A well-calibrated model's accuracy equals its confidence in every bin. Introduced in the `softmax` notebook.
    """
    conf, acc, counts, edges = _bins(probs, targets, n_bins)
    return ReliabilityBins(conf.float(), acc.float(), counts, edges.float())


def _bins(probs, targets, n_bins):
    n_bins = positive_int(n_bins, "n_bins", example="10 or 15")
    probs, targets = _check_probs(probs, targets)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bucketize with right=False puts x in bin i when edges[i] < x <= edges[i+1]: bins (lo, hi]
    which = torch.bucketize(confidence, edges[1:-1], right=False)
    counts = torch.bincount(which, minlength=n_bins)
    sum_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, which, confidence)
    sum_corr = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, which, correct)
    safe = counts.clamp(min=1).double()
    nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
    mean_conf = torch.where(counts > 0, sum_conf / safe, nan)
    mean_acc = torch.where(counts > 0, sum_corr / safe, nan)
    return mean_conf, mean_acc, counts, edges


def expected_calibration_error(probs, targets, n_bins: int = 10) -> float:
    """Expected calibration error: the gap |accuracy − confidence| of each confidence bin, weighted by the
    fraction of predictions in the bin. 0 is perfect calibration; 0.05 means "off by 5 points on average".

    Introduced in the `softmax` notebook.
    """
    conf, acc, counts, _ = _bins(probs, targets, n_bins)
    used = counts > 0
    weights = counts[used].double() / counts.sum()
    gaps = (acc[used] - conf[used]).abs()
    return float((weights * gaps).sum())


# Accuracy, the first metric: built by hand in the `three_vs_seven` and `softmax` notebooks.
def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose predicted class (logit > 0, i.e. sigmoid > 0.5) equals the 0/1 target.

    Introduced in the `three_vs_seven` notebook (`batch_accuracy` there).
    """
    logits, y = logits.reshape(-1), y.reshape(-1)
    if logits.shape != y.shape:
        raise ValueError(f"binary_accuracy got {logits.numel()} predictions for {y.numel()} targets.")
    return ((logits > 0).float() == y.float()).float().mean().item()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose highest logit is at the target class index. Introduced in the `softmax` notebook."""
    if logits.ndim != 2 or y.ndim != 1 or len(logits) != len(y):
        raise ValueError(
            f"accuracy expects logits [N, classes] and class indices [N], got {tuple(logits.shape)} and {tuple(y.shape)}."
        )
    return (logits.argmax(dim=1) == y).float().mean().item()
