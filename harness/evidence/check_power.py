"""How often `harness check` catches a regression, and how often it fails on clean code (docs/check-power.md).

``python -m harness.evidence.check_power --out DIR`` runs the distribution suite's configurations
(:data:`harness.evidence.check.DIST_METHODS` on :data:`harness.evidence.check.DIST_BENCHES`, budget ``check``, one torch
thread per run):

* a **clean pool** of :data:`CLEAN_SEEDS` per method on this code, and
* for each regression of :data:`INJECTIONS` an **injected pool** of :data:`INJECTED_SEEDS` per method it
  touches, in worker processes that monkeypatch the regression in before they run anything (seeds apart
  from the clean ones: on another machine a seed's trajectory is a new draw anyway).

Then it replays the check's decision (:func:`harness.evidence.check.compare_distributions` and
:func:`harness.evidence.check.invariant_rows`, exactly as ``harness check`` applies them) on :data:`TRIALS`
resampled trials each:

* **false alarm**: a baseline of ``len(DIST_SEEDS)`` seeds drawn from the clean pool against a rerun of
  as many other clean seeds (the null: a rerun whose seeds are new draws of the same code's distribution);
* **power** of a regression: a baseline drawn from the clean pool against the injected pool (methods
  the regression does not touch: clean seeds not in the baseline).

The exact part (:mod:`harness.evidence.exact`) is deterministic: it is recomputed once under each regression and
compared with the committed values. The report gives each part's rate and the whole check's, with
Clopper-Pearson 95 % intervals. Trials share seeds, so they are not independent; the intervals are those
of independent trials and only indicate the resampling error.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import methods.rome
from harness.evidence import exact
from harness.evidence.check import (
    ALPHA,
    CHECK_BASELINE,
    DIST_BENCHES,
    DIST_METHODS,
    DIST_SEEDS,
    METRICS,
    SUITE_BUDGET,
    check_env,
    compare_distributions,
    exact_rows,
    invariant_rows,
    load_baseline,
    run_key,
    summarize,
)
from harness.runs.run import run
from harness.runs.storage import atomic_write_text, write_json
from harness.spec.runspec import make_config
from methods.base import SearchMethod
from methods.gdas import GDAS
from methods.rome import ROME

CLEAN_SEEDS = tuple(range(24))
INJECTED_SEEDS = tuple(range(100, 108))
TRIALS = 2000
BOTH = DIST_METHODS  # the regressions that touch every method of the suite
ROME_V2 = ("rome-v2",)


#: how an injection replaces an attribute: ``setattr`` in a worker process, ``monkeypatch.setattr`` in tests
Patch = Callable[[Any, str, Any], None]


@dataclass(frozen=True)
class Injection:
    """A behavioural regression: what it breaks, the methods it touches and the patch that makes it."""

    what: str
    methods: tuple[str, ...]
    apply: Callable[[Patch], None]


def _arch_frozen(patch: Patch) -> None:
    patch(SearchMethod, "arch_update_enabled", lambda self: False)


def _weights_frozen(patch: Patch) -> None:
    original = SearchMethod.weight_step

    def frozen(self: Any, batch: Any) -> dict[str, float]:
        step = self.w_opt.step
        self.w_opt.step = lambda *a, **k: None
        try:
            return original(self, batch)
        finally:
            self.w_opt.step = step

    patch(SearchMethod, "weight_step", frozen)


def _all_skip(patch: Patch) -> None:
    original = GDAS.sample_ops

    def skip(self: Any, cell_type: str) -> tuple[list[int], object]:
        index, weight = original(self, cell_type)
        ops = self.shapes[cell_type].ops
        return [o.index("skip_connect") if "skip_connect" in o else i for o, i in zip(ops, index, strict=True)], weight

    patch(GDAS, "sample_ops", skip)


def _td_off(patch: Patch) -> None:
    patch(ROME, "sample", GDAS.sample)


def _k_ignored(patch: Patch) -> None:
    original = ROME.__init__

    def one_sample(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.k_arch = self.k_weight = 1

    patch(ROME, "__init__", one_sample)


def _tau_fixed(patch: Patch) -> None:
    original = SearchMethod.begin_epoch

    def fixed(self: Any, epoch: int, epochs: int) -> None:
        original(self, epoch, epochs)
        self.tau = self.hp.tau_max

    patch(SearchMethod, "begin_epoch", fixed)


def _gumbel_dropped(patch: Patch) -> None:
    import torch.nn.functional as F


    def top_k_without_noise(logits: torch.Tensor, k: int, tau: float, *, generator: Any = None) -> torch.Tensor:
        scores = F.log_softmax(logits, dim=-1)
        soft = F.softmax(scores / tau, dim=-1)
        hard = torch.zeros_like(soft).scatter(-1, scores.topk(k, dim=-1).indices, 1.0)
        return hard - soft.detach() + soft

    patch(methods.rome, "gumbel_topk", top_k_without_noise)


#: name -> the regression (issue list of `harness check`'s power: docs/check-power.md)
INJECTIONS: dict[str, Injection] = {
    "arch-frozen": Injection("the architecture step is skipped (alpha and beta never move)", BOTH, _arch_frozen),
    "weights-frozen": Injection("the weight optimizer never steps", BOTH, _weights_frozen),
    "all-skip": Injection("every sampled op is replaced by skip-connect", BOTH, _all_skip),
    "td-off": Injection("ROME silently samples without TD (every edge active, GDAS's sampler)", ROME_V2, _td_off),
    "k-ignored": Injection("ROME takes one sample per update instead of K (Eq. 11-12)", ROME_V2, _k_ignored),
    "tau-fixed": Injection("tau is not annealed (stays at tau_max)", BOTH, _tau_fixed),
    "gumbel-dropped": Injection("ROME-v2's top-2 edge sampler has no Gumbel noise (always the top 2 of beta)",
                                ROME_V2, _gumbel_dropped),
}


def inject(name: str | None, patch: Patch = setattr) -> None:
    """Apply regression ``name`` in this process (``None``: clean)."""
    if name is not None:
        INJECTIONS[name].apply(patch)


# -- collecting the pools -------------------------------------------------------------------------------------

def _run(cfg: Any, out: str) -> dict[str, Any]:
    torch.set_num_threads(1)  # a worker of its own: one thread, as the check runs
    return summarize(run(cfg, Path(out), device="cpu", progress=False))


def _exact() -> list[str]:
    """The exact checks that fail in this worker, under its regression (against the committed values)."""
    torch.set_num_threads(1)
    rows = exact_rows(exact.compute(), load_baseline(CHECK_BASELINE).get("exact", {}))
    return [r.subject for r in rows if r.verdict == "FAIL"]


def _pool(name: str | None, jobs: int) -> ProcessPoolExecutor:
    # spawn: each worker imports afresh and applies the regression before it runs anything
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=inject,
                               initargs=(name,))


def collect(out: Path, jobs: int, names: list[str]) -> dict[str, Any]:
    """Every pool's per-seed summaries and the exact part's failures, per regression (``clean`` first)."""
    data: dict[str, Any] = {}
    for name in [None, *names]:
        key = name or "clean"
        methods = BOTH if name is None else INJECTIONS[name].methods
        seeds = CLEAN_SEEDS if name is None else INJECTED_SEEDS
        configs = [make_config(m, b, SUITE_BUDGET, s) for b in DIST_BENCHES for m in methods for s in seeds]
        started = time.time()
        with _pool(name, jobs) as pool:
            exact_failed = pool.submit(_exact)
            runs = list(pool.map(_run, configs, [str(out / key)] * len(configs)))
            data[key] = {"runs": runs, "exact_failed": exact_failed.result(), "seconds": time.time() - started}
        print(f"{key}: {len(runs)} runs, exact part failed: {data[key]['exact_failed'] or 'nothing'}, "
              f"{data[key]['seconds']:.0f} s", flush=True)
    return data


# -- replaying the check ----------------------------------------------------------------------------------------

def _keyed(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {run_key(r["method"], r["bench"], r["seed"]): r for r in runs}


def decide(baseline: list[dict[str, Any]], rerun: list[dict[str, Any]]) -> dict[str, bool]:
    """Which part of the check fails on ``rerun`` against ``baseline``: ``dist``, ``invariants``."""
    # the rerun takes the baseline's seed numbers, as a rerun of the suite does on another machine
    relabel = [{**r, "seed": i} for i, r in enumerate(rerun)]
    dist = compare_distributions(_keyed(relabel), _keyed(baseline))
    inv = invariant_rows(_keyed(relabel))
    return {"dist": any(r.verdict == "FAIL" for r in dist), "invariants": any(r.verdict == "FAIL" for r in inv)}


def trials(clean: list[dict[str, Any]], injected: list[dict[str, Any]] | None, n: int, size: int,
           seed: int = 0) -> dict[str, int]:
    """Fail counts over ``n`` resampled trials: per method a baseline of ``size`` clean seeds against the
    injected pool of that method (or, where the regression does not touch it or ``injected`` is ``None``,
    ``size`` other clean seeds)."""
    rng = random.Random(seed)
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in clean:
        by_method.setdefault(r["method"], []).append(r)
    hit: dict[str, list[dict[str, Any]]] = {}
    for r in injected or []:
        hit.setdefault(r["method"], []).append(r)
    counts = {"dist": 0, "invariants": 0, "either": 0}
    for _ in range(n):
        base, rerun = [], []
        for method, pool in sorted(by_method.items()):
            draw = rng.sample(pool, len(pool))
            base += [{**r, "seed": i} for i, r in enumerate(draw[:size])]
            rerun += hit[method][:size] if method in hit else draw[size:2 * size]
        failed = decide(base, rerun)
        for part in ("dist", "invariants"):
            counts[part] += failed[part]
        counts["either"] += failed["dist"] or failed["invariants"]
    return counts


def _rate(k: int, n: int) -> str:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{100 * k / n:.1f} % [{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


def _direction(clean: list[dict[str, Any]], injected: list[dict[str, Any]]) -> str:
    """How the injected pool's means moved against the clean pool's, per metric, marked harmful or not."""
    parts, any_harmful = [], False
    for method in sorted({r["method"] for r in injected}):
        for metric, spec in METRICS.items():
            a = [r[metric] for r in injected if r["method"] == method and r.get(metric) is not None]
            b = [r[metric] for r in clean if r["method"] == method and r.get(metric) is not None]
            if a and b:
                diff = sum(a) / len(a) - sum(b) / len(b)
                harmful = diff > 0 if spec.harmful == "higher" else diff < 0
                any_harmful |= harmful
                parts.append(f"{method} {metric} {diff:+.2f} ({'harmful' if harmful else 'not harmful'})")
    why = ("its harmful moves are within the seed-to-seed spread" if any_harmful else
           "no metric moved in the harmful direction, so no one-sided test can fire: the change looks like an "
           "improvement at this budget")
    return f"its means against the clean pool's: {', '.join(parts)}; {why}"


def _run_minutes(data: dict[str, Any]) -> float:
    return sum(r.get("seconds") or 0.0 for e in data.values() for r in e["runs"]) / 60


def report(data: dict[str, Any], n: int, command: str, seconds: float) -> str:
    """docs/check-power.md: the rates of every part, per regression and on clean code."""
    size = len(DIST_SEEDS)
    clean = data["clean"]["runs"]
    lines = [
        "# Power of `harness check`", "",
        "How often the check fails on clean code (false alarms) and on each of the injected regressions of",
        "`harness/evidence/check_power.py` (its docstring says how a trial is drawn). Made by",
        "", f"    {command}", "",
        f"on {check_env()['cpu_model']} ({check_env()['cpu_vendor']}), one torch thread per run: the "
        f"{sum(len(e['runs']) for e in data.values())} runs took {_run_minutes(data):.0f} min of one core "
        f"(sum of their times; runs found complete are reused), this invocation {seconds / 60:.0f} min. "
        f"The distribution suite is {', '.join(DIST_METHODS)} on s2-digits at budget `check`, {size} seeds "
        f"per method; the clean pool has {len(CLEAN_SEEDS)} seeds per method and each injected pool "
        f"{len(INJECTED_SEEDS)}; "
f"{n} trials per row. Rates with Clopper-Pearson 95 % intervals.", "",
        "Parts: *exact* (deterministic: machine-independent values against the committed ones), *dist* "
        f"(one-sided Welch per method and metric in the harmful direction, Holm over the family at "
        f"{ALPHA:g}; metrics: {', '.join(METRICS)}), *invariants* (thresholds fixed in advance: "
        "`harness/evidence/check.py` `invariant_rows`). *check* fails when any part fails.", "",
        "| regression | what it breaks | exact part | dist | invariants | dist or invariants | whole check |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    missed: list[str] = []
    for key, entry in data.items():
        injected = None if key == "clean" else entry["runs"]
        counts = trials(clean, injected, n, size, seed=1)
        exact_fails = bool(entry["exact_failed"])
        what = "nothing (false alarms)" if key == "clean" else INJECTIONS[key].what
        whole = n if exact_fails else counts["either"]
        exact_text = f"fails ({', '.join(entry['exact_failed'])})" if exact_fails else "passes"
        lines.append(f"| {key} | {what} | {exact_text} | {_rate(counts['dist'], n)} | "
                     f"{_rate(counts['invariants'], n)} | {_rate(counts['either'], n)} | {_rate(whole, n)} |")
        if injected is not None and counts["either"] < 0.9 * n:
            missed.append(f"- **{key}**: the distribution part and the invariants catch it in "
                          f"{100 * counts['either'] / n:.1f} % of trials; " + _direction(clean, injected)
                          + ("; the exact part catches it every time." if exact_fails else "."))
    if missed:
        lines += ["", "Below the 90 % target without the exact part (a finding, not hidden):", "", *missed]
    lines += ["", "Per-seed means of each pool (search val acc, parameterless ops, test error, final op / edge "
              "entropy):", "", "| pool | method | n | val acc | num | error | op entropy | edge entropy |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, entry in data.items():
        for method in DIST_METHODS:
            group = [r for r in entry["runs"] if r["method"] == method and r.get("status") == "complete"]
            if not group:
                continue

            def mean(metric: str, group: list[dict[str, Any]] = group) -> str:
                vals = [r[metric] for r in group if r.get(metric) is not None]
                return f"{sum(vals) / len(vals):.2f}" if vals else "-"

            lines.append(f"| {key} | {method} | {len(group)} | {mean('search_val_acc')} | "
                         f"{mean('parameterless_normal')} | {mean('test_error')} | {mean('op_entropy')} | "
                         f"{mean('edge_entropy')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="run folders of every pool (reused when complete)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--only", default=None, help="comma-separated regressions (default: all)")
    parser.add_argument("--report", type=Path, default=Path("docs/check-power.md"))
    args = parser.parse_args(argv)
    names = list(INJECTIONS) if args.only is None else [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in INJECTIONS]
    if unknown:
        parser.error(f"unknown regression {', '.join(unknown)}; valid: {', '.join(INJECTIONS)}")
    started = time.time()
    data = collect(args.out, args.jobs, names)
    command = "python -m harness.evidence.check_power " + " ".join(sys.argv[1:] if argv is None else argv)
    text = report(data, args.trials, command, time.time() - started)
    write_json(args.report.with_suffix(".json"), data)  # the per-seed summaries the report was made from
    atomic_write_text(args.report, text)
    print(text)


if __name__ == "__main__":
    main()
