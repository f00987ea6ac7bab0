"""Fig. 3: collapse during search - skip-connections (and all parameterless ops) in the derived normal cell
per epoch, one line per method variant, mean and ± 1 std band over seeds, next to the supernet's search
validation accuracy per epoch (a collapse count of an untrained supernet is noise; Fig. 3's counts
come from a supernet that learns) and the mean op entropy of the normal cell (a count derived from an
architecture distribution that stayed uniform is noise too: the entropy shows that it moved).

One figure per benchmark and budget (``collapse_<bench>_<budget>.png``); ``collapse.csv`` holds the
plotted means, standard deviations and seed counts.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from reports.common import (
    Section,
    budget_note,
    main_variants,
    palette,
    pm,
    save_figure,
    slug,
    theme,
    wrap,
    write_csv,
    write_markdown,
)
from reports.escape import md

INDICATORS = [("skip_connect_normal", "skip-connections in normal cell"),
              ("parameterless_normal", "parameterless ops in normal cell"),
              ("val_acc", "search validation accuracy (%)"),
              ("op_entropy_normal", "op entropy of normal cell (nats)")]


def summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per bench, budget, method variant and epoch: mean, std and seeds of both indicators."""
    agg = history.groupby(["bench", "budget", "label", "epoch"], sort=True).agg(
        n=("seed", "nunique"),
        skip_connect_mean=("skip_connect_normal", "mean"), skip_connect_std=("skip_connect_normal", "std"),
        parameterless_mean=("parameterless_normal", "mean"), parameterless_std=("parameterless_normal", "std"),
        val_acc_mean=("val_acc", "mean"), val_acc_std=("val_acc", "std"),
        op_entropy_mean=("op_entropy_normal", "mean"), op_entropy_std=("op_entropy_normal", "std"))
    return agg.reset_index()


def split_by_epochs(history: pd.DataFrame) -> pd.DataFrame:
    """Append ``, N epochs`` to a variant's label where its runs searched for different numbers of epochs
    (a mean over runs of different lengths would mix schedules)."""
    history = history.copy()
    counts = history.groupby(["bench", "budget", "label"])["search_epochs"].transform("nunique")
    mixed = counts > 1
    history.loc[mixed, "label"] = [f"{lab}, {int(e)} epochs" for lab, e in
                                   zip(history.loc[mixed, "label"], history.loc[mixed, "search_epochs"], strict=True)]
    return history


def plot(history: pd.DataFrame, title: str) -> plt.Figure:
    """Four panels (skip-connections, parameterless ops, search validation accuracy, op entropy of the
    normal cell) of one benchmark and budget; x is the search epoch. Results recorded before the
    entropy was leave its panel empty, with a note."""
    theme()
    labels = sorted(history["label"].unique())
    colors = palette(labels)
    # lines of different methods often coincide (small integer counts): dodge them a little along x and
    # give each its own marker and dash pattern, so that none hides another
    epochs = sorted(history["epoch"].unique())
    step = 0.25 * (epochs[-1] - epochs[0] or 1) / max(len(epochs), 2) / max(len(labels), 1)
    offset = {lab: (i - (len(labels) - 1) / 2) * step for i, lab in enumerate(labels)}
    data = history.assign(epoch=history["epoch"] + history["label"].map(offset))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2), sharex=True)
    for ax, (col, ylabel) in zip(axes, INDICATORS, strict=True):
        if history[col].isna().all():  # results made before the entropy was recorded
            ax.text(0.5, 0.5, "not recorded in these results", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel("search epoch")
            ax.set_ylabel(ylabel)
            continue
        sns.lineplot(data=data, x="epoch", y=col, hue="label", hue_order=labels, palette=colors,
                     style="label", style_order=labels, markers=True, dashes=True, markersize=7,
                     errorbar="sd", ax=ax, legend=ax is axes[0])
        ax.set_xlabel("search epoch")
        ax.set_ylabel(ylabel)
        if col == "val_acc":
            ax.set_ylim(0, 100)
        elif col == "op_entropy_normal":
            ax.set_ylim(bottom=0)
        else:
            ax.set_ylim(-0.3, 8.3)
            ax.set_yticks(range(0, 9))
    handles, names = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    seeds = history.groupby("label")["seed"].nunique()
    names = [wrap(f"{n} ({seeds.get(n, 0)} seeds)") for n in names]
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=9,
               title="lines: mean over seeds, bands: ± 1 std", title_fontsize=9, bbox_to_anchor=(0.5, -0.02))
    if len(epochs) <= 12:
        for ax in axes:
            ax.set_xticks(epochs)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(names) - 1) // 4), 1, 1))
    return fig


