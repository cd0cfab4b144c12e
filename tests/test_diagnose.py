"""helpers.diagnose: every detector fires on its bug, stays quiet on the correct loop, and explains bad input."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.diagnose import (
    DETECTORS,
    GuardedTestSet,
    Report,
    check_causal,
    check_eval_mode,
    check_outputs,
    check_overlap,
    check_shuffling,
    check_targets,
    check_test_set,
    check_training_step,
    detector_table,
    outputs_sum_to_one,
    run_detectors,
    standard_step,
)


def make_data(n=64, n_in=20, n_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = x[:, :n_classes].argmax(dim=1)  # a learnable rule, as real labels are
    return x, y


def make_model(n_in=20, n_classes=4, extra=()):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), *extra, nn.Linear(32, n_classes))


def setup(extra=(), lr=0.1, opt_cls=torch.optim.SGD):
    model = make_model(extra=extra)
    return model, nn.CrossEntropyLoss(), opt_cls(model.parameters(), lr=lr), make_data()


def run(model, loss_fn, opt, batch, step_fn=None, **kw):
    return check_training_step(model, loss_fn, opt, batch, step_fn=step_fn, verbose=False, **kw)


# ------------------------------------------------------------------------------------ the correct loop


@pytest.mark.parametrize("opt_cls,lr", [(torch.optim.SGD, 0.1), (torch.optim.Adam, 1e-2)])
def test_correct_loop_is_quiet(opt_cls, lr):
    model, loss_fn, opt, batch = setup(extra=(nn.Dropout(0.1),), lr=lr, opt_cls=opt_cls)
    report = run(model, loss_fn, opt, batch)
    assert report.ok, str(report)
    assert report.fired == set()


def test_zero_grad_after_step_is_also_correct():
    def step(model, loss_fn, opt, batch):
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    assert run(*setup(), step_fn=step).ok


def test_check_leaves_model_optimizer_and_rng_untouched():
    model, loss_fn, opt, batch = setup(extra=(nn.Dropout(0.5),), opt_cls=torch.optim.Adam, lr=1e-2)
    standard_step(model, loss_fn, opt, batch)  # some optimizer state to protect
    state, opt_state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    run(model, loss_fn, opt, batch)
    assert all(torch.equal(a, b) for a, b in zip(state.values(), model.state_dict().values()))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[k]["exp_avg"], opt_state["state"][k]["exp_avg"]) for k in after)
    assert torch.equal(rng, torch.get_rng_state())
    assert model.training


def test_report_prints_what_why_fix(capsys):
    model, loss_fn, opt, batch = setup()

    def no_zero(model, loss_fn, opt, batch):
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return loss

    report = check_training_step(model, loss_fn, opt, batch, step_fn=no_zero)
    out = capsys.readouterr().out
    assert "accumulating_gradients" in out and "why:" in out and "fix:" in out and "zero_grad" in out
    assert isinstance(report, Report) and "accumulating_gradients" in report


# ------------------------------------------------------------------------------------ each bug fires


def test_missing_zero_grad_fires():
    def no_zero(model, loss_fn, opt, batch):
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return loss

    assert "accumulating_gradients" in run(*setup(), step_fn=no_zero).fired


def test_softmax_before_cross_entropy_fires():
    model, loss_fn, opt, batch = setup(extra=())
    model.append(nn.Softmax(dim=1))
    report = run(model, loss_fn, opt, batch)
    assert "softmax_before_loss" in report.fired
    assert "accumulating_gradients" not in report.fired


def test_float_class_indices_fire_and_the_crash_is_explained():
    model, loss_fn, opt, (x, y) = setup()
    report = run(model, loss_fn, opt, (x, y.float()))
    assert "target_dtype" in report.fired
    assert "loss_error" in report.fired
    assert any(".long()" in f.fix for f in report)


def test_targets_of_shape_n1_for_cross_entropy_fire():
    model, loss_fn, opt, (x, y) = setup()
    assert "target_shape" in run(model, loss_fn, opt, (x, y[:, None])).fired


def test_class_index_out_of_range_fires():
    out = torch.randn(8, 2)
    assert "target_range" in check_targets(out, torch.tensor([3, 7] * 4), nn.CrossEntropyLoss()).fired
    assert check_targets(out, torch.tensor([0, 1] * 4), nn.CrossEntropyLoss()).ok


def test_broadcasting_shapes_fire_for_mse_and_handwritten_losses():
    out, y = torch.rand(16, 1), (torch.rand(16) > 0.5).float()
    assert (out - y).shape == (16, 16)  # the bug is real: torch broadcasts silently

    def mnist_loss(preds, targets):
        return torch.where(targets == 1, 1 - preds, preds).mean()

    for loss_fn in (nn.MSELoss(), mnist_loss):
        assert "target_shape" in check_targets(out, y, loss_fn).fired
        assert check_targets(out.squeeze(1), y, loss_fn).ok


def test_integer_targets_for_bce_fire():
    out = torch.randn(16)
    assert "target_dtype" in check_targets(out, torch.ones(16, dtype=torch.long), nn.BCEWithLogitsLoss()).fired
    assert check_targets(out, torch.ones(16), nn.BCEWithLogitsLoss()).ok


def test_soft_labels_for_cross_entropy_are_fine():
    out = torch.randn(8, 3)
    assert check_targets(out, torch.softmax(torch.randn(8, 3), 1), F.cross_entropy).ok


def test_output_checks_against_torch():
    logits = torch.randn(32, 10)
    probs = torch.softmax(logits, 1)
    assert outputs_sum_to_one(probs) and not outputs_sum_to_one(logits)
    assert "softmax_before_loss" in check_outputs(probs, nn.CrossEntropyLoss()).fired
    assert check_outputs(logits, nn.CrossEntropyLoss()).ok
    assert check_outputs(torch.log_softmax(logits, 1), nn.NLLLoss()).ok
    assert "softmax_before_loss" in check_outputs(probs, nn.NLLLoss()).fired
    assert "softmax_before_loss" in check_outputs(torch.sigmoid(torch.randn(32)), nn.BCEWithLogitsLoss()).fired
    assert check_outputs(torch.randn(32), nn.BCEWithLogitsLoss()).ok


def test_relu_before_the_loss_is_named_and_logits_are_not():
    logits = torch.randn(32, 10)
    for loss_fn in (nn.CrossEntropyLoss(), F.cross_entropy):
        report = check_outputs(torch.relu(logits), loss_fn)
        assert report.fired == {"relu_before_loss"}, str(report)
        zeros = (logits <= 0).float().mean().item()
        assert f"({zeros:.0%} of them are exactly 0)" in report.findings[0].what
        assert check_outputs(logits, loss_fn).ok
        assert check_outputs(F.softplus(logits), loss_fn).fired == {"relu_before_loss"}  # never negative either
        assert check_outputs(torch.softmax(logits, 1), loss_fn).fired == {"softmax_before_loss"}  # the other bug
    assert check_outputs(torch.relu(torch.randn(32)) * 5, nn.BCEWithLogitsLoss()).fired == {"relu_before_loss"}
    assert check_outputs(torch.relu(logits[:1, :4]), nn.CrossEntropyLoss()).ok  # 4 numbers: too few to tell
    # a trained model's raw logits are negative for the classes it rules out: quiet after training too
    model, loss_fn, opt, (x, y) = setup()
    for _ in range(200):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.95
        assert check_outputs(model(x), loss_fn).ok


def test_relu_after_the_last_layer_fires_in_the_training_step():
    model, loss_fn, opt, batch = setup()
    model.append(nn.ReLU())
    assert "relu_before_loss" in run(model, loss_fn, opt, batch).fired


def test_learning_rate_far_too_high_fires():
    model, loss_fn, opt, batch = setup(lr=1e4)
    assert run(model, loss_fn, opt, batch).fired & {"nan_loss", "loss_not_falling"}


def test_learning_rate_far_too_small_does_not_fall():
    assert "loss_not_falling" in run(*setup(lr=1e-6)).fired


def test_nan_inputs_fire():
    model, loss_fn, opt, (x, y) = setup()
    x = x.clone()
    x[0, 0] = float("nan")
    assert "nan_loss" in run(model, loss_fn, opt, (x, y)).fired


def test_leaf_modified_in_place_is_caught_and_explained():
    report = run(*setup(), step_fn=_in_place_on_a_leaf)
    assert "step_error" in report.fired
    assert any("no_grad" in f.fix for f in report)


def test_missing_optimizer_step_fires():
    def no_step(model, loss_fn, opt, batch):
        opt.zero_grad()
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        return loss

    assert {"params_unchanged", "loss_not_falling"} <= run(*setup(), step_fn=no_step).fired


def test_zero_grad_between_backward_and_step_is_named():
    def cleared_too_early(model, loss_fn, opt, batch):
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        opt.zero_grad()  # wipes the gradients step() was about to use
        opt.step()
        return loss

    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    report = run(model, nn.CrossEntropyLoss(), opt, make_data(), step_fn=cleared_too_early)
    finding = report.findings[0]  # the first finding is the one the `bug_zoo` notebook's exercise 10.1 asks for
    assert finding.detector == "params_unchanged"
    assert "zero_grad() runs between backward() and step()" in finding.why
    assert "zero_grad(), forward + loss, backward(), step()" in finding.fix


def test_unused_and_frozen_parameters_fire():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head, self.unused = nn.Linear(20, 32), nn.Linear(32, 4), nn.Linear(32, 4)

        def forward(self, x):
            return self.head(self.body(x).relu())

    model = TwoHeads()
    report = run(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), make_data())
    assert "no_gradient" in report.fired and any("unused" in f.what for f in report)
    model, loss_fn, opt, batch = setup()
    model[0].weight.requires_grad_(False)
    assert "no_gradient" in run(model, loss_fn, opt, batch).fired


def test_optimizer_of_another_model_fires():
    model, loss_fn, _, batch = setup()
    opt = torch.optim.SGD(make_model().parameters(), lr=0.1)  # made for a different model
    assert "optimizer_params" in run(model, loss_fn, opt, batch).fired


def test_eval_mode_during_training_fires():
    model, loss_fn, opt, batch = setup(extra=(nn.Dropout(0.2), nn.BatchNorm1d(32)))
    model.eval()
    assert "mode" in run(model, loss_fn, opt, batch).fired
    assert not model.training  # restored as it was


# ---------------------------------------------------------------------------------------- evaluation


def test_check_eval_mode():
    model = make_model(extra=(nn.Dropout(0.5), nn.BatchNorm1d(32)))
    assert "mode" in check_eval_mode(model, expect="eval").fired
    assert check_eval_mode(model, expect="train").ok
    model.eval()
    assert check_eval_mode(model, expect="eval", x=torch.randn(8, 20)).ok
    assert "mode" in check_eval_mode(model, expect="train").fired
    model.train()
    model.training = False  # switched off by hand on the model alone: named in the finding, not left blank
    finding = check_eval_mode(model, expect="train").findings[0]
    assert finding.detector == "mode" and "(Sequential is not training)" in finding.what


def test_check_eval_mode_sees_a_handmade_dropout_through_its_outputs():
    class LeakyDropout(nn.Module):  # forgets to look at self.training
        def forward(self, x):
            return x * (torch.rand_like(x) > 0.5) * 2

    model = make_model(extra=(LeakyDropout(),)).eval()
    x = torch.randn(8, 20)
    assert "mode" in check_eval_mode(model, x=x).fired
    assert check_eval_mode(make_model().eval(), x=x).ok
    assert check_eval_mode(make_model()).notes  # no dropout/BN: says mode changes nothing


def test_check_shuffling_on_sorted_and_shuffled_orders():
    labels = torch.cat([torch.zeros(500), torch.ones(500)]).long()
    sorted_batches = [torch.arange(i, min(i + 50, 1000)) for i in range(0, 1000, 50)]
    assert "unshuffled" in check_shuffling(sorted_batches, labels=labels).fired
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(1000, generator=g)
    assert check_shuffling([order[i:i + 50] for i in range(0, 1000, 50)], labels=labels).ok
    ds = torch.utils.data.TensorDataset(torch.randn(1000, 3), labels)
    assert "unshuffled" in check_shuffling(torch.utils.data.DataLoader(ds, batch_size=50)).fired
    assert check_shuffling(torch.utils.data.DataLoader(ds, batch_size=50, shuffle=True, generator=g)).ok


def test_check_overlap():
    a, b = torch.rand(100, 784), torch.rand(30, 784)
    assert check_overlap(a, b).ok
    report = check_overlap(a, torch.cat([b, a[:10]]))
    assert "overlap" in report.fired and "10 of 40" in report.findings[0].what


# -------------------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    model, loss_fn, opt, (x, y) = setup()
    with pytest.raises(TypeError, match="batch=\\(x, y\\)"):
        check_training_step(model, loss_fn, opt, x)
    with pytest.raises(ValueError, match="inputs but"):
        check_training_step(model, loss_fn, opt, (x, y[:10]))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        check_training_step(model, loss_fn, "sgd", (x, y))
    with pytest.raises(TypeError, match="nn.Module"):
        check_training_step(lambda t: t, loss_fn, opt, (x, y))
    with pytest.raises(ValueError, match="n_steps"):
        check_training_step(model, loss_fn, opt, (x, y), n_steps=1)
    with pytest.raises(TypeError, match="step_fn"):
        check_training_step(model, loss_fn, opt, (x, y), step_fn=3)
    with pytest.raises(ValueError, match="expect"):
        check_eval_mode(model, expect="test")
    with pytest.raises(ValueError, match="labels="):
        check_shuffling([torch.arange(4)])
    with pytest.raises(TypeError, match="iterable"):
        check_shuffling(5)
    with pytest.raises(ValueError, match="same class"):
        check_shuffling([torch.arange(4)], labels=torch.zeros(4))
    with pytest.raises(ValueError, match="same form"):
        check_overlap(torch.rand(4, 784), torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match="2-D"):
        outputs_sum_to_one(torch.rand(5))
    with pytest.raises(ValueError, match="unknown detector"):
        Report("t").add("no_such_detector", "", "", "")


def test_every_detector_can_fire_and_shows_in_the_table_in_order():
    """DETECTORS is what a report and the table accept: each name fires into a report, and the table gives each
    its column, in DETECTORS' order, ticked only where it fired."""
    report = Report("all")
    for name in reversed(list(DETECTORS)):
        report.add(name, "what", "why", "fix")
    assert report.fired == set(DETECTORS) and all(name in str(report) for name in DETECTORS)
    table = detector_table({"all": report.fired, "one": [next(iter(DETECTORS))]})
    assert list(table.columns) == list(DETECTORS)
    assert (table.loc["all"] == "✔").all() and (table.loc["one"] == "✔").sum() == 1


