"""Pictures: digits as images, functions as curves, networks and computational graphs as boxes and arrows, and
small diagrams of what a layer does.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Every function takes `ax=None` (`axs=None` for two panels): pass existing matplotlib Axes to draw into, or let it
make them.
`show_images` is used from the `start` notebook on; `show_image` is introduced in the `tensors` notebook,
`plot_function` in the `gradients` notebook, and `draw_network`, `draw_graph` in the `backprop` notebook
(`helpers.autograd` turns a `Value` or a PyTorch graph into the nodes and edges that `draw_graph` draws).

Pictures of small tensors as boxes of numbers (`draw_grid`, `draw_stack`, `draw_stretched`, `draw_shapes`) draw
the `tensors` notebook's figures of shapes, views and broadcasting; `plot_descent_paths` draws a loss over two
parameters as a contour map with the trails of descent runs on it (the `gradients` notebook). `plot_norm_axes`
draws which entries BatchNorm and LayerNorm normalise together (the `activations` notebook), `plot_dropout_masks`
which units dropout zeroes (the `regularization` notebook), `plot_detector_grid` which bug detectors fired on
which bug (the `bug_zoo` notebook).
"""

from __future__ import annotations

import math
from collections import Counter, namedtuple
from typing import Callable, Sequence

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["show_image", "show_images", "plot_function", "draw_grid", "draw_stack", "draw_stretched", "draw_shapes",
           "plot_descent_paths", "draw_network", "GraphNode", "graph_layout", "draw_graph", "plot_norm_axes",
           "plot_dropout_masks", "plot_detector_grid"]


def _as_image(img) -> np.ndarray:
    """Turn a tensor or array of 784 pixels, 28x28, or 1x28x28 into a 2-D NumPy array for imshow."""
    if isinstance(img, torch.Tensor):
        img = img.detach().to("cpu").float().numpy()
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        side = math.isqrt(arr.size)
        if side * side != arr.size:
            raise ValueError(
                f"show_image got a flat vector of {arr.size} values, which is not a square image. "
                "Pass a 2-D image (for example 28x28) or a vector of 784 pixels."
            )
        arr = arr.reshape(side, side)
    if arr.ndim != 2:
        raise ValueError(
            f"show_image expects one image of shape (H, W), (1, H, W) or (H*W,), got shape {tuple(arr.shape)}. "
            "To show several images, use show_images."
        )
    return arr


