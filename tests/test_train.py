"""helpers.train, the finished loop of the `gpu_loop` notebook: data on the device (train, valid, test), models,
evaluate, fit (seeded, resumable), and the public training step the scripts share."""

import json
import math
import time

import fastprogress.fastprogress
import pytest
import torch
import torch.nn.functional as F

import helpers.train as train
from helpers import set_seed
from helpers.checkpoint import load_checkpoint
from helpers.data import MNIST_FILES, DataNotFoundError, find_mnist_file, mnist_splits
from helpers.models import fast_cnn, simple_cnn, simple_mlp
from helpers.precision import amp_dtype_for, amp_dtype_from_setting, autocast_for, cpu_has_native_bf16
from helpers.train import FAST_RECIPE, DeviceData, TrainingParts, evaluate, fast_settings, fit, training_parts


def _toy_data(n_train=1024, n_valid=256, seed=0, n_test=None):
    """Ten 'classes' of 28x28 uint8 images that differ in which rows are bright: learnable in one epoch."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.randint(0, 10, (n,), generator=g)
        x = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
        for c in range(10):
            rows = slice(2 * c + 4, 2 * c + 7)
            x[y == c, rows, :] = 250
        return x, y

    data = DeviceData(*make(n_train), *make(n_valid), device="cpu")
    if n_test is None:
        return data
    test_x, test_y = make(n_test)
    return DeviceData(data.train_x, data.train_y, data.valid_x, data.valid_y, "cpu", test_x=test_x, test_y=test_y)


@pytest.fixture(scope="module")
def real_mnist():
    """Skips unless the four MNIST files are at hand (CI sets MNIST_DIR); nothing is downloaded."""
    try:
        for name in MNIST_FILES:
            find_mnist_file(name, download=False)
    except DataNotFoundError:
        pytest.skip("the MNIST files are not available: export MNIST_DIR=/path/to/mnist (CI sets it)")


def test_inputs_are_normalised_floats():
    data = _toy_data(64, 32)
    xb = data.inputs(data.train_x[:8])
    expected = ((data.train_x[:8].float() / 255 - train.MNIST_MEAN) / train.MNIST_STD).unsqueeze(1)
    assert xb.shape == (8, 1, 28, 28) and xb.dtype == torch.float32
    torch.testing.assert_close(xb, expected)
    assert data.inputs(data.train_x[:8], channels_last=True).is_contiguous(memory_format=torch.channels_last)
    assert data.train_x.dtype == torch.uint8  # the stored images stay bytes


def test_device_data_rejects_float_images_and_bad_labels():
    x, y = torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="uint8"):
        DeviceData(x.float(), y, x, y, "cpu")
    with pytest.raises(ValueError, match="int64"):
        DeviceData(x, y.float(), x, y, "cpu")
    with pytest.raises(ValueError, match="int64"):
        DeviceData(x, y[:3], x, y, "cpu")
    with pytest.raises(ValueError, match="test_x.*uint8"):
        DeviceData(x, y, x, y, "cpu", test_x=x.float(), test_y=y)
    with pytest.raises(ValueError, match="test_y as int64"):
        DeviceData(x, y, x, y, "cpu", test_x=x, test_y=y[:2])
    with pytest.raises(ValueError, match="both test_x and test_y"):
        DeviceData(x, y, x, y, "cpu", test_x=x)


def test_device_data_holds_three_sets_and_says_so():
    data = _toy_data(64, 32, n_test=16)
    assert (len(data.train_x), len(data.valid_x), len(data.test_x)) == (64, 32, 16)
    assert data.test_x.dtype == torch.uint8 and data.test_y.dtype == torch.int64 and data.test_x.device == data.device
    assert repr(data) == "DeviceData(train (64, 28, 28), valid (32, 28, 28), test (16, 28, 28), uint8 on cpu)"
    two = _toy_data(64, 32)
    assert two.test_x is None and two.test_y is None
    assert repr(two) == "DeviceData(train (64, 28, 28), valid (32, 28, 28), uint8 on cpu)"


def test_models_have_the_documented_shapes():
    x = torch.randn(5, 1, 28, 28)
    cnn, mlp = simple_cnn(), simple_mlp()
    assert cnn(x).shape == (5, 10) and mlp(x).shape == (5, 10)
    n_cnn = (25 * 24 + 24) + (9 * 24 * 32 + 32) + (800 * 256 + 256) + (256 * 10 + 10)
    assert sum(p.numel() for p in cnn.parameters()) == n_cnn
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 256 + 256 + 256 * 10 + 10


def test_fast_cnn_has_the_documented_shape():
    fast = fast_cnn()
    x = torch.randn(5, 1, 28, 28)
    assert fast[:2](x).shape == (5, 32, 12, 12)  # stride 2: 28 -> 12 without a pooling layer
    assert fast[:5](x).shape == (5, 32, 5, 5)  # 12 -> 10 (conv 3x3) -> 5 (max-pool)
    assert fast(x).shape == (5, 10)
    n_fast = (25 * 32 + 32) + (9 * 32 * 32 + 32) + (800 * 256 + 256) + (256 * 10 + 10)
    assert sum(p.numel() for p in fast.parameters()) == n_fast == 217_706
    narrow = fast_cnn(24)
    assert narrow[:2](x).shape == (5, 24, 12, 12) and narrow(x).shape == (5, 10)
    assert sum(p.numel() for p in narrow.parameters()) == 215_194  # as many as the published recipe's network
    with pytest.raises(ValueError, match="filters"):
        fast_cnn(0)


def test_fast_model_narrows_the_first_layer_where_the_cpu_trains_in_float32(monkeypatch):
    from helpers.train import fast_model

    monkeypatch.setenv("HELPERS_CPU_BF16", "0")  # restored after the test
    assert fast_model("cpu")[0].out_channels == 24
    assert fast_model("meta")[0].out_channels == 32  # not a CPU: the recipe's 32 filters


def test_training_parts_recipe_settings_match_torch():
    """betas, cycle_momentum and label_smoothing reach AdamW, OneCycleLR and the loss: same weights as the same
    three steps written with torch directly (the oracle)."""
    data = _toy_data(192, 32)
    batches = [(data.inputs(data.train_x[i:i + 64]), data.train_y[i:i + 64]) for i in range(0, 192, 64)]
    set_seed(4)
    ours = fast_cnn()
    theirs = fast_cnn()
    theirs.load_state_dict(ours.state_dict())
    parts = training_parts(ours, "cpu", 1, 3, 1e-2, betas=(0.7, 0.9), cycle_momentum=False, label_smoothing=0.1)
    opt = torch.optim.AdamW(theirs.parameters(), lr=1e-2, betas=(0.7, 0.9), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=3, cycle_momentum=False)
    for xb, yb in batches:
        loss = parts.step(xb, yb)
        expected = F.cross_entropy(theirs(xb), yb, label_smoothing=0.1)
        opt.zero_grad()
        expected.backward()
        opt.step()
        sched.step()
        torch.testing.assert_close(loss, expected.detach())
    assert parts.opt.param_groups[0]["betas"] == (0.7, 0.9)  # not moved by the schedule
    for k, v in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[k], v)
    # the defaults: betas (0.9, 0.999), beta1 cycled by the schedule (0.95 at the start), no smoothing
    default = training_parts(fast_cnn(), "cpu", 1, 100, 1e-2)
    assert default.opt.param_groups[0]["betas"] == (0.95, 0.999)


def test_fast_recipe_and_settings():
    assert set(FAST_RECIPE) == {"lr", "bs", "betas", "cycle_momentum", "label_smoothing", "wd"}
    assert fast_settings("cpu") == {"amp": cpu_has_native_bf16(), "channels_last": True}
    assert fast_settings("cuda") == {"amp": True, "channels_last": True}
    assert fast_settings("mps") == {"amp": "auto", "channels_last": "auto"}
    data = _toy_data()
    set_seed(2)
    history = fit(fast_cnn(), data, 1, **FAST_RECIPE, **fast_settings("cpu"), progress=False)
    assert history["valid_acc"][0] > 0.9 and history["plot_s"] == 0.0
    assert len(history["batch_loss"]) == math.ceil(1024 / FAST_RECIPE["bs"])


class _FakeMasterBar:
    """Stands in for fastprogress's master_bar: records what fit draws."""

    def __init__(self, epochs):
        self.epochs, self.graphs, self.lines, self.names = epochs, [], [], []
        self.child = type("Child", (), {"comment": ""})()

    def __iter__(self):
        return iter(self.epochs)

    def update_graph(self, graphs, x_bounds=None, y_bounds=None):
        self.graphs.append((graphs, x_bounds, y_bounds))

    def write(self, line):
        self.lines.append(line)


