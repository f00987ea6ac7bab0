"""Sampling functions of single-path differentiable NAS (ROME Sec. 3.3-3.5).

All samplers return *straight-through* tensors: their forward value is the hard (0/1) sample and
their gradient is that of the relaxed Gumbel-softmax, so the architecture parameters receive
gradients although only the sampled ops and edges are executed.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import torch
import torch.nn.functional as F


def gumbel(shape: torch.Size | tuple[int, ...], *, like: torch.Tensor,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel(0, 1) noise ``g = -log(-log(eps))``, ``eps ~ U(0, 1)`` (footnote 3); never inf or nan."""
    eps = torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log(-torch.log(eps.clamp(tiny, 1.0 - 1e-7)))


def gumbel_softmax_st(logits: torch.Tensor, tau: float, *,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard Gumbel-softmax over the last dimension (Eq. 2-3).

    ``soft = softmax((log_softmax(logits) + g) / tau)``, ``index = argmax soft``; returns
    ``(one_hot(index) - soft.detach() + soft, index)``: one-hot forward, relaxed gradient.
    """
    perturbed = F.log_softmax(logits, dim=-1) + gumbel(logits.shape, like=logits, generator=generator)
    soft = F.softmax(perturbed / tau, dim=-1)
    index = perturbed.argmax(dim=-1)
    hard = F.one_hot(index, logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft, index


def gumbel_topk(logits: torch.Tensor, k: int, tau: float, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-Top-k over the last dimension (Eq. 7-8 with k = 2).

    Ranks ``log softmax(logits) + g`` and keeps the top ``k``; this equals sampling ``k`` items
    without replacement from ``softmax(logits)`` (Sec. 3.5). Returns a straight-through mask with
    exactly ``k`` ones along the last dimension; its gradient is that of
    ``softmax((log softmax(logits) + g) / tau)`` (Eq. 7).
    """
    n = logits.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"gumbel_topk needs 1 <= k <= {n}, got k={k}")
    perturbed = F.log_softmax(logits, dim=-1) + gumbel(logits.shape, like=logits, generator=generator)
    soft = F.softmax(perturbed / tau, dim=-1)
    top = perturbed.topk(k, dim=-1).indices
    hard = torch.zeros_like(soft).scatter(-1, top, 1.0)
    return hard - soft.detach() + soft


@cache
def pairs(n: int) -> tuple[tuple[int, int], ...]:
    """The ``n (n - 1) / 2`` unordered pairs ``(i, k)``, ``i < k < n``, of a node's predecessors (v1)."""
    return tuple(combinations(range(n), 2))


@cache
def _incidence(n: int) -> torch.Tensor:
    """``P[p, i] = 1`` if pair ``p`` contains predecessor ``i`` (Eq. 6 as a matrix)."""
    mat = torch.zeros(len(pairs(n)), n)
    for p, (i, k) in enumerate(pairs(n)):
        mat[p, i] = mat[p, k] = 1.0
    return mat


def gumbel_max_pairs(pair_logits: torch.Tensor, n: int, tau: float, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """ROME-v1 edge sampling (Eq. 4-6): Gumbel-Max over the pairs of ``n`` predecessors.

    ``pair_logits`` holds ``beta_j^{(i,k)}`` in the order of :func:`pairs`. Returns the
    straight-through edge mask ``B_{., j}`` of length ``n``, ``B_i = sum_k I^{(i,k)}`` (Eq. 6):
    exactly two ones in the forward pass.
    """
    if pair_logits.shape[-1] != len(pairs(n)):
        raise ValueError(f"{n} predecessors have {len(pairs(n))} pairs, got {pair_logits.shape[-1]} logits")
    one_hot, _ = gumbel_softmax_st(pair_logits, tau, generator=generator)
    return one_hot @ _incidence(n).to(one_hot)


def topk_pair_probability(p: torch.Tensor) -> torch.Tensor:
    """Probability of each unordered pair under sampling 2 without replacement from ``p``.

    ``P({i, k}) = p_i p_k / (1 - p_i) + p_k p_i / (1 - p_k)``, in the order of :func:`pairs`.
    """
    out = [p[i] * p[k] / (1 - p[i]) + p[k] * p[i] / (1 - p[k]) for i, k in pairs(p.shape[-1])]
    return torch.stack(out)


def top2_inclusion_probability(p: torch.Tensor) -> torch.Tensor:
    """Closed form of Sec. 3.5: ``P(e_i kept) = p_i + sum_{m != i} p_m p_i / (1 - p_m)``."""
    ratio = p / (1 - p)
    return p + p * (ratio.sum() - ratio)


def topk_inclusion_probability(p: torch.Tensor, k: int) -> torch.Tensor:
    """``P(i among the k kept)`` when ``k`` items are drawn without replacement from ``p`` (what
    Gumbel-Top-k samples, Sec. 3.5). ``k = 2``: the closed form :func:`top2_inclusion_probability`;
    other ``k`` (NAS-Bench-1Shot1 nodes keep 1-3 inputs of at most 5): every ordered draw enumerated.
    The values sum to ``k``."""
    n = p.shape[-1]
    if k >= n:
        return torch.ones_like(p)
    if k == 2:
        return top2_inclusion_probability(p)
    probs = p.detach().double().cpu().tolist()
    out = [0.0] * n

    def draw(taken: list[int], prob: float, left: float) -> None:
        if len(taken) == k:
            for i in taken:
                out[i] += prob
            return
        for i in range(n):
            if i not in taken and probs[i] > 0:
                draw([*taken, i], prob * probs[i] / left, left - probs[i])

    draw([], 1.0, sum(probs))
    return torch.tensor(out, dtype=p.dtype, device=p.device)
