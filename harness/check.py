"""`harness check`: a fixed small reproduction suite compared against committed baselines.

The suite is every method on ``s0-digits``, ``s2-digits`` and ``s3-digits`` at budget ``check``,
seed 0 (15 runs), on the CPU with one torch thread per run, so that reruns on one machine give the
same numbers. Its results are committed in ``harness/baselines/check.json``; ``harness check``
reruns the suite and compares each run with its baseline:

* ``test_error``: within an absolute tolerance (default 3 percentage points);
* ``parameterless_normal`` (Table 1's "Num"): within +-1;
* ``genotype``: identical. A different genotype is a warning, a failure only with ``--strict``:
  on another machine (another BLAS, another CPU) floating-point rounding may tip an argmax;
* the run's config hash: a change is a warning (a refactor may rename a field), a failure with
  ``--strict``.

Claims the check scale can show (:data:`CLAIMS`) are checked on the rerun. A claim that held in the
baseline must still hold; a claim that did not hold there either (the check scale is far too small
for the collapse claims of the paper to show) is reported, not failed, unless ``--strict``.

Paper-budget results committed under ``harness/baselines/paper/`` (any ``result.json`` below it)
are compared with the paper's published means: the mean over a configuration's seeds must lie
within the published standard deviation, with floors for the rounding of the published figures
(:data:`PAPER_FLOOR`). The published numbers are :data:`PUBLISHED` (ROME Tables 1, 2, 3, 5 and 6).
"""

from __future__ import annotations

import multiprocessing
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness import benchmarks
from harness.published import published
from harness.results import read_json, write_json
from harness.run import RunConfig, make_config, run
from methods.base import changed_options

BASELINES = Path(__file__).resolve().parent / "baselines"
CHECK_BASELINE = BASELINES / "check.json"
PAPER_RESULTS = BASELINES / "paper"

SUITE_METHODS = ("darts", "gdas", "pcdarts", "rome-v1", "rome-v2")
SUITE_BENCHES = ("s0-digits", "s2-digits", "s3-digits")
SUITE_BUDGET = "check"
SUITE_SEED = 0
CHANCE_ERROR = 90.0  # ten classes


@dataclass(frozen=True)
class Tolerances:
    """How far a rerun may drift from its baseline before it counts as a regression."""

    test_error: float = 3.0  # absolute, percentage points
    parameterless: int = 1  # parameterless ops in the normal cell


# -- the suite -----------------------------------------------------------------------------------------

def run_key(method: str, bench: str, seed: int) -> str:
    return f"{bench}/{method}/seed{seed}"


def suite_configs(methods: Iterable[str] | None = None, benches: Iterable[str] | None = None) -> list[RunConfig]:
    """The suite's configs (or the named part of it), most expensive first (S0 has 7 ops per edge)."""
    ms = _subset(methods, SUITE_METHODS, "method")
    bs = _subset(benches, SUITE_BENCHES, "benchmark")
    return [make_config(m, b, SUITE_BUDGET, SUITE_SEED) for b in bs for m in ms]


def _subset(names: Iterable[str] | None, valid: tuple[str, ...], what: str) -> list[str]:
    if names is None:
        return list(valid)
    out = []
    for name in names:
        if name not in valid:
            raise ValueError(f"'{name}' is not a {what} of the check suite; valid: {', '.join(valid)}")
        if name not in out:
            out.append(name)
    return out


