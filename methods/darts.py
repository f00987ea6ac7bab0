"""DARTS (first order): every op on every edge, weighted by ``softmax(alpha)`` (Liu et al., 2019).

Where ops sit on nodes (NAS-Bench-1Shot1) each node's inputs are weighted by ``softmax(beta)`` over
its candidate edges (nasbench-1shot1's DARTS), and derivation keeps per node the ``in_degree`` inputs
of largest ``beta`` and the argmax op.
"""

from __future__ import annotations

import torch.nn.functional as F

from methods.base import SearchMethod, best_ops, node_edge_weights, register_method, select_top_edges
from spaces.base import CellArch, Mixed
from spaces.supernet import Selection


@register_method("darts")
class DARTS(SearchMethod):
    """Mixed mode; derivation keeps per node the 2 edges whose best non-``none`` op weighs most."""

    def op_weights(self, cell_type: str):
        return F.softmax(self.op_logits(cell_type), dim=-1)

    def edge_weights(self, cell_type: str):
        if cell_type not in self.beta:
            return None
        return node_edge_weights(self.beta[cell_type], self.shapes[cell_type], lambda b: F.softmax(b, dim=-1))

    def sample(self) -> dict[str, CellArch]:
        return {t: Mixed(self.op_weights(t), self.edge_weights(t)) for t in self.shapes}

    def selection(self) -> Selection:
        out = {}
        for t, shape in self.shapes.items():
            weights = self.op_weights(t).detach()
            score, index = best_ops(weights, shape)
            edge_w = self.edge_weights(t)
            if edge_w is not None:  # ops on nodes: an edge carries no op, so its own weight ranks it
                score = score * edge_w.detach() if shape.ops_on_edges else edge_w.detach()
            out[t] = select_top_edges(score, index, shape)
        return out
