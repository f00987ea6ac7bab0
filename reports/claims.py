"""The claims of :mod:`harness.claims` over recorded runs, as ``claims.md`` and ``claims.csv``
(``harness report --claims``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.claims import ALPHA, evaluate, table
from reports.common import md_table
from reports.data import _read_results, load_runs

Frame = pd.DataFrame


def load(runs_dir: str | Path) -> Frame:
    """One row per run: :func:`reports.data.load_runs` plus the final search validation accuracy and options."""
    runs = load_runs(runs_dir)
    if runs.empty:
        return runs
    results, _ = _read_results(Path(runs_dir))
    final = {}
    options = {}
    for path, r in results:
        run_id = r.get("run_id", path.parent.name)
        history = (r.get("search") or {}).get("history") or []
        final[run_id] = history[-1].get("val_acc") if history else None
        options[run_id] = r.get("options") or {}
    runs["search_val_acc"] = pd.to_numeric(runs["run_id"].map(final), errors="coerce")
    runs["options"] = runs["run_id"].map(options)
    return runs


def write_report(runs_dir: str | Path, out: str | Path, budget: str = "cpu") -> list[Path]:
    """``claims.md`` and ``claims.csv`` in ``out`` for the runs of ``budget`` under ``runs_dir``."""
    outcomes = evaluate(load(runs_dir), budget)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame([o.row() for o in outcomes])
    csv = out / "claims.csv"
    df.to_csv(csv, index=False)
    md = out / "claims.md"
    blocks = [f"# Claims as tests over seeds (budget {budget})",
              f"A claim holds when its test rejects the null at {ALPHA} (one-sided unless stated); effects are "
              "differences of means (first group minus second) with 95 % intervals. A claim that does not hold "
              "is a finding at this scale.", md_table(table(outcomes), raw=("holds",)) if outcomes else
              f"No runs of budget {budget} under {runs_dir}."]
    md.write_text("\n\n".join(blocks) + "\n")
    return [md, csv]


__all__ = ["load", "write_report"]
