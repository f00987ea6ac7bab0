"""Fig. 2 / Fig. 5: drawings of derived cells - one figure per run with its normal and reduction cell.

Nodes are boxes (inputs ``c_{k-2}``, ``c_{k-1}``, intermediate nodes ``0..3``, output ``c_{k}``);
each selected edge is an arrow labelled with its op; parameterless ops (skip, pooling, none) are
drawn in red, so a collapsed normal cell (Fig. 2) is visible at a glance. Concatenation into the
output is dashed. Files: ``cells/<run_id>.png`` / ``.pdf`` and ``cells.md`` indexing them; the file
name is the run id through :func:`harness.utils.paths.slug` (a run id from a ``result.json`` is data: it
never names a path outside the report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from reports.common import (
    Section,
    budget_note,
    complete,
    fmt,
    md_table,
    save_figure,
    slug,
    write_csv,
    write_markdown,
)
from reports.escape import md_link
from spaces.genotype import PARAMETERLESS

PARAMETERLESS_COLOR = "#c0392b"
PARAMETRIC_COLOR = "#1f4e79"
NODE_DX = 2.6
INPUT_Y = 2.4
#: where along an edge from a cell input its label sits: near the target, so that the labels of one
#: input's edges spread out with their targets instead of piling up at the input
INPUT_LABEL_AT = 0.72


def is_darts_genotype(genotype: Any) -> bool:
    if not isinstance(genotype, dict):
        return False
    try:
        return all(isinstance(op, str) and int(i) >= 0 for cell in ("normal", "reduce") for op, i in genotype[cell])
    except (KeyError, TypeError, ValueError):
        return False


def _positions(n_nodes: int) -> dict[int, tuple[float, float]]:
    pos = {0: (0.0, INPUT_Y), 1: (0.0, -INPUT_Y)}
    for i in range(n_nodes):
        pos[2 + i] = (NODE_DX * (i + 1), 0.0)
    pos[-1] = (NODE_DX * (n_nodes + 1), 0.0)
    return pos


def _node_label(node: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}", -1: "c_{k}"}.get(node, str(node - 2))


def draw_cell(ax: plt.Axes, cell: list[tuple[str, int]], concat: list[int], title: str) -> None:
    """Draw one DARTS cell (``cell``: two ``(op, input)`` per intermediate node, in node order)."""
    n_nodes = len(cell) // 2
    pos = _positions(n_nodes)
    seen: dict[tuple[int, int], int] = {}
    for k, (op, src) in enumerate(cell):
        dst = 2 + k // 2
        src = int(src)
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        repeat = seen.get((src, dst), 0)
        seen[(src, dst)] = repeat + 1
        gap = dst - src if src >= 2 else 0
        # chain edges are straight; longer hops between intermediate nodes arc above, a second op on the
        # same edge arcs the other way
        rad = 0.0 if gap == 1 else (-0.45 if gap > 1 else 0.0)
        if repeat:
            rad = -rad if rad else (0.35 if y0 >= 0 else -0.35)
        color = PARAMETERLESS_COLOR if op in PARAMETERLESS else PARAMETRIC_COLOR
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6, shrinkA=17, shrinkB=17,
                                    connectionstyle=f"arc3,rad={rad}"))
        # label at the curve's midpoint: the quadratic Bezier of arc3 passes mid + rad/2 * (dy, -dx)
        dx, dy = x1 - x0, y1 - y0
        t = 0.5 if src >= 2 else INPUT_LABEL_AT
        lx, ly = x0 + t * dx + 0.5 * rad * dy, y0 + t * dy - 0.5 * rad * dx
        if src >= 2 and rad == 0:
            ly += 0.3  # above a straight chain edge, clear of its arrow head
        ax.text(lx, ly, op, ha="center", va="center", fontsize=7.5, color=color, zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    out_x, out_y = pos[-1]
    for j, node in enumerate(concat):
        x0, y0 = pos[int(node)]
        rad = 0.0 if int(node) == 1 + n_nodes else -0.35 - 0.1 * j
        ax.annotate("", xy=(out_x, out_y), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.6", lw=1.0, ls="--", shrinkA=17, shrinkB=17,
                                    connectionstyle=f"arc3,rad={-rad}"))
    for node, (x, y) in pos.items():
        kind = "io" if node in (0, 1, -1) else "mid"
        ax.text(x, y, f"${_node_label(node)}$" if kind == "io" else _node_label(node), ha="center", va="center",
                fontsize=10, zorder=5, parse_math=kind == "io",  # our own labels only; ops are plain text
                bbox=dict(boxstyle="round,pad=0.45", fc="#d5e8d4" if kind == "io" else "#dae8fc",
                          ec="0.35", lw=1.0))
    n_free = sum(op in PARAMETERLESS for op, _ in cell)
    ax.set_title(f"{title}: {n_free} of {len(cell)} ops parameterless", fontsize=10)
    ax.set_xlim(-0.9, out_x + 0.9)
    ax.set_ylim(-INPUT_Y - 0.6, INPUT_Y + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_genotype(genotype: dict[str, Any], title: str) -> plt.Figure:
    """Normal cell above, reduction cell below."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 8.5))
    for ax, cell in zip(axes, ("normal", "reduce"), strict=True):
        ops = [(str(op), int(i)) for op, i in genotype[cell]]
        concat = genotype.get(f"{cell}_concat") or list(range(2, 2 + len(ops) // 2))
        draw_cell(ax, ops, concat, "normal cell" if cell == "normal" else "reduction cell")
    handles = [plt.Line2D([], [], color=PARAMETRIC_COLOR, lw=2, label="op with parameters"),
               plt.Line2D([], [], color=PARAMETERLESS_COLOR, lw=2, label="parameterless op (skip, pool, none)"),
               plt.Line2D([], [], color="0.6", lw=1, ls="--", label="concatenated into the output")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def build(runs: pd.DataFrame, out: Path, runs_dir: str | Path) -> Section:
    section = Section("cells", "Derived cells (Fig. 2 / Fig. 5)")
    runs = complete(runs)
    if runs.empty:
        section.messages.append(f"cells: no complete runs found in {runs_dir}; run `harness run ... --out {runs_dir}`")
        return section
    drawable = runs[runs["genotype"].map(is_darts_genotype)]
    if len(drawable) < len(runs):
        section.messages.append(f"cells: {len(runs) - len(drawable)} runs have genotypes that are not DARTS cells "
                                f"(not drawn)")
    if drawable.empty:
        return section
    rows = []
    for r in drawable.sort_values(["bench", "budget", "label", "seed"]).itertuples():
        title = (f"{r.run_id}\n{r.label} on {r.bench} (budget {r.budget}, seed {r.seed}): "
                 f"test error {fmt(r.test_error)} %")
        stem = slug(r.run_id)
        section.files += save_figure(plot_genotype(r.genotype, title), out / "cells", stem)
        rows.append({"run_id": r.run_id, "method": r.label, "bench": r.bench, "budget": r.budget, "seed": r.seed,
                     "test_error": r.test_error, "parameterless_normal": r.parameterless_normal,
                     "skip_connect_normal": r.skip_connect_normal,
                     "normal": " ".join(f"{op}<-{i}" for op, i in r.genotype["normal"]),
                     "reduce": " ".join(f"{op}<-{i}" for op, i in r.genotype["reduce"]),
                     "figure": f"cells/{stem}.png"})
    blocks = ["One drawing per complete run: the derived normal and reduction cells, parameterless ops in red."]
    if (note := budget_note(set(drawable["budget"]))) is not None:
        blocks.append(note)
    t = pd.DataFrame(rows)
    shown = pd.DataFrame({"run": [md_link(r, f) for r, f in zip(t["run_id"], t["figure"], strict=True)],
                          "method": t["method"], "bench": t["bench"], "budget": t["budget"], "seed": t["seed"],
                          "test error (%)": t["test_error"].map(fmt),
                          "parameterless (normal)": t["parameterless_normal"].map(lambda v: fmt(v, 0)),
                          "skip-connections (normal)": t["skip_connect_normal"].map(lambda v: fmt(v, 0))})
    blocks.append(md_table(shown, raw=("run",)))
    section.tables["cells"] = t
    section.files.append(write_csv(t, out / "cells.csv"))
    section.files.insert(0, write_markdown(out / "cells.md", section.title, blocks))
    return section