def test_the_model_is_restored_even_when_the_step_escapes():
    """KeyboardInterrupt is not an Exception the detectors catch: it leaves check_training_step, and the restore
    context still puts the weights, the optimizer state, the gradients and the mode back."""
    model, loss_fn, opt, batch = setup(extra=(nn.Dropout(0.5),), opt_cls=torch.optim.Adam, lr=1e-2)
    standard_step(model, loss_fn, opt, batch)
    state, opt_state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    calls = []

    def interrupted(model, loss_fn, opt, batch):
        calls.append(1)
        if len(calls) == 5:  # inside the one-batch test, after four real updates
            model.eval()
            raise KeyboardInterrupt
        return standard_step(model, loss_fn, opt, batch)

    with pytest.raises(KeyboardInterrupt):
        run(model, loss_fn, opt, batch, step_fn=interrupted)
    assert len(calls) == 5
    assert all(torch.equal(a, b) for a, b in zip(state.values(), model.state_dict().values()))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[k]["exp_avg"], opt_state["state"][k]["exp_avg"]) for k in after)
    assert opt.state_dict()["state"][0]["step"] == opt_state["state"][0]["step"]
    assert model.training


def test_every_phase_starts_from_the_model_as_given():
    """Batch norm's running statistics move in every forward pass in training mode; after the check they are
    back, and the one-batch test starts from the given weights (its first loss is the given model's loss)."""
    model, loss_fn, opt, (x, y) = setup(extra=(nn.BatchNorm1d(32),))
    bn = model[2]
    running = bn.running_mean.clone()
    with torch.no_grad():
        first = float(loss_fn(copy.deepcopy(model)(x), y))
    report = run(model, loss_fn, opt, (x, y))
    assert torch.equal(bn.running_mean, running) and int(bn.num_batches_tracked) == 0
    assert report.notes[-1].startswith(f"one-batch test: loss {first:.3g} → ")


