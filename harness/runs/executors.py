"""Executors: how many independent runs are carried out (submitit for local processes and Slurm arrays).

* ``local`` with one worker: one run after another in this process.
* ``local`` with ``workers=N``: up to N runs at once, each a process of submitit's local executor
  (a crashed or killed run takes only its own process down).
* ``slurm``: one submitit job array (``map_array``), at most ``workers`` array tasks at once
  (``slurm_array_parallelism``). Each task is a :class:`RunJob`; on preemption or timeout submitit
  calls its ``checkpoint`` and requeues it, and the requeued task resumes from its own checkpoints.

Whatever the executor, complete runs are skipped before anything is submitted, a run that fails is
recorded (``status: failed`` with its reason) and the others go on, and every result lands in
``<out>/<run_id>/result.json``. Waiting for a Slurm sweep can be interrupted: the jobs go on, and
rerunning the same command (or ``harness status``) picks up what they wrote.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
import torch
from submitit.core.utils import DelayedSubmission

from harness.runs.run import Run, is_locked
from harness.runs.storage import write_json
from harness.spec.runspec import RunSpec

#: executors offered on the command line; ``submitit-local`` runs the Slurm code path (job array,
#: checkpoint and requeue) on this machine, for tests
EXECUTORS = ("local", "slurm")
_HIDDEN = ("submitit-local",)

OnResult = Callable[[dict[str, Any]], None]

#: upper bounds of the job options, far above any real sweep or node, so that a typo such as
#: ``--workers 99999999999999999`` or ``--mem-gb inf`` is refused before anything is submitted
MAX_WORKERS = 1024  # runs at once: local processes, or Slurm array tasks (Slurm's MaxArraySize is 1001)
MAX_GPUS = 64  # GPUs per job, one node
MAX_MEM_GB = 65536  # memory per job (64 TiB: more than any single node has)
MAX_TIME_MIN = 365 * 24 * 60  # a year (the local executor's own limit)


@dataclass(frozen=True)
class ClusterOptions:
    """What a submitit job asks for (ignored by the sequential local executor)."""

    partition: str | None = None
    time_min: int | None = None  # default: 3 days on Slurm, unlimited locally
    gpus: int = 0
    mem_gb: float | None = None
    folder: Path | None = None  # submitit's logs and pickles (default: <out>/.submitit)
    gpus_per_run: int = 1  # > 1: one run is N tasks (one GPU each) joined by torch.distributed DDP

    def __post_init__(self) -> None:
        if self.time_min is not None:
            _bounded("--time-min", self.time_min, 1, MAX_TIME_MIN)
        _bounded("--gpus", self.gpus, 0, MAX_GPUS)
        _bounded("--gpus-per-run", self.gpus_per_run, 1, MAX_GPUS)
        # NaN fails every comparison: `mem_gb <= 0` alone let it (and inf) through to the job
        mem, valid = self.mem_gb, f"valid: > 0 and <= {MAX_MEM_GB} GB"
        if mem is not None and not math.isfinite(mem):
            raise ValueError(f"--mem-gb must be a finite number, got {mem} ({valid})")
        if mem is not None and mem <= 0:
            raise ValueError(f"--mem-gb must be > 0, got {mem} ({valid})")
        if mem is not None and mem > MAX_MEM_GB:
            raise ValueError(f"--mem-gb must be <= {MAX_MEM_GB}, got {mem} ({valid})")


def _bounded(option: str, value: float, low: int, high: int) -> None:
    """``ValueError`` naming ``option`` and its valid range when ``value`` is outside ``low..high``."""
    if value < low:
        raise ValueError(f"{option} must be >= {low}, got {value} (valid: {low}..{high})")
    if value > high:
        raise ValueError(f"{option} must be <= {high}, got {value} (valid: {low}..{high})")


class RunJob(submitit.helpers.Checkpointable):
    """One run as a submitit job: ``RunJob(out, run_kwargs)(cfg)`` executes ``cfg`` into ``out``.

    Submitit handles the job's preemption/timeout signal: it calls :meth:`checkpoint`, requeues the
    returned submission and exits. The run's own checkpoints are already on disk (one per epoch), so
    the requeued job is simply the same call, and it resumes where the last epoch ended.
    """

    def __init__(self, out: Path, run_kwargs: dict[str, Any], threads: int | None = None):
        self.out = Path(out)
        # the job leaves SIGTERM to submitit (which ignores it and acts on its preemption signal)
        self.run_kwargs = {**run_kwargs, "progress": False, "stop_on_sigterm": False}
        self.threads = threads

    def __call__(self, cfg: RunSpec) -> dict[str, Any]:
        if self.threads is not None:  # runs sharing a machine share its cores
            torch.set_num_threads(self.threads)
        return Run(cfg, self.out, **self.run_kwargs).execute()

    def checkpoint(self, cfg: RunSpec) -> DelayedSubmission:
        """Requeue the same call; the run itself resumes from ``search.pt`` / ``eval.pt``."""
        return DelayedSubmission(self, cfg)


def run_many(configs: list[RunSpec], out: Path, *, executor: str = "local", workers: int = 1,
             cluster: ClusterOptions | None = None, on_result: OnResult | None = None,
             poll_s: float = 1.0, threads: int | None = None, **run_kwargs: Any) -> list[dict[str, Any]]:
    """Run every config (skipping complete ones); one failed run is recorded and the others go on.

    Returns the results in the order of ``configs``. ``run_kwargs`` go to :class:`harness.runs.run.Run`.
    ``threads``: torch threads per run (default: this process's for one worker, else the cores shared
    among the local workers; ``harness check`` takes 1, so its numbers do not depend on the core count).
    """
    check_executor(executor, workers)
    cluster = cluster or ClusterOptions()
    out = Path(out)
    results: list[dict[str, Any] | None] = [None] * len(configs)
    todo: list[int] = []
    for i, cfg in enumerate(configs):  # complete runs are neither rerun nor submitted
        results[i] = Run(cfg, out).existing()
        if results[i] is None:
            todo.append(i)
        elif on_result is not None:
            on_result(results[i])
    if todo and executor == "local" and workers == 1:
        stopped, before = False, torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
            for i in todo:
                run = Run(configs[i], out, **run_kwargs)
                # SIGTERM stops the sweep, not only the run it arrived in: the rest stay unfinished on disk
                results[i] = run.unwritten("interrupted", "sweep stopped by SIGTERM") if stopped else run.execute()
                stopped = stopped or results[i]["status"] == "interrupted"
                if on_result is not None:
                    on_result(results[i])
        finally:  # the caller's thread count, also when a run or on_result raises
            torch.set_num_threads(before)
    elif todo:
        _run_submitit([configs[i] for i in todo], out, executor, workers, cluster, run_kwargs, on_result,
                      poll_s, lambda k, r: results.__setitem__(todo[k], r), threads)
    return results  # type: ignore[return-value]


def check_executor(executor: str, workers: int) -> None:
    """``ValueError`` for an unknown executor, a bad worker count or Slurm without ``sbatch``."""
    if executor not in EXECUTORS + _HIDDEN:
        raise ValueError(f"unknown executor '{executor}'; valid: {', '.join(EXECUTORS)}")
    _bounded("--workers", workers, 1, MAX_WORKERS)
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("--executor slurm needs Slurm's sbatch on PATH; use --executor local on this machine")


def make_executor(kind: str, folder: Path, workers: int, cluster: ClusterOptions) -> submitit.Executor:
    """A submitit executor for ``slurm``, or for this machine (``local``, ``submitit-local``)."""
    tasks = cluster.gpus_per_run  # one task per GPU of a run; the tasks join one DDP group
    gpus = max(cluster.gpus, tasks) if tasks > 1 else cluster.gpus
    if kind == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        ex.update_parameters(timeout_min=cluster.time_min or 3 * 24 * 60, gpus_per_node=gpus,
                             mem_gb=cluster.mem_gb, slurm_partition=cluster.partition,
                             slurm_array_parallelism=workers, tasks_per_node=tasks, nodes=1)
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="local")
    # local jobs get a timeout too (submitit's default is 2 minutes): with none given, a year
    ex.update_parameters(timeout_min=cluster.time_min or 365 * 24 * 60, gpus_per_node=gpus, tasks_per_node=tasks)
    return ex


def _run_submitit(configs: list[RunSpec], out: Path, kind: str, workers: int, cluster: ClusterOptions,
                  run_kwargs: dict[str, Any], on_result: OnResult | None, poll_s: float,
                  store: Callable[[int, dict[str, Any]], None], threads: int | None = None) -> None:
    folder = Path(cluster.folder) if cluster.folder is not None else out / ".submitit"
    ex = make_executor(kind, folder, workers, cluster)
    local = kind != "slurm"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    job_fn = RunJob(out, run_kwargs, threads=threads or (max(1, cores // workers) if local else None))
    pending = list(range(len(configs)))
    running: dict[int, submitit.Job] = {}
    if kind != "local":  # one array; the scheduler keeps `workers` tasks running
        running = dict(zip(pending, ex.map_array(job_fn, configs), strict=True))
        pending = []
    while pending or running:
        while pending and len(running) < workers:  # submitit's local executor has no array throttle
            k = pending.pop(0)
            running[k] = ex.submit(job_fn, configs[k])
        for k, job in list(running.items()):
            if not job.done():
                continue
            del running[k]
            result = _job_result(job, configs[k], out)
            store(k, result)
            if on_result is not None:
                on_result(result)
        if pending or running:
            time.sleep(poll_s)


def _job_result(job: submitit.Job, cfg: RunSpec, out: Path) -> dict[str, Any]:
    """The run's result; a job that died without one (killed, out of host memory) is recorded failed."""
    try:
        return job.result()
    except Exception as exc:  # noqa: BLE001 - UncompletedJobError, FailedJobError, unpickling errors
        run = Run(cfg, out)
        done = run.existing()
        if done is not None:  # the run finished but the job's own epilogue failed
            return done
        if is_locked(run.dir):  # another process works on the run: its result is not ours to write
            return run.unwritten("skipped", f"job {job.job_id} ended without a result while another "
                                             "process holds the run")
        lines = str(exc).strip().splitlines()
        reason = f"job {job.job_id} ended without a result: {type(exc).__name__}: {lines[0] if lines else ''}"
        result = run._base_result()  # env: of this (submitting) process, the job's own is lost with it
        result.update(status="failed", reason=reason, timings={},
                      job={"id": job.job_id, "stderr": str(job.paths.stderr)})
        write_json(run.result_path, result)
        return result
