"""Tables 1-4: reproduced results over seeds beside the paper's published numbers.

* Table 1 - S1-S4 x CIFAR-10/CIFAR-100/SVHN: error and parameterless ops ('Num') of DARTS, GDAS, ROME.
* Table 2 - S0 on CIFAR-10, Table 3 - S0 on CIFAR-100: params, FLOPs (multiply-adds), error;
  '(avg.)' rows beside our mean ± std over seeds, '(best)' rows beside our best seed.
* Table 4 - S0 on ImageNet, direct search block: top-1 accuracy (= 100 - test error).

Only the paper's rows for a method this harness runs (``method_id`` in ``reports/published``) and
a benchmark with runs are shown; the other rows stay in the published CSVs. Reproduced values use one
variant per method (:func:`~reports.common.main_variants`: not the ablation's, the one with most runs;
its options are named when they are not the defaults). Runs on benchmarks that no paper table covers
(the offline ``digits`` stand-ins) are listed on their own.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.evidence.published import ASSUMED_N, published_n
from harness.evidence.verdict import ROUNDING, ROUNDING_TABLE4, confidence_interval, judge, judge_difference
from harness.spec.benchmarks import BENCHMARKS
from reports.common import (
    DASH,
    Section,
    budget_note,
    complete,
    fmt,
    main_variants,
    mean_std,
    palette,
    pm,
    save_figure,
    theme,
    wrap,
    write_csv,
    write_markdown,
)
from reports.data import published

TITLES = {1: "Table 1: S1-S4 on CIFAR-10, CIFAR-100 and SVHN",
          2: "Table 2: S0 on CIFAR-10", 3: "Table 3: S0 on CIFAR-100", 4: "Table 4: S0 on ImageNet (direct search)"}


def default_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Complete runs of one variant per benchmark, budget and method (:func:`~reports.common.main_variants`:
    ablation variants left out, the variant with most runs kept)."""
    return main_variants(complete(runs))


def _paper_rows(table: int) -> pd.DataFrame:
    p = published(table)
    p = p[p["method_id"].notna()]
    if table == 4:
        p = p[p["block"] == "direct"]
    return p


def reproduced(sel: pd.DataFrame, stat: str) -> dict[str, float]:
    """Mean ± std over seeds (``avg``/``single`` rows) or the best seed (``best`` rows)."""
    if sel.empty:
        return {"n": 0}
    if stat == "best":
        best = sel.loc[sel["test_error"].idxmin()]
        return {"n": len(sel), "error_mean": best["test_error"], "error_std": np.nan,
                "params_m": best["params"] / 1e6, "params_std": np.nan, "macs_m": best["macs"] / 1e6,
                "macs_std": np.nan, "num_mean": best["parameterless_normal"], "num_std": np.nan}
    err, err_sd, n = mean_std(sel["test_error"])
    par, par_sd, _ = mean_std(sel["params"] / 1e6)
    mac, mac_sd, _ = mean_std(sel["macs"] / 1e6)
    num, num_sd, _ = mean_std(sel["parameterless_normal"])
    return {"n": n, "error_mean": err, "error_std": err_sd, "params_m": par, "params_std": par_sd,
            "macs_m": mac, "macs_std": mac_sd, "num_mean": num, "num_std": num_sd}


