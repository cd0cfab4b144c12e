"""Pictures: digits as images, functions as curves, and small diagrams of what a layer does.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Every function takes `ax=None` (`axs=None` for two panels): pass existing matplotlib Axes to draw into, or let it
make them.
`show_images` is used from the `start` notebook on; `show_image` is introduced in the `tensors` notebook and
`plot_function` in the `gradients` notebook, `plot_norm_axes` in the `activations` notebook and
`plot_dropout_masks` in the `regularization` notebook.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["show_image", "show_images", "plot_function", "plot_norm_axes", "plot_dropout_masks"]


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
