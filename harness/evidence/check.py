"""`harness check`: a reproduction check that means the same on every machine.

A single seed of a short search is chaotic: any rounding difference between CPUs (another instruction
set, ``ATEN_CPU_CAPABILITY=default/avx2/avx512``, another BLAS) tips an argmax and gives another
genotype. So the check has two parts, both compared with ``harness/evidence/baselines/check.json``:

(a) **exact** (:mod:`harness.evidence.exact`): only computations that are machine-independent - parameter and
    multiply-add counts of known genotypes, sampler frequencies from a seeded generator against their
    closed forms, genotypes derived from fixed architecture parameters, three steps of every method on
    fixed float64 tensors (relative tolerance 1e-6). Seconds; ``--exact-only`` runs just this part.
(b) **distribution**: the search-and-train configurations :data:`DIST_METHODS` on :data:`DIST_BENCHES`
    at budget ``check`` (a supernet that learns and an architecture that moves: the ``cpu`` budget's
    scaling rule, shorter), each over :data:`DIST_SEEDS`, one torch thread per run. Per configuration
    and metric of :data:`METRICS` (test error, parameterless ops of the normal cell, final search
    validation accuracy, final op and edge entropy of the normal cell) the rerun's per-seed values are
    compared with the committed per-seed values by a one-sided Welch t-test in the metric's harmful
    direction (:func:`compare_distributions`); Holm's adjustment over every test keeps the family-wise
    false-alarm rate at ``alpha`` (default 1 %) when the rerun's seeds are draws of the baseline's
    distribution. On the machine that wrote the baseline the rerun is identical (p = 1).
    **Invariants** with thresholds fixed in advance hold whatever the machine
    (:func:`invariant_rows`): every run completes and beats chance, search accuracy beats chance by
    :data:`ACC_MARGIN` points, the architecture distribution moved (final entropy at most
    :data:`ENTROPY_RATIO_MAX` of the first epoch's), tau follows its schedule, and ROME cells keep two
    distinct inputs per node and no ``none`` (Eq. 1). How often all this catches injected regressions,
    and how often it fails on clean code, is measured by :mod:`harness.evidence.check_power` (docs/check-power.md).

Paper-budget results committed under ``harness/evidence/baselines/paper/`` (any ``result.json`` below it)
are compared with the paper's published means by the one verdict rule of :mod:`harness.evidence.verdict`
(:func:`compare_paper`: TOST on Welch's t against the published mean, std and n, margin max(std,
rounding); a group fails when it is ``worse`` beyond the margin, is noted when ``better`` or
``inconclusive``), and so is ROME-v2's difference to GDAS on each benchmark where both were run
(:func:`harness.evidence.verdict.judge_difference`). The published numbers are :data:`PUBLISHED` (ROME Tables 1,
2, 3, 5, 6).

``harness check --update`` rewrites both parts of the baseline (after a deliberate change of the
methods, the ``check`` budget or the run config).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.evidence import exact, stats
from harness.evidence.published import published, published_n
from harness.evidence.verdict import REPRODUCED, ROUNDING, WORSE, Verdict, judge, judge_difference
from harness.runs.executors import run_many
from harness.runs.read import Unreadable, find_results, read_json_file, read_result
from harness.runs.results import cpu_model, cpu_vendor, math_libraries
from harness.runs.storage import write_json
from harness.spec import benchmarks
from harness.spec.runspec import RunSpec, make_config
from methods.base import METHODS, changed_options, tau_schedule
from spaces.genotype import td_cell_ok

BASELINES = Path(__file__).resolve().parent / "baselines"
CHECK_BASELINE = BASELINES / "check.json"
PAPER_RESULTS = BASELINES / "paper"

#: the distribution suite: the two sampling methods whose dynamics the paper contrasts (GDAS collapses,
#: ROME-v2 does not); DARTS's and PC-DARTS's steps are pinned by the exact part (``steps``)
DIST_METHODS = ("gdas", "rome-v2")
DIST_BENCHES = ("s2-digits",)
DIST_SEEDS = tuple(range(8))
SUITE_BUDGET = "check"
CHANCE_ERROR = 90.0  # ten classes
CHANCE_ACC = 100.0 - CHANCE_ERROR


@dataclass(frozen=True)
class Metric:
    """A per-seed metric of the distribution comparison: the direction in which a change is a regression
    (``higher``: a larger rerun mean is harmful) and the smallest difference of means that counts."""

    harmful: str
    resolution: float


#: metric -> its harmful direction and resolution: test error of the derived cell (one test image of 397),
#: parameterless ops of the derived normal cell (one op), the last epoch's search validation accuracy (one
#: point), the normal cell's mean op and edge entropy after the search (0.01 nats)
METRICS: dict[str, Metric] = {
    "test_error": Metric("higher", 100 / 397),
    "parameterless_normal": Metric("higher", 1.0),
    "search_val_acc": Metric("lower", 1.0),
    "op_entropy": Metric("higher", 0.01),
    "edge_entropy": Metric("higher", 0.01),
}
RESOLUTION = {name: m.resolution for name, m in METRICS.items()}
ALPHA = 0.01
#: invariants (thresholds fixed before any power run, see docs/check-power.md): a method's mean search
#: accuracy beats chance by this many points, and its final entropy is at most this fraction of the
#: entropy after the first epoch (the architecture distribution moved)
ACC_MARGIN = 30.0
ENTROPY_RATIO_MAX = 0.9
TAU_RTOL = 1e-9


# -- the distribution suite ------------------------------------------------------------------------------

def run_key(method: str, bench: str, seed: int) -> str:
    return f"{bench}/{method}/seed{seed}"


def config_key(method: str, bench: str) -> str:
    return f"{bench}/{method}"


def suite_configs(methods: Iterable[str] | None = None, benches: Iterable[str] | None = None,
                  seeds: Iterable[int] | None = None) -> list[RunSpec]:
    """The distribution suite's configs (or the named part of it)."""
    ms = _subset(methods, DIST_METHODS, "method")
    bs = _subset(benches, DIST_BENCHES, "benchmark")
    ss = list(DIST_SEEDS if seeds is None else seeds)
    if len(ss) < 2 or len(set(ss)) != len(ss):
        raise ValueError(f"the distribution check needs at least 2 distinct seeds, got {ss}")
    return [make_config(m, b, SUITE_BUDGET, s) for b in bs for m in ms for s in ss]


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


