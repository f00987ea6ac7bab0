"""Every displayed table of a report as a LaTeX ``table`` (booktabs rules) to paste into a paper.

Written through pandas' ``Styler.to_latex`` (``hrules=True``: ``\\toprule``/``\\midrule``/``\\bottomrule``);
cells are escaped for LaTeX by the Styler, then the few non-ASCII symbols the tables use become math
(``±`` -> ``$\\pm$``, ``Δ`` -> ``$\\Delta$``, ...), so that plain ``pdflatex`` compiles them. The best
value of the columns a :class:`~reports.common.Shown` names is set in bold (per group of rows when it
has one). The preamble needs ``\\usepackage{booktabs}`` (and ``amssymb`` for ✓).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from reports.common import Section, Shown, slug

#: the non-ASCII characters of the displayed tables and their LaTeX (applied after escaping)
SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "θ": r"$\theta$", "α": r"$\alpha$", "÷": r"$\div$",
           "—": "--", "−": "$-$", "×": r"$\times$", "✓": r"$\checkmark$", "✗": r"$\times$", "≤": r"$\leq$",
           "≥": r"$\geq$", "→": r"$\rightarrow$", "←": r"$\leftarrow$"}
_SYMBOL = re.compile("|".join(map(re.escape, SYMBOLS)))
_LEADING_NUMBER = re.compile(r"^\s*\[?(-?\d+(?:\.\d+)?)")
PREAMBLE = r"% needs \usepackage{booktabs} (and \usepackage{amssymb} for \checkmark) in the preamble"


def symbols(text: str) -> str:
    """Replace the non-ASCII symbols of :data:`SYMBOLS` (on already escaped text)."""
    return _SYMBOL.sub(lambda m: SYMBOLS[m.group(0)], text)


def leading_number(cell: object) -> float:
    """``2.76`` of ``"2.76 ± 0.09"``; NaN for a dash or text."""
    m = _LEADING_NUMBER.match(str(cell))
    return float(m.group(1)) if m else np.nan


def best_mask(shown: Shown) -> pd.DataFrame:
    """True where a cell holds the best value of its column (within its group)."""
    frame = shown.frame
    mask = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    groups = frame[shown.group] if shown.group in frame else pd.Series(0, index=frame.index)
    for col, how in shown.best.items():
        if col not in frame:
            continue
        values = frame[col].map(leading_number)
        for _, idx in values.groupby(groups, sort=False).groups.items():
            v = values.loc[idx]
            if v.notna().sum() < 2:  # one number is not "best" of anything
                continue
            target = v.min() if how == "min" else v.max()
            mask.loc[idx, col] = v == target
    return mask


def to_latex(shown: Shown, label: str) -> str:
    """One ``table`` environment: booktabs rules, escaped cells, bold best values, caption and label."""
    frame = shown.frame.astype(str)
    bold = best_mask(shown)
    styler = (frame.style.hide(axis="index")
              .format(symbols, escape="latex")
              .format_index(symbols, escape="latex", axis=1)
              .apply(lambda col: np.where(bold[col.name], "textbf:--rwrap;", ""), axis=0))
    align = "".join("r" if frame[c].map(leading_number).notna().any() else "l" for c in frame.columns)
    body = styler.to_latex(hrules=True, column_format=align, position="htbp", position_float="centering",
                           caption=symbols(_escape(shown.caption)), label=label)
    return f"{PREAMBLE}\n{body}"


def _escape(text: str) -> str:
    """A caption through the Styler's own LaTeX escaping (a one-cell frame)."""
    styler = pd.DataFrame([[text]]).style.hide(axis="index").hide(axis="columns").format(escape="latex")
    return styler.to_latex().splitlines()[1].removesuffix("\\\\").strip()


def write_tables(section: Section, out: Path) -> list[Path]:
    """``<section>_<table>.tex`` for every displayed table of ``section``; returns the paths."""
    paths = []
    for name, shown in section.shown.items():
        stem = slug(section.name, name)
        path = Path(out) / "tex" / f"{stem}.tex"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_latex(shown, f"tab:{stem}"))
        paths.append(path)
    return paths
