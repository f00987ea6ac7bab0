"""One self-contained page, ``index.html``: every table and figure of a report on one page.

Figures are embedded as base64 PNG (``data:`` URIs), tables come from the sections' displayed tables
(:class:`~reports.common.Shown`, the same frames as the Markdown and LaTeX) through pandas'
``Styler.to_html``, best values in bold. The page needs no network and no JavaScript; it ends with the
runs it was built from: their config hashes, commits and status. Every string that comes from results
(run ids, labels, messages, cells) goes through :func:`html.escape`.

Drawings of single runs (``cells/``) are embedded up to :data:`MAX_EMBEDDED` per section and linked
beyond, and the runs table is written row by row, so that a page over 10,000 runs stays a page.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from reports.common import Section, Shown, slug
from reports.latex import best_mask

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 0.85em; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
thead th { border-bottom: 2px solid #444; } tbody tr:nth-child(even) { background: #f6f6f6; }
img { max-width: 100%; display: block; margin: 0.6em 0 1.4em; border: 1px solid #eee; }
.msg { color: #7a4b00; } .files { font-size: 0.85em; color: #555; } code { font-size: 0.9em; }
nav a { margin-right: 1em; }
"""
#: drawings of single runs (in a subfolder, e.g. ``cells/``) embedded per section; the rest are linked
MAX_EMBEDDED = 50
RUN_COLUMNS = ["run", "method", "benchmark", "budget", "seed", "status", "test error (%)", "config hash", "commit"]


def table_html(shown: Shown, uid: str) -> str:
    """One displayed table; cells, headers and caption escaped with :func:`html.escape`."""
    frame = shown.frame.astype(str)
    bold = best_mask(shown)
    styler = (frame.style.hide(axis="index")
              .format(html.escape)
              .format_index(html.escape, axis=1)
              .set_caption(html.escape(shown.caption))
              .apply(lambda col: np.where(bold[col.name], "font-weight: bold", ""), axis=0))
    return styler.to_html(table_uuid=uid)


def image_html(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def provenance(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: id, configuration, benchmark, budget, seed, status, config hash and commit (as
    :func:`reports.data.load_runs` read them from result.json; no file is read again)."""
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    r = runs.sort_values(["bench", "budget", "label", "seed"])
    get = (lambda c: r[c].astype(str)) if "commit" in r else (lambda c: pd.Series("—", index=r.index))
    return pd.DataFrame({
        "run": r["run_id"].astype(str), "method": r["label"].astype(str), "benchmark": r["bench"].astype(str),
        "budget": r["budget"].astype(str), "seed": r["seed"].map(lambda v: "—" if pd.isna(v) else str(int(v))),
        "status": r["status"].astype(str),
        "test error (%)": r["test_error"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        "config hash": get("config_hash"), "commit": get("commit")}, columns=RUN_COLUMNS).reset_index(drop=True)


def plain_table_html(frame: pd.DataFrame, caption: str) -> str:
    """A long table without styling (pandas' Styler takes minutes for 10,000 rows); every cell escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                     for row in frame.itertuples(index=False))
    return (f"<table>\n<caption>{esc(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{body}\n</tbody>\n</table>")


def section_html(section: Section, out: Path) -> str:
    parts = [f'<h2 id="{html.escape(slug(section.name))}">{html.escape(section.title)}</h2>']
    if section.messages:
        parts.append("<ul>" + "".join(f'<li class="msg">{html.escape(m)}</li>' for m in section.messages) + "</ul>")
    shown = dict(section.shown)
    if not shown:  # a section without displayed tables (cells): its tables as recorded
        shown = {name: Shown(t.drop(columns=[c for c in t.columns if t[c].map(type).isin([dict, list]).any()])
                             .map(lambda v: f"{v:.2f}" if isinstance(v, float) else v), name)
                 for name, t in section.tables.items() if not t.empty}
    for name, table in shown.items():
        parts.append(table_html(table, slug(section.name, name)))
    embedded, per_run = 0, []
    for path in section.files:
        if path.suffix != ".png" or not path.exists():
            continue
        if _rel(path, out).parent != Path(".") and embedded >= MAX_EMBEDDED:
            per_run.append(path)
            continue
        embedded += _rel(path, out).parent != Path(".")
        parts.append(image_html(path, str(path.relative_to(out)) if path.is_relative_to(out) else path.name))
    if per_run:
        parts.append(f'<p class="msg">{len(per_run)} more drawings of single runs are linked below, not '
                     f"embedded (at most {MAX_EMBEDDED} per section).</p>")
    others = [p for p in section.files if p.suffix != ".png"] + per_run
    if others:
        links = ", ".join(f'<a href="{html.escape(str(_rel(p, out)))}">{html.escape(str(_rel(p, out)))}</a>'
                          for p in others)
        parts.append(f'<p class="files">Files: {links}</p>')
    return "\n".join(parts)


def _rel(path: Path, out: Path) -> Path:
    return path.relative_to(out) if path.is_relative_to(out) else path


def write_html(sections: list[Section], runs: pd.DataFrame, runs_dir: Path, out: Path) -> Path:
    """Write ``out/index.html``; returns its path."""
    out = Path(out)
    counts = runs["status"].value_counts().to_dict() if not runs.empty else {}
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    nav = "".join(f'<a href="#{html.escape(slug(s.name))}">{html.escape(s.title)}</a>' for s in sections)
    body = ["<h1>Reproduction report</h1>",
            f"<p>Runs folder <code>{html.escape(str(runs_dir))}</code>: {len(runs)} runs "
            f"({html.escape(status)}).</p>",
            f"<nav>{nav}<a href=\"#runs\">Runs</a></nav>",
            *[section_html(s, out) for s in sections],
            '<h2 id="runs">Runs</h2>', plain_table_html(provenance(runs), "Runs this report was built from")]
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Reproduction report</title>\n<style>" + STYLE + "</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
