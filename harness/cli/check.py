"""`harness check` (registered on the main command group): the exact machine-independent checks and the
distribution suite compared with harness/evidence/baselines/check.json, and committed paper-budget results
compared with the paper's tables; exit 1 if anything regressed."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from harness.cli.common import HarnessError, name_list, seed_list
from harness.evidence import check


def _names(text: str | None, option: str) -> list[str] | None:
    return None if text is None else name_list(text, option)


def _seeds(text: str | None) -> list[int] | None:
    return None if text is None else seed_list(None, text)


@click.command("check")
@click.option("--update", is_flag=True,
              help="recompute and rewrite the baselines (exact values and the suite's per-seed results)")
@click.option("--exact-only", is_flag=True, help="only the exact, machine-independent part (seconds)")
@click.option("--methods", default=None, help="only these methods of the distribution suite (gdas, rome-v2)")
@click.option("--benches", default=None, help="only these benchmarks of the distribution suite (s2-digits)")
@click.option("--seeds", default=None, help="seeds of the distribution suite (default 0-7)")
@click.option("--alpha", default=0.01, show_default=True, type=float,
              help="family-wise false-alarm rate of the distribution comparison (Holm over its one-sided tests)")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="keep the runs here (complete runs found there are reused); default: a temporary folder")
@click.option("--jobs", default=None, type=int, help="runs at a time (default: 2, or 1 on one core)")
@click.option("--baseline", "baseline_file", default=None, type=click.Path(dir_okay=False),
              help="baseline file (default: harness/evidence/baselines/check.json)")
@click.option("--paper-dir", default=None, type=click.Path(file_okay=False),
              help="paper-budget results to compare with the published tables "
                   "(default: harness/evidence/baselines/paper)")
@click.option("--paper-only", is_flag=True, help="only compare the paper-budget results; run nothing")
def check_cmd(update: bool, exact_only: bool, methods: str | None, benches: str | None, seeds: str | None,
              alpha: float, out: str | None, jobs: int | None, baseline_file: str | None, paper_dir: str | None,
              paper_only: bool) -> None:
    """Exact checks (counts, sampler statistics, derivation, float64 method steps) and the distribution
    suite (gdas, rome-v2 on s2-digits, budget `check`, 8 seeds, one-sided Welch tests with Holm against the
    committed per-seed values, plus invariants), both against harness/evidence/baselines/check.json; paper-budget
    results against the paper."""
    if update and paper_only:
        raise HarnessError("--update rewrites the suite's baselines; it cannot go with --paper-only")
    if exact_only and paper_only:
        raise HarnessError("--exact-only and --paper-only exclude each other")
    if jobs is not None and jobs < 1:
        raise HarnessError(f"--jobs must be >= 1, got {jobs}")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must lie in (0, 1), got {alpha}")
    n_jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    if paper_dir is not None and not Path(paper_dir).is_dir():  # else "0 checks" would pass
        raise HarnessError(f"--paper-dir {paper_dir}: no such folder")
    baseline_path = Path(baseline_file) if baseline_file else check.CHECK_BASELINE
    try:
        names, bench_names, seed_values = _names(methods, "--methods"), _names(benches, "--benches"), _seeds(seeds)
        check.suite_configs(names, bench_names, seed_values)  # validate before running anything
        check.load_baseline(baseline_path)  # a FIFO, a device or bad JSON: refused before any work
        with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
            ok = check.check(
                out=Path(out) if out else Path(tmp), methods=names, benches=bench_names,
                seeds=seed_values, jobs=n_jobs, baseline_path=baseline_path,
                paper_dir=Path(paper_dir) if paper_dir else check.PAPER_RESULTS, alpha=alpha, update=update,
                exact_only=exact_only, paper_only=paper_only, echo=click.echo)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if not ok:
        sys.exit(1)