# ------------------------------------------------------------------ every detector fires on its bug
# One buggy scenario per name in DETECTORS (a new detector without one fails `test_every_detector_fires`).


def _no_zero_grad(model, loss_fn, opt, batch):
    loss = loss_fn(model(batch[0]), batch[1])
    loss.backward()
    opt.step()
    return loss


def _no_step(model, loss_fn, opt, batch):
    opt.zero_grad()
    loss = loss_fn(model(batch[0]), batch[1])
    loss.backward()
    return loss


def _in_place_on_a_leaf(model, loss_fn, opt, batch):
    loss = loss_fn(model(batch[0]), batch[1])
    loss.backward()
    for p in model.parameters():
        p -= 0.1 * p.grad  # outside torch.no_grad()
    return loss


def _softmax_model():
    model, loss_fn, opt, batch = setup()
    model.append(nn.Softmax(dim=1))
    return run(model, loss_fn, opt, batch)


def _relu_model():
    model, loss_fn, opt, batch = setup()
    model.append(nn.ReLU())
    return run(model, loss_fn, opt, batch)


def _nan_input():
    model, loss_fn, opt, (x, y) = setup()
    x = x.clone()
    x[0, 0] = float("nan")
    return run(model, loss_fn, opt, (x, y))


def _frozen_layer():
    model, loss_fn, opt, batch = setup()
    model[0].weight.requires_grad_(False)
    return run(model, loss_fn, opt, batch)