def _run_one(cfg: RunConfig, out: str, device: str) -> dict[str, Any]:
    """One suite run with one torch thread (same numbers whatever the machine's core count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(cfg, Path(out), device=device, progress=False)
    finally:
        torch.set_num_threads(threads)


def run_suite(configs: list[RunConfig], out: Path, *, jobs: int = 1, device: str = "cpu",
              on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``configs`` into ``out`` (complete runs there are reused), ``jobs`` processes at a time."""
    if jobs <= 1:
        results = []
        for cfg in configs:
            results.append(_run_one(cfg, str(out), device))
            if on_result is not None:
                on_result(results[-1])
        return results
    by_id: dict[str, dict[str, Any]] = {}
    # spawn: a forked child of a process that already ran torch's thread pools can hang
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_one, cfg, str(out), device): cfg for cfg in configs}
        for fut in as_completed(futures):
            result = fut.result()
            by_id[futures[fut].run_id] = result
            if on_result is not None:
                on_result(result)
    return [by_id[cfg.run_id] for cfg in configs]


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """What a baseline keeps of one run's ``result.json``."""
    history = (result.get("search") or {}).get("history") or [{}]
    cfg = result.get("config") or {}
    summary = {
        "method": result.get("method", cfg.get("method")), "bench": result.get("bench", cfg.get("bench")),
        "seed": result.get("seed", cfg.get("seed")), "run_id": result.get("run_id"),
        "config_hash": (result.get("env") or {}).get("config_hash"), "status": result.get("status"),
        "genotype": result.get("genotype"), "test_error": (result.get("eval") or {}).get("test_error"),
        "parameterless_normal": history[-1].get("parameterless_normal"),
        "seconds": (result.get("timings") or {}).get("total_s"),
    }
    if result.get("status") != "complete":
        summary["reason"] = result.get("reason")
    return summary


# -- comparing runs with their baselines ----------------------------------------------------------------

@dataclass
class Row:
    """One line of the report: a run, a claim or a paper comparison."""

    kind: str  # "run", "claim", "paper"
    subject: str
    expected: str
    got: str
    verdict: str  # "ok", "warn", "FAIL"
    notes: list[str] = field(default_factory=list)


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def compare_run(current: dict[str, Any], base: dict[str, Any] | None, tol: Tolerances, strict: bool) -> Row:
    key = run_key(current["method"], current["bench"], current["seed"])
    got = f"err {_fmt(current.get('test_error'))}, num {_fmt(current.get('parameterless_normal'))}"
    if base is None:
        return Row("run", key, "no baseline", got, "FAIL", ["not in the baseline file: run `harness check --update`"])
    expected = f"err {_fmt(base.get('test_error'))}, num {_fmt(base.get('parameterless_normal'))}"
    row = Row("run", key, expected, got, "ok")
    fail, warn = [], []
    if current.get("status") != "complete":
        fail.append(f"run {current.get('status')}: {current.get('reason')}")
    else:
        err, base_err = current.get("test_error"), base.get("test_error")
        if err is None or base_err is None or abs(err - base_err) > tol.test_error:
            fail.append(f"test error {_fmt(base_err)} -> {_fmt(err)} (tolerance +-{tol.test_error:g})")
        num, base_num = current.get("parameterless_normal"), base.get("parameterless_normal")
        if num is None or base_num is None or abs(num - base_num) > tol.parameterless:
            fail.append(f"parameterless ops {base_num} -> {num} (tolerance +-{tol.parameterless})")
        if current.get("genotype") != base.get("genotype"):
            (fail if strict else warn).append("genotype differs" + ("" if strict else " (fails with --strict)"))
    if base.get("config_hash") and current.get("config_hash") != base.get("config_hash"):
        (fail if strict else warn).append("config differs from the baseline's (budget, defaults or fields "
                                          "changed?); review and run `harness check --update`")
    row.notes = fail + warn
    row.verdict = "FAIL" if fail else "warn" if warn else "ok"
    return row


# -- claims the check scale can show ---------------------------------------------------------------------

Runs = dict[str, dict[str, Any]]
ClaimFn = Callable[[Runs], "tuple[bool, str] | None"]


def _complete(runs: Runs) -> list[dict[str, Any]]:
    return [r for r in runs.values() if r.get("status") == "complete"]


def _claim_all_complete(runs: Runs) -> tuple[bool, str] | None:
    bad = [k for k, r in runs.items() if r.get("status") != "complete"]
    return (not bad, f"{len(runs) - len(bad)}/{len(runs)} complete" + (f"; not: {', '.join(bad)}" if bad else ""))


def _claim_learns(runs: Runs) -> tuple[bool, str] | None:
    done = _complete(runs)
    if not done:
        return None
    worst = max(r["test_error"] for r in done)
    return worst < CHANCE_ERROR - 10, f"worst test error {worst:.1f} % (chance {CHANCE_ERROR:.0f} %)"


