"""NAS-Bench-1Shot1 search spaces 1-3 (Zela et al., 2020; automl/nasbench-1shot1
``nasbench_analysis/search_spaces/``): ops sit on nodes.

A cell is a NAS-Bench-101 cell: node 0 is the cell input, nodes ``1..n`` are intermediate nodes
(choice blocks) and node ``n + 1`` is the output. Every intermediate node sums its (weighted) inputs,
then applies its one op; edges from the cell input pass through a 1x1 ConvBnRelu projection per
destination, as in NAS-Bench-101. The output concatenates the intermediate nodes and adds the
projected input. Each node keeps a fixed number of parents (``NBSpace.parents``); at most 9 edges.

Spaces ``nb1s1``..``nb1s3`` carry ROME's op set (Fig. 4-5: maxpool3x3, conv3x3-bn-relu, skip-connect);
``nb1s1-orig``..``nb1s3-orig`` the original one (maxpool3x3, conv3x3-bn-relu, conv1x1-bn-relu).

Choices seen by a method (:class:`~spaces.base.ChoiceShape`, ``ops_on_edges=False``): one op decision
per intermediate node, one edge from every earlier node into every intermediate node and into the
output, ``node_edges``/``in_degree`` per intermediate node and then the output. A node whose parents
are fixed (node 1 everywhere, node 2 of space 1) has ``in_degree`` equal to its number of candidate
edges, so every sampler and every derivation keeps all of them.

Supernet modes:

* :class:`~spaces.base.Mixed`: every op of every node weighted by ``op_weights``; each edge's tensor
  scaled by ``edge_weights`` (``None``: every edge weighs 1, a plain NAS-Bench-101 sum).
* :class:`~spaces.base.Sampled`: only the active edges and the one sampled op of each node run; a node
  that does not reach the output through active edges (a loose end) is not computed at all.

Derived architectures are :class:`NASBenchGenotype`: a 7 x 7 NAS-Bench-101 adjacency matrix (spaces 1
and 2 padded with an unused dummy node at index 5, as nasbench-1shot1 does), its ops list, the pruned
spec of ``nasbench_pytorch.ModelSpec`` and the NAS-Bench-101 graph hash. skip-connect has hash label
3 (outside NAS-Bench-101's ``[conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3]``): such hashes are not in
NAS-Bench-101 and those cells are always trained.

NAS-Bench-101 lookup: set ``HARNESS_NB101_TABLE`` to a JSON file mapping hash -> mean test accuracy
(a fraction in [0, 1], as NAS-Bench-101 stores it; e.g. exported once from its tfrecord) and cells of
the original op set are looked up instead of trained (:meth:`NASBenchGenotype.tabulated_eval`).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spaces.base import CellArch, ChoiceShape, Mixed
from spaces.darts import reduction_layers
from spaces.registry import register_space

OPS_ROME = ("maxpool3x3", "conv3x3-bn-relu", "skip-connect")
OPS_ORIGINAL = ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu")
#: NAS-Bench-101's label order for the graph hash; skip-connect gets the next label
NB101_LABELS = {"conv3x3-bn-relu": 0, "conv1x1-bn-relu": 1, "maxpool3x3": 2, "skip-connect": 3}
PARAMETERLESS = frozenset({"skip-connect", "maxpool3x3"})
CELL = "cell"
INPUT, OUTPUT = "input", "output"
DUMMY_OP = "conv1x1-bn-relu"  # nasbench-1shot1's op for the unused padding node (pruned anyway)
NB101_VERTICES = 7
MAX_EDGES = 9
NB101_TABLE_ENV = "HARNESS_NB101_TABLE"


@dataclass(frozen=True)
class NBSpace:
    """One NAS-Bench-1Shot1 space: parents per node ``1..n`` then the output, and the op set."""

    name: str
    number: int
    parents: tuple[int, ...]
    ops: tuple[str, ...]

    @property
    def n_nodes(self) -> int:
        """Number of intermediate nodes (choice blocks)."""
        return len(self.parents) - 1

    @property
    def edges(self) -> list[tuple[int, int]]:
        """``(src, dst)`` of every candidate edge, grouped by destination ``1..n + 1``."""
        return [(src, dst) for dst in range(1, self.n_nodes + 2) for src in range(dst)]

    def shape(self) -> ChoiceShape:
        edges = self.edges
        node_edges = tuple(tuple(e for e, (_, d) in enumerate(edges) if d == dst)
                           for dst in range(1, self.n_nodes + 2))
        return ChoiceShape(ops=(self.ops,) * self.n_nodes, edge_src=tuple(s for s, _ in edges),
                           node_edges=node_edges, in_degree=self.parents, ops_on_edges=False)


#: nasbench-1shot1 ``search_space_{1,2,3}.py``
PARENTS = {1: (1, 2, 2, 2, 2), 2: (1, 1, 2, 2, 3), 3: (1, 1, 1, 2, 2, 2)}
SPACES: dict[str, NBSpace] = {}
for _n, _parents in PARENTS.items():
    if sum(_parents) > MAX_EDGES:
        raise ValueError(f"space {_n} has {sum(_parents)} edges; a NAS-Bench-101 cell has at most {MAX_EDGES}")
    SPACES[f"nb1s{_n}"] = NBSpace(f"nb1s{_n}", _n, _parents, OPS_ROME)
    SPACES[f"nb1s{_n}-orig"] = NBSpace(f"nb1s{_n}-orig", _n, _parents, OPS_ORIGINAL)


# -- search supernet ----------------------------------------------------------------------------------

class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, affine: bool = False):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine), nn.ReLU())


def search_op(name: str, c: int) -> nn.Module:
    """A node op at stride 1 (search BN without affine parameters, as in DARTS)."""
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, 1, 1)
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(c, c, 3)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(c, c, 1)
    if name == "skip-connect":
        return nn.Identity()
    raise ValueError(f"unknown NAS-Bench-1Shot1 op '{name}'; valid: {', '.join(NB101_LABELS)}")


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SearchNode(nn.Module):
    """The candidate ops of one node. ``partial = M > 1`` is PC-DARTS: the ops see 1/M of the
    channels, the rest bypass, then a channel shuffle with M groups."""

    def __init__(self, op_names: tuple[str, ...], c: int, partial: int = 1):
        super().__init__()
        if c % partial:
            raise ValueError(f"{c} channels cannot be split into partial ratio M={partial}")
        self.partial = partial
        self.ops = nn.ModuleList(search_op(name, c // partial) for name in op_names)

    def _partial(self, x: torch.Tensor, fn: Any) -> torch.Tensor:
        if self.partial == 1:
            return fn(x)
        c = x.shape[1] // self.partial
        return _channel_shuffle(torch.cat([fn(x[:, :c]), x[:, c:]], dim=1), self.partial)

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self._partial(x, lambda h: sum(w * op(h) for w, op in zip(weights, self.ops, strict=True)))

    def forward_one(self, x: torch.Tensor, index: int, weight: torch.Tensor) -> torch.Tensor:
        return self._partial(x, lambda h: self.ops[index](h) * weight)


class SearchCell(nn.Module):
    """One NAS-Bench-101 cell with every candidate edge and op (nasbench-1shot1 ``model_search.Cell``)."""

    def __init__(self, space: NBSpace, c_in: int, c: int, partial: int = 1):
        super().__init__()
        self.space, self.c = space, c
        self.shape = space.shape()
        n = space.n_nodes
        self.proj = nn.ModuleList(ConvBnRelu(c_in, c, 1) for _ in range(n))  # input -> node j
        self.proj_out = ConvBnRelu(c_in, c * n, 1)  # input -> output
        self.nodes = nn.ModuleList(SearchNode(space.ops, c, partial) for _ in range(n))

    def _needed(self, active: set[int]) -> set[int]:
        """Intermediate nodes that reach the output through active edges (loose ends are skipped)."""
        shape, needed = self.shape, set()
        for node in range(self.space.n_nodes + 1, 0, -1):  # output first: edges only go forward
            if node == self.space.n_nodes + 1 or node in needed:
                needed |= {shape.edge_src[e] for e in shape.node_edges[node - 1] if e in active}
        return needed - {0}

    def forward(self, s0: torch.Tensor, arch: CellArch) -> torch.Tensor:
        shape, n = self.shape, self.space.n_nodes
        if isinstance(arch, Mixed):
            active, weight = set(range(shape.n_edges)), arch.edge_weights
        else:
            active = set(range(shape.n_edges)) if arch.active is None else set(arch.active)
            weight = arch.edge_weight
        needed = self._needed(active)
        states: dict[int, torch.Tensor] = {}
        for node in range(1, n + 1):
            if node not in needed:
                continue  # a loose end (or unsampled node input) is not computed at all
            terms = []
            for e in shape.node_edges[node - 1]:
                if e not in active:
                    continue  # an unsampled edge is not computed at all
                src = shape.edge_src[e]
                x = self.proj[node - 1](s0) if src == 0 else states[src]
                terms.append(x if weight is None else x * weight[e])
            if not terms:
                raise ValueError(f"node {node} has no active incoming edge")
            x = sum(terms)
            d = node - 1  # op decision of this node
            states[node] = (self.nodes[d].forward_mixed(x, arch.op_weights[d]) if isinstance(arch, Mixed)
                            else self.nodes[d].forward_one(x, arch.op_index[d], arch.op_weight[d]))
        zeros = s0.new_zeros(s0.shape[0], self.c, *s0.shape[2:])
        slots, skip = [zeros] * n, None
        for e in shape.node_edges[n]:
            if e not in active:
                continue
            src = shape.edge_src[e]
            x = self.proj_out(s0) if src == 0 else states[src]
            x = x if weight is None else x * weight[e]
            if src == 0:
                skip = x
            else:
                slots[src - 1] = x
        out = torch.cat(slots, dim=1)
        return out if skip is None else out + skip


class NASBenchSearchNetwork(nn.Module):
    """Stem (3x3 ConvBnRelu to ``c``), ``layers`` cells with a 2x2 max-pool and doubled channels before
    cells ``layers // 3`` and ``2 * layers // 3`` (nasbench-1shot1's 9-layer search model: 3 stacks of 3),
    global average pool, linear classifier. One cell type, ``"cell"``, shared by every cell.
    """

    def __init__(self, space: NBSpace, c: int = 16, num_classes: int = 10, layers: int = 9,
                 in_channels: int = 3, partial: int = 1):
        super().__init__()
        self.space = space
        self.stem = ConvBnRelu(in_channels, c, 3, affine=True)
        self.downsample_before = {i for i in reduction_layers(layers) if i > 0}
        self.cells = nn.ModuleList()
        c_in, c_curr = c, c
        for i in range(layers):
            if i in self.downsample_before:
                c_curr *= 2
            self.cells.append(SearchCell(space, c_in, c_curr, partial))
            c_in = c_curr * space.n_nodes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        self.shapes = {CELL: space.shape()}

    def forward(self, x: torch.Tensor, arch: dict[str, CellArch]) -> torch.Tensor:
        x = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in self.downsample_before:
                x = F.max_pool2d(x, 2, 2)
            x = cell(x, arch[CELL])
        return self.classifier(self.pool(x).flatten(1))

    def genotype(self, selection: dict[str, list[list[tuple[int, int]]]]) -> NASBenchGenotype:
        """Per node the kept ``(edge, op)`` pairs (the op is the node's own; -1 at the output)."""
        shape, nodes = self.shapes[CELL], selection[CELL]
        ops = tuple(self.space.ops[nodes[d][0][1]] for d in range(self.space.n_nodes))
        parents = tuple(tuple(sorted(shape.edge_src[e] for e, _ in node)) for node in nodes)
        return NASBenchGenotype(self.space.name, ops, parents)


def _builder(space: NBSpace):
    def build(c: int = 16, layers: int = 9, num_classes: int = 10, in_channels: int = 3,
              partial: int = 1) -> NASBenchSearchNetwork:
        return NASBenchSearchNetwork(space, c=c, num_classes=num_classes, layers=layers,
                                     in_channels=in_channels, partial=partial)
    return build


for _name, _space in SPACES.items():
    register_space(_name, _builder(_space))


# -- the derived architecture ------------------------------------------------------------------------

@dataclass(frozen=True)
class NASBenchGenotype:
    """A derived NAS-Bench-1Shot1 cell: per intermediate node its op, per node ``1..n`` and the output
    its sorted parents (node indices of the search cell, 0 = input)."""

    space: str
    ops: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        space = SPACES[self.space]
        if len(self.ops) != space.n_nodes or len(self.parents) != space.n_nodes + 1:
            raise ValueError(f"{self.space} has {space.n_nodes} nodes and an output: got {self}")
        for node, (ps, k) in enumerate(zip(self.parents, space.parents, strict=True), start=1):
            if len(set(ps)) != k or not all(0 <= p < node for p in ps):
                raise ValueError(f"node {node} of {self.space} needs {k} distinct earlier parents, got {ps}")
        bad = set(self.ops) - set(space.ops)
        if bad:
            raise ValueError(f"ops {sorted(bad)} are not in {self.space} ({', '.join(space.ops)})")

    # -- NAS-Bench-101 form ----------------------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """7 x 7 adjacency matrix; spaces 1-2 get an unused dummy node at index 5 (nasbench-1shot1)."""
        size = len(self.ops) + 2
        mat = np.zeros((size, size), dtype=int)
        for node, ps in enumerate(self.parents, start=1):
            mat[list(ps), node] = 1
        if size < NB101_VERTICES:
            mat = np.insert(np.insert(mat, size - 1, 0, axis=1), size - 1, 0, axis=0)
        return mat

    @property
    def node_ops(self) -> list[str]:
        """``[input, ops..., output]`` matching :attr:`matrix` (the dummy node included)."""
        dummy = [DUMMY_OP] * (NB101_VERTICES - 2 - len(self.ops))
        return [INPUT, *self.ops, *dummy, OUTPUT]

    def spec(self) -> Any:
        """``nasbench_pytorch.model.ModelSpec``: pruned of vertices not between input and output."""
        from nasbench_pytorch.model import ModelSpec

        return ModelSpec(self.matrix, self.node_ops)

    @property
    def hash(self) -> str:
        """NAS-Bench-101 graph hash of the pruned spec (labels -1 input, -2 output, else
        :data:`NB101_LABELS`; skip-connect's 3 never occurs in NAS-Bench-101)."""
        from nasbench_pytorch.model.graph_util import hash_module

        spec = self.spec()
        labeling = [-1] + [NB101_LABELS[op] for op in spec.ops[1:-1]] + [-2]
        return hash_module(np.asarray(spec.matrix), labeling)

    @property
    def in_nasbench101(self) -> bool:
        """Whether NAS-Bench-101 can hold this cell (its pruned ops avoid skip-connect)."""
        return "skip-connect" not in self.spec().ops

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec()
        return {"space": self.space, "matrix": self.matrix.tolist(), "ops": self.node_ops,
                "parents": [list(p) for p in self.parents], "pruned_matrix": np.asarray(spec.matrix).tolist(),
                "pruned_ops": list(spec.ops), "hash": self.hash, "in_nasbench101": self.in_nasbench101}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NASBenchGenotype:
        space = SPACES[data["space"]]
        return cls(data["space"], tuple(data["ops"][1:1 + space.n_nodes]),
                   tuple(tuple(int(p) for p in ps) for ps in data["parents"]))

    # -- collapse indicators (Fig. 4-5) ------------------------------------------------------------------
    def skip_normal(self) -> int:
        """skip-connects over the cell's intermediate nodes (loose ends included, as drawn in Fig. 4-5)."""
        return sum(op == "skip-connect" for op in self.ops)

    def parameterless_normal(self) -> int:
        """Parameterless ops (skip-connect, maxpool3x3) over the cell's intermediate nodes."""
        return sum(op in PARAMETERLESS for op in self.ops)

    # -- evaluation ---------------------------------------------------------------------------------------
    def build_network(self, c: int, layers: int, num_classes: int, in_channels: int = 3) -> nn.Module:
        """nasbench-pytorch's ``Network``: stem to ``c`` channels, ``min(3, layers)`` stacks of
        ``layers // stacks`` cells (9 -> NAS-Bench-101's 3 x 3), max-pool and doubled channels between
        stacks. skip-connect is provided beside its op map for the construction only."""
        from nasbench_pytorch.model import Network

        stacks = min(3, layers)
        with _op_map_with_skip_connect():
            net = Network(self.spec(), num_labels=num_classes, in_channels=in_channels, stem_out_channels=c,
                          num_stacks=stacks, num_modules_per_stack=layers // stacks)
        _drop_placeholders(net)
        return net

    def tabulated_eval(self) -> tuple[dict[str, Any] | None, str]:
        """NAS-Bench-101's result for this cell when a table is given (``HARNESS_NB101_TABLE``), else
        ``None``; and a note saying which, for the log and the result."""
        if not self.in_nasbench101:
            return None, "cell uses skip-connect, not in NAS-Bench-101: trained"
        path = os.environ.get(NB101_TABLE_ENV)
        if not path:
            return None, f"no NAS-Bench-101 table ({NB101_TABLE_ENV} unset): trained"
        acc = lookup(self.hash, path)
        if acc is None:
            return None, f"hash {self.hash} not in NAS-Bench-101 table {path}: trained"
        return ({"test_acc": 100.0 * acc, "test_error": 100.0 * (1.0 - acc), "source": "nasbench101-table"},
                f"NAS-Bench-101 table {path}: mean test accuracy {acc:.4f} looked up, not trained")


def lookup(hash_: str, table_path: str | Path) -> float | None:
    """Mean test accuracy (fraction) of a NAS-Bench-101 hash in a JSON ``{hash: accuracy}`` table."""
    path = Path(table_path)
    try:
        table = _read_table(str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        raise ValueError(f"cannot read NAS-Bench-101 table {path}: {exc.strerror}") from None
    value = table.get(hash_)
    if value is None:
        return None
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"NAS-Bench-101 table {path}: accuracy of {hash_} must be a fraction in [0, 1], got {value}")
    return float(value)


@functools.lru_cache(maxsize=4)
def _read_table(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        table = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"NAS-Bench-101 table {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(table, dict):
        raise ValueError(f"NAS-Bench-101 table {path} must be a JSON object mapping hash -> test accuracy")
    return table


class SkipConnect(nn.Module):
    """Identity with nasbench-pytorch's op signature ``(in_channels, out_channels)``."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f"skip-connect keeps the channels, got {in_channels} -> {out_channels}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


_OP_MAP_LOCK = threading.Lock()


@contextmanager
def _op_map_with_skip_connect() -> Iterator[None]:
    """``Cell`` looks its ops up in ``nasbench_pytorch.model.model.OP_MAP`` while it is built; swap in a
    copy that also has skip-connect for that scope only (the installed package is never edited)."""
    import nasbench_pytorch.model.model as nb_model

    with _OP_MAP_LOCK:
        original = nb_model.OP_MAP
        nb_model.OP_MAP = {**original, "skip-connect": SkipConnect}
        try:
            yield
        finally:
            nb_model.OP_MAP = original


def _drop_placeholders(net: nn.Module) -> None:
    """nasbench-pytorch fills unused slots with ``Placeholder`` modules that hold an unused scalar
    parameter; swap them for ``nn.Identity`` so that parameter counts are the network's own."""
    from nasbench_pytorch.model.model import Cell, Placeholder

    for cell in net.modules():
        if isinstance(cell, Cell):
            for mods in (cell.input_op, cell.vertex_op):
                for i, mod in enumerate(mods):
                    if isinstance(mod, Placeholder):
                        mods[i] = nn.Identity()
            cell.last_inop = cell.input_op[len(cell.input_op) - 1]