def _eval_mode_while_training():
    model, loss_fn, opt, batch = setup(extra=(nn.Dropout(0.2),))
    return run(model.eval(), loss_fn, opt, batch)


def _sorted_batches():
    labels = torch.cat([torch.zeros(500), torch.ones(500)]).long()
    return check_shuffling([torch.arange(i, i + 50) for i in range(0, 1000, 50)], labels=labels)


def _shared_validation_examples():
    train_x = torch.rand(100, 784)
    return check_overlap(train_x, torch.cat([torch.rand(20, 784), train_x[:5]]))


def _many_models_on_the_test_set():
    x, y = make_data(n=50, seed=1)
    test = GuardedTestSet(x, y)
    for seed in range(3):
        torch.manual_seed(seed)
        test.accuracy(nn.Linear(20, 4))
    return check_test_set(test)


def _unmasked_attention():
    from helpers.attention import TinyGPT

    torch.manual_seed(0)
    return check_causal(TinyGPT(context=6, width=8, n_heads=2, n_layers=1, causal=False),
                        torch.randint(0, 27, (3, 6), generator=torch.Generator().manual_seed(0)))


BUGGY = {
    "accumulating_gradients": lambda: run(*setup(), step_fn=_no_zero_grad),
    "target_dtype": lambda: check_targets(torch.randn(8, 4), torch.randint(0, 4, (8,)).float(), nn.CrossEntropyLoss()),
    "target_shape": lambda: check_targets(torch.randn(8, 1), torch.rand(8), nn.MSELoss()),
    "target_range": lambda: check_targets(torch.randn(8, 2), torch.tensor([3, 7] * 4), nn.CrossEntropyLoss()),
    "softmax_before_loss": _softmax_model,
    "relu_before_loss": _relu_model,
    "loss_not_falling": lambda: run(*setup(lr=1e-6)),
    "nan_loss": _nan_input,
    "loss_error": lambda: run(*setup()[:3], (make_data()[0], make_data()[1].float())),
    "step_error": lambda: run(*setup(), step_fn=_in_place_on_a_leaf),
    "params_unchanged": lambda: run(*setup(), step_fn=_no_step),
    "no_gradient": _frozen_layer,
    "optimizer_params": lambda: run(*setup()[:2], torch.optim.SGD(make_model().parameters(), lr=0.1), make_data()),
    "mode": _eval_mode_while_training,
    "unshuffled": _sorted_batches,
    "overlap": _shared_validation_examples,
    "future_leak": _unmasked_attention,
    "test_set_tuning": _many_models_on_the_test_set,
}


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_every_detector_fires(detector):
    assert detector in BUGGY, f"give the new detector {detector!r} a buggy scenario in BUGGY (tests/test_diagnose.py)"
    report = BUGGY[detector]()
    assert detector in report.fired, str(report)
    finding = next(f for f in report if f.detector == detector)
    assert finding.what and finding.why and finding.fix  # a finding that explains itself


