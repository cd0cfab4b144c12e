"""A character-level language model on first names: encoding, splits, bigram counts, an MLP, sampling.

Layer 3 of the helpers package: imports `validate` (layer 1) only; the names come from `helpers.data`.
Everything here is built by hand first in the `language_model` notebook, which trains a next-character
predictor on makemore's 32,033 names (`load_names`) and shows that it is a classifier with 27 classes:

- `ALPHABET`, `encode`, `decode`: the 26 letters plus one start/end marker `MARK` ('.'), as the integers 0–26;
- `context_pairs(names, context)`: every (previous `context` characters → next character) pair, as `X, y`;
- `split_names(names)`: a train/valid/test split of the *distinct* names, so no name sits in two splits;
- `bigram_counts`, `bigram_probs`, `bigram_nll`: the counting model and its average negative log-likelihood;
- `CharMLP`: an embedding of each character, a context of several characters, one tanh hidden layer
  (Bengio et al., 2003);
- `temperature_probs`, `entropy`, `sample_names`: turning logits into names, hotter or colder;
- `show_bigram_table`: a [27, 27] table (counts or probabilities) as a labelled picture.
"""

from __future__ import annotations

import math
import random
import string
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from .validate import number_in, positive_int, positive_number

__all__ = [
    "model_context",
    "MARK",
    "ALPHABET",
    "VOCAB_SIZE",
    "encode",
    "decode",
    "context_pairs",
    "NameSplits",
    "split_names",
    "bigram_counts",
    "bigram_probs",
    "bigram_nll",
    "CharMLP",
    "temperature_probs",
    "entropy",
    "sample_names",
    "show_bigram_table",
]

MARK = "."  # one symbol both starts and ends a name: "emma" is read as ".emma."
ALPHABET = MARK + string.ascii_lowercase  # index 0 is the marker, 1–26 the letters a–z
VOCAB_SIZE = len(ALPHABET)  # 27 classes
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def encode(text: str) -> list[int]:
    """The integers of `text`'s characters: '.' → 0, 'a' → 1, …, 'z' → 26. Introduced in the `language_model` notebook.

    Raises a ValueError that names the first character outside the alphabet and where it is.
    """
    if not isinstance(text, str):
        raise TypeError(f"encode wants a string such as 'emma', got {type(text).__name__}.")
    out = []
    for pos, ch in enumerate(text):
        if ch not in _INDEX:
            raise ValueError(
                f"encode: character {ch!r} at position {pos} of {text!r} is not in the alphabet {ALPHABET!r} "
                "(lowercase a–z plus the marker '.'). Lower-case the text (.lower()) and drop other characters."
            )
        out.append(_INDEX[ch])
    return out


def decode(ids) -> str:
    """The text of a sequence of integers 0–26 (a list or a 1-D tensor): the inverse of `encode`."""
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    bad = [i for i in ids if not (isinstance(i, int) and 0 <= i < VOCAB_SIZE)]
    if bad:
        raise ValueError(f"decode wants integers from 0 to {VOCAB_SIZE - 1}, got {bad[0]!r}.")
    return "".join(ALPHABET[i] for i in ids)


def context_pairs(names: Sequence[str], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context → next character) pair of `names`, as a classification data set `X, y`.

    Each name is framed by markers: with `context=3`, "emma" gives the five pairs
    '...'→e, '..e'→m, '.em'→m, 'emm'→a, 'mma'→'.' (the last one teaches the model to stop). `X` is int64
    `[pairs, context]`, `y` int64 `[pairs]`; a name of n letters gives n + 1 pairs.
    Introduced in the `language_model` notebook.
    """
    context = positive_int(context, "context (the number of previous characters the model sees)",
                           example="1 for a bigram model, 3 to 8 for the MLP")
    if isinstance(names, str):
        raise TypeError("context_pairs wants a list of names, got one string; wrap it: context_pairs(['emma'], 3).")
    xs, ys = [], []
    for name in names:
        window = [0] * context
        for i in encode(name) + [0]:
            xs.append(window)
            ys.append(i)
            window = window[1:] + [i]
    X = torch.tensor(xs, dtype=torch.int64).reshape(-1, context)
    return X, torch.tensor(ys, dtype=torch.int64)


class NameSplits(NamedTuple):
    train: list[str]
    valid: list[str]
    test: list[str]


def split_names(names: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 42) -> NameSplits:
    """Split the DISTINCT names into train/valid/test (80/10/10 by default), shuffled with `seed`.

    Duplicates are dropped first (32,033 names hold 29,494 distinct ones), so a name that occurs twice cannot
    sit in two splits: validation then measures how well the model predicts names it has never seen, not how
    well it remembers. The order is `sorted(set(names))` shuffled by `random.Random(seed)`: the same split on
    every machine. Split sizes are `int(0.8 n)`, `int(0.9 n) - int(0.8 n)` and the rest.
    Introduced in the `language_model` notebook.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three positive numbers that add up to 1, e.g. (0.8, 0.1, 0.1); "
                         f"got {tuple(fractions)}.")
    distinct = sorted(set(names))
    if len(distinct) < 3:
        raise ValueError(f"split_names needs at least 3 distinct names, got {len(distinct)}.")
    random.Random(seed).shuffle(distinct)
    n = len(distinct)
    a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    return NameSplits(distinct[:a], distinct[a:b], distinct[b:])


