"""Table 7: memory of one search step, from ``harness profile --out DIR`` files, beside the paper.

Rows are ordered as the paper's memory (ROME < GDAS < PC-DARTS M=4 < PC-DARTS M=2 < DARTS), other
profiled variants after them. The comparable quantity is the ratio to DARTS: the paper's GB are
``nvidia-smi``-style totals on a V100 (CUDA context and allocator slack included) while ours are
the bytes saved for backward by the largest graph of a step (every device) and the CUDA peak
allocation (GPU only). Profiles are grouped by device and shape; ratios are within a group.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.common import DASH, Section, fmt, md_table, save_figure, theme, write_csv, write_markdown
from reports.data import published

MIB = 2**20
SHAPE = ["space", "device", "batch_size", "channels", "layers", "image_size"]


def _paper_key(method: str, partial: float | None) -> tuple[str, int | None]:
    return method, None if partial is None or (isinstance(partial, float) and math.isnan(partial)) else int(partial)


def table(group: pd.DataFrame) -> pd.DataFrame:
    """One group of profiles (one device and shape) beside Table 7, in the paper's order."""
    paper = published(7)
    paper_gb = {_paper_key(r.method_id, r.partial): (r.method, r.memory_gb) for r in paper.itertuples()}
    darts_gb = paper.loc[paper["method_id"] == "darts", "memory_gb"].iloc[0]
    rows = []
    for r in group.itertuples():
        # K does not change what one graph holds (M is matched by its own row), TD does: variants with a
        # toggle off match no paper row
        matched = r.variant == r.method
        name, gb = paper_gb.get(_paper_key(r.method, r.partial), (None, None)) if matched else (None, None)
        cuda = getattr(r, "cuda_peak_bytes", None)
        rows.append({"method": name or r.label, "profile": r.label, "paper_memory_gb": gb,
                     "paper_ratio_to_darts": None if gb is None else gb / darts_gb,
                     "saved_bytes": r.saved_bytes, "forward_passes": r.forward_passes,
                     "cuda_peak_bytes": None if cuda is None or pd.isna(cuda) else cuda,
                     "param_bytes": r.param_bytes, "grad_bytes": r.grad_bytes,
                     "optimizer_state_bytes": r.optimizer_state_bytes, "seconds_per_step": r.seconds_per_step,
                     "file": r.path})
    t = pd.DataFrame(rows)
    darts = t[t["profile"] == "darts"]
    for col, ratio in (("saved_bytes", "saved_ratio_to_darts"), ("cuda_peak_bytes", "cuda_ratio_to_darts")):
        base = darts[col].iloc[0] if not darts.empty else None
        t[ratio] = t[col] / base if base is not None and pd.notna(base) and base > 0 else None
    t["_order"] = t["paper_memory_gb"].fillna(np.inf)
    t = t.sort_values(["_order", "saved_bytes"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return t


def ordering(t: pd.DataFrame, col: str = "saved_bytes") -> str:
    """The paper's rows sorted by our measure, e.g. ``ROME < GDAS < PC-DARTS (M=4) < DARTS``."""
    paper_rows = t[t["paper_memory_gb"].notna()].sort_values(col)
    return " < ".join(paper_rows["method"])


def displayed(t: pd.DataFrame) -> pd.DataFrame:
    has_cuda = t["cuda_peak_bytes"].notna().any()
    shown = {
        "method": t["method"], "profile": t["profile"],
        "saved for backward (MiB)": (t["saved_bytes"] / MIB).map(lambda v: fmt(v, 1)),
        "÷ DARTS": t["saved_ratio_to_darts"].map(fmt),
    }
    if has_cuda:
        shown["CUDA peak (MiB)"] = (t["cuda_peak_bytes"] / MIB).map(lambda v: fmt(v, 1))
        shown["CUDA ÷ DARTS"] = t["cuda_ratio_to_darts"].map(fmt)
    shown.update({
        "params + grads + optimizer (MiB)": ((t["param_bytes"] + t["grad_bytes"] + t["optimizer_state_bytes"])
                                             / MIB).map(lambda v: fmt(v, 2)),
        "s / step": t["seconds_per_step"].map(lambda v: fmt(v, 3)),
        "paper memory (GB)": t["paper_memory_gb"].map(lambda v: fmt(v, 1)),
        "paper ÷ DARTS": t["paper_ratio_to_darts"].map(fmt),
    })
    return pd.DataFrame(shown)


def plot(tables: list[tuple[str, pd.DataFrame]]) -> plt.Figure:
    """Per group: memory relative to DARTS, the paper's and ours side by side."""
    theme()
    fig, axes = plt.subplots(1, len(tables), figsize=(7 * len(tables), 0.6 * max(len(t) for _, t in tables) + 2),
                             squeeze=False)
    for ax, (name, t) in zip(axes[0], tables, strict=True):
        series = [("paper_ratio_to_darts", "paper (GPU GB, Table 7)", "0.55"),
                  ("saved_ratio_to_darts", "ours: saved for backward", "tab:blue")]
        if t["cuda_ratio_to_darts"].notna().any():
            series.append(("cuda_ratio_to_darts", "ours: CUDA peak", "tab:orange"))
        y = np.arange(len(t))
        h = 0.8 / len(series)
        for i, (col, label, color) in enumerate(series):
            vals = pd.to_numeric(t[col], errors="coerce")
            ax.barh(y + (i - (len(series) - 1) / 2) * h, vals.fillna(0), height=h, label=label, color=color)
            for yy, v in zip(y + (i - (len(series) - 1) / 2) * h, vals, strict=True):
                if pd.notna(v):
                    ax.text(v + 0.01, yy, f"{v:.2f}", va="center", fontsize=8)
        ax.set_yticks(y, [m if m == prof else f"{m}\n[{prof}]" for m, prof in zip(t["method"], t["profile"],
                                                                                     strict=True)], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel("memory relative to DARTS (DARTS = 1)")
        ax.set_xlim(0, 1.15 * max(1.0, float(pd.to_numeric(t[[c for c, _, _ in series]].stack(),
                                                            errors="coerce").max())))
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(series), frameon=False)
    fig.tight_layout()
    return fig


def build(profiles: pd.DataFrame, out: Path, profiles_dir: str | Path) -> Section:
    section = Section("memory", "Memory of one search step (Table 7)")
    if profiles.empty:
        section.messages.append(
            f"memory: no profile_*.json found in {profiles_dir}; run `harness profile --method M --bench s0-c10 "
            f"--batch-size 64 --out {profiles_dir}` for M in darts, gdas, pcdarts (--partial 4 and 2), rome-v2")
        return section
    blocks = ["Ours: bytes of the tensors autograd saves for backward in the largest graph of one search step "
              "(ROME frees each of its K sample graphs after its backward, so its peak is one graph), and the "
              "CUDA peak allocation on a GPU. The paper's GB (batch 64, 16 channels, 8 cells, CIFAR-10) include "
              "the CUDA context, so compare the ratios to DARTS."]
    figure_tables, csv_parts = [], []
    for key, g in profiles.groupby(SHAPE, sort=True, dropna=False):
        info = dict(zip(SHAPE, key, strict=True))
        name = (f"{info['space']} on {info['device']}: batch {info['batch_size']}, {info['channels']} channels, "
                f"{info['layers']} cells, {info['image_size']}x{info['image_size']}")
        t = table(g)
        section.tables[name] = t
        csv_parts.append(t.assign(**info))
        figure_tables.append((name, t))
        blocks.append(f"## {name}")
        if (info["batch_size"], info["channels"], info["layers"], info["image_size"]) != (64, 16, 8, 32):
            blocks.append("Not the paper's shape (batch 64, 16 channels, 8 cells, 32x32): compare the ordering "
                          "and ratios only.")
        if t["saved_ratio_to_darts"].isna().all():
            section.messages.append(f"memory ({name}): no DARTS profile, so no ratios to DARTS")
        blocks.append(md_table(pd.DataFrame({"": ["ordering (ours, saved for backward)", "ordering (paper)"],
                                             "methods": [ordering(t) or DASH,
                                                         ordering(t, "paper_memory_gb") or DASH]})))
        blocks.append(section.show(name, displayed(t), f"Memory of one search step (Table 7): {name}",
                                   best={"saved for backward (MiB)": "min", "paper memory (GB)": "min"}))
    section.files += save_figure(plot(figure_tables), out, "memory")
    blocks.append("![memory](memory.png)")
    section.files.append(write_csv(pd.concat(csv_parts, ignore_index=True), out / "memory.csv"))
    section.files.insert(0, write_markdown(out / "memory.md", section.title, blocks))
    return section
