"""Sliders that retrain a real model: thin ipywidgets wiring from controls to an experiment to a figure.

Layer 5 of the helpers package (the top): the experiments live in `helpers.experiments`, their figures in
`helpers.explorer_plots`; this module only wires them to widgets.

- `lr_explorer()` puts sliders on `run_experiment`'s arguments and redraws the loss and accuracy curves.
- `batch_size_explorer()` shows `compare_batch_sizes` as a table and plots.
- `quadratic_lr_explorer()` draws every step of `quadratic_descent` on the loss surface.
- `temperature_explorer(model)` samples names from a trained next-character model (`temperature_samples`)
  with a temperature slider and a button for fresh samples, and shows the entropy of the choices.
- `attention_explorer(model)` shows what each head of the `attention` notebook's tiny GPT looks at in a name you
  type, the next-character distribution at every position, and names sampled at a temperature you set.
- `graph_explorer()` puts sliders on the inputs and weights of `tiny_graph`'s one-neuron network and redraws
  its computational graph, every node with its value and gradient; a "step" button takes a gradient step.
- `make_explorer(...)` is what each of them is built with.

A notebook shows an explorer with one line (`lr_explorer()`); outside a live Jupyter front end (nbval, a
static viewer) the same line shows the last run's plot and numbers instead of the sliders.

An explorer's controls are one table, `{experiment keyword: widget}`: the explorer passes every control's
value to the experiment under its key (`Explorer.values()`), so no code maps a control by hand, and
`make_explorer` refuses a key the experiment does not take. A new control is a change in three places:
1. the experiment's keyword argument (and its check) in `helpers.experiments`;
2. one entry in the explorer's `controls` table below (the layout follows the table's order);
3. the explorer's own keyword for the control's starting value.
A new explorer is an experiment function in `experiments`, a figure in `explorer_plots`, and a function here
that builds the table and an `update(ex, **values)` and returns `make_explorer(...).update()`.
Introduced in the `three_vs_seven` notebook (`lr_explorer`, `batch_size_explorer`), the `gradients`
notebook (`quadratic_lr_explorer`), the `backprop` notebook (`graph_explorer`), the `language_model`
notebook (`temperature_explorer`) and the `attention` notebook (`attention_explorer`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import inspect
import math
import time
from typing import Callable, Sequence

import numpy as np

from .experiments import (
    GRAPH_PARAMS,
    GRAPH_RANGE,
    MODELS,
    OPTIMIZERS,
    QUADRATIC_VERDICTS,
    TEMPERATURE_RANGE,
    attention_patterns,
    check_experiment_args,
    compare_batch_sizes,
    experiment_data,
    quadratic_data,
    quadratic_descent,
    run_experiment,
    temperature_samples,
    tiny_graph,
    tiny_graph_step,
)
from .explorer_plots import (
    AttentionFigure,
    GraphFigure,
    LossAccuracyFigure,
    QuadraticFigure,
    TemperatureFigure,
    batch_size_figure,
    batch_size_table,
)
from .validate import positive_int

__all__ = [
    "make_explorer",
    "lr_explorer",
    "batch_size_explorer",
    "quadratic_lr_explorer",
    "temperature_explorer",
    "attention_explorer",
    "graph_explorer",
]

_STYLE = {"description_width": "initial"}
_CSS = """<style>
.p2g-result { font-size: 14px; line-height: 1.4; }
.p2g-result .p2g-bad { color: #b00020; font-weight: bold; }
.p2g-result .p2g-good { color: #1b5e20; font-weight: bold; }
</style>"""
# A run that should take longer than this many steps shows a progress bar while it trains.
_PROGRESS_STEPS = 400


def _widgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - ipywidgets is a dependency of the course
        raise ImportError("The explorers need ipywidgets: pip install 'ipywidgets>=8'.") from e
    return ipywidgets


@functools.lru_cache(maxsize=None)
def _explorer_class():
    ipywidgets = _widgets()

    class Explorer(ipywidgets.VBox):
        """Rows of controls, a result line and a plot. `controls` maps each experiment keyword to its widget;
        `update()` reruns with `values()`. Outside a live front end it shows as the last plot (image/png) and
        a one-line summary (text/plain).
        """

        def __init__(self, name, controls, update_fn, *, live, row_end, below, per_row):
            self.result, self.plot, self.progress = _result_html(), _image(), _progress_bar()
            widgets = list(controls.values())
            rows = [widgets[i:i + per_row] for i in range(0, len(widgets), per_row)] or [[]]
            rows[-1] = rows[-1] + list(row_end) + [self.progress]
            super().__init__(children=[ipywidgets.HBox(r) for r in rows] + [self.result, *below, self.plot])
            self.add_class("p2g-explorer")
            self.add_class(f"p2g-{name}")
            self.name, self.controls = name, controls
            self._update_fn = update_fn
            self.history = None  # the last run's result (a History, a list of rows or a dict)
            self.previous = None
            self.summary = ""
            self.timings: dict[str, float] = {}
            self.hint = "move the sliders in Jupyter to rerun"
            self._quiet = False
            if live:
                for w in controls.values():
                    w.observe(self._on_change, names="value")

        def _on_change(self, change):
            if not self._quiet:
                self.update()

        @contextlib.contextmanager
        def quietly(self):
            """Set several controls without a rerun per change (a button that moves them together); call
            `update()` afterwards."""
            self._quiet = True
            try:
                yield self
            finally:
                self._quiet = False

        def values(self) -> dict:
            """The controls' current values, by experiment keyword: what the next run is called with."""
            return {key: w.value for key, w in self.controls.items()}

        def update(self):
            """Rerun with the controls' current values and redraw (what every slider change does)."""
            try:
                self._update_fn(self, **self.values())
            except Exception as e:  # a widget callback must never leave the learner with a dead widget
                self.result.value = (f"{_CSS}<span class='p2g-bad'>Could not run these settings:</span> "
                                     f"{html.escape(str(e))}")
                self.summary = f"error: {e}"
            return self

        def __repr__(self):
            return f"<{self.name}: {self.summary or 'not run yet'}> ({self.hint})"

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle is None:
                bundle = {}
            if isinstance(bundle, tuple):
                bundle = bundle[0]
            bundle["text/plain"] = repr(self)
            if self.plot.value:
                bundle["image/png"] = base64.b64encode(self.plot.value).decode("ascii")
            return bundle

    return Explorer


def make_explorer(name: str, controls: dict, update: Callable, experiment: Callable, *, live: bool = True,
                  row_end: Sequence = (), below: Sequence = (), per_row: int = 3):
    """Build an explorer (an ipywidgets VBox) from a table of controls; call `.update()` on it to run it once.

    `controls` maps each keyword of `experiment` to the widget that sets it, in display order (`per_row` to a
    row, then `row_end` and the progress bar); a key `experiment` does not take is refused here, before any
    run. Every change calls `update(ex, **ex.values())`, which runs the experiment with those keywords and
    draws into `ex.plot` (PNG bytes), `ex.result` (HTML), `ex.summary` (text) and `ex.history`. With
    `live=False` a change waits for an explicit `ex.update()` (a Run button). `below` goes under the result.
    """
    per_row = positive_int(per_row, "per_row", example="3 (controls side by side)")
    accepted = inspect.signature(experiment).parameters
    unknown = [key for key in controls if key not in accepted]
    if unknown:
        raise ValueError(f"{name}: the controls {unknown} are not keywords of {experiment.__name__}() "
                         f"({', '.join(accepted)}); key each control by the keyword it sets.")
    for key, w in controls.items():  # the CSS classes the browser test looks for
        w.add_class("p2g-" + key.replace("_", "-"))
        w.add_class("p2g-control")
    return _explorer_class()(name, controls, update, live=live, row_end=row_end, below=below, per_row=per_row)


def _progress_bar():
    ipywidgets = _widgets()
    bar = ipywidgets.IntProgress(value=0, min=0, max=100, description="training", style=_STYLE,
                                 layout=ipywidgets.Layout(visibility="hidden", width="50%"))
    bar.add_class("p2g-progress")
    return bar


def _image():
    ipywidgets = _widgets()
    img = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
    img.add_class("p2g-plot")
    return img


def _result_html():
    ipywidgets = _widgets()
    res = ipywidgets.HTML(value="")
    res.add_class("p2g-result")
    return res


def _lr_slider(value: float, low: int, high: int, readout: str = ".3g"):
    return _widgets().FloatLogSlider(value=value, base=10, min=low, max=high, step=0.1, description="learning rate",
                                     readout_format=readout, continuous_update=False, style=_STYLE)


def _int_slider(value: int, high: int, description: str):
    return _widgets().IntSlider(value=value, min=1, max=high, description=description, continuous_update=False,
                                style=_STYLE)


def _choice(value: str, choices: dict, description: str):
    return _widgets().Dropdown(options=[(v, k) for k, v in choices.items()], value=value.lower(),
                               description=description, style=_STYLE)


def _batch_size_options(n_train: int, bs: int):
    options, b = [], 1
    while b < n_train:
        options.append((str(b), b))
        b *= 2
    options.append((f"{n_train} (all)", n_train))
    if bs not in [v for _, v in options]:
        options = sorted(options + [(str(bs), bs)], key=lambda o: o[1])
    return options


# --------------------------------------------------------------------------------------------------
# The explorers
# --------------------------------------------------------------------------------------------------


def lr_explorer(lr: float = 1.0, bs: int = 256, n_epochs: int = 2, optimizer: str = "sgd", seed: int = 42,
                model: str = "linear", data=None):
    """Sliders for the learning rate, batch size, epochs, optimizer, model and seed of the `three_vs_seven`
    notebook's 3-vs-7 classifier; every change retrains it (`run_experiment`) and redraws the loss and
    accuracy, the previous run kept faint beside it, with a sentence that says what happened. Introduced in
    the `three_vs_seven` notebook.

    The defaults retrain in about a tenth of a second on a laptop CPU. Larger runs (bs=1, many epochs) show a
    progress bar and say how long they took.
    """
    ipywidgets = _widgets()
    n_train = len(experiment_data(data)[0])
    check_experiment_args(lr, bs, n_epochs, optimizer, seed, model, n_train)
    controls = {
        "lr": _lr_slider(lr, -4, 1),
        "bs": ipywidgets.SelectionSlider(options=_batch_size_options(n_train, bs), value=bs,
                                         description="batch size", continuous_update=False, style=_STYLE),
        "n_epochs": _int_slider(n_epochs, 20, "epochs"),
        "optimizer": _choice(optimizer, OPTIMIZERS, "optimizer"),
        "model": _choice(model, MODELS, "model"),
        "seed": ipywidgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=_STYLE,
                                          layout=ipywidgets.Layout(width="150px")),
    }
    drawer = LossAccuracyFigure()

    def update(ex, **values):
        total = values["n_epochs"] * math.ceil(n_train / values["bs"])
        show = total > _PROGRESS_STEPS
        if show:
            ex.progress.max, ex.progress.value = total, 0
            ex.progress.layout.visibility = "visible"
            ex.result.value = f"{_CSS}Training {total} steps…"

        def tick(step, steps):
            ex.progress.value = step

        t0 = time.perf_counter()
        h = run_experiment(**values, data=data, progress=tick if show else None)
        t1 = time.perf_counter()
        png = drawer.draw(h, ex.history)
        t2 = time.perf_counter()
        ex.previous, ex.history = ex.history, h
        ex.plot.value = png
        if show:
            ex.progress.layout.visibility = "hidden"
        took = f"took {h.seconds:.2f} s" if h.seconds < 10 else f"took {h.seconds:.0f} s"
        cls = "p2g-bad" if h.status == "diverged" else "p2g-good"
        body = f"<span class='{cls}'>{html.escape(h.message)}</span>"
        ex.result.value = f"{_CSS}{body}<br><small>{html.escape(h.settings)} · {took}</small>"
        ex.summary = f"{h.settings} → {h.message}"
        ex.timings = {"train_ms": 1000 * (t1 - t0), "draw_ms": 1000 * (t2 - t1)}

    return make_explorer("lr_explorer", controls, update, run_experiment).update()


def batch_size_explorer(bs_values: Sequence[int] = (4, 16, 64, 256, 1024, 4096), lr: float = 1.0,
                        n_epochs: int = 1, optimizer: str = "sgd", seed: int = 42, model: str = "linear",
                        data=None, run: bool = True):
    """Train the same model at several batch sizes and compare them in a table and three plots: the loss
    per epoch of data, the noise of the mini-batch gradient against 1/sqrt(bs), and accuracy and time per
    epoch. A "Run" button reruns with the learning rate, epochs and optimizer chosen above it (each
    comparison trains several models, so changes wait for it). Introduced in the `three_vs_seven` notebook.
    """
    ipywidgets = _widgets()
    n_train = len(experiment_data(data)[0])
    for b in bs_values:
        check_experiment_args(lr, b, n_epochs, optimizer, seed, model, n_train)
    controls = {
        "lr": _lr_slider(lr, -4, 1),
        "n_epochs": _int_slider(n_epochs, 10, "epochs"),
        "optimizer": _choice(optimizer, OPTIMIZERS, "optimizer"),
    }
    button = ipywidgets.Button(description="Run", button_style="primary")
    button.add_class("p2g-run")
    table = ipywidgets.HTML(value="")
    table.add_class("p2g-table")

    def update(ex, **values):
        ex.progress.max, ex.progress.value = len(bs_values), 0
        ex.progress.layout.visibility = "visible"
        ex.result.value = f"{_CSS}Training at {len(bs_values)} batch sizes…"
        t0 = time.perf_counter()
        rows = compare_batch_sizes(bs_values, **values, seed=seed, model=model, data=data,
                                   progress=lambda i, n: setattr(ex.progress, "value", i))
        ex.plot.value = batch_size_figure(rows)
        ex.progress.layout.visibility = "hidden"
        table.value = batch_size_table(rows)
        best = max(rows, key=lambda r: (np.nan_to_num(r["valid_acc"]), -r["bs"]))
        ex.history, ex.previous = rows, ex.history
        text = (f"lr {values['lr']:.3g}, {values['n_epochs']} epoch(s): best valid accuracy "
                f"{best['valid_acc']:.1%} at bs {best['bs']}; the smallest batch took {rows[0]['updates']} updates, "
                f"the largest {rows[-1]['updates']} (took {time.perf_counter() - t0:.1f} s)")
        ex.result.value = f"{_CSS}{html.escape(text)}"
        ex.summary = text

    ex = make_explorer("batch_size_explorer", controls, update, compare_batch_sizes, live=False,
                       row_end=[button], below=[table], per_row=len(controls))
    ex.hint = "change the settings and press Run in Jupyter to rerun"
    ex.table, ex.button = table, button
    button.on_click(lambda _b: ex.update())
    return ex.update() if run else ex


def quadratic_lr_explorer(time=None, speed=None, lr: float = 0.5, n_steps: int = 30, start=(0.0, 40.0),
                          center: float = 10.0, scale: float = 10.0):
    """A log learning-rate slider over the `gradients` notebook's noisy quadratic: each change runs `n_steps`
    of gradient descent on (a, c) of `a t² + b t + c` (`t = (time - center) / scale`, b held at its best
    value), draws every step on the loss surface with the loss per step and the fit, and says "converged",
    "oscillating", "diverged" or too slow. Pass the notebook's `time` and `speed`, or leave them out to use
    `quadratic_data()`. Introduced in the `gradients` notebook.
    """
    if (time is None) != (speed is None):
        raise ValueError("pass both time and speed (1-D tensors of the same length), or neither.")
    if time is None:
        time, speed = quadratic_data()
    fixed = {"time": time, "speed": speed, "start": start, "center": center, "scale": scale}
    edge = quadratic_descent(lr, n_steps, **fixed)["max_stable_lr"]  # checks the arguments before any widget
    top = math.ceil(math.log10(edge * 3))
    controls = {
        "lr": _lr_slider(lr, top - 4, top, readout=".2g"),
        "n_steps": _int_slider(n_steps, 200, "steps"),
    }
    drawer = QuadraticFigure()

    def update(ex, **values):
        r = quadratic_descent(**values, **fixed)
        ex.plot.value = drawer.draw(r)
        ex.previous, ex.history = ex.history, r
        words = QUADRATIC_VERDICTS[r["verdict"]]
        cls = "p2g-good" if r["verdict"] == "converged" else "p2g-bad"
        final = r["losses"][-1]
        loss_text = f"{final:.4g}" if np.isfinite(final) else "inf"
        text = (f"lr {r['lr']:.2g}, {len(r['path']) - 1} steps: {words}. Final loss {loss_text} "
                f"(best possible {r['best_loss']:.4g}); steps above lr ≈ {r['max_stable_lr']:.2g} overshoot "
                f"more each time.")
        ex.result.value = f"{_CSS}<span class='{cls}'>{html.escape(r['verdict'])}</span> — {html.escape(text)}"
        ex.summary = text

    return make_explorer("quadratic_lr_explorer", controls, update, quadratic_descent).update()


def _sampling_controls(ipywidgets, temperature: float, seed: int):
    """The controls both sampling explorers share: a log-scale temperature slider over `TEMPERATURE_RANGE`, the
    seed, and the "New names" button that draws again with the next seed."""
    low, high = TEMPERATURE_RANGE
    controls = {
        "temperature": ipywidgets.FloatLogSlider(value=temperature, base=10, min=math.log10(low), max=math.log10(high),
                                                 step=0.02, description="temperature", readout_format=".2f",
                                                 continuous_update=False, style=_STYLE),
        "seed": ipywidgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=_STYLE,
                                          layout=ipywidgets.Layout(width="150px")),
    }
    button = ipywidgets.Button(description="New names", button_style="primary")
    button.add_class("p2g-new-names")
    return controls, button