def _claim_td_cells(runs: Runs) -> tuple[bool, str] | None:
    """ROME (TD): every node takes two distinct inputs and no cell holds ``none`` (S3)."""
    done = [r for r in _complete(runs) if str(r["method"]).startswith("rome")]
    if not done:
        return None
    bad = []
    for r in done:
        for cell in ("normal", "reduce"):
            pairs = r["genotype"][cell]
            nodes = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
            if any(a[1] == b[1] for a, b in nodes) or any(op == "none" for op, _ in pairs):
                bad.append(f"{r['bench']}/{r['method']} {cell}")
    return not bad, f"{len(done)} ROME runs" + (f"; violated in {', '.join(bad)}" if bad else "")


def _mean_num(runs: Runs, method: str, benches: tuple[str, ...]) -> float | None:
    vals = [r["parameterless_normal"] for r in _complete(runs) if r["method"] == method and r["bench"] in benches]
    return statistics.mean(vals) if len(vals) == len(benches) else None


def _claim_num_not_above_gdas(version: str) -> ClaimFn:
    def claim(runs: Runs) -> tuple[bool, str] | None:
        benches = ("s2-digits", "s3-digits")
        rome, gdas = _mean_num(runs, version, benches), _mean_num(runs, "gdas", benches)
        if rome is None or gdas is None:
            return None
        return rome <= gdas, f"mean parameterless in S2, S3: {version} {rome:.1f}, gdas {gdas:.1f}"

    return claim


#: name -> (statement, evaluation); ``None`` from an evaluation: the runs it needs were not run
CLAIMS: dict[str, tuple[str, ClaimFn]] = {
    "all-complete": ("every run completes", _claim_all_complete),
    "learns": ("every evaluation network beats chance by 10 points", _claim_learns),
    "td-cells": ("ROME cells: two distinct inputs per node, no 'none' (Eq. 1, S3)", _claim_td_cells),
    "rome-v2-num-le-gdas": ("ROME-v2's mean parameterless count in S2 and S3 is not above GDAS's (Table 1)",
                            _claim_num_not_above_gdas("rome-v2")),
    "rome-v1-num-le-gdas": ("ROME-v1's mean parameterless count in S2 and S3 is not above GDAS's (Table 1)",
                            _claim_num_not_above_gdas("rome-v1")),
}


def evaluate_claims(runs: Runs) -> dict[str, dict[str, Any]]:
    out = {}
    for name, (statement, fn) in CLAIMS.items():
        found = fn(runs)
        if found is not None:
            out[name] = {"statement": statement, "holds": bool(found[0]), "detail": found[1]}
    return out


def compare_claims(now: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], strict: bool) -> list[Row]:
    rows = []
    for name, c in now.items():
        held = base.get(name, {}).get("holds")
        expected = {True: "held", False: "did not hold", None: "not in baseline"}[held]
        if c["holds"]:
            verdict, notes = "ok", []
        elif held is False and not strict:
            verdict, notes = "warn", ["not shown at this scale (nor in the baseline); fails with --strict"]
        else:
            verdict, notes = "FAIL", ["claim held in the baseline and no longer does" if held else "claim fails"]
        rows.append(Row("claim", f"{name}: {c['statement']}", expected, c["detail"], verdict, notes))
    return rows


# -- paper-budget results against the published numbers ----------------------------------------------------

@dataclass(frozen=True)
class Published:
    """A published mean +- std (test error in percent; ``num``: parameterless ops in the normal cell)."""

    error: float
    error_std: float
    source: str
    num: float | None = None
    num_std: float | None = None


#: rounding floors of the comparison: a std published as 0.00 still allows the last digit's rounding
PAPER_FLOOR = {"error": 0.1, "num": 0.5}

