"""Attention and a tiny GPT on names: the `attention` notebook's transformer, one class per idea.

Layer 3 of the helpers package, beside `language` (whose alphabet and splits it uses); imports `language` and
`validate` only. Everything here is built by hand first in the `attention` notebook:

- `causal_mask(T)`: which earlier positions each position may look at (itself and the past, never the future);
- `attention(q, k, v)`: scores = q kᵀ / √d, the causal mask, softmax over the past, the weighted sum of values;
- `MultiHeadAttention`: several heads side by side, each with its own queries, keys and values;
- `FeedForward`, `Block`: a position-wise MLP, and one transformer block (LayerNorm, attention, LayerNorm, MLP,
  each added to the residual stream);
- `TinyGPT`: token and position embeddings, a stack of blocks, a last LayerNorm and 27 logits per position;
- `name_sequences(names, context)`: every name as one input sequence and its targets, shifted by one;
- `sequence_loss`, `generate_names`, `parameters_by_kind`, `gpt_parameter_count`: scoring, sampling, counting.

The model is written to be read (as short as nanoGPT's), not to be fast: the heads' weights come from the
hand-written `attention`, so the notebook and its explorer can show them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .language import MARK, VOCAB_SIZE, decode, encode, temperature_probs
from .validate import positive_int

__all__ = [
    "IGNORE",
    "causal_mask",
    "attention",
    "MultiHeadAttention",
    "FeedForward",
    "Block",
    "TinyGPT",
    "name_sequences",
    "sequence_loss",
    "generate_names",
    "parameters_by_kind",
    "gpt_parameter_count",
]

IGNORE = -1  # the target of a padding position: cross-entropy skips it (ignore_index)


def causal_mask(T: int, device=None) -> torch.Tensor:
    """A bool `[T, T]` matrix, True where position i (row) may look at position j (column): j ≤ i.

    Lower-triangular: each position sees itself and the past, never the future. Introduced in the `attention`
    notebook."""
    T = positive_int(T, "T (the sequence length)", example="16")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              dropout: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention by hand: `(out, weights)`.

    `q`, `k`: `[..., T, d]`, `v`: `[..., T, d_v]`. scores = q kᵀ / √d (`[..., T, T]`: row i says how well
    position i's query matches each key); with `causal`, the scores of future positions become -inf; the softmax
    over the last dimension (the positions looked at) turns each row into weights that sum to 1; out = weights v.
    The same numbers as `F.scaled_dot_product_attention(q, k, v, is_causal=causal)`. Introduced in the `attention`
    notebook.
    """
    if q.ndim < 2 or q.shape != k.shape or k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"attention wants q and k of the same shape [..., T, d] and v of shape [..., T, d_v]; got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}.")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        T = q.shape[-2]
        scores = scores.masked_fill(~causal_mask(T, device=q.device), float("-inf"))
    weights = scores.softmax(dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v, weights


class MultiHeadAttention(nn.Module):
    """`n_heads` heads of causal self-attention over a `[batch, T, width]` input, each head `width / n_heads` wide.

    One linear layer makes every head's queries, keys and values at once; each head attends on its own; their
    outputs are put side by side and mixed by a last linear layer (`proj`). `self.weights` keeps the attention
    weights of the last call, `[batch, n_heads, T, T]`, for looking inside. `causal=False` forgets the mask (the
    bug of the `attention` notebook's section on cheating). Introduced in the `attention` notebook.
    """

    def __init__(self, width: int, n_heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        width = positive_int(width, "width", example="96")
        self.n_heads = positive_int(n_heads, "n_heads", example="4")
        if width % self.n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {self.n_heads}: each head gets width / n_heads "
                             f"dimensions, so pick a width that is a multiple of the number of heads "
                             f"(e.g. {self.n_heads * max(1, round(width / self.n_heads))}).")
        self.causal = causal
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values of every head
        self.proj = nn.Linear(width, width)  # mixes the heads' outputs back into the residual stream
        self.attn_drop, self.out_drop = nn.Dropout(dropout), nn.Dropout(dropout)
        self.weights = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # [B, h, T, d]
        out, weights = attention(q, k, v, causal=self.causal, dropout=self.attn_drop)
        self.weights = weights.detach()  # kept to look at, outside the graph
        return self.out_drop(self.proj(out.transpose(1, 2).reshape(B, T, C)))


class FeedForward(nn.Module):
    """The MLP of a block: each position on its own, width → 4·width → GELU → width. Introduced in the
    `attention` notebook."""

    def __init__(self, width: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """One transformer block: `x + attention(LayerNorm(x))`, then `x + MLP(LayerNorm(x))`.

    Attention lets positions talk to each other; the MLP thinks about each position on its own; both only
    *add* to the residual stream `x`. Introduced in the `attention` notebook."""

    def __init__(self, width: int, n_heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = MultiHeadAttention(width, n_heads, dropout, causal)
        self.mlp = FeedForward(width, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A GPT for characters: embeddings of the characters and their positions, `n_layers` blocks, 27 logits.

    `forward(X)` takes int64 `[batch, T]` character indices, T ≤ `context` (the longest sequence the position
    table covers), and returns logits `[batch, T, 27]`: at every position, the distribution of the next
    character given that position and all before it. `positions=False` leaves out the position embeddings,
    `causal=False` the mask (both to see what breaks). Introduced in the `attention` notebook.
    """

    def __init__(self, context: int = 16, width: int = 96, n_heads: int = 4, n_layers: int = 3, dropout: float = 0.0,
                 positions: bool = True, causal: bool = True):
        super().__init__()
        self.context = positive_int(context, "context (the longest sequence the model reads)", example="16")
        width = positive_int(width, "width", example="96")
        n_layers = positive_int(n_layers, "n_layers", example="3")
        self.tok_emb = nn.Embedding(VOCAB_SIZE, width)
        self.pos_emb = nn.Embedding(self.context, width) if positions else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(width, n_heads, dropout, causal) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB_SIZE)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.ndim != 2 or X.dtype != torch.int64:
            raise ValueError(f"TinyGPT wants int64 character indices [batch, T], got {X.dtype} {tuple(X.shape)}. "
                             "Build them with name_sequences(names, context).")
        T = X.shape[1]
        if T > self.context:
            raise ValueError(f"a sequence of {T} characters is longer than the model's context of {self.context}: "
                             f"its position table has no row for positions ≥ {self.context}. Keep the last "
                             f"{self.context} characters (X[:, -{self.context}:]) or build a model with a longer context.")
        x = self.tok_emb(X)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=X.device))
        return self.head(self.ln_f(self.blocks(self.drop(x))))

    def attention_weights(self) -> list[torch.Tensor]:
        """Each block's attention weights from the last call, `[batch, n_heads, T, T]` each."""
        return [b.attn.weights for b in self.blocks]


def name_sequences(names: Sequence[str], context: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Every name as one training sequence: inputs `X` and targets `Y`, both int64 `[len(names), context]`.

    "emma" is read as ".emma.": the input is ".emma" and the target, shifted by one, "emma.", so position t
    predicts character t + 1 from characters 0…t. Shorter names are padded: inputs with the marker 0, targets
    with `IGNORE` (-1), which the loss skips. Every (context → next character) pair of `language.context_pairs`
    appears once, so the two losses average over the same characters. Introduced in the `attention` notebook.
    """
    context = positive_int(context, "context (the longest sequence the model reads)", example="16")
    if isinstance(names, str):
        raise TypeError("name_sequences wants a list of names, got one string; wrap it: name_sequences(['emma']).")
    X = torch.zeros(len(names), context, dtype=torch.int64)
    Y = torch.full((len(names), context), IGNORE, dtype=torch.int64)
    for i, name in enumerate(names):
        ids = [0] + encode(name) + [0]
        if len(ids) - 1 > context:
            raise ValueError(f"the name {name!r} needs {len(ids) - 1} positions, more than the context of {context}: "
                             f"use a context of at least {len(ids) - 1}.")
        X[i, :len(ids) - 1] = torch.tensor(ids[:-1])
        Y[i, :len(ids) - 1] = torch.tensor(ids[1:])
    return X, Y


def sequence_loss(logits: torch.Tensor, Y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of `[batch, T, 27]` logits against `[batch, T]` targets, padding (`IGNORE`) skipped: the average
    over real characters (`reduction="sum"`: their total). Introduced in the `attention` notebook."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), ignore_index=IGNORE, reduction=reduction)


@torch.no_grad()
def generate_names(model: nn.Module, n: int, temperature: float = 1.0, *, generator: torch.Generator | None = None,
                   max_len: int | None = None) -> list[str]:
    """Draw `n` names from a `TinyGPT`, one character at a time: start from the marker, sample the next character
    from `softmax(logits of the last position / temperature)`, append, repeat until the marker (or `max_len`
    characters, at most the model's context). The model is in eval mode meanwhile. Introduced in the `attention`
    notebook."""
    n = positive_int(n, "n (how many names to draw)", example="10")
    temperature_probs(torch.zeros(1), temperature)  # a temperature ≤ 0 fails here, with the reason
    max_len = min(model.context, positive_int(max_len, "max_len", example="15") if max_len is not None else model.context)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        seq = torch.zeros(n, 1, dtype=torch.int64, device=device)
        for _ in range(max_len):
            probs = temperature_probs(model(seq)[:, -1].float().cpu(), temperature)
            seq = torch.cat([seq, torch.multinomial(probs, 1, generator=generator).to(device)], dim=1)
            if (seq[:, 1:] == 0).any(dim=1).all():
                break
    finally:
        model.train(was_training)
    return [decode(row[1:]).split(MARK)[0] for row in seq.cpu()]


def parameters_by_kind(model: nn.Module) -> dict[str, int]:
    """The model's parameters counted by the kind of layer that holds them: "embeddings", "linear", "layernorm"
    (and "other"). Introduced in the `attention` notebook."""
    counts = {"embeddings": 0, "linear": 0, "layernorm": 0, "other": 0}
    for module in model.modules():
        kind = {nn.Embedding: "embeddings", nn.Linear: "linear", nn.LayerNorm: "layernorm"}.get(type(module), "other")
        counts[kind] += sum(p.numel() for p in module.parameters(recurse=False))
    return counts


def gpt_parameter_count(vocab: int, context: int, width: int, n_layers: int, tied_head: bool = True) -> dict[str, int]:
    """A GPT's parameters by formula, by kind (as `parameters_by_kind` counts them), with biases everywhere.

    Per block: attention 4·w² + 4w (queries, keys, values, output), MLP 8·w² + 5w, two LayerNorms 4w; embeddings
    (vocab + context)·w; a last LayerNorm 2w; the output layer w·vocab + vocab, or nothing new when it reuses the
    token embedding's weights and has no bias (`tied_head`, as GPT-2 does). GPT-2 small (50,257 tokens, 1,024 positions, 768
    wide, 12 layers) has 124,439,808 (its output layer has no bias). Introduced in the `attention` notebook.
    """
    w = width
    linear_per_block = (4 * w * w + 4 * w) + (8 * w * w + 5 * w)
    head = 0 if tied_head else w * vocab + vocab
    return {"embeddings": (vocab + context) * w, "linear": n_layers * linear_per_block + head,
            "layernorm": n_layers * 4 * w + 2 * w, "other": 0}
