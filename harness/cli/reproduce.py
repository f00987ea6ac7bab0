"""`harness reproduce`: make every run the claims declare (harness/evidence/claims.py), then write the claims report.

The sweep is the union of the claims' :class:`~harness.evidence.claims.Need` s at one budget, each run once (by run
id), submitted through the executors of `harness run` (:func:`harness.runs.executors.run_many`), which skip
complete runs and resume unfinished ones: the command is idempotent and resumable. Memory profiles
(Table 7) are written once to ``OUT/profiles``. Then ``OUT/report`` gets the claims (Markdown, CSV, LaTeX,
HTML) and the existing reports and figures of those runs.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from harness.cli import common
from harness.cli.common import HarnessError, check_device, executor_options, note, with_options, writable
from harness.evidence import claims
from harness.evidence.profile import ProfileConfig, profile_filename, profile_step, write_profile
from harness.runs.executors import ClusterOptions, check_executor, run_many
from harness.runs.layout import RESULT
from harness.runs.read import read_result
from harness.spec.benchmarks import BUDGETS
from reports.claims import write_report
from reports.index import build_reports, load_inputs

#: seconds per run at budget cpu on one core of a Xeon (search + evaluation; measured on the committed suite,
#: docs/reproduce-cpu: GDAS 75-120 s, ROME-v2 K = 3 130-280 s, DARTS in S0 630-690 s), for --dry-run's estimate
SECONDS: dict[str, float] = {"darts": 650.0, "pcdarts": 300.0, "gdas": 85.0, "rome-v1": 200.0, "rome-v2": 200.0,
                             "fixed": 16.0, "profile": 60.0}
#: budgets other than cpu scale the estimate (search and evaluation lengths relative to cpu; check: 16-28 s)
BUDGET_SCALE: dict[str, float] = {"check": 0.15, "smoke": 0.1, "cpu": 1.0, "paper": 400.0}


def plan(budget: str, names: list[str] | None, seeds: tuple[int, ...] | None = None
         ) -> tuple[list[Any], list[Any], dict[str, list[str]]]:
    """The run specs (each once), the profile needs and, per run id, the claims that read it."""
    selected = claims.select(names)
    specs: dict[str, Any] = {}
    profiles: dict[Any, None] = {}
    readers: dict[str, list[str]] = {}
    for claim in selected:
        for need in claim.needs:
            if need.kind == "profile":
                profiles[need] = None
                continue
            for spec in need.configs(budget, seeds or claim.seeds):
                specs.setdefault(spec.run_id, spec)
                readers.setdefault(spec.run_id, []).append(claim.name)
    return list(specs.values()), list(profiles), readers


def _keys(method: str, bench: str, options: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The same spec but the seed, then the same method and benchmark (what a run's time depends on most)."""
    return (method, bench, json.dumps(options, sort_keys=True, default=str)), (method, bench)


def estimate_s(specs: list[Any], profiles: list[Any], budget: str, workers: int,
               done: Mapping[str, dict[str, Any]] | None = None) -> float:
    """Seconds for ``specs`` and ``profiles`` with ``workers`` at a time. A run takes the median wall time
    (``timings.total_s``) of the complete runs in ``done`` of its spec but the seed, else of its method and
    benchmark, else :data:`SECONDS` scaled to the budget (an S0 search of ROME-v2 takes about three times
    one in S1-S4, and K = 7 more than K = 3, so measured times are the better guess once there are some)."""
    measured: dict[tuple[str, ...], list[float]] = {}
    for r in (done or {}).values():
        total = (r.get("timings") or {}).get("total_s")
        if isinstance(total, int | float) and math.isfinite(total):
            for key in _keys(r.get("method"), r.get("bench"), r.get("options")):
                measured.setdefault(key, []).append(float(total))

    def one(spec: Any) -> float:
        for key in _keys(spec.method, spec.bench, spec.options):
            if key in measured:
                return statistics.median(measured[key])
        return SECONDS.get(spec.method, 300.0) * BUDGET_SCALE.get(budget, 1.0)

    per = sum(one(s) for s in specs) + SECONDS["profile"] * BUDGET_SCALE.get(budget, 1.0) * len(profiles)
    return per / max(workers, 1)


def _complete(runs_dir: Path, specs: list[Any]) -> dict[str, dict[str, Any]]:
    """The results of ``specs`` whose ``result.json`` under ``runs_dir`` is a complete run, by run id."""
    out = {}
    for s in specs:
        if (runs_dir / s.run_id / RESULT).is_file():
            r = read_result(runs_dir / s.run_id / RESULT)
            if r.ok and r.data.get("status") == "complete":
                out[s.run_id] = r.data
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def make_profiles(profiles: list[Any], out: Path, device: str | None) -> list[Path]:
    """`harness profile --out` of each profile need at Table 7's shape, unless its file is there."""
    written = []
    for need in profiles:
        shape = claims.PROFILE_SHAPE
        cfg = ProfileConfig(method=need.method, bench=shape["bench"], options=need.opts,
                            batch_size=shape["batch_size"], channels=shape["channels"], layers=shape["layers"],
                            image_size=shape["image_size"], steps=1, seed=0, subnets=shape["subnets"])
        name = profile_filename({"method": need.method, "options": need.resolved_options()})
        if (out / name).is_file():
            continue
        out.mkdir(parents=True, exist_ok=True)
        written.append(write_profile(profile_step(cfg, device or "cpu"), out))
    return written


