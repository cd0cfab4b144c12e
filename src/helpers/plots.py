"""Pictures: digits as images and functions as curves.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Every function takes `ax=None`: pass an existing matplotlib Axes to draw into it, or let it make one.
`show_images` is used from the `start` notebook on; `show_image` is introduced in the `tensors` notebook and
`plot_function` in the `gradients` notebook.

Pictures of small tensors as boxes of numbers (`draw_grid`, `draw_stack`, `draw_stretched`, `draw_shapes`) draw
the `tensors` notebook's figures of shapes, views and broadcasting; `plot_descent_paths` draws a loss over two
parameters as a contour map with the trails of descent runs on it (the `gradients` notebook).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["show_image", "show_images", "plot_function", "draw_grid", "draw_stack", "draw_stretched", "draw_shapes",
           "plot_descent_paths"]


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
