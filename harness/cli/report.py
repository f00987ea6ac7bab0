"""`harness profile` and `harness report` (registered on the main command group)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.cli.common import HarnessError, WithMethodOptions, check_device, method_options
from harness.data import datasets as data
from harness.evidence.profile import ProfileConfig, check_config, profile_step, write_profile
from harness.evidence.throughput import profile_fields
from reports.claims import write_report
from reports.index import build_reports, load_inputs


@click.command("profile", cls=WithMethodOptions)
@click.option("--method", required=True, help="darts, gdas, pcdarts, rome-v1, rome-v2")
@click.option("--bench", default="s0-c10", show_default=True, help="benchmark whose space is profiled")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--channels", default=16, show_default=True, type=int, help="initial channels of the supernet")
@click.option("--layers", default=8, show_default=True, type=int, help="cells of the supernet")
@click.option("--image-size", default=32, show_default=True, type=int)
@click.option("--num-classes", default=None, type=int, help="default: the benchmark's dataset")
@click.option("--steps", default=None, type=int,
              help="timed steps after the counted one (default: 1 to 3, stopping once they took 10 s; "
                   "none when the counted step alone took 10 s)")
@click.option("--data", "data_kind", type=click.Choice(["random", "real"]), default="random", show_default=True,
              help="random tensors or real batches of the benchmark's dataset")
@click.option("--data-root", default=None, help="folder holding the datasets (with --data real)")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--subnets", default=20, show_default=True, type=int,
              help="sampled subnets of the saved-bytes distribution (0: skip)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="also write DIR/profile_<method>[_<option><value>...].json (read by `harness report --memory`)")
@click.option("--throughput", "throughput_shape", type=click.Choice(["paper", "smoke", "ci"]), default=None,
              help="also time evaluation-network training (DARTS_V2 at this shape) in images/s "
                   "(harness.evidence.throughput)")
def profile_cmd(method: str, bench: str, batch_size: int, channels: int, layers: int, image_size: int,
                num_classes: int | None, steps: int | None, data_kind: str, data_root: str | None, device: str | None,
                seed: int, subnets: int, as_json: bool, out: str | None, throughput_shape: str | None,
                **toggles: Any) -> None:
    """Measure one search step at ROME Table 7's shape: saved-for-backward, parameter, gradient and
    optimizer bytes, CUDA peak memory on a GPU, and seconds per step. Every shape is bounded
    (harness.evidence.profile.LIMITS) and checked before anything is built."""
    cfg = ProfileConfig(method=method, bench=bench, options=method_options(**toggles), batch_size=batch_size,
                        channels=channels, layers=layers, image_size=image_size, num_classes=num_classes,
                        steps=steps, seed=seed, data=data_kind, data_root=data_root, subnets=subnets)
    try:
        check_config(cfg)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    device = check_device(device)
    try:
        result = profile_step(cfg, device)
    except (ValueError, data.DatasetMissing) as exc:
        raise HarnessError(str(exc)) from None
    if throughput_shape is not None:
        result["throughput"] = profile_fields(result, throughput_shape, device)
    if out is not None:
        result["file"] = str(write_profile(result, Path(out)))
    if as_json:
        click.echo(json.dumps(result))
        return
    mib = 2**20
    shape = result["shape"]
    click.echo(f"{method} {result['options']} on {result['space']} ({result['device']}), batch {shape['batch_size']}, "
               f"{shape['channels']} channels, {shape['layers']} cells, {shape['image_size']}x{shape['image_size']}")
    click.echo(f"  saved for backward: {result['saved_bytes'] / mib:.1f} MiB per graph "
               f"(largest of {result['forward_passes']} forward passes)")
    d = result.get("subnets")
    if d and not d.get("sampled", True):
        click.echo(f"  saved for backward by one architecture pass: {d['mean'] / mib:.2f} MiB "
                   f"({method} samples nothing: every draw is this pass)")
    elif d:
        click.echo(f"  saved for backward over {d['n']} sampled subnets: mean {d['mean'] / mib:.2f} MiB "
                   f"(95 % CI {d['mean_ci95'][0] / mib:.2f}-{d['mean_ci95'][1] / mib:.2f}), "
                   f"max {d['max'] / mib:.2f} MiB, 95 % of draws in {d['range95'][0] / mib:.2f}-"
                   f"{d['range95'][1] / mib:.2f}")
    click.echo(f"  parameters {result['param_bytes'] / mib:.2f} MiB (+ alpha/beta {result['arch_param_bytes']} B), "
               f"gradients {result['grad_bytes'] / mib:.2f} MiB, "
               f"optimizer state {result['optimizer_state_bytes'] / mib:.2f} MiB")
    if result["cuda_peak_bytes"] is not None:
        click.echo(f"  CUDA peak allocated: {result['cuda_peak_bytes'] / mib:.1f} MiB")
    timed = "the counted step, long enough alone" if result.get("counted_step_timed") else \
        f"median of {result['steps']}"
    click.echo(f"  {result['seconds_per_step']:.3f} s per step ({timed})")
    if "throughput" in result:
        ev = result["throughput"]["eval"]
        click.echo(f"  evaluation training ({ev['shape']['name']} shape, {ev['data_path']} data path): "
                   f"{ev['images_per_s']:.1f} images/s")
    if out is not None:
        click.echo(f"  -> {result['file']}")


REPORT_FLAGS = {"benchmarks": "Tables 1-4", "ablation": "Table 6", "k-sensitivity": "Table 5",
                "collapse": "Fig. 3", "memory": "Table 7 (from harness profile --out)",
                "cells": "Fig. 2/5 drawings, one per complete run (made only when named)",
                "weights": "architecture weights per search epoch, a figure per configuration (made only when named)"}


def _report_out(out_dir: str, runs: Path) -> Path:
    """``--out`` of ``harness report``, checked before any run is read or file written: not empty, no
    regular file where a folder must be (``--out a_file/report``), and not the runs folder or inside it
    (the report would be written among the runs it reads)."""
    if not out_dir.strip():
        raise HarnessError("--out is empty; name a folder for the report")
    out = Path(out_dir)
    try:
        for folder in (out, *out.parents):
            if folder.is_symlink() or folder.exists():
                if not folder.is_dir():
                    raise HarnessError(f"--out {out}: {folder} is not a folder")
                break
        real_out, real_runs = out.resolve(), runs.resolve()
    except OSError:  # an unreadable parent: writing the report says why
        return out
    if real_out == real_runs or real_runs in real_out.parents:
        raise HarnessError(f"--out {out} is inside the runs folder {runs}: the report would lie among the runs it "
                           "reads; choose a folder outside it")
    return out


@click.command("report")
@click.option("--runs", "runs_dir", required=True, type=click.Path(file_okay=False), help="folder of run directories")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder for the report")
@click.option("--profiles", "profiles_dir", default=None, type=click.Path(file_okay=False),
              help="folder of profile_*.json (default: the runs folder)")
@click.option("--benchmarks", is_flag=True, help=REPORT_FLAGS["benchmarks"])
@click.option("--ablation", is_flag=True, help=REPORT_FLAGS["ablation"])
@click.option("--k-sensitivity", "k_sensitivity", is_flag=True, help=REPORT_FLAGS["k-sensitivity"])
@click.option("--collapse", is_flag=True, help=REPORT_FLAGS["collapse"])
@click.option("--memory", is_flag=True, help=REPORT_FLAGS["memory"])
@click.option("--cells", is_flag=True, help=REPORT_FLAGS["cells"])
@click.option("--claims", is_flag=True, help="the paper's claims as tests over seeds (harness/evidence/claims.py)")
@click.option("--claims-budget", default="cpu", show_default=True, help="budget whose runs --claims tests")
@click.option("--weights", is_flag=True, help=REPORT_FLAGS["weights"])
@click.option("--all", "all_reports", is_flag=True, help="every report, the drawings of single runs included")
def report_cmd(runs_dir: str, out_dir: str, profiles_dir: str | None, claims: bool, claims_budget: str,
               all_reports: bool, **flags: bool) -> None:
    """Tables (Markdown, CSV, LaTeX under tex/) and figures (PNG, PDF) of the paper from recorded runs,
    index.md and one self-contained index.html. No report flag means every report but the drawings of
    single runs (--cells, --weights), which are made only when named (or with --all). Runs are grouped
    by configuration (the spec without the seed); a run id found twice is counted once, with a warning.
    A report whose runs are missing says what to run and is skipped."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        raise HarnessError(f"runs folder {runs} does not exist")
    if profiles_dir is not None and not Path(profiles_dir).is_dir():
        raise HarnessError(f"profiles folder {profiles_dir} does not exist")
    out = _report_out(out_dir, runs)
    names = list(REPORT_FLAGS) if all_reports else [name for name in REPORT_FLAGS if flags[name.replace("-", "_")]]
    inputs = load_inputs(runs, profiles_dir)
    for warning in inputs.runs.attrs.get("duplicates", []):
        click.echo(f"warning: {warning}", err=True)
    if claims:
        try:
            files = write_report(runs, out, claims_budget, runs=inputs.runs, history=inputs.history,
                                 profiles_dir=inputs.profiles_dir)
        except OSError as exc:
            raise HarnessError(f"cannot write the claims to {out}: {exc.strerror or exc}") from None
        click.echo(f"claims: wrote {files[0]} and {len(files) - 1} more files")
        if not names:
            return
    try:
        sections = build_reports(runs, out, names, profiles_dir, inputs=inputs)
    except OSError as exc:
        raise HarnessError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    for s in sections:
        if s.files:
            click.echo(f"{s.name}: wrote {s.files[0]} and {len(s.files) - 1} more files")
        for m in s.messages:
            click.echo(m)
    click.echo(f"index: {Path(out_dir) / 'index.md'}, {Path(out_dir) / 'index.html'}")
