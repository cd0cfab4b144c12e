"""Convolutions written by hand: an explicit loop over positions, one matrix multiply over unfolded patches, the
output-size formula, and the receptive field of a stack of layers (with its picture).

Layer 3 of the helpers package: imports only `validate` (layer 1) from the rest of `helpers`.
Introduced in the `convolutions` notebook, which builds each function here in a cell first and checks it against
`F.conv2d`; the later notebooks import them from here.

Every function takes PyTorch's layout: a batch of images `x` is `[N, C_in, H, W]`, a bank of filters `weight` is
`[C_out, C_in, kH, kW]`, `bias` is `[C_out]`. Like `F.conv2d` (and every deep-learning library), these compute a
*cross-correlation*: the filter is laid on the image as it is, not flipped.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .validate import positive_int

__all__ = [
    "conv_output_size",
    "conv2d_loop",
    "conv2d_unfold",
    "ReceptiveField",
    "receptive_fields",
    "plot_receptive_field",
]


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """How many positions a window of `kernel_size` takes along one side of `size` pixels:
    `(size + 2·padding − kernel_size) // stride + 1`.

    The same formula gives the output height (or width) of `nn.Conv2d` and of `nn.MaxPool2d` (whose stride is
    its kernel size unless you say otherwise). Raises a ValueError when the kernel is larger than the padded side.
    Introduced in the `convolutions` notebook.
    """
    size = positive_int(size, "size", example="28 (the side of an MNIST image)")
    kernel_size = positive_int(kernel_size, "kernel_size", example="3 or 5")
    stride = positive_int(stride, "stride", example="1 or 2")
    padding = positive_int(padding, "padding", example="0, or kernel_size // 2 to keep the size", minimum=0)
    padded = size + 2 * padding
    if kernel_size > padded:
        raise ValueError(
            f"a kernel of {kernel_size} does not fit in a side of {size} pixels with padding {padding} "
            f"({size} + 2·{padding} = {padded} < {kernel_size}): use a smaller kernel or more padding."
        )
    return (padded - kernel_size) // stride + 1


def _shape(t) -> str:
    return str(tuple(t.shape))


def _check_conv_inputs(fn: str, x, weight, bias, stride, padding) -> tuple[int, int]:
    """Validate the arguments of `conv2d_loop` / `conv2d_unfold`; return the output height and width."""
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn} wants {name} as a torch.Tensor, got {type(t).__name__}.")
    if x.ndim != 4:
        fix = {3: "for one image add the batch dimension: x[None] (or x.unsqueeze(0))",
               2: "for one grayscale image add a batch and a channel dimension: x[None, None]"}.get(
            x.ndim, "reshape it to [N, C_in, H, W]")
        raise ValueError(f"{fn} expects a batch of images x of shape [N, C_in, H, W] (4-D), got a {x.ndim}-D tensor "
                         f"of shape {_shape(x)}: {fix}.")
    if weight.ndim != 4:
        fix = ("for one 2-D filter on one-channel images use weight[None, None]" if weight.ndim == 2
               else "reshape it to [C_out, C_in, kH, kW]")
        raise ValueError(f"{fn} expects weight of shape [C_out, C_in, kH, kW] (4-D), got a {weight.ndim}-D tensor of "
                         f"shape {_shape(weight)}: {fix}.")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{fn}: x has {x.shape[1]} channel(s) (shape {_shape(x)}) but weight expects {weight.shape[1]} "
                         f"(shape {_shape(weight)}): weight's second dimension must equal x's second.")
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or bias.shape != (weight.shape[0],):
            got = _shape(bias) if isinstance(bias, torch.Tensor) else type(bias).__name__
            raise ValueError(f"{fn}: bias must be a tensor of shape ({weight.shape[0]},), one number per output channel "
                             f"of weight {_shape(weight)}, got {got}.")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{fn}: x is {x.dtype} but weight is {weight.dtype}"
                        + (f" and bias {bias.dtype}" if bias is not None else "")
                        + ": convert them to one dtype, e.g. weight.to(x.dtype).")
    stride = positive_int(stride, "stride", example="1 or 2")
    padding = positive_int(padding, "padding", example="0, or kernel_size // 2 to keep the size", minimum=0)
    (h, w), (kh, kw) = x.shape[2:], weight.shape[2:]
    if kh > h + 2 * padding or kw > w + 2 * padding:
        raise ValueError(
            f"{fn}: the {kh}×{kw} kernel (weight {_shape(weight)}) does not fit in the padded image: x {_shape(x)} is "
            f"{h}×{w}, with padding {padding} on each side {h + 2 * padding}×{w + 2 * padding}. "
            "Use a smaller kernel or more padding."
        )
    return conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)


def conv2d_loop(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
                padding: int = 0) -> torch.Tensor:
    """A 2-D convolution as an explicit loop over output positions: what `F.conv2d(x, weight, bias, stride, padding)`
    computes, written so that every step can be read.

    The image is padded with zeros; then for each output position (i, j) the window of `kH × kW` pixels starting at
    (i·stride, j·stride), across all input channels, is multiplied element by element with each output channel's
    filter and summed. Every position uses the same filters: that is the weight sharing. Slow (one Python step per
    position); for teaching and for tests. Introduced in the `convolutions` notebook.
    """
    h_out, w_out = _check_conv_inputs("conv2d_loop", x, weight, bias, stride, padding)
    kh, kw = weight.shape[2:]
    xp = F.pad(x, (padding, padding, padding, padding))
    out = x.new_zeros(x.shape[0], weight.shape[0], h_out, w_out)
    for i in range(h_out):
        for j in range(w_out):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # [N, C_in, kH, kW]
            out[:, :, i, j] = (patch[:, None] * weight[None]).sum(dim=(2, 3, 4))   # [N, C_out]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
                  padding: int = 0) -> torch.Tensor:
    """A 2-D convolution as one matrix multiply: `F.unfold` cuts every window into a column of
    `C_in·kH·kW` numbers, and the filters, flattened to `[C_out, C_in·kH·kW]`, multiply all columns at once.

    That is a linear layer (without bias, then the bias added) applied to every window with the same weights:
    a convolution *is* a linear layer whose weights are shared across positions. Same result as
    `F.conv2d(x, weight, bias, stride, padding)`. Introduced in the `convolutions` notebook.
    """
    h_out, w_out = _check_conv_inputs("conv2d_unfold", x, weight, bias, stride, padding)
    c_out, _, kh, kw = weight.shape
    patches = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # [N, C_in·kH·kW, h_out·w_out]
    out = weight.reshape(c_out, -1) @ patches                        # [N, C_out, h_out·w_out]
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(x.shape[0], c_out, h_out, w_out)


# ---------------------------------------------------------------------------------------------------------
# Receptive fields
# ---------------------------------------------------------------------------------------------------------
ReceptiveField = namedtuple("ReceptiveField", ["layer", "size", "jump", "start"])
ReceptiveField.__doc__ = (
    "The receptive field after one layer: `size` input pixels on a side; `jump` input pixels between neighbouring "
    "outputs; `start` the input coordinate where output 0's field begins (negative: it reaches into the padding). "
    "Output i sees input pixels start + i·jump … start + i·jump + size − 1 (along each side)."
)

# Layers that work pixel by pixel (or channel by channel) and leave every receptive field as it was.
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.BatchNorm2d,
              nn.Dropout, nn.Dropout2d)


def _square(value, what: str, layer) -> int:
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ValueError(f"receptive_fields handles square windows only; {layer} has {what} {value}.")
        value = value[0]
    return int(value)


def _window_name(kind: str, k: int, s: int, p: int) -> str:
    return f"{kind} {k}×{k}" + (f", stride {s}" if s > 1 else "") + (f", padding {p}" if p else "")


def _window(layer) -> tuple[str, int, int, int] | None:
    """(name, effective kernel, stride, padding) of a sliding-window layer; None for a pointwise one."""
    if isinstance(layer, tuple):
        if len(layer) != 3:
            raise ValueError(f"a layer given as a tuple must be (kernel_size, stride, padding), got {layer!r}.")
        k, s, p = layer
        k = positive_int(k, "kernel_size", example="3")
        s = positive_int(s, "stride", example="1 or 2")
        p = positive_int(p, "padding", example="0 or 1", minimum=0)
        return _window_name("window", k, s, p), k, s, p
    if isinstance(layer, _POINTWISE):
        return None
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k = _square(layer.kernel_size, "kernel_size", layer)
        s = _square(layer.stride, "stride", layer)
        p = _square(layer.padding, "padding", layer)
        d = _square(getattr(layer, "dilation", 1), "dilation", layer)
        if getattr(layer, "ceil_mode", False):
            raise ValueError(f"receptive_fields does not handle ceil_mode=True ({layer}).")
        kind = "conv" if isinstance(layer, nn.Conv2d) else "max-pool" if isinstance(layer, nn.MaxPool2d) else "avg-pool"
        name = _window_name(kind, k, s if kind == "conv" or s != k else 1, p) + (f", dilation {d}" if d > 1 else "")
        return name, d * (k - 1) + 1, s, p
    raise ValueError(
        f"receptive_fields does not know how {type(layer).__name__} moves pixels: give conv or pooling layers "
        "(nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d), pointwise ones (ReLU, BatchNorm2d, Dropout), or "
        "(kernel_size, stride, padding) tuples."
    )


def receptive_fields(layers: Iterable) -> list[ReceptiveField]:
    """The receptive field after each layer of a stack of convolutions and poolings, in input pixels.

    `layers` is an `nn.Sequential` (or any iterable) of `nn.Conv2d`, `nn.MaxPool2d`, `nn.AvgPool2d` and pointwise
    layers such as `nn.ReLU`, or of `(kernel_size, stride, padding)` tuples. The list stops at the first
    `nn.Flatten` or `nn.Linear`: from there on every unit sees the whole image. Each window of k positions adds
    `(k − 1)·jump` to the field, and each stride multiplies the jump:

        size ← size + (k − 1)·jump,   start ← start − padding·jump,   jump ← jump·stride.

    Introduced in the `convolutions` notebook.
    """
    size, jump, start = 1, 1, 0
    fields = []
    for layer in layers:
        if isinstance(layer, (nn.Flatten, nn.Linear)):
            break
        window = _window(layer)
        if window is None:
            fields.append(ReceptiveField(type(layer).__name__, size, jump, start))
            continue
        name, k, s, p = window
        size, start, jump = size + (k - 1) * jump, start - p * jump, jump * s
        fields.append(ReceptiveField(name, size, jump, start))
    if not fields:
        raise ValueError("receptive_fields got no convolution or pooling layers before the first Flatten/Linear.")
    return fields


def _pick_unit(f: ReceptiveField, n_out: int, center: float, lo: float, hi: float) -> int:
    """Index (along one side) of the unit of a layer with field `f` and `n_out` outputs whose field lies inside
    [lo, hi] and is centred nearest to `center`; the nearest one overall when none lies inside."""
    def distance(i):
        return abs(f.start + i * f.jump + (f.size - 1) / 2 - center)

    inside = [i for i in range(n_out) if f.start + i * f.jump >= lo and f.start + i * f.jump + f.size - 1 <= hi]
    return min(inside or range(n_out), key=distance)


def plot_receptive_field(image, layers: Iterable, center: tuple[float, float] | None = None, ax=None,
                         title: str | None = None):
    """Draw `image` with one square per sliding-window layer of `layers`: the input pixels that one unit of that
    layer sees. The unit of the last layer is the one whose field is centred nearest to `center` (row, column;
    default the image's centre); for each earlier layer it is a unit inside that field, so the squares nest.

    Parts of a field that reach into the padding are drawn only as far as the image goes; the legend (below the
    image) names each layer and its field's size. `layers` is what `receptive_fields` takes. Returns the Axes.
    Introduced in the `convolutions` notebook.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .plots import show_image

    img = image.detach().cpu().float() if isinstance(image, torch.Tensor) else torch.as_tensor(image, dtype=torch.float32)
    img = img.squeeze()
    if img.ndim != 2:
        raise ValueError(f"plot_receptive_field draws one 2-D image, got shape {tuple(img.shape)}.")
    h, w = img.shape
    layers = list(layers)
    fields = receptive_fields(layers)
    windowed, sizes = [], []  # the fields of the sliding-window layers, and the output size after each
    n_h, n_w = h, w
    for layer, f in zip(layers, fields):
        window = _window(layer)
        if window is not None:
            _, k, s, p = window
            n_h, n_w = conv_output_size(n_h, k, s, p), conv_output_size(n_w, k, s, p)
            windowed.append(f)
            sizes.append((n_h, n_w))
    cy, cx = center if center is not None else ((h - 1) / 2, (w - 1) / 2)
    boxes = []  # (top, left) of each field, from the last layer inwards
    top_lo, top_hi, left_lo, left_hi = -math.inf, math.inf, -math.inf, math.inf
    for f, (oh, ow) in zip(reversed(windowed), reversed(sizes)):
        i, j = _pick_unit(f, oh, cy, top_lo, top_hi), _pick_unit(f, ow, cx, left_lo, left_hi)
        top, left = f.start + i * f.jump, f.start + j * f.jump
        boxes.append((top, left))
        top_lo, top_hi, left_lo, left_hi = top, top + f.size - 1, left, left + f.size - 1
        cy, cx = top + (f.size - 1) / 2, left + (f.size - 1) / 2
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 4.5))
    show_image(img, ax=ax)
    colors = plt.get_cmap("viridis")(torch.linspace(0.15, 0.95, len(windowed)).tolist())
    for n, (f, (top, left), color) in enumerate(zip(windowed, reversed(boxes), colors), start=1):
        bottom, right = min(top + f.size, h), min(left + f.size, w)
        top, left = max(top, 0), max(left, 0)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=2, color=color,
                               label=f"{n}. {f.layer}: {f.size}×{f.size}"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8, title="receptive field after layer")
    if title is not None:
        ax.set_title(title)
    return ax
