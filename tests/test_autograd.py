"""The hand-made autograd engine, the hand-written matrix backward pass and the graph drawings (`helpers.autograd`).

PyTorch in float64 is the oracle: `Value` must agree with it on random expressions, `mlp_backward` with autograd
on `nn.Linear` layers and with finite differences.
"""

from __future__ import annotations

import random

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from helpers.autograd import (  # noqa: E402
    Value,
    draw_torch_graph,
    draw_value_graph,
    finite_difference_grad,
    mlp_backward,
    mlp_forward,
    topological_order,
    torch_graph,
    value_graph,
)
from helpers.plots import GraphNode, draw_graph, draw_network, graph_layout  # noqa: E402

# ------------------------------------------------------------------------------------ Value against PyTorch

def _random_expression(rng: random.Random, leaves: list, depth: int):
    """Build one random expression from `leaves` with the same code for Values and float64 tensors.

    Every operator and function of the engine appears, with Python numbers on both sides. Arguments of `log`
    and denominators are made positive first (x*x + c, sigmoid, exp of a bounded number), and `exp` sees a
    bounded argument, so nothing is undefined or overflows.
    """
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(leaves)
    a = _random_expression(rng, leaves, depth - 1)
    b = _random_expression(rng, leaves, depth - 1)
    c = round(rng.uniform(0.5, 3.0), 3)
    op = rng.randrange(18)
    if op == 0:
        return a + b
    if op == 1:
        return a * b
    if op == 2:
        return a - b
    if op == 3:
        return a / (b * b + c)
    if op == 4:
        return c * a
    if op == 5:
        return a + c
    if op == 6:
        return c - a
    if op == 7:
        return c / (a * a + 1.0)
    if op == 8:
        return -a
    if op == 9:
        return a.tanh() ** 3
    if op == 10:
        return a.relu()
    if op == 11:
        return a.tanh().exp()
    if op == 12:
        return (a * a + c).log()
    if op == 13:
        return a.sigmoid()
    if op == 14:
        return a.sigmoid().log()
    if op == 15:
        s = a * 1.0  # a fresh node: on a tensor, += then works in place without touching `a`
        s += b  # the in-place form
        s -= c
        return s
    if op == 16:
        return (a * a + c) ** 0.5
    return a * a.tanh()  # one value used twice by the same node


def test_value_matches_pytorch_on_at_least_250_random_expressions():
    rng = random.Random(0)
    worst, compared, ops = 0.0, 0, set()
    for _ in range(300):
        n_leaves = rng.randint(1, 4)
        data = [rng.uniform(-2, 2) for _ in range(n_leaves)] + [rng.uniform(0.2, 2)]  # the last one positive
        values = [Value(d) for d in data]
        tensors = [torch.tensor(d, dtype=torch.float64, requires_grad=True) for d in data]
        state = rng.getstate()
        out_v = _random_expression(rng, values, depth=4)
        rng.setstate(state)
        out_t = _random_expression(rng, tensors, depth=4)
        if not isinstance(out_v, Value):  # the expression picked a bare leaf
            continue
        if out_v.data > 0 and rng.random() < 0.5:  # make sure log also meets a plain positive input
            out_v, out_t = out_v.log(), out_t.log()
        out_v.backward()
        out_t.backward()
        compared += 1
        ops.update(v.op for v in topological_order(out_v))
        assert out_v.data == pytest.approx(out_t.item(), rel=1e-9, abs=1e-12)
        for v, t in zip(values, tensors):
            g = 0.0 if t.grad is None else t.grad.item()
            assert abs(v.grad - g) <= 1e-6 * max(1.0, abs(g)), (v.grad, g)
            worst = max(worst, abs(v.grad - g))
    assert compared >= 250 and worst < 1e-6
    assert {"+", "*", "**-1", "**3", "**0.5", "relu", "tanh", "exp", "log", "sigmoid"} <= ops, ops


