"""Optimizers written by hand: SGD (with momentum, dampening and Nesterov), Adam and AdamW.

Layer 3 of the helpers package: imports only `validate` from the rest of `helpers`. Introduced in the `modules`
notebook, which writes each update rule in a few lines first, then imports these classes and compares them with
`torch.optim`.

Every class follows the shape of `torch.optim`: build it from the parameters (`model.parameters()` or a list
of tensors) and the hyper-parameters, with the same names torch uses (`lr`, `momentum`, `dampening`,
`nesterov`, `betas`, `eps`, `weight_decay`); after `loss.backward()` call `step()`, then `zero_grad()`.
The tests (`tests/test_optim.py`) check that ten steps of each one leave the parameters within 1e-6 of what
`torch.optim` gives. Unlike torch, there are no parameter groups: one set of hyper-parameters for all.

    opt = Adam(model.parameters(), lr=1e-3)
    for xb, yb in ...:
        loss_fn(model(xb), yb).backward()
        opt.step()
        opt.zero_grad()
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from .validate import number_in

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """What every hand-made optimizer shares: the parameter list, `zero_grad`, and per-parameter state.

    Subclasses implement `update(p, grad, state)`, which changes one parameter in place; `step` calls it under
    `torch.no_grad()` for every parameter that has a gradient. Introduced in the `modules` notebook.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float):
        if isinstance(params, torch.Tensor):
            raise TypeError(
                "params should be an iterable of tensors, such as model.parameters() or [weights, bias], "
                f"but got a single tensor of shape {tuple(params.shape)}: wrap it in a list, e.g. [weights]."
            )
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"params should be an iterable of tensors (model.parameters() or [weights, bias]), got {type(params).__name__}."
            ) from None
        if not params:
            raise ValueError(
                "The optimizer got an empty list of parameters. If you passed model.parameters() twice, the first "
                "use consumed the generator: build the optimizer from a fresh model.parameters()."
            )
        for i, p in enumerate(params):
            if isinstance(p, dict):
                raise TypeError("Parameter groups (dicts) are not supported by the course's optimizers; pass tensors.")
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"params[{i}] is a {type(p).__name__}, not a tensor.")
            if not p.requires_grad:
                raise ValueError(
                    f"params[{i}] (shape {tuple(p.shape)}) does not require gradients, so it would never change. "
                    "Call .requires_grad_() on it, or leave it out of the list."
                )
            if not p.is_leaf:
                raise ValueError(
                    f"params[{i}] (shape {tuple(p.shape)}) is the result of a computation, not a leaf tensor, and "
                    "gets no .grad. Create it with requires_grad (e.g. torch.randn(...).requires_grad_()) instead."
                )
        self.params = params
        self.lr = number_in(lr, "lr", advice="Try a positive learning rate such as 0.1 or 1e-3.")
        self.state: list[dict] = [{} for _ in params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last step (they would add up otherwise)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Change every parameter that has a gradient by one update."""
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.update(p, p.grad, state)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameter tensors, {settings})"

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (and dampening, Nesterov) and L2 weight decay.

    With gradient g of parameter p, step by step (the same order as `torch.optim.SGD`):

        g   = g + weight_decay * p                         # L2 penalty, when weight_decay > 0
        buf = g                          (first step)      # momentum buffer, when momentum > 0
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        g   = g + momentum * buf   if nesterov else   buf
        p   = p - lr * g

    With momentum=0 this is the plain `p -= lr * p.grad` of the `three_vs_seven` notebook. Introduced in the `modules` notebook.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        self.momentum = number_in(momentum, "momentum", advice="Typical values: 0 (off) or 0.9.")
        self.dampening = number_in(dampening, "dampening", high=1.0, advice="Usually 0.")
        self.weight_decay = number_in(weight_decay, "weight_decay", advice="Typical values: 0 or 1e-4.")
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}.")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"Nesterov momentum needs momentum > 0 and dampening = 0 (got momentum={self.momentum:g}, "
                f"dampening={self.dampening:g}), as in torch.optim.SGD. Set momentum=0.9, or nesterov=False."
            )
        self.nesterov = nesterov

    def update(self, p, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * p
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
            grad = grad + self.momentum * buf if self.nesterov else buf
        p.add_(grad, alpha=-self.lr)

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam: momentum on the gradient, divided by a running size of the gradient, with bias correction.

    With gradient g of parameter p at step t = 1, 2, ... (m and v start at zero):

        g     = g + weight_decay * p                      # L2 penalty (Adam's kind; AdamW decouples it)
        m     = beta1 * m + (1 - beta1) * g               # running mean of the gradient
        v     = beta2 * v + (1 - beta2) * g**2            # running mean of its square
        m_hat = m / (1 - beta1**t)                        # undo the pull towards the zero start
        v_hat = v / (1 - beta2**t)
        p     = p - lr * m_hat / (sqrt(v_hat) + eps)

    Every parameter takes a step of about `lr` in size at first, whatever the scale of its gradient.
    Introduced in the `modules` notebook.
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) such as (0.9, 0.999), got {betas!r}.")
        self.betas = tuple(
            number_in(b, f"betas[{i}]", 0.0, 1.0, high_open=True,
                      advice="Each beta is a decay rate in [0, 1); the usual pair is (0.9, 0.999).")
            for i, b in enumerate(betas)
        )
        self.eps = number_in(eps, "eps", advice="It only guards against dividing by zero: 1e-8 is usual.")
        self.weight_decay = number_in(weight_decay, "weight_decay", advice="Typical values: 0 to 0.1.")

    def update(self, p, grad, state):
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)      # m
            state["exp_avg_sq"] = torch.zeros_like(p)   # v
        state["step"] += 1
        t = state["step"]
        if self.weight_decay:
            if self.decoupled:
                p.mul_(1 - self.lr * self.weight_decay)
            else:
                grad = grad + self.weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)                           # m = beta1*m + (1-beta1)*g
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # lr * m_hat / (sqrt(v_hat) + eps), arranged as torch arranges it so the floats agree.
        step_size = self.lr / (1 - beta1 ** t)
        denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(self.eps)
        p.addcdiv_(m, denom, value=-step_size)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay: shrink the weights directly instead of adding to the gradient.

    At every step, before Adam's update (which then sees the plain gradient):

        p = p * (1 - lr * weight_decay)

    With L2 (Adam's `weight_decay`) the penalty's gradient is divided by sqrt(v_hat) like any other, so weights
    with large gradients are barely decayed; AdamW decays every weight by the same fraction. Note the default
    weight_decay=0.01, as in torch.optim.AdamW. Introduced in the `modules` notebook.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
