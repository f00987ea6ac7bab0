"""Recorded runs, profiles and the paper's published numbers as pandas tables.

* :func:`load_runs` - one row per ``result.json`` under a folder (any depth), flattened.
* :func:`load_history` - one row per run x search epoch (collapse indicators, losses, tau).
* :func:`load_profiles` - one row per ``profile_*.json`` written by ``harness profile --out``.
* :func:`published` - ``reports/published/table<N>.csv``: the paper's numbers, each row with a
  ``source`` column naming its table ("ROME Table 1").

Unreadable files are skipped; what was skipped is listed in ``df.attrs["warnings"]`` as
``<path>: unreadable: <reason>``. A ``result.json`` is used only when it validates against the
schema (:func:`harness.rundir_read.read_result`); FIFOs and directories are never opened.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import pandas as pd

from harness.published import PUBLISHED, published  # noqa: F401  (re-exported for reports)
from harness.rundir_read import Unreadable, find_results, read_json_file, read_result

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
    for path in find_results(Path(runs_dir), "result.json"):
        read = read_result(path)
        if read.data is None:
            warnings.append(f"{path}: unreadable: {read.reason}")
            continue
        results.append((path, read.data))
    return results, warnings


def _scalar(value: Any) -> Any:
    """An option value fit for a table column (a number or flag); anything else is left out."""
    return value if isinstance(value, bool | int | float) and not isinstance(value, complex) else None


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

        try:
            g = from_dict(r["genotype"])
            last = {"parameterless_normal": g.parameterless_normal(), "skip_connect_normal": g.skip_normal()}
        except ValueError:  # a failed run's genotype is not checked by read_result
            last = {}
    ev = r.get("eval") or {}
    protocol = (r.get("config") or {}).get("protocol") or {}
    row = {
        "run_id": r.get("run_id", path.parent.name), "method": r["method"],
        **{c: _scalar(options.get(c)) for c in OPTION_COLUMNS},
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
    paths = [Path(d) / f for d, _, files in os.walk(folder) for f in files
             if fnmatch.fnmatch(f, "profile_*.json")]
    for path in sorted(paths):
        try:
            p = read_json_file(path)
            shape = p["shape"]
            if not isinstance(shape, dict) or not isinstance(p["method"], str):
                raise TypeError("shape or method of the wrong type")
            row = {k: v for k, v in p.items() if not isinstance(v, dict | list)}
            row.update({**shape, "partial": (p.get("options") or {}).get("partial"),
                        "label": variant_label(p["method"], p.get("options") or {}),
                        "variant": variant_label(p["method"], {k: v for k, v in (p.get("options") or {}).items()
                                                               if k not in ("k", "partial")}),
                        "path": str(path)})
        except Unreadable as exc:
            warnings.append(f"{path}: unreadable: {exc}")
            continue
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            warnings.append(f"{path}: unreadable: not a profile ({type(exc).__name__})")
            continue
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["warnings"] = warnings
    return df


