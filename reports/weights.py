"""Architecture weights during search: the collapse of ROME Fig. 3 forming in alpha and beta.

Each search epoch records per cell type the op probabilities ``softmax(alpha)`` of every decision and,
where the method has edge parameters, each edge's weight or inclusion probability
(:meth:`methods.base.SearchMethod.arch_weights`). One figure per benchmark x budget x method variant
(its lowest seed): per cell type a row of small multiples, one heatmap per op (decisions x epochs,
probability 0-1), parameterless ops framed in red, and the edge probabilities last. The table gives the
mean probability mass on parameterless ops per decision at the first and last epoch.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from harness.runs.layout import RESULT
from harness.runs.read import Unreadable, read_json_file
from reports.common import DASH, Section, budget_note, complete, save_figure, slug, theme, write_csv, write_markdown
from spaces.darts import EDGES, SPACES
from spaces.genotype import PARAMETERLESS as DARTS_PARAMETERLESS
from spaces.nasbench import PARAMETERLESS as NB_PARAMETERLESS
from spaces.registry import build_supernet, describe

PARAMETERLESS = DARTS_PARAMETERLESS | NB_PARAMETERLESS
CMAP, EDGE_CMAP = "viridis", "RdBu_r"
EDGE = "edge probability"


def _norm(grids: list[np.ndarray], centred: bool = False) -> Normalize:
    """A linear scale over the values of ``grids`` (0-1 when they are all equal); ``centred``: symmetric
    about 0."""
    values = np.concatenate([g[np.isfinite(g)].ravel() for g in grids]) if grids else np.array([])
    if centred:
        top = float(np.abs(values).max()) if values.size else 0.0
        return Normalize(-top, top) if top > 0 else Normalize(-1.0, 1.0)
    if values.size == 0 or values.min() == values.max():
        return Normalize(0.0, 1.0)
    return Normalize(float(values.min()), float(values.max()))


@cache
def _shapes(space: str) -> dict[str, Any]:
    return build_supernet(space, c=4, layers=3, num_classes=2).shapes


def node_edges(space: str, cell: str, n_edges: int) -> list[list[int]]:
    """The candidate incoming edges of each node (one group of all edges if the space is unknown)."""
    try:
        shape = _shapes(space)[cell]
        if shape.n_edges == n_edges:
            return [list(e) for e in shape.node_edges]
    except (ValueError, KeyError, TypeError):
        pass
    return [list(range(n_edges))]


def uniform_edges(edges: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Per edge (rows of ``edges``, edges x epochs), its node's mean value: what uniform ``beta`` gives
    (ROME: in-degree / candidates; softmax weights: 1 / candidates). Subtracted, it shows the preference."""
    out = np.zeros_like(edges)
    for g in groups:
        out[g] = edges[g].mean(axis=0, keepdims=True)
    return out


def load_weights(path: str | Path) -> list[dict[str, Any]]:
    """Per search epoch, its ``arch_weights`` (epochs recorded before they existed are left out)."""
    try:
        result = read_json_file(Path(path) / RESULT)  # the hardened reader: size, type and depth bounded
    except Unreadable:
        return []
    history = ((result.get("search") or {}).get("history") or []) if isinstance(result, dict) else []
    return [{"epoch": e.get("epoch", i), **e["arch_weights"]} for i, e in enumerate(history)
            if isinstance(e, dict) and isinstance(e.get("arch_weights"), dict)]


def op_names(space: str, cell: str, n_decisions: int, n_ops: int) -> list[list[str]]:
    """Per decision its candidate op names (``spaces.registry.describe``), or ``op j`` if unknown."""
    try:
        names = describe(space)[cell]
        if len(names) == n_decisions and all(len(n) == n_ops for n in names):
            return [list(n) for n in names]
    except (ValueError, KeyError, TypeError):
        pass
    return [[f"op {j}" for j in range(n_ops)] for _ in range(n_decisions)]


