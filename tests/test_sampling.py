"""Samplers of single-path NAS (methods/sampling.py): distributions and straight-through gradients.

Frequencies are compared with the exact probabilities within 5 standard errors
``sqrt(q (1 - q) / n)`` per event (a false alarm has probability < 1e-5 per event and the seed is
fixed anyway).
"""

from __future__ import annotations

from itertools import permutations

import pytest
import torch
import torch.nn.functional as F

from methods.sampling import (
    gumbel,
    gumbel_max_pairs,
    gumbel_softmax_st,
    gumbel_topk,
    pairs,
    top2_inclusion_probability,
    topk_pair_probability,
)

N_DRAWS = 40_000
LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_frequencies(freq: torch.Tensor, prob: torch.Tensor, n: int, n_se: float = 5.0) -> None:
    prob = prob.double()
    se = torch.sqrt(prob * (1 - prob) / n) + 1e-12
    z = (freq.double() - prob).abs() / se
    assert bool((z < n_se).all()), f"frequencies {freq.tolist()} vs probabilities {prob.tolist()} (z={z.tolist()})"


def brute_force(p: torch.Tensor, k: int) -> tuple[torch.Tensor, dict[frozenset[int], float]]:
    """Inclusion probability of each item and probability of each k-set when drawing ``k`` items
    without replacement from ``p``, by enumerating every ordered draw."""
    p = p.double()
    n = p.shape[0]
    inclusion = torch.zeros(n, dtype=torch.float64)
    sets: dict[frozenset[int], float] = {}
    for seq in permutations(range(n), k):
        prob, left = 1.0, 1.0
        for i in seq:
            prob *= float(p[i]) / left
            left -= float(p[i])
        for i in seq:
            inclusion[i] += prob
        key = frozenset(seq)
        sets[key] = sets.get(key, 0.0) + prob
    return inclusion, sets


def mask_rows_to_index_sets(mask: torch.Tensor) -> list[frozenset[int]]:
    return [frozenset(row.nonzero().flatten().tolist()) for row in mask.round()]


def pair_counts(mask: torch.Tensor) -> torch.Tensor:
    """How often each pair of :func:`pairs` is the set of ones of a row (rows must have two ones)."""
    n = mask.shape[-1]
    hard = mask.round()
    assert bool((hard.sum(-1) == 2).all())
    idx = hard.nonzero()[:, 1].view(-1, 2)  # row-major: the two column indices of each row, ascending
    code = torch.bincount(idx[:, 0] * n + idx[:, 1], minlength=n * n)
    return torch.stack([code[i * n + k] for i, k in pairs(n)]).double()


# -- closed forms --------------------------------------------------------------------------------

@pytest.mark.parametrize("logits", [LOGITS, torch.tensor([0.3, -2.0, 1.5, 0.0]), torch.zeros(6)])
def test_top2_closed_form_matches_enumeration(logits: torch.Tensor) -> None:
    p = F.softmax(logits.double(), dim=-1)
    inclusion, sets = brute_force(p, 2)
    closed = top2_inclusion_probability(p)
    torch.testing.assert_close(closed, inclusion, rtol=0, atol=1e-12)
    assert float(closed.sum()) == pytest.approx(2.0, abs=1e-12)
    pair_p = topk_pair_probability(p)
    expected = torch.tensor([sets[frozenset(pr)] for pr in pairs(p.shape[0])], dtype=torch.float64)
    torch.testing.assert_close(pair_p, expected, rtol=0, atol=1e-12)
    assert float(pair_p.sum()) == pytest.approx(1.0, abs=1e-12)
    # the inclusion probability of an item is the total probability of the pairs containing it
    for i in range(p.shape[0]):
        assert float(sum(pair_p[j] for j, pr in enumerate(pairs(p.shape[0])) if i in pr)) == pytest.approx(
            float(closed[i]), abs=1e-12)


def test_pairs_enumerates_unordered_predecessor_pairs() -> None:
    assert pairs(2) == ((0, 1),)
    assert pairs(4) == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    for n in range(2, 7):
        assert len(pairs(n)) == n * (n - 1) // 2
        assert all(i < k < n for i, k in pairs(n))


# -- Gumbel-Top-k ---------------------------------------------------------------------------------