def test_live_plot_draws_the_loss_and_keeps_drawing_out_of_the_training_time(monkeypatch):
    data = _toy_data(512, 128)
    bars = []
    monkeypatch.setattr(train, "_progress", lambda epochs, enabled: bars.append(_FakeMasterBar(epochs)) or bars[-1])
    monkeypatch.setattr(fastprogress.fastprogress, "progress_bar", lambda items, parent: items)  # fit imports it
    real_add_batch, real_clock, drawn = train.LossCurve.add_batch, time.perf_counter, {"s": 0.0}

    def slow_add_batch(self, step, loss):  # each drawing moves the clock on by 100 s: none of it may be training
        real_add_batch(self, step, loss)
        drawn["s"] += 100.0

    monkeypatch.setattr(train.LossCurve, "add_batch", slow_add_batch)
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + drawn["s"])
    set_seed(1)
    history = fit(simple_mlp(16), data, 2, 3e-3, bs=64, log_every=2, live_plot=True)
    mb = bars[0]
    assert mb.names == ["train loss (one batch)", "valid loss"]
    assert len(mb.graphs[0][0]) == 1  # one validation point draws no line: the training loss alone, at first
    (train_x, train_y), (valid_x, valid_y) = mb.graphs[-1][0]
    assert train_x == [s / 8 for s in (1, 3, 5, 7, 9, 11, 13, 15)]  # every 2nd of 8 batches per epoch, in epochs
    assert train_y == pytest.approx([history["batch_loss"][s - 1] for s in (1, 3, 5, 7, 9, 11, 13, 15)])
    assert valid_x == [1, 2] and valid_y == history["valid_loss"]
    assert mb.graphs[-1][1] == (0, 2)
    assert history["plot_s"] >= 8 * 100.0
    assert sum(history["train_s"]) < 100 and sum(history["epoch_s"]) < 100
    assert len(mb.lines) == 2


