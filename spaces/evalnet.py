"""Evaluation networks built from a genotype (DARTS ``model.py`` semantics).

The networks follow the DARTS evaluation protocol: a stem, a stack of cells whose ops are taken from
the genotype (BN with ``affine=True``), reduction cells at ``layers // 3`` and ``2 * layers // 3``, an
optional auxiliary head after cell ``2 * layers // 3`` (training mode only), global average pooling
and a linear classifier. ``forward`` returns ``(logits, logits_aux)``; ``logits_aux`` is ``None`` in
evaluation mode or when the network has no auxiliary head.

Counting helpers follow the conventions of the published numbers: :func:`count_params` excludes the
auxiliary head, and :func:`count_macs` counts the multiply-adds of convolutions and fully connected
layers only (see :data:`MACS_INCLUDE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from spaces.darts import reduction_layers
from spaces.genotype import Genotype
from spaces.ops import OPS, FactorizedReduce, ReLUConvBN

#: Operations whose multiply-adds :func:`count_macs` includes. BatchNorm, pooling, ReLU, element-wise
#: additions and concatenations are *not* counted (the DARTS / mobile-setting convention).
MACS_INCLUDE: tuple[str, ...] = ("convolution", "fully connected (linear / matmul)")

#: Name of the auxiliary-head submodule; :func:`count_params` skips parameters under it.
AUX_NAME = "auxiliary_head"


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability ``drop_prob`` and rescale the survivors.

    Parameters
    ----------
    x : torch.Tensor
        Batch of feature maps ``(N, C, H, W)``.
    drop_prob : float
        Probability of dropping the path for one sample.

    Returns
    -------
    torch.Tensor
        ``x / keep_prob`` for kept samples, zeros for dropped ones (out of place).
    """
    if drop_prob <= 0.0:
        return x
    if drop_prob >= 1.0:
        return torch.zeros_like(x)
    keep_prob = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep_prob)
    return x * mask / keep_prob


