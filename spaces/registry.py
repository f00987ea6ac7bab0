"""Space registry: every searchable space by name, and how to build its supernet."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import nn

from spaces.darts import SPACES as DARTS_SPACES
from spaces.evalnet import NetworkCIFAR, NetworkImageNet
from spaces.genotype import Genotype
from spaces.supernet import SearchNetwork

SupernetBuilder = Callable[..., nn.Module]

#: name -> builder(c=, layers=, num_classes=, in_channels=, **method_kwargs)
SUPERNETS: dict[str, SupernetBuilder] = {
    name: functools.partial(SearchNetwork, space) for name, space in DARTS_SPACES.items()
}


def register_space(name: str, builder: SupernetBuilder) -> None:
    SUPERNETS[name] = builder


def build_supernet(name: str, **kwargs: Any) -> nn.Module:
    try:
        builder = SUPERNETS[name]
    except KeyError:
        raise ValueError(f"unknown space '{name}'; valid: {', '.join(sorted(SUPERNETS))}") from None
    return builder(**kwargs)


def describe(name: str) -> dict[str, Any]:
    """Per cell type, the candidate ops of every decision (edge in the DARTS spaces)."""
    if name in DARTS_SPACES:
        return DARTS_SPACES[name].to_dict()
    net = build_supernet(name, c=4, layers=1, num_classes=2)
    return {t: [list(ops) for ops in shape.ops] for t, shape in net.shapes.items()}


def build_eval_network(genotype: Any, *, network: str, c: int, layers: int, num_classes: int,
                       in_channels: int = 3, auxiliary: bool = False, drop_path: float = 0.0) -> nn.Module:
    """The evaluation network of a derived architecture, trained from scratch.

    DARTS genotypes build ``NetworkCIFAR`` (``network="cifar"``) or the ImageNet mobile network;
    other genotype types (NAS-Bench-1Shot1) build their own through ``genotype.build_network``.
    """
    if not isinstance(genotype, Genotype):
        return genotype.build_network(c=c, layers=layers, num_classes=num_classes, in_channels=in_channels)
    if network == "imagenet":
        return NetworkImageNet(c, num_classes, layers, auxiliary, genotype, drop_path_prob=drop_path)
    if network == "cifar":
        return NetworkCIFAR(c, num_classes, layers, auxiliary, genotype, in_channels=in_channels,
                            drop_path_prob=drop_path)
    raise ValueError(f"unknown evaluation network '{network}'; valid: cifar, imagenet")


import spaces.nasbench  # noqa: E402,F401  (registers the NAS-Bench-1Shot1 spaces; it imports register_space)