def test_loss_curve_draws_in_epochs_joins_validation_points_and_counts_its_drawing_time():
    mb = _FakeMasterBar(range(2))
    curve = train.LossCurve(mb, n_epochs=2, steps_per_epoch=4)
    assert mb.names == ["train loss (one batch)", "valid loss"]
    curve.add_batch(1, 2.0)
    curve.add_batch(3, 1.0)
    curve.add_epoch(1, 0.8)
    assert mb.graphs[-1] == ([[[0.25, 0.75], [2.0, 1.0]]], (0, 2), (0, 2.1))  # one valid point: not drawn yet
    curve.add_epoch(2, 0.5)
    assert mb.graphs[-1][0] == [[[0.25, 0.75], [2.0, 1.0]], [[1, 2], [0.8, 0.5]]]
    assert len(mb.graphs) == 4 and curve.seconds > 0
    resumed = train.LossCurve(_FakeMasterBar(range(1, 2)), 2, 4, history={"epoch": [1], "valid_loss": [0.8]})
    resumed.add_epoch(2, 0.5)
    assert resumed.valid == ([1, 2], [0.8, 0.5])


@pytest.mark.parametrize("args", [(0, 4), (2, 0), (2.5, 4)])
def test_loss_curve_rejects_a_bad_size(args):
    with pytest.raises((ValueError, TypeError), match="n_epochs|steps_per_epoch"):
        train.LossCurve(_FakeMasterBar(range(1)), *args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(betas=(0.9,)), "betas must be two numbers"), (dict(betas=(1.0, 0.9)), "betas"),
    (dict(label_smoothing=1.0), "label_smoothing"), (dict(label_smoothing=-0.1), "label_smoothing"),
    (dict(log_every=0), "log_every"),
])
def test_fit_rejects_bad_recipe_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(simple_mlp(8), _toy_data(64, 16), 1, 1e-3, 64, progress=False, **kwargs)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_evaluate_matches_torch(split):
    data = _toy_data(64, 300, n_test=290)
    set_seed(0)
    model = simple_mlp(32)
    loss, acc = evaluate(model, data, split, bs=128)  # three batches, the last one short
    x, y = (data.valid_x, data.valid_y) if split == "valid" else (data.test_x, data.test_y)
    with torch.no_grad():
        logits = model(data.inputs(x))
    assert math.isclose(loss, F.cross_entropy(logits, y).item(), rel_tol=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).sum().item() / len(y))
    if split == "valid":
        assert evaluate(model, data, bs=128) == (loss, acc)  # "valid" is the default