class EvalCell(nn.Module):
    """One discrete DARTS cell.

    Parameters
    ----------
    pairs : sequence of (str, int)
        ``(op, input)`` pairs, two per intermediate node, in node order. Input ``0`` and ``1`` are
        the preprocessed outputs of the two previous cells, input ``k >= 2`` is intermediate node ``k``.
    concat : sequence of int
        Nodes whose outputs are concatenated (channel-wise) into the cell output.
    c_prev_prev, c_prev : int
        Channels of the outputs of the cells two and one steps back.
    c : int
        Channels of every node of this cell.
    reduction : bool
        Whether ops on the cell inputs have stride 2.
    reduction_prev : bool
        Whether the previous cell was a reduction cell (``s0`` then needs halving).
    """

    def __init__(self, pairs: Sequence[tuple[str, int]], concat: Sequence[int], c_prev_prev: int,
                 c_prev: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        if not pairs or len(pairs) % 2:
            raise ValueError(f"a cell needs a positive even number of (op, input) pairs, got {len(pairs)}")
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c, affine=True) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=True))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=True)
        self._steps = len(pairs) // 2
        self._inputs = [int(i) for _, i in pairs]
        for k, i in enumerate(self._inputs):
            if not 0 <= i < 2 + k // 2:
                raise ValueError(f"pair {k} takes input {i}, which is not a predecessor of its node")
        self._concat = [int(i) for i in concat]
        if not self._concat or any(not 0 <= i < 2 + self._steps for i in self._concat):
            raise ValueError(f"concat {list(concat)} must name nodes in 0..{1 + self._steps}")
        self.multiplier = len(self._concat)
        self.ops = nn.ModuleList(
            OPS[name](c, 2 if reduction and i < 2 else 1, True) for name, i in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """Cell output from the two previous outputs; drop path on non-identity ops in training."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self._steps):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self._inputs[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self._concat], dim=1)


def _to_two_by_two(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """DARTS's fixed pooling when the map is large enough, then adaptive pooling to 2 x 2.

    On the map size DARTS assumes (8 x 8 on CIFAR, 7 x 7 on ImageNet) the fixed pool already gives
    2 x 2 and the adaptive step is the identity; smaller maps (e.g. 4 x 4 from 16 x 16 images) skip
    the fixed pool instead of crashing, larger ones are brought down to 2 x 2 as well.
    """
    if x.shape[-1] >= 5 and x.shape[-2] >= 5:
        x = pool(x)
    if x.shape[-2:] != (2, 2):
        x = nn.functional.adaptive_avg_pool2d(x, 2)
    return x


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS auxiliary classifier for CIFAR (designed for an 8 x 8 input map).

    ReLU, AvgPool 5 / stride 3, 1 x 1 conv to 128, BN, ReLU, 2 x 2 conv to 768, BN, ReLU, Linear.
    Maps smaller than 5 x 5 skip the fixed pool and any map not pooled to 2 x 2 is adaptively pooled
    to 2 x 2, so the head also works on small inputs (e.g. 16 x 16 images give a 4 x 4 map here).
    """

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(_to_two_by_two(self.relu(x), self.pool))
        return self.classifier(x.flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """DARTS auxiliary classifier for ImageNet (7 x 7 input map at 224 x 224 images).

    ReLU, AvgPool 5 / stride 2, 1 x 1 conv to 128, BN, ReLU, 2 x 2 conv to 768, ReLU, Linear (no BN
    after the 2 x 2 conv, as in the DARTS experiments). Small maps are handled as in
    :class:`AuxiliaryHeadCIFAR`.
    """

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(_to_two_by_two(self.relu(x), self.pool))
        return self.classifier(x.flatten(1))


class _EvalNetwork(nn.Module):
    """Shared cell stack, auxiliary hook and classifier of the evaluation networks."""

    drop_path_prob: float

    def _build_cells(self, genotype: Genotype, c: int, layers: int, c_prev_prev: int, c_prev: int,
                     reduction_prev: bool) -> int:
        """Create ``self.cells``; returns the channels entering the auxiliary head (0 if none)."""
        self._aux_index = 2 * layers // 3
        reductions = reduction_layers(layers)
        c_curr = c
        c_aux = 0
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
                cell = EvalCell(genotype.reduce, genotype.reduce_concat, c_prev_prev, c_prev, c_curr,
                                True, reduction_prev)
            else:
                cell = EvalCell(genotype.normal, genotype.normal_concat, c_prev_prev, c_prev, c_curr,
                                False, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self._aux_index:
                c_aux = c_prev
        self._c_final = c_prev
        return c_aux

    def _run_cells(self, s0: torch.Tensor, s1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_index and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1)), logits_aux


class NetworkCIFAR(_EvalNetwork):
    """DARTS evaluation network for 32 x 32 images (CIFAR, SVHN; also smaller inputs).

    Parameters
    ----------
    C : int
        Initial channels (36 in the DARTS protocol).
    num_classes : int
        Number of classes.
    layers : int
        Number of cells (20 in the DARTS protocol).
    auxiliary : bool
        Build the auxiliary head after cell ``2 * layers // 3`` (used only in training mode).
    genotype : Genotype
        The discrete architecture.
    in_channels : int, optional
        Image channels.
    drop_path_prob : float, optional
        Initial drop-path probability; set ``model.drop_path_prob`` per epoch.
    """

    def __init__(self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype,
                 in_channels: int = 3, drop_path_prob: float = 0.0):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.drop_path_prob = float(drop_path_prob)
        self._layers = layers
        c_stem = 3 * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_stem),
        )
        c_aux = self._build_cells(genotype, C, layers, c_stem, c_stem, False)
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self._c_final, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(logits, logits_aux)``; ``logits_aux`` is ``None`` unless training with aux."""
        s = self.stem(x)
        return self._run_cells(s, s)


class NetworkImageNet(_EvalNetwork):
    """DARTS evaluation network for 224 x 224 ImageNet (mobile setting).

    Parameters
    ----------
    C : int
        Initial channels (48 in the DARTS protocol).
    num_classes : int
        Number of classes.
    layers : int
        Number of cells (14 in the DARTS protocol).
    auxiliary : bool
        Build the auxiliary head after cell ``2 * layers // 3`` (used only in training mode).
    genotype : Genotype
        The discrete architecture.
    drop_path_prob : float, optional
        Initial drop-path probability; set ``model.drop_path_prob`` per epoch.

    Notes
    -----
    Two stride-2 stems bring 224 x 224 down to 28 x 28; the final 7 x 7 average pool of DARTS is an
    adaptive average pool here (identical at 224 x 224).
    """

    def __init__(self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype: Genotype,
                 drop_path_prob: float = 0.0):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.drop_path_prob = float(drop_path_prob)
        self._layers = layers
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        c_aux = self._build_cells(genotype, C, layers, C, C, True)
        self.auxiliary_head = AuxiliaryHeadImageNet(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self._c_final, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(logits, logits_aux)``; ``logits_aux`` is ``None`` unless training with aux."""
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        return self._run_cells(s0, s1)


def count_params(model: nn.Module) -> int:
    """Number of parameters, excluding any module under the name ``auxiliary_head``.

    Published counts (DARTS ``count_parameters_in_MB``) exclude the auxiliary head.
    """
    return sum(
        p.numel() for name, p in model.named_parameters()
        if AUX_NAME not in name.split(".")
    )


def count_macs(model: nn.Module, input_size: tuple[int, int, int, int]) -> int:
    """Multiply-adds of one forward pass in evaluation mode on a zero input of ``input_size``.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (reported FLOPs / 2), which
    includes convolutions (depthwise and grouped ones by their real cost) and fully connected layers
    / matrix multiplies; BatchNorm, pooling, ReLU, additions and concatenations are not counted (see
    :data:`MACS_INCLUDE`). The auxiliary head is inactive in evaluation mode and so excluded. The
    count is for the whole batch ``input_size[0]``: pass a batch of 1 for the per-image count.

    Parameters
    ----------
    model : nn.Module
        The network; its training mode is restored afterwards.
    input_size : tuple of int
        ``(N, C, H, W)``.

    Returns
    -------
    int
        Multiply-adds.
    """
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(*input_size, device=device, dtype=dtype))
        return int(counter.get_total_flops()) // 2
    finally:
        model.train(was_training)


__all__ = [
    "AUX_NAME",
    "MACS_INCLUDE",
    "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet",
    "EvalCell",
    "NetworkCIFAR",
    "NetworkImageNet",
    "count_macs",
    "count_params",
    "drop_path",
]