def show_image(img, ax=None, title: str | None = None, cmap: str = "Greys", figsize=(2, 2), **kwargs):
    """Draw one image (a digit) without axes ticks and return the Axes.

    Pixel values are shown as they are (0 white → ink black with the default "Greys" colour map).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(_as_image(img), cmap=cmap, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


def show_images(
    imgs,
    nrows: int = 1,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    axs=None,
    cmap: str = "Greys",
    size: float = 1.5,
    **kwargs,
):
    """Draw several images in a grid and return the array of Axes.

    `imgs` is a list of images or a tensor whose first dimension counts images. Extra grid cells stay empty.
    """
    imgs = list(imgs)
    nrows = positive_int(nrows, "show_images: nrows", example="1 or 2")
    if ncols is not None:
        ncols = positive_int(ncols, "show_images: ncols", example="8, or None to fit the images in nrows rows")
    if not imgs:
        raise ValueError("show_images got no images to show: pass a non-empty list or tensor of images.")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"show_images got {len(imgs)} images but {len(titles)} titles: give one title per image.")
    if ncols is None:
        ncols = math.ceil(len(imgs) / nrows)
    if axs is None:
        fig, axs = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size + (0.4 if suptitle else 0)))
        if suptitle:
            fig.suptitle(suptitle)
    flat = np.array(axs).reshape(-1)
    if len(flat) < len(imgs):
        raise ValueError(f"show_images has {len(flat)} axes for {len(imgs)} images: raise nrows or ncols.")
    for i, ax in enumerate(flat):
        if i < len(imgs):
            show_image(imgs[i], ax=ax, title=None if titles is None else titles[i], cmap=cmap, **kwargs)
        else:
            ax.axis("off")
    return axs


def plot_function(
    f: Callable,
    min: float = -2.0,
    max: float = 2.0,
    ax=None,
    title: str | None = None,
    xlabel: str = "x",
    ylabel: str | None = None,
    n: int = 200,
    **kwargs,
):
    """Plot `f` over [min, max]. `f` takes a tensor and returns a tensor of the same shape. Returns the Axes."""
    if not min < max:
        raise ValueError(f"plot_function needs min < max, got min={min} and max={max}.")
    n = positive_int(n, "plot_function: n (the number of points)", example="200 (the default)", minimum=2)
    x = torch.linspace(min, max, n)
    with torch.no_grad():
        y = f(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(
            "plot_function expects f to take a 1-D tensor and return a tensor of the same shape "
            f"(got {type(y).__name__} {getattr(y, 'shape', '')}). Write f with torch operations, e.g. lambda x: x**2."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    ax.plot(x.numpy(), y.detach().numpy(), **kwargs)
    ax.set_xlabel(xlabel)
    if ylabel is None:
        name = getattr(f, "__name__", "f")
        ylabel = ("f" if name == "<lambda>" else name) + f"({xlabel})"
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def plot_norm_axes(n_batch: int = 6, n_features: int = 5, axs=None):
    """Draw which entries of a `[batch, features]` table BatchNorm and LayerNorm normalise together.

    Two panels over the same table (rows: the examples of a batch, dim 0; columns: their features, dim 1). Left,
    BatchNorm: one colour per *column*, each column normalised with its own mean and variance over the batch
    (`x.mean(dim=0)`), so an example's output depends on the other examples. Right, LayerNorm: one colour per
    *row*, each example normalised over its own features (`x.mean(dim=-1)`), so it needs no batch. `μ, σ²` marks
    where each group's statistics are computed. Returns the two Axes. Introduced in the `activations` notebook.
    """
    n_batch = positive_int(n_batch, "plot_norm_axes: n_batch", example="6")
    n_features = positive_int(n_features, "plot_norm_axes: n_features", example="5")
    if axs is None:
        _, axs = plt.subplots(1, 2, figsize=(2 * (1.4 + 0.5 * (n_features + 1)), 1.4 + 0.5 * (n_batch + 1)))
    axs = np.asarray(axs).reshape(-1)
    if len(axs) != 2:
        raise ValueError(f"plot_norm_axes draws two panels (BatchNorm, LayerNorm): pass two Axes, got {len(axs)}.")
    colours = plt.get_cmap("tab10")
    panels = (
        ("BatchNorm: each feature over the batch\n(mean and variance along dim 0)", "column"),
        ("LayerNorm: each example over its features\n(mean and variance along dim 1)", "row"),
    )
    for ax, (title, group) in zip(axs, panels):
        for i in range(n_batch):
            for j in range(n_features):
                k = j if group == "column" else i
                ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=colours(k % 10), alpha=0.55, edgecolor="white",
                                           lw=2))
                ax.text(j + 0.5, i + 0.5, f"x{i}{j}" if n_batch <= 10 and n_features <= 10 else "", ha="center",
                        va="center", fontsize=8)
        if group == "column":
            for j in range(n_features):
                ax.text(j + 0.5, n_batch + 0.45, "μ, σ²", ha="center", va="center", fontsize=8, color=colours(j % 10))
            ax.set_ylim(n_batch + 0.9, 0)
            ax.set_xlim(0, n_features)
        else:
            for i in range(n_batch):
                ax.text(n_features + 0.45, i + 0.5, "μ, σ²", ha="center", va="center", fontsize=8,
                        color=colours(i % 10))
            ax.set_ylim(n_batch, 0)
            ax.set_xlim(0, n_features + 0.9)
        ax.set_xticks([j + 0.5 for j in range(n_features)], [str(j) for j in range(n_features)])
        ax.set_yticks([i + 0.5 for i in range(n_batch)], [str(i) for i in range(n_batch)])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_xlabel("feature (dim 1)")
        ax.set_ylabel("example in the batch (dim 0)")
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
    return axs


def plot_dropout_masks(outputs, row_labels: Sequence[str] | None = None, ax=None):
    """Draw a layer's units as circles, one row per forward pass: which units dropout zeroed, and what the rest carry.

    `outputs` is a `[n_rows, n_units]` tensor (or array): what a dropout layer returned for an input of ones, one
    row per forward pass (a training step, or a pass in eval mode). A unit whose output is 0 was dropped: an empty
    circle with a cross. A kept unit is a filled circle labelled with its value (`1/(1-p)` in training, `1` in eval
    mode). `row_labels` names the rows (default "pass 1", "pass 2", …). Returns the Axes. Introduced in the
    `regularization` notebook.
    """
    if isinstance(outputs, torch.Tensor):
        outputs = outputs.detach().to("cpu").float().numpy()
    values = np.asarray(outputs, dtype=np.float32)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"plot_dropout_masks wants a [n_rows, n_units] table of a dropout layer's outputs, got shape "
                         f"{tuple(values.shape)}: stack one output row per forward pass, e.g. torch.stack([...]).")
    n_rows, n_units = values.shape
    if row_labels is None:
        row_labels = [f"pass {i + 1}" for i in range(n_rows)]
    if len(row_labels) != n_rows:
        raise ValueError(f"plot_dropout_masks got {n_rows} rows but {len(row_labels)} row labels: give one per row.")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 0.6 * n_units, 0.5 + 0.6 * n_rows))
    for i in range(n_rows):
        for j in range(n_units):
            v = float(values[i, j])
            if v == 0:
                ax.add_patch(plt.Circle((j, i), 0.3, facecolor="white", edgecolor="grey", lw=1))
                ax.plot([j - 0.2, j + 0.2], [i - 0.2, i + 0.2], color="grey", lw=1)
                ax.plot([j - 0.2, j + 0.2], [i + 0.2, i - 0.2], color="grey", lw=1)
            else:
                ax.add_patch(plt.Circle((j, i), 0.3, facecolor="tab:blue", edgecolor="tab:blue", lw=1))
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xlim(-0.6, n_units - 0.4)
    ax.set_ylim(n_rows - 0.4, -0.6)
    ax.set_aspect("equal")
    ax.set_xticks(range(n_units), [str(j) for j in range(n_units)])
    ax.set_yticks(range(n_rows), list(row_labels))
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("unit of the layer")
    return ax


# ------------------------------------------------------------------------------- tensors as boxes of numbers


def draw_grid(ax, values, picked=None, colors=None, title: str = "", fmt: str = "{:g}", fontsize: float = 8,
              xlabel: str = "dim 1 (column)", ylabel: str = "dim 0 (row)"):
    """Draw a rank-1 or rank-2 tensor as a grid of boxes, each with its number written in; return the Axes.

    `picked` (a boolean tensor of the same number of elements) colours the boxes where it is True orange: the
    `tensors` notebook fills it with the same index expression it shows, so the picture cannot disagree with
    PyTorch. `colors` (rows of matplotlib colours, one per box) colours every box instead. A rank-1 tensor is
    drawn as one row. Used in the `tensors` notebook.
    """
    values = torch.as_tensor(values)
    if values.ndim > 2:
        raise ValueError(f"draw_grid draws a tensor of rank 0, 1 or 2, got shape {tuple(values.shape)}: pick one "
                         "table of it (t[0]) or draw a rank-3 tensor with draw_stack.")
    values = values.reshape(1, -1) if values.ndim < 2 else values
    rows, cols = values.shape
    if picked is not None:
        picked = torch.as_tensor(picked)
        if picked.numel() != values.numel():
            raise ValueError(f"draw_grid: picked has {picked.numel()} elements but values has {values.numel()}: "
                             "pass a boolean tensor of the same shape as values.")
        picked = picked.reshape(values.shape)
    if colors is not None and (len(colors) != rows or any(len(row) != cols for row in colors)):
        raise ValueError(f"draw_grid: colors must hold {rows} rows of {cols} colours, one per box.")
    for r in range(rows):
        for c in range(cols):
            face = colors[r][c] if colors is not None else (
                "tab:orange" if picked is not None and picked[r, c] else "white")
            ax.add_patch(patches.Rectangle((c, r), 1, 1, facecolor=face, edgecolor="grey"))
            ax.text(c + 0.5, r + 0.5, fmt.format(values[r, c].item()), ha="center", va="center", fontsize=fontsize)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    ax.set_xticks([c + 0.5 for c in range(cols)], [str(c) for c in range(cols)], fontsize=7)
    ax.set_yticks([r + 0.5 for r in range(rows)], [str(r) for r in range(rows)], fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    return ax


def draw_stack(ax, shape, title: str | None = None, offset: float = 0.4):
    """Draw a rank-3 shape (tables, rows, columns) as its tables stacked behind one another; return the Axes.

    Each table is a grid of empty boxes, shifted up and right by `offset` per table so the ones behind peek
    out (only the first two are drawn apart, so a stack of 60,000 stays readable). Used in the `tensors`
    notebook.
    """
    if len(shape) != 3:
        raise ValueError(f"draw_stack draws a rank-3 shape such as (2, 3, 4), got {tuple(shape)}; draw a rank-1 "
                         "or rank-2 tensor with draw_grid.")
    n_tables, rows, cols = (positive_int(n, "draw_stack: each size in shape", example="(2, 3, 4)") for n in shape)
    shown = min(n_tables, 2)
    for k in reversed(range(shown)):  # the tables behind first, so the front one covers them
        for r in range(rows):
            for c in range(cols):
                ax.add_patch(patches.Rectangle((c + offset * k, r - offset * k), 1, 1,
                                               facecolor="lightgrey" if k else "white", edgecolor="grey"))
    ax.set_xlim(0, cols + offset * (shown - 1))
    ax.set_ylim(rows, -offset * (shown - 1))
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"rank 3: shape {tuple(shape)}" if title is None else title, fontsize=9)
    ax.set_xlabel("dim 2 (column)", fontsize=8)
    ax.set_ylabel("dim 1 (row)", fontsize=8)
    return ax


def draw_stretched(ax, small, shape, color: str, title: str):
    """Draw `small` broadcast to the rank-2 `shape`: its own values in `color`, the stretched copies pale and
    hatched (they are never stored: broadcasting re-reads the same numbers). Return the Axes.

    Used in the `tensors` notebook's broadcasting section.
    """
    small = torch.as_tensor(small)
    try:
        big = small.expand(*shape)
    except RuntimeError as e:
        raise ValueError(f"draw_stretched: a tensor of shape {tuple(small.shape)} cannot be stretched to "
                         f"{tuple(shape)} ({e}).") from None
    if big.ndim != 2:
        raise ValueError(f"draw_stretched draws a rank-2 result, got shape {tuple(shape)}.")
    small = small.reshape((1,) * (2 - small.ndim) + tuple(small.shape))
    real = torch.zeros(tuple(shape), dtype=torch.bool)
    real[tuple(slice(0, n) for n in small.shape)] = True
    draw_grid(ax, big, colors=[[color if real[r, c] else "white" for c in range(shape[1])] for r in range(shape[0])],
              title=title)
    for r in range(shape[0]):
        for c in range(shape[1]):
            if not real[r, c]:
                ax.add_patch(patches.Rectangle((c, r), 1, 1, facecolor="none", edgecolor=color, hatch="///", alpha=0.5))
    return ax


def draw_shapes(ax, shapes, title: str):
    """Draw shapes as rows of boxes lined up from the right, with the broadcast result (or the clash) below.

    `shapes` is a list of `(label, shape)` pairs. A missing dimension is drawn dashed as "(1)"; a size 1 that
    broadcasting stretches is yellow; where two sizes differ and neither is 1, the clashing boxes are red and
    the result row says "error". The result comes from `torch.broadcast_shapes`, so the picture cannot disagree
    with PyTorch. Returns the Axes. Used in the `tensors` notebook.
    """
    if not shapes:
        raise ValueError('draw_shapes needs at least one (label, shape) pair, e.g. [("a", (3, 1)), ("b", (4,))].')
    width = max(len(s) for _, s in shapes)
    try:
        result, ok = tuple(torch.broadcast_shapes(*[s for _, s in shapes])), True
    except RuntimeError:
        result, ok = None, False
    rows = list(shapes) + [("result", result if ok else ("error",))]
    for r, (label, shape) in enumerate(rows):
        ax.text(-0.2, r + 0.5, label, ha="right", va="center", fontsize=8)
        for j, size in enumerate(shape if ok or label != "result" else ()):
            col = width - len(shape) + j
            sizes = [s[col - (width - len(s))] for _, s in shapes if col >= width - len(s)]
            face = "white"
            if label != "result" and not ok and len(set(n for n in sizes if n != 1)) > 1:
                face = "tomato"  # two different sizes, neither of them 1: the clash
            elif label != "result" and ok and size != result[col]:
                face = "moccasin"  # a 1 that is stretched
            ax.add_patch(patches.Rectangle((col * 1.4, r), 1.3, 0.9, facecolor=face, edgecolor="grey"))
            ax.text(col * 1.4 + 0.65, r + 0.45, str(size), ha="center", va="center", fontsize=8)
        if label != "result":
            for col in range(width - len(shape)):  # a missing dimension counts as size 1
                ax.add_patch(patches.Rectangle((col * 1.4, r), 1.3, 0.9, facecolor="moccasin" if ok else "white",
                                               edgecolor="grey", linestyle="--"))
                ax.text(col * 1.4 + 0.65, r + 0.45, "(1)", ha="center", va="center", fontsize=7, color="grey")
    if not ok:
        ax.text(width * 1.4 / 2, len(shapes) + 0.45, "error: sizes clash", ha="center", va="center",
                fontsize=8, color="firebrick")
    ax.set_xlim(-2.2, width * 1.4)
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("dimensions, lined up from the right", fontsize=8)
    return ax


# ------------------------------------------------------------------------------- a loss over two parameters


def plot_descent_paths(xs, ys, losses, paths=None, marks=None, ax=None, levels=12, title: str | None = None,
                       xlabel: str = "x", ylabel: str = "y", cmap: str = "viridis"):
    """Draw a loss over two parameters as contour lines (a hiking map), with descent trails and marked points.

    `xs` (length n) and `ys` (length m) are the grid's coordinates and `losses[i, j]` the loss at
    `(xs[i], ys[j])`: the layout `f(xs[:, None], ys[None, :])` gives. `levels` is the number of contour lines or
    their heights. `paths` maps a label to the points a run visited, shape `[n_steps + 1, 2]`; each is drawn as
    dots joined by a line, in its own colour, and listed in the legend. `marks` maps a label to a point
    `(x, y)` (a star, a cross, a diamond… in turn), e.g. `{"minimum": (41.8, 8.6)}`. The view stays on the
    grid, so a diverging trail leaves the map instead of shrinking it. Returns the Axes.
    Used in the `gradients` notebook.
    """
    xs, ys, losses = (torch.as_tensor(v).detach().cpu().double() for v in (xs, ys, losses))
    if xs.ndim != 1 or ys.ndim != 1 or tuple(losses.shape) != (len(xs), len(ys)):
        raise ValueError(f"plot_descent_paths needs xs of length n, ys of length m and losses of shape (n, m), got "
                         f"{tuple(xs.shape)}, {tuple(ys.shape)} and {tuple(losses.shape)}: compute the losses as "
                         "f(xs[:, None], ys[None, :]).")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.contour(xs.numpy(), ys.numpy(), losses.T.numpy(), levels=np.asarray(levels) if not isinstance(levels, int)
               else levels, cmap=cmap, linewidths=0.8)
    for i, (label, path) in enumerate((paths or {}).items()):
        path = torch.as_tensor(path).detach().cpu().double()
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"plot_descent_paths: the path {label!r} must have shape [n_points, 2] (one (x, y) "
                             f"per step), got {tuple(path.shape)}.")
        ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), "o-", color=f"C{(3 + i) % 10}", ms=3, lw=1, label=label)
    for (label, point), marker in zip((marks or {}).items(), ["*", "X", "D", "P", "s", "^"] * 10):
        ax.plot(float(point[0]), float(point[1]), marker, color="black", ms=11 if marker == "*" else 8,
                label=label, linestyle="none")
    ax.set_xlim(float(xs[0]), float(xs[-1]))
    ax.set_ylim(float(ys[0]), float(ys[-1]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if paths or marks:
        ax.legend(fontsize=7)
    return ax


# --------------------------------------------------------------------------------------------------------------
# A network's anatomy and computational graphs
# --------------------------------------------------------------------------------------------------------------


def draw_network(sizes: Sequence[int], ax=None, title: str | None = None, layer_names: Sequence[str] | None = None,
                 input_labels: Sequence[str] | None = None, output_labels: Sequence[str] | None = None,
                 max_nodes: int = 12):
    """Draw a fully connected network: one circle per node, one line per weight, a column per layer.

    `sizes` lists the nodes per layer, e.g. `[4, 10, 3]` for `nn.Linear(4, 10) → ReLU → nn.Linear(10, 3)`.
    Under each gap between columns it writes how many weights and biases that layer has. A layer with more
    than `max_nodes` nodes is drawn with `max_nodes` of them (the count under it stays exact).
    Returns the Axes. Introduced in the `backprop` notebook.
    """
    sizes = [positive_int(n, f"sizes[{i}] (nodes in a layer)", example="[4, 10, 3]") for i, n in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"draw_network needs at least two layers (inputs and outputs), got {sizes}.")
    max_nodes = positive_int(max_nodes, "max_nodes", example="12")
    for name, labels, n in (("input_labels", input_labels, sizes[0]), ("output_labels", output_labels, sizes[-1])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} names for {n} nodes: give one per node.")
    shown = [min(n, max_nodes) for n in sizes]
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 * len(sizes) + 1.5, 0.42 * max(shown) + 1.4))
    ys = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n)[::-1] for n in shown]
    for col in range(len(sizes) - 1):  # the weights first, so the nodes sit on top of them
        for ya in ys[col]:
            for yb in ys[col + 1]:
                ax.plot([col, col + 1], [ya, yb], color="tab:grey", lw=0.6, alpha=0.55, zorder=1)
        n_in, n_out = sizes[col], sizes[col + 1]
        ax.text(col + 0.5, -max(shown) / 2 - 0.55, f"{n_in} × {n_out} = {n_in * n_out} weights\n+ {n_out} biases",
                ha="center", va="top", fontsize=8)
    colours = ["tab:blue"] + ["tab:green"] * (len(sizes) - 2) + ["tab:orange"]
    for col, (y, colour) in enumerate(zip(ys, colours)):
        ax.scatter(np.full(len(y), col), y, s=260, color=colour, edgecolor="black", zorder=2)
        if shown[col] < sizes[col]:
            ax.text(col, y[-1] - 0.7, f"({sizes[col]} in all)", ha="center", va="top", fontsize=7)
    for labels, col, side in ((input_labels, 0, -1), (output_labels, len(sizes) - 1, 1)):
        for yy, text in zip(ys[col], labels or []):
            ax.text(col + side * 0.18, yy, text, ha="right" if side < 0 else "left", va="center", fontsize=8)
    hidden = ["hidden"] if len(sizes) == 3 else [f"hidden {i}" for i in range(1, len(sizes) - 1)]
    names = layer_names or (["input"] + hidden + ["output"])
    for col, name in enumerate(names):
        ax.text(col, max(shown) / 2 + 0.3, f"{name}\n{sizes[col]} node{'s' * (sizes[col] != 1)}", ha="center",
                va="bottom", fontsize=9)
    total = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    ax.set_title(title or f"{' → '.join(map(str, sizes))}: {total} parameters")
    ax.set_xlim(-1.1, len(sizes) - 0.1 + 0.2)
    ax.set_ylim(-max(shown) / 2 - 1.6, max(shown) / 2 + 1.3)
    ax.axis("off")
    return ax


GraphNode = namedtuple("GraphNode", ["id", "text", "kind"])
GraphNode.__doc__ = """One box of a drawn graph: a hashable `id`, the `text` in the box, and its `kind`
("input", "op" or "output"), which picks the colour. Introduced in the `backprop` notebook."""

_KIND_COLOURS = {"input": "#cfe2f3", "op": "#f3f3f3", "output": "#ffe599"}


def graph_layout(nodes: Sequence, edges: Sequence[tuple]) -> dict:
    """Positions {id: (column, row)} for a graph whose edges (a, b) mean "a feeds b": output on the right.

    A node's column counts the longest path from it to an output, so each input sits just left of its first
    use; rows are ordered by the mean row of the nodes each one feeds (fewer crossing arrows). Pure layout,
    no drawing, so the explorer can reuse it. Introduced in the `backprop` notebook.
    """
    ids = [n.id if hasattr(n, "id") else n[0] for n in nodes]
    known = set(ids)
    users: dict = {i: [] for i in ids}
    for a, b in edges:
        if a not in known or b not in known:
            raise ValueError(f"the edge {(a, b)} names a node that is not in the list of nodes.")
        if b not in users[a]:
            users[a].append(b)
    feeds: dict = {i: [] for i in ids}  # the reverse: who feeds each node
    for a, users_of_a in users.items():
        for b in users_of_a:
            feeds[b].append(a)
    waiting = {i: len(users[i]) for i in ids}
    ready = [i for i in ids if waiting[i] == 0]  # the outputs
    dist: dict = {}
    while ready:
        node = ready.pop()
        dist[node] = 1 + max((dist[u] for u in users[node]), default=-1)
        for a in feeds[node]:
            waiting[a] -= 1
            if waiting[a] == 0:
                ready.append(a)
    if len(dist) != len(ids):
        raise ValueError("the graph has a cycle; a computational graph never does.")
    n_cols = max(dist.values()) + 1
    row: dict = {}
    pos: dict = {}
    for d in range(n_cols):  # from the output leftwards
        column = [i for i in ids if dist[i] == d]
        order = {i: k for k, i in enumerate(column)}
        column.sort(key=lambda i: (np.mean([row[u] for u in users[i]]) if users[i] else 0.0, order[i]))
        for k, i in enumerate(column):
            row[i] = k - (len(column) - 1) / 2
            pos[i] = (n_cols - 1 - d, row[i])
    return pos


def draw_graph(nodes: Sequence, edges: Sequence[tuple], ax=None, title: str | None = None,
               fontsize: float = 8, col_width: float = 1.9, row_height: float = 0.95):
    """Draw a computational graph: one box per node (its text), one arrow per edge (a, b) from a to b.

    `nodes` are `GraphNode`s (or `(id, text, kind)` tuples); an edge that appears k > 1 times (a value used
    twice by the same operation, as in `x * x`) gets a "×k" on its arrow. Inputs are blue, operations grey, the
    output yellow. Every box has the same size (a fixed share of its column and row), so the arrows are
    placed once and never depend on the text: a caller can rewrite the numbers in the boxes and draw again
    cheaply. Returns the Axes; `.node_texts` and `.node_boxes` map each id to its text and its box.
    Without `ax`, the figure gets `col_width` × `row_height` inches per column and row (a given `ax` should
    offer about as much, or long texts overflow their boxes). Introduced in the `backprop` notebook.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes = [n if isinstance(n, GraphNode) else GraphNode(*n) for n in nodes]
    if not nodes:
        raise ValueError("draw_graph got no nodes to draw.")
    pos = graph_layout(nodes, edges)
    n_cols = 1 + max(c for c, _ in pos.values())
    n_rows = max(Counter(c for c, _ in pos.values()).values())
    if ax is None:
        width, height = col_width * n_cols + 0.2, row_height * n_rows + 0.5
        fig, ax = plt.subplots(figsize=(width, height))
        fig.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width, bottom=0.05 / height, top=1 - 0.45 / height)
    half_w, half_h = 0.37, 0.36  # a box's half width and height, in columns and rows
    texts, boxes = {}, {}
    for node in nodes:
        x, y = pos[node.id]
        boxes[node.id] = ax.add_patch(FancyBboxPatch(
            (x - half_w, -y - half_h), 2 * half_w, 2 * half_h, boxstyle="round,pad=0,rounding_size=0.08",
            mutation_aspect=0.5, fc=_KIND_COLOURS.get(node.kind, "white"), ec="black", lw=0.8, zorder=2))
        texts[node.id] = ax.text(x, -y, node.text, ha="center", va="center", fontsize=fontsize, zorder=3)
    for (a, b), count in Counter(edges).items():
        (xa, ya), (xb, yb) = pos[a], pos[b]  # a column lies left of every column it feeds
        bend = 0.0 if xb - xa <= 1 else (-0.5 if yb >= ya else 0.5)  # a long edge bends around the boxes between
        ax.add_patch(FancyArrowPatch((xa + half_w, -ya), (xb - half_w, -yb), arrowstyle="-|>", mutation_scale=12,
                                     color="tab:grey", lw=1, shrinkA=0, shrinkB=0, zorder=1,
                                     connectionstyle=f"arc3,rad={bend}"))
        if count > 1:
            ax.text((xa + xb) / 2, -(ya + yb) / 2 + 0.12, f"×{count}", ha="center", fontsize=fontsize, color="tab:red")
    rows = [r for _, r in pos.values()]
    ax.set_xlim(-0.55, n_cols - 0.45)
    ax.set_ylim(-max(rows) - 0.5, -min(rows) + 0.5)
    ax.axis("off")
    if title:
        ax.set_title(title)
    ax.node_texts, ax.node_boxes = texts, boxes
    return ax