def test_evaluate_refuses_a_missing_test_set_and_unknown_splits():
    with pytest.raises(ValueError, match="no test set.*DeviceData.mnist"):
        evaluate(simple_mlp(8), _toy_data(64, 32), "test")
    for bad in ["train", "validation", 1024]:
        with pytest.raises(ValueError, match="'valid'.*'test'"):
            evaluate(simple_mlp(8), _toy_data(64, 32, n_test=8), bad)


def test_fit_reports_the_validation_set_never_the_test_set():
    data = _toy_data(512, 128, n_test=100)
    flipped = DeviceData(data.train_x, data.train_y, data.valid_x, data.valid_y, "cpu",
                         test_x=data.test_x, test_y=(data.test_y + 1) % 10)  # test labels all wrong
    set_seed(2)
    model = simple_mlp(32)
    history = fit(model, flipped, 1, 3e-3, bs=64, progress=False)
    assert history["valid_acc"] == [evaluate(model, flipped, "valid")[1]] and history["valid_acc"][0] > 0.9
    assert evaluate(model, flipped, "test")[1] < 0.1  # what the test set would have said: fit never asked it


def test_amp_is_off_on_the_cpu():
    assert amp_dtype_for("cpu") is None


def test_amp_setting_and_autocast_for():
    assert amp_dtype_from_setting("auto", "cpu") is None and amp_dtype_from_setting(False, "cpu") is None
    assert amp_dtype_from_setting(True, "cpu") == torch.bfloat16  # asked for explicitly: bf16 on the CPU
    with pytest.raises(ValueError, match="amp must be 'auto'"):
        amp_dtype_from_setting("on", "cpu")
    x = torch.randn(4, 4)
    for device in ("cpu", torch.device("cpu")):
        with autocast_for(device, torch.bfloat16):
            assert (x @ x).dtype == torch.bfloat16
        with autocast_for(device, None):
            assert (x @ x).dtype == torch.float32


def test_one_epoch_lowers_the_loss():
    data = _toy_data()
    set_seed(1)
    model = simple_mlp(64)
    before, _ = evaluate(model, data)
    history = fit(model, data, 1, 3e-3, bs=64, progress=False)
    assert history["valid_loss"][0] < before / 2
    assert history["valid_acc"][0] > 0.9
    assert len(history["batch_loss"]) == len(history["lr"]) == 16
    assert max(history["lr"]) == pytest.approx(3e-3, rel=0.05)  # the one-cycle peak


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_fit_is_repeatable_with_a_seed():
    data = _toy_data(512, 128)
    runs = []
    for _ in range(2):
        set_seed(5)
        model = simple_cnn()
        history = fit(model, data, 2, 3e-3, bs=64, progress=False)
        runs.append((_weights(model), history["batch_loss"]))
    assert runs[0][1] == runs[1][1]
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    set_seed(5)
    model = simple_cnn()
    fit(model, data, 2, 3e-3, bs=64, seed=999, progress=False)  # another data order: other weights
    assert not torch.equal(model.state_dict()["0.weight"], runs[0][0]["0.weight"])