def build(history: pd.DataFrame, out: Path, runs_dir: str | Path, complete_ids: set[str] | None = None) -> Section:
    section = Section("collapse", "Collapse during search (Fig. 3)")
    if complete_ids is not None and not history.empty:
        history = history[history["run_id"].isin(complete_ids)]
    if history.empty:
        section.messages.append(
            f"collapse: no search histories found in {runs_dir}; run "
            f"`harness run --method gdas,rome-v2 --bench s0-c10 --seeds 0,1,2 --out {runs_dir}`")
        return section
    blocks = ["Number of skip-connections (left) and of parameterless ops (middle: skip, pooling, none) in the "
              "normal cell derived after each search epoch, and the supernet's search validation accuracy "
              "(third; counts of a supernet that has not learnt are noise), and the mean entropy of the normal "
              "cell's op distributions softmax(alpha) (right; at the start log of the number of ops: a falling "
              "line shows that the architecture moved away from uniform); lines are means over seeds, bands "
              "± 1 std. "
              "The paper's Fig. 3 shows GDAS collapsing towards skip-connections while ROME stays low."]
    history = split_by_epochs(history)
    table = summary(history)
    table["plotted"] = False
    for (bench, budget), g in history.groupby(["bench", "budget"], sort=True):
        stem = slug("collapse", bench, budget)
        name = f"{bench}, budget {budget}"
        shown_runs = main_variants(g)
        plotted = set(shown_runs["label"])
        table.loc[(table["bench"] == bench) & (table["budget"] == budget) & table["label"].isin(plotted),
                  "plotted"] = True
        section.files += save_figure(plot(shown_runs, f"Collapse indicators during search: {name}"), out, stem)
        if len(plotted) < g["label"].nunique():
            blocks.append(f"## {md(name)}")
            blocks.append(f"The figure shows one variant per method ({md(', '.join(sorted(plotted)))}); the other "
                          f"variants (ablation, K sweep) are in the table below and in `collapse.csv`.")
        else:
            blocks.append(f"## {md(name)}")
        if (note := budget_note({budget})) is not None:
            blocks.append(note)
        last = table[(table["bench"] == bench) & (table["budget"] == budget)]
        first = last.loc[last.groupby("label")["epoch"].idxmin()].set_index("label")["op_entropy_mean"]
        last = last.loc[last.groupby("label")["epoch"].idxmax()]
        shown = pd.DataFrame({
            "method": last["label"], "last epoch": last["epoch"].astype(int), "seeds": last["n"],
            "skip-connections": [pm(m, s, 1) for m, s in zip(last["skip_connect_mean"], last["skip_connect_std"],
                                                             strict=True)],
            "parameterless": [pm(m, s, 1) for m, s in zip(last["parameterless_mean"], last["parameterless_std"],
                                                          strict=True)],
            "search val acc (%)": [pm(m, s, 1) for m, s in zip(last["val_acc_mean"], last["val_acc_std"],
                                                               strict=True)],
            "op entropy (nats), first → last epoch": [
                f"{pm(first[lab])} → {pm(m, s, 2)}" for lab, m, s in zip(last["label"], last["op_entropy_mean"],
                                                                          last["op_entropy_std"], strict=True)],
        })
        shown_md = section.show(name, shown, f"Collapse indicators at the last search epoch: {name}",
                                best={"skip-connections": "min", "parameterless": "min"})
        blocks += ["At the last search epoch:", shown_md, f"![collapse {md(name)}]({stem}.png)"]
    section.tables["collapse"] = table
    section.files.append(write_csv(table, out / "collapse.csv"))
    section.files.insert(0, write_markdown(out / "collapse.md", section.title, blocks))
    return section