def test_every_buggy_scenario_names_a_detector():
    assert set(BUGGY) == set(DETECTORS), f"scenarios for unknown detectors: {set(BUGGY) - set(DETECTORS)}"


def test_counts_are_whole_numbers():
    model, loss_fn, opt, batch = setup()
    for bad in (True, 50.0):
        with pytest.raises(ValueError, match="check_training_step: n_steps must be a whole number ≥ 2"):
            check_training_step(model, loss_fn, opt, batch, n_steps=bad)
        with pytest.raises(ValueError, match="check_shuffling: max_batches must be a positive whole number"):
            check_shuffling([torch.arange(4)], labels=torch.tensor([0, 1, 0, 1]), max_batches=bad)


# ------------------------------------------------------------------------------ the guarded test set


def test_guarded_test_set_scores_like_torch_and_stays_quiet_for_one_model():
    x, y = make_data(n=300, seed=2)
    model = make_model(extra=(nn.Dropout(0.5),))
    test = GuardedTestSet(x, y)
    acc = test.accuracy(model, bs=64)  # several batches
    model.eval()
    with torch.no_grad():
        assert acc == pytest.approx((model(x).argmax(dim=1) == y).float().mean().item())
    assert not model.training  # scored in eval mode, and left there
    assert test.accuracy(model) == acc  # the same final model scored twice is still one model
    report = check_test_set(test)
    assert report.ok and test.n_models == 1 and "1 model(s)" in report.notes[0]