def run_suite(configs: list[RunSpec], out: Path, *, jobs: int = 1, device: str = "cpu",
              on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``configs`` into ``out`` (complete runs there are reused), ``jobs`` at a time through the
    local executor, each with one torch thread (the same numbers whatever the machine's core count)."""
    return run_many(configs, out, workers=jobs, threads=1, device=device, progress=False, on_result=on_result)


def _normal_entropy(entry: dict[str, Any], kind: str) -> float | None:
    """The normal cell's (NAS-Bench-1Shot1: its one cell's) ``ops`` or ``edges`` entropy of one epoch."""
    cells = entry.get("entropy") or {}
    cell = cells.get("normal") or next(iter(cells.values()), {})
    return cell.get(kind)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """What a baseline keeps of one run's ``result.json``: the metrics of :data:`METRICS`, the entropies
    after the first epoch (the invariants' reference) and the temperature of every epoch."""
    history = (result.get("search") or {}).get("history") or [{}]
    cfg = result.get("config") or {}
    search = cfg.get("search") or {}
    summary = {
        "method": result.get("method", cfg.get("method")), "bench": result.get("bench", cfg.get("bench")),
        "seed": result.get("seed", cfg.get("seed")), "run_id": result.get("run_id"),
        "options": result.get("options", cfg.get("options")),
        "config_hash": (result.get("env") or {}).get("config_hash"), "status": result.get("status"),
        "genotype": result.get("genotype"), "test_error": (result.get("eval") or {}).get("test_error"),
        "parameterless_normal": history[-1].get("parameterless_normal"),
        "search_val_acc": history[-1].get("val_acc"),
        "op_entropy": _normal_entropy(history[-1], "ops"), "edge_entropy": _normal_entropy(history[-1], "edges"),
        "op_entropy_first": _normal_entropy(history[0], "ops"),
        "edge_entropy_first": _normal_entropy(history[0], "edges"),
        "tau": [e.get("tau") for e in history],
        "tau_schedule": [search.get("tau_max"), search.get("tau_min"), search.get("epochs")],
        "seconds": (result.get("timings") or {}).get("total_s"),
    }
    if result.get("status") != "complete":
        summary["reason"] = result.get("reason")
    return summary


# -- rows of the report --------------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the report: an exact check, a distribution comparison, an invariant or a paper row."""

    kind: str  # "exact", "dist", "invariant", "paper"
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


def exact_rows(now: dict[str, Any], committed: dict[str, Any]) -> list[Row]:
    rows = []
    for name, problems in exact.compare(now, committed).items():
        shown = problems[:4] + ([f"... and {len(problems) - 4} more"] if len(problems) > 4 else [])
        rows.append(Row("exact", name, "committed", "same" if not problems else f"{len(problems)} differ",
                        "FAIL" if problems else "ok", shown))
    return rows


# -- distribution comparison ------------------------------------------------------------------------------

Runs = dict[str, dict[str, Any]]


def _by_config(runs: Runs) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in runs.values():
        out.setdefault(config_key(r["method"], r["bench"]), []).append(r)
    return out


def _values(group: list[dict[str, Any]], metric: str) -> list[float]:
    return [r[metric] for r in group if r.get("status") == "complete" and _is_number(r.get(metric))]


def compare_distributions(now: Runs, base: Runs, alpha: float = ALPHA) -> list[Row]:
    """Per configuration and metric of :data:`METRICS`: a one-sided Welch t-test of the rerun's seeds
    against the baseline's seeds in the metric's harmful direction (the rerun worse), Holm's step-down
    over every test made (family-wise false-alarm rate at most ``alpha`` under the null that the rerun's
    seeds are draws from the baseline's distribution, as far as Welch's t is accurate for a few seeds;
    docs/check-power.md measures it). A test fails if its Holm-adjusted p is below ``alpha`` *and* the
    means differ in the harmful direction by more than the metric's resolution."""
    now_cfg, base_cfg = _by_config(now), _by_config(base)
    rows: list[Row] = []
    tested: list[tuple[Row, stats.Test, str]] = []
    for cfg in now_cfg:
        for metric, spec in METRICS.items():
            cur, ref = _values(now_cfg[cfg], metric), _values(base_cfg.get(cfg, []), metric)
            if not cur and not ref:
                continue  # a metric the method does not have (GDAS has no edge entropy in DARTS spaces)
            subject = f"{cfg} {metric}"
            if len(ref) < 2:
                rows.append(Row("dist", subject, "no baseline", _fmt(statistics.mean(cur)) if cur else "-", "FAIL",
                                ["fewer than 2 baseline seeds: run `harness check --update`"]))
                continue
            if len(cur) < 2:
                rows.append(Row("dist", subject, _fmt(statistics.mean(ref)), "-", "FAIL",
                                [f"{len(cur)} complete rerun seeds; need 2"]))
                continue
            t = stats.welch(cur, ref, alternative="greater" if spec.harmful == "higher" else "less")
            row = Row("dist", subject, f"{statistics.mean(ref):.2f} (sd {statistics.pstdev(ref):.2f}, n={len(ref)})",
                      f"{statistics.mean(cur):.2f} (sd {statistics.pstdev(cur):.2f}, n={len(cur)})", "ok")
            rows.append(row)
            tested.append((row, t, metric))
    for (row, t, metric), q in zip(tested, stats.holm([t.p for _, t, _ in tested]), strict=True):
        worse = t.effect if METRICS[metric].harmful == "higher" else -t.effect
        if q < alpha and worse > METRICS[metric].resolution:
            row.verdict = "FAIL"
        row.notes.append(f"diff {t.effect:+.2f} ({METRICS[metric].harmful} is worse), one-sided Welch "
                         f"p={t.p:.3g}, Holm p={q:.3g} over {len(tested)} (fails below {alpha:g})")
    return rows


def _group_mean(group: list[dict[str, Any]], metric: str) -> float | None:
    values = _values(group, metric)
    return statistics.mean(values) if values else None


def invariant_rows(runs: Runs) -> list[Row]:
    """Invariants of the suite's runs with thresholds fixed in advance, whatever the machine: every run
    completes and its evaluation beats chance; per configuration the mean search accuracy beats chance by
    :data:`ACC_MARGIN` points, the mean final entropy (ops; edges where the method has them) is at most
    :data:`ENTROPY_RATIO_MAX` of its value after the first epoch, and every epoch's temperature follows the
    linear schedule of the run's spec (:func:`methods.base.tau_schedule`); a method with topology
    disentanglement derives cells with two distinct inputs per node and no ``none`` (Eq. 1).

    Not an invariant at this budget: ROME-v2's mean parameterless count at or below its space's chance
    level (4 of 8 in S2). Fixed in advance, it failed on all three disjoint 8-seed draws of clean code
    (means 5.6, 6.4 and 4.5; docs/check-power.md), so it would only raise false alarms."""
    rows = []
    bad = [k for k, r in runs.items() if r.get("status") != "complete"]
    rows.append(Row("invariant", "every run completes", "all", f"{len(runs) - len(bad)}/{len(runs)}",
                    "FAIL" if bad else "ok", [f"not complete: {', '.join(bad)}"] if bad else []))
    done = {k: r for k, r in runs.items() if r.get("status") == "complete"}
    if not done:
        return rows
    worst = max(r["test_error"] for r in done.values())
    rows.append(Row("invariant", "every evaluation beats chance by 10 points", f"< {CHANCE_ERROR - 10:.0f} %",
                    f"worst {worst:.1f} %", "ok" if worst < CHANCE_ERROR - 10 else "FAIL"))
    for cfg, group in _by_config(done).items():
        acc = _group_mean(group, "search_val_acc")
        if acc is not None:
            floor = CHANCE_ACC + ACC_MARGIN
            rows.append(Row("invariant", f"{cfg}: mean search accuracy beats chance by {ACC_MARGIN:g} points",
                            f">= {floor:g} %", f"{acc:.1f} %", "ok" if acc >= floor else "FAIL"))
        for kind in ("op", "edge"):
            last, first = _group_mean(group, f"{kind}_entropy"), _group_mean(group, f"{kind}_entropy_first")
            if last is None or not first:
                continue
            ratio = last / first
            rows.append(Row("invariant", f"{cfg}: the {kind} distribution moved (final / first-epoch entropy)",
                            f"<= {ENTROPY_RATIO_MAX:g}", f"{ratio:.2f} ({first:.3f} -> {last:.3f} nats)",
                            "ok" if ratio <= ENTROPY_RATIO_MAX else "FAIL"))
        off = [f"{run_key(r['method'], r['bench'], r['seed'])} epoch {e}: tau {got} (schedule {want:.4g})"
               for r in group for e, (got, want) in enumerate(zip(r.get("tau") or [], _taus(r), strict=False))
               if got is None or not math.isclose(got, want, rel_tol=TAU_RTOL)]
        if _taus(group[0]):
            rows.append(Row("invariant", f"{cfg}: tau follows its linear schedule every epoch", "all epochs",
                            "yes" if not off else f"{len(off)} epochs off", "FAIL" if off else "ok", off[:4]))
    rome = [r for r in done.values() if r["method"] in METHODS
            and METHODS[r["method"]].disentangles_topology(r.get("options") or {})]
    if rome:
        violated = [f"{r['bench']}/{r['method']}/seed{r['seed']} {cell}" for r in rome for cell in ("normal", "reduce")
                    if not td_cell_ok(r["genotype"][cell])]
        rows.append(Row("invariant", "ROME cells: two distinct inputs per node, no 'none' (Eq. 1)",
                        "all", f"{len(rome) - len({v.rsplit(' ', 1)[0] for v in violated})}/{len(rome)}",
                        "FAIL" if violated else "ok", violated))
    return rows


def _taus(summary: dict[str, Any]) -> list[float]:
    """The temperatures the run's spec schedules for its epochs (none if the summary lacks the spec)."""
    tau_max, tau_min, epochs = summary.get("tau_schedule") or (None, None, None)
    if not (_is_number(tau_max) and _is_number(tau_min) and isinstance(epochs, int)):
        return []
    return [tau_schedule(e, epochs, tau_max, tau_min) for e in range(epochs)]


# -- paper-budget results against the published numbers ----------------------------------------------------

@dataclass(frozen=True)
class Published:
    """A published mean +- std over ``n`` searches (test error in percent; ``num``: parameterless ops in
    the normal cell; ``n``: :func:`harness.evidence.published.published_n`)."""

    error: float
    error_std: float
    source: str
    num: float | None = None
    num_std: float | None = None
    n: int = 1



def _published() -> dict[tuple[str, str, tuple[tuple[str, Any], ...]], Published]:
    """(method, bench, non-default options) -> published numbers, read from ``reports/published``.

    Table 1 ('ROME' is ROME-v2, the default), the averaged rows of Tables 2-3 (those with a std), and
    Tables 5-6 (accuracy turned into error; K = 7 with every component on is Table 2's default row).
    """
    table: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Published] = {}
    for r in published(1).dropna(subset=["method_id"]).itertuples():
        num = () if r.num_mean != r.num_mean else (r.num_mean, r.num_std)  # NaN: no count published
        table[(r.method_id, r.bench, ())] = Published(r.error_mean, r.error_std, f"Table 1 ({r.method})", *num,
                                                      n=published_n(1))
    for n in (2, 3):
        rows = published(n).dropna(subset=["method_id", "error_std"])
        for r in rows[rows["stat"] == "avg"].itertuples():
            table[(r.method_id, r.bench, ())] = Published(r.error_mean, r.error_std, f"Table {n} ({r.model})",
                                                          n=published_n(n))
    for r in published(5).itertuples():
        if r.k != 7:
            table[(r.method_id, r.bench, (("k", int(r.k)),))] = Published(round(100 - r.acc_mean, 2), r.acc_std,
                                                                           "Table 5", n=published_n(5))
    for r in published(6).itertuples():
        changed = tuple((name, False) for name in ("ga_alpha", "ga_theta", "td") if not getattr(r, name))
        if changed:
            table[(r.method_id, r.bench, changed)] = Published(round(100 - r.acc_mean, 2), r.acc_std, "Table 6",
                                                               n=published_n(6))
    return table


#: ROME's published numbers with a standard deviation (Tables 2-3: averages; Table 4 has no std)
PUBLISHED = _published()


_changed_options = changed_options


def paper_results(folder: Path) -> list[dict[str, Any]]:
    """Every ``result.json`` below ``folder`` (none if it does not exist)."""
    if not folder.is_dir():
        return []
    reads = [read_result(p) for p in find_results(folder)]  # unreadable ones: listed as FAIL with the reason
    return [r.data if r.ok else {"run_id": str(r.path), "status": "unreadable", "reason": f"unreadable: {r.reason}"}
            for r in reads]


def _verdict_row(subject: str, expected: str, verdicts: dict[str, Verdict]) -> Row:
    """One paper row: FAIL when a number is ``worse`` beyond the margin, warn when ``better`` or
    ``inconclusive`` (each with the numbers that decided), ok when every number is ``reproduced``."""
    got = ", ".join(f"{name.split()[0][:3]} {v.mean:.2f} {v.verdict}" for name, v in verdicts.items())
    notes = [f"{name} {v.mean:.2f} vs {v.published_mean:.2f} +- {v.published_std:.2f} (n={v.published_n}): "
             f"{v.verdict}, {v.diff_text()}" + ("" if v.verdict in (REPRODUCED, WORSE) else f"; {v.why}")
             for name, v in verdicts.items() if v.verdict != REPRODUCED]
    worse = any(v.verdict == WORSE for v in verdicts.values())
    return Row("paper", subject, expected, got, "FAIL" if worse else "warn" if notes else "ok", notes)


def compare_paper(results: list[dict[str, Any]]) -> list[Row]:
    """Group paper-budget results by configuration and judge each group against the published mean, std
    and n (:func:`harness.evidence.verdict.judge`); then ROME-v2 minus GDAS per benchmark where both groups (default
    options) and both published numbers exist (:func:`harness.evidence.verdict.judge_difference`)."""
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

    def errors(group: list[dict[str, Any]]) -> list[float]:
        return [r["eval"]["test_error"] for r in group]

    def nums(group: list[dict[str, Any]]) -> list[float]:
        return [r["search"]["history"][-1]["parameterless_normal"] for r in group]

    for key, group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        method, bench, changed = key
        subject = f"{bench}/{method}" + "".join(f" {k}={v}" for k, v in changed) + f" (n={len(group)})"
        pub = PUBLISHED.get(key)
        if pub is None:
            rows.append(Row("paper", subject, "-", "-", "warn", ["no published number for this configuration"]))
            continue
        verdicts = {"test error": judge(errors(group), pub.error, pub.error_std, pub.n, rounding=ROUNDING["error"])}
        expected = f"err {pub.error:.2f}+-{pub.error_std:.2f} n={pub.n} ({pub.source})"
        if pub.num is not None:
            verdicts["parameterless ops"] = judge(nums(group), pub.num, pub.num_std or 0.0, pub.n,
                                                  rounding=ROUNDING["num"])
            expected += f", num {pub.num:.1f}+-{pub.num_std:.1f}"
        rows.append(_verdict_row(subject, expected, verdicts))
    for bench in sorted({b for _, b, _ in groups}):
        a, b = ("rome-v2", bench, ()), ("gdas", bench, ())
        if a not in groups or b not in groups or a not in PUBLISHED or b not in PUBLISHED:
            continue
        pa, pb = PUBLISHED[a], PUBLISHED[b]
        subject = f"{bench} rome-v2 - gdas (n={len(groups[a])}, {len(groups[b])})"
        verdicts = {"test error difference": judge_difference(
            errors(groups[a]), errors(groups[b]), (pa.error, pa.error_std, pa.n), (pb.error, pb.error_std, pb.n),
            rounding=ROUNDING["error"])}
        expected = f"err {pa.error - pb.error:+.2f}"
        if pa.num is not None and pb.num is not None:
            verdicts["parameterless ops difference"] = judge_difference(
                nums(groups[a]), nums(groups[b]), (pa.num, pa.num_std, pa.n), (pb.num, pb.num_std, pb.n),
                rounding=ROUNDING["num"])
            expected += f", num {pa.num - pb.num:+.1f}"
        rows.append(_verdict_row(subject, expected + " (published difference)", verdicts))
    return rows


# -- baselines ------------------------------------------------------------------------------------------

def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline file at ``path`` (an empty one if nothing is there: ``--update`` writes it); ``ValueError``
    with one line saying why for anything that is not one.

    Read through :func:`harness.runs.read.read_json_file`: a FIFO, device or directory is refused
    unopened (``--baseline /dev/zero`` exhausted memory, a FIFO hung), and so is a file of absurd size.
    """
    if not os.path.lexists(path):
        return {"runs": {}, "exact": {}}
    try:
        data = read_json_file(path)
    except Unreadable as exc:
        raise ValueError(f"baseline file {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise ValueError(f"baseline file {path} has no 'runs' object")
    if not isinstance(data.get("exact", {}), dict):
        raise ValueError(f"baseline file {path}: 'exact' is not an object")
    for key, r in data["runs"].items():
        if not (isinstance(r, dict) and isinstance(r.get("method"), str) and isinstance(r.get("bench"), str)):
            raise ValueError(f"baseline file {path}: run '{key}' is not an object with a method and a bench")
        bad = [m for m in RESOLUTION if not (r.get(m) is None or _is_number(r[m]))]
        if bad:
            raise ValueError(f"baseline file {path}: run '{key}': {', '.join(bad)} not a number")
    return data


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_env() -> dict[str, Any]:
    """What the check ran on: CPU vendor and model, instruction set, BLAS/LAPACK and thread pools."""
    return {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_vendor": cpu_vendor(), "cpu_model": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "math_libraries": math_libraries(),
            "threads_per_run": 1, "device": "cpu"}


def _env_line(env: dict[str, Any]) -> str:
    libs = env["math_libraries"]
    pools = ", ".join(f"{p.get('internal_api')} {p.get('version') or ''}".strip() for p in libs["threadpools"])
    return (f"{env['cpu_vendor']} {env['cpu_model']}, CPU capability {env['cpu_capability']}, torch BLAS "
            f"{libs['torch_blas']} / LAPACK {libs['torch_lapack']}, thread pools: {pools or 'none'}")


def make_baseline(runs: Runs | None, exact_values: dict[str, Any] | None, seconds: float | None,
                  previous: dict[str, Any]) -> dict[str, Any]:
    """The baseline file: the suite, its budget, the environment, the exact values, every run."""
    merged = {**previous.get("runs", {}), **(runs or {})}
    return {
        "suite": {"methods": list(DIST_METHODS), "benches": list(DIST_BENCHES), "seeds": list(DIST_SEEDS),
                  "budget": SUITE_BUDGET},
        "protocol": benchmarks.BUDGETS[SUITE_BUDGET],
        "alpha": ALPHA, "resolution": RESOLUTION,
        "env": check_env(),
        # one-thread seconds of the suite's runs, summed (the wall time is about this / --jobs)
        "run_seconds": seconds if seconds is not None else previous.get("run_seconds"),
        "exact": {**previous.get("exact", {}), **(exact_values or {})},
        "runs": {k: merged[k] for k in sorted(merged)},
    }


def format_rows(rows: list[Row]) -> str:
    from tabulate import tabulate

    table = [[r.kind, r.subject, r.expected, r.got, r.verdict, "; ".join(r.notes)] for r in rows]
    return tabulate(table, headers=["check", "subject", "baseline / published", "now", "verdict", "notes"],
                    tablefmt="simple", maxcolwidths=[None, 40, 28, 28, None, 70])


def check(*, out: Path, methods: list[str] | None = None, benches: list[str] | None = None,
          seeds: list[int] | None = None, jobs: int = 1, baseline_path: Path = CHECK_BASELINE,
          paper_dir: Path = PAPER_RESULTS, alpha: float = ALPHA, update: bool = False, exact_only: bool = False,
          paper_only: bool = False, echo: Callable[[str], None] = print) -> bool:
    """Run the exact part, then (unless ``exact_only``) the distribution suite into ``out``; compare with
    the baseline and print the report; ``True`` if nothing failed. With ``update`` the results are
    written into ``baseline_path`` (runs of the file that were not rerun are kept) instead."""
    rows: list[Row] = []
    baseline = load_baseline(baseline_path)
    exact_values: dict[str, Any] | None = None
    runs: Runs | None = None
    seconds = None
    if not paper_only:
        echo(f"exact checks ({', '.join(exact.CHECKS)}) on one thread; {_env_line(check_env())}")
        started = time.time()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same reductions whatever the machine's core count
        try:
            exact_values = exact.compute()
        finally:
            torch.set_num_threads(threads)
        echo(f"exact checks took {time.time() - started:.0f} s")
        if not update:
            rows += exact_rows(exact_values, baseline.get("exact", {}))
    if not (paper_only or exact_only):
        configs = suite_configs(methods, benches, seeds)
        echo(f"distribution suite: {len(configs)} runs (budget {SUITE_BUDGET}, CPU, 1 thread per run, "
             f"{jobs} at a time) into {out}")
        started = time.time()

        def progress(result: dict[str, Any]) -> None:
            s = summarize(result)
            echo(f"  {run_key(s['method'], s['bench'], s['seed'])}: {s['status']}, err {_fmt(s['test_error'])}, "
                 f"num {_fmt(s['parameterless_normal'])}, val acc {_fmt(s['search_val_acc'])}, "
                 f"{_fmt(s['seconds'], 1)} s")

        results = run_suite(configs, out, jobs=jobs, on_result=progress)
        seconds = time.time() - started
        echo(f"suite took {seconds:.0f} s")
        runs = {run_key(s["method"], s["bench"], s["seed"]): s for s in map(summarize, results)}
        rows += invariant_rows(runs)
        if not update:
            rows += compare_distributions(runs, baseline["runs"], alpha)
    if update and not paper_only:
        full = methods is None and benches is None and seeds is None
        run_seconds = sum(r["seconds"] or 0.0 for r in runs.values()) if runs else None
        # a full update replaces every run (a suite that dropped a method drops its runs); a partial one merges
        previous = {**baseline, "runs": {}} if full and runs else baseline
        data = make_baseline(runs, exact_values, run_seconds if full else None, previous)
        write_json(baseline_path, data)
        echo(f"baseline written to {baseline_path}: exact values" + (f" and {len(runs)} runs" if runs else ""))
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
             + "; ".join(f"{r.subject}: {', '.join(r.notes[:2])}" for r in failed))
    else:
        echo(f"check passed: {len(rows)} checks, {warned} warnings")
    return not failed


__all__ = ["ALPHA", "CHECK_BASELINE", "DIST_BENCHES", "DIST_METHODS", "DIST_SEEDS", "PAPER_RESULTS", "PUBLISHED",
           "Published", "RESOLUTION", "Row", "check", "compare_distributions", "compare_paper", "exact_rows",
           "invariant_rows", "load_baseline", "make_baseline", "paper_results", "run_key", "run_suite",
           "suite_configs", "summarize"]
