"""helpers.metrics against scikit-learn (confusion matrix, precision, recall) and a plain loop (calibration)."""

import math

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics  # a declared dependency: if it is missing, this fails (never skips)
import torch

from helpers.metrics import confusion_matrix, expected_calibration_error, precision_recall, reliability_bins


def _random_preds(n=500, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, c, (n,), generator=g)
    noise = torch.randint(0, c, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.6
    return torch.where(keep, targets, noise), targets


def test_confusion_matrix_matches_sklearn():
    preds, targets = _random_preds()
    ours = confusion_matrix(preds, targets, n_classes=10)
    theirs = sklearn_metrics.confusion_matrix(targets.numpy(), preds.numpy(), labels=list(range(10)))
    assert ours.dtype == torch.long and ours.shape == (10, 10)
    assert np.array_equal(ours.numpy(), theirs)
    assert ours.diag().sum() / ours.sum() == pytest.approx(float((preds == targets).float().mean()))


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(torch.tensor([1, 1, 1]), torch.tensor([0, 0, 1]), n_classes=3)
    assert cm.tolist() == [[0, 2, 0], [0, 1, 0], [0, 0, 0]]


def test_precision_recall_match_sklearn_including_never_predicted_class():
    preds, targets = _random_preds(c=5, seed=1)
    preds[preds == 4] = 3  # class 4 is never predicted: precision 0 by convention
    ours = precision_recall(preds, targets, n_classes=6)  # class 5 never occurs: recall 0
    p, r, _, s = sklearn_metrics.precision_recall_fscore_support(
        targets.numpy(), preds.numpy(), labels=list(range(6)), zero_division=0)
    assert np.allclose(ours.precision.numpy(), p, atol=1e-6)
    assert np.allclose(ours.recall.numpy(), r, atol=1e-6)
    assert np.array_equal(ours.support.numpy(), s)
    assert float(ours.precision[4]) == 0.0 and float(ours.recall[5]) == 0.0


def test_always_predicting_the_majority_class():
    targets = torch.tensor([0] * 95 + [1] * 5)
    preds = torch.zeros(100, dtype=torch.long)
    pr = precision_recall(preds, targets)
    assert pr.recall.tolist() == [1.0, 0.0]
    assert pr.precision[0].item() == pytest.approx(0.95) and pr.precision[1].item() == 0.0


def _ece_loop(probs, targets, n_bins):
    conf, pred = probs.max(dim=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = [i for i in range(len(conf)) if lo < float(conf[i]) <= hi]
        if inside:
            acc = sum(int(pred[i] == targets[i]) for i in inside) / len(inside)
            mean_conf = sum(float(conf[i]) for i in inside) / len(inside)
            total += len(inside) / len(conf) * abs(acc - mean_conf)
    return total


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_a_plain_loop(n_bins):
    g = torch.Generator().manual_seed(2)
    probs = (torch.randn(300, 4, generator=g) * 2).softmax(dim=1)
    targets = torch.randint(0, 4, (300,), generator=g)
    assert expected_calibration_error(probs, targets, n_bins) == pytest.approx(_ece_loop(probs, targets, n_bins))


def test_ece_by_hand_and_bins():
    probs = torch.tensor([[0.92, 0.08], [0.78, 0.22], [0.34, 0.66], [0.45, 0.55]])
    targets = torch.tensor([0, 1, 1, 1])
    # confidences 0.92, 0.78, 0.66, 0.55 in bins of width 0.5: (0.5, 1] holds all four, 3 of 4 right
    assert expected_calibration_error(probs, targets, n_bins=2) == pytest.approx(abs(0.75 - 0.7275), abs=1e-6)
    bins = reliability_bins(probs, targets, n_bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 1]
    assert math.isnan(float(bins.accuracy[0])) and float(bins.accuracy[7]) == 0.0  # 0.78 → bin (0.7, 0.8], wrong
    assert float(bins.accuracy[9]) == 1.0 and float(bins.confidence[9]) == pytest.approx(0.92)
    assert bins.edges.shape == (11,)


def test_perfectly_confident_and_right_is_calibrated():
    probs = torch.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(probs, torch.tensor([0, 1, 2, 1])) == 0.0


@pytest.mark.parametrize("call, message", [
    (lambda: confusion_matrix(torch.randn(4, 3), torch.tensor([0, 1, 2, 0])), "argmax"),
    (lambda: confusion_matrix(torch.tensor([0.0, 1.0]), torch.tensor([0, 1])), "long"),
    (lambda: confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1])), "3 predictions for 2 targets"),
    (lambda: confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), n_classes=3), "raise n_classes"),
    (lambda: expected_calibration_error(torch.randn(4, 3), torch.tensor([0, 1, 2, 0])), "softmax"),
    (lambda: expected_calibration_error(torch.full((2, 2), 0.5), torch.tensor([0, 1]), n_bins=0), "n_bins"),
    (lambda: reliability_bins(torch.full((2, 2), 0.5), torch.tensor([0, 2])), "between 0 and 1"),
])
def test_bad_input_says_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("bad", [True, 0, 2.0])
def test_counts_are_whole_numbers(bad):
    probs, targets = torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="n_bins must be a positive whole number"):
        expected_calibration_error(probs, targets, n_bins=bad)
    with pytest.raises(ValueError, match="n_classes must be a positive whole number"):
        confusion_matrix(targets, targets, n_classes=bad)