def test_gumbel_topk_inclusion_frequencies_match_closed_form() -> None:
    p = F.softmax(LOGITS, dim=-1)
    mask = gumbel_topk(LOGITS.expand(N_DRAWS, -1), 2, tau=1.0, generator=_gen(1))
    freq = mask.round().mean(0)
    assert_frequencies(freq, top2_inclusion_probability(p), N_DRAWS)
    # and not merely the one-draw probabilities p (the test can tell them apart)
    assert float((freq - p).abs().max()) > 0.1


def test_gumbel_topk_pair_frequencies_match_pair_probability() -> None:
    p = F.softmax(LOGITS, dim=-1)
    mask = gumbel_topk(LOGITS.expand(N_DRAWS, -1), 2, tau=1.0, generator=_gen(2))
    counts = pair_counts(mask)
    assert int(counts.sum()) == N_DRAWS
    assert_frequencies(counts / N_DRAWS, topk_pair_probability(p), N_DRAWS)


def test_gumbel_topk3_inclusion_matches_sampling_without_replacement() -> None:
    p = F.softmax(LOGITS, dim=-1)
    inclusion, _ = brute_force(p, 3)
    mask = gumbel_topk(LOGITS.expand(N_DRAWS, -1), 3, tau=1.0, generator=_gen(3))
    assert_frequencies(mask.round().mean(0), inclusion, N_DRAWS)


def test_gumbel_topk_frequencies_do_not_depend_on_tau() -> None:
    p = F.softmax(LOGITS, dim=-1)
    mask = gumbel_topk(LOGITS.expand(N_DRAWS, -1), 2, tau=0.1, generator=_gen(4))
    assert_frequencies(mask.round().mean(0), top2_inclusion_probability(p), N_DRAWS)


def test_gumbel_topk_is_invariant_to_a_logit_shift() -> None:
    # log softmax normalises: adding a constant to every logit draws the same sample
    a = gumbel_topk(LOGITS.expand(100, -1), 2, tau=1.0, generator=_gen(5))
    b = gumbel_topk((LOGITS + 7.0).expand(100, -1), 2, tau=1.0, generator=_gen(5))
    assert torch.equal(a.round(), b.round())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gumbel_topk_has_exactly_k_ones(k: int) -> None:
    logits = torch.randn(500, 5)
    mask = gumbel_topk(logits, k, tau=0.7)
    assert mask.shape == logits.shape
    hard = mask.round()
    torch.testing.assert_close(mask, hard, rtol=0, atol=1e-6)  # forward value is the hard 0/1 sample
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert bool((hard.sum(-1) == k).all())
    # k distinct indices per sample
    assert all(len(s) == k for s in mask_rows_to_index_sets(mask))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gumbel_topk_straight_through_gradient(k: int) -> None:
    logits = torch.tensor([0.5, -0.3, 1.2, 0.0, 0.1], requires_grad=True)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0])
    tau = 0.8
    (gumbel_topk(logits, k, tau, generator=_gen(6)) * w).sum().backward()
    grad = logits.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0
    # the gradient is that of the relaxed softmax((log softmax(logits) + g) / tau) with the same noise
    ref = logits.detach().clone().requires_grad_(True)
    g = gumbel(ref.shape, like=ref, generator=_gen(6))
    (F.softmax((F.log_softmax(ref, -1) + g) / tau, -1) * w).sum().backward()
    torch.testing.assert_close(grad, ref.grad)


@pytest.mark.parametrize("k", [0, -1, 6])
def test_gumbel_topk_rejects_k_out_of_range(k: int) -> None:
    with pytest.raises(ValueError):
        gumbel_topk(LOGITS, k, tau=1.0)


# -- Gumbel-Max over pairs (ROME-v1) --------------------------------------------------------------