@pytest.mark.parametrize("name, f, df", [
    ("2 * x", lambda x: 2 * x, lambda x: 2.0),
    ("x + 1", lambda x: x + 1, lambda x: 1.0),
    ("1 + x", lambda x: 1 + x, lambda x: 1.0),
    ("10.0 / x", lambda x: 10.0 / x, lambda x: -10.0 / x ** 2),
    ("x / 4", lambda x: x / 4, lambda x: 0.25),
    ("-x", lambda x: -x, lambda x: -1.0),
    ("3 - x", lambda x: 3 - x, lambda x: -1.0),
    ("x ** 3", lambda x: x ** 3, lambda x: 3 * x ** 2),
    ("x ** -2", lambda x: x ** -2, lambda x: -2 * x ** -3),
    ("x * x", lambda x: x * x, lambda x: 2 * x),
])
def test_python_numbers_on_both_sides(name, f, df):
    x = Value(1.7)
    out = f(x)
    out.backward()
    assert out.data == pytest.approx(f(1.7))
    assert x.grad == pytest.approx(df(1.7)), name


def test_functions_and_their_derivatives():
    for x0 in (-1.3, 0.4, 2.2):
        for name in ("relu", "tanh", "exp", "sigmoid", "log"):
            if name == "log" and x0 <= 0:
                continue
            x, t = Value(x0), torch.tensor(x0, dtype=torch.float64, requires_grad=True)
            out, out_t = getattr(x, name)(), getattr(t, name)()
            out.backward()
            out_t.backward()
            assert out.data == pytest.approx(out_t.item()) and x.grad == pytest.approx(t.grad.item()), name


def test_sigmoid_is_stable_far_from_zero():
    assert Value(-800.0).sigmoid().data == 0.0 and Value(800.0).sigmoid().data == 1.0


def test_subtraction_of_two_values_and_plus_equals_in_a_loop():
    x, y = Value(5.0), Value(2.0)
    d = x - y
    d.backward()
    assert (d.data, x.grad, y.grad) == (3.0, 1.0, -1.0)
    ws = [Value(float(i)) for i in range(1, 5)]
    total = Value(0.0)
    first = total
    for w in ws:
        total += w * w
    total.backward()
    assert total is not first and first.data == 0.0, "+= makes a new node and leaves the old one alone"
    assert total.data == 30.0 and [w.grad for w in ws] == [2.0, 4.0, 6.0, 8.0]


def test_a_value_used_twice_receives_the_sum_of_its_gradients():
    x = Value(3.0)
    a, b = x * 2, x ** 2
    out = a + b  # d/dx = 2 + 2x = 8
    out.backward()
    assert x.grad == 8.0


def test_deep_graphs_need_no_recursion():
    x = Value(1.0)
    total = x
    for _ in range(5000):
        total = total + x
    total.backward()
    assert x.grad == 5001.0 and len(topological_order(total)) == 5001


def test_topological_order_puts_inputs_first():
    x, y = Value(1.0), Value(2.0)
    z = (x * y).tanh() + x
    order = topological_order(z)
    pos = {id(v): i for i, v in enumerate(order)}
    assert order[-1] is z
    assert all(pos[id(p)] < pos[id(v)] for v in order for p in v._prev)


# --------------------------------------------------------------------------- a second backward accumulates

def test_second_backward_accumulates_like_pytorch_with_retain_graph():
    x, w = Value(0.5), Value(-1.5)
    h = (x * w).tanh()
    out = h * h + w
    out.backward()
    first = (x.grad, w.grad, h.grad, out.grad)
    out.backward()
    xt = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    ht = (xt * wt).tanh()
    out_t = ht * ht + wt
    out_t.backward(retain_graph=True)
    out_t.backward()
    assert x.grad == pytest.approx(xt.grad.item()) and w.grad == pytest.approx(wt.grad.item())
    assert x.grad == pytest.approx(2 * first[0]) and w.grad == pytest.approx(2 * first[1]), "leaves accumulate"
    assert (h.grad, out.grad) == (first[2], first[3]), "inner nodes hold this pass's gradient"


def test_pytorch_refuses_a_second_backward_without_retain_graph():
    # what the notebook says about PyTorch's default: it frees the saved tensors after backward
    t = torch.tensor(0.5, requires_grad=True)
    out = (t * t).tanh()
    out.backward()
    with pytest.raises(RuntimeError, match="second time"):
        out.backward()


def test_zeroing_leaf_grads_gives_the_first_gradient_again():
    x = Value(2.0)
    out = x.exp() * x
    out.backward()
    g = x.grad
    x.grad = 0.0
    out.backward()
    assert x.grad == g


