"""The DARTS-family search supernet (DARTS ``model_search.py`` structure) with mixed and sampled modes.

Two details of the layout are options, because the released search networks differ in them and on
small data the difference decides the outcome: xautodl's GDAS supernet
(``models/cell_searchs/search_model_gdas_nasnet.py``) puts a BN + ReLU (``lastact``) between the last
cell and the global pool (``head="bn_relu"``; DARTS: none, ``head="plain"``) and pools without a BN
after the pooling ops (``pool_bn=False``; DARTS's ``MixedOp`` adds one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spaces.base import CellArch, ChoiceShape, Mixed, Sampled
from spaces.darts import CELL_TYPES, EDGES, NODE_EDGES, STEPS, CellSpace, reduction_layers
from spaces.genotype import Genotype
from spaces.ops import FactorizedReduce, ReLUConvBN, build_op

#: the search network's head before the global pool: ``plain`` (DARTS ``model_search.py``: none) or
#: ``bn_relu`` (xautodl ``search_model_gdas_nasnet.py`` ``lastact``: BatchNorm2d + ReLU)
HEADS = ("plain", "bn_relu")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SearchEdge(nn.Module):
    """All candidate ops of one edge. ``partial = M > 1`` is PC-DARTS: the ops see 1/M of the channels,
    the rest bypass (max-pooled on a reduction edge), then a channel shuffle with M groups."""

    def __init__(self, op_names: tuple[str, ...], c: int, stride: int, partial: int = 1, pool_bn: bool = True):
        super().__init__()
        if c % partial:
            raise ValueError(f"{c} channels cannot be split into partial ratio M={partial}")
        self.partial = partial
        self.stride = stride
        self.ops = nn.ModuleList(build_op(name, c // partial, stride, affine=False, pool_bn=pool_bn)
                                 for name in op_names)

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.partial == 1:
            return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))
        c = x.shape[1] // self.partial
        head, tail = x[:, :c], x[:, c:]
        out = sum(w * op(head) for w, op in zip(weights, self.ops, strict=True))
        if self.stride != 1:
            tail = F.max_pool2d(tail, 2, 2)
        return channel_shuffle(torch.cat([out, tail], dim=1), self.partial)

    def forward_one(self, x: torch.Tensor, index: int, weight: torch.Tensor) -> torch.Tensor:
        return self.ops[index](x) * weight


class SearchCell(nn.Module):
    def __init__(self, space: CellSpace, cell_type: str, c_pp: int, c_p: int, c: int,
                 reduction_prev: bool, partial: int = 1, pool_bn: bool = True):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            SearchEdge(names, c, 2 if self.reduction and i < 2 else 1, partial, pool_bn)
            for names, (i, _) in zip(space.ops(cell_type), EDGES, strict=True)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, arch: CellArch) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        if isinstance(arch, Sampled):
            active = set(range(len(EDGES))) if arch.active is None else set(arch.active)
        for node in NODE_EDGES:
            terms = []
            for e in node:
                x = states[EDGES[e][0]]
                if isinstance(arch, Mixed):
                    out = self.edges[e].forward_mixed(x, arch.op_weights[e])
                    if arch.edge_weights is not None:
                        out = out * arch.edge_weights[e]
                elif e in active:
                    # fold the scalars first: one weighted copy of the op's output is saved for backward
                    w = arch.op_weight[e] if arch.edge_weight is None else arch.op_weight[e] * arch.edge_weight[e]
                    out = self.edges[e].forward_one(x, arch.op_index[e], w)
                else:
                    continue  # an unsampled edge is not computed at all
                terms.append(out)
            states.append(sum(terms))
        return torch.cat(states[-STEPS:], dim=1)


class SearchNetwork(nn.Module):
    """Stem, ``layers`` cells (reductions at layers//3 and 2*layers//3), head, global pool, classifier.

    ``forward(x, arch)`` takes ``arch = {"normal": CellArch, "reduce": CellArch}``, shared by all
    cells of a type as in DARTS. ``head`` and ``pool_bn``: see the module docstring.
    """

    def __init__(self, space: CellSpace, c: int = 16, num_classes: int = 10, layers: int = 8,
                 in_channels: int = 3, stem_multiplier: int = 3, partial: int = 1, stem: str = "cifar",
                 head: str = "plain", pool_bn: bool = True):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown search network head '{head}'; valid: {', '.join(HEADS)}")
        self.space = space
        c_curr = stem_multiplier * c
        if stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_curr))
        elif stem == "imagenet":  # three stride-2 convs, 224 -> 28 (PC-DARTS's ImageNet search stem)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_curr // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_curr // 2),
                nn.ReLU(inplace=True), nn.Conv2d(c_curr // 2, c_curr, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_curr), nn.ReLU(inplace=True),
                nn.Conv2d(c_curr, c_curr, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        else:
            raise ValueError(f"unknown stem '{stem}'; valid: cifar, imagenet")
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = reduction_layers(layers)
        for i in range(layers):
            cell_type = "reduce" if i in reductions else "normal"
            if cell_type == "reduce":
                c_curr *= 2
            self.cells.append(SearchCell(space, cell_type, c_pp, c_p, c_curr, reduction_prev, partial, pool_bn))
            reduction_prev = cell_type == "reduce"
            c_pp, c_p = c_p, STEPS * c_curr
        # an Identity for DARTS's plain head: no parameters, so its state dict keys are unchanged
        self.lastact = (nn.Sequential(nn.BatchNorm2d(c_p), nn.ReLU(inplace=False)) if head == "bn_relu"
                        else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self.shapes = {
            t: ChoiceShape(ops=space.ops(t), edge_src=tuple(i for i, _ in EDGES),
                           node_edges=tuple(tuple(n) for n in NODE_EDGES), in_degree=(2,) * STEPS)
            for t in CELL_TYPES
        }

    def forward(self, x: torch.Tensor, arch: dict[str, CellArch]) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, arch["reduce" if cell.reduction else "normal"])
        return self.classifier(self.pool(self.lastact(s1)).flatten(1))

    def genotype(self, selection: Selection) -> Genotype:
        return darts_genotype(self.shapes, selection)


Selection = dict[str, list[list[tuple[int, int]]]]
"""Per cell type, per node, the kept ``(edge, op index)`` pairs of a derived architecture."""


def darts_genotype(shapes: dict[str, ChoiceShape], selection: Selection) -> Genotype:
    """Turn a selection on a DARTS-space supernet into a :class:`~spaces.genotype.Genotype`."""
    cells = {
        t: [(shapes[t].ops[e][o], shapes[t].edge_src[e]) for node in selection[t] for e, o in node]
        for t in CELL_TYPES
    }
    concat = list(range(2, 2 + STEPS))
    return Genotype(cells["normal"], concat, cells["reduce"], concat)

