"""Table 6: ROME's components - topology disentanglement (TD) and gradient accumulation for the weights
(GA-theta) and the architecture (GA-alpha) - reproduced mean ± std over seeds beside the paper.

A group of runs is one ROME configuration with the three toggles set aside: one method on one benchmark
and budget whose specs differ in nothing but the toggles and the seed (its config id without the
toggles, :func:`harness.runs.read.config_id`); a group is an ablation when at least one of its runs
switches a toggle off (a folder of default ROME runs is not an ablation). Runs come from
``harness run --ablation``; a ``--set`` field changed for some runs makes them a group of their own.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from harness.runs.read import config_id
from harness.spec.sweeps import ABLATION
from reports.common import (
    DASH,
    Section,
    budget_note,
    complete,
    fmt,
    mark,
    mean_std,
    pm,
    save_figure,
    theme,
    wrap,
    write_csv,
    write_markdown,
)
from reports.data import published

TOGGLES = ["td", "ga_theta", "ga_alpha"]
GROUP = ["method", "bench", "budget", "k", "search_epochs"]
#: what an ablation varies: left out of the id that groups its runs
TOGGLE_FIELDS = tuple(f"options.{t}" for t in TOGGLES)
EPOCHS = ("search.epochs",)  # named in a group's heading already


def combo_label(td: bool, ga_theta: bool, ga_alpha: bool) -> str:
    """``✓/✗/✓``: TD / GA-theta / GA-alpha as in Table 6."""
    return "/".join(mark(x) for x in (td, ga_theta, ga_alpha))


def combo_name(td: bool, ga_theta: bool, ga_alpha: bool) -> str:
    """``TD + GA-θ``: the components switched on (``none (GDAS)`` for none)."""
    ga = [n for n, on in (("θ", ga_theta), ("α", ga_alpha)) if on]
    parts = (["TD"] if td else []) + ([f"GA-{'+'.join(ga)}"] if ga else [])
    return " + ".join(parts) if parts else "none (GDAS)"


def ablation_groups(runs: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """Complete ROME runs grouped by :data:`GROUP`, keeping groups with a toggle switched off."""
    runs = complete(runs)
    if runs.empty:
        return []
    rome = runs[runs[TOGGLES].notna().all(axis=1)].copy()
    if rome.empty:
        return []
    for t in TOGGLES:
        rome[t] = rome[t].astype(bool)
    rome["_rest"] = ([config_id(c, without=TOGGLE_FIELDS) for c in rome["config"]] if "config" in rome
                     else "")
    out = []
    for key, g in rome.groupby([*GROUP, "_rest"], dropna=False, sort=True):
        if not g[TOGGLES].all(axis=None):
            out.append((key[:-1], g.drop(columns="_rest")))
    return out


def settings_text(group: pd.DataFrame, without: tuple[str, ...] = ()) -> str:
    """``, search.a_lr=0.03``: the spec fields a group's runs change from their defaults (outside the
    options and the dotted names in ``without``), for its heading; empty for the defaults."""
    if "settings" not in group or group.empty:
        return ""
    shown = [s for s in group["settings"].iloc[0] if not s.startswith(tuple(f"{w}=" for w in without))]
    return "".join(f", {s}" for s in shown)


def table(group: pd.DataFrame) -> pd.DataFrame:
    """The 8 rows of Table 6 (paper order) for one group, numeric columns."""
    paper = published(6).set_index(TOGGLES)
    rows = []
    for combo in ABLATION:
        sel = group[(group[TOGGLES] == list(combo)).all(axis=1)]
        err, err_sd, n = mean_std(sel["test_error"])
        pl, pl_sd, _ = mean_std(sel["parameterless_normal"])
        sk, sk_sd, _ = mean_std(sel["skip_connect_normal"])
        p = paper.loc[combo]
        rows.append({"td": combo[0], "ga_theta": combo[1], "ga_alpha": combo[2], "n": n,
                     "test_error_mean": err, "test_error_std": err_sd,
                     "parameterless_mean": pl, "parameterless_std": pl_sd,
                     "skip_connect_mean": sk, "skip_connect_std": sk_sd,
                     "paper_acc_mean": p["acc_mean"], "paper_acc_std": p["acc_std"],
                     "paper_error_mean": 100.0 - p["acc_mean"], "paper_error_std": p["acc_std"],
                     "paper_source": p["source"]})
    return pd.DataFrame(rows)


def displayed(t: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({
        "TD": t["td"].map(mark), "GA-θ": t["ga_theta"].map(mark), "GA-α": t["ga_alpha"].map(mark),
        "test error (%)": [pm(m, s) for m, s in zip(t["test_error_mean"], t["test_error_std"], strict=True)],
        "parameterless (normal)": [pm(m, s, 1) for m, s in zip(t["parameterless_mean"], t["parameterless_std"],
                                                              strict=True)],
        "seeds": t["n"].astype(int),
        "paper acc (%)": [pm(m, s) for m, s in zip(t["paper_acc_mean"], t["paper_acc_std"], strict=True)],
        "paper error (%)": t["paper_error_mean"].map(fmt),
    })
    return shown


def plot(tables: list[tuple[str, pd.DataFrame]]) -> plt.Figure:
    """Per group: reproduced test error and parameterless count per combination; the paper's error."""
    theme()
    fig, axes = plt.subplots(len(tables), 3, figsize=(14, 3.8 * len(tables)), squeeze=False)
    for row, (name, t) in zip(axes, tables, strict=True):
        x = range(len(t))
        labels = [combo_name(*c) for c in zip(t["td"], t["ga_theta"], t["ga_alpha"], strict=True)]
        panels = [("test_error", f"Reproduced: {name}", "test error (%)", "tab:blue"),
                  ("parameterless", f"Reproduced: {name}", "parameterless ops in normal cell", "tab:red"),
                  ("paper_error", "Paper (ROME Table 6, CIFAR-10)", "test error (%)", "0.3")]
        for ax, (col, title, ylabel, color) in zip(row, panels, strict=True):
            std = t.get(f"{col}_std")
            ax.errorbar(x, t[f"{col}_mean"], yerr=None if std is None else std.fillna(0), fmt="o", color=color,
                        capsize=4, markersize=7)
            ax.set_xticks(list(x), labels, rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
            ax.set_xlabel("components switched on")
            ax.set_ylabel(ylabel)
            ax.set_title(wrap(title), fontsize=10)
            if col == "parameterless":
                ax.set_ylim(-0.3, 8.3)
    fig.suptitle("ROME ablation (Table 6): mean ± std over seeds", fontsize=11)
    fig.tight_layout()
    return fig


def build(runs: pd.DataFrame, out: Path, runs_dir: str | Path) -> Section:
    section = Section("ablation", "Ablation of ROME's components (Table 6)")
    groups = ablation_groups(runs)
    if not groups:
        section.messages.append(
            f"ablation: no ROME runs with toggles found in {runs_dir}; run "
            f"`harness run --ablation --bench s0-c10 --budget paper --seeds 0,1,2 --out {runs_dir}`")
        return section
    blocks = ["Test error of the derived architecture, mean ± std over seeds (sample std), and the number of "
              "parameterless ops in its normal cell. The paper reports accuracy on CIFAR-10 (S0) with "
              "K = 7 and 3 seeds; its error is 100 − accuracy."]
    csv_parts, figure_tables = [], []
    for key, g in groups:
        info = dict(zip(GROUP, key, strict=True))
        name = f"{info['method']}, {info['bench']}, {info['budget']}, K={fmt(info['k'], 0)}{settings_text(g, EPOCHS)}"
        t = table(g)
        csv_parts.append(t.assign(**info, settings=settings_text(g, EPOCHS)[2:]))
        figure_tables.append((name, t))
        blocks.append(f"## {name}, {fmt(info['search_epochs'], 0)} search epochs")
        if (note := budget_note({info["budget"]})) is not None:
            blocks.append(note)
        missing = [combo_label(*c) for c, n in zip(ABLATION, t["n"], strict=True) if n == 0]
        if missing:
            msg = (f"ablation ({name}): {len(missing)} of 8 combinations have no runs ({', '.join(missing)}); "
                   f"run `harness run --ablation --method {info['method']} --bench {info['bench']} "
                   f"--budget {info['budget']} --out {runs_dir}`")
            section.messages.append(msg)
            blocks.append(f"Missing: {', '.join(missing)} (TD/GA-θ/GA-α) {DASH} no complete runs.")
        blocks.append(section.show(name, displayed(t), f"Ablation of ROME's components (Table 6): {name}",
                                   best={"test error (%)": "min", "paper error (%)": "min"}))
        section.tables[name] = t
    out.mkdir(parents=True, exist_ok=True)
    section.files += save_figure(plot(figure_tables), out, "ablation")
    blocks.append("![ablation](ablation.png)")
    section.files.append(write_csv(pd.concat(csv_parts, ignore_index=True), out / "ablation.csv"))
    section.files.insert(0, write_markdown(out / "ablation.md", section.title, blocks))
    return section
