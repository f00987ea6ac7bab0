"""ROME: topology disentanglement (TD) plus gradient accumulation (GA) (ROME Sec. 3.3-3.6, Alg. 1).

* TD: edge parameters ``beta`` beside op parameters ``alpha``; every intermediate node gets exactly
  ``in_degree`` (2) sampled incoming edges (Eq. 1): per pair of predecessors with Gumbel-Max (v1,
  Eq. 4-6) or per edge with Gumbel-Top2 (v2, Eq. 7-8). Only sampled edges run, one op each (Eq. 3).
* GA: K samples for the architecture step with averaged gradients (Eq. 11) and K new samples for the
  weight step with summed gradients (Eq. 12).
* Ablation toggles (Table 6): ``td``, ``ga_theta``, ``ga_alpha``. Without TD every edge is active as in
  GDAS, and with neither TD nor GA the method is GDAS. Options of one method, not copies of it.

With TD, ``none`` is never sampled or derived (S3): a sampled edge must carry an op so that the
in-degree stays 2 (ROME Sec. 3.3, Eq. 1).

Where ops sit on nodes (NAS-Bench-1Shot1) a node keeps ``in_degree`` inputs (1, 2 or 3): v2 samples them
with Gumbel-Top-k, v1 with Gumbel-Max over the node's k-subsets of inputs (pairs when k = 2, Eq. 4-6);
a node whose parents are fixed keeps them all. Each intermediate node runs its one sampled op.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F

from methods.base import kept, option, register_method
from methods.gdas import GDAS
from methods.sampling import (
    gumbel_max_pairs,
    gumbel_softmax_st,
    gumbel_topk,
    pairs,
    topk_inclusion_probability,
    topk_pair_probability,
)
from spaces.base import CellArch, Sampled
from spaces.supernet import Selection


class ROME(GDAS):
    version: int = 2
    arch_first = True  # Algorithm 1: architecture step (lines 3-7), then weight step (lines 8-12)
    search_defaults = {"w_lr": 0.05}  # Sec. 4.1: SGD momentum 0.9, initial lr 0.05; Adam 3e-4

    @dataclass(frozen=True)
    class Options:
        k: int = option(7, "samples K per update (Eq. 11-12)", label="K",
                        check=lambda v: None if v >= 1 else "K must be a positive number of samples (>= 1)")
        td: bool = option(True, "topology disentanglement (Sec. 3.3, Table 6)", label="TD")
        ga_theta: bool = option(True, "gradient accumulation for the weights (Eq. 12, Table 6)", label="GA-theta")
        ga_alpha: bool = option(True, "gradient accumulation for alpha/beta (Eq. 11, Table 6)", label="GA-alpha")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        k = self.options["k"]
        self.k_arch = k if self.options["ga_alpha"] else 1
        self.k_weight = k if self.options["ga_theta"] else 1

    @classmethod
    def disentangles_topology(cls, options: dict[str, Any]) -> bool:
        return bool(cls.resolve_options(options)["td"])

    @property
    def allow_none(self) -> bool:  # type: ignore[override]
        return not self.options["td"]

    def init_beta(self, device: torch.device) -> dict[str, torch.nn.Parameter]:
        if not self.options["td"]:
            return super().init_beta(device)
        out = {}
        for t, shape in self.shapes.items():
            if self.version == 2:
                out[t] = torch.nn.Parameter(1e-3 * torch.randn(shape.n_edges, device=device))
            else:
                for n, (edges, k) in enumerate(zip(shape.node_edges, shape.in_degree, strict=True)):
                    out[f"{t}_{n}"] = torch.nn.Parameter(1e-3 * torch.randn(len(subsets(len(edges), k)),
                                                                            device=device))
        return out

    def node_mask(self, cell_type: str, node: int) -> torch.Tensor:
        """Straight-through 0/1 mask over the node's candidate edges, ``in_degree`` ones."""
        shape = self.shapes[cell_type]
        edges, k = shape.node_edges[node], shape.in_degree[node]
        if self.version == 2:
            return gumbel_topk(self.beta[cell_type][list(edges)], k, self.tau)
        if k == 2:
            return gumbel_max_pairs(self.beta[f"{cell_type}_{node}"], len(edges), self.tau)
        one_hot, _ = gumbel_softmax_st(self.beta[f"{cell_type}_{node}"], self.tau)  # Eq. 4-6 over k-subsets
        return one_hot @ _incidence(len(edges), k).to(one_hot)

    def sample(self) -> dict[str, CellArch]:
        if not self.options["td"]:
            return super().sample()
        out = {}
        for t, shape in self.shapes.items():
            index, weight = self.sample_ops(t)
            edge_weight = torch.zeros(shape.n_edges, device=weight.device, dtype=weight.dtype)
            for n, edges in enumerate(shape.node_edges):
                idx = torch.tensor(edges, device=weight.device)
                edge_weight = edge_weight.index_copy(0, idx, self.node_mask(t, n))
            active = (edge_weight.detach() > 0.5).nonzero().flatten().tolist()
            out[t] = Sampled(index, weight, active, edge_weight)
        return out

    def edge_probabilities(self, cell_type: str) -> torch.Tensor | None:
        """Per edge, the probability that the sampler keeps it; each node's values sum to its in-degree.

        v2: ``P(i in top-k)`` of Gumbel-Top-k over ``p = softmax(beta)`` of the node's edges, for k = 2
        ``p_i + sum_{j != i} p_j p_i / (1 - p_j)`` (Sec. 3.5). v1: the pair softmax (Eq. 4-5) summed
        over the pairs holding the edge (Eq. 6). Without TD: GDAS's."""
        if not self.options["td"]:
            return super().edge_probabilities(cell_type)
        shape = self.shapes[cell_type]
        ref = self.alpha[cell_type]
        out = torch.ones(shape.n_edges, device=ref.device, dtype=ref.dtype)
        for n, (edges, k) in enumerate(zip(shape.node_edges, shape.in_degree, strict=True)):
            if self.version == 2:
                prob = topk_inclusion_probability(F.softmax(self.beta[cell_type][list(edges)], dim=-1), k)
            else:
                pair_p = F.softmax(self.beta[f"{cell_type}_{n}"], dim=-1)
                prob = pair_p @ _incidence(len(edges), k).to(pair_p)
            out = out.index_copy(0, torch.tensor(edges, device=out.device), prob.to(out))
        return out

    def edge_pair(self, cell_type: str, node: int) -> tuple[int, ...]:
        """The most likely incoming edges of a node under ``p(z; beta)`` (Alg. 1 line 14)."""
        edges = self.shapes[cell_type].node_edges[node]
        k = self.shapes[cell_type].in_degree[node]
        if self.version == 1:
            best = int(self.beta[f"{cell_type}_{node}"].detach().argmax())
            return tuple(edges[i] for i in subsets(len(edges), k)[best])
        p = F.softmax(self.beta[cell_type].detach()[list(edges)], dim=-1)
        if k == 2:  # argmax of the exact pair probability of sampling without replacement
            best = int(topk_pair_probability(p).argmax())
            return tuple(edges[i] for i in pairs(len(edges))[best])
        return tuple(edges[i] for i in sorted(p.topk(k).indices.tolist()))

    def selection(self) -> Selection:
        """``z* = argmax_z p(z; alpha, beta)``: per node the most likely edges, on each the most
        likely non-``none`` op (Eq. 9 factorises, so the argmax is taken factor by factor)."""
        if not self.options["td"]:
            return super().selection()
        out = {}
        for t, shape in self.shapes.items():
            logits = self.alpha[t].detach().masked_fill(
                torch.tensor([[n == "none" for n in ops] for ops in shape.ops], device=self.alpha[t].device),
                float("-inf"))
            index = logits.argmax(-1).tolist()
            out[t] = [kept(shape, n, self.edge_pair(t, n), index) for n in range(len(shape.node_edges))]
        return out


def subsets(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    """The k-subsets of a node's ``n`` candidate inputs, in :func:`~methods.sampling.pairs` order for k = 2."""
    return pairs(n) if k == 2 else tuple(combinations(range(n), k))


@cache
def _incidence(n: int, k: int) -> torch.Tensor:
    """``P[s, i] = 1`` if subset ``s`` contains input ``i`` (Eq. 6 for k-subsets)."""
    mat = torch.zeros(len(subsets(n, k)), n)
    for s, members in enumerate(subsets(n, k)):
        mat[s, list(members)] = 1.0
    return mat


@register_method("rome-v1")
class ROMEv1(ROME):
    """ROME-v1: Gumbel-Max over pairs of predecessors (Eq. 4-6)."""

    version = 1


@register_method("rome-v2")
class ROMEv2(ROME):
    """ROME-v2 (the paper's default): Gumbel-Top2 over edges (Eq. 7-8)."""

    version = 2
