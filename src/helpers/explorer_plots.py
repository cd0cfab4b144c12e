"""The explorers' figures: each draws an experiment's result (from `helpers.experiments`) into PNG bytes.

Layer 4 of the helpers package: imports `experiments` (and lower layers), never `widgets`. Everything is drawn
with matplotlib's Agg renderer straight to PNG bytes (no pyplot, so nothing shows up twice in a notebook),
which an `Image` widget shows in every front end (JupyterLab, Colab, Kaggle, VS Code) without ipympl; a test
or a notebook can call these without any widget.

- `LossAccuracyFigure().draw(history, previous)`: the learning-rate explorer's loss and accuracy curves.
- `batch_size_figure(rows)` and `batch_size_table(rows)`: the batch-size comparison as plots and a table.
- `QuadraticFigure().draw(result)`: gradient descent on the quadratic's loss surface.
- `TemperatureFigure().draw(result)`: `temperature_samples`' first-letter distribution and its entropy.
- `AttentionFigure(layers, heads, context).draw(result)`: `attention_patterns`' heads as heat maps over the
  characters so far, beside the next-character distribution at every position.
- `GraphFigure().draw(graph, losses)`: the graph explorer's computational graph, every node with its value
  and gradient, beside the loss after each step.
- `new_figure(...)` and `png_bytes(fig)`: the two steps every figure here shares (a new explorer uses them).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from .autograd import value_graph
from .experiments import GRAPH_PARAMS, TEMPERATURE_RANGE, History, quadratic_loss_grid
from .plots import draw_graph

__all__ = [
    "new_figure",
    "png_bytes",
    "LossAccuracyFigure",
    "batch_size_figure",
    "batch_size_table",
    "QuadraticFigure",
    "TemperatureFigure",
    "AttentionFigure",
    "GraphFigure",
]


def new_figure(figsize, ncols: int, width_ratios=None):
    """A matplotlib `Figure` on an Agg canvas (no pyplot) with `ncols` axes side by side: `(fig, axes)`.

    `width_ratios` (one number per axes) makes some axes wider than others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, gridspec_kw=None if width_ratios is None else {"width_ratios": width_ratios})
    return fig, axes


def png_bytes(fig, draw: bool = True) -> bytes:
    """The figure as PNG bytes (fast zlib level); `draw=False` when the canvas was already drawn (blitting)."""
    from PIL import Image as PILImage

    if draw:
        fig.canvas.draw()
    w, h = fig.canvas.get_width_height(physical=True)
    buf = io.BytesIO()
    PILImage.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
        buf, format="png", compress_level=1)
    return buf.getvalue()


def static_background(fig, dynamic) -> object:
    """Draw `fig` without its `dynamic` artists and return that picture of the static parts (axes, labels,
    grids), for blitting: each redraw restores it and draws only the artists that changed."""
    for artist in dynamic:
        artist.set_visible(False)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    for artist in dynamic:
        artist.set_visible(True)
    return background


def _finite(values):
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