def test_resume_in_process_after_a_crash(tmp_path, monkeypatch):
    data = _toy_data(512, 128)
    set_seed(3)
    reference = simple_mlp(64)
    start = _weights(reference)
    full = fit(reference, data, 3, 3e-3, bs=64, seed=11, progress=False)

    calls = {"n": 0}
    real_evaluate = train.evaluate

    def crashes_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", crashes_in_epoch_two)
    crashed = simple_mlp(64)
    crashed.load_state_dict(start)
    with pytest.raises(RuntimeError, match="power cut"):
        fit(crashed, data, 3, 3e-3, bs=64, seed=11, checkpoint_path=tmp_path / "c.pt", progress=False)
    monkeypatch.setattr(train, "evaluate", real_evaluate)
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 1

    resumed = simple_mlp(64)  # a fresh process would build a fresh model: the checkpoint fills it in
    history = fit(resumed, data, 3, 3e-3, bs=64, seed=11, checkpoint_path=tmp_path / "c.pt", progress=False)
    for k, v in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    assert history["batch_loss"] == full["batch_loss"] and history["valid_acc"] == full["valid_acc"]


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    data = _toy_data(256, 64)
    fit(simple_mlp(16), data, 1, 1e-3, bs=64, checkpoint_path=tmp_path / "c.pt", progress=False)
    with pytest.raises(ValueError, match="another run"):
        fit(simple_mlp(16), data, 1, 1e-3, bs=32, checkpoint_path=tmp_path / "c.pt", progress=False)
    fit(simple_mlp(16), data, 1, 1e-3, bs=32, checkpoint_path=tmp_path / "c.pt", resume=False, progress=False)
    # a checkpoint of a float32 run does not resume under autocast (nor one from another device)
    with pytest.raises(ValueError, match="another run.*'amp_dtype': 'None'.*'amp_dtype': 'bfloat16'"):
        fit(simple_mlp(16), data, 1, 1e-3, bs=32, amp=True, checkpoint_path=tmp_path / "c.pt", progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_epochs=0), "n_epochs"), (dict(lr=-1.0), "lr"), (dict(bs=0), "bs"),
])
def test_fit_rejects_bad_settings(kwargs, match):
    args = dict(n_epochs=1, lr=1e-3, bs=64) | kwargs
    with pytest.raises(ValueError, match=match):
        fit(simple_mlp(8), _toy_data(64, 16), args["n_epochs"], args["lr"], args["bs"], progress=False)


def test_fit_wants_device_data():
    with pytest.raises(TypeError, match="DeviceData"):
        fit(simple_mlp(8), (torch.zeros(4, 28, 28), torch.zeros(4)), 1, 1e-3)


@pytest.mark.parametrize("amp_dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16+scaler"])
def test_the_gpu_settings_train_on_the_cpu_too(amp_dtype):
    """What a GPU turns on (autocast, channels_last; float16 with a gradient scaler on GPUs without bf16) is the
    same code on the CPU, so it is checked here: the CNN learns, the weights stay float32 in channels_last."""
    data = _toy_data(512, 256)
    set_seed(3)
    model = simple_cnn()
    parts = training_parts(model, data.device, 1, 8, 3e-3, amp_dtype=amp_dtype, channels_last=True)
    assert isinstance(parts, TrainingParts) and parts.model is model  # no compile: the model itself
    step_model, opt, sched, scaler, step = parts
    assert opt.param_groups[0]["weight_decay"] == 0.01  # the default
    assert scaler.is_enabled() == (amp_dtype == torch.float16)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    losses = [step(data.inputs(data.train_x[i:i + 64], True), data.train_y[i:i + 64]).item() for i in range(0, 512, 64)]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    _, acc = evaluate(model, data, amp_dtype=amp_dtype, channels_last=True)
    assert acc > 0.5


