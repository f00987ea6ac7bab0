"""Recorded runs, profiles and the paper's published numbers as pandas tables.

* :func:`load_runs` - one row per run (a ``result.json`` under a folder, any depth), flattened.
* :func:`load_history` - one row per run x search epoch (collapse indicators, losses, tau).
* :func:`load_all` - both from one reading of the folder (what ``harness report`` uses).
* :func:`load_profiles` - one row per ``profile_*.json`` written by ``harness profile --out``.
* :func:`published` - ``reports/published/table<N>.csv``: the paper's numbers, each row with a
  ``source`` column naming its table ("ROME Table 1").

Runs are grouped by configuration, never by method name alone: ``config_id`` is the hash of the run's
resolved spec without its seed (:func:`harness.runs.read.config_id`), and ``label`` names it - the
method, its options by their short labels (``K=3``, ``TD off``) and every other field that differs from
the defaults of its method, benchmark, budget and preset (``rome-v2 (K=3, search.a_lr=0.03)``). Two
configurations that would still read alike get their config id appended (``[1a2b3c4d]``).

Unreadable files are skipped; what was skipped is listed in ``df.attrs["warnings"]`` as
``<path>: unreadable: <reason>``. A ``result.json`` is used only when it validates against the
schema (:func:`harness.runs.read.read_result`); FIFOs and directories are never opened. A run id
found twice (a run folder copied within the runs folder) is counted once, with a warning naming the copy.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import pandas as pd

from harness.evidence.published import PUBLISHED, published  # noqa: F401  (re-exported for reports)
from harness.runs.read import Unreadable, config_id, find_results, one_per_run_id, read_json_file, read_result
from harness.runs.settings import spec_changes
from methods.base import option_label
from spaces.genotype import from_dict

#: method options flattened into columns (absent for a method: NaN)
OPTION_COLUMNS = ("k", "td", "ga_theta", "ga_alpha", "partial")

RUN_COLUMNS = ["run_id", "method", *OPTION_COLUMNS, "bench", "space", "dataset", "budget", "seed", "status",
               "test_error", "params", "macs", "parameterless_normal", "skip_connect_normal", "search_epochs",
               "search_s", "search_val_acc", "genotype", "label", "config_id", "settings", "default", "options",
               "config", "config_hash", "commit", "path"]
HISTORY_COLUMNS = ["run_id", "method", *OPTION_COLUMNS, "bench", "budget", "seed", "label", "config_id", "default",
                   "search_epochs", "epoch", "tau",
                   "train_loss", "train_acc", "val_loss", "val_acc", "skip_connect_normal", "parameterless_normal",
                   "op_entropy_normal", "seconds"]

Results = list[tuple[Path, dict[str, Any]]]


def _read_results(runs_dir: Path) -> tuple[Results, list[str], list[str]]:
    """The trusted results under ``runs_dir``, each run id once (:func:`_unique`); the warnings about
    unreadable files, and those about copies of a run (also among the warnings)."""
    results, warnings = [], []
    for path in find_results(Path(runs_dir)):
        read = read_result(path)
        if read.data is None:
            warnings.append(f"{path}: unreadable: {read.reason}")
            continue
        results.append((path, read.data))
    kept, duplicates = one_per_run_id(results, lambda c: str(c[1]["run_id"]), lambda c: c[0].parent)
    return kept, warnings + duplicates, duplicates


def _scalar(value: Any) -> Any:
    """An option value fit for a table column (a number or flag); anything else is left out."""
    return value if isinstance(value, bool | int | float) and not isinstance(value, complex) else None


def variant_label(method: str, options: dict[str, Any]) -> str:
    """``rome-v2``, ``rome-v2 (K=2)``, ``rome-v2 (TD off, GA-alpha off)``, ``pcdarts (M=2)``: the method and
    every option that differs from the method's defaults, by the label each option declares."""
    return option_label(method, options)


def run_label(method: str, options: dict[str, Any], changes: list[str]) -> str:
    """``rome-v2 (K=3, search.a_lr=0.03)``: :func:`variant_label` and the changed spec fields."""
    label = variant_label(method, options)
    if not changes:
        return label
    if label == method:
        return f"{method} ({', '.join(changes)})"
    return f"{label[:-1]}, {', '.join(changes)})"  # option_label ends with ")" when it names options