def decision_labels(space: str, cell: str, n: int) -> list[str]:
    """``2←0`` (node ← input) for the DARTS spaces' 14 edges, else ``node n``/``edge n``."""
    if space in SPACES and n == len(EDGES):
        return [f"{node}←{src}" for src, node in EDGES]
    return [f"{'edge' if cell != 'cell' else 'node'} {i}" for i in range(n)]


def evolution(epochs: list[dict[str, Any]], cell: str, names: list[list[str]]) -> dict[str, np.ndarray]:
    """Per op name a (decisions x epochs) array of its probability (NaN where a decision lacks the op)."""
    ops = np.asarray([e[cell]["ops"] for e in epochs], dtype=float)  # epochs x decisions x ops
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(n for row in names for n in row):
        grid = np.full(ops.shape[:2], np.nan)
        for d, row in enumerate(names):
            if name in row:
                grid[:, d] = ops[:, d, row.index(name)]
        out[name] = grid.T
    return out


def parameterless_mass(epoch: dict[str, Any], cell: str, names: list[list[str]]) -> float:
    """Mean over decisions of the probability on parameterless ops."""
    ops = np.asarray(epoch[cell]["ops"], dtype=float)
    free = np.asarray([[n in PARAMETERLESS for n in row] for row in names])
    return float((ops * free).sum() / len(names))


def plot(epochs: list[dict[str, Any]], space: str, title: str) -> plt.Figure:
    theme()
    cells = [c for c in epochs[0] if c != "epoch"]
    panels = []
    for cell in cells:
        ops = np.asarray(epochs[0][cell]["ops"])
        names = op_names(space, cell, *ops.shape)
        row = list(evolution(epochs, cell, names).items())
        if "edges" in epochs[0][cell]:
            edges = np.asarray([e[cell]["edges"] for e in epochs], dtype=float).T
            row.append((EDGE, edges - uniform_edges(edges, node_edges(space, cell, edges.shape[0]))))
        panels.append((cell, row, decision_labels(space, cell, ops.shape[0])))
    ncols = max(len(r) for _, r, _ in panels)
    n_epochs = len(epochs)
    width = max(1.5, 0.8 + 0.06 * n_epochs)
    height = 0.2 * max(len(lab) for *_, lab in panels) + 0.9
    fig, axes = plt.subplots(len(panels), ncols, figsize=(width * ncols + 2.2, height * len(panels) + 0.8),
                             squeeze=False, layout="constrained")
    # one colour scale for the op probabilities and one for the edges, each over the figure's values: at a
    # short budget the weights move little from uniform, and a fixed 0-1 scale would hide how they move
    # ops a method never samples (ROME with TD: none) stay at 0 and are left out of the scale
    norms = {"ops": _norm([g for _, row, _ in panels for n, g in row if n != EDGE and np.nanmax(g) > 0]),
             EDGE: _norm([g for _, row, _ in panels for n, g in row if n == EDGE], centred=True)}
    images = {}
    for r, (cell, row, labels) in enumerate(panels):
        for c, ax in enumerate(axes[r]):
            if c >= len(row):
                ax.set_visible(False)
                continue
            name, grid = row[c]
            kind = EDGE if name == EDGE else "ops"
            images[kind] = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=CMAP if kind == "ops" else
                                     EDGE_CMAP, norm=norms[kind], interpolation="nearest",
                                     extent=(-0.5, n_epochs - 0.5, len(labels) - 0.5, -0.5))
            if kind == EDGE:
                name = "edge probability\n− its node's uniform value"
            ax.grid(False)
            free = name in PARAMETERLESS
            never = kind == "ops" and not np.nanmax(grid) > 0
            ax.set_title(f"{name}{' (never sampled)' if never else ' (no params)' if free else ''}",
                         fontsize=8, color="tab:red" if free else "black",
                         fontweight="bold" if free else "normal")
            if free:
                for side in ax.spines.values():
                    side.set_edgecolor("tab:red")
                    side.set_linewidth(2.0)
            ax.set_yticks(range(len(labels)), labels if c == 0 else [], fontsize=6)
            ax.set_xticks(sorted({0, n_epochs - 1}))
            ax.tick_params(axis="x", labelsize=7)
            if c == 0:
                ax.set_ylabel(f"{cell} cell", fontsize=9)
            if r == len(panels) - 1:
                ax.set_xlabel("epoch", fontsize=7)
    for kind, image in images.items():
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, aspect=30,
                     label="op probability" if kind == "ops" else "edge probability − uniform")
    fig.suptitle(title, fontsize=10)
    return fig


