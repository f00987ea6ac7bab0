"""`harness check` (registered on the main command group): rerun the reproduction suite, compare with
the committed baselines and the paper's published numbers; exit 1 if anything regressed."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from harness.cli import HarnessError, cli


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


@cli.command("check")
@click.option("--update", is_flag=True, help="rerun and rewrite the baselines instead of comparing")
@click.option("--strict", is_flag=True, help="a changed genotype or config, or a claim never shown, fails too")
@click.option("--methods", default=None, help="only these methods of the suite (comma separated)")
@click.option("--benches", default=None, help="only these benchmarks of the suite (s0-digits, s2-digits, s3-digits)")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="keep the runs here (complete runs found there are reused); default: a temporary folder")
@click.option("--jobs", default=None, type=int, help="runs at a time (default: 2, or 1 on one core)")
@click.option("--baseline", "baseline_file", default=None, type=click.Path(dir_okay=False),
              help="baseline file (default: harness/baselines/check.json)")
@click.option("--paper-dir", default=None, type=click.Path(file_okay=False),
              help="paper-budget results to compare with the published tables (default: harness/baselines/paper)")
@click.option("--paper-only", is_flag=True, help="only compare the paper-budget results; run nothing")
@click.option("--tol-error", default=3.0, show_default=True, type=float, help="test error tolerance, points")
@click.option("--tol-parameterless", default=1, show_default=True, type=int,
              help="tolerance on the parameterless ops of the normal cell")
def check_cmd(update: bool, strict: bool, methods: str | None, benches: str | None, out: str | None,
              jobs: int | None, baseline_file: str | None, paper_dir: str | None, paper_only: bool,
              tol_error: float, tol_parameterless: int) -> None:
    """Rerun the fixed reproduction suite (every method on s0/s2/s3-digits, budget `check`, seed 0)
    and compare it with harness/baselines/check.json; compare committed paper-budget results with
    the paper's tables."""
    from harness import check

    if update and paper_only:
        raise HarnessError("--update rewrites the suite's baselines; it cannot go with --paper-only")
    if jobs is not None and jobs < 1:
        raise HarnessError(f"--jobs must be >= 1, got {jobs}")
    n_jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    try:
        check.suite_configs(_names(methods), _names(benches))  # validate names before running anything
        with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
            ok = check.check(
                out=Path(out) if out else Path(tmp), methods=_names(methods), benches=_names(benches), jobs=n_jobs,
                baseline_path=Path(baseline_file) if baseline_file else check.CHECK_BASELINE,
                paper_dir=Path(paper_dir) if paper_dir else check.PAPER_RESULTS,
                tol=check.Tolerances(tol_error, tol_parameterless), strict=strict, update=update,
                paper_only=paper_only, echo=click.echo)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if not ok:
        sys.exit(1)
