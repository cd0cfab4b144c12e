"""helpers.plots' diagrams: the BatchNorm/LayerNorm axes picture and the dropout-mask picture draw what they say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

from helpers.plots import plot_dropout_masks, plot_norm_axes  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cell_colours(ax):
    """{(row, column): facecolor} of the table's cells."""
    return {(int(p.get_y()), int(p.get_x())): p.get_facecolor() for p in ax.patches if isinstance(p, Rectangle)}


def test_norm_axes_groups_columns_for_batchnorm_and_rows_for_layernorm():
    bn, ln = plot_norm_axes(n_batch=4, n_features=3)
    assert "BatchNorm" in bn.get_title() and "dim 0" in bn.get_title()
    assert "LayerNorm" in ln.get_title() and "dim 1" in ln.get_title()
    for ax, same in ((bn, lambda a, b: a[1] == b[1]), (ln, lambda a, b: a[0] == b[0])):
        cells = _cell_colours(ax)
        assert len(cells) == 4 * 3
        for a in cells:  # two cells share a colour exactly when they are normalised together
            for b in cells:
                assert (cells[a] == cells[b]) == same(a, b), (ax.get_title(), a, b)
    assert sum(t.get_text() == "μ, σ²" for t in bn.texts) == 3  # one set of statistics per feature
    assert sum(t.get_text() == "μ, σ²" for t in ln.texts) == 4  # one per example


def test_norm_axes_draws_into_given_axes_and_checks_them():
    _, axs = plt.subplots(1, 2)
    out = plot_norm_axes(axs=axs)
    assert list(out) == list(axs)
    _, three = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="two Axes"):
        plot_norm_axes(axs=three)
    with pytest.raises(ValueError, match="n_batch"):
        plot_norm_axes(n_batch=0)


def test_dropout_masks_marks_dropped_units_and_labels_the_kept_ones():
    outputs = torch.tensor([[2.0, 0.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    ax = plot_dropout_masks(outputs, row_labels=["step 1", "step 2", "eval"])
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == 12
    kept = [c for c in circles if c.get_facecolor()[:3] != (1.0, 1.0, 1.0)]
    assert sorted((int(c.center[1]), int(c.center[0])) for c in kept) == \
        sorted(map(tuple, torch.nonzero(outputs).tolist()))
    assert len(ax.get_lines()) == 2 * 4  # a cross (two strokes) on each of the four dropped units
    assert sorted(t.get_text() for t in ax.texts) == ["1"] * 4 + ["2"] * 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["step 1", "step 2", "eval"]


def test_dropout_masks_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[n_rows, n_units\]"):
        plot_dropout_masks(torch.ones(5))
    with pytest.raises(ValueError, match="one per row"):
        plot_dropout_masks(np.ones((2, 3)), row_labels=["only one"])
    _, ax = plt.subplots()
    assert plot_dropout_masks(np.ones((1, 3)), ax=ax) is ax
