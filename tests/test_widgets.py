"""The explorers: helpers.experiments (pure functions, checked against torch), helpers.explorer_plots (their
figures) and helpers.widgets (the ipywidgets wiring built on both)."""

import functools
import inspect
import math

import ipywidgets  # a declared dependency: if it is missing, the tests fail (never skip)
import pytest
import torch

from helpers import experiments as E
from helpers import explorer_plots as P
from helpers import language as L
from helpers import three_vs_seven
from helpers import widgets as W
from helpers.train import batches


@pytest.fixture(scope="module")
def small():
    """A real but small 3-vs-7 set: every 8th training image, every 4th validation image."""
    d = three_vs_seven()
    return d.train_x[::8].clone(), d.train_y[::8].clone(), d.valid_x[::4].clone(), d.valid_y[::4].clone()


@pytest.fixture(scope="module")
def tiny_lm():
    """A next-character model trained for a moment on a few names: enough to sample name-like strings."""
    names = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 5
    X, y = L.context_pairs(names, 3)
    torch.manual_seed(0)
    model = L.CharMLP(context=3, emb_dim=8, hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    model.known = set(names)
    return model


@pytest.fixture(scope="module")
def tiny_gpt():
    """A tiny GPT trained for a moment on a few names (the `attention` notebook's model, much smaller)."""
    from helpers.attention import TinyGPT, name_sequences, sequence_loss

    names = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"]
    X, Y = name_sequences(names, 10)
    torch.manual_seed(0)
    model = TinyGPT(context=10, width=16, n_heads=2, n_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        loss = sequence_loss(model(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def _same(a: E.History, b: E.History):
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds"), db.pop("seconds")
    return da == db


# ---------------------------------------------------------------- run_experiment


def test_same_seed_same_history_and_other_seed_differs(small):
    a = E.run_experiment(lr=0.5, bs=64, n_epochs=2, seed=3, data=small)
    b = E.run_experiment(lr=0.5, bs=64, n_epochs=2, seed=3, data=small)
    c = E.run_experiment(lr=0.5, bs=64, n_epochs=2, seed=4, data=small)
    assert _same(a, b)
    assert not _same(a, c)
    assert a.status == "ok" and a.diverged_at is None
    assert a.steps_per_epoch == math.ceil(len(small[0]) / 64) and a.steps == 2 * a.steps_per_epoch
    assert len(a.valid_loss) == len(a.valid_acc) == 2 and a.seconds > 0
    assert a["valid_acc"] == a.valid_acc and a["final_valid_acc"] == a.valid_acc[-1]
    with pytest.raises(KeyError, match="no field"):
        a["accuracy"]


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_every_model_and_optimizer_learns(small, model, optimizer):
    lr = 0.01 if optimizer == "adam" else 0.5
    h = E.run_experiment(lr=lr, bs=64, n_epochs=2, optimizer=optimizer, model=model, data=small)
    assert h.status == "ok"
    assert h.final_valid_acc > 0.9, h.message
    assert sum(h.train_loss[-5:]) / 5 < 0.5 * h.train_loss[0]


def test_linear_hand_gradients_match_autograd(small):
    torch.manual_seed(0)
    net = torch.nn.Linear(784, 1)
    xb, yb = small[0][:50], small[1][:50]
    value = E._linear_loss_and_grads(net, xb, yb)
    gw, gb = net.weight.grad.clone(), net.bias.grad.clone()
    net.zero_grad()
    loss = ((torch.sigmoid(net(xb).squeeze(1)) - yb) ** 2).mean()
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-6)
    torch.testing.assert_close(gw, net.weight.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gb, net.bias.grad, rtol=1e-5, atol=1e-7)


def test_run_matches_a_plain_torch_loop(small):
    """The oracle: the same training written the obvious way with autograd and torch.optim."""
    h = E.run_experiment(lr=0.3, bs=100, n_epochs=2, optimizer="momentum", seed=7, data=small)
    torch.manual_seed(7)
    net = torch.nn.Linear(784, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.9)
    gen = torch.Generator().manual_seed(7)
    losses = []
    for _ in range(2):
        for idx in batches(len(small[0]), 100, generator=gen):
            loss = ((torch.sigmoid(net(small[0][idx]).squeeze(1)) - small[1][idx]) ** 2).mean()
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert h.train_loss == pytest.approx(losses, rel=1e-4, abs=1e-6)
    with torch.no_grad():
        acc = ((net(small[2]).squeeze(1) > 0).float() == small[3]).float().mean().item()
    assert h.final_valid_acc == pytest.approx(acc, abs=1e-6)


def test_larger_lr_moves_faster_until_it_diverges(small):
    k = 30  # compare the loss after k steps
    losses = {}
    for lr in (0.01, 0.1, 1.0):
        h = E.run_experiment(lr=lr, bs=32, n_epochs=1, model="mlp", data=small)
        assert h.status == "ok"
        losses[lr] = sum(h.train_loss[k - 5:k]) / 5
    assert losses[1.0] < losses[0.1] < losses[0.01]
    too_high = E.run_experiment(lr=10.0, bs=32, n_epochs=1, model="mlp", data=small)
    assert too_high.status == "diverged"


def test_huge_lr_reports_divergence_without_raising(small):
    h = E.run_experiment(lr=10.0, bs=64, n_epochs=3, model="mlp", data=small)
    assert h.status == "diverged" and h.reason == "rose"
    assert isinstance(h.diverged_at, int) and 0 <= h.diverged_at < h.steps
    assert h.train_loss[h.diverged_at] > E.BLOWUP_FACTOR * h.train_loss[0]
    assert h.steps < 3 * h.steps_per_epoch, "training should stop early"
    assert f"rose above {E.BLOWUP_FACTOR:g}x" in h.message and f"at step {h.diverged_at} " in h.message
    assert "too high" in h.message
    h2 = E.run_experiment(lr=1e30, bs=64, n_epochs=1, optimizer="momentum", model="mlp", data=small)
    assert h2.status in ("ok", "diverged")  # returns either way; never raises


def test_nonfinite_loss_stops_at_the_right_step(small):
    """A NaN pixel in one training image: the run must stop at the step whose batch holds that image."""
    train_x = small[0].clone()
    bad = 123
    train_x[bad, 300] = float("nan")
    data = (train_x, small[1], small[2], small[3])
    h = E.run_experiment(lr=0.1, bs=50, n_epochs=2, seed=5, data=data)
    gen = torch.Generator().manual_seed(5)
    expected = next(i for i, idx in enumerate(batches(len(train_x), 50, generator=gen)) if bad in idx.tolist())
    assert h.status == "diverged" and h.reason == "nonfinite" and h.diverged_at == expected
    assert len(h.train_loss) == expected + 1 and math.isnan(h.train_loss[-1])
    assert "exploded at step" in h.message and "inf/NaN" in h.message


def test_run_leaves_the_global_random_stream_alone(small):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    E.run_experiment(lr=0.1, bs=256, n_epochs=1, data=small)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"lr": 0}, "lr must be a positive"),
        ({"lr": -0.1}, "lr must be a positive"),
        ({"lr": float("nan")}, "lr must be a positive"),
        ({"lr": "0.1"}, "lr must be a positive"),
        ({"lr": 1e39}, "float32"),
        ({"bs": 0}, "bs \\(batch size\\) must be a positive whole number, got 0. Typical values: from 1 to"),
        ({"bs": 10**6}, "at most the training set's size"),
        ({"bs": True}, "bs \\(batch size\\) must be a positive whole number"),
        ({"bs": 2.5}, "bs \\(batch size\\)"),
        ({"n_epochs": 0}, "n_epochs must be a positive whole number"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of 'sgd', 'momentum', 'adam'"),
        ({"model": "cnn"}, "model must be one of 'linear', 'mlp'"),
        ({"seed": -1}, "seed must be a whole number ≥ 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(small, kwargs, words):
    with pytest.raises(ValueError, match=words):
        E.run_experiment(data=small, **kwargs)


def test_bad_data_raises_clear_error(small):
    with pytest.raises(ValueError, match=r"x \[N, 784\]"):
        E.run_experiment(data=(small[0].reshape(-1, 28, 28), small[1], small[2], small[3]))
    with pytest.raises(ValueError, match="train_x, train_y, valid_x, valid_y"):
        E.run_experiment(data=small[:2])


# ---------------------------------------------------------------- batch size and gradient noise


def test_per_example_gradients_match_autograd(small):
    net = E._make_model("mlp", 0)
    x, y = small[0][:5], small[1][:5]
    g = E._per_example_grads(net, x, y)
    for i in range(5):
        net.zero_grad()
        E._mse_of_sigmoid(net(x[i:i + 1]), y[i:i + 1]).backward()
        expected = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        torch.testing.assert_close(g[i], expected, rtol=1e-4, atol=1e-7)


def test_gradient_noise_shrinks_like_one_over_sqrt_bs(small):
    n = len(small[0])
    noise = E.gradient_noise([1, 4, 16, 64, n], n_draws=64, data=small)
    assert noise[n] == pytest.approx(0.0, abs=1e-5)  # the whole set is the full-batch gradient
    # without replacement: E‖g_b − g‖² = σ²/bs · (N − bs)/(N − 1); check the ratio of 4 to 64 (expected ≈ 4)
    ratio = noise[4] / noise[64] / math.sqrt((n - 4) / (n - 64))
    assert 3.0 < ratio < 5.3
    assert noise[1] > noise[4] > noise[16] > noise[64]


def test_compare_batch_sizes_rows(small):
    rows = E.compare_batch_sizes((16, 128), lr=0.5, data=small)
    assert [r["bs"] for r in rows] == [16, 128]
    n = len(small[0])
    assert rows[0]["steps_per_epoch"] == math.ceil(n / 16) and rows[0]["updates"] == math.ceil(n / 16)
    assert rows[0]["grad_noise"] > rows[1]["grad_noise"] > 0
    assert all(r["status"] == "ok" and r["valid_acc"] > 0.9 for r in rows)
    with pytest.raises(ValueError, match="at least one batch size"):
        E.compare_batch_sizes((), data=small)
    with pytest.raises(ValueError, match="bs \\(batch size\\)"):  # not silently rounded down to 2
        E.compare_batch_sizes((2.5,), data=small)


# ---------------------------------------------------------------- the quadratic toy


def test_quadratic_data_is_the_gradients_notebooks():
    time, speed = E.quadratic_data()
    torch.manual_seed(42)
    expected = 0.4 * (torch.arange(0, 20).float() - 7) ** 2 + 5 + 3 * torch.randn(20)
    assert torch.equal(time, torch.arange(0, 20).float()) and torch.equal(speed, expected)


def test_quadratic_stability_edge_and_minimum_match_torch():
    time, speed = E.quadratic_data()
    r = E.quadratic_descent(0.1, 5, time, speed)
    t = (time.double() - 10) / 10
    best = torch.linalg.lstsq(torch.stack([t**2, t, torch.ones_like(t)], 1), speed.double()[:, None]).solution[:, 0]
    assert r["best"] == pytest.approx(best.numpy(), rel=1e-9)

    def loss(ac):
        return ((ac[0] * t**2 + best[1] * t + ac[1] - speed.double()) ** 2).mean()

    hess = torch.autograd.functional.hessian(loss, torch.zeros(2, dtype=torch.float64))
    assert r["max_stable_lr"] == pytest.approx(2 / torch.linalg.eigvalsh(hess).max().item(), rel=1e-9)
    # the first step is plain gradient descent: start - lr * gradient
    start = torch.tensor([0.0, 40.0], dtype=torch.float64, requires_grad=True)
    loss(start).backward()
    assert r["path"][1] == pytest.approx((start - 0.1 * start.grad).detach().numpy(), rel=1e-9)
    assert r["losses"][0] == pytest.approx(loss(start).item())


def test_quadratic_verdicts():
    edge = E.quadratic_descent(0.1)["max_stable_lr"]
    assert E.quadratic_descent(edge * 0.01, 30)["verdict"] == "slow"
    assert E.quadratic_descent(edge * 0.5, 30)["verdict"] == "converged"
    assert E.quadratic_descent(edge * 0.97, 12)["verdict"] == "oscillating"
    d = E.quadratic_descent(edge * 1.2, 30)
    assert d["verdict"] == "diverged" and d["losses"][-1] > d["losses"][0]
    with pytest.raises(ValueError, match="lr must be a positive"):
        E.quadratic_descent(0)
    with pytest.raises(ValueError, match="both time and speed"):
        E.quadratic_descent(0.1, time=torch.arange(5.0))


# ---------------------------------------------------------------- the widgets, without a browser


def _classes(widget):
    return set(widget._dom_classes)


def test_lr_explorer_reacts_to_its_sliders(small):
    ex = W.lr_explorer(bs=64, data=small)
    assert isinstance(ex, ipywidgets.VBox) and "p2g-lr_explorer" in _classes(ex)
    for key, cls in [("lr", "p2g-lr"), ("bs", "p2g-bs"), ("n_epochs", "p2g-n-epochs"),
                     ("optimizer", "p2g-optimizer"), ("model", "p2g-model"), ("seed", "p2g-seed")]:
        assert cls in _classes(ex.controls[key])
    lr = ex.controls["lr"]
    assert isinstance(lr, ipywidgets.FloatLogSlider) and (lr.min, lr.max) == (-4, 1)
    assert lr.continuous_update is False and lr.style.description_width == "initial"
    bs_values = [v for _, v in ex.controls["bs"].options]
    assert bs_values[0] == 1 and bs_values[-1] == len(small[0]) and 64 in bs_values
    assert "p2g-result" in _classes(ex.result) and "p2g-plot" in _classes(ex.plot)
    text, png = ex.result.value, ex.plot.value
    assert "valid accuracy" in text and png[:4] == b"\x89PNG"

    lr.value = 0.1  # what the browser does: the callback runs, the text and the picture change
    assert ex.result.value != text and ex.plot.value != png
    assert ex.history.lr == pytest.approx(0.1) and ex.previous.lr == pytest.approx(1.0)
    assert set(ex.timings) == {"train_ms", "draw_ms"}

    ex.controls["model"].value = "mlp"
    ex.controls["lr"].value = 10.0
    assert ex.history.status == "diverged"
    assert "the loss rose above" in ex.result.value and "too high" in ex.result.value

    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "lr_explorer" in bundle["text/plain"]


def test_long_runs_show_progress(small, monkeypatch):
    monkeypatch.setattr(W, "_PROGRESS_STEPS", 10)
    ex = W.lr_explorer(bs=64, data=small)
    seen = []
    ex.progress.observe(lambda c: seen.append(c["new"]), names="value")
    ex.controls["n_epochs"].value = 3
    assert seen and seen[-1] == ex.progress.max == 3 * ex.history.steps_per_epoch
    assert ex.progress.layout.visibility == "hidden"
    assert "took" in ex.result.value


def test_explorer_shows_errors_instead_of_raising(small):
    ex = W.lr_explorer(bs=64, data=small)
    ex._update_fn = lambda _ex, **_values: (_ for _ in ()).throw(RuntimeError("boom"))
    ex.controls["lr"].value = 0.2
    assert "Could not run these settings" in ex.result.value and "boom" in ex.result.value


def test_batch_size_explorer_builds_and_reruns(small):
    ex = W.batch_size_explorer(bs_values=(8, 64), data=small)
    assert "p2g-table" in _classes(ex.table) and ex.table.value.count("<tr>") == 3
    text = ex.result.value
    ex.controls["lr"].value = 0.05  # waits for the button
    assert ex.result.value == text
    ex.button.click()
    assert ex.result.value != text and "lr 0.05" in ex.result.value


def test_quadratic_lr_explorer_says_what_happened():
    time, speed = E.quadratic_data()
    ex = W.quadratic_lr_explorer(time, speed)
    assert "converged" in ex.result.value and "p2g-lr" in _classes(ex.controls["lr"])
    png = ex.plot.value
    ex.controls["lr"].value = 1.0
    assert "diverged" in ex.result.value and ex.plot.value != png
    ex.controls["lr"].value = 0.01
    assert "too small" in ex.result.value


# ---------------------------------------------------------------- the backprop notebook's live graph


def _tiny_graph_torch(x1, x2, w1, w2, b, v, target=1.0):
    t = {k: torch.tensor(val, dtype=torch.float64, requires_grad=True)
         for k, val in dict(x1=x1, x2=x2, w1=w1, w2=w2, b=b, v=v).items()}
    loss = (t["v"] * torch.tanh(t["w1"] * t["x1"] + t["w2"] * t["x2"] + t["b"]) - target) ** 2
    loss.backward()
    return loss.item(), {k: x.grad.item() for k, x in t.items()}


@pytest.mark.parametrize("settings", [{}, dict(x1=-2.0, x2=3.0, w1=1.5, w2=0.3, b=-1.0, v=2.5),
                                      dict(x1=0.0, x2=0.0, w1=0.0, w2=0.0, b=0.0, v=0.0)])
def test_tiny_graph_matches_autograd(settings):
    g = E.tiny_graph(**settings)
    full = {**{k: p.default for k, p in inspect.signature(E.tiny_graph).parameters.items()}, **settings}
    loss, grads = _tiny_graph_torch(**full)
    assert g["loss"] == pytest.approx(loss, abs=1e-12) and g["values"]["loss"] == g["loss"]
    for name, grad in grads.items():
        assert g["grads"][name] == pytest.approx(grad, abs=1e-12), name
    assert g["settings"] == {k: float(v) for k, v in full.items()}


def test_tiny_graph_step_lowers_the_loss_and_stops_at_the_edge():
    settings = E.tiny_graph()["settings"]
    losses = [E.tiny_graph(**settings)["loss"]]
    for _ in range(20):
        settings, held = E.tiny_graph_step(0.1, **settings)
        assert held == []
        losses.append(E.tiny_graph(**settings)["loss"])
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.1 * losses[0]
    g = E.tiny_graph(v=2.99)
    new, held = E.tiny_graph_step(10.0, **g["settings"])
    assert "v" in held and new["v"] == E.GRAPH_RANGE * math.copysign(1, 2.99 - 10.0 * g["grads"]["v"])
    assert new["x1"] == g["settings"]["x1"] and new["x2"] == g["settings"]["x2"], "a step never moves the inputs"


@pytest.mark.parametrize("kwargs, words", [
    ({"w1": 5.0}, r"w1 = 5 is outside the explorer's range \[-3, 3\]"),
    ({"x2": -3.5}, "x2 = -3.5 is outside"),
    ({"b": float("nan")}, "b = nan is outside"),
    ({"v": "1"}, "v must be a number between -3 and 3"),
    ({"x1": True}, "x1 must be a number"),
])
def test_tiny_graph_refuses_values_out_of_range(kwargs, words):
    with pytest.raises(ValueError, match=words):
        E.tiny_graph(**kwargs)
    with pytest.raises(ValueError, match=words):
        W.graph_explorer(**kwargs)


def test_tiny_graph_step_refuses_a_bad_learning_rate():
    for lr in (0, -0.1, float("inf"), "0.1"):
        with pytest.raises(ValueError, match="lr must be a positive"):
            E.tiny_graph_step(lr)
    with pytest.raises(ValueError, match="lr must be a positive"):
        W.graph_explorer(lr=0)


def test_graph_explorer_redraws_on_every_change_and_a_step_lowers_the_loss():
    ex = W.graph_explorer()
    assert set(ex.controls) == {"x1", "x2", "w1", "w2", "b", "v"} and "p2g-step" in _classes(ex.button)
    assert "loss 2.0074" in ex.result.value and ex.plot.value[:4] == b"\x89PNG"
    png = ex.plot.value
    ex.controls["x1"].value = 2.0  # a slider: the whole graph is recomputed and redrawn
    assert ex.history["settings"]["x1"] == 2.0 and ex.plot.value != png
    assert ex.history["loss"] == pytest.approx(E.tiny_graph(**ex.values())["loss"])
    before = dict(ex.values())
    loss0 = ex.history["loss"]
    ex.button.click()
    g0 = E.tiny_graph(**before)
    for name in E.GRAPH_PARAMS:  # the sliders moved by -lr * grad
        assert ex.controls[name].value == pytest.approx(before[name] - 0.1 * g0["grads"][name])
    assert ex.controls["x1"].value == 2.0 and ex.history["loss"] < loss0
    assert "step 1: the loss fell" in ex.result.value and "p2g-good" in ex.result.value
    for _ in range(4):
        ex.step()
    assert "step 5: the loss fell" in ex.summary
    ex.controls["x2"].value = 0.5  # moving a slider by hand starts a new history
    assert "step" not in ex.summary


def test_graph_explorer_says_when_a_weight_reaches_the_edge():
    ex = W.graph_explorer(w1=-0.5, v=2.9, lr=1.0)  # ŷ ≈ 0.57 < 1 with h > 0: v grows, past 3
    ex.step()
    assert "v stopped at the edge" in ex.result.value and ex.controls["v"].value == 3.0


def test_graph_figure_draws_without_any_widget():
    fig = P.GraphFigure()
    g = E.tiny_graph()
    first = fig.draw(g)
    assert first[:4] == b"\x89PNG" and len(fig.texts) == 15
    again = fig.draw(E.tiny_graph(x1=-1.0), [2.0, 1.5])
    assert again != first and "x1\nvalue -1" in fig.texts[[t.get_text().split("\n")[0] for t in fig.texts].index("x1")].get_text()


# ---------------------------------------------------------------- one divergence rule, one home per name


def test_the_divergence_rule_is_said_once_from_its_constants():
    assert f"{E.BLOWUP_FACTOR:g}x" in E.DIVERGENCE_RULE and f"last {E.DIVERGENCE_WINDOW} steps" in E.DIVERGENCE_RULE
    assert E.divergence_window(10**6) == E.DIVERGENCE_WINDOW and E.divergence_window(7) == 7
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive whole number"):
        E.divergence_window(0)


def test_the_run_and_its_message_use_the_constant(small, monkeypatch):
    """The same run diverges under the rule's factor and not under a factor its loss can never reach."""
    assert E.run_experiment(lr=10.0, bs=64, n_epochs=1, model="mlp", data=small).status == "diverged"
    monkeypatch.setattr(E, "BLOWUP_FACTOR", 4.0)  # the loss stays below 1 and starts near 0.25: never 4x
    assert E.run_experiment(lr=10.0, bs=64, n_epochs=1, model="mlp", data=small).status == "ok"
    monkeypatch.setattr(E, "BLOWUP_FACTOR", 1.25)
    h = E.run_experiment(lr=10.0, bs=64, n_epochs=1, model="mlp", data=small)
    assert h.status == "diverged" and "rose above 1.25x" in h.message


def test_figures_draw_without_any_widget(small):
    h = E.run_experiment(lr=0.5, bs=64, n_epochs=1, data=small)
    fig = P.LossAccuracyFigure()
    first = fig.draw(h)
    assert first[:4] == b"\x89PNG" and fig.draw(h, h)[:4] == b"\x89PNG"
    rows = E.compare_batch_sizes((64,), lr=0.5, data=small)
    assert P.batch_size_figure(rows)[:4] == b"\x89PNG" and P.batch_size_table(rows).count("<tr>") == 2
    assert P.QuadraticFigure().draw(E.quadratic_descent(0.1))[:4] == b"\x89PNG"


def test_experiment_data_is_cached_and_checked(small):
    a = E.experiment_data()
    assert E.experiment_data() is a and a[0].shape[1] == 784
    assert E.experiment_data(small)[0].dtype == torch.float32


# ---------------------------------------------------------------- every control reaches its experiment


def _another_value(w):
    """A valid value different from the control's current one."""
    if hasattr(w, "options"):
        values = [o[1] if isinstance(o, tuple) else o for o in w.options]
        return next(v for v in values if v != w.value)
    if isinstance(w.value, str):  # a Text box (a name)
        return "ava" if w.value != "ava" else "mia"
    if hasattr(w, "base"):  # FloatLogSlider: one step below, or above at the bottom
        low = w.base ** w.min
        return w.value / w.base ** w.step if w.value / w.base ** w.step >= low else w.value * w.base ** w.step
    return w.value + 1 if w.value + 1 <= w.max else w.value - 1


@pytest.mark.parametrize("explorer, experiment", [
    ("lr_explorer", "run_experiment"),
    ("batch_size_explorer", "compare_batch_sizes"),
    ("quadratic_lr_explorer", "quadratic_descent"),
    ("temperature_explorer", "temperature_samples"),
    ("attention_explorer", "attention_patterns"),
    ("graph_explorer", "tiny_graph"),
])
def test_every_control_reaches_the_experiment(small, tiny_lm, tiny_gpt, monkeypatch, explorer, experiment):
    """The forgotten mapping: changing any control must rerun the experiment with the new value."""
    real, calls = getattr(W, experiment), []

    @functools.wraps(real)  # keeps the signature make_explorer checks the controls against
    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(W, experiment, spy)
    kwargs = {"quadratic_lr_explorer": {"time": None}, "graph_explorer": {},
              "temperature_explorer": {"model": tiny_lm},
              "attention_explorer": {"model": tiny_gpt}}.get(explorer, {"data": small})
    if explorer == "lr_explorer":
        kwargs["bs"] = 64
    if explorer == "batch_size_explorer":
        kwargs["bs_values"] = (16, 64)
    ex = getattr(W, explorer)(**kwargs)
    assert calls, "building the explorer runs the experiment once"
    assert set(ex.controls) <= set(inspect.signature(real).parameters)
    for key, w in ex.controls.items():
        new = _another_value(w)
        w.value = new
        if explorer == "batch_size_explorer":  # its changes wait for the Run button
            ex.button.click()
        assert calls[-1][key] == new, f"{explorer}: the {key!r} control did not reach {experiment}()"
        assert "Could not run" not in ex.result.value, ex.result.value


@pytest.mark.parametrize("explorer, experiment", [
    (W.lr_explorer, E.run_experiment),
    (W.batch_size_explorer, E.compare_batch_sizes),
    (W.quadratic_lr_explorer, E.quadratic_descent),
    (W.temperature_explorer, E.temperature_samples),
    (W.attention_explorer, E.attention_patterns),
    (W.graph_explorer, E.tiny_graph),
])
def test_an_explorer_starts_where_its_experiment_does(explorer, experiment):
    mine, theirs = inspect.signature(explorer).parameters, inspect.signature(experiment).parameters
    for name, p in mine.items():
        if name in theirs and theirs[name].default is not inspect.Parameter.empty:
            assert p.default == theirs[name].default, f"{explorer.__name__}'s {name} starts elsewhere"


def test_make_explorer_refuses_a_control_the_experiment_does_not_take():
    with pytest.raises(ValueError, match=r"controls \['momentum'\] are not keywords of run_experiment"):
        W.make_explorer("x", {"lr": ipywidgets.FloatSlider(), "momentum": ipywidgets.FloatSlider()},
                        lambda ex, **v: None, E.run_experiment)
    with pytest.raises(ValueError, match="per_row must be a positive whole number"):
        W.make_explorer("x", {}, lambda ex, **v: None, E.run_experiment, per_row=0)


# ---------------------------------------------------------------- temperature_samples and its explorer


def test_temperature_samples_draws_what_sample_names_draws(tiny_lm):
    r = E.temperature_samples(tiny_lm, temperature=0.7, n_names=20, seed=3, known=tiny_lm.known)
    assert r["names"] == L.sample_names(tiny_lm, 20, 0.7, generator=torch.Generator().manual_seed(3))
    assert r["known"] == [n in tiny_lm.known for n in r["names"]] and any(r["known"])
    assert E.temperature_samples(tiny_lm, 0.7, 20, seed=3)["names"] == r["names"]  # same seed, same draw
    assert E.temperature_samples(tiny_lm, 0.7, 20, seed=4)["names"] != r["names"]
    assert E.temperature_samples(tiny_lm, 0.7, 3)["known"] is None


def test_temperature_samples_entropies_match_torch(tiny_lm):
    r = E.temperature_samples(tiny_lm, temperature=1.5, n_names=8, seed=0)
    with torch.no_grad():
        first = tiny_lm(torch.zeros(1, 3, dtype=torch.int64))[0]
        X, _ = L.context_pairs(r["names"], 3)
        steps = torch.softmax(tiny_lm(X) / 1.5, dim=1)
    torch.testing.assert_close(r["first_probs"], torch.softmax(first / 1.5, dim=0))
    torch.testing.assert_close(r["first_probs_t1"], torch.softmax(first, dim=0))
    oracle = torch.distributions.Categorical(probs=r["first_probs"]).entropy().item()
    assert r["first_entropy"] == pytest.approx(oracle, rel=1e-5)
    assert r["mean_entropy"] == pytest.approx(torch.distributions.Categorical(probs=steps).entropy().mean().item(), rel=1e-5)
    assert r["max_entropy"] == pytest.approx(math.log(27))
    curve = r["curve_entropy"]
    assert len(curve) == len(r["curve_t"]) and (curve[1:] >= curve[:-1] - 1e-6).all()  # hotter is flatter
    assert r["curve_t"][0] == pytest.approx(E.TEMPERATURE_RANGE[0]) and curve[-1] < math.log(27)


def test_colder_samples_are_more_common_names(tiny_lm):
    cold = E.temperature_samples(tiny_lm, 0.2, 40, seed=1, known=tiny_lm.known)
    hot = E.temperature_samples(tiny_lm, 4.0, 40, seed=1, known=tiny_lm.known)
    assert sum(cold["known"]) > sum(hot["known"])
    assert cold["first_entropy"] < hot["first_entropy"] and cold["mean_entropy"] < hot["mean_entropy"]


@pytest.mark.parametrize("kwargs, words", [
    ({"temperature": 0}, "temperature must be a positive, finite number"),
    ({"temperature": -1.0}, "temperature must be a positive, finite number"),
    ({"n_names": 0}, "n_names must be a positive whole number"),
    ({"seed": -1}, "seed must be a whole number ≥ 0"),
    ({"context": 0}, "context .* must be a positive whole number"),
])
def test_temperature_samples_refuses_bad_arguments(tiny_lm, kwargs, words):
    with pytest.raises(ValueError, match=words):
        E.temperature_samples(tiny_lm, **kwargs)
    assert tiny_lm.training  # a failed call leaves the model as it found it


def test_temperature_samples_needs_a_context_for_a_plain_function():
    with pytest.raises(ValueError, match="pass context="):
        E.temperature_samples(lambda X: torch.zeros(len(X), 27))
    r = E.temperature_samples(lambda X: torch.zeros(len(X), 27), n_names=3, context=2)
    assert r["first_entropy"] == pytest.approx(math.log(27), rel=1e-5)


def test_temperature_explorer_reacts_to_its_slider_and_button(tiny_lm):
    ex = W.temperature_explorer(tiny_lm, known=tiny_lm.known)
    assert isinstance(ex, ipywidgets.VBox) and "p2g-temperature_explorer" in _classes(ex)
    t = ex.controls["temperature"]
    assert isinstance(t, ipywidgets.FloatLogSlider) and t.continuous_update is False
    assert t.base ** t.min == pytest.approx(E.TEMPERATURE_RANGE[0]) and t.base ** t.max == pytest.approx(E.TEMPERATURE_RANGE[1])
    assert "p2g-temperature" in _classes(t) and "p2g-seed" in _classes(ex.controls["seed"])
    assert "p2g-new-names" in _classes(ex.button)
    text, png, names = ex.result.value, ex.plot.value, ex.history["names"]
    assert png[:4] == b"\x89PNG" and "entropy of the first letter" in text and "training names" in text
    assert all(n in text for n in names if n)

    t.value = 0.3  # what the browser does: the callback runs, the text and the picture change
    assert ex.history["temperature"] == pytest.approx(0.3, rel=0.05) and ex.history["seed"] == 0
    assert ex.result.value != text and ex.plot.value != png
    assert ex.previous["temperature"] == pytest.approx(1.0)
    assert set(ex.timings) == {"sample_ms", "draw_ms"}

    before = ex.history["names"]
    ex.button.click()  # fresh samples: the next seed, the same temperature
    assert ex.controls["seed"].value == 1 and ex.history["seed"] == 1
    assert ex.history["names"] != before and ex.history["temperature"] == pytest.approx(0.3, rel=0.05)

    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "temperature_explorer" in bundle["text/plain"]


@pytest.mark.parametrize("kwargs, words", [
    ({"temperature": 0.0}, "temperature must be a positive, finite number"),
    ({"temperature": -0.5}, "temperature must be a positive, finite number"),
    ({"context": 0}, "context .* must be a positive whole number"),
])
def test_temperature_explorer_refuses_bad_arguments_before_building(tiny_lm, kwargs, words):
    with pytest.raises(ValueError, match=words):
        W.temperature_explorer(tiny_lm, **kwargs)


def test_temperature_explorer_shows_errors_instead_of_raising(tiny_lm):
    ex = W.temperature_explorer(tiny_lm)
    ex._update_fn = lambda _ex, **_values: (_ for _ in ()).throw(RuntimeError("boom"))
    ex.controls["temperature"].value = 2.0
    assert "Could not run these settings" in ex.result.value and "boom" in ex.result.value


def test_temperature_figure_draws_each_result():
    r = E.temperature_samples(lambda X: torch.arange(27.0).expand(len(X), 27), n_names=2, context=1)
    fig = P.TemperatureFigure()
    png = fig.draw(r)
    assert png[:4] == b"\x89PNG"
    assert [b.get_height() for b in fig.bars] == pytest.approx(r["first_probs"].tolist())
    assert fig.marker.get_xdata()[0] == r["temperature"] and "entropy" in fig.ax_bars.get_title()


# ---------------------------------------------------------------- attention_patterns and its explorer


def test_attention_patterns_are_the_models_own_numbers(tiny_gpt):
    from helpers.attention import generate_names

    r = E.attention_patterns(tiny_gpt, "Emma ", temperature=0.5, n_names=5, seed=2)
    assert r["name"] == "emma" and r["inputs"] == list(".emma") and r["targets"] == list("emma.")
    with torch.no_grad():
        logits = tiny_gpt.eval()(torch.tensor([L.encode(".emma")]))[0]
        weights = torch.stack([w[0] for w in tiny_gpt.attention_weights()])
    tiny_gpt.train()
    assert r["weights"].shape == (2, 2, 5, 5)
    torch.testing.assert_close(torch.as_tensor(r["weights"]), weights)
    torch.testing.assert_close(torch.as_tensor(r["probs"]), torch.softmax(logits / 0.5, dim=-1))
    assert r["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.tensor(L.encode("emma."))).item(), rel=1e-5)
    assert r["names"] == generate_names(tiny_gpt, 5, 0.5, generator=torch.Generator().manual_seed(2))
    assert (r["weights"][..., 0, 1:] == 0).all()  # the first position sees only itself
    assert tiny_gpt.training  # left as it was found


@pytest.mark.parametrize("kwargs, words", [
    ({"temperature": 0}, "temperature must be a positive, finite number"),
    ({"name": "Zoë"}, "not in the alphabet"),
    ({"name": "a" * 10}, "reads at most 9"),
    ({"name": ".emma"}, "without the marker"),
    ({"seed": -1}, "seed must be a whole number ≥ 0"),
])
def test_attention_patterns_refuse_bad_arguments(tiny_gpt, kwargs, words):
    with pytest.raises(ValueError, match=words):
        E.attention_patterns(tiny_gpt, **kwargs)


def test_attention_explorer_reacts_to_its_name_slider_and_button(tiny_gpt):
    ex = W.attention_explorer(tiny_gpt)
    assert isinstance(ex, ipywidgets.VBox) and "p2g-attention_explorer" in _classes(ex)
    assert isinstance(ex.controls["name"], ipywidgets.Text) and ex.controls["name"].continuous_update is False
    assert "p2g-temperature" in _classes(ex.controls["temperature"]) and "p2g-new-names" in _classes(ex.button)
    text, png = ex.result.value, ex.plot.value
    assert png[:4] == b"\x89PNG" and ".emma" in text and "nats per character" in text

    ex.controls["temperature"].value = 0.3  # a slider change redraws on the same frame
    assert ex.history["temperature"] == pytest.approx(0.3, rel=0.05) and ex.plot.value != png
    assert ex.result.value != text and set(ex.timings) == {"compute_ms", "draw_ms"}
    ex.controls["name"].value = "ava"  # a new name: a new frame, three positions
    assert ex.history["inputs"] == list(".ava") and ".ava" in ex.result.value
    before = ex.history["names"]
    ex.button.click()
    assert ex.controls["seed"].value == 1 and ex.history["names"] != before
    ex.controls["name"].value = "Zoë"  # a bad name is explained in the result line, the widget stays alive
    assert "Could not run these settings" in ex.result.value and "alphabet" in ex.result.value
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "attention_explorer" in bundle["text/plain"]


def test_attention_figure_shows_the_past_only(tiny_gpt):
    r = E.attention_patterns(tiny_gpt, "mia")
    fig = P.AttentionFigure(2, 2, tiny_gpt.context)
    assert fig.draw(r)[:4] == b"\x89PNG"
    shown = fig.images[0].get_array()
    assert shown.shape == (10, 10) and shown.mask[0, 1] and not shown.mask[3, 0]  # the future and the padding stay blank
    assert [t.get_text() for t in fig.heads[0].get_xticklabels()] == list(".mia")
