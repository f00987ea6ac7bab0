"""The ``harness`` command (click). Bad input prints one line on stderr and exits with code 2."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

import methods
from harness.cli import check, common, report, reproduce, status
from harness.cli.common import (
    HarnessError,
    WithMethodOptions,
    check_device,
    executor_options,
    method_options,
    note,
    with_options,
    writable,
)
from harness.data import datasets as data
from harness.runs.executors import ClusterOptions, check_executor, run_many
from harness.runs.layout import RESULT
from harness.runs.run import Run
from harness.runs.storage import RunFolderError, StorageFault
from harness.spec import benchmarks
from harness.spec.benchmarks import BENCHMARKS, BUDGETS, GROUPS, PRESETS
from harness.spec.runspec import LIMITS, TAU_MIN, RunSpec, fixed_config, make_config, parse_sets, valid_keys
from harness.spec.sweeps import sweep_configs
from harness.utils.paths import PathEscape
from spaces.evalnet import MACS_INCLUDE, count_macs, count_params
from spaces.genotype import PARAMETERLESS, resolve
from spaces.ops import OPS
from spaces.registry import build_eval_network, describe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rome-harness")
def cli() -> None:
    """Reproducibility harness for single-path differentiable NAS (ROME, GDAS, DARTS, PC-DARTS)."""


@cli.command("list")
@click.option("--fields", is_flag=True, help="also list the run-spec fields that --set can override")
def list_cmd(fields: bool) -> None:
    """List methods, benchmarks, groups, budgets and presets."""
    click.echo("methods:    " + ", ".join(sorted(methods.METHODS)))
    for name, cls in sorted(methods.METHODS.items()):
        if cls.option_defaults:
            click.echo(f"  {name}: options " + ", ".join(f"{k}={v}" for k, v in cls.option_defaults.items()))
    click.echo("benchmarks: " + ", ".join(BENCHMARKS))
    click.echo("groups:     " + ", ".join(f"{g} ({len(v)})" for g, v in GROUPS.items()))
    click.echo("budgets:    " + ", ".join(BUDGETS))
    for name, table in BUDGETS.items():
        if table.get("search.scale", "none") != "none":
            click.echo(f"  {name}: search.scale={table['search.scale']} (search.a_lr x architecture steps as the "
                       "paper protocol's; `harness run --dry-run` shows search.a_lr, a_lr_ref, arch_steps_ref, "
                       "arch_steps)")
    click.echo("presets:    " + ", ".join(PRESETS))
    if fields:
        spec = RunSpec("-", "-", "-", 0)
        click.echo("fields:     " + ", ".join(f"{k}={spec.get(k)}" for k in valid_keys()))
        click.echo("            options.<name> for a method's options (see above); old flat names such as "
                   "eval_epochs, search_channels, k still work")
        click.echo("limits:     " + ", ".join(f"{k} <= {v:g}" for k, v in LIMITS.items())
                   + f", search.tau_max and search.tau_min >= {TAU_MIN:g}, data.cutout <= the image size, "
                     "and the search and evaluation shapes together under 1 TiB of estimated memory")


@cli.command("run", cls=WithMethodOptions)
@click.option("--method", "method_names", default="rome-v2", show_default=True,
              help="method name, or several comma-separated")
@click.option("--bench", default="s0-digits", show_default=True, help="benchmark id or group (all, s0, rdarts, digits)")
@click.option("--budget", default="smoke", show_default=True, help="smoke | paper")
@click.option("--seed", default=None, type=int, help="one seed (default 0)")
@click.option("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False), help="output folder")
@click.option("--data-root", default=None, help="folder holding the datasets")
@click.option("--download", is_flag=True, help="download datasets torchvision can fetch")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
@click.option("--epochs", type=int, default=None, help="override the search epochs of the budget")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="override one run-spec field, e.g. --set search.a_lr=6e-4 --set eval.epochs=20 "
                   "(see `harness list --fields`)")
@click.option("--preset", default="default", show_default=True, help="default | released (docs/run-spec.md 'Presets')")
@click.option("--dry-run", is_flag=True, help="print the resolved run specs and run ids (JSON); run nothing")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True,
              help="TensorBoard logs of each search under RUN/tb/ (losses, tau, lr, architecture weights)")
@click.option("--ablation", is_flag=True, help="Table 6: the 8 TD x GA-theta x GA-alpha combinations of ROME")
@click.option("--k-sweep", default=None, metavar="K,K,...",
              help="Table 5: ROME with each K (e.g. 1,4,7,10), search epochs scaled to 7/K of the budget's")
@with_options(executor_options)
def run_cmd(method_names: str, bench: str, budget: str, seed: int | None, seeds: str | None, out: str,
            data_root: str | None, download: bool, device: str | None, epochs: int | None,
            sets: tuple[str, ...], preset: str, dry_run: bool, progress: bool, tensorboard: bool, executor: str,
            workers: int, partition: str | None, time_min: int | None, gpus: int, mem_gb: float | None,
            slurm_folder: str | None, gpus_per_run: int, ablation: bool, k_sweep: str | None,
            **toggles: Any) -> None:
    """Search, derive, evaluate and record; complete runs are skipped, unfinished ones resumed."""
    opts = method_options(**toggles)
    device = check_device(device, here=executor != "slurm")
    try:
        for text, option in ((out, "--out"), (data_root, "--data-root"), (slurm_folder, "--slurm-folder")):
            common.folder(text, option)
        seed_list = common.unique(common.seed_list(seed, seeds), "--seeds", note)
        names = common.unique(common.name_list(method_names, "--method"), "--method", note)
        common.name_list(bench, "--bench")
        folder = None if slurm_folder is None else Path(slurm_folder)
        cluster = ClusterOptions(partition, time_min, gpus, mem_gb, folder, gpus_per_run)
        check_executor(executor, workers)
        given = parse_sets(sets)
        _no_conflict(given, epochs, opts)
        overrides: dict[str, Any] = {"search.epochs": epochs, **given}
        if ablation or k_sweep is not None:
            ks = [] if k_sweep is None else common.unique(common.int_list(k_sweep, "--k-sweep"), "--k-sweep",
                                                            note)
            configs = sweep_configs(names, bench, budget, seed_list, ablation=ablation, ks=ks, options=opts,
                                    preset=preset, **overrides)
        else:
            configs = [make_config(m, b, budget, s, opts, preset=preset, sets=overrides)
                       for m in names for b in benchmarks.expand(bench) for s in seed_list]
        if dry_run:
            click.echo(json.dumps([{"run_id": c.run_id, "config": c.to_dict()} for c in configs], indent=2))
            return
        for dataset in dict.fromkeys(benchmarks.get(c.bench).dataset for c in configs):
            if not download:
                data.check_available(dataset, data_root)
    except (ValueError, data.DatasetMissing) as exc:  # SpecError is a ValueError
        raise HarnessError(str(exc)) from None
    out_dir = writable(Path(out))
    results = run_many(configs, out_dir, executor=executor, workers=workers, cluster=cluster,
                       on_result=lambda r: _report(r, out_dir), data_root=data_root, download=download,
                       device=device, progress=progress and executor == "local" and workers == 1,
                       tensorboard=tensorboard)
    counts = Counter(r["status"] for r in results)
    if counts["complete"] < len(results):
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if status != "complete")
        click.echo(f"{summary} of {len(configs)} runs; failed ones are in their result.json, see "
                   f"`harness status --runs {out_dir}`", err=True)
        sys.exit(1)


def _no_conflict(sets: dict[str, str], epochs: int | None, opts: dict[str, Any]) -> None:
    """``ValueError`` when a flag and a ``--set`` give the same field: the ``--set`` used to win (or the
    flag, for method options) without a word."""
    if epochs is not None and "search.epochs" in sets:
        raise ValueError(f"--epochs {epochs} and --set search.epochs={sets['search.epochs']}: give one of them")
    for name, value in opts.items():
        if f"options.{name}" in sets:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {value} and --set options.{name}={sets[f'options.{name}']}: give one of them")


def _report(result: dict[str, Any], out: Path) -> None:
    where = out / result["run_id"] / RESULT
    if result["status"] in ("skipped", "interrupted"):  # nothing written: the run stays unfinished
        click.echo(f"{result['run_id']}: {result['status']} ({result.get('reason')})")
        return
    if result["status"] != "complete":
        click.echo(f"{result['run_id']}: FAILED ({result.get('reason')}) -> {where}")
        return
    ev = result["eval"]
    history = result["search"]["history"]
    count = (history[-1]["parameterless_normal"] if history  # a fixed genotype (harness eval) has no search
             else sum(op in PARAMETERLESS for op, _ in result["genotype"].get("normal", [])))
    click.echo(f"{result['run_id']}: test error {ev['test_error']:.2f} %, params {ev['params'] / 1e6:.3f} M, "
               f"parameterless ops in normal cell {count} -> {where}")


@cli.command("eval")
@click.option("--genotype", "genotype_name", required=True, help="DARTS_V1, DARTS_V2, PC_DARTS, GDAS_V1 or a JSON file")
@click.option("--bench", default="s0-c10", show_default=True)
@click.option("--budget", default="paper", show_default=True)
@click.option("--count-only", is_flag=True, help="only count parameters and multiply-adds")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the training run")
@click.option("--out", "out_folder", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="output folder of the training run")
@click.option("--data-root", default=None, help="folder holding the datasets")
@click.option("--download", is_flag=True, help="download datasets torchvision can fetch")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="override one eval/data field, e.g. --set eval.epochs=20")
@click.option("--preset", default="default", show_default=True, help="default | released (docs/run-spec.md 'Presets')")
@click.option("--dry-run", is_flag=True, help="print the resolved run spec and run id (JSON); train nothing")
@click.option("--progress/--no-progress", default=True, show_default=True)
def eval_cmd(genotype_name: str, bench: str, budget: str, count_only: bool, as_json: bool, seed: int, out_folder: str,
             data_root: str | None, download: bool, device: str | None, sets: tuple[str, ...], preset: str,
             dry_run: bool, progress: bool) -> None:
    """Build the evaluation network of a genotype for a benchmark; count it, or train and test it from
    scratch at the budget's protocol (recorded like a run, method 'fixed', resumable)."""
    try:
        for text, option in ((out_folder, "--out"), (data_root, "--data-root")):
            common.folder(text, option)
        common.seed_list(seed, None)
        genotype = resolve(genotype_name)
        unknown = sorted({op for op, _ in [*genotype.normal, *genotype.reduce]} - set(OPS))
        if unknown:
            raise ValueError(f"genotype {genotype_name} names unknown op(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(OPS)}")
        cfg = fixed_config(genotype, genotype_name, bench, budget, seed, preset=preset, **parse_sets(sets))
        spec = data.DATASETS[benchmarks.get(cfg.bench).dataset]
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if dry_run:
        click.echo(json.dumps({"run_id": cfg.run_id, "config": cfg.to_dict()}, indent=2))
        return
    bench_id, ev = [cfg.bench], cfg.eval
    try:  # the network rejects cells that pass the file's structure check (empty, bad concat)
        net = build_eval_network(genotype, network=ev.network, c=ev.channels, layers=ev.layers,
                                 num_classes=spec.num_classes, auxiliary=ev.aux_weight > 0)
    except ValueError as exc:
        raise HarnessError(f"genotype {genotype_name}: {exc}") from None
    size = spec.image_size
    out: dict[str, Any] = {"genotype": genotype_name, "bench": bench_id[0], "budget": budget,
                           "layers": ev.layers, "channels": ev.channels,
                           "params": count_params(net), "macs": count_macs(net, (1, 3, size, size)),
                           "input": [3, size, size], "params_exclude": "auxiliary head",
                           "macs_include": list(MACS_INCLUDE)}
    if not count_only:
        _train_fixed(cfg, out_folder, data_root, download, device, progress, as_json)
        return
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(f"{genotype_name} on {bench_id[0]}: {out['params'] / 1e6:.2f} M parameters (auxiliary head "
                   f"excluded), {out['macs'] / 1e6:.0f} M multiply-adds at {size}x{size} "
                   f"({', '.join(MACS_INCLUDE)})")


