"""The DARTS cell spaces: S0 (DARTS without ``none``) and R-DARTS S1-S4, as declarative tables.

A cell has 2 input nodes (0, 1) and 4 intermediate nodes (2..5); edge ``e`` runs from node ``i`` to
node ``j`` in DARTS order: edges 0-1 enter node 2, 2-4 node 3, 5-8 node 4, 9-13 node 5. Each space
lists, per cell type, the candidate ops of every edge (S1 differs per edge and per cell type).
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS = 4
IN_DEGREE = 2
CELL_TYPES = ("normal", "reduce")


def reduction_layers(layers: int) -> set[int]:
    """Where a DARTS network of ``layers`` cells halves the resolution: cells ``layers // 3`` and
    ``2 * layers // 3`` (search supernet, evaluation network, NAS-Bench-1Shot1 stacks)."""
    return {layers // 3, 2 * layers // 3}


def edge_endpoints(steps: int = STEPS) -> list[tuple[int, int]]:
    """``[(i, j), ...]`` for every edge, in DARTS order."""
    return [(i, j) for j in range(2, 2 + steps) for i in range(j)]


def node_edges(steps: int = STEPS) -> list[list[int]]:
    """Per intermediate node, the indices of its incoming edges."""
    out: list[list[int]] = []
    start = 0
    for j in range(2, 2 + steps):
        out.append(list(range(start, start + j)))
        start += j
    return out


EDGES = edge_endpoints()
NODE_EDGES = node_edges()
N_EDGES = len(EDGES)  # 14


@dataclass(frozen=True)
class CellSpace:
    """One space: the candidate op names of each edge, per cell type."""

    name: str
    normal: tuple[tuple[str, ...], ...]
    reduce: tuple[tuple[str, ...], ...]
    description: str = ""

    def __post_init__(self) -> None:
        for cell_type in CELL_TYPES:
            edges = getattr(self, cell_type)
            if len(edges) != N_EDGES:
                raise ValueError(f"space {self.name}: {cell_type} cell needs {N_EDGES} edges, got {len(edges)}")
            if len({len(ops) for ops in edges}) != 1:
                raise ValueError(f"space {self.name}: every edge of a cell must offer the same number of ops")

    def ops(self, cell_type: str) -> tuple[tuple[str, ...], ...]:
        return getattr(self, cell_type)

    @property
    def n_ops(self) -> int:
        return len(self.normal[0])

    def to_dict(self) -> dict[str, list[list[str]]]:
        return {t: [list(ops) for ops in self.ops(t)] for t in CELL_TYPES}


def _same(ops: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(ops for _ in range(N_EDGES))


_S0 = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")
DARTS_OPS = ("none", *_S0)

_ABBR = {"skip": "skip_connect", "sep3": "sep_conv_3x3", "dil3": "dil_conv_3x3", "dil5": "dil_conv_5x5",
         "max": "max_pool_3x3", "avg": "avg_pool_3x3"}


def _edges(spec: str) -> tuple[tuple[str, ...], ...]:
    """Parse 'skip,dil3 skip,dil5 ...' (R-DARTS ``spaces.py`` order) into per-edge op tuples."""
    return tuple(tuple(_ABBR[a] for a in edge.split(",")) for edge in spec.split())


SPACES: dict[str, CellSpace] = {
    "s0": CellSpace("s0", _same(_S0), _same(_S0), "DARTS space without 'none' (ROME Sec. 4.1)"),
    "s1": CellSpace(
        "s1",
        normal=_edges("skip,dil3 skip,dil5 skip,dil5 skip,sep3 skip,dil3 max,skip skip,sep3 skip,sep3 "
                      "skip,dil3 skip,sep3 max,skip skip,dil3 dil3,dil5 dil3,dil5"),
        reduce=_edges("max,avg max,dil3 max,avg max,avg skip,dil5 max,avg max,sep3 skip,dil3 skip,dil5 "
                      "max,avg max,avg skip,dil5 skip,dil5 skip,dil5"),
        description="R-DARTS S1: pre-optimised per-edge pairs of ops",
    ),
    "s2": CellSpace("s2", _same(("skip_connect", "sep_conv_3x3")), _same(("skip_connect", "sep_conv_3x3")),
                    "R-DARTS S2: {skip_connect, sep_conv_3x3}"),
    "s3": CellSpace("s3", _same(("none", "skip_connect", "sep_conv_3x3")),
                    _same(("none", "skip_connect", "sep_conv_3x3")),
                    "R-DARTS S3: {none, skip_connect, sep_conv_3x3}"),
    "s4": CellSpace("s4", _same(("noise", "sep_conv_3x3")), _same(("noise", "sep_conv_3x3")),
                    "R-DARTS S4: {noise, sep_conv_3x3}"),
}
