"""The hand-made optimizers of helpers.optim follow torch.optim step for step; bad settings get clear errors."""

import pytest
import torch
import torch.nn.functional as F

from helpers import optim as hand

# A small model with a real loss: a 2-layer net on a fixed batch, binary cross-entropy.
N_STEPS = 10


def _make_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 10, generator=g)
    y = (x[:, :3].sum(dim=1, keepdim=True) > 0).float()
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model, x, y


def _train(opt_factory, seed=0, steps=N_STEPS, mini_batches=True):
    model, x, y = _make_problem(seed)
    opt = opt_factory(model.parameters())
    losses = []
    for i in range(steps):
        xb, yb = (x[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]) if mini_batches else (x, y)
        loss = F.binary_cross_entropy_with_logits(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return [p.detach().clone() for p in model.parameters()], losses


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.99, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=3e-3, betas=(0.5, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.1, betas=(0.0, 0.99))),
    ("AdamW", dict(lr=1e-2)),  # torch's default weight_decay=0.01, and ours
    ("AdamW", dict(lr=1e-2, weight_decay=0.0)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.5, betas=(0.8, 0.95))),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_torch_optim_after_ten_steps(name, kwargs):
    ours, our_losses = _train(lambda ps: getattr(hand, name)(ps, **kwargs))
    theirs, their_losses = _train(lambda ps: getattr(torch.optim, name)(ps, **kwargs))
    start, _ = _train(lambda ps: hand.SGD(ps, lr=0.0), steps=0)
    moved = max((a - s).abs().max().item() for a, s in zip(theirs, start))
    assert moved > 1e-3, "the comparison is only meaningful if the parameters actually move"
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert our_losses == pytest.approx(their_losses, abs=1e-6)


def test_the_comparison_can_fail():
    # A different momentum must give visibly different parameters: the check above is not vacuous.
    ours, _ = _train(lambda ps: hand.SGD(ps, lr=0.05, momentum=0.8))
    theirs, _ = _train(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9))
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) > 1e-4


def test_loss_goes_down_with_each_optimizer():
    for factory in (lambda ps: hand.SGD(ps, lr=0.5), lambda ps: hand.SGD(ps, lr=0.1, momentum=0.9),
                    lambda ps: hand.Adam(ps, lr=0.05), lambda ps: hand.AdamW(ps, lr=0.05)):
        _, losses = _train(factory, steps=30, mini_batches=False)
        assert losses[-1] < 0.7 * losses[0]


def test_adamw_decays_weights_when_the_gradient_is_zero():
    p = torch.ones(3, requires_grad=True)
    opt = hand.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.zeros(3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - 0.1 * 0.5))


def test_zero_grad_clears_or_zeroes():
    p = torch.ones(2, requires_grad=True)
    opt = hand.SGD([p], lr=0.1)
    p.grad = torch.ones(2)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(2))
    opt.zero_grad()
    assert p.grad is None


def test_parameters_without_grad_are_skipped():
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = hand.Adam([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not torch.equal(a.detach(), torch.ones(2))


@pytest.mark.parametrize("make,message", [
    (lambda p: hand.SGD(p, lr=-0.1), "lr must be at least 0"),
    (lambda p: hand.SGD(p, lr="fast"), "lr must be a number"),
    (lambda p: hand.SGD(p, lr=float("nan")), "lr must be a number"),
    (lambda p: hand.SGD(p, lr=0.1, momentum=-0.9), "momentum must be at least 0"),
    (lambda p: hand.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be at least 0"),
    (lambda p: hand.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda p: hand.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
    (lambda p: hand.Adam(p, lr=-1e-3), "lr must be at least 0"),
    (lambda p: hand.Adam(p, betas=(0.9, 1.0)), r"betas\[1\] must be at least 0 and below 1"),
    (lambda p: hand.Adam(p, betas=(-0.1, 0.999)), r"betas\[0\] must be at least 0"),
    (lambda p: hand.Adam(p, betas=(1.5, 0.999)), r"betas\[0\]"),
    (lambda p: hand.Adam(p, betas=0.9), "betas must be a pair"),
    (lambda p: hand.Adam(p, eps=-1e-8), "eps must be at least 0"),
    (lambda p: hand.AdamW(p, betas=(0.9, 2.0)), r"betas\[1\]"),
    (lambda p: hand.AdamW(p, weight_decay=-0.01), "weight_decay must be at least 0"),
])
def test_bad_hyperparameters_raise_helpful_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make([torch.ones(2, requires_grad=True)])


def test_bad_params_raise_helpful_errors():
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match="wrap it in a list"):
        hand.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty list of parameters"):
        hand.Adam([], lr=0.1)
    model = torch.nn.Linear(2, 1)
    params = model.parameters()
    list(params)  # the generator is now used up
    with pytest.raises(ValueError, match="fresh model.parameters"):
        hand.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="requires_grad_"):
        hand.SGD([torch.ones(3)], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        hand.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="not a tensor"):
        hand.SGD([w, 3.0], lr=0.1)


def test_errors_match_torch_on_the_same_bad_input():
    # torch.optim rejects these too: ours must not silently accept what torch refuses.
    p = [torch.ones(2, requires_grad=True)]
    for kwargs, name in [(dict(lr=-1.0), "SGD"), (dict(lr=0.1, momentum=-0.5), "SGD"),
                         (dict(betas=(0.9, 1.0)), "Adam"), (dict(eps=-1.0), "AdamW")]:
        with pytest.raises(ValueError):
            getattr(torch.optim, name)(p, **kwargs)
        with pytest.raises(ValueError):
            getattr(hand, name)(p, **kwargs)


def test_repr_names_the_settings():
    text = repr(hand.SGD([torch.ones(2, requires_grad=True)], lr=0.1, momentum=0.9))
    assert "SGD" in text and "momentum=0.9" in text
