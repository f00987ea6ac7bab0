"""What the benchmark suite measures with: shapes, saved bytes per graph, and the fixed sampled subnet.

Saved bytes are counted with :class:`harness.evidence.profile.SavedTensorCounter` (the counter behind
``harness profile``): bytes autograd keeps for backward per forward graph, each storage once,
parameters excluded. A step's figure is its largest graph (2K graphs for ROME, freed one by one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import methods
from harness.evidence.profile import SavedTensorCounter, saved_bytes_distribution
from methods.base import SearchHParams, SearchMethod, build_method, method_class
from spaces.base import Sampled
from spaces.darts import EDGES, NODE_EDGES, SPACES, STEPS, CellSpace, reduction_layers
from spaces.ops import FactorizedReduce, ReLUConvBN, build_op
from spaces.registry import build_supernet

METHODS = sorted(methods.METHODS)


@dataclass(frozen=True)
class Shape:
    """One benchmark shape of the search supernet (CIFAR-like input: 3 channels, 10 classes)."""

    name: str
    batch: int
    channels: int
    layers: int
    image_size: int
    rounds: int  # timed rounds: few on CPU at the Table 7 shape

    def batch_data(self, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, 3, self.image_size, self.image_size, generator=g)
        return x, torch.randint(0, 10, (self.batch,), generator=g)


#: smoke: the ``smoke`` budget's supernet; table7: ROME Table 7 (batch 64, 16 channels, 8 cells, CIFAR)
SHAPES = {
    "smoke": Shape("smoke", batch=64, channels=8, layers=5, image_size=16, rounds=3),
    "table7": Shape("table7", batch=64, channels=16, layers=8, image_size=32, rounds=1),
}


def make_method(name: str, shape: Shape, space: str = "s0", options: dict[str, Any] | None = None,
                seed: int = 0) -> SearchMethod:
    """A method on a fresh supernet of ``shape`` with the method's default options (ROME: K = 7)."""
    torch.manual_seed(seed)
    cls = method_class(name)
    opts = cls.resolve_options(options)
    net = build_supernet(space, c=shape.channels, layers=shape.layers, num_classes=10, in_channels=3,
                         **cls.supernet_kwargs(opts))
    method = build_method(name, net, SearchHParams(epochs=50), opts)
    method.begin_epoch(25, 50)  # mid-search, as harness profile: PC-DARTS updates alpha only after 30 %
    return method


def k_of(method: SearchMethod) -> int:
    """Samples per update (K for ROME, 1 for the others)."""
    return int(method.options.get("k", 1))


# -- bytes saved for backward (harness.evidence.profile's counter: per graph, each storage once) ------------------

def saved_bytes_per_pass(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> list[int]:
    """Bytes saved for backward by each forward graph that ``fn()`` builds and runs backward through;
    storages of ``exclude`` (parameters) are not counted."""
    counter = SavedTensorCounter({t.untyped_storage().data_ptr() for t in exclude})
    with counter.hooks():
        fn()
    return counter.per_graph


def method_tensors(method: SearchMethod) -> list[torch.Tensor]:
    """Weights and architecture parameters (not activations): excluded from saved bytes."""
    return [*method.weight_parameters(), *method.arch_parameters()]


# -- the sampled subnet built alone ------------------------------------------------------------------

class FixedCell(nn.Module):
    """A search cell holding only the sampled ops of the active edges: no mixing, no sample weights."""

    def __init__(self, space: CellSpace, cell_type: str, op_index: list[int], active: list[int],
                 c_pp: int, c_p: int, c: int, reduction_prev: bool):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        names = space.ops(cell_type)
        self.active = sorted(active)
        self.ops = nn.ModuleDict({
            str(e): build_op(names[e][op_index[e]], c, 2 if self.reduction and EDGES[e][0] < 2 else 1, affine=False)
            for e in self.active
        })

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in NODE_EDGES:
            states.append(sum(self.ops[str(e)](states[EDGES[e][0]]) for e in node if e in self.active))
        return torch.cat(states[-STEPS:], dim=1)


class FixedSubnet(nn.Module):
    """The supernet's stem, cells and classifier with exactly the ops of one :class:`Sampled` per cell
    type: same channels, strides, BN ``affine=False`` and op modules, as an ordinary fixed network."""

    def __init__(self, space: str, arch: dict[str, Sampled], c: int, layers: int, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3):
        super().__init__()
        cells = SPACES[space]
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = reduction_layers(layers)
        for i in range(layers):
            cell_type = "reduce" if i in reductions else "normal"
            if cell_type == "reduce":
                c_curr *= 2
            a = arch[cell_type]
            active = list(range(len(EDGES))) if a.active is None else list(a.active)
            self.cells.append(FixedCell(cells, cell_type, list(a.op_index), active, c_pp, c_p, c_curr,
                                        reduction_prev))
            reduction_prev = cell_type == "reduce"
            c_pp, c_p = c_p, STEPS * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


def train_pass(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *args: Any) -> None:
    """One forward and backward (all parameters), as in a weight step."""
    F.cross_entropy(net(x, *args), y).backward()


def seconds(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- what the suite found, for the summary at the end of the session ----------------------------------

@dataclass
class Target:
    """One performance target of the README, measured as a ratio."""

    name: str
    shape: str
    measured: float
    limit: float
    detail: str = ""
    informational: bool = False  # reported beside a target, not a target itself

    @property
    def met(self) -> bool:
        return self.measured <= self.limit

    @property
    def verdict(self) -> str:
        if self.informational:
            return "(info)"
        return "met" if self.met else f"MISSED by {100 * (self.measured / self.limit - 1):.0f} %"


#: filled by the tests, printed by ``conftest.pytest_terminal_summary``
TARGETS: list[Target] = []
#: (method, shape name) -> saved bytes of one search step (largest graph), shared between tests
STEP_BYTES: dict[tuple[str, str], int] = {}


def step_saved_bytes(name: str, shape: Shape) -> int:
    """Saved bytes of one search step of ``name`` in S0 at ``shape`` (measured once per session)."""
    key = (name, shape.name)
    if key not in STEP_BYTES:
        method = make_method(name, shape)
        train, val = shape.batch_data(0), shape.batch_data(1)
        STEP_BYTES[key] = max(saved_bytes_per_pass(lambda: method.step(train, val), method_tensors(method)))
    return STEP_BYTES[key]


#: (method, shape name) -> saved-bytes distribution over sampled subnets (harness profile's function)
SUBNET_BYTES: dict[tuple[str, str], dict[str, Any]] = {}


def subnet_saved_bytes(name: str, shape: Shape, n: int = 20, seed: int = 0) -> dict[str, Any]:
    """Saved bytes over ``n`` subnets sampled from one seeded generator, S0 at ``shape``: the function
    behind ``harness profile`` (:func:`harness.evidence.profile.saved_bytes_distribution`), measured once per
    session."""
    key = (name, shape.name)
    if key not in SUBNET_BYTES:
        method = make_method(name, shape)
        SUBNET_BYTES[key] = saved_bytes_distribution(method, shape.batch_data(0), n, seed)
    return SUBNET_BYTES[key]
