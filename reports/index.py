"""Build the selected reports from a runs folder and write ``index.md`` linking them.

``SECTIONS`` maps a report name to its builder; :func:`build_reports` loads the runs, histories and
profiles once (one reading of the runs folder), runs the builders and writes the index. A report
without the runs it needs writes nothing and says what to run instead (its
:class:`~reports.common.Section` messages).

What a report costs grows with the configurations it shows (a few figures per benchmark), except the
drawings of single runs (:data:`DRAWINGS`: a cell drawing per complete run, an architecture-weights
figure per configuration), four fifths of a report's time over 200 runs. They are made only when named;
:data:`DEFAULT` is every other report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports import ablation, cells, collapse, ksens, latex, memory, tables, weights
from reports.common import Section, md_table
from reports.data import load_all, load_profiles
from reports.escape import md as md_text
from reports.html import write_html


@dataclass
class Inputs:
    runs_dir: Path
    profiles_dir: Path
    runs: pd.DataFrame
    history: pd.DataFrame
    profiles: pd.DataFrame


Builder = Callable[[Inputs, Path], Section]

SECTIONS: dict[str, Builder] = {
    "benchmarks": lambda i, out: tables.build(i.runs, out, i.runs_dir),
    "ablation": lambda i, out: ablation.build(i.runs, out, i.runs_dir),
    "k-sensitivity": lambda i, out: ksens.build(i.runs, out, i.runs_dir),
    "collapse": lambda i, out: collapse.build(
        i.history, out, i.runs_dir, set(i.runs.loc[i.runs["status"] == "complete", "run_id"])),
    "memory": lambda i, out: memory.build(i.profiles, out, i.profiles_dir),
    "cells": lambda i, out: cells.build(i.runs, out, i.runs_dir),
    "weights": lambda i, out: weights.build(i.runs, out, i.runs_dir),
}
#: reports that draw single runs: made only when asked for (``--cells``, ``--weights``, ``--all``)
DRAWINGS = ("cells", "weights")
DEFAULT = [name for name in SECTIONS if name not in DRAWINGS]


def load_inputs(runs_dir: str | Path, profiles_dir: str | Path | None = None) -> Inputs:
    runs_dir = Path(runs_dir)
    profiles_dir = Path(profiles_dir) if profiles_dir is not None else runs_dir
    runs, history = load_all(runs_dir)
    return Inputs(runs_dir, profiles_dir, runs, history, load_profiles(profiles_dir))


def build_reports(runs_dir: str | Path, out: str | Path, names: list[str] | None = None,
                  profiles_dir: str | Path | None = None, inputs: Inputs | None = None) -> list[Section]:
    """Run the named reports (default: :data:`DEFAULT`, all but the drawings of single runs) and write
    ``out/index.md``; returns their sections. ``inputs``: the folders already read (:func:`load_inputs`)."""
    names = names or DEFAULT
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown report(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = inputs if inputs is not None else load_inputs(runs_dir, profiles_dir)
    sections = [SECTIONS[n](inputs, out) for n in names]
    for s in sections:  # every displayed table also as LaTeX (reports.latex)
        s.files += latex.write_tables(s, out)
    write_index(sections, inputs, out)
    write_html(sections, inputs.runs, inputs.runs_dir, out)
    return sections


def write_index(sections: list[Section], inputs: Inputs, out: Path) -> Path:
    runs = inputs.runs
    counts = runs["status"].value_counts().to_dict() if not runs.empty else {}
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    lines = ["# Reproduction report", "",
             f"Runs folder {md_text(inputs.runs_dir)}: {len(runs)} runs ({md_text(status)}); "
             f"{len(inputs.profiles)} memory profiles in {md_text(inputs.profiles_dir)}.", ""]
    if not runs.empty:
        overview = (runs.groupby(["bench", "budget", "label"], sort=True)
                    .agg(runs=("run_id", "count"), complete=("status", lambda s: int((s == "complete").sum())))
                    .reset_index().rename(columns={"label": "method"}))
        lines += [md_table(overview), ""]
    warnings = [*runs.attrs.get("warnings", []), *inputs.profiles.attrs.get("warnings", [])]
    if warnings:
        lines += ["Skipped files:", "", *[f"- {md_text(w)}" for w in warnings], ""]
    for s in sections:
        lines.append(f"## {s.title}")
        lines.append("")
        if s.files:
            rel = [p.relative_to(out) for p in s.files]
            md = [p for p in rel if p.suffix == ".md"]
            other = [p for p in rel if p.suffix != ".md"]
            if md:
                lines.append(f"Report: [{md[0]}]({md[0]})")
                lines.append("")
            shown = [p for p in other if p.parent == Path(".")] or other[:6]
            lines.append("Files: " + ", ".join(f"[{p}]({p})" for p in shown)
                         + (f" and {len(other) - len(shown)} more" if len(other) > len(shown) else ""))
            pngs = [p for p in shown if p.suffix == ".png"]
            lines += [""] + [f"![{p.stem}]({p})" for p in pngs]
            lines.append("")
        for m in s.messages:
            lines.append(f"- {md_text(m)}")
        if s.messages:
            lines.append("")
    path = out / "index.md"
    path.write_text("\n".join(lines) + "\n")
    return path
