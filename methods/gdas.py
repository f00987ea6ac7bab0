"""GDAS: one op per edge by hard straight-through Gumbel-softmax, every edge active (Dong & Yang, 2019).

Per edge ``index = argmax(log softmax(alpha) + g)`` and the edge computes only
``op[index](x) * hardwts[index]`` (GDAS Eq. 3-5; xautodl ``models/cell_searchs/search_model_gdas.py``);
tau decays linearly per epoch.

Where ops sit on nodes (NAS-Bench-1Shot1) every edge stays active and each node's inputs are weighted by
a *soft* Gumbel-softmax of ``beta`` over its candidate edges, as nasbench-1shot1's GDAS does (hard
weights there "very quickly gave exploding gradients"); derivation keeps per node the ``in_degree``
inputs of largest ``beta`` and the argmax op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.base import SearchMethod, best_ops, node_edge_weights, register_method, select_top_edges
from methods.sampling import gumbel, gumbel_softmax_st
from spaces.base import CellArch, Sampled
from spaces.supernet import Selection


@register_method("gdas")
class GDAS(SearchMethod):
    arch_first = False  # GDAS updates the weights first, then the architecture

    def sample_ops(self, cell_type: str) -> tuple[list[int], object]:
        """Eq. 2-3 for every decision at once: the chosen op indices and their hard ST weights."""
        hard, index = gumbel_softmax_st(self.op_logits(cell_type), self.tau)
        return index.tolist(), hard.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def soft_gumbel(self, beta: torch.Tensor) -> torch.Tensor:
        """``softmax((log softmax(beta) + g) / tau)``: relaxed, not hard, input weights."""
        return F.softmax((F.log_softmax(beta, dim=-1) + gumbel(beta.shape, like=beta)) / self.tau, dim=-1)

    def sample(self) -> dict[str, CellArch]:
        out = {}
        for t, shape in self.shapes.items():
            index, weight = self.sample_ops(t)
            edge_weight = None if shape.ops_on_edges else node_edge_weights(self.beta[t], shape, self.soft_gumbel)
            out[t] = Sampled(index, weight, None, edge_weight)
        return out

    def edge_probabilities(self, cell_type: str) -> torch.Tensor | None:
        """Ops on nodes: ``softmax(beta)`` over each node's inputs (the distribution the relaxed weights
        are drawn around; 1 for fixed parents). DARTS spaces: none, every edge is always active."""
        if cell_type not in self.beta:
            return None
        return node_edge_weights(self.beta[cell_type], self.shapes[cell_type], lambda b: F.softmax(b, dim=-1))

    def selection(self) -> Selection:
        """GDAS's rule: per node the top 2 ``(edge, op)`` pairs over all non-``none`` op weights
        (two may share an edge). Ops on nodes: the top ``in_degree`` edges by ``beta``, the argmax op."""
        out = {}
        for t, shape in self.shapes.items():
            if not shape.ops_on_edges:
                _, index = best_ops(self.alpha[t].detach(), shape)
                out[t] = select_top_edges(self.beta[t], index, shape)
                continue
            probs = F.softmax(self.alpha[t].detach(), dim=-1).cpu()
            nodes = []
            for edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
                cands = [(float(probs[e, o]), e, o) for e in edges
                         for o, name in enumerate(shape.ops[e]) if name != "none"]
                cands.sort(key=lambda c: (-c[0], c[1], c[2]))
                nodes.append([(e, o) for _, e, o in cands[:k]])
            out[t] = nodes
        return out
