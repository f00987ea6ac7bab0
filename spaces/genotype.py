"""Genotypes: the discrete architecture a search derives (DARTS cell format).

A genotype is a plain named tuple, as in DARTS: ``normal`` and ``reduce`` are lists of
``(op, input)`` pairs, two per intermediate node, in node order; ``*_concat`` name the nodes whose
outputs the cell concatenates.
"""

from __future__ import annotations

import json
import numbers
from collections import namedtuple
from pathlib import Path
from typing import Any


class Genotype(namedtuple("Genotype", "normal normal_concat reduce reduce_concat")):
    """A DARTS cell pair; prints as readable Python like DARTS's ``genotypes.py``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def skip_normal(self) -> int:
        """Number of skip-connections in the normal cell (Fig. 3)."""
        return count_ops(self.normal, {"skip_connect"})

    def parameterless_normal(self) -> int:
        """Number of parameterless ops in the normal cell (collapse indicator, Table 1 'Num')."""
        return count_ops(self.normal, PARAMETERLESS)

    def satisfies_td(self) -> bool:
        """Both cells obey topology disentanglement (Eq. 1): see :func:`td_cell_ok`."""
        return td_cell_ok(self.normal) and td_cell_ok(self.reduce)

#: Ops with no learnable parameters (Table 1's "Num" counts these in the normal cell).
PARAMETERLESS = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})

#: Bounds of a genotype file, checked before anything is built. DARTS cells have 4 intermediate nodes;
#: 16 leaves room for larger cells, while the evaluation network's size grows with the nodes of every
#: cell (a 50,000-node file would take hours to build). A result.json may hold the genotype, hence the
#: byte bound of the run-folder reader (``harness.runs.read.MAX_BYTES``).
MAX_NODES = 16
MAX_OP_NAME = 64
MAX_FILE_BYTES = 64 * 2**20


def td_cell_ok(pairs: list[Any]) -> bool:
    """A cell derived under ROME's topology disentanglement (Eq. 1): every intermediate node has exactly
    two distinct inputs, and no ``none`` op (ROME searches operations only over the sampled edges)."""
    nodes = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
    return all(len(n) == 2 and n[0][1] != n[1][1] for n in nodes) and not any(op == "none" for op, _ in pairs)


def to_dict(genotype: Genotype) -> dict[str, Any]:
    """JSON-ready form: ``{"normal": [[op, input], ...], "normal_concat": [...], ...}``."""
    return {
        "normal": [[op, int(i)] for op, i in genotype.normal],
        "normal_concat": [int(i) for i in genotype.normal_concat],
        "reduce": [[op, int(i)] for op, i in genotype.reduce],
        "reduce_concat": [int(i) for i in genotype.reduce_concat],
    }


def _is_int(value: Any) -> bool:
    """An integer, not a bool (``true`` is 1 to Python) and not a float (``1.7`` would truncate to 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _cell(data: dict[str, Any], name: str) -> list[tuple[str, int]]:
    cell = data[name]
    if not isinstance(cell, list | tuple):
        raise ValueError(f"genotype cell '{name}' must be a list of [op, input] pairs, got {type(cell).__name__}")
    if len(cell) > 2 * MAX_NODES:  # before looking at any pair: a 50,000-node cell is refused at once
        raise ValueError(f"genotype cell '{name}' has {len(cell)} [op, input] pairs ({len(cell) // 2} nodes); "
                         f"valid: at most {MAX_NODES} nodes ({2 * MAX_NODES} pairs)")
    out = []
    for k, pair in enumerate(cell):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ValueError(f"genotype cell '{name}' pair {k} must be [op, input], got {pair!r}"[:200])
        op, i = pair
        if not isinstance(op, str):
            raise ValueError(f"genotype cell '{name}' pair {k}: the op must be a name, got {op!r}"[:200])
        if len(op) > MAX_OP_NAME:  # unknown names are listed in full in the one-line error
            raise ValueError(f"genotype cell '{name}' pair {k}: an op name of {len(op)} characters; "
                             f"valid: at most {MAX_OP_NAME}")
        if not _is_int(i):
            raise ValueError(f"genotype cell '{name}' pair {k}: the input must be an integer node index, "
                             f"got {i!r}"[:200])
        out.append((op, int(i)))
    return out


def _concat(data: dict[str, Any], name: str, n_nodes: int) -> list[int]:
    """The nodes a cell concatenates: distinct intermediate nodes ``2 .. 1 + n_nodes``."""
    concat = data.get(f"{name}_concat", list(range(2, 2 + n_nodes)))
    if isinstance(concat, list | tuple) and len(concat) > MAX_NODES:
        raise ValueError(f"genotype '{name}_concat' names {len(concat)} nodes; valid: at most {MAX_NODES}")
    if not isinstance(concat, list | tuple) or not all(_is_int(i) for i in concat):
        raise ValueError(f"genotype '{name}_concat' must be a list of integer node indices, got {concat!r}"[:200])
    if n_nodes and (not concat or len(set(concat)) != len(concat)
                    or not all(2 <= i < 2 + n_nodes for i in concat)):
        raise ValueError(f"genotype cell '{name}' concat {list(concat)} is invalid: give distinct intermediate "
                         f"nodes in 2..{1 + n_nodes}"[:200])
    return [int(i) for i in concat]


def from_dict(data: dict[str, Any]) -> Genotype:
    """Inverse of :func:`to_dict`; raises ``ValueError`` naming what is malformed.

    Inputs must be integers (``1.7`` or ``true`` are refused, not truncated), each a predecessor of
    its node; the concatenated nodes distinct intermediate nodes.
    """
    if not isinstance(data, dict) or "normal" not in data or "reduce" not in data:
        raise ValueError("a genotype needs 'normal' and 'reduce' lists of [op, input] pairs "
                         "(and optional 'normal_concat'/'reduce_concat')")
    normal, reduce = _cell(data, "normal"), _cell(data, "reduce")
    for name, cell in (("normal", normal), ("reduce", reduce)):
        if len(cell) % 2:
            raise ValueError(f"genotype cell '{name}' must have 2 [op, input] pairs per node, got {len(cell)}")
        for k, (_, i) in enumerate(cell):
            if not 0 <= i < 2 + k // 2:
                raise ValueError(f"genotype cell '{name}' pair {k} takes input {i}, which is not a predecessor")
    normal_concat = _concat(data, "normal", len(normal) // 2)
    reduce_concat = _concat(data, "reduce", len(reduce) // 2)
    return Genotype(normal, normal_concat, reduce, reduce_concat)


def check_file_genotype(genotype: Genotype) -> None:
    """What a DARTS search can derive, required of a genotype given as a file (DARTS Sec. 2.4: each
    intermediate node keeps its two strongest edges from *distinct* predecessors, and the ``zero``
    op is never derived): distinct inputs per node, and no cell of only ``none``.

    A cell's parameters include its preprocessing, not only its ops: every cell of the evaluation
    network first maps its two inputs through ReLU-Conv1x1-BN (FactorizedReduce after a reduction
    cell; DARTS ``cnn/model.py`` ``Cell``), so a cell of only parameterless ops still trains. That is
    the collapsed cell of ROME Fig. 2 (a normal cell of skip-connections), and the healthy-versus-
    collapsed evaluation needs exactly it; so a cell needs at least one node (whose preprocessing then
    has parameters), not an op with parameters.
    """
    for name, cell in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        if not cell:
            raise ValueError(f"genotype cell '{name}' has no node: give at least one node (two [op, input] pairs)")
        for node in range(len(cell) // 2):
            (_, a), (_, b) = cell[2 * node], cell[2 * node + 1]
            if a == b:
                raise ValueError(f"genotype cell '{name}' node {node} takes input {a} twice; "
                                 "each node combines two distinct predecessors")
        if all(op == "none" for op, _ in cell):
            raise ValueError(f"genotype cell '{name}' has only 'none' ops: it would output zeros")


def to_json(genotype: Genotype) -> str:
    return json.dumps(to_dict(genotype))


def from_json(text: str) -> Genotype:
    return from_dict(json.loads(text))


def load(path: str | Path) -> Genotype:
    """Read a genotype file: JSON as written by :func:`to_json`, or a ``result.json`` holding one."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise ValueError(f"cannot read genotype file {path}: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:  # refused unread: parsing a file of gigabytes is no genotype's need
        raise ValueError(f"genotype file {path} has {size} bytes; valid: at most {MAX_FILE_BYTES}")
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read genotype file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"genotype file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"genotype file {path} is not usable JSON ({type(exc).__name__})") from None
    if isinstance(data, dict) and "genotype" in data and isinstance(data["genotype"], dict):
        data = data["genotype"]
    if not isinstance(data, dict):
        raise ValueError(f"genotype file {path} must hold a JSON object with 'normal' and 'reduce'")
    genotype = from_dict(data)
    check_file_genotype(genotype)
    return genotype


def count_ops(cell: list[tuple[str, int]], names: frozenset[str] | set[str]) -> int:
    """How many ``(op, input)`` pairs of a cell use an op in ``names``."""
    return sum(op in names for op, _ in cell)


_C = [2, 3, 4, 5]

#: Published genotypes (DARTS ``cnn/genotypes.py``, PC-DARTS ``genotypes.py``, GDAS in xautodl).
KNOWN: dict[str, Genotype] = {
    "DARTS_V1": Genotype(
        normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        normal_concat=_C,
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
        reduce_concat=_C,
    ),
    "DARTS_V2": Genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        normal_concat=_C,
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
        reduce_concat=_C,
    ),
    "PC_DARTS": Genotype(
        normal=[("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
        normal_concat=_C,
        reduce=[("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
        reduce_concat=_C,
    ),
    "GDAS_V1": Genotype(
        normal=[("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 3), ("skip_connect", 0), ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)],
        normal_concat=_C,
        reduce=[("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1),
                ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
        reduce_concat=_C,
    ),
}


def resolve(name_or_file: str) -> Genotype:
    """A known genotype by name, else a genotype file; ``ValueError`` lists the known names."""
    if name_or_file in KNOWN:
        return KNOWN[name_or_file]
    if Path(name_or_file).is_file():
        return load(name_or_file)
    raise ValueError(
        f"unknown genotype '{name_or_file}': give one of {', '.join(KNOWN)} or a JSON genotype file"
    )
