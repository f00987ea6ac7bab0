"""PC-DARTS: partial channel connections and edge normalisation (Xu et al., 2020; REFERENCE.md s. 4).

Each mixed op sees 1/M of the channels (the rest bypass, max-pooled on reduction edges, then a
channel shuffle with M groups); ``beta`` per edge, normalised by a softmax over each node's incoming
edges, scales each edge's output and, at derivation, the edge's op weights. Architecture updates
start after the first 30 % of the epochs (15 of 50 in PC-DARTS), scaled for shorter budgets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from methods.base import register_method
from methods.darts import DARTS


@register_method("pcdarts")
class PCDARTS(DARTS):
    option_defaults = {"partial": 4}
    hparam_overrides = {"w_lr": 0.1, "a_lr": 6e-4}
    warmup_fraction = 0.3

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if options["partial"] < 1:
            raise ValueError(f"the partial ratio M must be >= 1, got {options['partial']}")

    @classmethod
    def supernet_kwargs(cls, options: dict[str, Any]) -> dict[str, Any]:
        return {"partial": options["partial"]}

    def init_beta(self, device: torch.device) -> dict[str, torch.nn.Parameter]:
        return {t: torch.nn.Parameter(1e-3 * torch.randn(s.n_edges, device=device)) for t, s in self.shapes.items()}

    def edge_weights(self, cell_type: str) -> torch.Tensor:
        """Softmax of ``beta`` over the incoming edges of each node."""
        beta = self.beta[cell_type]
        out = torch.zeros_like(beta)
        for edges in self.shapes[cell_type].node_edges:
            idx = torch.tensor(edges, device=beta.device)
            out = out.index_copy(0, idx, F.softmax(beta[idx], dim=-1))
        return out

    def arch_update_enabled(self) -> bool:
        return self.epoch >= int(self.warmup_fraction * self.epochs)