class LossAccuracyFigure:
    """The learning-rate explorer's two panels, loss and validation accuracy per epoch, for one `History`
    bold and the previous one faint. The frame (axes, ticks, legends) is drawn once per axis range and
    cached; each run only draws its lines on top. Redrawing text is what makes matplotlib slow, so this keeps
    a slider change quick.
    """

    LOSS_TOP = 0.4  # the untrained model starts near 0.25; a blow-up runs off the top, where a red line marks it

    def __init__(self):
        self.fig, (self.ax_loss, self.ax_acc) = new_figure((9.5, 3.3), 2)
        a, b = self.ax_loss, self.ax_acc
        self.prev_train, = a.plot([], [], color="0.55", lw=1, alpha=0.6, label="previous run: train")
        self.prev_valid, = a.plot([], [], "s--", color="0.55", ms=4, alpha=0.6, label="previous run: valid")
        self.train, = a.plot([], [], color="C0", lw=1.2, label="train (each mini-batch)")
        self.valid, = a.plot([], [], "o-", color="C1", ms=5, label="valid (end of epoch)")
        self.blowup = a.axvline(0, color="C3", ls=":", lw=2, label="diverged here (if it did)")
        a.set_title("Loss while training")
        a.set_xlabel("epoch")
        a.set_ylabel("loss (MSE of the sigmoid)")
        a.set_ylim(0, self.LOSS_TOP)
        a.grid(alpha=0.3)
        a.legend(loc="upper right", fontsize=8)
        self.prev_acc, = b.plot([], [], "s--", color="0.55", ms=4, alpha=0.6, label="previous run")
        self.acc, = b.plot([], [], "o-", color="C2", ms=5, label="this run")
        b.set_title("Validation accuracy")
        b.set_xlabel("epoch")
        b.set_ylabel("accuracy")
        b.grid(alpha=0.3)
        b.legend(loc="lower right", fontsize=8)
        self.dynamic = [self.prev_train, self.prev_valid, self.train, self.valid, self.blowup, self.prev_acc,
                        self.acc]
        self.fig.tight_layout()
        self.key, self.background = None, None

    @staticmethod
    def _set(lines, h):
        train, valid, acc = lines
        if h is None:
            for line in lines:
                line.set_data([], [])
            return
        train.set_data(np.arange(1, len(h.train_loss) + 1) / h.steps_per_epoch, _finite(h.train_loss))
        valid.set_data(np.arange(1, len(h.valid_loss) + 1), h.valid_loss)
        acc.set_data(np.arange(1, len(h.valid_acc) + 1), h.valid_acc)

    def _frame(self, n_epochs: int, acc_low: float):
        key = (n_epochs, acc_low)
        if key == self.key:
            return
        self.ax_loss.set_xlim(0, n_epochs)
        self.ax_acc.set_xlim(0.5, n_epochs + 0.5)
        self.ax_acc.set_ylim(acc_low, 1.0)
        self.background = static_background(self.fig, self.dynamic)
        self.key = key

    def draw(self, h: History, prev: History | None = None) -> bytes:
        """PNG bytes of run `h` (bold) over run `prev` (faint; None for none)."""
        runs = [r for r in (h, prev) if r is not None]
        accs = [a for r in runs for a in r.valid_acc]
        acc_low = 0.9 if min(accs, default=1.0) >= 0.9 else 0.4
        self._frame(max(r.n_epochs for r in runs), acc_low)
        self._set((self.train, self.valid, self.acc), h)
        self._set((self.prev_train, self.prev_valid, self.prev_acc), prev)
        self.blowup.set_visible(h.status == "diverged")
        if h.status == "diverged":
            x = (h.diverged_at + 1) / h.steps_per_epoch
            self.blowup.set_xdata([x, x])
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in self.dynamic:
            if artist.get_visible():
                artist.axes.draw_artist(artist)
        return png_bytes(self.fig, draw=False)