def test_the_gradient_scaler_skips_a_step_whose_gradients_overflow():
    """The branch a free T4 (Colab, Kaggle) takes: float16 autocast with a gradient scaler. A batch whose gradients
    are infinite must leave the weights and the optimizer untouched and halve the scale; the next good batch
    trains. Run here on the CPU (`torch.autocast("cpu", dtype=torch.float16)`, `GradScaler("cpu")`)."""
    data = _toy_data(256, 64)
    set_seed(4)
    model = simple_cnn()
    parts = training_parts(model, data.device, 1, 4, 3e-3, amp_dtype=torch.float16)
    assert parts.scaler.is_enabled()
    xb, yb = data.inputs(data.train_x[:64]), data.train_y[:64]
    parts.step(xb, yb)  # one ordinary step: the optimizer now has state
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scale = parts.scaler.get_scale()
    bad = xb.clone()
    bad[0, 0, 0, 0] = float("inf")  # an overflow, as float16 produces when the scale is too large
    parts.step(bad, yb)
    assert parts.scaler.get_scale() == scale / 2, "an overflowing step halves the scale"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the skipped step changed a weight"
    parts.step(xb, yb)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "the next good step trains"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cpu_bf16_can_be_switched_off_to_act_as_a_laptop(monkeypatch):
    """`HELPERS_CPU_BF16=0` (tools/personality.py, `make test-portable`) makes a bf16 CPU take the float32 path."""
    monkeypatch.setenv("HELPERS_CPU_BF16", "0")
    assert train.cpu_has_native_bf16() is False
    assert fast_settings("cpu") == {"amp": False, "channels_last": True}


def test_fit_with_amp_and_channels_last_on_the_cpu():
    data = _toy_data()
    set_seed(1)
    history = fit(simple_cnn(), data, 1, 3e-3, bs=64, amp=True, channels_last=True, progress=False)
    assert history["valid_acc"][0] > 0.9


@pytest.mark.slow
def test_compile_time_is_reported_apart_from_training_time(monkeypatch):
    """`compile=True` (the `gpu_loop` notebook's option): the first step's compilation goes to `compile_s`, not
    `train_s`. A stand-in compiler that takes a known second on its first call makes this a test of the
    bookkeeping, not of how fast inductor is today (its cache can make a real compile quick)."""
    class SlowFirstCall(torch.nn.Module):  # what torch.compile returns is a module wrapping the model
        def __init__(self, model):
            super().__init__()
            self.model, self.calls = model, 0

        def forward(self, x):
            if self.calls == 0:
                time.sleep(1.0)
            self.calls += 1
            return self.model(x)

    monkeypatch.setattr(torch, "compile", SlowFirstCall)
    data = _toy_data(512, 128)
    set_seed(1)
    history = fit(simple_mlp(64), data, 2, 3e-3, bs=64, compile=True, progress=False)
    assert history["compile_s"] >= 1.0
    assert sum(history["train_s"]) < history["compile_s"] - 0.5
    assert history["valid_acc"][-1] > 0.9


@pytest.mark.slow
def test_fit_trains_through_the_real_torch_compile(restore_environ):
    """The real inductor path runs and learns (its time is not asserted: that is benchmarks' business).
    (Inductor sets environment variables: `restore_environ` removes them again.)"""
    data = _toy_data(512, 128)
    set_seed(1)
    history = fit(simple_mlp(64), data, 2, 3e-3, bs=64, compile=True, progress=False)
    assert history["compile_s"] > 0 and history["valid_acc"][-1] > 0.9


def test_training_parts_takes_weight_decay_as_a_keyword_and_checks_its_counts():
    model = simple_mlp(8)
    parts = training_parts(model, "cpu", 2, 5, 1e-3, wd=0.1)
    assert parts.opt.param_groups[0]["weight_decay"] == 0.1
    assert parts.sched.total_steps == 10 and parts.scaler.is_enabled() is False
    with pytest.raises(TypeError):
        training_parts(model, "cpu", 2, 5, 1e-3, 0.1)  # weight decay is keyword-only
    with pytest.raises(ValueError, match="steps_per_epoch"):
        training_parts(model, "cpu", 2, 0, 1e-3)


@pytest.mark.parametrize("bs", [True, 2.0, 0])
def test_fit_checks_bs_as_a_positive_whole_number(bs):
    with pytest.raises(ValueError, match="bs must be a positive whole number"):
        fit(simple_mlp(8), _toy_data(64, 16), 1, 1e-3, bs, progress=False)