def temperature_explorer(model, temperature: float = 1.0, n_names: int = 12, seed: int = 0, known=None,
                         context: int | None = None):
    """A temperature slider and a "New names" button over a trained next-character `model` (the
    `language_model` notebook's `CharMLP`): each change draws `n_names` names (`temperature_samples`), lists
    them (names found in `known`, e.g. the training names, are marked) and draws the first letter's
    distribution and its entropy against the temperature. The button moves to the next seed; the slider keeps
    the seed, so two temperatures are compared on the same random numbers. Introduced in the `language_model`
    notebook.
    """
    ipywidgets = _widgets()
    temperature_samples(model, temperature, n_names, seed, None, context)  # bad arguments fail here, clearly
    controls, button = _sampling_controls(ipywidgets, temperature, seed)
    drawer = TemperatureFigure()

    def update(ex, **values):
        t0 = time.perf_counter()
        r = temperature_samples(model, n_names=n_names, known=known, context=context, **values)
        t1 = time.perf_counter()
        ex.plot.value = drawer.draw(r)
        t2 = time.perf_counter()
        ex.previous, ex.history = ex.history, r
        marks = r["known"] or [False] * len(r["names"])
        shown = ", ".join(f"<b>{html.escape(n)}</b>" if k else html.escape(n or "(empty)")
                          for n, k in zip(r["names"], marks))
        in_known = f"; <b>bold</b>: {sum(marks)} of {len(marks)} are training names" if r["known"] is not None else ""
        entropy = (f"T = {r['temperature']:.2f}, seed {r['seed']}: entropy of the first letter {r['first_entropy']:.2f} "
                   f"nats, of every next character drawn {r['mean_entropy']:.2f} nats on average "
                   f"(uniform: {r['max_entropy']:.2f})")
        ex.result.value = f"{_CSS}{shown}<br><small>{html.escape(entropy)}{in_known}</small>"
        ex.summary = f"{entropy}: {', '.join(r['names'])}"
        ex.timings = {"sample_ms": 1000 * (t1 - t0), "draw_ms": 1000 * (t2 - t1)}

    ex = make_explorer("temperature_explorer", controls, update, temperature_samples, row_end=[button])
    ex.button = button
    button.on_click(lambda _b: setattr(ex.controls["seed"], "value", ex.controls["seed"].value + 1))
    return ex.update()