def batch_size_figure(rows: list[dict]) -> bytes:
    """Three panels for `compare_batch_sizes`' rows: the training loss per epoch of data seen, the gradient's
    noise against 1/sqrt(bs), and the validation accuracy with the time per epoch."""
    fig, (a, b, c) = new_figure((12, 3.4), 3)
    for i, r in enumerate(rows):
        h = r["history"]
        x = np.arange(1, len(h.train_loss) + 1) / h.steps_per_epoch
        k = max(1, len(h.train_loss) // 200)  # smooth very long curves so they stay readable
        y = np.convolve(_finite(h.train_loss), np.ones(k) / k, mode="valid")
        a.plot(x[k - 1:], y, lw=1, color=f"C{i % 10}", label=f"bs {r['bs']}")
    a.set_title("Training loss per epoch of data seen")
    a.set_xlabel("epochs (passes over the training set)")
    a.set_ylabel("train loss (MSE of sigmoid)")
    a.set_ylim(0, None)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    bs = np.array([r["bs"] for r in rows], dtype=float)
    noise = np.array([r["grad_noise"] for r in rows])
    positive = noise > 0
    b.loglog(bs[positive], noise[positive], "o-", color="C0", label="measured ‖g_batch − g_full‖")
    ref_at_1 = noise[0] * math.sqrt(bs[0]) if len(rows) and noise[0] > 0 else None
    if ref_at_1:
        grid = np.logspace(0, math.log10(bs.max()), 50)
        b.loglog(grid, ref_at_1 / np.sqrt(grid), "--", color="0.4", label="∝ 1/sqrt(bs)")
    b.set_title("Noise in the gradient estimate")
    b.set_xlabel("batch size (log scale)")
    b.set_ylabel("mean distance to full gradient")
    b.grid(alpha=0.3, which="both")
    b.legend(fontsize=7)
    c.semilogx(bs, [r["valid_acc"] for r in rows], "o-", color="C2", label="valid accuracy")
    c.set_xlabel("batch size (log scale)")
    c.set_ylabel("valid accuracy", color="C2")
    c.set_title("Accuracy and time per epoch")
    c.grid(alpha=0.3)
    c2 = c.twinx()
    c2.semilogx(bs, [r["seconds_per_epoch"] for r in rows], "s--", color="C3", label="seconds per epoch")
    c2.set_ylabel("seconds per epoch", color="C3")
    fig.tight_layout()
    return png_bytes(fig)


def batch_size_table(rows: list[dict]) -> str:
    """`compare_batch_sizes`' rows as an HTML table, one row per batch size."""
    head = ("<table class='p2g-table'><tr><th>batch size</th><th>steps per epoch</th><th>updates seen</th>"
            "<th>gradient noise</th><th>time per epoch</th><th>valid accuracy</th><th>status</th></tr>")
    body = "".join(
        f"<tr><td>{r['bs']}</td><td>{r['steps_per_epoch']}</td><td>{r['updates']}</td>"
        f"<td>{r['grad_noise']:.4f}</td><td>{r['seconds_per_epoch']:.3f} s</td>"
        f"<td>{r['valid_acc']:.1%}</td><td>{r['status']}</td></tr>"
        for r in rows)
    return f"<style>.p2g-table td, .p2g-table th {{padding: 2px 10px; text-align: right;}}</style>{head}{body}</table>"

class QuadraticFigure:
    """`quadratic_descent`'s result in three panels, redrawn per run: the path on the loss surface, the loss
    per step and the fit. The layout (tight_layout, a large share of a redraw's time; benchmarks/slider_latency.py
    times the redraws) is computed on the first draw only: the map's and the fit's limits never change, and the
    loss panel's ticks barely do.
    """

    def __init__(self):
        self.fig, (self.ax_map, self.ax_loss, self.ax_fit) = new_figure((12, 3.5), 3)
        self.laid_out = False

    def draw(self, r: dict) -> bytes:
        """PNG bytes of one `quadratic_descent` result."""
        for ax in (self.ax_map, self.ax_loss, self.ax_fit):
            ax.clear()
        best, path = r["best"], r["path"]
        t = torch.as_tensor(r["t"], dtype=torch.float64)
        speed = torch.as_tensor(r["speed"], dtype=torch.float64)
        start, goal = path[0], np.array([best[0], best[2]])
        lo, hi = np.minimum(start, goal), np.maximum(start, goal)
        pad = (hi - lo) * 0.6 + 1.0
        a_lim, c_lim = (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])
        A, C = torch.meshgrid(torch.linspace(*a_lim, 120, dtype=torch.float64),
                              torch.linspace(*c_lim, 120, dtype=torch.float64), indexing="ij")
        L = quadratic_loss_grid(t, float(best[1]), speed, A, C).numpy()
        m = self.ax_map
        m.contour(A.numpy(), C.numpy(), L, levels=np.geomspace(max(L.min(), 1e-6), L.max(), 14), cmap="viridis",
                  linewidths=0.8)
        m.plot(path[:, 0], path[:, 1], ".-", color="C3", lw=1, ms=5, label="gradient descent")
        m.plot(*start, "ko", ms=5, label="start")
        m.plot(*goal, "*", color="gold", mec="k", ms=12, label="minimum")
        m.set_xlim(*a_lim)
        m.set_ylim(*c_lim)
        m.set_title(f"Loss surface (b fixed), lr = {r['lr']:.2g}")
        m.set_xlabel("a (coefficient of t²)")
        m.set_ylabel("c (constant)")
        m.legend(fontsize=7, loc="upper right")
        losses = r["losses"]
        self.ax_loss.semilogy(np.arange(len(losses)), np.clip(losses, 1e-12, 1e12), "o-", ms=3)
        self.ax_loss.axhline(r["best_loss"], color="gold", ls="--", label="best possible")
        self.ax_loss.set_title(f"Loss per step: {r['verdict']}")
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("mean squared error (log scale)")
        self.ax_loss.legend(fontsize=7)
        self.ax_loss.grid(alpha=0.3)
        f = self.ax_fit
        f.scatter(r["time"], r["speed"], s=12, color="k", label="data")
        a, c = path[-1]
        if np.isfinite(a) and np.isfinite(c) and abs(a) < 1e6:
            f.plot(r["time"], a * r["t"] ** 2 + best[1] * r["t"] + c, color="C3", label="after the last step")
        f.set_ylim(min(r["speed"]) - 10, max(r["speed"]) + 10)
        f.set_title("The fit")
        f.set_xlabel("time")
        f.set_ylabel("speed")
        f.legend(fontsize=7)
        if not self.laid_out:
            self.fig.tight_layout()
            self.laid_out = True
        return png_bytes(self.fig)


