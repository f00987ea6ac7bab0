"""Recorded runs, profiles and the paper's published numbers as pandas tables.

* :func:`load_runs` - one row per ``result.json`` under a folder (any depth), flattened.
* :func:`load_history` - one row per run x search epoch (collapse indicators, losses, tau).
* :func:`load_profiles` - one row per ``profile_*.json`` written by ``harness profile --out``.
* :func:`published` - ``reports/published/table<N>.csv``: the paper's numbers, each row with a
  ``source`` column naming its table ("ROME Table 1").

Unreadable files are skipped; what was skipped is listed in ``df.attrs["warnings"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.published import PUBLISHED, published  # noqa: F401  (re-exported for reports)

#: method options flattened into columns (absent for a method: NaN)
OPTION_COLUMNS = ("k", "td", "ga_theta", "ga_alpha", "partial")

RUN_COLUMNS = ["run_id", "method", *OPTION_COLUMNS, "bench", "space", "dataset", "budget", "seed", "status",
               "test_error", "params", "macs", "parameterless_normal", "skip_connect_normal", "search_epochs",
               "search_s", "genotype", "label", "path"]
HISTORY_COLUMNS = ["run_id", "method", *OPTION_COLUMNS, "bench", "budget", "seed", "label", "search_epochs", "epoch",
                   "tau",
                   "train_loss", "train_acc", "val_loss", "val_acc", "skip_connect_normal", "parameterless_normal",
                   "seconds"]


def _read_results(runs_dir: Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    results, warnings = [], []
    for path in sorted(Path(runs_dir).rglob("result.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.append(f"{path}: unreadable ({type(exc).__name__})")
            continue
        if not isinstance(data, dict) or not {"method", "bench"} <= set(data):
            warnings.append(f"{path}: not a harness result (no 'method'/'bench')")
            continue
        results.append((path, data))
    return results, warnings


def variant_label(method: str, options: dict[str, Any]) -> str:
    """``rome-v2``, ``rome-v2 (K=2)``, ``rome-v2 (TD off, GA-alpha off)``, ``pcdarts (M=2)``: the method and
    every option that differs from the method's defaults, by the label each option declares."""
    from methods.base import option_label

    return option_label(method, options)


def _run_row(path: Path, r: dict[str, Any]) -> dict[str, Any]:
    options = r.get("options") or {}
    history = (r.get("search") or {}).get("history") or []
    last = history[-1] if history else {}
    if not history and isinstance((r.get("genotype") or {}).get("normal"), list):  # a fixed genotype, no search
        from spaces.genotype import from_dict

        g = from_dict(r["genotype"])
        last = {"parameterless_normal": g.parameterless_normal(), "skip_connect_normal": g.skip_normal()}
    ev = r.get("eval") or {}
    protocol = (r.get("config") or {}).get("protocol") or {}
    row = {
        "run_id": r.get("run_id", path.parent.name), "method": r["method"],
        **{c: options.get(c) for c in OPTION_COLUMNS},
        "bench": r["bench"], "space": r.get("space"), "dataset": r.get("dataset"), "budget": r.get("budget"),
        "seed": r.get("seed"), "status": r.get("status"),
        "test_error": ev.get("test_error"), "params": ev.get("params"), "macs": ev.get("macs"),
        "parameterless_normal": last.get("parameterless_normal"),
        "skip_connect_normal": last.get("skip_connect_normal"),
        "search_epochs": ((r.get("config") or {}).get("search") or {}).get(
            "epochs", protocol.get("search_epochs", len(history) or None)),
        "search_s": (r.get("timings") or {}).get("search_s"),
        "genotype": r.get("genotype"), "label": variant_label(r["method"], options), "path": str(path.parent),
    }
    return row


def _frame(rows: list[dict[str, Any]], columns: list[str], warnings: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for col in ("test_error", "params", "macs", "parameterless_normal", "skip_connect_normal", "search_epochs",
                "search_s", "seed", "epoch", "tau", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df.attrs["warnings"] = warnings
    return df


def load_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per ``result.json`` under ``runs_dir``: the columns of :data:`RUN_COLUMNS`.

    ``parameterless_normal`` and ``skip_connect_normal`` are those of the last search epoch (the
    derived genotype); ``test_error`` is in percent; ``label`` names the method variant.
    """
    results, warnings = _read_results(Path(runs_dir))
    return _frame([_run_row(p, r) for p, r in results], RUN_COLUMNS, warnings)


def load_history(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run x search epoch (runs without a search history contribute nothing)."""
    results, warnings = _read_results(Path(runs_dir))
    rows = []
    for path, r in results:
        base = _run_row(path, r)
        for entry in (r.get("search") or {}).get("history") or []:
            row = {c: base.get(c) for c in HISTORY_COLUMNS}
            row.update({c: entry.get(c) for c in HISTORY_COLUMNS if c in entry})
            rows.append(row)
    return _frame(rows, HISTORY_COLUMNS, warnings)


def load_profiles(folder: str | Path) -> pd.DataFrame:
    """One row per ``profile_*.json`` under ``folder`` (``harness profile --out``), shape flattened."""
    rows, warnings = [], []
    for path in sorted(Path(folder).rglob("profile_*.json")):
        try:
            p = json.loads(path.read_text())
            shape = p["shape"]
            row = {k: v for k, v in p.items() if not isinstance(v, dict | list)}
            row.update({**shape, "partial": (p.get("options") or {}).get("partial"),
                        "label": variant_label(p["method"], p.get("options") or {}),
                        "variant": variant_label(p["method"], {k: v for k, v in (p.get("options") or {}).items()
                                                               if k not in ("k", "partial")}),
                        "path": str(path)})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            warnings.append(f"{path}: unreadable profile ({type(exc).__name__})")
            continue
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["warnings"] = warnings
    return df


