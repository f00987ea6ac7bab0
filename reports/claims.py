"""The claims of :mod:`harness.claims` over recorded runs, as ``claims.md`` and ``claims.csv``
(``harness report --claims``).

A claim is evaluated per variant: runs are pooled over seeds only within one configuration (config id),
and groups of different methods are compared only when they change the same spec fields from their
defaults (``variant``, :func:`harness.claims.evaluate`); each variant is one row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.claims import ALPHA, evaluate, table
from reports.common import md_table
from reports.data import load_runs

Frame = pd.DataFrame


def load(runs_dir: str | Path) -> Frame:
    """One row per run (:func:`reports.data.load_runs`: with the final search validation accuracy, the
    options, the config id and the changed spec fields that the claims read)."""
    return load_runs(runs_dir)


def write_report(runs_dir: str | Path, out: str | Path, budget: str = "cpu", runs: Frame | None = None
                 ) -> list[Path]:
    """``claims.md`` and ``claims.csv`` in ``out`` for the runs of ``budget`` under ``runs_dir`` (``runs``:
    those runs already loaded)."""
    outcomes = evaluate(load(runs_dir) if runs is None else runs, budget)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame([o.row() for o in outcomes])
    csv = out / "claims.csv"
    df.to_csv(csv, index=False)
    md = out / "claims.md"
    blocks = [f"# Claims as tests over seeds (budget {budget})",
              f"A claim holds when its test rejects the null at {ALPHA} (one-sided unless stated); effects are "
              "differences of means (first group minus second) with 95 % intervals. A claim that does not hold "
              "is a finding at this scale. Runs are pooled over seeds only when their specs differ in nothing "
              "else; each variant (the spec fields changed from the defaults, `defaults` for none) is a row of "
              "its own.", md_table(table(outcomes), raw=("holds",)) if outcomes else
              f"No runs of budget {budget} under {runs_dir}."]
    md.write_text("\n\n".join(blocks) + "\n")
    return [md, csv]


__all__ = ["load", "write_report"]