def _published() -> dict[tuple[str, str, tuple[tuple[str, Any], ...]], Published]:
    """(method, bench, non-default options) -> published numbers, read from ``reports/published``.

    Table 1 ('ROME' is ROME-v2, the default), the averaged rows of Tables 2-3 (those with a std), and
    Tables 5-6 (accuracy turned into error; K = 7 with every component on is Table 2's default row).
    """
    table: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Published] = {}
    for r in published(1).dropna(subset=["method_id"]).itertuples():
        num = () if r.num_mean != r.num_mean else (r.num_mean, r.num_std)  # NaN: no count published
        table[(r.method_id, r.bench, ())] = Published(r.error_mean, r.error_std, f"Table 1 ({r.method})", *num)
    for n in (2, 3):
        rows = published(n).dropna(subset=["method_id", "error_std"])
        for r in rows[rows["stat"] == "avg"].itertuples():
            table[(r.method_id, r.bench, ())] = Published(r.error_mean, r.error_std, f"Table {n} ({r.model})")
    for r in published(5).itertuples():
        if r.k != 7:
            table[(r.method_id, r.bench, (("k", int(r.k)),))] = Published(round(100 - r.acc_mean, 2), r.acc_std,
                                                                           "Table 5")
    for r in published(6).itertuples():
        changed = tuple((name, False) for name in ("ga_alpha", "ga_theta", "td") if not getattr(r, name))
        if changed:
            table[(r.method_id, r.bench, changed)] = Published(round(100 - r.acc_mean, 2), r.acc_std, "Table 6")
    return table


#: ROME's published numbers with a standard deviation (Tables 2-3: averages; Table 4 has no std)
PUBLISHED = _published()


_changed_options = changed_options


def paper_results(folder: Path) -> list[dict[str, Any]]:
    """Every ``result.json`` below ``folder`` (none if it does not exist)."""
    if not folder.is_dir():
        return []
    from harness.rundir_read import find_results, read_result

    reads = [read_result(p) for p in find_results(folder)]  # unreadable ones: listed as FAIL with the reason
    return [r.data if r.ok else {"run_id": str(r.path), "status": "unreadable", "reason": f"unreadable: {r.reason}"}
            for r in reads]


def compare_paper(results: list[dict[str, Any]]) -> list[Row]:
    """Group paper-budget results by configuration; each group's mean within the published std."""
    groups: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[dict[str, Any]]] = {}
    rows = []
    for r in results:
        subject = r.get("run_id") or f"{r.get('bench')}/{r.get('method')}"
        if r.get("status") != "complete":
            rows.append(Row("paper", subject, "complete", str(r.get("status")), "FAIL", [str(r.get("reason"))]))
            continue
        if r.get("budget") != "paper":
            rows.append(Row("paper", subject, "budget paper", f"budget {r.get('budget')}", "warn",
                            ["not a paper-budget result; not compared"]))
            continue
        key = (r["method"], r["bench"], _changed_options(r["method"], r.get("options") or {}))
        groups.setdefault(key, []).append(r)
    for key, group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        method, bench, changed = key
        subject = f"{bench}/{method}" + "".join(f" {k}={v}" for k, v in changed) + f" (n={len(group)})"
        pub = PUBLISHED.get(key)
        if pub is None:
            rows.append(Row("paper", subject, "-", "-", "warn", ["no published number for this configuration"]))
            continue
        err = statistics.mean(r["eval"]["test_error"] for r in group)
        tol = max(pub.error_std, PAPER_FLOOR["error"])
        expected = f"err {pub.error:.2f}+-{pub.error_std:.2f} ({pub.source})"
        got = f"err {err:.2f}"
        notes = []
        if abs(err - pub.error) > tol:
            notes.append(f"test error {err:.2f} outside {pub.error:.2f} +- {tol:.2f}")
        if pub.num is not None:
            num = statistics.mean(r["search"]["history"][-1]["parameterless_normal"] for r in group)
            num_tol = max(pub.num_std or 0.0, PAPER_FLOOR["num"])
            expected += f", num {pub.num:.1f}+-{pub.num_std:.1f}"
            got += f", num {num:.1f}"
            if abs(num - pub.num) > num_tol:
                notes.append(f"parameterless ops {num:.1f} outside {pub.num:.1f} +- {num_tol:.1f}")
        rows.append(Row("paper", subject, expected, got, "FAIL" if notes else "ok", notes))
    return rows


# -- baselines ------------------------------------------------------------------------------------------

