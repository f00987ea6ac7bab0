"""The paper's published numbers (ROME Tables 1-7), as CSV files in ``reports/published``.

Read here, below both ``harness check`` (which compares paper-budget runs with them) and ``reports``
(which prints them beside reproduced numbers), so that neither layer imports the other.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED = Path(__file__).resolve().parents[1] / "reports" / "published"


def published(table: int) -> pd.DataFrame:
    """The paper's Table ``table`` (1-7) as published (``reports/published/table<N>.csv``)."""
    path = PUBLISHED / f"table{table}.csv"
    if not path.exists():
        raise ValueError(f"no published numbers for Table {table}; have: "
                         + ", ".join(p.stem for p in sorted(PUBLISHED.glob("table*.csv"))))
    df = pd.read_csv(path)
    for col in ("td", "ga_theta", "ga_alpha", "single_path"):
        if col in df:
            df[col] = df[col].astype(bool)
    return df