def attention_explorer(model, name: str = "emma", temperature: float = 1.0, n_names: int = 8, seed: int = 0):
    """A text box for a name, a temperature slider and a "New names" button over a trained `TinyGPT` (the
    `attention` notebook's): each change runs the model on the name (`attention_patterns`) and draws every
    head's attention weights over the characters so far and the next-character distribution at every position,
    and lists `n_names` names sampled at the temperature. The button moves to the next seed. Introduced in the
    `attention` notebook.
    """
    ipywidgets = _widgets()
    attention_patterns(model, name, temperature, n_names, seed)  # bad arguments fail here, clearly
    sampling, button = _sampling_controls(ipywidgets, temperature, seed)
    controls = {"name": ipywidgets.Text(value=name, description="name", continuous_update=False, style=_STYLE,
                                        layout=ipywidgets.Layout(width="260px")), **sampling}
    layers, heads = len(model.blocks), model.blocks[0].attn.n_heads
    drawer = AttentionFigure(layers, heads, model.context)

    def update(ex, **values):
        t0 = time.perf_counter()
        r = attention_patterns(model, n_names=n_names, **values)
        t1 = time.perf_counter()
        ex.plot.value = drawer.draw(r)
        t2 = time.perf_counter()
        ex.previous, ex.history = ex.history, r
        best = r["probs"][-1].argmax()
        after = (f"'.{r['name']}': loss {r['loss']:.2f} nats per character; after it, the most likely next character "
                 f"is {'.' if best == 0 else chr(ord('a') + best - 1)!r} (p = {r['probs'][-1].max():.2f} at "
                 f"T = {r['temperature']:.2f}). Sampled at T = {r['temperature']:.2f}, seed {r['seed']}")
        shown = ", ".join(html.escape(n or "(empty)") for n in r["names"])
        ex.result.value = f"{_CSS}{html.escape(after)}: {shown}"
        ex.summary = f"{after}: {', '.join(r['names'])}"
        ex.timings = {"compute_ms": 1000 * (t1 - t0), "draw_ms": 1000 * (t2 - t1)}

    ex = make_explorer("attention_explorer", controls, update, attention_patterns, row_end=[button])
    ex.hint = "type a name or move the slider in Jupyter"
    ex.button = button
    button.on_click(lambda _b: setattr(ex.controls["seed"], "value", ex.controls["seed"].value + 1))
    return ex.update()


