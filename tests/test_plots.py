"""The drawing helpers of helpers.plots: boxes of numbers, broadcast shapes and contour maps with descent trails
(the `tensors` and `gradients` notebooks); the BatchNorm/LayerNorm axes and dropout masks (`activations`,
`regularization`).

Drawn with matplotlib's Agg backend (no window). Where a picture states a fact (which boxes an index picks,
the broadcast result, where a trail went), the test reads it back from the Axes and compares it with torch.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

from helpers.plots import (  # noqa: E402
    draw_grid,
    draw_shapes,
    draw_stack,
    draw_stretched,
    plot_descent_paths,
    plot_dropout_masks,
    plot_norm_axes,
)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_draw_grid_writes_every_number_and_colours_what_the_index_picks():
    t = torch.arange(30).reshape(5, 6)
    picked = torch.zeros(5, 6, dtype=torch.bool)
    picked[1:3, 2:5] = True
    _, ax = plt.subplots()
    assert draw_grid(ax, t, picked=picked, title="t[1:3, 2:5]") is ax
    assert len(ax.patches) == 30 and _texts(ax) == [str(v) for v in range(30)]
    orange = [p.get_facecolor() == to_rgba("tab:orange") for p in ax.patches]
    assert orange == picked.flatten().tolist()
    assert ax.get_title() == "t[1:3, 2:5]" and ax.get_xlim() == (0, 6) and ax.get_ylim() == (5, 0)


def test_draw_grid_draws_a_vector_as_one_row_and_rejects_what_it_cannot_draw():
    _, ax = plt.subplots()
    draw_grid(ax, torch.tensor([1.5, 2.0, 3.0]))
    assert len(ax.patches) == 3 and _texts(ax) == ["1.5", "2", "3"]
    with pytest.raises(ValueError, match="draw_stack"):
        draw_grid(ax, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="same shape"):
        draw_grid(ax, torch.zeros(2, 3), picked=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="2 rows of 3"):
        draw_grid(ax, torch.zeros(2, 3), colors=[["white"] * 3])


def test_draw_stack_draws_two_tables_and_names_the_shape():
    _, ax = plt.subplots()
    assert draw_stack(ax, (2, 3, 4)) is ax
    assert len(ax.patches) == 2 * 3 * 4 and ax.get_title() == "rank 3: shape (2, 3, 4)"
    _, ax = plt.subplots()
    draw_stack(ax, torch.Size([60000, 28, 28]))  # a big stack still draws only the two front tables
    assert len(ax.patches) == 2 * 28 * 28
    with pytest.raises(ValueError, match="rank-3"):
        draw_stack(ax, (3, 4))


def test_draw_stretched_hatches_exactly_the_copies_broadcasting_makes():
    a = torch.tensor([[0], [10], [20]])
    _, ax = plt.subplots()
    draw_stretched(ax, a, (3, 4), "lightskyblue", "a stretched")
    assert _texts(ax) == [str(v) for v in a.expand(3, 4).flatten().tolist()]
    hatched = [p for p in ax.patches if p.get_hatch() == "///"]
    assert len(hatched) == 3 * 4 - 3  # every box but the three stored numbers is a stretched copy
    _, ax = plt.subplots()
    draw_stretched(ax, torch.tensor([1, 2, 3, 4]), (3, 4), "lightgreen", "a row")  # rank 1 lines up on the right
    assert sum(p.get_hatch() == "///" for p in ax.patches) == 8
    with pytest.raises(ValueError, match="cannot be stretched"):
        draw_stretched(ax, torch.zeros(3), (3, 4), "red", "clash")


@pytest.mark.parametrize("shapes", [[("a", (3, 1)), ("b", (1, 4))], [("flat", (6131, 784)), ("first", (784,))],
                                    [("a", (8, 1, 5)), ("b", (7, 1))]])
def test_draw_shapes_shows_the_shape_torch_broadcasts_to(shapes):
    _, ax = plt.subplots()
    draw_shapes(ax, shapes, "title")
    result = torch.broadcast_shapes(*[s for _, s in shapes])
    texts = _texts(ax)
    assert texts[-len(result):] == [str(n) for n in result]  # the result row comes last
    assert "error: sizes clash" not in texts


def test_draw_shapes_marks_a_clash_in_red():
    _, ax = plt.subplots()
    draw_shapes(ax, [("a", (3, 4)), ("b", (3,))], "(3, 4) + (3,)")
    assert "error: sizes clash" in _texts(ax)
    red = [p for p in ax.patches if p.get_facecolor() == to_rgba("tomato")]
    assert len(red) == 2  # the 4 of a and the 3 of b meet in the last dimension
    with pytest.raises(ValueError, match="at least one"):
        draw_shapes(ax, [], "nothing")


def test_plot_descent_paths_draws_each_trail_and_mark_where_it_is():
    xs, ys = torch.linspace(-2, 2, 30), torch.linspace(-1, 1, 20)
    losses = xs[:, None] ** 2 + 10 * ys[None, :] ** 2
    path = torch.tensor([[1.5, 0.8], [1.0, -0.5], [0.5, 0.2]])
    ax = plot_descent_paths(xs, ys, losses, paths={"plain": path, "momentum": path / 2}, marks={"minimum": (0, 0)},
                            title="a bowl", xlabel="a", ylabel="c")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["plain", "momentum", "minimum"]
    np.testing.assert_allclose(lines[0].get_xdata(), path[:, 0].numpy())
    np.testing.assert_allclose(lines[1].get_ydata(), (path[:, 1] / 2).numpy())
    assert (lines[2].get_xdata()[0], lines[2].get_ydata()[0]) == (0.0, 0.0)
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.0, 1.0)  # a trail never stretches the map
    assert ax.get_title() == "a bowl" and ax.get_xlabel() == "a" and ax.get_ylabel() == "c"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain", "momentum", "minimum"]


def test_plot_descent_paths_rejects_a_grid_or_path_of_the_wrong_shape():
    xs, ys = torch.linspace(0, 1, 5), torch.linspace(0, 1, 4)
    with pytest.raises(ValueError, match=r"f\(xs\[:, None\], ys\[None, :\]\)"):
        plot_descent_paths(xs, ys, torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"\[n_points, 2\]"):
        plot_descent_paths(xs, ys, torch.zeros(5, 4), paths={"bad": torch.zeros(3)})


# ------------------------------------------------------------------------ diagrams: norm axes, dropout masks
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


# ------------------------------------------------------------------ the bug zoo's detector grid (bug_zoo)

from helpers.plots import plot_detector_grid  # noqa: E402


def test_plot_detector_grid_fills_a_square_where_a_detector_fired_and_colours_the_one_aimed_at_the_bug():
    fired = {"correct loop": set(), "no zero_grad": {"accumulating_gradients", "loss_not_falling"},
             "frozen layer": {"no_gradient"}}
    order = ["accumulating_gradients", "target_dtype", "no_gradient", "loss_not_falling"]
    ax = plot_detector_grid(fired, order, expected={"no zero_grad": "accumulating_gradients",
                                                    "frozen layer": "no_gradient"})
    # only the detectors that fired get a column, in the given order; one row per scenario, top to bottom
    assert [t.get_text() for t in ax.get_xticklabels()] == ["accumulating_gradients", "no_gradient", "loss_not_falling"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(fired)
    squares = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(squares) == 3 * 3
    colour = {(int(p.get_x()), int(p.get_y())): p.get_facecolor() for p in squares}
    assert colour[0, 1] == to_rgba("tab:red") and colour[2, 1] == to_rgba("tab:orange")
    assert colour[1, 2] == to_rgba("tab:red")
    assert all(colour[j, 0] == to_rgba("white") for j in range(3))  # the correct loop's row stays empty
    assert sorted((round(t.get_position()[0] - 0.5), round(t.get_position()[1] - 0.5)) for t in ax.texts) == \
        [(0, 1), (1, 2), (2, 1)]
    assert ax.get_legend() is not None and ax.get_ylim() == (3, 0)


def test_plot_detector_grid_rejects_a_detector_outside_its_columns_and_an_empty_mapping():
    with pytest.raises(ValueError, match="not among the columns"):
        plot_detector_grid({"bug": {"made_up"}}, ["no_gradient"])
    with pytest.raises(ValueError, match="at least one scenario"):
        plot_detector_grid({}, ["no_gradient"])
    ax = plot_detector_grid({"correct loop": set()}, ["no_gradient"])  # nothing fired: no columns, still a figure
    assert ax.get_xticklabels() == [] and len(ax.patches) == 0


# ------------------------------------------------------------------ issue 23: pictures for notebooks 03 to 07

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from helpers.plots import (  # noqa: E402
    SEVEN_STEPS,
    adam_trajectory,
    draw_backprop_shapes,
    draw_seven_steps,
    draw_three_sets,
    plot_adam_step_sizes,
    plot_score_gradients,
    plot_weight_decay,
)


def test_draw_seven_steps_draws_six_boxes_the_loop_and_every_step_name():
    ax = draw_seven_steps()
    assert len(ax.step_boxes) == 6 and all(isinstance(b, FancyBboxPatch) for b in ax.step_boxes)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 6  # four along the row, the loop back (repeat), the way out (stop)
    text = " ".join(_texts(ax))
    assert all(f"{i} {name}" in text for i, name in enumerate(SEVEN_STEPS, start=1))
    assert ax.get_title() == "The seven steps of training"


def test_plot_score_gradients_draws_autograds_gradient_for_each_loss():
    import torch.nn.functional as F
    losses = {"BCE": lambda p, t: F.binary_cross_entropy_with_logits(p, t),
              "MSE of sigmoid": lambda p, t: ((p.sigmoid() - t) ** 2).mean()}
    ax = plot_score_gradients(losses, lo=-4, hi=4)
    assert [line.get_label() for line in ax.lines] == list(losses)
    s = torch.tensor(ax.lines[0].get_xdata())
    p = s.sigmoid()
    assert torch.allclose(torch.tensor(ax.lines[0].get_ydata()), (1 - p).abs())             # BCE: |p - y|
    assert torch.allclose(torch.tensor(ax.lines[1].get_ydata()), 2 * (1 - p) * p * (1 - p))  # MSE: 2(y-p)p(1-p)
    assert ax.get_ylabel() == "|∂loss / ∂score|" and ax.get_legend() is not None
    with pytest.raises(ValueError, match="at least one loss"):
        plot_score_gradients({})


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_trajectory_matches_torch_optim(weight_decay, decoupled):
    grads = [0.3, -1.2, 2.0, 0.01, -0.5, 0.7]
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([w], lr=0.05, weight_decay=weight_decay)
    theirs = [1.0]
    for g in grads:
        (w * g).sum().backward()  # a loss whose gradient is g
        opt.step()
        opt.zero_grad()
        theirs.append(w.item())
    ours = adam_trajectory(lambda t, _: grads[t], len(grads), lr=0.05, weight_decay=weight_decay, decoupled=decoupled)
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_plot_adam_step_sizes_shows_sgd_spread_and_adam_near_lr():
    axs = plot_adam_step_sizes(grad_sizes=(1e-3, 10.0), lr=0.01, n_steps=30)
    assert len(axs[0].lines) == len(axs[1].lines) == 3  # two parameters and the lr line, on each panel
    sgd_small, sgd_big = (torch.tensor(line.get_ydata()) for line in axs[0].lines[:2])
    assert sgd_big.median() > 1000 * sgd_small.median()  # SGD: as far apart as the gradients
    for steps in axs[1].adam_steps:                     # Adam: about lr for both
        assert 0.5 * 0.01 < torch.tensor(steps).median() < 1.5 * 0.01
    assert axs[0].get_yscale() == "log"


def test_plot_weight_decay_l2_depends_on_the_gradient_size_and_adamw_does_not():
    ax = plot_weight_decay(grad_sizes=(0.01, 10.0), lr=0.01, weight_decay=0.5, n_steps=300)
    assert len(ax.lines) == 4 and ax.get_legend() is not None
    end = {key: path[-1] for key, path in ax.paths.items()}
    assert end["Adam + L2", 0.01] < 0.05 < 0.7 < end["Adam + L2", 10.0]  # L2: the small-gradient weight collapses
    assert end["AdamW", 0.01] == pytest.approx(end["AdamW", 10.0], abs=0.02)  # AdamW: the same for both
    assert end["AdamW", 10.0] == pytest.approx((1 - 0.01 * 0.5) ** 300, abs=0.02)


def test_draw_three_sets_lets_each_one_look_at_one_set():
    ax = draw_three_sets((50_000, 10_000, 10_000))
    assert len(ax.patches) == 3
    assert sum(ax.may_look.values()) == 3
    for looks_at in ("training", "validation", "test"):
        assert sum(ok for (who, name), ok in ax.may_look.items() if name == looks_at) == 1
    assert any("50,000" in t for t in _texts(ax)) and _texts(ax).count("✓ looks") == 3
    with pytest.raises(ValueError, match="three sizes"):
        draw_three_sets((1, 2))


def test_draw_backprop_shapes_gives_each_gradient_its_variables_shape():
    ax = draw_backprop_shapes(n=30, n_in=4, n_out=10)
    assert ax.shapes["dW"] == ax.shapes["W"] == (10, 4)
    assert ax.shapes["dx"] == ax.shapes["x"] == (30, 4)
    assert ax.shapes["db"] == (10,) and ax.shapes["dz"] == (30, 10)
    assert len(ax.patches) == 11  # x, Wᵀ, z; dzᵀ, x, dW; dz, db; dz, W, dx
    assert "dW [10, 4]" in _texts(ax) and "dx [30, 4]" in _texts(ax)


# --- The pictures of gpu_loop, transfer and language_model (issue 23) -------------------------------------------

from helpers.plots import (  # noqa: E402
    TRANSFER_LAYERS,
    TRANSFER_REGIMES,
    draw_char_mlp,
    draw_context_windows,
    draw_crash_resume,
    draw_memory_order,
    draw_transfer_regimes,
)


def _box_labels_by_row(ax):
    "The texts inside the Rectangles of each row, left to right, rows from the top."
    rows = {}
    for text in ax.texts:
        x, y = text.get_position()
        rows.setdefault(round(y, 2), []).append((x, text.get_text()))
    return [[t for _, t in sorted(r)] for _, r in sorted(rows.items(), reverse=True)]


def test_draw_memory_order_reads_the_order_from_torchs_strides():
    ax = draw_memory_order(channels=3, height=2, width=2)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 2 * 12
    labels = [t.get_text() for t in ax.texts if "\n" in t.get_text()]
    nchw, nhwc = labels[:12], labels[12:]
    assert nchw[:4] == ["c0\np0", "c0\np1", "c0\np2", "c0\np3"]   # all of channel 0 first
    assert nhwc[:4] == ["c0\np0", "c1\np0", "c2\np0", "c0\np1"]   # the channels of one pixel side by side
    assert sorted(nchw) == sorted(nhwc)
    # the same colour for the same channel
    colour = {lab: to_rgba(b.get_facecolor()) for lab, b in zip(labels, boxes)}
    assert colour["c1\np0"] != colour["c0\np0"]
    with pytest.raises(ValueError):
        draw_memory_order(channels=0)


def test_draw_crash_resume_draws_each_runs_epochs_checkpoints_and_the_crash():
    ax = draw_crash_resume(n_epochs=4, crash_after=3)
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 4 + 3 + 1  # run A all epochs, run B up to the crash, run C the rest
    texts = _texts(ax)
    assert texts.count("epoch 4") == 2 and "crash" in texts
    markers = [line.get_marker() for line in ax.lines]
    assert markers.count("D") == 3 and markers.count("x") == 1  # a checkpoint per epoch of run B, one crash
    with pytest.raises(ValueError):
        draw_crash_resume(n_epochs=3, crash_after=3)


def test_draw_transfer_regimes_colours_each_layer_by_its_state():
    ax = draw_transfer_regimes()
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == len(TRANSFER_REGIMES) * len(TRANSFER_LAYERS)
    states = [s for regime in TRANSFER_REGIMES.values() for s in regime]
    assert [b.get_label() for b in boxes] == states
    assert TRANSFER_REGIMES["scratch"] == ("random",) * 4
    assert TRANSFER_REGIMES["frozen body"][:2] == ("frozen", "frozen") and "frozen" not in TRANSFER_REGIMES["frozen body"][2:]
    assert _texts(ax).count("frozen") == sum(s == "frozen" for s in states)
    frozen = {to_rgba(b.get_facecolor()) for b in boxes if b.get_label() == "frozen"}
    trains = {to_rgba(b.get_facecolor()) for b in boxes if b.get_label() != "frozen"}
    assert len(frozen) == 1 and not frozen & trains
    assert ax.get_legend() is not None


def test_draw_context_windows_frames_the_context_and_the_target_of_every_example():
    ax = draw_context_windows("emma", context=3)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 5 * len("...emma.")
    assert sum(b.get_gid() == "context" for b in boxes) == 5 * 3
    assert sum(b.get_gid() == "target" for b in boxes) == 5
    pairs = [t for t in _texts(ax) if "→" in t]
    assert pairs == ["... → e", "..e → m", ".em → m", "emm → a", "mma → ."]
    with pytest.raises(ValueError):
        draw_context_windows("Emma")


def test_draw_char_mlp_draws_one_embedding_per_character_then_one_path_to_the_logits():
    ax = draw_char_mlp(context=4, emb_dim=10, hidden=200, example=".emm")
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    gids = [b.get_gid() for b in boxes]
    assert gids.count("character") == gids.count("embedding") == 4
    assert [g for g in gids if g not in ("character", "embedding")] == ["concat", "hidden", "logits", "softmax"]
    texts = " ".join(_texts(ax))
    assert "4 × 10 = 40" in texts and "200 units" in texts and "27 logits" in texts and "tanh" in texts
    assert len(ax.texts) >= 4 + 4 + 4 and len([c for c in ax.get_children() if type(c).__name__ == "Annotation"]) >= 4 + 4 + 3
    with pytest.raises(ValueError):
        draw_char_mlp(context=3, example=".e")
