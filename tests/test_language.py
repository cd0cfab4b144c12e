"""helpers.language: the next-character model of the `language_model` notebook, checked against torch and plain Python."""

import math
import os
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import language as L
from helpers.data import load_names


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second thread only adds waiting (ms per op on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SOME = ["emma", "olivia", "ava", "emma", "isabella", "sophia", "ava", "mia", "zoe", "x"]


@pytest.fixture(scope="module")
def names():
    """makemore's 32,033 names, from the verified copy that NAMES_DIR names (skipped where there is none)."""
    folder = os.environ.get("NAMES_DIR")
    path = Path(folder) / "names.txt" if folder else None
    if path is None or not path.is_file():
        pytest.skip("set NAMES_DIR to the folder holding names.txt (CI sets it) to run the real-data tests")
    return load_names()


# ------------------------------------------------------------------------------------------ encoding


def test_the_marker_is_0_and_the_letters_follow_it():
    assert L.encode(L.MARK + "az") == [0, 1, 26]
    assert L.decode(range(L.VOCAB_SIZE)) == ".abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(ValueError, match="from 0 to 26"):
        L.decode([L.VOCAB_SIZE])


def test_encode_decode_round_trip():
    assert L.encode(".emma.") == [0, 5, 13, 13, 1, 0]
    assert L.decode([0, 5, 13, 13, 1, 0]) == ".emma."
    assert L.decode(torch.tensor(L.encode("zoe"))) == "zoe"
    assert L.encode("") == []


@pytest.mark.parametrize("text, words", [("Emma", "'E' at position 0"), ("jean-luc", "'-' at position 4"),
                                         ("zoë", "'ë' at position 2")])
def test_encode_names_the_bad_character(text, words):
    with pytest.raises(ValueError, match=words) as info:
        L.encode(text)
    assert ".lower()" in str(info.value)


def test_encode_and_decode_refuse_bad_types():
    with pytest.raises(TypeError, match="wants a string"):
        L.encode(["emma"])
    with pytest.raises(ValueError, match="from 0 to 26"):
        L.decode([1, 27])


# --------------------------------------------------------------------------------------- (context → next)


def test_context_pairs_of_one_name():
    X, y = L.context_pairs(["emma"], 3)
    contexts = ["".join(L.ALPHABET[i] for i in row) for row in X.tolist()]
    assert contexts == ["...", "..e", ".em", "emm", "mma"]
    assert L.decode(y) == "emma."
    assert X.dtype == y.dtype == torch.int64 and X.shape == (5, 3) and y.shape == (5,)


def test_context_pairs_counts_one_pair_per_character_plus_the_end():
    X, y = L.context_pairs(SOME, 5)
    assert len(X) == len(y) == sum(len(n) + 1 for n in SOME)
    assert (y == 0).sum() == len(SOME)  # each name ends once
    assert (X[:, -1] == 0).sum() == len(SOME)  # each name starts once (the whole window is markers)
    X1, y1 = L.context_pairs(SOME, 1)
    assert torch.equal(X1[:, 0], X[:, -1]) and torch.equal(y1, y)  # the last column is the bigram context


@pytest.mark.parametrize("context", [0, -1, 2.0, True, None])
def test_context_below_one_is_a_clear_error(context):
    with pytest.raises(ValueError, match="context .* must be a positive whole number"):
        L.context_pairs(["emma"], context)
    with pytest.raises(ValueError, match="context .* must be a positive whole number"):
        L.CharMLP(context=context)


def test_context_pairs_refuses_one_string():
    with pytest.raises(TypeError, match="wrap it"):
        L.context_pairs("emma", 3)


# --------------------------------------------------------------------------------------------- splits


def test_split_of_distinct_names_is_disjoint_and_complete():
    many = [f"{a}{b}{c}" for a in "abc" for b in "defg" for c in "hijklmn"] * 2  # 84 names, each twice
    s = L.split_names(many)
    assert (len(s.train), len(s.valid), len(s.test)) == (67, 8, 9)
    sets = [set(part) for part in s]
    assert sum(len(x) for x in sets) == len(set(many)) and set().union(*sets) == set(many)
    assert all(len(part) == len(set(part)) for part in s)  # no name twice inside a split either
    assert L.split_names(list(reversed(many))) == s  # the order of the input does not matter
    assert L.split_names(many, seed=1) != s


@pytest.mark.parametrize("fractions", [(0.8, 0.2), (0.8, 0.1, 0.2), (1.0, 0.0, 0.0), (0.9, 0.2, -0.1)])
def test_split_refuses_bad_fractions(fractions):
    with pytest.raises(ValueError, match="three positive numbers that add up to 1"):
        L.split_names(SOME, fractions)


def test_split_of_the_real_names(names):
    s = L.split_names(names)
    assert len(names) == 32_033 and len(set(names)) == 29_494
    assert (len(s.train), len(s.valid), len(s.test)) == (23_595, 2_949, 2_950)
    assert not (set(s.train) & set(s.valid)) and not (set(s.train) & set(s.test)) and not (set(s.valid) & set(s.test))


# --------------------------------------------------------------------------------------------- counts


def test_bigram_counts_match_plain_python():
    counts = L.bigram_counts(SOME)
    expected = Counter()
    for name in SOME:
        framed = "." + name + "."
        expected.update(zip(framed, framed[1:]))
    assert counts.dtype == torch.int64 and counts.shape == (27, 27)
    for (a, b), n in expected.items():
        assert counts[L.ALPHABET.index(a), L.ALPHABET.index(b)] == n
    assert counts.sum() == sum(expected.values())
    assert counts[0].sum() == counts[:, 0].sum() == len(SOME)


def test_bigram_probs_rows_sum_to_one_and_nll_matches_torch():
    counts = L.bigram_counts(SOME)
    for smoothing in (0.5, 1.0, 3):
        P = L.bigram_probs(counts, smoothing)
        assert P.dtype == torch.float64
        torch.testing.assert_close(P.sum(dim=1), torch.ones(27, dtype=torch.float64))
        X, y = L.context_pairs(SOME, 1)
        oracle = F.nll_loss(P.log()[X[:, 0]], y).item()  # torch's NLL: one mean over every pair
        assert L.bigram_nll(P, SOME) == pytest.approx(oracle, rel=1e-12)
    per_name = sum(L.bigram_nll(P, [n]) for n in SOME) / len(SOME)
    assert L.bigram_nll(P, SOME) != pytest.approx(per_name, rel=1e-6)  # per pair, not per name


def test_an_unseen_pair_costs_infinity_without_smoothing():
    P = L.bigram_probs(L.bigram_counts(["ab"] * 3 + ["b"]), smoothing=0.0)
    assert L.bigram_nll(P, ["ab"]) < math.inf and L.bigram_nll(P, ["ba"]) == math.inf


def test_bigram_probs_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[27, 27\]"):
        L.bigram_probs(torch.zeros(26, 27))
    with pytest.raises(ValueError, match="smoothing must be at least 0"):
        L.bigram_probs(torch.zeros(27, 27), smoothing=-1)
    torch.testing.assert_close(L.bigram_probs(torch.zeros(27, 27, dtype=torch.int64), smoothing=0),
                               torch.full((27, 27), 1 / 27, dtype=torch.float64))  # no counts, no smoothing: uniform


def test_the_published_bigram_figure(names):
    """makemore's lecture: add-one smoothed bigram counts, all 32,033 names, 2.454 nats per pair."""
    X, _ = L.context_pairs(names, 1)
    assert len(X) == 228_146
    assert round(L.bigram_nll(L.bigram_probs(L.bigram_counts(names), 1.0), names), 4) == 2.4546


# ------------------------------------------------------------------------------------------------ MLP


def test_char_mlp_is_embedding_concat_tanh_linear():
    torch.manual_seed(0)
    model = L.CharMLP(context=4, emb_dim=5, hidden=7)
    assert sum(p.numel() for p in model.parameters()) == 27 * 5 + 4 * 5 * 7 + 7 + 7 * 27 + 27
    X, _ = L.context_pairs(SOME, 4)
    C, W1, b1, W2, b2 = model.emb.weight, model.hidden.weight, model.hidden.bias, model.out.weight, model.out.bias
    by_hand = torch.tanh(C[X].reshape(len(X), -1) @ W1.T + b1) @ W2.T + b2
    torch.testing.assert_close(model(X), by_hand)


def test_an_embedding_lookup_is_a_one_hot_product():
    emb = torch.nn.Embedding(27, 6)
    x = torch.tensor([0, 5, 13, 13, 1])
    torch.testing.assert_close(emb(x), F.one_hot(x, 27).float() @ emb.weight)


def test_char_mlp_refuses_the_wrong_input():
    model = L.CharMLP(context=3)
    with pytest.raises(ValueError, match=r"int64 character indices \[batch, 3\].*context_pairs\(names, 3\)"):
        model(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(2, 3))


def test_char_mlp_learns_a_tiny_language():
    torch.manual_seed(0)
    X, y = L.context_pairs(["abc"] * 10, 2)
    model = L.CharMLP(context=2, emb_dim=4, hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01
    assert L.sample_names(model, 5, generator=torch.Generator().manual_seed(0)) == ["abc"] * 5


# ------------------------------------------------------------------------------------------- sampling


def test_temperature_probs_matches_torch_and_orders_the_entropy():
    logits = torch.randn(4, 27, generator=torch.Generator().manual_seed(0)) * 2
    torch.testing.assert_close(L.temperature_probs(logits, 1.0), torch.softmax(logits, dim=1))
    torch.testing.assert_close(L.temperature_probs(logits, 0.5), torch.softmax(2 * logits, dim=1))
    h = [L.entropy(L.temperature_probs(logits, t)) for t in (0.1, 0.5, 1.0, 2.0, 100.0)]
    assert all(bool((a < b).all()) for a, b in zip(h, h[1:]))  # hotter is flatter
    assert torch.equal(L.temperature_probs(logits, 0.01).argmax(1), logits.argmax(1))
    torch.testing.assert_close(h[-1], torch.full((4,), math.log(27)), atol=0.02, rtol=0)


def test_entropy_matches_torch_distributions():
    probs = torch.softmax(torch.randn(5, 27), dim=1)
    probs[0] = F.one_hot(torch.tensor(3), 27).float()  # 0 log 0 counts as 0
    torch.testing.assert_close(L.entropy(probs), torch.distributions.Categorical(probs=probs).entropy())


@pytest.mark.parametrize("temperature", [0, -1, 0.0, float("nan"), float("inf"), True, "1"])
def test_temperature_at_or_below_zero_is_a_clear_error(temperature):
    with pytest.raises(ValueError, match="temperature must be a positive, finite number.*argmax"):
        L.temperature_probs(torch.zeros(27), temperature)
    with pytest.raises(ValueError, match="temperature must be a positive, finite number"):
        L.sample_names(L.CharMLP(), 3, temperature=temperature)


class _Table(torch.nn.Module):
    """A bigram model as logits: log P[previous character]."""

    context = 1

    def __init__(self, probs):
        super().__init__()
        self.logp = probs.float().log()

    def forward(self, X):
        return self.logp[X[:, -1]]


def test_samples_follow_the_model_and_repeat_with_a_seeded_generator():
    P = L.bigram_probs(L.bigram_counts(SOME), smoothing=0.01)
    model = _Table(P)
    a = L.sample_names(model, 2000, generator=torch.Generator().manual_seed(1))
    b = L.sample_names(model, 2000, generator=torch.Generator().manual_seed(1))
    assert a == b and all(set(n) <= set(L.ALPHABET[1:]) for n in a)
    first = Counter(n[0] if n else "." for n in a)
    for ch, p in zip(L.ALPHABET, P[0].tolist()):  # first letters follow row 0 of the table
        assert abs(first[ch] / len(a) - p) < 4 * math.sqrt(p * (1 - p) / len(a)) + 1e-3, ch


def test_cold_samples_repeat_the_most_likely_name_and_long_ones_are_cut():
    P = L.bigram_probs(L.bigram_counts(["ab"] * 9 + ["b"]), smoothing=0.01)
    cold = L.sample_names(_Table(P), 20, temperature=0.05, generator=torch.Generator().manual_seed(0))
    assert cold == ["ab"] * 20
    loop = torch.full((27, 27), -10.0)
    loop[:, 1] = 10.0  # always 'a', never the end
    cut = L.sample_names(lambda X: loop[X[:, -1]], 3, context=1, max_len=7, generator=torch.Generator().manual_seed(0))
    assert cut == ["aaaaaaa"] * 3


def test_sample_names_leaves_train_mode_and_global_stream_alone():
    model = L.CharMLP(context=2)
    model.train()
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    L.sample_names(model, 3, generator=torch.Generator().manual_seed(0))
    assert torch.rand(1) == before and model.training
    with pytest.raises(ValueError, match="pass context="):
        L.sample_names(lambda X: torch.zeros(len(X), 27), 2)