@click.command("reproduce")
@click.option("--budget", default="cpu", show_default=True, help="budget of every run (cpu, paper, check, smoke)")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="folder of the sweep: OUT/runs, OUT/profiles, OUT/report")
@click.option("--only", default=None, metavar="CLAIM,...", help="only these claims (and only their runs)")
@click.option("--seeds", default=None, help="comma-separated seeds of every claim (default: each claim's own: 0-4; "
              "0-6 for exact count tests, 0-9 for sign-flip tests)")
@click.option("--dry-run", is_flag=True, help="list the runs, the claims reading each and an estimated time")
@click.option("--data-root", default=None, help="folder holding the datasets")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
@with_options(executor_options)
def reproduce_cmd(budget: str, out: str, only: str | None, seeds: str | None, dry_run: bool, data_root: str | None,
                  device: str | None, executor: str, workers: int, partition: str | None, time_min: int | None,
                  gpus: int, mem_gb: float | None, slurm_folder: str | None, gpus_per_run: int) -> None:
    """Does the paper hold? Make every run the claims declare (complete runs skipped, unfinished ones
    resumed), then write the claims report (Markdown, CSV, LaTeX, HTML) and the figures under OUT/report."""
    try:
        for text, option in ((out, "--out"), (data_root, "--data-root"), (slurm_folder, "--slurm-folder")):
            common.folder(text, option)
        if budget not in BUDGETS:
            raise ValueError(f"unknown --budget '{budget}'; valid: {', '.join(BUDGETS)}")
        check_executor(executor, workers)
        names = None if only is None else common.unique(common.name_list(only, "--only"), "--only", note)
        seed_list = None if seeds is None else tuple(common.unique(common.seed_list(None, seeds), "--seeds",
                                                                     note))
        specs, profiles, readers = plan(budget, names, seed_list)
        folder = None if slurm_folder is None else Path(slurm_folder)
        cluster = ClusterOptions(partition, time_min, gpus, mem_gb, folder, gpus_per_run)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if dry_run:
        done = _complete(Path(out) / "runs", specs)
        todo = [s for s in specs if s.run_id not in done]
        seconds = estimate_s(todo, profiles, budget, workers, done)
        click.echo(json.dumps({
            "budget": budget, "runs": len(specs), "complete": len(done), "profiles": [n.label() for n in profiles],
            "estimated_s": round(seconds),
            "estimate": f"about {_hours(seconds)} for the {len(todo)} runs not complete in {out} with {workers} "
                        "worker(s) (per run: the median wall time of the complete runs of its spec, else of its "
                        "method and benchmark, else harness/cli/reproduce.py SECONDS)",
            "run_list": [{"run_id": s.run_id, "method": s.method, "options": s.options, "bench": s.bench,
                          "seed": s.seed, "claims": readers[s.run_id]} for s in specs]}, indent=2))
        return
    device = check_device(device, here=executor != "slurm")
    root = writable(Path(out))
    runs_dir, profiles_dir, report_dir = root / "runs", root / "profiles", root / "report"
    results = run_many(specs, runs_dir, executor=executor, workers=workers, cluster=cluster, data_root=data_root,
                       device=device, progress=False, tensorboard=False) if specs else []
    counts = Counter(r["status"] for r in results)
    click.echo(f"runs: {counts['complete']} of {len(specs)} complete in {runs_dir}")
    made = make_profiles(profiles, profiles_dir, device)
    if profiles:
        click.echo(f"profiles: {len(made)} made, {len(profiles) - len(made)} already there in {profiles_dir}")
    runs_dir.mkdir(parents=True, exist_ok=True)
    inputs = load_inputs(runs_dir, profiles_dir)
    try:
        files = write_report(runs_dir, report_dir, budget, runs=inputs.runs, history=inputs.history,
                             profiles_dir=profiles_dir, names=names)
        if not inputs.runs.empty or profiles:
            build_reports(runs_dir, report_dir, None, profiles_dir, inputs=inputs)
    except OSError as exc:
        raise HarnessError(f"cannot write the report to {report_dir}: {exc.strerror or exc}") from None
    click.echo(f"claims: {files[0]} (and .csv, .tex, .html); index: {report_dir / 'index.md'}")
    if counts["complete"] < len(specs):
        click.echo(f"{len(specs) - counts['complete']} runs did not complete; see `harness status --runs {runs_dir}`",
                   err=True)
        sys.exit(1)
