"""What every report builder shares: its result (:class:`Section`), number formats and file writers."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written to files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness.utils.paths import slug as _slug  # noqa: E402
from reports.escape import md, plain_text_figures  # noqa: E402

plain_text_figures()  # strings from result files are never parsed as mathtext

DASH = "—"
PAPER_BUDGET = "paper"


@dataclass
class Shown:
    """A table as displayed (strings), written as Markdown, LaTeX (``reports.latex``) and HTML
    (``reports.html``). ``best``: column -> ``"min"``/``"max"``, whose best value (the leading number
    of a cell) is set in bold, within each group of rows sharing the ``group`` column when given."""

    frame: pd.DataFrame
    caption: str
    best: dict[str, str] = field(default_factory=dict)
    group: str | None = None


@dataclass
class Section:
    """One report's outcome: the files it wrote and what it has to say (missing runs, caveats)."""

    name: str
    title: str
    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    shown: dict[str, Shown] = field(default_factory=dict)

    @property
    def written(self) -> bool:
        return bool(self.files)

    def show(self, name: str, frame: pd.DataFrame, caption: str, best: dict[str, str] | None = None,
             group: str | None = None) -> str:
        """Keep ``frame`` as the displayed table ``name`` (for LaTeX and HTML); returns its Markdown."""
        self.shown[name] = Shown(frame.reset_index(drop=True), caption, dict(best or {}), group)
        return md_table(frame)


def fmt(x: Any, digits: int = 2) -> str:
    """A number, or a dash for a missing one."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if isinstance(x, int | float):
        return f"{x:.{digits}f}"
    return str(x)


def pm(mean: Any, std: Any = None, digits: int = 2) -> str:
    """``mean ± std`` (std left out when missing, e.g. a single seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return fmt(mean, digits)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mark(flag: Any) -> str:
    """✓ / ✗ for a toggle (as in the paper's Table 6)."""
    if flag is None or (isinstance(flag, float) and math.isnan(flag)):
        return DASH
    return "✓" if bool(flag) else "✗"


def slug(*parts: Any) -> str:
    """A safe file-name component (:func:`harness.utils.paths.slug`, the one rule for names from data)."""
    return _slug(*parts)


def budget_note(budgets: list[str] | set[str]) -> str | None:
    """The caveat a table needs when its runs were not made with the paper's protocol."""
    other = sorted(b for b in budgets if b != PAPER_BUDGET)
    if not other:
        return None
    names = ", ".join(f"'{md(b)}'" for b in other)
    return (f"**Budget {names}: the reproduced numbers come from a reduced protocol and are not comparable to "
            f"the paper's values** (only budget 'paper' follows the paper's protocol).")


def md_table(df: pd.DataFrame, raw: tuple[str, ...] = ()) -> str:
    """``df`` as a Markdown table; every cell and header escaped (:func:`reports.escape.md`) except the
    columns named in ``raw``, which the caller has built from escaped parts (links)."""
    shown = df.copy()
    for col in shown.columns:
        if col not in raw:
            shown[col] = shown[col].map(lambda v: v if isinstance(v, int | float) and not isinstance(v, bool)
                                        else md(v))
    shown.columns = [c if c in raw else md(c) for c in shown.columns]
    return shown.to_markdown(index=False, disable_numparse=True)


def write_markdown(path: Path, title: str, blocks: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n" + "\n\n".join(b.strip() for b in blocks if b) + "\n")
    return path


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def save_figure(fig: plt.Figure, out: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``; close the figure."""
    out.mkdir(parents=True, exist_ok=True)
    stem = slug(stem)  # a stem made from data (a run id) never leaves ``out``
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def theme() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    """Mean, sample standard deviation (NaN for one value) and count of the non-missing values."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, int(len(v))


def complete(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "complete"] if not runs.empty else runs


def wrap(text: str, width: int = 48) -> str:
    """A label on lines of at most ``width`` characters, for figures: a configuration's label lists every
    changed field and would otherwise push the axes off the figure."""
    return textwrap.fill(str(text), width, break_long_words=False, break_on_hyphens=False)


def palette(names: list[str]) -> dict[str, Any]:
    """One distinct colour per name, for any number of names: tab10 up to ten, evenly spaced hues beyond
    (a fixed 10-colour table raised ``KeyError`` for the eleventh method)."""
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def variant_key(df: pd.DataFrame) -> str:
    """The column that tells configurations apart: ``config_id`` (:mod:`reports.data`), or ``label`` in a
    frame made without one."""
    return "config_id" if "config_id" in df else "label"


def main_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of one configuration per benchmark, budget and method - what a paper table or Fig. 3 shows.

    A configuration is a config id (the spec without the seed, :func:`harness.runs.read.config_id`), so
    runs of different specs are never pooled. Among the configurations with every ROME toggle on
    (ablation runs switch one off) the one with most runs wins; ties go to the defaults of the budget,
    then to the method's default options, then to the longer search.
    """
    if df.empty:
        return df
    toggles = df[["td", "ga_theta", "ga_alpha"]]
    full = df[toggles.isna().all(axis=1) | toggles.fillna(True).astype(bool).all(axis=1)]
    key = variant_key(full)
    if "default" not in full:
        full = full.assign(default=False)
    keep = []
    for _, g in full.groupby(["bench", "budget", "method"], sort=True):
        per = g.groupby(key, sort=True).agg(n=("run_id", "nunique"), label=("label", "first"),
                                            epochs=("search_epochs", "max"), default=("default", "first"))
        method = g["method"].iloc[0]
        best = max(per.index, key=lambda v: (per.at[v, "n"], bool(per.at[v, "default"]), per.at[v, "label"] == method,
                                             -1 if pd.isna(per.at[v, "epochs"]) else per.at[v, "epochs"]))
        keep.append(g[g[key] == best])
    return pd.concat(keep) if keep else df.iloc[:0]
