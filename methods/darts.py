"""DARTS (first order): every op on every edge, weighted by ``softmax(alpha)`` (Liu et al., 2019)."""

from __future__ import annotations

import torch.nn.functional as F

from methods.base import SearchMethod, best_ops, register_method, select_top_edges
from spaces.base import CellArch, Mixed
from spaces.supernet import Selection


@register_method("darts")
class DARTS(SearchMethod):
    """Mixed mode; derivation keeps per node the 2 edges whose best non-``none`` op weighs most."""

    def op_weights(self, cell_type: str):
        return F.softmax(self.op_logits(cell_type), dim=-1)

    def edge_weights(self, cell_type: str):
        return None

    def sample(self) -> dict[str, CellArch]:
        return {t: Mixed(self.op_weights(t), self.edge_weights(t)) for t in self.shapes}

    def selection(self) -> Selection:
        out = {}
        for t, shape in self.shapes.items():
            weights = self.op_weights(t).detach()
            best, index = best_ops(weights, shape)
            edge_w = self.edge_weights(t)
            score = best if edge_w is None else best * edge_w.detach()
            out[t] = select_top_edges(score, index, shape)
        return out