class TemperatureFigure:
    """`temperature_samples`' result in two panels: the distribution of a name's first letter at the chosen
    temperature (bars) over the model's own, T = 1 (outline), and that distribution's entropy against the
    temperature, with the chosen one marked. The figure and its artists are made once; a redraw only sets their
    data and titles.
    """

    def __init__(self):
        from .language import ALPHABET

        self.fig, (self.ax_bars, self.ax_curve) = new_figure((10, 3.2), 2)
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.86, wspace=0.25)
        b, c = self.ax_bars, self.ax_curve
        x = np.arange(len(ALPHABET))
        self.bars = b.bar(x, np.zeros(len(ALPHABET)), color="C0", label="at this temperature")
        self.outline, = b.step(x, np.zeros(len(ALPHABET)), where="mid", color="0.3", lw=1, label="T = 1 (the model's own)")
        b.set_xticks(x, list(ALPHABET), fontsize=7)
        b.set_xlabel("first character of a name")
        b.set_ylabel("probability")
        b.legend(loc="upper right", fontsize=8)
        self.curve, = c.semilogx([], [], color="C1")
        self.marker, = c.semilogx([], [], "o", color="C3", ms=7)
        self.uniform = c.axhline(0, color="0.5", ls="--", lw=1, label="uniform over 27: log 27")
        c.set_xlim(*TEMPERATURE_RANGE)
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10) if TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]]
        c.set_xticks(ticks, [f"{t:g}" for t in ticks])
        c.minorticks_off()
        c.set_xlabel("temperature T (log scale)")
        c.set_ylabel("entropy (nats)")
        c.grid(alpha=0.3)
        c.legend(loc="lower right", fontsize=8)

    def draw(self, r: dict) -> bytes:
        """PNG bytes of one `temperature_samples` result."""
        probs, base = np.asarray(r["first_probs"]), np.asarray(r["first_probs_t1"])
        self.outline.set_ydata(base)
        self.curve.set_data(r["curve_t"], r["curve_entropy"])
        self.uniform.set_ydata([r["max_entropy"]] * 2)
        self.ax_curve.set_ylim(0, r["max_entropy"] * 1.08)
        for bar, p in zip(self.bars, probs):
            bar.set_height(p)
        self.ax_bars.set_ylim(0, max(probs.max(), base.max()) * 1.1)
        self.marker.set_data([r["temperature"]], [r["first_entropy"]])
        self.ax_bars.set_title(f"First letter at T = {r['temperature']:.2f}: entropy {r['first_entropy']:.2f} nats")
        self.ax_curve.set_title("Entropy of the first-letter distribution")
        return png_bytes(self.fig)


class AttentionFigure:
    """`attention_patterns`' result: one heat map per head (a row per layer), row t = what position t looks at
    among the characters so far, and on the right the next-character distribution at every position, the
    character that really comes next outlined. The axes and images are made once, `context` wide; a new name
    redraws the frame (ticks, limits) once, and every other change only redraws the images and the title on that
    frame (blitting), which keeps a slider change fast.
    """

    def __init__(self, n_layers: int, n_heads: int, context: int):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from .language import ALPHABET

        self.context = context
        self.fig = Figure(figsize=(1.7 * n_heads + 3.4, 1.75 * n_layers + 0.8), dpi=72)
        FigureCanvasAgg(self.fig)
        grid = self.fig.add_gridspec(n_layers, n_heads + 1, width_ratios=[1] * n_heads + [1.5],
                                     left=0.04, right=0.98, bottom=0.08, top=0.88, wspace=0.35, hspace=0.5)
        blank = np.full((context, context), np.nan)
        self.heads, self.images = [], []
        for layer in range(n_layers):
            for head in range(n_heads):
                ax = self.fig.add_subplot(grid[layer, head])
                self.images.append(ax.imshow(blank, cmap="Blues", vmin=0, vmax=1, interpolation="nearest"))
                ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
                ax.tick_params(length=0, labelsize=7)
                self.heads.append(ax)
        self.ax_probs = self.fig.add_subplot(grid[:, n_heads])
        self.probs_image = self.ax_probs.imshow(np.full((len(ALPHABET), context), np.nan), cmap="Oranges", vmin=0,
                                                vmax=1, aspect="auto", interpolation="nearest")
        self.truth, = self.ax_probs.plot([], [], "s", ms=8, mfc="none", mec="C3", mew=1.5, label="what came next")
        self.ax_probs.set_yticks(range(len(ALPHABET)), list(ALPHABET), fontsize=7)
        self.ax_probs.tick_params(length=0, labelsize=7)
        self.ax_probs.set_title("next character, at each position", fontsize=8)
        self.ax_probs.set_xlabel("position (the character just read)", fontsize=8)
        self.ax_probs.legend(loc="lower right", fontsize=7)
        self.title = self.fig.text(0.04, 0.95, "", fontsize=10)
        self.dynamic = [*self.images, self.probs_image, self.truth, self.title]
        self.shown_inputs, self.background = None, None

    def _frame(self, inputs: list[str]) -> None:
        if inputs == self.shown_inputs:
            return
        T = len(inputs)
        for ax in self.heads:
            ax.set_xlim(-0.5, T - 0.5)
            ax.set_ylim(T - 0.5, -0.5)
            ax.set_xticks(range(T), inputs)
            ax.set_yticks(range(T), inputs)
        self.ax_probs.set_xlim(-0.5, T - 0.5)
        self.ax_probs.set_xticks(range(T), inputs)
        self.background = static_background(self.fig, self.dynamic)
        self.shown_inputs = list(inputs)

    def draw(self, r: dict) -> bytes:
        """PNG bytes of one `attention_patterns` result."""
        from .language import ALPHABET

        T, inputs = len(r["inputs"]), r["inputs"]
        self._frame(inputs)
        below = np.tril(np.ones((T, T))) > 0  # the past and the present; the future stays blank
        for image, w in zip(self.images, np.asarray(r["weights"]).reshape(-1, T, T)):
            padded = np.full((self.context, self.context), np.nan)
            padded[:T, :T] = np.where(below, w, np.nan)
            image.set_data(padded)
        probs = np.full((len(ALPHABET), self.context), np.nan)
        probs[:, :T] = np.asarray(r["probs"]).T
        self.probs_image.set_data(probs)
        self.truth.set_data(range(T), [ALPHABET.index(c) for c in r["targets"]])
        self.title.set_text(f"Reading '.{r['name']}': each head's row = the position that looks, columns = what it "
                            f"looks at.  Right: T = {r['temperature']:.2f}; loss {r['loss']:.2f} nats/char (T = 1)")
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in self.dynamic:
            (artist.axes or self.fig).draw_artist(artist)
        return png_bytes(self.fig, draw=False)


