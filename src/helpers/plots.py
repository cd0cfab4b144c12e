"""Pictures: digits as images, functions as curves, networks and computational graphs as boxes and arrows.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Every function takes `ax=None`: pass an existing matplotlib Axes to draw into it, or let it make one.
`show_images` is used from the `start` notebook on; `show_image` is introduced in the `tensors` notebook,
`plot_function` in the `gradients` notebook, and `draw_network`, `draw_graph` in the `backprop` notebook
(`helpers.autograd` turns a `Value` or a PyTorch graph into the nodes and edges that `draw_graph` draws).
"""

from __future__ import annotations

import math
from collections import Counter, namedtuple
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["show_image", "show_images", "plot_function", "draw_network", "GraphNode", "graph_layout", "draw_graph"]


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