# --------------------------------------------------------------------- the bug zoo's detector grid


def plot_detector_grid(fired, detectors: Sequence[str], expected=None, ax=None, title: str | None = None):
    """Draw which detectors fired on which scenario: one row per scenario, one column per detector, a filled
    square with a ✔ where it fired.

    `fired` maps each scenario's name (a bug, or the correct loop) to the names of the detectors that fired on
    it (a `Report`'s `fired`); `detectors` gives the columns' order (e.g. `helpers.diagnose.DETECTORS`), and only
    the detectors that fired somewhere get a column. `expected`, optional, maps a scenario to the detector aimed at
    it: that square is drawn red, a detector that fired as well (one that sees a consequence of the bug) orange.
    Returns the Axes. Introduced in the `bug_zoo` notebook.
    """
    fired = {name: set(names) for name, names in fired.items()}
    if not fired:
        raise ValueError("plot_detector_grid: give at least one scenario, e.g. {'correct loop': set()}.")
    detectors = list(detectors)
    unknown = set().union(*fired.values()) - set(detectors)
    if unknown:
        raise ValueError(f"plot_detector_grid: detector(s) {sorted(unknown)} fired but are not among the columns "
                         f"{detectors}.")
    expected = dict(expected or {})
    columns = [d for d in detectors if any(d in names for names in fired.values())]
    rows = list(fired)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * max(len(columns), 1) + 3.2, 0.38 * len(rows) + 1.9))
    for i, row in enumerate(rows):
        for j, detector in enumerate(columns):
            hit = detector in fired[row]
            color = ("tab:red" if expected.get(row) == detector else "tab:orange") if hit else "white"
            ax.add_patch(patches.Rectangle((j, i), 1, 1, facecolor=color, edgecolor="0.75", lw=1))
            if hit:
                ax.text(j + 0.5, i + 0.5, "✔", ha="center", va="center", color="white", fontsize=10,
                        fontweight="bold")
    ax.set_xlim(0, max(len(columns), 1))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([j + 0.5 for j in range(len(columns))], columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(rows))], rows, fontsize=9)
    ax.tick_params(length=0)
    ax.set_aspect("equal")
    for side in ax.spines.values():
        side.set_visible(False)
    if expected:
        ax.legend(handles=[patches.Patch(color="tab:red", label="the detector aimed at this bug"),
                           patches.Patch(color="tab:orange", label="another detector that fired")],
                  loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    ax.set_title(title if title is not None else "Which detectors fire on which bug", fontsize=10)
    return ax


# ------------------------------------------------------------------ issue 23: pictures for notebooks 03 to 07
# The seven-step loop (`gradients`), the gradient each loss sends back to a score (`three_vs_seven`), Adam's step
# sizes and its two weight decays (`modules`), the three data sets (`softmax`), the shapes of matrix backprop
# (`backprop`).

__all__ += ["draw_seven_steps", "plot_score_gradients", "adam_trajectory", "plot_adam_step_sizes",
            "plot_weight_decay", "draw_three_sets", "draw_backprop_shapes"]

SEVEN_STEPS = ("initialise", "predict", "loss", "gradient", "step", "repeat", "stop")


def draw_seven_steps(ax=None, title: str = "The seven steps of training"):
    """Draw the training loop as a diagram: initialise once, then predict → loss → gradient → step around a
    loop (the "repeat" arrow), and leave it at "stop". Introduced in the `gradients` notebook.

    Each step is a rounded box holding its number and name (`ax.step_boxes`, in order); arrows join them.
    Returns the Axes."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 3.0))
    where = {1: (0.0, 1.0), 2: (2.0, 1.0), 3: (4.0, 1.0), 4: (6.0, 1.0), 5: (8.0, 1.0), 7: (8.0, -0.6)}
    what = {1: "random parameters", 2: "model(x)", 3: "loss(preds, y)", 4: "loss.backward()",
            5: "p -= lr * p.grad\np.grad = None", 7: "good enough,\nor out of time"}
    boxes = []
    for number in (1, 2, 3, 4, 5, 7):
        x, y = where[number]
        boxes.append(ax.add_patch(FancyBboxPatch((x - 0.8, y - 0.38), 1.6, 0.76, boxstyle="round,pad=0.02",
                                                 fc="lavender" if number in (2, 3, 4, 5) else "whitesmoke",
                                                 ec="black", lw=0.8)))
        ax.text(x, y + 0.14, f"{number} {SEVEN_STEPS[number - 1]}", ha="center", va="center", fontsize=9,
                weight="bold")
        ax.text(x, y - 0.16, what[number], ha="center", va="center", fontsize=7, family="monospace")

    def arrow(a, b, rad=0.0, colour="black"):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=colour, lw=1.1,
                                     connectionstyle=f"arc3,rad={rad}"))

    for left, right in ((1, 2), (2, 3), (3, 4), (4, 5)):
        arrow((where[left][0] + 0.82, 1.0), (where[right][0] - 0.82, 1.0))
    arrow((8.0, 1.4), (2.0, 1.4), rad=0.25, colour="tab:blue")  # 5 → 2: the loop
    ax.text(5.0, 2.25, "6 repeat", ha="center", va="center", fontsize=9, weight="bold", color="tab:blue")
    arrow((8.0, 0.6), (8.0, -0.2))
    ax.set_xlim(-1.0, 9.0)
    ax.set_ylim(-1.1, 2.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    ax.step_boxes = boxes
    return ax


def plot_score_gradients(losses: dict, target: float = 1.0, lo: float = -6.0, hi: float = 6.0, ax=None,
                         title: str | None = None):
    """Draw |∂loss/∂score| against the score for one example with the given `target`, one curve per loss.

    `losses` maps a name to a function `loss_fn(scores [N, 1], targets [N, 1])`; the gradients come from
    autograd, so the picture shows what the notebook's own functions do, not a formula copied beside them.
    Introduced in the `three_vs_seven` notebook. Returns the Axes."""
    if not losses:
        raise ValueError("plot_score_gradients needs at least one loss, e.g. {'BCE': bce_loss}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.3))
    scores = torch.linspace(lo, hi, 241, dtype=torch.float64)
    for name, loss_fn in losses.items():
        grads = []
        for s in scores:
            s = s.view(1, 1).clone().requires_grad_()
            loss_fn(s, torch.full((1, 1), float(target), dtype=torch.float64)).backward()
            grads.append(abs(s.grad.item()))
        ax.plot(scores.numpy(), grads, label=name)
    wrong = (lo, 0.0) if target > 0.5 else (0.0, hi)
    ax.axvspan(*wrong, color="tab:red", alpha=0.07, lw=0)
    ax.text(sum(wrong) / 2, 0.02, "wrong side:\nthe model says the other digit", ha="center", va="bottom",
            fontsize=7, color="tab:red", transform=ax.get_xaxis_transform())
    ax.set(xlabel="score (before the sigmoid)", ylabel="|∂loss / ∂score|",
           title=title or f"How hard each loss pushes one example (target {target:g})")
    ax.legend(fontsize=8)
    return ax


def adam_trajectory(grad_fn: Callable[[int, float], float], n_steps: int, lr: float = 1e-3,
                    betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False,
                    w0: float = 1.0) -> list[float]:
    """One weight trained by Adam: return its value before the first step and after each of `n_steps`.

    `grad_fn(t, w)` gives the loss's gradient at step t (from 0) and weight w. `weight_decay` is Adam's L2
    (`decoupled=False`: `weight_decay * w` added to the gradient, as in `torch.optim.Adam`) or AdamW's
    (`decoupled=True`: `w *= 1 - lr * weight_decay` before the step, as in `torch.optim.AdamW`). Plain floats,
    float64 arithmetic: the update of the `modules` notebook, for one number. Used by `plot_adam_step_sizes`
    and `plot_weight_decay`."""
    beta1, beta2 = betas
    w, m, v, path = float(w0), 0.0, 0.0, [float(w0)]
    for t in range(1, n_steps + 1):
        g = float(grad_fn(t - 1, w))
        if decoupled:
            w *= 1 - lr * weight_decay
        elif weight_decay:
            g += weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w -= lr * (m / (1 - beta1**t)) / (math.sqrt(v / (1 - beta2**t)) + eps)
        path.append(w)
    return path


def plot_adam_step_sizes(grad_sizes: Sequence[float] = (1e-3, 1e-1, 10.0), lr: float = 1e-2, n_steps: int = 60,
                         seed: int = 0, axs=None):
    """Two panels, one line per parameter: the size of each step under plain SGD (`lr × gradient`) and under
    Adam, for parameters whose noisy gradients are of very different sizes (`grad_sizes`). SGD's steps are
    as far apart as the gradients; Adam's all come out near `lr`. Introduced in the `modules` notebook.

    The gradients are drawn from a seeded generator: each is its size times (1 + 0.5 × a standard normal).
    Returns the two Axes; `axs[1].adam_steps` holds the plotted step sizes (one list per parameter)."""
    if axs is None:
        _, axs = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    g = torch.Generator().manual_seed(seed)
    all_adam = []
    for size in grad_sizes:
        grads = (size * (1 + 0.5 * torch.randn(n_steps, generator=g, dtype=torch.float64))).tolist()
        path = adam_trajectory(lambda t, w: grads[t], n_steps, lr=lr)
        adam_steps = [abs(b - a) for a, b in zip(path[:-1], path[1:])]
        all_adam.append(adam_steps)
        axs[0].plot(range(1, n_steps + 1), [lr * abs(x) for x in grads], label=f"gradients of size {size:g}")
        axs[1].plot(range(1, n_steps + 1), adam_steps, label=f"gradients of size {size:g}")
    for ax, name in zip(axs, ("plain SGD: lr × gradient", "Adam: about lr, whatever the gradient")):
        ax.axhline(lr, color="grey", ls="--", lw=0.8)
        ax.set(yscale="log", xlabel="step", title=f"{name} (lr = {lr:g})")
    axs[0].set_ylabel("size of the step")
    axs[0].legend(fontsize=8, loc="lower right")
    axs[1].adam_steps = all_adam
    return axs


def plot_weight_decay(grad_sizes: Sequence[float] = (0.01, 10.0), lr: float = 0.01, weight_decay: float = 0.5,
                      n_steps: int = 600, ax=None):
    """Adam + L2 against AdamW on single weights that start at 1 and whose loss gradient only swings back and
    forth (+size, −size, ...: nothing in the loss pulls the weight anywhere), so weight decay alone moves
    them. One line per weight and rule. With L2 the decay is divided by Adam's gradient size: the weight
    with small gradients collapses, the one with large gradients barely decays. AdamW shrinks both by the
    same factor. Introduced in the `modules` notebook. Returns the Axes; `ax.paths` maps (rule, size) to the
    weight's values."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    paths = {}
    for size, colour in zip(grad_sizes, ("tab:orange", "tab:blue", "tab:green", "tab:purple")):
        swing = (lambda s: lambda t, w: s if t % 2 == 0 else -s)(size)
        for rule, decoupled, style in (("Adam + L2", False, "--"), ("AdamW", True, "-")):
            path = adam_trajectory(swing, n_steps, lr=lr, weight_decay=weight_decay, decoupled=decoupled)
            paths[rule, size] = path
            ax.plot(path, style, color=colour, lw=1.5 if decoupled and size != grad_sizes[0] else 3 if decoupled
                    else 1.5, label=f"{rule}, gradients ±{size:g}")
    ax.set(xlabel="step", ylabel="the weight", ylim=(-0.1, 1.05),
           title=f"Weight decay {weight_decay:g} at lr {lr:g}: Adam + L2 against AdamW")
    ax.legend(fontsize=8)
    ax.paths = paths
    return ax


def draw_three_sets(sizes: Sequence[int] = (50_000, 10_000, 10_000), ax=None):
    """Draw the three data sets (training, validation, test: `sizes` images each) as bars of proportional
    width, and below them who may look at which: the optimizer fits on training only; every choice (learning
    rate, epochs, model, loss) is made on validation; the test set is scored once, at the end. Introduced in
    the `softmax` notebook. Returns the Axes; `ax.may_look` is the table drawn, {(who, set): True/False}."""
    if len(sizes) != 3:
        raise ValueError(f"draw_three_sets needs three sizes (training, validation, test), got {len(sizes)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    sets = ("training", "validation", "test")
    colours = ("tab:blue", "tab:orange", "tab:green")
    widths = [max(n / sum(sizes), 0.22) for n in sizes]  # proportional, but wide enough for a label
    left, centres = 0.0, []
    for name, n, colour, width in zip(sets, sizes, colours, [w / sum(widths) for w in widths]):
        ax.add_patch(patches.Rectangle((left, 3.0), width, 0.8, facecolor=colour, alpha=0.35, edgecolor=colour))
        ax.text(left + width / 2, 3.4, f"{name}\n{n:,} images", ha="center", va="center", fontsize=8)
        centres.append(left + width / 2)
        left += width
    who = {"the optimizer (every step)": (True, False, False),
           "you, choosing lr, epochs, model": (False, True, False),
           "the figure you quote (once, at the end)": (False, False, True)}
    may_look = {}
    for row, (person, allowed) in enumerate(who.items()):
        y = 2.2 - 0.75 * row
        ax.text(-0.02, y, person, ha="right", va="center", fontsize=8)
        for name, x, ok in zip(sets, centres, allowed):
            may_look[person, name] = ok
            ax.text(x, y, "✓ looks" if ok else "✗", ha="center", va="center", fontsize=9,
                    color="tab:green" if ok else "lightgrey", weight="bold" if ok else "normal")
    ax.set_xlim(-0.62, 1.0)
    ax.set_ylim(0.4, 4.0)
    ax.axis("off")
    ax.set_title("Three sets, and who may look at which")
    ax.may_look = may_look
    return ax


def draw_backprop_shapes(n: int = 30, n_in: int = 4, n_out: int = 10, ax=None):
    """Draw the shapes of a linear layer's backward pass, z = x Wᵀ + b, as rectangles of proportional size:
    the input x [n, n_in], the weight W [n_out, n_in] and the upstream gradient dz [n, n_out] on top, then
    each product the chain rule needs: dW = dzᵀ @ x, db = dz.sum(0), dx = dz @ W. Every gradient comes out
    with its variable's shape (checked with torch here). Introduced in the `backprop` notebook. Returns the
    Axes; `ax.shapes` maps each drawn name to its shape."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    x, W, dz = torch.zeros(n, n_in), torch.zeros(n_out, n_in), torch.zeros(n, n_out)
    rows = [  # (label, [(name, tensor or operator)])
        ("forward", [("x", x), ("@", None), ("Wᵀ", W.T), ("→", None), ("z", dz)]),
        ("dW = dzᵀ @ x", [("dzᵀ", dz.T), ("@", None), ("x", x), ("=", None), ("dW", dz.T @ x)]),
        ("db = dz.sum(0)", [("dz", dz), ("sum over rows", None), ("db", dz.sum(0, keepdim=True))]),
        ("dx = dz @ W", [("dz", dz), ("@", None), ("W", W), ("=", None), ("dx", dz @ W)]),
    ]
    scale = 0.9 / max(n, n_in, n_out)
    shapes, top = {}, 0.0
    for label, items in rows:
        height = max(t.shape[0] for _, t in items if t is not None) * scale
        middle = top - height / 2
        ax.text(-0.3, middle, label, ha="right", va="center", fontsize=9, family="monospace")
        left = 0.0
        for name, t in items:
            if t is None:
                slot = 0.35 if len(name) < 3 else 0.9
                ax.text(left + slot / 2, middle, name, ha="center", va="center", fontsize=11 if len(name) < 3 else 7)
                left += slot
                continue
            h, w = t.shape[0] * scale, t.shape[1] * scale
            slot = max(w, 0.6)
            gradient = name.startswith("d")
            ax.add_patch(patches.Rectangle((left + (slot - w) / 2, middle - h / 2), w, h,
                                           facecolor="mistyrose" if gradient else "aliceblue",
                                           edgecolor="tab:red" if gradient else "tab:blue"))
            shape = (t.shape[1],) if name == "db" else tuple(t.shape)
            ax.text(left + slot / 2, middle - h / 2 - 0.04, f"{name} {list(shape)}", ha="center", va="top", fontsize=8)
            shapes.setdefault(name, shape)
            left += slot + 0.1
        top -= height + 0.45
    if shapes["dW"] != tuple(W.shape) or shapes["dx"] != tuple(x.shape) or shapes["db"] != (n_out,):
        raise AssertionError("draw_backprop_shapes: a gradient's shape differs from its variable's.")
    ax.set_xlim(-1.8, 3.6)
    ax.set_ylim(top + 0.2, 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Backward through a linear layer z = x Wᵀ + b (batch of {n}): every gradient has its variable's shape",
                 fontsize=9)
    ax.shapes = shapes
    return ax


# --- Pictures of the gpu_loop, transfer and language_model notebooks (issue 23) ---------------------------------

def draw_memory_order(channels: int = 3, height: int = 2, width: int = 2, ax=None):
    """Two rows of boxes: the order in which an image's numbers sit in memory, NCHW above, channels_last below.

    Each box is one number, labelled with its channel and pixel (`c0 p3`: channel 0 of pixel 3, pixels counted
    row by row), coloured by channel. NCHW (PyTorch's default) stores all of channel 0, then all of channel 1;
    channels_last stores the channels of one pixel side by side. The order is read from torch itself (the
    strides of `contiguous(memory_format=torch.channels_last)`), not typed in. Returns the Axes.
    Introduced in the `gpu_loop` notebook.
    """
    channels = positive_int(channels, "channels", example="3")
    height, width = positive_int(height, "height", example="2"), positive_int(width, "width", example="2")
    label = torch.arange(channels * height * width).reshape(1, channels, height, width)
    layouts = [("NCHW (default)", label.contiguous()),
               ("channels_last (NHWC)", label.contiguous(memory_format=torch.channels_last))]
    n = label.numel()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.62 * n + 2.2), 2.2))
    cmap = plt.get_cmap("tab10")
    for row, (name, t) in enumerate(layouts):
        y = -1.3 * row
        # position in memory of each element = its offset from the strides
        offsets = sum(torch.arange(s).reshape([-1 if d == i else 1 for d in range(4)]) * st
                      for i, (s, st) in enumerate(zip(t.shape, t.stride())))
        in_memory = [None] * n
        for value, offset in zip(label.flatten().tolist(), offsets.flatten().tolist()):
            in_memory[offset] = value
        for pos, value in enumerate(in_memory):
            c, p = divmod(value, height * width)
            ax.add_patch(patches.Rectangle((pos, y), 1, 1, facecolor=cmap(c % 10), alpha=0.45, edgecolor="black"))
            ax.text(pos + 0.5, y + 0.5, f"c{c}\np{p}", ha="center", va="center", fontsize=7)
        ax.text(-0.2, y + 0.5, name, ha="right", va="center", fontsize=9)
    ax.annotate("", xy=(n, 1.25), xytext=(0, 1.25), arrowprops=dict(arrowstyle="->", color="tab:grey"))
    ax.text(n / 2, 1.35, "address in memory →", ha="center", va="bottom", fontsize=8, color="tab:grey")
    ax.set_title(f"One image of {channels} channels × {height}×{width} pixels, as it sits in memory")
    ax.set_xlim(-4.2, n + 0.2)
    ax.set_ylim(-1.5, 1.9)
    ax.axis("off")
    return ax


def draw_crash_resume(n_epochs: int = 3, crash_after: int = 2, ax=None):
    """The checkpoint experiment as a timeline: run A trains `n_epochs` straight; run B saves a checkpoint after
    each epoch and crashes after `crash_after`; run C, a new process, loads the last checkpoint and trains the
    remaining epochs. One bar per epoch trained, a diamond per checkpoint written, a cross at the crash, an
    arrow for the load. Returns the Axes. Introduced in the `gpu_loop` notebook.
    """
    n_epochs = positive_int(n_epochs, "n_epochs", example="3")
    crash_after = positive_int(crash_after, "crash_after", example="2")
    if crash_after >= n_epochs:
        raise ValueError(f"crash_after={crash_after} must come before the last epoch (n_epochs={n_epochs}).")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * n_epochs + 3.5, 2.6))
    rows = [("run A: straight through", range(n_epochs), "tab:blue"),
            ("run B: checkpoints, crash", range(crash_after), "tab:orange"),
            ("run C: new process, resume", range(crash_after, n_epochs), "tab:green")]
    for r, (name, epochs, colour) in enumerate(rows):
        y = -r
        ax.text(-0.15, y, name, ha="right", va="center", fontsize=9)
        for e in epochs:
            ax.add_patch(patches.Rectangle((e + 0.05, y - 0.25), 0.9, 0.5, facecolor=colour, alpha=0.6,
                                           edgecolor="black"))
            ax.text(e + 0.5, y, f"epoch {e + 1}", ha="center", va="center", fontsize=8)
    for e in range(crash_after):  # run B's checkpoints
        ax.plot(e + 1, -1 + 0.38, "D", color="black", ms=6)
    ax.plot(crash_after + 0.2, -1, "x", color="tab:red", ms=14, mew=3)
    ax.text(crash_after + 0.35, -1, "crash", color="tab:red", va="center", fontsize=9)
    ax.annotate("", xy=(crash_after + 0.05, -2 + 0.3), xytext=(crash_after, -1 + 0.38),
                arrowprops=dict(arrowstyle="->", color="black", lw=1.2))
    ax.text(crash_after - 0.1, -1.55, "load the last\ncheckpoint", ha="right", va="center", fontsize=8)
    ax.text(n_epochs + 0.1, -1, "= A's weights,\nbit for bit", ha="left", va="center", fontsize=9)
    ax.annotate("", xy=(n_epochs + 0.05, -0.2), xytext=(n_epochs + 0.05, -1.8),
                arrowprops=dict(arrowstyle="<->", color="tab:grey"))
    ax.set_title("Crash and resume: ◆ a checkpoint written after an epoch")
    ax.set_xlim(-2.6, n_epochs + 1.4)
    ax.set_ylim(-2.6, 0.7)
    ax.axis("off")
    return ax


TRANSFER_LAYERS = ("conv 1", "conv 2", "hidden linear", "output linear")
TRANSFER_REGIMES = {  # for each regime, the state of each layer: "random", "trained" (pretrained, trains on),
    # "frozen" (pretrained, does not train), "new" (fresh output layer, trains)
    "scratch": ("random", "random", "random", "random"),
    "last layer": ("frozen", "frozen", "frozen", "new"),
    "frozen body": ("frozen", "frozen", "trained", "new"),
    "fine-tune, first half": ("frozen", "frozen", "trained", "new"),
    "fine-tune, second half": ("slow", "slow", "trained", "trained"),
}
_REGIME_STYLE = {"random": ("#f4cccc", "random start, trains"), "frozen": ("#cfe2f3", "pretrained, frozen"),
                 "trained": ("#b6d7a8", "trains at lr"), "slow": ("#d9ead3", "trains at lr / 10"),
                 "new": ("#ffe599", "new output layer, trains")}
_REGIME_WORD = {"random": "trains", "frozen": "frozen", "trained": "trains", "slow": "trains ÷ 10", "new": "new, trains"}


def draw_transfer_regimes(ax=None):
    """Which layers train under each way of learning the new task in the `transfer` notebook: one row per regime
    (`TRANSFER_REGIMES`), one box per layer of the CNN (`TRANSFER_LAYERS`), coloured by what that layer does:
    starts random and trains, stays frozen at its pretrained values, trains at the head's learning rate or at a
    tenth of it, or is the new output layer. Returns the Axes.
    Introduced in the `transfer` notebook.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    n_rows = len(TRANSFER_REGIMES)
    for r, (regime, states) in enumerate(TRANSFER_REGIMES.items()):
        y = n_rows - 1 - r
        ax.text(-0.1, y + 0.4, regime, ha="right", va="center", fontsize=9)
        for c, state in enumerate(states):
            colour, _ = _REGIME_STYLE[state]
            ax.add_patch(patches.Rectangle((c * 1.6, y), 1.5, 0.8, facecolor=colour, edgecolor="black",
                                           label=state))
            ax.text(c * 1.6 + 0.75, y + 0.4, _REGIME_WORD[state], ha="center", va="center", fontsize=8)
    for c, layer in enumerate(TRANSFER_LAYERS):
        ax.text(c * 1.6 + 0.75, n_rows + 0.05, layer, ha="center", va="bottom", fontsize=9)
    ax.text(1.55, n_rows + 0.45, "body", ha="center", va="bottom", fontsize=9, weight="bold")
    ax.text(4.75, n_rows + 0.45, "head", ha="center", va="bottom", fontsize=9, weight="bold")
    handles = [patches.Patch(facecolor=colour, edgecolor="black", label=text) for colour, text in _REGIME_STYLE.values()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title("Which layers train under each regime")
    ax.set_xlim(-2.6, 4 * 1.6)
    ax.set_ylim(-0.2, n_rows + 1.0)
    ax.axis("off")
    return ax


def draw_context_windows(name: str = "emma", context: int = 3, ax=None):
    """The context window sliding along `.name.`: one row per training example, the `context` characters the
    model sees in a blue frame and the character it must predict in orange, after the window starts full of
    `.` markers. Returns the Axes. Introduced in the `language_model` notebook.
    """
    context = positive_int(context, "context", example="3")
    if not name or not all("a" <= ch <= "z" for ch in name):
        raise ValueError(f"draw_context_windows draws a name of lowercase letters a-z, got {name!r}.")
    padded = "." * context + name + "."
    n_rows = len(name) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * len(padded) + 2.5, 0.5 * n_rows + 0.9))
    for r in range(n_rows):
        y = n_rows - 1 - r
        for i, ch in enumerate(padded):
            role = "context" if r <= i < r + context else "target" if i == r + context else None
            face = {"context": "#cfe2f3", "target": "#ffe599", None: "white"}[role]
            ax.add_patch(patches.Rectangle((i, y), 0.9, 0.8, facecolor=face, gid=role,
                                           edgecolor="black" if role else "#cccccc"))
            ax.text(i + 0.45, y + 0.4, ch, ha="center", va="center", fontsize=10,
                    color="black" if role else "#aaaaaa")
        window = padded[r:r + context]
        ax.text(len(padded) + 0.3, y + 0.4, f"{window} → {padded[r + context]}", va="center", fontsize=10,
                family="monospace")
    ax.set_title(f"A context of {context} sliding along '.{name}.': {n_rows} examples "
                 "(blue: what the model sees, yellow: what it must predict)", fontsize=10)
    ax.set_xlim(-0.2, len(padded) + 2.8)
    ax.set_ylim(-0.2, n_rows)
    ax.axis("off")
    return ax


def draw_char_mlp(context: int = 3, emb_dim: int = 16, hidden: int = 256, example: str = ".em", ax=None):
    """The Bengio et al. (2003) character MLP as boxes and arrows: `context` characters → one embedding of
    `emb_dim` numbers each (the same table for every position) → the vectors side by side (`context × emb_dim`)
    → a hidden layer with tanh (`hidden`) → 27 logits → softmax over the next character. `example` gives the
    characters drawn in the input boxes. Returns the Axes. Introduced in the `language_model` notebook.
    """
    context = positive_int(context, "context", example="3")
    emb_dim, hidden = positive_int(emb_dim, "emb_dim", example="16"), positive_int(hidden, "hidden", example="256")
    if len(example) != context:
        raise ValueError(f"example={example!r} has {len(example)} characters for a context of {context}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 0.7 * context + 2.4))
    mid = (context - 1) / 2

    def box(x, y, w, h, text, colour, gid):
        ax.add_patch(patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                            facecolor=colour, edgecolor="black", gid=gid))
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="tab:grey"))

    for i, ch in enumerate(example):
        y = context - 1 - i
        box(0, y, 0.6, 0.6, repr(ch), "#f3f3f3", "character")
        box(2, y, 1.6, 0.6, f"embedding\n{emb_dim} numbers", "#cfe2f3", "embedding")
        arrow(0.35, y, 1.15, y)
        arrow(2.85, y, 4.0, mid)
    ax.text(2, context - 0.35, "C[index]: one table,\nshared by every position", ha="center", va="bottom", fontsize=8)
    steps = [(4.9, f"concatenate\n{context} × {emb_dim} = {context * emb_dim}", "#d9ead3", "concat"),
             (7.0, f"linear + tanh\n{hidden} units", "#b6d7a8", "hidden"),
             (9.0, "linear\n27 logits", "#ffe599", "logits"),
             (10.8, "softmax\nP(next char)", "#fce5cd", "softmax")]
    for k, (x, text, colour, gid) in enumerate(steps):
        box(x, mid, 1.6, 0.9, text, colour, gid)
        if k:
            arrow(steps[k - 1][0] + 0.85, mid, x - 0.85, mid)
    ax.set_title(f"A character MLP (Bengio et al., 2003): the last {context} characters → the next one")
    ax.set_xlim(-0.6, 11.8)
    ax.set_ylim(-0.7, context + 0.4)
    ax.axis("off")
    return ax

__all__ += ["draw_memory_order", "draw_crash_resume", "draw_transfer_regimes", "TRANSFER_LAYERS", "TRANSFER_REGIMES",
            "draw_context_windows", "draw_char_mlp"]