def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"runs": {}, "claims": {}}
    try:
        data = read_json(path)
    except ValueError as exc:
        raise ValueError(f"baseline file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise ValueError(f"baseline file {path} has no 'runs' object")
    return data


def make_baseline(runs: Runs, tol: Tolerances, seconds: float | None, previous: dict[str, Any]) -> dict[str, Any]:
    """The baseline file: the suite, its budget, the environment, every run, the claims."""
    merged = {**previous.get("runs", {}), **runs}
    merged = {k: merged[k] for k in sorted(merged)}
    return {
        "suite": {"methods": list(SUITE_METHODS), "benches": list(SUITE_BENCHES), "budget": SUITE_BUDGET,
                  "seed": SUITE_SEED},
        "protocol": benchmarks.BUDGETS[SUITE_BUDGET],
        "default_tolerances": asdict(tol),
        "env": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
                "threads_per_run": 1, "device": "cpu"},
        "seconds": seconds,
        "runs": merged,
        "claims": evaluate_claims(merged),
    }


def format_rows(rows: list[Row]) -> str:
    from tabulate import tabulate

    table = [[r.kind, r.subject, r.expected, r.got, r.verdict, "; ".join(r.notes)] for r in rows]
    return tabulate(table, headers=["check", "subject", "baseline / published", "now", "verdict", "notes"],
                    tablefmt="simple", maxcolwidths=[None, 48, 30, 30, None, 60])


def check(*, out: Path, methods: list[str] | None = None, benches: list[str] | None = None, jobs: int = 1,
          baseline_path: Path = CHECK_BASELINE, paper_dir: Path = PAPER_RESULTS, tol: Tolerances = Tolerances(),
          strict: bool = False, update: bool = False, paper_only: bool = False,
          echo: Callable[[str], None] = print) -> bool:
    """Rerun the suite (or part of it) into ``out``, compare, print the report; ``True`` if nothing failed.

    With ``update`` the rerun's results are written into ``baseline_path`` (merged with the runs of
    the file that were not rerun) instead of being compared.
    """
    rows: list[Row] = []
    if not paper_only:
        configs = suite_configs(methods, benches)
        baseline = load_baseline(baseline_path)
        echo(f"check suite: {len(configs)} runs (budget {SUITE_BUDGET}, seed {SUITE_SEED}, CPU, 1 thread per run, "
             f"{jobs} at a time) into {out}")
        started = time.time()

        def progress(result: dict[str, Any]) -> None:
            s = summarize(result)
            echo(f"  {run_key(s['method'], s['bench'], s['seed'])}: {s['status']}, "
                 f"err {_fmt(s['test_error'])}, num {_fmt(s['parameterless_normal'])}, {_fmt(s['seconds'], 1)} s")

        results = run_suite(configs, out, jobs=jobs, on_result=progress)
        seconds = time.time() - started
        echo(f"suite took {seconds:.0f} s")
        runs = {run_key(s["method"], s["bench"], s["seed"]): s for s in map(summarize, results)}
        if update:
            full = methods is None and benches is None
            data = make_baseline(runs, tol, seconds if full else baseline.get("seconds"), baseline)
            write_json(baseline_path, data)
            echo(f"baselines of {len(runs)} runs written to {baseline_path}")
            rows += [Row("claim", f"{n}: {c['statement']}", "-", c["detail"], "ok" if c["holds"] else "warn")
                     for n, c in data["claims"].items()]
        else:
            rows += [compare_run(s, baseline["runs"].get(k), tol, strict) for k, s in runs.items()]
            rows += compare_claims(evaluate_claims(runs), baseline.get("claims", {}), strict)
    papers = paper_results(paper_dir)
    rows += compare_paper(papers)
    if not papers:
        echo(f"no paper-budget results under {paper_dir}: nothing to compare with the published tables")
    if rows:
        echo(format_rows(rows))
    failed = [r for r in rows if r.verdict == "FAIL"]
    warned = sum(r.verdict == "warn" for r in rows)
    if failed:
        echo(f"check FAILED: {len(failed)} of {len(rows)} checks regressed ({warned} warnings): "
             + "; ".join(f"{r.subject}: {', '.join(r.notes)}" for r in failed))
    else:
        echo(f"check passed: {len(rows)} checks, {warned} warnings")
    return not failed


__all__ = ["CHECK_BASELINE", "CLAIMS", "PAPER_RESULTS", "PUBLISHED", "Published", "Row", "Tolerances",
           "check", "compare_claims", "compare_paper", "compare_run", "evaluate_claims", "format_rows", "load_baseline",
           "make_baseline", "paper_results", "run_key", "run_suite", "suite_configs", "summarize"]