def test_gumbel_max_pairs_frequencies_match_softmax_beta() -> None:
    n = 4
    beta = torch.tensor([1.0, -0.5, 0.3, 0.0, 1.5, -1.0])
    mask = gumbel_max_pairs(beta.expand(N_DRAWS, -1), n, tau=1.0, generator=_gen(7))
    assert mask.shape == (N_DRAWS, n)
    counts = pair_counts(mask)
    assert int(counts.sum()) == N_DRAWS  # every mask is one of the pairs
    assert_frequencies(counts / N_DRAWS, F.softmax(beta, -1), N_DRAWS)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_gumbel_max_pairs_masks_have_two_distinct_inputs(n: int) -> None:
    beta = torch.randn(300, len(pairs(n)))
    mask = gumbel_max_pairs(beta, n, tau=0.5)
    hard = mask.round()
    torch.testing.assert_close(mask, hard, rtol=0, atol=1e-6)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert bool((hard.sum(-1) == 2).all())
    assert all(len(s) == 2 for s in mask_rows_to_index_sets(mask))


def test_gumbel_max_pairs_gradient_reaches_beta() -> None:
    beta = torch.tensor([0.2, -0.1, 0.4, 0.0, 0.3, -0.2], requires_grad=True)
    w = torch.tensor([1.0, -1.0, 2.0, 0.5])
    (gumbel_max_pairs(beta, 4, tau=1.0) * w).sum().backward()
    assert beta.grad is not None and bool(torch.isfinite(beta.grad).all()) and float(beta.grad.abs().sum()) > 0


def test_gumbel_max_pairs_rejects_wrong_number_of_logits() -> None:
    with pytest.raises(ValueError):
        gumbel_max_pairs(torch.zeros(5), 4, tau=1.0)


# -- hard Gumbel-softmax (op sampling) --------------------------------------------------------------

def test_gumbel_softmax_st_forward_is_one_hot_of_index() -> None:
    logits = torch.randn(200, 7)
    hard, index = gumbel_softmax_st(logits, tau=2.0)
    torch.testing.assert_close(hard, F.one_hot(index, 7).float(), rtol=0, atol=1e-6)
    assert index.shape == (200,)


@pytest.mark.parametrize("tau", [0.1, 1.0, 10.0])
def test_gumbel_softmax_st_frequencies_match_softmax(tau: float) -> None:
    _, index = gumbel_softmax_st(LOGITS.expand(N_DRAWS, -1), tau, generator=_gen(8))
    freq = torch.bincount(index, minlength=5).double() / N_DRAWS
    assert_frequencies(freq, F.softmax(LOGITS, -1), N_DRAWS)


def test_gumbel_softmax_st_gradient_reaches_logits() -> None:
    logits = torch.tensor([0.1, -0.2, 0.3, 0.0], requires_grad=True)
    hard, index = gumbel_softmax_st(logits, tau=1.0)
    hard[index].backward()  # what an edge multiplies its op output by (GDAS hardwts[index])
    assert float(hard[index].detach()) == pytest.approx(1.0, abs=1e-6)
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())
    assert float(logits.grad.abs().sum()) > 0


def test_gumbel_softmax_st_masked_logits_never_chosen_and_no_nan() -> None:
    alpha = torch.tensor([1.0, 3.0, 0.5, -1.0, 2.0], requires_grad=True)
    masked_ops = torch.tensor([False, True, False, False, True])  # the two most likely ops are masked
    logits = alpha.masked_fill(masked_ops, float("-inf"))
    hard, index = gumbel_softmax_st(logits.expand(5000, -1), tau=0.5, generator=_gen(9))
    assert not bool(masked_ops[index].any())
    assert not bool(torch.isnan(hard).any())
    w = torch.randn(5)
    (hard * w).sum().backward()
    grad = alpha.grad
    assert grad is not None and bool(torch.isfinite(grad).all())
    assert bool((grad[masked_ops] == 0).all())
    assert float(grad[~masked_ops].abs().sum()) > 0
    # and the unmasked ops keep their renormalised probabilities
    freq = torch.bincount(index, minlength=5).double() / 5000
    assert_frequencies(freq[~masked_ops], F.softmax(alpha.detach()[~masked_ops], -1), 5000)


def test_gumbel_noise_is_finite() -> None:
    g = gumbel((200_000,), like=torch.zeros(1), generator=_gen(10))
    assert bool(torch.isfinite(g).all())
    # Gumbel(0, 1) has mean = Euler-Mascheroni constant and variance pi^2 / 6
    assert float(g.mean()) == pytest.approx(0.5772, abs=0.02)
    assert float(g.var()) == pytest.approx(torch.pi**2 / 6, rel=0.03)