def build(runs: pd.DataFrame, out: Path, runs_dir: str | Path) -> Section:
    section = Section("weights", "Architecture weights during search")
    runs = complete(runs)
    chosen = []
    if not runs.empty:
        for _, g in runs.sort_values("seed").groupby(["bench", "budget", "label"], sort=True):
            for r in g.itertuples():
                epochs = load_weights(r.path)
                if epochs:
                    chosen.append((r, epochs))
                    break
    if not chosen:
        section.messages.append(
            f"weights: no search histories with architecture weights in {runs_dir}; run "
            f"`harness run --method gdas,rome-v2,darts --bench s2-digits --seeds 0 --out {runs_dir}`")
        return section
    blocks = ["Per search epoch, the probability of every op on every decision (edge; NAS-Bench-1Shot1: node) - "
              "softmax(alpha) over the ops the method samples or mixes - and, where the method has edge "
              "parameters, each edge's probability: ROME-v2 the exact Gumbel-Top2 inclusion probability "
              "p_i + sum_j p_j p_i / (1 - p_j) with p = softmax(beta) (Sec. 3.5), ROME-v1 the pair softmax "
              "summed over the pairs holding the edge, PC-DARTS its softmax(beta) edge weight. Parameterless "
              "ops are framed in red. One run per method variant (its lowest seed)."]
    if (note := budget_note(set(r.budget for r, _ in chosen))) is not None:
        blocks.append(note)
    rows = []
    for r, epochs in chosen:
        stem = slug("weights", r.bench, r.budget, r.label, f"s{int(r.seed)}")
        title = f"{r.label} on {r.bench} (budget {r.budget}, seed {int(r.seed)}): architecture weights per epoch"
        section.files += save_figure(plot(epochs, str(r.space), title), out, stem)
        blocks.append(f"![{stem}]({stem}.png)")
        first, last = epochs[0], epochs[-1]
        cell = "normal" if "normal" in first else next(c for c in first if c != "epoch")
        names = op_names(str(r.space), cell, *np.asarray(first[cell]["ops"]).shape)
        rows.append({"bench": r.bench, "budget": r.budget, "method": r.label, "seed": int(r.seed),
                     "epochs": len(epochs), "cell": cell,
                     "parameterless_first": parameterless_mass(first, cell, names),
                     "parameterless_last": parameterless_mass(last, cell, names),
                     "parameterless_derived": r.parameterless_normal, "figure": f"{stem}.png"})
    t = pd.DataFrame(rows)
    shown = pd.DataFrame({
        "benchmark": t["bench"], "budget": t["budget"], "method": t["method"], "seed": t["seed"],
        "epochs": t["epochs"], "cell": t["cell"],
        "parameterless mass, first epoch": t["parameterless_first"].map(lambda v: f"{v:.3f}"),
        "parameterless mass, last epoch": t["parameterless_last"].map(lambda v: f"{v:.3f}"),
        "parameterless ops derived": t["parameterless_derived"].map(lambda v: DASH if pd.isna(v) else f"{v:.0f}")})
    blocks.insert(2, section.show("parameterless", shown, "Mean probability on parameterless ops per decision",
                                  best={"parameterless mass, last epoch": "min"}, group="benchmark"))
    section.tables["weights"] = t
    section.files.append(write_csv(t, out / "weights.csv"))
    section.files.insert(0, write_markdown(out / "weights.md", section.title, blocks))
    return section