def bigram_counts(names: Sequence[str]) -> torch.Tensor:
    """How often each character follows each other one: an int64 `[27, 27]` table, row = previous, column = next.

    Every name is framed by one marker at each end, so row 0 counts first letters and column 0 last ones.
    Introduced in the `language_model` notebook.
    """
    X, y = context_pairs(names, 1)
    return torch.bincount(X[:, 0] * VOCAB_SIZE + y, minlength=VOCAB_SIZE**2).reshape(VOCAB_SIZE, VOCAB_SIZE)


def bigram_probs(counts: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """Each row of `counts` (plus `smoothing` in every cell) divided by its total: P(next | previous), float64.

    `smoothing=1` is add-one (Laplace) smoothing: no pair gets probability 0, so no unseen pair costs an infinite
    loss. With `smoothing=0`, a row without any count is uniform (the limit of a vanishing smoothing). Introduced in
    the `language_model` notebook.
    """
    if not isinstance(counts, torch.Tensor) or counts.shape != (VOCAB_SIZE, VOCAB_SIZE):
        raise ValueError("bigram_probs wants the [27, 27] table of bigram_counts, got "
                         + (f"shape {tuple(counts.shape)}" if isinstance(counts, torch.Tensor) else type(counts).__name__) + ".")
    number_in(smoothing, "smoothing", advice="1 is add-one smoothing, 0 none.")
    table = counts.double() + smoothing
    empty = table.sum(dim=1) == 0  # a character never seen before another one, and no smoothing:
    table[empty] = 1.0  # its row is uniform, the limit of any smoothing → 0
    return table / table.sum(dim=1, keepdim=True)


def bigram_nll(probs: torch.Tensor, names: Sequence[str]) -> float:
    """Average negative log-likelihood (nats) per character pair of `names` under the bigram table `probs`.

    The average is over pairs (characters), not over names: a long name counts more than a short one. An unseen
    pair under an unsmoothed table gives `inf`. Introduced in the `language_model` notebook.
    """
    X, y = context_pairs(names, 1)
    if len(y) == 0:
        raise ValueError("bigram_nll needs at least one name.")
    return -probs[X[:, 0], y].log().mean().item()


class CharMLP(nn.Module):
    """Bengio et al. (2003): embed each of the last `context` characters, concatenate, tanh hidden layer, 27 logits.

    `forward(X)` takes int64 `[batch, context]` (as `context_pairs` builds it) and returns logits `[batch, 27]`.
    Parameters: 27·emb_dim (the embedding table) + context·emb_dim·hidden + hidden + hidden·27 + 27.
    Introduced in the `language_model` notebook.
    """

    def __init__(self, context: int = 3, emb_dim: int = 10, hidden: int = 200):
        super().__init__()
        self.context = positive_int(context, "context (the number of previous characters the model sees)",
                                    example="1 for a bigram model, 3 to 8 for the MLP")
        emb_dim = positive_int(emb_dim, "emb_dim", example="10, 16, 24")
        hidden = positive_int(hidden, "hidden", example="200, 256, 512")
        self.emb = nn.Embedding(VOCAB_SIZE, emb_dim)
        self.hidden = nn.Linear(self.context * emb_dim, hidden)
        self.out = nn.Linear(hidden, VOCAB_SIZE)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.ndim != 2 or X.shape[1] != self.context or X.dtype != torch.int64:
            raise ValueError(f"CharMLP(context={self.context}) wants int64 character indices [batch, {self.context}], "
                             f"got {X.dtype} {tuple(X.shape)}. Build them with context_pairs(names, {self.context}).")
        return self.out(torch.tanh(self.hidden(self.emb(X).flatten(1))))


def _check_temperature(temperature) -> float:
    return positive_number(
        temperature, "temperature",
        advice="The logits are divided by it: 1 samples the model's own probabilities, below 1 (e.g. 0.5) sharpens "
        "them, above 1 (e.g. 2) flattens them. For the single most likely character (the limit T → 0) take "
        "logits.argmax() instead.")


def temperature_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / temperature) over the last dimension. Introduced in the `language_model` notebook."""
    return torch.softmax(logits / _check_temperature(temperature), dim=-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats, -Σ p log p, over the last dimension (0 log 0 counts as 0). log 27 ≈ 3.30 is the most for 27 classes."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)


@torch.no_grad()
def model_context(model, context: int | None, caller: str) -> int:
    """How many previous characters `model` sees: `context` when given, else `model.context`; checked to be a
    whole number ≥ 1, with an error naming `caller` when neither is there. Introduced in the `language_model`
    notebook."""
    if context is None:
        context = getattr(model, "context", None)
        if context is None:
            raise ValueError(f"{caller}: pass context=... (the model has no .context attribute).")
    return positive_int(context, "context (the number of previous characters the model sees)",
                        example="1 for a bigram model, 3 to 8 for the MLP")


def sample_names(model: Callable[[torch.Tensor], torch.Tensor], n: int, temperature: float = 1.0, *,
                 context: int | None = None, generator: torch.Generator | None = None, max_len: int = 30) -> list[str]:
    """Draw `n` names from a next-character model, one character at a time, all `n` names in one batch.

    `model` maps int64 contexts `[n, context]` to logits `[n, 27]` (a `CharMLP`, or any function); `context`
    defaults to `model.context`. Each step samples from `softmax(logits / temperature)` with `generator` (pass a
    seeded one to repeat a draw) and stops a name at the marker; a name still going after `max_len` characters is
    cut there (a name whose first draw is the marker comes out empty). The model runs on its own device; the draws
    are made on the CPU. Introduced in the `language_model` notebook.
    """
    n = positive_int(n, "n (how many names to draw)", example="10")
    max_len = positive_int(max_len, "max_len", example="30")
    temperature = _check_temperature(temperature)
    context = model_context(model, context, "sample_names")
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        params = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        window = torch.zeros(n, context, dtype=torch.int64, device=params.device if params is not None else "cpu")
        out = torch.zeros(n, max_len, dtype=torch.int64)
        alive = torch.ones(n, dtype=torch.bool)
        for t in range(max_len):
            probs = temperature_probs(model(window).float().cpu(), temperature)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = torch.where(alive, nxt, torch.zeros_like(nxt))
            out[:, t] = nxt
            alive &= nxt != 0
            if not alive.any():
                break
            window = torch.cat([window[:, 1:], nxt[:, None].to(window.device)], dim=1)
    finally:
        if was_training:
            model.train()
    return [decode(row).split(MARK)[0] for row in out]


def show_bigram_table(table: torch.Tensor, ax=None, title: str | None = None, annotate: bool = True):
    """Draw a [27, 27] table (counts, or probabilities P(next | previous)) as a heat map; return the axes.

    Rows are the previous character, columns the next one, both labelled with `ALPHABET`. With `annotate`, each
    cell also shows its value (whole numbers as they are, fractions to two decimals), small. Introduced in the
    `language_model` notebook.
    """
    import matplotlib.pyplot as plt  # drawing is optional for this module's other functions

    if not isinstance(table, torch.Tensor) or table.shape != (VOCAB_SIZE, VOCAB_SIZE):
        raise ValueError("show_bigram_table wants a [27, 27] tensor (bigram_counts or bigram_probs), got "
                         + (f"shape {tuple(table.shape)}" if isinstance(table, torch.Tensor) else type(table).__name__) + ".")
    values = table.detach().cpu().double()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 9) if annotate else (5.5, 5.5))
    ax.imshow(values.numpy(), cmap="Blues")
    ax.set_xticks(range(VOCAB_SIZE), list(ALPHABET))
    ax.set_yticks(range(VOCAB_SIZE), list(ALPHABET))
    ax.tick_params(length=0, labelsize=8 if annotate else 7)
    ax.set_xlabel("next character")
    ax.set_ylabel("previous character")
    if title:
        ax.set_title(title)
    if annotate:
        whole = bool((values == values.round()).all())
        high = values.max().item()
        for i in range(VOCAB_SIZE):
            for j in range(VOCAB_SIZE):
                v = values[i, j].item()
                ax.text(j, i, f"{v:.0f}" if whole else f"{v:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if v > 0.6 * high else "black")
    return ax