def _run_row(path: Path, r: dict[str, Any]) -> dict[str, Any]:
    options = r.get("options") or {}
    history = (r.get("search") or {}).get("history") or []
    last = history[-1] if history else {}
    if not history and isinstance((r.get("genotype") or {}).get("normal"), list):  # a fixed genotype, no search
        try:
            g = from_dict(r["genotype"])
            last = {"parameterless_normal": g.parameterless_normal(), "skip_connect_normal": g.skip_normal()}
        except ValueError:  # a failed run's genotype is not checked by read_result
            last = {}
    ev = r.get("eval") or {}
    config = r.get("config") or {}
    protocol = config.get("protocol") or {}
    env = r.get("env") or {}
    changes, default = spec_changes(r)
    commit = str(env.get("git_commit") or "—")[:12] + (" (dirty)" if env.get("git_dirty") else "")
    row = {
        "run_id": r.get("run_id", path.parent.name), "method": r["method"],
        **{c: _scalar(options.get(c)) for c in OPTION_COLUMNS},
        "bench": r["bench"], "space": r.get("space"), "dataset": r.get("dataset"), "budget": r.get("budget"),
        "seed": r.get("seed"), "status": r.get("status"),
        "test_error": ev.get("test_error"), "params": ev.get("params"), "macs": ev.get("macs"),
        "parameterless_normal": last.get("parameterless_normal"),
        "skip_connect_normal": last.get("skip_connect_normal"),
        "search_epochs": (config.get("search") or {}).get(
            "epochs", protocol.get("search_epochs", len(history) or None)),
        "search_s": (r.get("timings") or {}).get("search_s"),
        "search_val_acc": _scalar(last.get("val_acc")) if history else None,
        "genotype": r.get("genotype"), "label": run_label(r["method"], options, changes),
        "config_id": config_id(config), "settings": tuple(changes), "default": default, "options": options,
        "config": config, "config_hash": str(env.get("config_hash") or "—")[:16], "commit": commit,
        "path": str(path.parent),
    }
    return row


def _frame(rows: list[dict[str, Any]], columns: list[str], warnings: list[str],
           duplicates: list[str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for col in ("test_error", "params", "macs", "parameterless_normal", "skip_connect_normal", "search_epochs",
                "search_s", "search_val_acc", "seed", "epoch", "tau", "train_loss", "train_acc", "val_loss",
                "val_acc", "seconds"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "default" in df:
        df["default"] = df["default"].astype(bool)
    df.attrs["warnings"] = warnings
    df.attrs["duplicates"] = list(duplicates or [])
    return df


def _distinct_labels(rows: list[dict[str, Any]]) -> None:
    """Append ``[<config id>]`` to labels that two configurations of one benchmark and budget share (a field
    that this version no longer knows, a value printed alike): a label always names one configuration."""
    seen: dict[tuple[Any, Any, str], set[str]] = {}
    for row in rows:
        seen.setdefault((row["bench"], row["budget"], row["label"]), set()).add(row["config_id"])
    for row in rows:
        if len(seen[(row["bench"], row["budget"], row["label"])]) > 1:
            row["label"] = f"{row['label']} [{row['config_id'][:8]}]"


def load_all(runs_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`load_runs` and :func:`load_history` from one reading of ``runs_dir``."""
    results, warnings, duplicates = _read_results(Path(runs_dir))
    rows = [_run_row(p, r) for p, r in results]
    _distinct_labels(rows)
    history = []
    for base, (_, r) in zip(rows, results, strict=True):
        for entry in (r.get("search") or {}).get("history") or []:
            row = {c: base.get(c) for c in HISTORY_COLUMNS}
            row.update({c: entry.get(c) for c in HISTORY_COLUMNS if c in entry})
            history.append(row)
    return (_frame(rows, RUN_COLUMNS, warnings, duplicates),
            _frame(history, HISTORY_COLUMNS, list(warnings), duplicates))


def load_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run under ``runs_dir``: the columns of :data:`RUN_COLUMNS`.

    ``parameterless_normal`` and ``skip_connect_normal`` are those of the last search epoch (the
    derived genotype); ``test_error`` is in percent; ``label`` names the configuration, ``config_id``
    identifies it, ``settings`` holds its changed fields outside the options (``("search.a_lr=0.03",)``)
    and ``default`` says whether it is the defaults of its method, benchmark, budget and preset.
    """
    return load_all(runs_dir)[0]


def load_history(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run x search epoch (runs without a search history contribute nothing)."""
    return load_all(runs_dir)[1]


def load_profiles(folder: str | Path) -> pd.DataFrame:
    """One row per ``profile_*.json`` under ``folder`` (``harness profile --out``), shape flattened; the
    method's ``options`` and the per-subnet saved bytes (``subnets``, read by the Table 7 claims) kept whole."""
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
                        "options": dict(p.get("options") or {}),
                        "subnets": p.get("subnets") if isinstance(p.get("subnets"), dict) else None,
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