def _train_fixed(cfg: RunSpec, out: str, data_root: str | None, download: bool, device: str | None,
                 progress: bool, as_json: bool) -> None:
    device = check_device(device, here=True)
    try:
        if not download:
            data.check_available(benchmarks.get(cfg.bench).dataset, data_root)
    except (ValueError, data.DatasetMissing) as exc:
        raise HarnessError(str(exc)) from None
    out_dir = writable(Path(out))
    result = Run(cfg, out_dir, data_root=data_root, download=download, device=device, progress=progress).execute()
    if as_json:
        click.echo(json.dumps(result))
    else:
        _report(result, out_dir)
    if result["status"] != "complete":
        sys.exit(1)


@cli.command("describe")
@click.option("--space", required=True, help="s0, s1, s2, s3, s4, ...")
@click.option("--json", "as_json", is_flag=True)
def describe_cmd(space: str, as_json: bool) -> None:
    """Print each cell type's per-edge candidate op lists."""
    try:
        desc = describe(space)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(desc))
        return
    for cell_type, edges in desc.items():
        click.echo(f"{cell_type}:")
        for i, ops in enumerate(edges):
            click.echo(f"  {i:2d}: {', '.join(ops)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: click's errors and ours become one line on stderr with exit code 2."""
    try:
        cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}".replace("\n", " "), err=True)
        return 2
    except (StorageFault, RunFolderError, PathEscape) as exc:  # full/read-only --out, a broken run folder
        click.echo(f"error: {exc.strerror or exc}" if isinstance(exc, OSError) else f"error: {exc}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0



for _sub in (check.check_cmd, report.profile_cmd, report.report_cmd, reproduce.reproduce_cmd, status.status_cmd):
    cli.add_command(_sub)