_WEIGHT_COLOUR = "#d9ead3"  # the weights a step changes: green, the inputs stay blue


class GraphFigure:
    """The graph explorer's picture: `tiny_graph`'s computational graph, each box with its node's value and
    gradient (the weights a step changes in green), and the loss after each step beside it.

    The graph's shape never changes, only its numbers: the boxes and arrows are laid out on the first draw,
    and later draws only rewrite the text in the boxes and move the loss line (its panel has no ticks, whose
    layout would cost more than the rest of a redraw), which keeps a redraw fast.
    """

    def __init__(self):
        self.fig, (self.ax_graph, self.ax_loss) = new_figure((15, 3.9), 2, width_ratios=(5.4, 1))
        self.fig.subplots_adjust(left=0.005, right=0.99, bottom=0.08, top=0.88, wspace=0.04)
        self.texts = None
        a = self.ax_loss
        (self.loss_line,) = a.plot([], [], "o-", ms=3, color="C3")
        a.set_xticks([])
        a.set_yticks([])
        a.set_xlabel("step")
        a.set_title("loss after each step", fontsize=10)
        self.loss_text = a.text(0.96, 0.94, "", transform=a.transAxes, ha="right", va="top", fontsize=9)

    def draw(self, graph: dict, losses=()) -> bytes:
        """PNG bytes of one `tiny_graph` result and the losses so far (one per step; may be empty)."""
        nodes, edges = value_graph(graph["root"])
        if self.texts is None or len(self.texts) != len(nodes):
            self.ax_graph.clear()
            ax = draw_graph(nodes, edges, ax=self.ax_graph, fontsize=8.5)
            self.texts = [ax.node_texts[n.id] for n in nodes]
            for node in nodes:
                if node.text.split("\n")[0] in GRAPH_PARAMS:
                    ax.node_boxes[node.id].set_facecolor(_WEIGHT_COLOUR)
        else:
            for text, node in zip(self.texts, nodes):
                text.set_text(node.text)
        s = graph["settings"]
        self.ax_graph.set_title(f"h = tanh(w1·x1 + w2·x2 + b),  ŷ = v·h,  loss = (ŷ − {s['target']:g})² = "
                                f"{graph['loss']:.4f}      (blue: inputs, green: weights)", fontsize=10)
        losses = list(losses) or [graph["loss"]]
        self.loss_line.set_data(range(len(losses)), losses)
        self.ax_loss.set_xlim(-0.5, max(len(losses) - 0.5, 5))
        self.ax_loss.set_ylim(0, max(losses) * 1.15 + 1e-9)
        self.loss_text.set_text(f"{losses[0]:.3g} → {losses[-1]:.3g}" if len(losses) > 1 else f"{losses[0]:.3g}")
        return png_bytes(self.fig)