# ------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, words", [
    ("3", "float('3')"),
    (torch.tensor([1.0, 2.0]), "shape (2,)"),
    (torch.tensor(1.5), ".item()"),
    (None, "NoneType"),
    ([1.0], "list"),
    (1 + 2j, "real number"),
])
def test_value_refuses_what_is_not_a_number(bad, words):
    with pytest.raises(TypeError) as e:
        Value(bad)
    assert words in str(e.value)


def test_arithmetic_with_a_non_number_names_it():
    x = Value(1.0)
    with pytest.raises(TypeError, match="string 'a'"):
        x + "a"
    with pytest.raises(TypeError, match="tensor"):
        x * torch.ones(3)


@pytest.mark.parametrize("x0", [0.0, -2.0])
def test_log_of_a_non_positive_value_says_why(x0):
    with pytest.raises(ValueError, match="log needs a positive number"):
        Value(x0).log()


def test_other_undefined_operations_say_why():
    with pytest.raises(TypeError, match="plain number"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        1.0 / Value(0.0)
    with pytest.raises(ValueError, match="not a real number"):
        Value(-2.0) ** 0.5
    with pytest.raises(OverflowError, match="too large"):
        Value(1000.0).exp()


def test_ints_and_numpy_numbers_are_fine():
    assert Value(3).data == 3.0 and isinstance(Value(np.float32(2.5)).data, float)


# ----------------------------------------------------------------------------- matrix backpropagation

def _mlp(n=16, d_in=4, hidden=10, classes=3, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(n, d_in, dtype=torch.float64)
    y = torch.randint(0, classes, (n,))
    lin1, lin2 = nn.Linear(d_in, hidden).double(), nn.Linear(hidden, classes).double()
    return x, y, lin1, lin2


@pytest.mark.parametrize("shape", [(16, 4, 10, 3), (1, 3, 5, 2), (50, 7, 20, 6)])
def test_mlp_backward_matches_autograd(shape):
    n, d_in, hidden, classes = shape
    x, y, lin1, lin2 = _mlp(n, d_in, hidden, classes, seed=n)
    loss = F.cross_entropy(lin2(torch.relu(lin1(x))), y)
    loss.backward()
    g = mlp_backward(x, y, lin1.weight, lin1.bias, lin2.weight, lin2.bias)
    assert abs(g.loss.item() - loss.item()) < 1e-12
    for (name, mine), ref in zip(g.as_dict().items(), (lin1.weight, lin1.bias, lin2.weight, lin2.bias)):
        assert mine.shape == ref.shape, name
        assert (mine - ref.grad).abs().max().item() < 1e-8, name


def test_mlp_forward_is_cross_entropy():
    x, y, lin1, lin2 = _mlp()
    with torch.no_grad():
        ref = F.cross_entropy(lin2(torch.relu(lin1(x))), y)
    assert abs(mlp_forward(x, y, lin1.weight, lin1.bias, lin2.weight, lin2.bias).item() - ref.item()) < 1e-12


def test_mlp_backward_matches_finite_differences():
    x, y, lin1, lin2 = _mlp(n=8, d_in=3, hidden=5, classes=3, seed=3)
    params = [p.detach().clone() for p in (lin1.weight, lin1.bias, lin2.weight, lin2.bias)]
    g = mlp_backward(x, y, *params)
    for mine, p in zip(g.as_dict().values(), params):
        numeric = finite_difference_grad(lambda: mlp_forward(x, y, *params), p)
        assert (mine - numeric).abs().max().item() < 1e-7


def test_finite_difference_grad_against_autograd_and_restores_the_tensor():
    torch.manual_seed(1)
    w = torch.randn(3, 2, dtype=torch.float64)
    before = w.clone()
    numeric = finite_difference_grad(lambda: (w.sin() * w).sum(), w)
    wt = w.clone().requires_grad_()
    (wt.sin() * wt).sum().backward()
    assert torch.allclose(numeric, wt.grad, atol=1e-8) and torch.equal(w, before)


def test_finite_difference_grad_refuses_bad_arguments():
    with pytest.raises(TypeError, match="tensor"):
        finite_difference_grad(lambda: 0.0, [1.0])
    with pytest.raises(TypeError, match="floats"):
        finite_difference_grad(lambda: 0.0, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="eps"):
        finite_difference_grad(lambda: 0.0, torch.ones(2), eps=0)


def test_mlp_backward_explains_bad_shapes():
    x, y, lin1, lin2 = _mlp()
    w1, b1, w2, b2 = (p.detach() for p in (lin1.weight, lin1.bias, lin2.weight, lin2.bias))
    with pytest.raises(ValueError, match="torch.long"):
        mlp_backward(x, y.double(), w1, b1, w2, b2)
    with pytest.raises(ValueError, match=r"\[out, in\]"):
        mlp_backward(x, y, w1.T, b1, w2, b2)
    with pytest.raises(ValueError, match="class indices"):
        mlp_backward(x, y + 3, w1, b1, w2, b2)
    with pytest.raises(TypeError, match="x must be a tensor"):
        mlp_backward(x.tolist(), y, w1, b1, w2, b2)


# ------------------------------------------------------------------------------------------- graphs

def test_value_graph_nodes_and_edges():
    x, y = Value(2.0, label="x"), Value(-3.0, label="y")
    sq = x * x
    out = (sq + y).tanh()
    out.label = "out"
    out.backward()
    nodes, edges = value_graph(out)
    assert len(nodes) == 5 and [n.kind for n in nodes].count("input") == 2 and nodes[-1].kind == "output"
    assert edges.count((id(x), id(sq))) == 2, "x * x: two edges from x"
    assert "out = tanh" in nodes[-1].text and f"grad {x.grad:.3g}" in nodes[0].text


def test_torch_graph_reads_next_functions():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor(0.5, requires_grad=True)
    out = ((w * 3).sum() + b).sigmoid()
    nodes, edges = torch_graph(out, names={w: "w", b: "b"})
    texts = [n.text for n in nodes]
    assert texts[0] == "SigmoidBackward0" and {"MulBackward0", "SumBackward0", "AddBackward0"} <= set(texts)
    assert any(t.startswith("w\n(2,)") for t in texts) and any(t.startswith("b\n()") for t in texts)
    assert len(edges) == len(nodes) - 1  # a chain with two leaves: every node but the output feeds one
    with pytest.raises(ValueError, match="no recorded graph"):
        torch_graph(w)
    with pytest.raises(TypeError):
        torch_graph(Value(1.0))


def test_drawings_have_one_box_per_node():
    x = Value(1.0, label="x")
    out = (x * 2 + 1).relu()
    out.backward()
    ax = draw_value_graph(out, title="graph")
    assert len(ax.node_texts) == 6 and ax.get_title() == "graph"  # x, 2, *, 1, +, relu
    t = torch.tensor(1.0, requires_grad=True)
    ax = draw_torch_graph((t * 2).exp(), names={t: "t"})
    assert len(ax.node_texts) == 3


def test_graph_layout_puts_the_output_right_and_refuses_cycles():
    nodes = [GraphNode(1, "a", "input"), GraphNode(2, "b", "input"), GraphNode(3, "a*b", "op"),
             GraphNode(4, "out", "output")]
    pos = graph_layout(nodes, [(1, 3), (2, 3), (3, 4), (1, 4)])
    assert pos[4][0] == 2 and pos[3][0] == 1 and pos[1][0] == 0 and pos[2][0] == 0
    with pytest.raises(ValueError, match="cycle"):
        graph_layout(nodes, [(1, 3), (3, 1)])
    with pytest.raises(ValueError, match="not in the list"):
        graph_layout(nodes, [(1, 9)])
    with pytest.raises(ValueError, match="no nodes"):
        draw_graph([], [])


def test_draw_network_counts_weights_and_checks_labels():
    ax = draw_network([4, 10, 3])
    assert "83 parameters" in ax.get_title()
    texts = [t.get_text() for t in ax.texts]
    assert "4 × 10 = 40 weights\n+ 10 biases" in texts and "10 × 3 = 30 weights\n+ 3 biases" in texts
    with pytest.raises(ValueError, match="one per node"):
        draw_network([2, 1], input_labels=["a"])
    with pytest.raises(ValueError, match="two layers"):
        draw_network([3])
    with pytest.raises(ValueError, match=r"sizes\[1\] \(nodes in a layer\) must be a positive whole number"):
        draw_network([3, 0, 2])
