"""The models the notebooks train: a baseline MLP, the small CNN, and the CNN of the course's fastest recipe.

Layer 3 of the helpers package: imports only `validate` from the rest of `helpers`. Each model is built
layer by layer in the `convolutions` notebook (`simple_mlp` in `gpu_loop`) and trained with `helpers.train.fit`.
"""

from __future__ import annotations

import torch.nn as nn

from .validate import positive_int

__all__ = ["simple_cnn", "simple_mlp", "fast_cnn"]


def simple_cnn() -> nn.Sequential:
    """The notebook's small CNN: conv 5x5 (24) → max-pool → conv 3x3 (32) → max-pool → 256 → 10, ReLUs between.

    Takes `[B, 1, 28, 28]`; 28 → 24 → 12 → 10 → 5, so the flattened features are 32·5·5 = 800.
    Introduced in the `convolutions` notebook, trained in the `gpu_loop` notebook.
    """
    return nn.Sequential(
        nn.Conv2d(1, 24, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(24, 32, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def simple_mlp(hidden: int = 256) -> nn.Sequential:
    """The notebook's baseline: flatten 28x28 → `hidden` → 10 with a ReLU. Introduced in the `gpu_loop` notebook."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def fast_cnn(filters: int = 32) -> nn.Sequential:
    """The CNN of the course's fastest recipe: conv 5x5 with stride 2 (`filters`) → conv 3x3 (32) → max-pool → 256 → 10.

    `simple_cnn`'s shape with one change that matters: the first convolution steps 2 pixels at a time instead of
    being followed by a max-pool, so it computes a 12×12 map directly (a quarter of the positions of a 24×24 one)
    and the costliest pooling layer is gone. Takes `[B, 1, 28, 28]`; 28 → 12 → 10 → 5, so the flattened features are
    32·5·5 = 800, as in `simple_cnn`. Pooling comes before its ReLU (the same result: both are monotone, and the
    ReLU then touches a quarter of the numbers). 217,706 parameters with the default 32 first-layer filters, 215,194
    with 24 (the linear layer holds most of them). `filters` is the first layer's width, and so the number of inputs
    of the second convolution, whose multiply-adds are most of a training step: `helpers.train.fast_model` picks 24
    where the CPU computes in float32 and 32 elsewhere (both chosen on the validation split,
    benchmarks/cpu_time_to_99.py). Built layer by layer in the `convolutions` notebook; trained in `gpu_loop`.
    """
    filters = positive_int(filters, "filters (the first convolution's output channels)", example="32, 24")
    return nn.Sequential(
        nn.Conv2d(1, filters, kernel_size=5, stride=2), nn.ReLU(),
        nn.Conv2d(filters, 32, kernel_size=3), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 256), nn.ReLU(), nn.Linear(256, 10),
    )
