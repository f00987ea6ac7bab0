"""The claims of :mod:`harness.evidence.claims` over recorded runs, as ``claims.md``, ``claims.csv``,
``claims.tex`` and ``claims.html`` (``harness report --claims``, ``harness reproduce``).

Every declared claim has a row (``not evaluated: <reason>`` when its runs are missing); a claim is
evaluated per variant: runs are pooled over seeds only within one configuration (config id), and
configurations are compared only when they change the same spec fields from their defaults. Raw and
Holm-adjusted p-values are both shown.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from harness.evidence.claims import ALPHA, ERROR_MARGIN, evaluate, table
from reports.common import Shown, md_table
from reports.data import load_all, load_profiles
from reports.html import plain_table_html
from reports.latex import to_latex

Frame = pd.DataFrame


RULES = (f"Each claim was declared before the runs (harness/evidence/claims.py): the runs it reads, its hypothesis "
         "in the "
         f"paper's direction and its test. A tested row holds when its Holm-adjusted p (over every tested row "
         f"of this table) is below {ALPHA}; rows without a p-value are exact counts. \"Not worse\" rows are "
         f"non-inferiority tests with a margin of {ERROR_MARGIN:g} test-error points fixed in advance, so no "
         "claim holds on a failure to reject; parameterless counts are compared with their chance level under a "
         "uniform architecture, per space and derivation rule. Runs are pooled over seeds only when their specs "
         "differ in nothing else; each variant (the spec fields changed from the defaults, `defaults` for none) "
         "is a row of its own. A claim whose runs are missing says so.")


def write_report(runs_dir: str | Path, out: str | Path, budget: str = "cpu", runs: Frame | None = None,
                 history: Frame | None = None, profiles_dir: str | Path | None = None,
                 names: list[str] | None = None) -> list[Path]:
    """``claims.md``, ``claims.csv``, ``claims.tex`` and ``claims.html`` in ``out`` for the runs of ``budget``
    under ``runs_dir`` (``runs``/``history``: already loaded; profiles from ``profiles_dir``, default the
    runs folder); ``names``: only these claims."""
    if runs is None or history is None:
        runs, history = load_all(runs_dir)
    profiles = load_profiles(Path(profiles_dir) if profiles_dir is not None else Path(runs_dir))
    outcomes = evaluate(runs, budget, names, history=history, profiles=profiles)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame([o.row() for o in outcomes])
    csv = out / "claims.csv"
    df.to_csv(csv, index=False)
    shown = table(outcomes)
    md = out / "claims.md"
    md.write_text("\n\n".join([f"# The paper's claims as tests (budget {budget})", RULES,
                               md_table(shown, raw=("holds",))]) + "\n")
    caption = f"The paper's claims as tests (budget {budget})"
    plain = shown.assign(holds=shown["holds"].str.replace("*", "", regex=False))
    tex = out / "claims.tex"
    tex.write_text(to_latex(Shown(plain.drop(columns=["hypothesis", "numbers"]), caption), "tab:claims") + "\n")
    page = out / "claims.html"
    page.write_text(f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(caption)}</title>"
                    f"</head><body>\n<h1>{html.escape(caption)}</h1>\n<p>{html.escape(RULES)}</p>\n"
                    f"{plain_table_html(plain, caption)}\n</body></html>\n")
    return [md, csv, tex, page]


def _g3(value: object) -> str:
    return f"{float(value):.3g}" if isinstance(value, int | float) and pd.notna(value) else "-"


def headline(csv: str | Path) -> str:
    """The Markdown table of a ``claims.csv`` (as :func:`write_report` writes it) that the README shows between
    its ``headline-claims`` markers: claim, variant, effect, raw and Holm p, whether it holds, its numbers."""
    df = pd.read_csv(csv)
    rows = ["| claim | variant | effect | p | Holm p | holds | numbers |",
            "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in df.itertuples():
        untested = "not evaluated" if str(r.detail).startswith("not evaluated") else "-"
        holds = {"True": "yes", "False": "**no**"}.get(str(r.holds), untested)
        rows.append(f"| {r.claim} | {r.variant} | {_g3(r.effect)} | {_g3(r.p)} | {_g3(r.p_holm)} | {holds} "
                    f"| {r.detail} |")
    return "\n".join(rows)


__all__ = ["RULES", "headline", "write_report"]
