"""helpers.attention: the hand-written attention against PyTorch's, the causal property, shapes, parameter counts,
and clear errors for the inputs a learner gets wrong."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import attention as A
from helpers import language as L
from helpers.diagnose import check_causal, run_detectors


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**kw):
    torch.manual_seed(0)
    return A.TinyGPT(**{"context": 8, "width": 16, "n_heads": 2, "n_layers": 2, **kw})


# ---------------------------------------------------------------- attention against PyTorch


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_pytorch_in_float64(seed, causal):
    g = torch.Generator().manual_seed(seed)
    B, H = torch.randint(1, 4, (2,), generator=g).tolist()
    T, d, dv = torch.randint(1, 12, (3,), generator=g).tolist()
    q, k = torch.randn(B, H, T, d, generator=g, dtype=torch.float64), torch.randn(B, H, T, d, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, T, dv, generator=g, dtype=torch.float64)
    out, weights = A.attention(q, k, v, causal=causal)
    oracle = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert (out - oracle).abs().max().item() < 1e-10
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T, dtype=torch.float64))
    if causal:  # nothing from the future: every weight above the diagonal is exactly 0
        assert (weights.triu(1) == 0).all()


def test_attention_with_an_explicit_mask_agrees_with_pytorch():
    q, k, v = (torch.randn(2, 5, 4, dtype=torch.float64) for _ in range(3))
    mask = A.causal_mask(5)
    assert mask.dtype == torch.bool and torch.equal(mask, torch.ones(5, 5, dtype=torch.bool).tril())
    out, _ = A.attention(q, k, v)
    assert (out - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max().item() < 1e-10


def test_multi_head_attention_is_heads_side_by_side():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(width=12, n_heads=3).double()
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    q, k, v = mha.qkv(x).split(12, dim=-1)
    heads = [A.attention(q[..., i:i + 4], k[..., i:i + 4], v[..., i:i + 4])[0] for i in range(0, 12, 4)]
    expected = mha.proj(torch.cat(heads, dim=-1))
    assert (mha(x) - expected).abs().max().item() < 1e-12
    assert mha.weights.shape == (2, 3, 7, 7)


# ---------------------------------------------------------------- the model


def test_shapes_and_attention_weights():
    model = tiny()
    X, Y = A.name_sequences(["emma", "ava"], 8)
    logits = model(X[:, :6])
    assert logits.shape == (2, 6, 27)
    assert [w.shape for w in model.attention_weights()] == [(2, 2, 6, 6)] * 2


@pytest.mark.parametrize("causal, leaks", [(True, False), (False, True)])
def test_a_future_token_never_changes_an_earlier_output(causal, leaks):
    model = tiny(causal=causal).eval()
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, 27, (4, 8), generator=g)
    with torch.no_grad():
        base = model(X)
        for t in range(1, 8):
            changed = X.clone()
            changed[:, t] = (changed[:, t] + 5) % 27
            moved = (model(changed)[:, :t] - base[:, :t]).abs().max().item()
            assert (moved > 1e-4) == leaks, (t, moved)


def test_check_causal_catches_the_unmasked_model_and_passes_the_masked_one():
    X = A.name_sequences(["emma", "olivia", "ava"], 8)[0]
    good, bad = tiny(), tiny(causal=False)
    quiet = check_causal(good, X)
    assert quiet.ok and quiet.notes, str(quiet)
    loud = check_causal(bad, X)
    assert loud.fired == {"future_leak"}
    finding = loud.findings[0]
    assert "later token" in finding.what and "mask" in finding.fix
    assert good.training and bad.training  # the check used a copy in eval mode
    opt = torch.optim.AdamW(bad.parameters(), lr=1e-3)
    batch = (X, A.name_sequences(["emma", "olivia", "ava"], 8)[1])

    def step(model, loss_fn, opt, batch):
        loss = A.sequence_loss(model(batch[0]), batch[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    report = run_detectors(bad, A.sequence_loss, opt, batch, step_fn=step, causal_x=X)
    assert "future_leak" in report.fired


def test_check_causal_explains_bad_input():
    with pytest.raises(ValueError, match=r"int64 token sequences \[batch, T\]"):
        check_causal(tiny(), torch.rand(2, 5))
    with pytest.raises(TypeError, match="nn.Module"):
        check_causal(lambda x: x, torch.zeros(2, 5, dtype=torch.int64))


def test_without_positions_the_model_cannot_tell_where_it_is():
    """Without position embeddings, one layer of attention is a weighted average that ignores order: after
    ".ab" and ".ba" the same character comes next, with the same probabilities."""
    model = tiny(positions=False, n_layers=1).eval()
    with torch.no_grad():
        a = model(torch.tensor([[0, 1, 2, 3]]))[0, -1]
        b = model(torch.tensor([[0, 2, 1, 3]]))[0, -1]
    assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        model = tiny(n_layers=1).eval()
        assert not torch.allclose(model(torch.tensor([[0, 1, 2, 3]]))[0, -1],
                                  model(torch.tensor([[0, 2, 1, 3]]))[0, -1], atol=1e-5)


def test_name_sequences_hold_every_pair_of_context_pairs():
    names = ["emma", "olivia", "zoe"]
    X, Y = A.name_sequences(names, 8)
    assert X.shape == Y.shape == (3, 8) and X.dtype == Y.dtype == torch.int64
    assert L.decode(X[0, :5]) == ".emma" and L.decode(Y[0, :5]) == "emma." and (Y[0, 5:] == A.IGNORE).all()
    assert int((Y != A.IGNORE).sum()) == len(L.context_pairs(names, 1)[1])
    # the loss over the sequences averages over the same characters as the pairs: a uniform model gives log 27
    assert A.sequence_loss(torch.zeros(3, 8, 27), Y).item() == pytest.approx(math.log(27))


# ---------------------------------------------------------------- counting parameters


def test_parameters_by_kind_add_up_and_match_the_formula():
    model = A.TinyGPT(context=16, width=96, n_heads=4, n_layers=3)
    kinds = A.parameters_by_kind(model)
    assert sum(kinds.values()) == sum(p.numel() for p in model.parameters())
    assert kinds == A.gpt_parameter_count(27, 16, 96, 3, tied_head=False)
    assert kinds["linear"] > 0.9 * sum(kinds.values())


def test_gpt2_small_by_formula():
    assert sum(A.gpt_parameter_count(50257, 1024, 768, 12).values()) == 124_439_808


# ---------------------------------------------------------------- sampling


def test_generate_names_is_repeatable_and_keeps_the_mode():
    model = tiny()
    a = A.generate_names(model, 5, 1.0, generator=torch.Generator().manual_seed(0))
    b = A.generate_names(model, 5, 1.0, generator=torch.Generator().manual_seed(0))
    assert a == b and len(a) == 5 and all(set(n) <= set(L.ALPHABET[1:]) and len(n) <= 8 for n in a)
    assert model.training


# ---------------------------------------------------------------- teaching errors


@pytest.mark.parametrize("make, words", [
    (lambda: tiny()(torch.zeros(1, 9, dtype=torch.int64)), "longer than the model's context of 8"),
    (lambda: tiny()(torch.zeros(1, 4)), "int64 character indices"),
    (lambda: A.TinyGPT(width=10, n_heads=4), "width 10 is not divisible by n_heads 4"),
    (lambda: A.MultiHeadAttention(width=10, n_heads=3), "not divisible"),
    (lambda: A.generate_names(tiny(), 3, temperature=0), "temperature must be a positive, finite number"),
    (lambda: A.generate_names(tiny(), 3, temperature=-1.0), "temperature must be a positive, finite number"),
    (lambda: A.name_sequences(["abcdefghij"], 8), "needs 11 positions, more than the context of 8"),
    (lambda: A.name_sequences("emma", 8), "wants a list of names"),
    (lambda: A.attention(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3)), "q and k of the same shape"),
    (lambda: A.causal_mask(0), "must be a positive whole number"),
])
def test_clear_errors_for_bad_inputs(make, words):
    with pytest.raises((ValueError, TypeError), match=words):
        make()