def test_guarded_test_set_sees_a_model_that_trained_on_after_a_look():
    model, loss_fn, opt, batch = setup()
    test = GuardedTestSet(*make_data(n=40, seed=3))
    test.accuracy(model)
    standard_step(model, loss_fn, opt, batch)  # e.g. early stopping judged on the test set
    test.accuracy(model)
    report = check_test_set(test)
    assert report.fired == {"test_set_tuning"} and "2 different models" in report.findings[0].what


def test_guarded_test_set_rejects_bad_input():
    with pytest.raises(ValueError, match="as many labels as inputs"):
        GuardedTestSet(torch.rand(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="tensor"):
        GuardedTestSet([1, 2], torch.zeros(2))
    with pytest.raises(TypeError, match="nn.Module"):
        GuardedTestSet(torch.rand(5, 3), torch.zeros(5, dtype=torch.long)).accuracy(lambda x: x)
    with pytest.raises(TypeError, match="GuardedTestSet"):
        check_test_set((torch.rand(5, 3), torch.zeros(5)))


# ------------------------------------------------------------------------------ all detectors at once


def test_run_detectors_combines_every_detector_it_is_given():
    model, loss_fn, opt, (x, y) = setup(extra=(nn.Dropout(0.2),))
    test = GuardedTestSet(x, y)
    quiet = run_detectors(model, loss_fn, opt, (x, y), eval_model=copy.deepcopy(model).eval(), eval_x=x[:8],
                          order=[torch.randperm(64, generator=torch.Generator().manual_seed(0))[i:i + 8]
                                 for i in range(0, 64, 8)], labels=y, train_x=x[:32], valid_x=x[32:], test_set=test)
    assert quiet.ok, str(quiet)
    test.accuracy(make_model())
    test.accuracy(model)
    loud = run_detectors(model, loss_fn, opt, (x, y), step_fn=_no_zero_grad, eval_model=model.train(),
                         train_x=x, valid_x=x[:5], test_set=test)
    assert {"accumulating_gradients", "mode", "overlap", "test_set_tuning"} <= loud.fired
    with pytest.raises(ValueError, match="both train_x and valid_x"):
        run_detectors(model, loss_fn, opt, (x, y), train_x=x)


def test_detector_table_marks_what_fired_in_detector_order():
    table = detector_table({"correct loop": set(), "bug a": {"overlap", "mode"}, "bug b": {"mode"}})
    assert list(table.index) == ["correct loop", "bug a", "bug b"]
    assert list(table.columns) == ["mode", "overlap"]  # the order of DETECTORS, only columns that fired
    assert table.loc["bug a", "overlap"] == "✔" and table.loc["bug b", "overlap"] == ""
    assert (table.loc["correct loop"] == "").all()
    with pytest.raises(ValueError, match="unknown detector"):
        detector_table({"x": {"no_such_detector"}})


# -------------------------------------------------- a sequence model's targets; every scenario at once (bug_zoo)

from helpers.diagnose import detectors_by_scenario  # noqa: E402


def _token_loss(logits, y):  # a sequence model's own loss: [batch, T, C] logits against [batch, T] class indices
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def test_class_indices_per_position_for_a_sequence_loss_do_not_fire_but_a_broadcast_still_does():
    logits, y = torch.randn(8, 10, 27), torch.randint(0, 27, (8, 10))
    assert check_targets(logits, y, _token_loss).ok
    assert "target_shape" in check_targets(logits, y[:, :9], _token_loss).fired  # one position short
    assert "target_shape" in check_targets(torch.randn(8, 1), torch.randn(8), lambda p, t: (p - t).abs().mean()).fired


def test_detectors_by_scenario_builds_each_setting_fresh_and_reports_what_fired():
    x, y = make_data()
    correct = dict(model=make_model, loss_fn=nn.CrossEntropyLoss(), batch=(x, y),
                   optimizer=lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
                   eval_model=lambda: make_model(extra=(nn.Dropout(0.2),)).eval(), eval_x=x)

    def forgets_zero_grad(model, loss_fn, opt, batch):
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return loss

    fired = detectors_by_scenario({"correct loop": {}, "no zero_grad": {"step_fn": forgets_zero_grad},
                                   "float targets": {"batch": (x, y.float())},
                                   "no eval()": {"eval_model": lambda: make_model(extra=(nn.Dropout(0.2),)).train()}}, correct)
    assert list(fired) == ["correct loop", "no zero_grad", "float targets", "no eval()"]
    assert fired["correct loop"] == set()
    assert "accumulating_gradients" in fired["no zero_grad"] and "target_dtype" in fired["float targets"]
    assert fired["no eval()"] == {"mode"}
    with pytest.raises(ValueError, match="run_detectors does not have"):
        detectors_by_scenario({"typo": {"lr": 30.0}}, correct)
    with pytest.raises(ValueError, match="missing"):
        detectors_by_scenario({"correct loop": {}}, {"model": make_model})
