"""Pictures: digits as images and functions as curves.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Every function takes `ax=None`: pass an existing matplotlib Axes to draw into it, or let it make one.
`show_images` is used from the `start` notebook on; `show_image` is introduced in the `tensors` notebook and
`plot_function` in the `gradients` notebook.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["show_image", "show_images", "plot_function"]


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
