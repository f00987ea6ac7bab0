"""Genotypes: the discrete architecture a search derives (DARTS cell format).

A genotype is a plain named tuple, as in DARTS: ``normal`` and ``reduce`` are lists of
``(op, input)`` pairs, two per intermediate node, in node order; ``*_concat`` name the nodes whose
outputs the cell concatenates.
"""

from __future__ import annotations

import json
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

#: Ops with no learnable parameters (Table 1's "Num" counts these in the normal cell).
PARAMETERLESS = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})


def to_dict(genotype: Genotype) -> dict[str, Any]:
    """JSON-ready form: ``{"normal": [[op, input], ...], "normal_concat": [...], ...}``."""
    return {
        "normal": [[op, int(i)] for op, i in genotype.normal],
        "normal_concat": [int(i) for i in genotype.normal_concat],
        "reduce": [[op, int(i)] for op, i in genotype.reduce],
        "reduce_concat": [int(i) for i in genotype.reduce_concat],
    }


def from_dict(data: dict[str, Any]) -> Genotype:
    """Inverse of :func:`to_dict`; raises ``ValueError`` naming what is malformed."""
    try:
        normal = [(str(op), int(i)) for op, i in data["normal"]]
        reduce = [(str(op), int(i)) for op, i in data["reduce"]]
        normal_concat = [int(i) for i in data.get("normal_concat", range(2, 2 + len(normal) // 2))]
        reduce_concat = [int(i) for i in data.get("reduce_concat", range(2, 2 + len(reduce) // 2))]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            "a genotype needs 'normal' and 'reduce' lists of [op, input] pairs "
            f"(and optional 'normal_concat'/'reduce_concat'): {exc!r}"
        ) from None
    for name, cell in (("normal", normal), ("reduce", reduce)):
        if len(cell) % 2:
            raise ValueError(f"genotype cell '{name}' must have 2 [op, input] pairs per node, got {len(cell)}")
        for k, (_, i) in enumerate(cell):
            if not 0 <= i < 2 + k // 2:
                raise ValueError(f"genotype cell '{name}' pair {k} takes input {i}, which is not a predecessor")
    return Genotype(normal, normal_concat, reduce, reduce_concat)


def to_json(genotype: Genotype) -> str:
    return json.dumps(to_dict(genotype))


def from_json(text: str) -> Genotype:
    return from_dict(json.loads(text))


def load(path: str | Path) -> Genotype:
    """Read a genotype file: JSON as written by :func:`to_json`, or a ``result.json`` holding one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read genotype file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"genotype file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(data, dict) and "genotype" in data and isinstance(data["genotype"], dict):
        data = data["genotype"]
    if not isinstance(data, dict):
        raise ValueError(f"genotype file {path} must hold a JSON object with 'normal' and 'reduce'")
    return from_dict(data)


def count_ops(cell: list[tuple[str, int]], names: frozenset[str] | set[str]) -> int:
    """How many ``(op, input)`` pairs of a cell use an op in ``names``."""
    return sum(op in names for op, _ in cell)


_C = [2, 3, 4, 5]

#: Published genotypes (REFERENCE.md section 2).
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