def test_device_data_mnist_holds_mnist_splits(real_mnist):
    data = DeviceData.mnist("cpu")
    s = mnist_splits()
    assert (data.n_train, len(data.valid_x), len(data.test_x)) == (50000, 10000, 10000)
    assert torch.equal(data.valid_x, s.valid_x) and torch.equal(data.test_y, s.test_y)
    small = DeviceData.mnist("cpu", n_train=1000, n_valid=5000, n_test=300)
    s5 = mnist_splits(n_valid=5000)
    assert (small.n_train, len(small.valid_x), len(small.test_x)) == (1000, 5000, 300)
    assert torch.equal(small.train_x, s5.train_x[:1000]) and torch.equal(small.valid_y, s5.valid_y)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_train=50001), "n_train=50,001 is more than the 50,000 training images"),
    (dict(n_test=10001), "n_test=10,001 is more than MNIST's 10,000 test images"),
    (dict(n_train=0), "n_train must be a positive whole number"),
    (dict(n_valid=60000), "n_valid must be smaller"),
])
def test_device_data_mnist_rejects_bad_sizes(real_mnist, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeviceData.mnist("cpu", **kwargs)


def test_the_command_line_validates_each_epoch_and_tests_once_at_the_end(real_mnist, capsys, tmp_path):
    rc = train.main(["--model", "mlp", "--epochs", "1", "--n-train", "1024", "--n-valid", "2000", "--n-test", "500",
                     "--bs", "128", "--device", "cpu", "--test", "--out", str(tmp_path / "out.pt")])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [sorted(line) for line in lines] == [["epoch", "train_loss", "valid_acc"], ["test_acc", "test_loss"]]
    assert 0.5 < lines[0]["valid_acc"] and 0.5 < lines[1]["test_acc"]
    assert load_checkpoint(tmp_path / "out.pt")["history"]["test_acc"] == lines[1]["test_acc"]


def test_the_names_notebooks_import_from_train_are_the_objects_of_their_homes():
    """Notebooks, benchmarks and tests import the models, the number-format helpers, the accuracies and `sync`
    from `helpers.train`, as before the split: the very objects of `helpers.models`, `precision`, `metrics`, `env`."""
    from helpers import env, metrics, models, precision

    homes = {models: ("simple_cnn", "simple_mlp", "fast_cnn"), metrics: ("accuracy", "binary_accuracy"),
             precision: ("cpu_has_native_bf16", "amp_dtype_for", "amp_dtype_from_setting", "autocast_for"),
             env: ("sync",)}
    for home, names in homes.items():
        for name in names:
            assert getattr(train, name) is getattr(home, name) and name in train.__all__ and name in home.__all__, name


# --- The timing harnesses of gpu_loop and transfer (issue 23) -----------------------------------------------------
def test_best_seconds_keeps_the_fastest_run_and_restores_the_thread_count():
    from helpers.timing import best_seconds
    waits = iter([0.03, 0.0, 0.02])
    threads = torch.get_num_threads()
    t = best_seconds(lambda: time.sleep(next(waits)), repeats=3, threads=1)
    assert t < 0.015 and torch.get_num_threads() == threads
    with pytest.raises(ValueError):
        best_seconds(lambda: None, repeats=0)


def test_feeding_seconds_takes_n_batches_from_a_fresh_iterator_each_run():
    from helpers.timing import feeding_seconds
    made, taken = [], []

    def make_batches():
        made.append(1)
        for i in range(100):
            taken.append(i)
            yield torch.zeros(2, 3), torch.zeros(2)

    assert feeding_seconds(make_batches, 5, "cpu", repeats=2) >= 0
    assert len(made) == 2 and len(taken) == 2 * 5


def test_step_milliseconds_times_a_training_step_in_each_setting():
    from helpers.models import simple_mlp
    from helpers.timing import step_milliseconds
    xb, yb = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for cl, amp in [(False, None), (True, torch.bfloat16)]:
        ms = step_milliseconds(lambda: simple_mlp(hidden=16), xb, yb, "cpu", channels_last=cl, amp_dtype=amp,
                               n=2, repeats=1)
        assert 0 < ms < 5000
