"""The hand-written convolutions of `helpers.convolution` against PyTorch: `F.conv2d`, real layers, autograd."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.convolution import (
    conv2d_loop,
    conv2d_unfold,
    conv_output_size,
    plot_receptive_field,
    receptive_fields,
)

CONVS = [conv2d_loop, conv2d_unfold]


def _random_case(seed):
    """A random, valid convolution in float64: batch, channels, rectangular image and kernel, stride, padding."""
    g = torch.Generator().manual_seed(seed)

    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (), generator=g))

    n, c_in, c_out = r(1, 3), r(1, 4), r(1, 5)
    kh, kw, stride, padding = r(1, 5), r(1, 5), r(1, 3), r(0, 2)
    h, w = r(max(1, kh - 2 * padding), 12), r(max(1, kw - 2 * padding), 12)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64) if seed % 2 else None
    return x, weight, bias, stride, padding


@pytest.mark.parametrize("conv", CONVS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", range(25))
def test_matches_conv2d_in_float64(conv, seed):
    x, weight, bias, stride, padding = _random_case(seed)
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    got = conv(x, weight, bias, stride=stride, padding=padding)
    assert got.shape == expected.shape and got.dtype == torch.float64
    assert (got - expected).abs().max().item() < 1e-10


@pytest.mark.parametrize("conv", CONVS, ids=lambda f: f.__name__)
def test_gradients_match_conv2d(conv):
    x, weight, bias, stride, padding = _random_case(1)
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    ours = [t.clone().requires_grad_() for t in (x, weight, bias)]
    g = torch.randn_like(F.conv2d(x, weight, bias, stride=stride, padding=padding))
    (F.conv2d(*leaves, stride=stride, padding=padding) * g).sum().backward()
    (conv(*ours, stride=stride, padding=padding) * g).sum().backward()
    for a, b in zip(leaves, ours):
        assert (a.grad - b.grad).abs().max().item() < 1e-10


def test_float32_agrees_to_rounding():
    x, weight = torch.randn(2, 1, 28, 28), torch.randn(3, 1, 3, 3)
    for conv in CONVS:
        assert torch.allclose(conv(x, weight, padding=1), F.conv2d(x, weight, padding=1), atol=1e-5)


@pytest.mark.parametrize("size,kernel,stride,padding", [
    (28, 3, 1, 0), (28, 3, 1, 1), (28, 5, 1, 2), (28, 5, 2, 0), (28, 5, 2, 2), (27, 4, 3, 1), (7, 7, 1, 0),
    (1, 3, 1, 1), (13, 2, 2, 0), (10, 3, 5, 2),
])
def test_output_size_matches_real_layers(size, kernel, stride, padding):
    x = torch.zeros(1, 2, size, size + 3)  # a rectangle: height and width follow the formula separately
    conv = nn.Conv2d(2, 4, kernel, stride=stride, padding=padding)
    out = conv(x)
    assert out.shape[2:] == (conv_output_size(size, kernel, stride, padding),
                             conv_output_size(size + 3, kernel, stride, padding))
    if 2 * padding <= kernel:  # PyTorch's own rule for pooling: padding at most half the kernel
        pooled = nn.MaxPool2d(kernel, stride=stride, padding=padding)(x)
        assert pooled.shape[2:] == out.shape[2:]


def test_output_size_of_pooling_with_its_default_stride():
    for size, kernel in [(28, 2), (24, 2), (25, 2), (10, 3), (5, 5)]:
        out = nn.MaxPool2d(kernel)(torch.zeros(1, 1, size, size))
        assert out.shape[-1] == conv_output_size(size, kernel, stride=kernel)


def test_output_size_refuses_a_kernel_larger_than_the_padded_side():
    with pytest.raises(ValueError, match=r"kernel of 5 does not fit in a side of 3 pixels with padding 0"):
        conv_output_size(3, 5)
    assert conv_output_size(3, 5, padding=1) == 1
    for bad in [dict(stride=0), dict(padding=-1), dict(kernel_size=2.0)]:
        args = dict(size=28, kernel_size=3) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            conv_output_size(**args)


@pytest.mark.parametrize("conv", CONVS, ids=lambda f: f.__name__)
def test_bad_shapes_get_errors_that_name_them(conv):
    digit, w = torch.randn(1, 28, 28), torch.randn(2, 1, 3, 3)
    with pytest.raises(ValueError, match=r"\[N, C_in, H, W\].*3-D tensor of shape \(1, 28, 28\).*x\[None\]"):
        conv(digit, w)
    with pytest.raises(ValueError, match=r"2-D tensor of shape \(28, 28\).*x\[None, None\]"):
        conv(digit[0], w)
    with pytest.raises(ValueError, match=r"weight of shape \[C_out, C_in, kH, kW\].*\(3, 3\).*weight\[None, None\]"):
        conv(digit[None], w[0, 0])
    small, big = torch.randn(1, 1, 3, 3), torch.randn(1, 1, 5, 5)
    with pytest.raises(ValueError, match=r"5×5 kernel \(weight \(1, 1, 5, 5\)\).*x \(1, 1, 3, 3\) is 3×3"):
        conv(small, big)
    assert conv(small, big, padding=1).shape == (1, 1, 1, 1)  # with padding it fits
    with pytest.raises(ValueError, match=r"x has 3 channel\(s\) \(shape \(1, 3, 8, 8\)\) but weight expects 1"):
        conv(torch.randn(1, 3, 8, 8), w)
    with pytest.raises(ValueError, match=r"bias must be a tensor of shape \(2,\)"):
        conv(digit[None], w, torch.zeros(3))
    with pytest.raises(TypeError, match=r"x is torch.float64 but weight is torch.float32"):
        conv(digit[None].double(), w)
    with pytest.raises(ValueError, match="stride must be a positive whole number"):
        conv(digit[None], w, stride=0)
    with pytest.raises(ValueError, match="padding must be a whole number ≥ 0"):
        conv(digit[None], w, padding=-1)
    with pytest.raises(TypeError, match="wants x as a torch.Tensor"):
        conv(digit.numpy(), w)


def _field_by_autograd(layers, in_size, row, col):
    """Input pixels that output unit (row, col) of `layers` depends on: the support of its gradient, with every
    weight positive (no cancellation) and average pooling in place of max pooling (the gradient reaches the whole
    window, not only the maximum)."""
    net = []
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            conv = nn.Conv2d(1, 1, layer.kernel_size, layer.stride, layer.padding, dilation=layer.dilation).double()
            nn.init.constant_(conv.weight, 1.0)
            net.append(conv)
        elif isinstance(layer, nn.MaxPool2d):
            net.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding))
        else:
            net.append(layer)
    x = torch.ones(1, 1, in_size, in_size, dtype=torch.float64, requires_grad=True)
    nn.Sequential(*net)(x)[0, 0, row, col].backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero(as_tuple=True)
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


@pytest.mark.parametrize("layers", [
    [nn.Conv2d(1, 24, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(24, 32, 3), nn.ReLU(), nn.MaxPool2d(2)],
    [nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)],
    [nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(8, 8, 3, dilation=2)],
])
def test_receptive_fields_match_the_gradient_support(layers):
    in_size = 40
    last = receptive_fields(layers)[-1]
    out = nn.Sequential(*layers)(torch.zeros(1, 1, in_size, in_size))
    for i in {0, out.shape[-1] // 2, out.shape[-1] - 1}:
        lo = last.start + i * last.jump
        hi = lo + last.size - 1
        expected = (max(lo, 0), min(hi, in_size - 1))  # the part of the field inside the image
        assert _field_by_autograd(layers, in_size, i, i) == expected + expected  # rows, then columns


def test_receptive_fields_of_the_course_cnn():
    from helpers.train import simple_cnn

    fields = receptive_fields(simple_cnn())  # stops at Flatten
    assert [f.layer for f in fields] == ["conv 5×5", "ReLU", "max-pool 2×2", "conv 3×3", "ReLU", "max-pool 2×2"]
    assert [(f.size, f.jump) for f in fields] == [(5, 1), (5, 1), (6, 2), (10, 2), (10, 2), (12, 4)]
    assert [(f.size, f.jump) for f in receptive_fields([(3, 1, 1)] * 4)] == [(3, 1), (5, 1), (7, 1), (9, 1)]


def test_receptive_fields_refuse_what_they_cannot_follow():
    with pytest.raises(ValueError, match="does not know how AdaptiveAvgPool2d moves pixels"):
        receptive_fields([nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)])
    with pytest.raises(ValueError, match="no convolution or pooling layers"):
        receptive_fields([nn.Flatten(), nn.Linear(784, 10)])
    with pytest.raises(ValueError, match="square windows only"):
        receptive_fields([nn.Conv2d(1, 1, (3, 5))])
    with pytest.raises(ValueError, match=r"\(kernel_size, stride, padding\)"):
        receptive_fields([(3, 1)])


def test_plot_receptive_field_draws_one_square_per_window():
    from helpers.train import simple_cnn

    ax = plot_receptive_field(torch.rand(28, 28), simple_cnn(), title="t")
    sizes = sorted(p.get_width() for p in ax.patches)
    assert sizes == [5, 6, 10, 12] and ax.get_title() == "t"
    boxes = [(p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height()) for p in ax.patches]
    for inner, outer in zip(boxes, boxes[1:]):  # each field lies inside the next layer's
        assert outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "1. conv 5×5: 5×5" and legend[-1] == "4. max-pool 2×2: 12×12"
    with pytest.raises(ValueError, match="one 2-D image"):
        plot_receptive_field(torch.rand(2, 28, 28), simple_cnn())
