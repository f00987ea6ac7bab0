"""Table 5: sensitivity to the number of samples K, one row per K, reproduced beside the paper.

Runs are complete ROME runs with every toggle on (``harness run --k-sweep 1,4,7,10``: the search
epochs are scaled so every K makes the same number of weight updates); a group is one method on
one benchmark and budget whose specs differ in nothing but K, the search epochs and the seed (its
config id without those, :func:`harness.runs.read.config_id`), reported when it holds at least two
values of K.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from harness.runs.read import config_id
from harness.spec.sweeps import REFERENCE_K, k_epochs
from reports.ablation import settings_text
from reports.common import (
    Section,
    budget_note,
    complete,
    fmt,
    mean_std,
    pm,
    save_figure,
    theme,
    wrap,
    write_csv,
    write_markdown,
)
from reports.data import published

GROUP = ["method", "bench", "budget"]
#: what a K sweep varies: left out of the id that groups its runs
SWEPT = ("options.k", "search.epochs")


def on_sweep(group: pd.DataFrame) -> pd.DataFrame:
    """The runs of a group that follow one K sweep: ``epochs == k_epochs(K, base)`` for the base epochs
    most runs imply (``base ~ K * epochs / 7``); runs with other epoch counts belong to other studies."""
    k = group["k"].astype(int)
    epochs = group["search_epochs"]
    implied = (k * epochs / REFERENCE_K).round().clip(lower=1)
    if implied.isna().all():
        return group.iloc[:0]
    counts = implied.value_counts()
    base = int(max(counts.index, key=lambda b: (counts[b], b)))
    follows = [e == k_epochs(int(kk), base) for kk, e in zip(k, epochs, strict=True)]
    return group[follows]


def k_groups(runs: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame, int]]:
    """Per method, bench and budget: the runs on one K sweep (when they cover two K or more) and how many
    runs of the group were left out for another number of search epochs."""
    runs = complete(runs)
    if runs.empty:
        return []
    toggles = runs[["td", "ga_theta", "ga_alpha"]]
    rome = runs[runs["k"].notna() & toggles.notna().all(axis=1)]
    rome = rome[rome[["td", "ga_theta", "ga_alpha"]].astype(bool).all(axis=1)]
    rome = rome.assign(_rest=[config_id(c, without=SWEPT) for c in rome["config"]] if "config" in rome else "")
    out = []
    for key, g in rome.groupby([*GROUP, "_rest"], sort=True):
        sweep = on_sweep(g.drop(columns="_rest"))
        if sweep["k"].nunique() >= 2:
            out.append((key[:-1], sweep, len(g) - len(sweep)))
    return out


def table(group: pd.DataFrame) -> pd.DataFrame:
    paper = published(5).set_index("k")
    ks = sorted({int(k) for k in group["k"]} | {int(k) for k in paper.index})
    rows = []
    for k in ks:
        sel = group[group["k"] == k]
        err, err_sd, n = mean_std(sel["test_error"])
        params, _, _ = mean_std(sel["params"])
        pl, pl_sd, _ = mean_std(sel["parameterless_normal"])
        epochs = sorted({int(e) for e in sel["search_epochs"].dropna()})
        p = paper.loc[k] if k in paper.index else None
        rows.append({"k": k, "n": n, "search_epochs": ", ".join(map(str, epochs)),
                     "test_error_mean": err, "test_error_std": err_sd, "params_m": params / 1e6,
                     "parameterless_mean": pl, "parameterless_std": pl_sd,
                     "paper_acc_mean": None if p is None else p["acc_mean"],
                     "paper_acc_std": None if p is None else p["acc_std"],
                     "paper_error_mean": None if p is None else 100.0 - p["acc_mean"],
                     "paper_params_m": None if p is None else p["params_m"],
                     "paper_search_epochs": None if p is None else int(p["search_epochs"])})
    return pd.DataFrame(rows)


def displayed(t: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({
        "K": t["k"], "search epochs": t["search_epochs"].replace("", "—"),
        "test error (%)": [pm(m, s) for m, s in zip(t["test_error_mean"], t["test_error_std"], strict=True)],
        "params (M)": t["params_m"].map(lambda v: fmt(v, 3)),
        "parameterless (normal)": [pm(m, s, 1) for m, s in zip(t["parameterless_mean"], t["parameterless_std"],
                                                              strict=True)],
        "seeds": t["n"],
        "paper acc (%)": [pm(m, s) for m, s in zip(t["paper_acc_mean"], t["paper_acc_std"], strict=True)],
        "paper error (%)": t["paper_error_mean"].map(fmt),
        "paper params (M)": t["paper_params_m"].map(fmt),
        "paper epochs": t["paper_search_epochs"].map(lambda v: fmt(v, 0)),
    })
    return shown


def plot(tables: list[tuple[str, pd.DataFrame]]) -> plt.Figure:
    theme()
    fig, axes = plt.subplots(len(tables), 2, figsize=(10, 3.6 * len(tables)), squeeze=False)
    for (ax_r, ax_p), (name, t) in zip(axes, tables, strict=True):
        have = t[t["n"] > 0]
        ax_r.errorbar(have["k"], have["test_error_mean"], yerr=have["test_error_std"].fillna(0), fmt="o-",
                      capsize=4, color="tab:blue")
        ax_r.set_title(wrap(f"Reproduced: {name} (mean ± std over seeds)", 60), fontsize=10)
        paper = t[t["paper_error_mean"].notna()]
        ax_p.errorbar(paper["k"], paper["paper_error_mean"], yerr=paper["paper_acc_std"], fmt="s-", capsize=4,
                      color="0.3")
        ax_p.set_title("Paper (ROME Table 5, CIFAR-10)", fontsize=10)
        for ax in (ax_r, ax_p):
            ax.set_xticks(sorted(t["k"]))
            ax.set_xlabel("samples per update K")
            ax.set_ylabel("test error (%)")
    fig.tight_layout()
    return fig


def build(runs: pd.DataFrame, out: Path, runs_dir: str | Path) -> Section:
    section = Section("k-sensitivity", "Sensitivity to the number of samples K (Table 5)")
    groups = k_groups(runs)
    if not groups:
        section.messages.append(
            f"k-sensitivity: no ROME runs with more than one K found in {runs_dir}; run "
            f"`harness run --k-sweep 1,4,7,10 --bench s0-c10 --budget paper --seeds 0,1,2 --out {runs_dir}`")
        return section
    blocks = ["Test error mean ± std over seeds per K. The search epochs are scaled so that every K makes the "
              "same number of weight updates as K = 7 (the paper: 350, 87, 50 and 35 epochs for K = 1, 4, 7, 10)."]
    csv_parts, figure_tables = [], []
    for key, g, left_out in groups:
        info = dict(zip(GROUP, key, strict=True))
        name = f"{info['method']}, {info['bench']}, {info['budget']}{settings_text(g, SWEPT)}"
        t = table(g)
        section.tables[name] = t
        csv_parts.append(t.assign(**info, settings=settings_text(g, SWEPT)[2:]))
        figure_tables.append((name, t))
        blocks.append(f"## {name}")
        if (note := budget_note({info["budget"]})) is not None:
            blocks.append(note)
        if left_out:
            blocks.append(f"{left_out} other complete runs of this method with every toggle on searched for a "
                          f"number of epochs off this sweep and are left out.")
        missing = [str(k) for k, n in zip(t["k"], t["n"], strict=True) if n == 0]
        if missing:
            section.messages.append(f"k-sensitivity ({name}): no runs for K={', '.join(missing)}")
            blocks.append(f"No runs for K = {', '.join(missing)}.")
        blocks.append(section.show(name, displayed(t), f"Sensitivity to K (Table 5): {name}",
                                   best={"test error (%)": "min", "paper error (%)": "min"}))
    section.files += save_figure(plot(figure_tables), out, "k_sensitivity")
    blocks.append("![K sensitivity](k_sensitivity.png)")
    section.files.append(write_csv(pd.concat(csv_parts, ignore_index=True), out / "k_sensitivity.csv"))
    section.files.insert(0, write_markdown(out / "k_sensitivity.md", section.title, blocks))
    return section
