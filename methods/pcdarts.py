"""PC-DARTS: partial channel connections and edge normalisation (Xu et al., 2020, Sec. 3.2-3.3).

Each mixed op sees 1/M of the channels (the rest bypass, max-pooled on reduction edges, then a
channel shuffle with M groups); ``beta`` per edge, normalised by a softmax over each node's incoming
edges, scales each edge's output and, at derivation, the edge's op weights. Architecture updates
start after the first 30 % of the epochs (15 of 50 in PC-DARTS's ``train_search.py``), scaled for
shorter budgets (``search.arch_warmup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from methods.base import option, register_method
from methods.darts import DARTS


@register_method("pcdarts")
class PCDARTS(DARTS):
    # PC-DARTS Sec. 4.1 / ``train_search.py``: SGD lr 0.1, Adam 6e-4, architecture frozen for 15 of 50 epochs
    search_defaults = {"w_lr": 0.1, "a_lr": 6e-4, "arch_warmup": 0.3}

    @dataclass(frozen=True)
    class Options:
        partial: int = option(4, "partial channel ratio M (PC-DARTS Sec. 3.2; default 4)", label="M",
                              check=lambda v: None if v >= 1 else "the partial ratio M must be >= 1")

    @classmethod
    def check_spec(cls, options: dict[str, Any], channels: int) -> str | None:
        """Each mixed op sees ``channels // M`` channels: ``M`` must divide the supernet's channels."""
        m = options["partial"]
        return None if channels % m == 0 else (f"search.channels={channels} is not divisible by the partial "
                                              f"ratio options.partial={m}; use channels that M divides")

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

