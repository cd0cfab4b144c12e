"""The training loop the notebooks build, in its finished form.

Layer 3 of the helpers package: may import `env`, `plots`, `checkpoint`, `data`, `results`, never `widgets`.
The pieces here are built by hand first: `batches` and `binary_accuracy` in notebook 04, `accuracy` in
notebook 06; the full GPU loop in notebook 10.
"""

from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["batches", "binary_accuracy", "accuracy"]


def batches(n: int, bs: int, shuffle: bool = True, generator: torch.Generator | None = None,
            device=None, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Yield index tensors that cover `range(n)` in mini-batches of `bs` (the last one may be smaller).

    With `shuffle=True` the order is a fresh random permutation each call (pass a seeded `generator` for a
    repeatable order). Indexing tensors that already sit in memory with these is 2-3x faster per epoch than a
    `DataLoader` over a `TensorDataset`. Introduced in notebook 04 (mini-batches and shuffling).
    """
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"batches needs the number of examples n > 0, got {n!r}.")
    if not isinstance(bs, int) or isinstance(bs, bool) or bs <= 0:
        raise ValueError(f"batch size bs must be a positive whole number, got {bs!r}. Typical values: 64, 256.")
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device if generator is not None else "cpu")
    else:
        order = torch.arange(n)
    if device is not None:
        order = order.to(device)
    stop = n - n % bs if drop_last and n >= bs else n
    for start in range(0, stop, bs):
        yield order[start:start + bs]


def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose predicted class (logit > 0, i.e. sigmoid > 0.5) equals the 0/1 target.

    Introduced in notebook 04 (`batch_accuracy` there).
    """
    logits, y = logits.reshape(-1), y.reshape(-1)
    if logits.shape != y.shape:
        raise ValueError(f"binary_accuracy got {logits.numel()} predictions for {y.numel()} targets.")
    return ((logits > 0).float() == y.float()).float().mean().item()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose highest logit is at the target class index. Introduced in notebook 06."""
    if logits.ndim != 2 or y.ndim != 1 or len(logits) != len(y):
        raise ValueError(
            f"accuracy expects logits [N, classes] and class indices [N], got {tuple(logits.shape)} and {tuple(y.shape)}."
        )
    return (logits.argmax(dim=1) == y).float().mean().item()