def compare(table: int, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per paper row x budget of the runs on its benchmark (numeric; for CSV)."""
    paper = _paper_rows(table)
    runs = default_runs(runs)
    rows = []
    for p in paper.itertuples():
        on_bench = runs[(runs["bench"] == p.bench)] if not runs.empty else runs
        if on_bench.empty:
            continue
        for budget, by_budget in on_bench.groupby("budget", sort=True):
            sel = by_budget[by_budget["method"] == p.method_id]
            r = reproduced(sel, getattr(p, "stat", "avg"))
            row = {"table": table, "source": p.source, "bench": p.bench, "paper_method": getattr(p, "model", None)
                   or p.method, "method_id": p.method_id, "stat": getattr(p, "stat", "avg"),
                   "variant": sel["label"].iloc[0] if not sel.empty else p.method_id, "budget": budget,
                   "comparable": budget == "paper", **r}
            if table == 4:
                row.update(paper_acc=p.top1_acc, paper_params_m=p.params_m, paper_flops_m=p.flops_m,
                           acc_mean=100.0 - r["error_mean"] if r["n"] else np.nan)
                row["diff"] = row["acc_mean"] - p.top1_acc
                v = judge(100.0 - sel["test_error"], p.top1_acc, None, published_n(4), higher_is_better=True,
                          rounding=ROUNDING_TABLE4)
            else:
                row.update(paper_error_mean=p.error_mean, paper_error_std=p.error_std,
                           paper_params_m=getattr(p, "params_m", np.nan),
                           paper_flops_m=getattr(p, "flops_m", np.nan),
                           paper_num_mean=getattr(p, "num_mean", np.nan), paper_num_std=getattr(p, "num_std", np.nan))
                row["diff"] = r.get("error_mean", np.nan) - p.error_mean
                v = judge(sel["test_error"], p.error_mean, p.error_std, published_n(table, row["stat"]),
                          rounding=ROUNDING["error"])
                if table == 1 and pd.notna(p.num_mean):
                    w = judge(sel["parameterless_normal"], p.num_mean, p.num_std, published_n(1),
                              rounding=ROUNDING["num"])
                    row.update(num_verdict=w.verdict)
            if row["stat"] == "best":  # the best seed has no interval; the paper's best row no std
                row.update(ci_low=np.nan, ci_high=np.nan, verdict=np.nan)
            else:
                row.update(ci_low=v.ci_low, ci_high=v.ci_high, verdict=v.verdict, paper_n=v.published_n,
                           diff_low=v.diff_low, diff_high=v.diff_high, margin=v.margin, p_equivalent=v.p_equivalent,
                           p_better=v.p_better, p_worse=v.p_worse)
            rows.append(row)
    return pd.DataFrame(rows)


def differences(runs: pd.DataFrame) -> pd.DataFrame:
    """ROME-v2 minus each other method of the same paper table on the same benchmark and budget - the
    paper's claims are differences - judged against the published difference by
    :func:`harness.evidence.verdict.judge_difference` (error; Table 1 also 'Num'). Averaged and single published
    rows only ('best' rows have no spread)."""
    runs = default_runs(runs)
    rows: list[dict[str, object]] = []
    if runs.empty:
        return pd.DataFrame()
    for table in (1, 2, 3):
        paper = _paper_rows(table)
        if "stat" in paper:
            paper = paper[paper["stat"] != "best"]
        for bench, pb in paper.groupby("bench", sort=True):
            rome = pb[pb["method_id"] == "rome-v2"]
            on_bench = runs[runs["bench"] == bench]
            if rome.empty or on_bench.empty:
                continue
            a_pub = rome.iloc[0]
            for other in pb[pb["method_id"] != "rome-v2"].itertuples():
                for budget, g in on_bench.groupby("budget", sort=True):
                    a, b = g[g["method"] == "rome-v2"], g[g["method"] == other.method_id]
                    if a.empty or b.empty:
                        continue
                    n_a = published_n(table, a_pub.get("stat", "avg"))
                    n_b = published_n(table, getattr(other, "stat", "avg"))
                    v = judge_difference(a["test_error"], b["test_error"],
                                         (a_pub["error_mean"], a_pub["error_std"], n_a),
                                         (other.error_mean, other.error_std, n_b), rounding=ROUNDING["error"])
                    row: dict[str, object] = {
                        "table": table, "bench": bench, "budget": budget, "comparable": budget == "paper",
                        "pair": f"rome-v2 − {other.method_id}", "n_a": len(a), "n_b": len(b),
                        "paper_n": min(n_a, n_b), "paper_diff": v.published_mean, "diff_mean": v.mean,
                        "ci_low": v.ci_low, "ci_high": v.ci_high, "margin": v.margin, "delta_low": v.diff_low,
                        "delta_high": v.diff_high, "p_equivalent": v.p_equivalent, "p_better": v.p_better,
                        "p_worse": v.p_worse, "verdict": v.verdict}
                    if table == 1 and pd.notna(a_pub["num_mean"]) and pd.notna(other.num_mean):
                        w = judge_difference(a["parameterless_normal"], b["parameterless_normal"],
                                             (a_pub["num_mean"], a_pub["num_std"], n_a),
                                             (other.num_mean, other.num_std, n_b), rounding=ROUNDING["num"])
                        row.update(paper_num_diff=w.published_mean, num_diff_mean=w.mean, num_verdict=w.verdict)
                    rows.append(row)
    return pd.DataFrame(rows)


def displayed_differences(t: pd.DataFrame) -> pd.DataFrame:
    """The differences table as shown: published and reproduced differences and their verdicts."""
    shown = {"table": t["table"], "benchmark": t["bench"], "budget": t["budget"], "difference": t["pair"],
             "seeds": [f"{a}, {b}" for a, b in zip(t["n_a"], t["n_b"], strict=True)],
             "paper Δ error": t["paper_diff"].map(lambda v: fmt(v, 2)),
             "reproduced Δ error": t["diff_mean"].map(lambda v: fmt(v, 2)),
             "95 % CI": [_ci(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)],
             "margin": t["margin"].map(lambda v: fmt(v, 2)), "verdict": _verdicts(t)}
    if "num_verdict" in t:
        shown["paper Δ Num"] = t["paper_num_diff"].map(lambda v: fmt(v, 1))
        shown["reproduced Δ Num"] = t["num_diff_mean"].map(lambda v: fmt(v, 1))
        shown["verdict Num"] = _verdicts(t, "num_verdict")
    return pd.DataFrame(shown)


def _ci(low: float, high: float, digits: int = 2) -> str:
    return DASH if pd.isna(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _verdicts(t: pd.DataFrame, column: str = "verdict") -> list[str]:
    """The verdict, or why there is none: a reduced budget is not compared with the paper."""
    out = []
    for v, budget, comparable in zip(t[column], t["budget"], t["comparable"], strict=True):
        if pd.isna(v):
            out.append(DASH)
        elif not comparable:
            out.append(f"n/a (budget {budget})")
        else:
            out.append(v)
    return out


def displayed(table: int, t: pd.DataFrame) -> pd.DataFrame:
    """The table as shown (Markdown, LaTeX, HTML): paper beside reproduced, the 95 % CI and the verdict
    (:mod:`harness.evidence.verdict`)."""
    n = t["n"].astype(int)
    if table == 4:
        shown = {"method (paper)": t["paper_method"], "reproduced with": t["variant"], "budget": t["budget"],
                 "seeds": n,
                 "paper top-1 acc (%)": t["paper_acc"].map(fmt),
                 "reproduced top-1 acc (%)": [pm(100 - m if pd.notna(m) else m, s)
                                              for m, s in zip(t["error_mean"], t["error_std"], strict=True)],
                 "95 % CI": [_ci(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)],  # accuracy
                 "Δ acc": t["diff"].map(lambda v: fmt(v, 2)), "verdict": _verdicts(t),
                 "paper params (M)": t["paper_params_m"].map(lambda v: fmt(v, 1)),
                 "reproduced params (M)": t["params_m"].map(lambda v: fmt(v, 2)),
                 "paper FLOPs (M)": t["paper_flops_m"].map(lambda v: fmt(v, 0)),
                 "reproduced MACs (M)": t["macs_m"].map(lambda v: fmt(v, 0))}
        return pd.DataFrame(shown)
    shown = {"benchmark": t["bench"], "method (paper)": t["paper_method"], "reproduced with": t["variant"],
             "budget": t["budget"], "seeds": n,
             "paper error (%)": [pm(m, s) for m, s in zip(t["paper_error_mean"], t["paper_error_std"], strict=True)],
             "reproduced error (%)": [pm(m, s) for m, s in zip(t["error_mean"], t["error_std"], strict=True)],
             "95 % CI": [_ci(lo, hi) for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)],
             "Δ error": t["diff"].map(fmt), "verdict": _verdicts(t)}
    if table == 1:
        shown["paper Num"] = [pm(m, s, 1) for m, s in zip(t["paper_num_mean"], t["paper_num_std"], strict=True)]
        shown["reproduced Num"] = [pm(m, s, 1) for m, s in zip(t["num_mean"], t["num_std"], strict=True)]
        shown["verdict Num"] = _verdicts(t, "num_verdict") if "num_verdict" in t else DASH
    else:
        del shown["benchmark"]
        shown["paper params (M)"] = t["paper_params_m"].map(lambda v: fmt(v, 1))
        shown["reproduced params (M)"] = [pm(m, s) for m, s in zip(t["params_m"], t["params_std"], strict=True)]
        if table == 2:
            shown["paper FLOPs (M)"] = t["paper_flops_m"].map(lambda v: fmt(v, 0))
            shown["reproduced MACs (M)"] = [pm(m, s, 0) for m, s in zip(t["macs_m"], t["macs_std"], strict=True)]
    return pd.DataFrame(shown)


#: per table: the columns whose best value is bold (within each benchmark in Table 1)
BEST = {1: {"paper error (%)": "min", "reproduced error (%)": "min"},
        2: {"paper error (%)": "min", "reproduced error (%)": "min"},
        3: {"paper error (%)": "min", "reproduced error (%)": "min"},
        4: {"paper top-1 acc (%)": "max", "reproduced top-1 acc (%)": "max"}}


def others(runs: pd.DataFrame) -> pd.DataFrame:
    """Default-option runs on benchmarks no paper table covers, mean ± std per bench x budget x method."""
    covered = set().union(*(set(_paper_rows(t)["bench"]) for t in (1, 2, 3, 4)))
    runs = default_runs(runs)
    if runs.empty:
        return pd.DataFrame()
    rest = runs[~runs["bench"].isin(covered)]
    rows = []
    for (bench, budget, method), g in rest.groupby(["bench", "budget", "method"], sort=True):
        _, low, high = confidence_interval(g["test_error"])
        rows.append({"bench": bench, "budget": budget, "method": method, "variant": g["label"].iloc[0],
                     **reproduced(g, "avg"), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def plot(runs: pd.DataFrame, compared: pd.DataFrame) -> plt.Figure:
    """Test error per benchmark and method: seeds as dots, mean ± std as bars, the paper's value as ×."""
    theme()
    runs = default_runs(runs)
    benches = sorted(runs["bench"].unique(), key=lambda b: (b not in BENCHMARKS, b))
    methods = sorted(runs["method"].unique())
    colors = palette(methods)
    any_paper = False
    ncols = min(4, len(benches))
    nrows = -(-len(benches) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.5, 2.2 + 1.0 * len(methods)) * ncols, 4.2 * nrows),
                             squeeze=False)
    for ax in axes.flat[len(benches):]:
        ax.set_visible(False)
    for ax, bench in zip(axes.flat, benches, strict=False):
        g = runs[runs["bench"] == bench]
        for i, m in enumerate(methods):
            sel = g[g["method"] == m]
            for j, budget in enumerate(sorted(sel["budget"].unique())):
                b = sel[sel["budget"] == budget]
                x = i + 0.15 * j
                ax.scatter(np.full(len(b), x), b["test_error"], color=colors[m], alpha=0.45, s=18)
                mean, std, _ = mean_std(b["test_error"])
                ax.errorbar([x], [mean], yerr=[0 if np.isnan(std) else std], fmt="o", color=colors[m], capsize=5,
                            markersize=8, label=None)
            if not compared.empty:
                paper = compared[(compared["bench"] == bench) & (compared["method_id"] == m)
                                 & (compared["stat"] != "best")]
                if not paper.empty and "paper_error_mean" in paper:
                    ax.scatter([i + 0.3], [paper["paper_error_mean"].iloc[0]], marker="x", color="black", s=50,
                               zorder=5)
                    any_paper = True
        names = [wrap(", ".join(sorted(g.loc[g["method"] == m, "label"].unique())) or m, 32) for m in methods]
        ax.set_xticks(range(len(methods)), names, rotation=20, ha="right", rotation_mode="anchor")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        budgets = ", ".join(sorted(g["budget"].unique()))
        ax.set_title(f"{bench} (budget {budgets})", fontsize=10)
        ax.set_ylabel("test error (%)")
    handles = [plt.Line2D([], [], marker="o", ls="", color="0.3", label="reproduced mean ± std (dots: seeds)")]
    if any_paper:
        handles.append(plt.Line2D([], [], marker="x", ls="", color="black", label="paper (Tables 1-3)"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return fig


def build(runs: pd.DataFrame, out: Path, runs_dir: str | Path) -> Section:
    section = Section("benchmarks", "Benchmarks (Tables 1-4)")
    if default_runs(runs).empty:
        section.messages.append(
            f"benchmarks: no complete runs found in {runs_dir}; run "
            f"`harness run --method darts,gdas,rome-v2 --bench all --budget paper --seeds 0,1,2 --out {runs_dir}`")
        return section
    blocks = ["Reproduced: mean ± std over seeds of complete runs with each method's default options (ROME: "
              "ROME-v2, K = 7 unless the protocol says otherwise); Δ = reproduced − paper. The paper's rows for "
              "methods this harness does not run are in `reports/published/table<N>.csv`. 95 % CI: Student-t "
              "interval of the reproduced mean over seeds. Verdict (`harness.evidence.verdict`): an equivalence test "
              "(TOST on "
              "Welch's t) of reproduced − paper against the paper's mean, std and number of searches "
              f"(Table 1: {published_n(1)}, Table 2: {published_n(2)}, Table 3: {published_n(3)}"
              f"{' assumed' if 3 in ASSUMED_N else ''}), margin max(paper std, rounding), alpha 0.05: "
              "`reproduced` when equivalence is shown, `better`/`worse` when the difference lies beyond the margin, "
              "`inconclusive` otherwise (also below 2 seeds). With the paper's 3-4 searches its mean is itself "
              "uncertain by more than one std, so a row with a published std can be `better`, `worse` or "
              "`inconclusive`, but not `reproduced`."]
    parts = []
    for n in (1, 2, 3, 4):
        t = compare(n, runs)
        blocks.append(f"## {TITLES[n]}")
        if t.empty:
            benches = ", ".join(sorted(set(_paper_rows(n)["bench"])))
            blocks.append(f"No runs on {benches}.")
            section.messages.append(f"benchmarks: Table {n}: no runs on {benches}")
            continue
        if (note := budget_note(set(t["budget"]))) is not None:
            blocks.append(note)
        blocks.append(section.show(f"table{n}", displayed(n, t), TITLES[n], best=BEST[n],
                                   group="benchmark" if n == 1 else None))
        section.tables[f"table{n}"] = t
        parts.append(t)
    diffs = differences(runs)
    if not diffs.empty:
        blocks.append("## Differences between methods")
        blocks.append("The paper's claims are differences: ROME-v2 − another method on the same benchmark, ours "
                      "(mean over seeds, Welch 95 % CI) against the published difference, by the same rule "
                      "(`harness.evidence.verdict.judge_difference`; margin: the std of a difference of one search "
                      "each, "
                      "sqrt(std_A² + std_B²)). `better`: ROME-v2's lead exceeds the published one beyond the margin.")
        blocks.append(section.show("differences", displayed_differences(diffs), "Differences between methods",
                                   group="benchmark"))
        section.tables["differences"] = diffs
        section.files.append(write_csv(diffs, out / "benchmarks_differences.csv"))
    rest = others(runs)
    if not rest.empty:
        blocks.append("## Benchmarks without a paper counterpart")
        blocks.append("Offline stand-ins (e.g. the embedded digits) have no published numbers.")
        if (note := budget_note(set(rest["budget"]))) is not None:
            blocks.append(note)
        shown = pd.DataFrame({
            "benchmark": rest["bench"], "budget": rest["budget"], "method": rest["variant"],
            "seeds": rest["n"].astype(int),
            "error (%)": [pm(m, s) for m, s in zip(rest["error_mean"], rest["error_std"], strict=True)],
            "95 % CI": [_ci(lo, hi) for lo, hi in zip(rest["ci_low"], rest["ci_high"], strict=True)],
            "parameterless (normal)": [pm(m, s, 1) for m, s in zip(rest["num_mean"], rest["num_std"], strict=True)],
            "params (M)": [pm(m, s, 3) for m, s in zip(rest["params_m"], rest["params_std"], strict=True)],
            "paper": DASH})
        blocks.append(section.show("others", shown, "Benchmarks without a paper counterpart",
                                   best={"error (%)": "min"}, group="benchmark"))
        section.tables["others"] = rest
        parts.append(rest.assign(table="none"))
    with_paper = [p for p in parts if "paper_error_mean" in p]
    compared = pd.concat(with_paper, ignore_index=True) if with_paper else pd.DataFrame()
    section.files += save_figure(plot(runs, compared), out, "benchmarks")
    blocks.append("![benchmarks](benchmarks.png)")
    section.files.append(write_csv(pd.concat(parts, ignore_index=True), out / "benchmarks.csv"))
    section.files.insert(0, write_markdown(out / "benchmarks.md", section.title, blocks))
    return section
