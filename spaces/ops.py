"""Candidate operations of the DARTS-family spaces (DARTS ``operations.py`` semantics).

``OPS[name](C, stride, affine)`` builds one operation that maps ``C`` channels to ``C`` channels and
divides the spatial size by ``stride``. During search BN is ``affine=False`` (DARTS), and a BN
follows each pooling op there unless the supernet is built without it (:func:`build_op`'s ``pool_bn``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k x k (dilation d), pointwise 1 x 1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked dilation-1 DilConvs, the first with the stride (DARTS separable conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1 x 1 stride-2 convs on x and x shifted by one pixel."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        y = x[:, :, 1:, 1:]
        if y.shape[-1] != x.shape[-1] or y.shape[-2] != x.shape[-2]:
            y = nn.functional.pad(y, (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(y)], dim=1))


class Noise(nn.Module):
    """R-DARTS S4 ``noise``: i.i.d. N(0, 1) of the output's shape, independent of the input.

    No gradient reaches the input (the noise does not depend on it).
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x[:, :, :: self.stride, :: self.stride].shape
        return torch.randn(shape, device=x.device, dtype=x.dtype)


def pool_op(kind: str, c: int, stride: int, bn: bool) -> nn.Module:
    """A 3 x 3 max or average pool, with a BN (``affine=False``) after it when ``bn``.

    DARTS's search ``MixedOp`` (``cnn/model_search.py``) adds that BN to each pooling op, so a
    parameterless op's output is scaled like the convolutions' outputs; xautodl's search cells
    (``models/cell_operations.py`` ``POOLING``) pool without it; evaluation networks use the bare pool.
    """
    pool = (nn.MaxPool2d(3, stride=stride, padding=1) if kind == "max"
            else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
    return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if bn else pool


def _pool(kind: str) -> Callable[[int, int, bool], nn.Module]:
    # DARTS: a BN after pooling during search (affine=False); evaluation nets use the bare pool.
    return lambda c, stride, affine: pool_op(kind, c, stride, bn=not affine)


OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda c, stride, affine: Zero(stride),
    "noise": lambda c, stride, affine: Noise(stride),
    "max_pool_3x3": _pool("max"),
    "avg_pool_3x3": _pool("avg"),
    "skip_connect": lambda c, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}


POOLS: dict[str, str] = {"max_pool_3x3": "max", "avg_pool_3x3": "avg"}


def build_op(name: str, c: int, stride: int, affine: bool, *, pool_bn: bool | None = None) -> nn.Module:
    """``OPS[name](c, stride, affine)`` with a one-line error that lists the valid names.

    ``pool_bn`` overrides whether a pooling op gets a BN after it (``None``: DARTS's rule, a BN
    exactly when ``affine`` is False, i.e. during search); other ops ignore it.
    """
    if pool_bn is not None and name in POOLS:
        return pool_op(POOLS[name], c, stride, bn=pool_bn)
    try:
        return OPS[name](c, stride, affine)
    except KeyError:
        raise ValueError(f"unknown operation '{name}'; valid: {', '.join(sorted(OPS))}") from None
