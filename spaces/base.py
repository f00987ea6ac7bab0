"""What a search method sees of a supernet: the choices of each cell type, and what one forward runs.

A supernet runs in two modes (ROME Sec. 3; DARTS Eq. 2 for the mixed one):

* :class:`Mixed`: every op on every edge, weighted (DARTS, PC-DARTS);
* :class:`Sampled`: only the sampled edges and the one sampled op of each run (GDAS, ROME).
  An op that was not sampled is not called at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChoiceShape:
    """The discrete choices of one cell type.

    Attributes
    ----------
    ops:
        Per op decision, its candidate op names. In the DARTS spaces decision ``e`` is edge ``e``;
        in NAS-Bench-1Shot1 spaces decision ``n`` is intermediate node ``n`` (``ops_on_edges=False``).
    edge_src:
        Per edge, the node it comes from.
    node_edges:
        Per node that chooses its inputs, the indices of its candidate incoming edges.
    in_degree:
        Per such node, how many incoming edges the final cell keeps (Eq. 1: 2 in the DARTS spaces).
    ops_on_edges:
        True when op decision ``e`` sits on edge ``e`` (DARTS); False when ops sit on nodes.
    """

    ops: tuple[tuple[str, ...], ...]
    edge_src: tuple[int, ...]
    node_edges: tuple[tuple[int, ...], ...]
    in_degree: tuple[int, ...]
    ops_on_edges: bool = True

    @property
    def n_ops(self) -> int:
        return len(self.ops[0])

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)


@dataclass
class Mixed:
    """Mixed-mode forward of one cell type: all ops weighted by ``op_weights`` (decisions x ops);
    each edge's output multiplied by ``edge_weights`` (edges) when given."""

    op_weights: torch.Tensor
    edge_weights: torch.Tensor | None = None


@dataclass
class Sampled:
    """Sampled-mode forward of one cell type.

    ``op_index[d]`` is the one op of decision ``d`` that runs, scaled by ``op_weight[d]`` (a
    straight-through hard weight, 1 in the forward pass). ``active`` lists the edges that run;
    ``None`` means every edge (GDAS). ``edge_weight`` (edges), when given, scales each active edge
    (straight-through 0/1 mask of topology sampling; GDAS where ops sit on nodes: soft input weights).
    """

    op_index: list[int]
    op_weight: torch.Tensor
    active: list[int] | None = None
    edge_weight: torch.Tensor | None = None


CellArch = Mixed | Sampled
