"""Backpropagation by hand: a scalar autograd engine, the matrix backward pass of a small MLP, and graphs.

Layer 3 of the helpers package: imports only `plots` (layer 1, for the drawings). Introduced in the `backprop`
notebook ("Backpropagation by hand"), which builds each piece in front of the learner and then checks it
against PyTorch:

- `Value`: one number that remembers how it was computed, so that `backward()` can walk the computational
  graph in reverse topological order and leave d(output)/d(node) in every node's `.grad` (a micrograd-sized
  engine: + - * / ** with Python numbers on either side, relu, tanh, exp, log, sigmoid);
- `mlp_forward` / `mlp_backward`: Linear → ReLU → Linear → softmax cross-entropy, forward and backward with
  plain tensor algebra (the same layout as `nn.Linear`: `z = x @ W.T + b`, `W` of shape `[out, in]`);
- `finite_difference_grad`: the central-difference gradient check people use to debug a new layer;
- `value_graph` / `torch_graph`: a graph as plain nodes and edges, from a `Value` or from the graph PyTorch
  records (`grad_fn.next_functions`); `draw_value_graph` / `draw_torch_graph` draw them with
  `helpers.plots.draw_graph` (matplotlib only, no graphviz).

A second `backward()` on the same graph **accumulates**, as PyTorch's `.grad` does: the gradients of the
inputs (the leaves) grow by the same amount again, so zero them between steps. The nodes inside the graph
are recomputed on every call and always hold this pass's gradient. (PyTorch itself refuses a second backward
unless `retain_graph=True`, because it frees what it saved for the backward pass; our engine keeps everything,
so it behaves like `retain_graph=True`.)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch

from .plots import GraphNode, draw_graph

__all__ = [
    "Value",
    "topological_order",
    "MLPGrads",
    "mlp_forward",
    "mlp_backward",
    "finite_difference_grad",
    "value_graph",
    "torch_graph",
    "draw_value_graph",
    "draw_torch_graph",
]


def _as_float(x, what: str = "Value") -> float:
    """A Python float from an int, float or NumPy number; a teaching TypeError for anything else."""
    if isinstance(x, torch.Tensor):
        shape = tuple(x.shape)
        tip = ("call .item() to take its number out" if x.numel() == 1
               else "a Value holds ONE number; for whole tensors use PyTorch's own autograd (requires_grad=True)")
        raise TypeError(f"{what} got a tensor of shape {shape}: {tip}.")
    if isinstance(x, str):
        raise TypeError(f"{what} got the string {x!r}, not a number: convert it first, e.g. float({x!r}).")
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} holds one real number (int or float), got {type(x).__name__} {x!r}.")
    return float(x)


class Value:
    """One number in a computational graph: its value (`data`), its gradient (`grad`) and how it was made.

    `Value(2.0)` is a leaf (an input or a weight). Arithmetic with other Values or plain numbers (`2 * x`,
    `x + 1`, `10.0 / x`, `-x`, `x - y`, `x ** 3`, `s += x`) and the methods `relu`, `tanh`, `exp`, `log`,
    `sigmoid` return new Values that remember their inputs (`_prev`), the operation (`op`) and how to pass a
    gradient back to those inputs (`_backward`). `out.backward()` fills `.grad` of every node with
    d(out)/d(node). Leaves accumulate across calls (like PyTorch's `.grad`); zero them with `p.grad = 0.0`.
    `label` is an optional name shown in drawings. Introduced in the `backprop` notebook.
    """

    __slots__ = ("data", "grad", "_prev", "_backward", "op", "label")

    def __init__(self, data, _prev: tuple = (), op: str = "", label: str = ""):
        self.data = _as_float(data)
        self.grad = 0.0
        self._prev = tuple(_prev)
        self._backward: Callable[[], None] = lambda: None
        self.op = op
        self.label = label

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def _wrap(other) -> "Value":
        return other if isinstance(other, Value) else Value(_as_float(other, "an operation on a Value"), label="const")

    # --- the four arithmetic operations -----------------------------------------------------------------------
    def __add__(self, other) -> "Value":
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> "Value":
        other = self._wrap(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent) -> "Value":
        if isinstance(exponent, Value):
            raise TypeError("x ** y needs a plain number y (an int or float), not a Value; "
                            "for a learnable exponent write (y * x.log()).exp().")
        k = _as_float(exponent, "the exponent of **")
        if self.data == 0 and k < 0:
            raise ZeroDivisionError(f"0 ** {k:g} is a division by zero: the Value is 0 (check what you divide by).")
        if self.data < 0 and not k.is_integer():
            raise ValueError(f"{self.data:g} ** {k:g} is not a real number (a negative base needs a whole exponent).")
        out = Value(self.data ** k, (self,), f"**{k:g}")

        def _backward():  # d(x^k)/dx = k x^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    # everything else is made of the operations above
    def __neg__(self) -> "Value":
        return self * -1

    def __sub__(self, other) -> "Value":
        return self + (-self._wrap(other))

    def __truediv__(self, other) -> "Value":
        return self * self._wrap(other) ** -1

    def __radd__(self, other) -> "Value":  # 1 + x
        return self + other

    def __rmul__(self, other) -> "Value":  # 2 * x
        return self * other

    def __rsub__(self, other) -> "Value":  # 1 - x
        return self._wrap(other) - self

    def __rtruediv__(self, other) -> "Value":  # 10.0 / x
        return self._wrap(other) / self

    # `s += x` needs no method of its own: Python falls back to `s = s + x`, a new node, which is what we want
    # (changing `s` in place would corrupt the graph that earlier nodes point to).

    # --- functions --------------------------------------------------------------------------------------------
    def _unary(self, value: float, local_grad: float, op: str) -> "Value":
        out = Value(value, (self,), op)

        def _backward():  # chain rule: local derivative × the gradient arriving from above
            self.grad += local_grad * out.grad

        out._backward = _backward
        return out

    def relu(self) -> "Value":
        return self._unary(max(self.data, 0.0), float(self.data > 0), "relu")

    def tanh(self) -> "Value":
        t = math.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")

    def exp(self) -> "Value":
        try:
            e = math.exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp({self.data:g}) is too large for a float (above exp(709)); "
                                "inputs this big usually mean the numbers blew up earlier.") from None
        return self._unary(e, e, "exp")

    def log(self) -> "Value":
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self.data:g}: the logarithm of zero or a negative "
                             "number is undefined. If this is a probability, keep it above 0 (e.g. add a tiny "
                             "epsilon, or work with logits and log-softmax instead).")
        return self._unary(math.log(self.data), 1 / self.data, "log")

    def sigmoid(self) -> "Value":
        x = self.data
        s = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))  # never overflows
        return self._unary(s, s * (1 - s), "sigmoid")

    # --- the backward pass ------------------------------------------------------------------------------------
    def backward(self) -> None:
        """Fill `.grad` of every node of the graph that ends here with d(self)/d(node).

        Walks the nodes in reverse topological order (every node after all the nodes that use it), so each
        node's gradient is complete before it is passed on. Inner nodes start from 0 on every call; leaves
        (inputs, weights) accumulate, as in PyTorch: a second call adds the same gradients again.
        """
        order = topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self)
        for node in reversed(order):
            node._backward()


def topological_order(root: Value) -> list[Value]:
    """Every node the `root` depends on, each after all of its inputs (root last). Iterative: deep graphs are fine.

    Works for any Value-like object with a `_prev` tuple of inputs (the notebook's own `Value` classes too).
    """
    if not hasattr(root, "_prev"):
        raise TypeError(f"topological_order needs a Value (an object with .data, .grad and ._prev), "
                        f"got {type(root).__name__}.")
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in reversed(node._prev) if id(p) not in seen)
    return order


# --------------------------------------------------------------------------------------------------------------
# Matrix backpropagation: Linear → ReLU → Linear → softmax cross-entropy
# --------------------------------------------------------------------------------------------------------------


@dataclass
class MLPGrads:
    """The loss and its gradient with respect to each parameter (same shapes as the parameters)."""

    loss: torch.Tensor
    W1: torch.Tensor
    b1: torch.Tensor
    W2: torch.Tensor
    b2: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}


def _check_mlp_inputs(x, y, W1, b1, W2, b2) -> None:
    for name, t in (("x", x), ("y", y), ("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(t).__name__}.")
    if x.ndim != 2:
        raise ValueError(f"x must be a batch of shape [N, features], got shape {tuple(x.shape)}.")
    if y.ndim != 1 or y.dtype != torch.long or len(y) != len(x):
        raise ValueError(f"y must hold one class index per row of x: shape [{len(x)}], dtype torch.long; got shape "
                         f"{tuple(y.shape)}, dtype {y.dtype} (use .long(), and .view(-1) for a column).")
    if W1.ndim != 2 or W1.shape[1] != x.shape[1] or b1.shape != (W1.shape[0],):
        raise ValueError(f"W1 must be [hidden, {x.shape[1]}] (nn.Linear's layout, [out, in]) and b1 [hidden]; "
                         f"got W1 {tuple(W1.shape)}, b1 {tuple(b1.shape)}.")
    if W2.ndim != 2 or W2.shape[1] != W1.shape[0] or b2.shape != (W2.shape[0],):
        raise ValueError(f"W2 must be [classes, {W1.shape[0]}] and b2 [classes]; got W2 {tuple(W2.shape)}, "
                         f"b2 {tuple(b2.shape)}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= W2.shape[0]):
        raise ValueError(f"class indices must lie in 0..{W2.shape[0] - 1}, got {int(y.min())}..{int(y.max())}.")


def mlp_forward(x, y, W1, b1, W2, b2) -> torch.Tensor:
    """The mean softmax cross-entropy of Linear(W1, b1) → ReLU → Linear(W2, b2) on the batch (x, y).

    Written out step by step (no `nn`), in `nn.Linear`'s layout: `z = x @ W.T + b`. Introduced in the
    `backprop` notebook.
    """
    _check_mlp_inputs(x, y, W1, b1, W2, b2)
    z1 = x @ W1.T + b1
    a1 = z1.clamp(min=0)
    logits = a1 @ W2.T + b2
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -log_probs[torch.arange(len(y)), y].mean()


def mlp_backward(x, y, W1, b1, W2, b2) -> MLPGrads:
    """Forward and backward pass of Linear → ReLU → Linear → mean softmax cross-entropy, by hand.

    Returns the loss and the gradient of every parameter, computed with the chain rule in matrix form:
    `dlogits = (softmax − one_hot) / N`, `dW2 = dlogits.T @ a1`, `db2 = dlogits.sum(0)`,
    `da1 = dlogits @ W2`, `dz1 = da1 * (z1 > 0)`, `dW1 = dz1.T @ x`, `db1 = dz1.sum(0)`.
    Uses no autograd (the parameters need not require gradients). Introduced in the `backprop` notebook.
    """
    _check_mlp_inputs(x, y, W1, b1, W2, b2)
    with torch.no_grad():
        n = len(x)
        z1 = x @ W1.T + b1  # [N, hidden]
        a1 = z1.clamp(min=0)  # ReLU
        logits = a1 @ W2.T + b2  # [N, classes]
        log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        loss = -log_probs[torch.arange(n), y].mean()
        one_hot = torch.zeros_like(logits)
        one_hot[torch.arange(n), y] = 1
        dlogits = (log_probs.exp() - one_hot) / n  # the 1/N comes from the mean over the batch
        dW2 = dlogits.T @ a1  # [classes, hidden], the layout of W2
        db2 = dlogits.sum(dim=0)  # the bias is added to every row, so its gradient sums over the rows
        da1 = dlogits @ W2  # [N, hidden]
        dz1 = da1 * (z1 > 0)  # ReLU passes the gradient where it was active, blocks it elsewhere
        dW1 = dz1.T @ x
        db1 = dz1.sum(dim=0)
    return MLPGrads(loss=loss, W1=dW1, b1=db1, W2=dW2, b2=db2)


def finite_difference_grad(f: Callable[[], torch.Tensor | float], param: torch.Tensor,
                           eps: float = 1e-6) -> torch.Tensor:
    """The gradient of the scalar `f()` with respect to `param`, by central differences.

    For every entry i: `(f(param_i + eps) − f(param_i − eps)) / (2 eps)`, changing `param` in place and putting
    it back. Slow (two calls of `f` per entry) but independent of any backward code, so it is how a new backward
    pass is checked. Use float64: in float32 the rounding error of `f` swamps the difference.
    Introduced in the `backprop` notebook.
    """
    if not isinstance(param, torch.Tensor):
        raise TypeError(f"param must be a tensor (it is changed in place), got {type(param).__name__}.")
    if not param.dtype.is_floating_point:
        raise TypeError(f"param must hold floats, got {param.dtype}.")
    if not eps > 0:
        raise ValueError(f"eps must be a small positive step such as 1e-6, got {eps!r}.")
    grad = torch.zeros_like(param)
    flat, gflat = param.data.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = float(f())
            flat[i] = old - eps
            down = float(f())
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
    return grad


# --------------------------------------------------------------------------------------------------------------
# Graphs as plain nodes and edges, and their drawings
# --------------------------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def value_graph(root: Value, show_grad: bool = True) -> tuple[list[GraphNode], list[tuple[int, int]]]:
    """The graph ending at `root` as nodes (one per Value: label, operation, value, gradient) and edges.

    An edge (a, b) says "a is an input of b". A Value used twice by one node gives two edges. Leaves have
    kind "input", the root "output", the rest "op". Any Value-like object works (`.data`, `.grad`, `._prev`,
    and optionally `.op` and `.label`). Introduced in the `backprop` notebook.
    """
    order = topological_order(root)
    nodes, edges = [], []
    for v in order:
        op, label = getattr(v, "op", ""), getattr(v, "label", "")
        title = label or ("" if v._prev else "input")
        head = f"{title} = {op}" if (op and title) else (op or title)
        lines = [head, f"value {_fmt(v.data)}"] + ([f"grad {_fmt(v.grad)}"] if show_grad else [])
        kind = "output" if v is root else ("op" if v._prev else "input")
        nodes.append(GraphNode(id(v), "\n".join(lines), kind))
        edges.extend((id(p), id(v)) for p in v._prev)
    return nodes, edges


def torch_graph(t: torch.Tensor, names: dict | None = None) -> tuple[list[GraphNode], list[tuple[int, int]]]:
    """The graph PyTorch recorded for `t`, read from `t.grad_fn` and each function's `next_functions`.

    Nodes are the backward functions (`MulBackward0`, ...) and, for leaf tensors that require gradients, their
    `AccumulateGrad` (which adds into `.grad`), labelled with the name given in `names` ({tensor: "w"}) or the
    shape. Edges point the way the forward pass went (input → operation), so the drawing reads like the
    `Value` graphs. Introduced in the `backprop` notebook.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"torch_graph needs a tensor, got {type(t).__name__}.")
    if t.grad_fn is None:
        raise ValueError("this tensor has no recorded graph (grad_fn is None): it is a leaf, or it was computed "
                         "under torch.no_grad() or from tensors without requires_grad=True.")
    by_tensor = {id(k): v for k, v in (names or {}).items()}
    nodes: dict[int, GraphNode] = {}
    edges: list[tuple[int, int]] = []
    stack = [t.grad_fn]
    while stack:
        fn = stack.pop()
        if id(fn) in nodes:
            continue
        name = type(fn).__name__
        if hasattr(fn, "variable"):  # AccumulateGrad: a leaf tensor
            var = fn.variable
            text = f"{by_tensor.get(id(var), 'leaf')}\n{tuple(var.shape)}\nAccumulateGrad"
            kind = "input"
        else:
            text, kind = name, ("output" if fn is t.grad_fn else "op")
        nodes[id(fn)] = GraphNode(id(fn), text, kind)
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                edges.append((id(nxt), id(fn)))
                stack.append(nxt)
    return list(nodes.values()), edges


def draw_value_graph(root: Value, ax=None, show_grad: bool = True, title: str | None = None, **kwargs):
    """Draw the graph ending at `root`, each node with its value (and gradient). Returns the Axes.

    Inputs on the left, the output on the right. Extra keywords go to `helpers.plots.draw_graph`.
    Introduced in the `backprop` notebook.
    """
    nodes, edges = value_graph(root, show_grad=show_grad)
    return draw_graph(nodes, edges, ax=ax, title=title, **kwargs)


def draw_torch_graph(t: torch.Tensor, names: dict | None = None, ax=None, title: str | None = None, **kwargs):
    """Draw the graph PyTorch recorded for `t` (see `torch_graph`). Returns the Axes.

    Introduced in the `backprop` notebook.
    """
    nodes, edges = torch_graph(t, names)
    return draw_graph(nodes, edges, ax=ax, title=title, **kwargs)