def graph_explorer(x1: float = 1.0, x2: float = -0.5, w1: float = 0.5, w2: float = -1.0, b: float = 0.2,
                   v: float = -0.5, lr: float = 0.1):
    """Sliders for the inputs (x1, x2) and the weights (w1, w2, b, v) of `tiny_graph`'s network,
    `loss = (v·tanh(w1·x1 + w2·x2 + b) − 1)²`; every change runs it forward and backward with
    `helpers.autograd.Value` and redraws the computational graph with each node's value and gradient. The
    "step" button moves every weight by −lr × its gradient (the sliders follow) and the loss panel grows by
    one point; moving a slider by hand starts a new loss history. Every value lies in [−3, 3], the sliders'
    range: a starting value outside it is a ValueError, and a step that would leave it stops at the edge and
    says so. Introduced in the `backprop` notebook.
    """
    ipywidgets = _widgets()
    start = tiny_graph(x1, x2, w1, w2, b, v)  # checks every value before any widget is built
    tiny_graph_step(lr, **start["settings"])  # ... and the learning rate
    controls = {
        name: ipywidgets.FloatSlider(value=value, min=-GRAPH_RANGE, max=GRAPH_RANGE, step=0.01, description=name,
                                     readout_format=".2f", continuous_update=False, style=_STYLE,
                                     layout=ipywidgets.Layout(width="330px"))
        for name, value in start["settings"].items() if name != "target"
    }
    button = ipywidgets.Button(description=f"step (lr {lr:g})", button_style="primary",
                               layout=ipywidgets.Layout(width="auto", min_width="120px", flex="0 0 auto"))
    button.add_class("p2g-step")
    drawer = GraphFigure()
    state = {"losses": [], "stepping": False, "held": []}

    def update(ex, **values):
        t0 = time.perf_counter()
        g = tiny_graph(**values)
        t1 = time.perf_counter()
        previous = state["losses"][-1] if state["losses"] else None
        state["losses"] = state["losses"] + [g["loss"]] if state["stepping"] else [g["loss"]]
        ex.plot.value = drawer.draw(g, state["losses"])
        t2 = time.perf_counter()
        ex.previous, ex.history = ex.history, g
        n_steps = len(state["losses"]) - 1
        head = f"loss {g['loss']:.4f} (ŷ = {g['prediction']:.3f}, target 1)"
        if state["stepping"]:
            fell = g["loss"] < previous
            cls = "p2g-good" if fell else "p2g-bad"
            news = (f"step {n_steps}: the loss {'fell' if fell else 'rose'} from {previous:.4f} to {g['loss']:.4f}"
                    + (f"; {', '.join(state['held'])} stopped at the edge of [−3, 3]" if state["held"] else ""))
            body = f"<span class='{cls}'>{html.escape(news)}</span> — {html.escape(head)}"
            ex.summary = f"{news}; {head}"
        else:
            body = html.escape(f"{head}. Every node recomputed: press step to move the weights downhill.")
            ex.summary = head
        ex.result.value = f"{_CSS}{body}"
        ex.timings = {"compute_ms": 1000 * (t1 - t0), "draw_ms": 1000 * (t2 - t1)}

    ex = make_explorer("graph_explorer", controls, update, tiny_graph, row_end=[button], per_row=3)
    ex.hint = "move the sliders or press step in Jupyter"
    ex.progress.layout.display = "none"  # nothing here takes long enough for a progress bar

    def step(_button=None):
        new, state["held"] = tiny_graph_step(lr, **ex.values())
        with ex.quietly():
            for name in GRAPH_PARAMS:
                ex.controls[name].value = new[name]
        state["stepping"] = True
        try:
            ex.update()
        finally:
            state["stepping"], state["held"] = False, []
        return ex

    button.on_click(step)
    ex.button, ex.step = button, step
    return ex.update()
