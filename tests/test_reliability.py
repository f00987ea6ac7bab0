"""Reliability of runs and sweeps (docs/run-folders.md "Sweeps, failures and status"):
exact resume after SIGKILL at any point,
corrupt checkpoints, failure isolation, executors, concurrent writers, locks, ``harness status``.

Every run here is tiny (a 2-cell, 4-channel supernet on 32 digits per split). Killed runs are
forked children of the test process (imports already warm, so a stage costs only its compute),
plus one real ``python -m harness.cli run`` killed from outside.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import harness.engine.evaluate
from harness.cli.main import main
from harness.runs import executors
from harness.runs.executors import RunJob, run_many
from harness.runs.layout import CHECKPOINT, EVAL_CHECKPOINT, validate_result
from harness.runs.results import config_hash
from harness.runs.run import (
    CheckpointError,
    Run,
    is_locked,
    load_checkpoint,
    previous_checkpoint,
    run_lock,
    save_checkpoint,
)
from harness.spec.runspec import make_config
from methods.base import SearchMethod

# 3 search epochs of 2 steps (32 images per split, batch 16); 2 evaluation epochs of 4 batches
TINY = dict(search_epochs=3, search_subset=32, search_batch=16, search_layers=2, search_channels=4,
            eval_epochs=2, eval_subset=64, eval_batch=16, eval_layers=2, eval_channels=4, k=2)
ROOT = Path(__file__).resolve().parents[1]


def tiny(seed: int = 0, bench: str = "s0-digits", **overrides: Any):
    return make_config("rome-v2", bench, "smoke", seed, None, **{**TINY, **overrides})


def fingerprint(result: dict[str, Any]) -> dict[str, Any]:
    """Everything a resumed run must reproduce exactly (not the timings)."""
    history = [{k: v for k, v in e.items() if k != "seconds"} for e in result["search"]["history"]]
    return {"status": result["status"], "genotype": result["genotype"], "history": history,
            "eval": {k: result["eval"][k] for k in ("test_error", "test_acc", "train_loss", "train_acc",
                                                     "params", "macs")}}


def next_epoch(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["next_epoch"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The uninterrupted run every interrupted one is compared with."""
    out = tmp_path_factory.mktemp("reference")
    cfg = tiny()
    result = Run(cfg, out, device="cpu").execute()
    assert result["status"] == "complete", result.get("reason")
    return result, out / cfg.run_id


# -- killing runs -------------------------------------------------------------------------------------

def _child(cfg: Any, out: str, kill: tuple[str, Any] | None) -> None:
    """Run ``cfg`` and SIGKILL this process at the chosen point (before that step or batch computes)."""
    torch.set_num_threads(1)
    calls = {"n": 0}

    def bump() -> None:
        calls["n"] += 1
        if calls["n"] == (kill[1][1] if kill[0] == "search" else kill[1]):
            os.kill(os.getpid(), signal.SIGKILL)

    if kill is not None and kill[0] == "search":  # ("search", (epoch, n-th step of that epoch))
        step = SearchMethod.step

        def killing_step(self: SearchMethod, *args: Any) -> dict[str, float]:
            if self.epoch == kill[1][0]:
                bump()
            return step(self, *args)

        SearchMethod.step = killing_step
    elif kill is not None:  # ("eval", n-th forward pass of the evaluation network: training, then test)
        split = harness.engine.evaluate._split_output

        def killing_split(output: Any) -> Any:
            bump()
            return split(output)

        harness.engine.evaluate._split_output = killing_split
    Run(cfg, out, device="cpu").execute()


def run_child(cfg: Any, out: Path, kill: tuple[str, Any] | None = None) -> int | None:
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(cfg, str(out), kill))
    proc.start()
    proc.join(timeout=90)
    return proc.exitcode


def test_sigkill_at_several_points_resumes_to_the_uninterrupted_result(reference, tmp_path: Path) -> None:
    ref, _ = reference
    cfg = tiny()
    run_dir = tmp_path / cfg.run_id
    search, search_prev, ev = run_dir / CHECKPOINT, previous_checkpoint(run_dir / CHECKPOINT), run_dir / EVAL_CHECKPOINT

    # 1. mid-epoch 0, before any checkpoint: nothing to resume, the rerun starts over
    assert run_child(cfg, tmp_path, ("search", (0, 2))) == -signal.SIGKILL
    assert not search.exists() and (run_dir / "config.json").exists()
    # 2. mid-epoch 1 (epoch 0 checkpointed)
    assert run_child(cfg, tmp_path, ("search", (1, 2))) == -signal.SIGKILL
    assert next_epoch(search) == 1 and not search_prev.exists()
    # 3. right after the checkpoint of epoch 1, then the newest checkpoint is damaged on disk
    assert run_child(cfg, tmp_path, ("search", (2, 1))) == -signal.SIGKILL
    assert (next_epoch(search), next_epoch(search_prev)) == (2, 1)
    search.write_bytes(search.read_bytes()[:1000])
    # 4. mid evaluation epoch 1: the search resumed from search.prev.pt, finished, evaluation epoch 0 saved
    assert run_child(cfg, tmp_path, ("eval", 6)) == -signal.SIGKILL
    assert next_epoch(search) == 3 and next_epoch(ev) == 1
    assert "resuming from the previous checkpoint" in (run_dir / "log.txt").read_text()
    # 5. during the test pass, after the last evaluation epoch was saved
    assert run_child(cfg, tmp_path, ("eval", 5)) == -signal.SIGKILL
    assert next_epoch(ev) == 2 and not (run_dir / "result.json").exists()

    result = Run(cfg, tmp_path, device="cpu").execute()
    assert fingerprint(result) == fingerprint(ref)
    on_disk = json.loads((run_dir / "result.json").read_text())
    assert on_disk["genotype"] == ref["genotype"]
    validate_result(on_disk)


def test_cli_run_killed_from_outside_resumes_to_the_uninterrupted_result(reference, tmp_path: Path) -> None:
    """A real ``python -m harness.cli run`` SIGKILLed as soon as its first checkpoint appears."""
    ref, _ = reference
    cfg = tiny()
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "harness.cli", "run", "--method", "rome-v2", "--bench", "s0-digits",
           "--budget", "smoke", "--seed", "0", "--out", str(tmp_path), "--device", "cpu", "--no-progress", *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / cfg.run_id / CHECKPOINT
    deadline = time.time() + 60
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ckpt.exists(), "the run ended before its first checkpoint"
    proc.kill()
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert not (tmp_path / cfg.run_id / "result.json").exists()

    torch.set_num_threads(1)
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["env"]["threads"] == 1
    assert fingerprint(result) == fingerprint(ref)


# -- checkpoints ----------------------------------------------------------------------------------------

def test_checkpoint_keeps_the_previous_one_and_falls_back_to_it(tmp_path: Path) -> None:
    path = tmp_path / "search.pt"
    assert load_checkpoint(path) is None
    for epoch in (1, 2):
        save_checkpoint(path, {"next_epoch": epoch, "w": torch.full((3,), float(epoch))})
    assert next_epoch(path) == 2 and next_epoch(previous_checkpoint(path)) == 1
    path.unlink()  # a kill between the two renames of save_checkpoint
    assert load_checkpoint(path)["next_epoch"] == 1
    save_checkpoint(path, {"next_epoch": 3})
    save_checkpoint(path, {"next_epoch": 4})
    path.write_bytes(b"not a checkpoint")
    assert load_checkpoint(path)["next_epoch"] == 3
    previous_checkpoint(path).write_bytes(b"")
    with pytest.raises(CheckpointError, match="no readable checkpoint.*delete search.pt and search.prev.pt"):
        load_checkpoint(path)


def test_unreadable_checkpoints_fail_the_run_with_a_clear_reason(tmp_path: Path) -> None:
    cfg = tiny()
    (tmp_path / cfg.run_id).mkdir()
    (tmp_path / cfg.run_id / CHECKPOINT).write_bytes(b"garbage")
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "failed"
    assert result["reason"].startswith("CheckpointError: no readable checkpoint")
    assert "to restart the run" in result["reason"]


# -- failure isolation ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "reason"), [
    (None, "FloatingPointError: search diverged at epoch 0"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nlong advice"),
     "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    (RuntimeError("boom"), "RuntimeError: boom"),
])
def test_a_failing_search_is_recorded_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     error: Exception | None, reason: str) -> None:
    def step(self: SearchMethod, *args: Any) -> dict[str, float]:
        if error is not None:
            raise error
        return {"train_loss": math.nan}

    monkeypatch.setattr(SearchMethod, "step", step)
    cfg = tiny()
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "failed" and result["reason"].startswith(reason), result["reason"]
    assert "\n" not in result["reason"]
    on_disk = json.loads((tmp_path / cfg.run_id / "result.json").read_text())
    assert on_disk["reason"] == result["reason"]
    validate_result(on_disk)


def test_diverging_evaluation_is_recorded_as_failed(tmp_path: Path) -> None:
    """A real divergence: a huge learning rate turns the weights and the loss into NaN. The spec refuses
    such a rate before the run (harness.spec.runspec.LIMITS), so it is set past validation here: the run's own
    check is what is tested (no learning rate the spec accepts diverges this tiny network)."""
    from dataclasses import replace

    cfg = tiny(search_epochs=1)
    result = Run(replace(cfg, eval=replace(cfg.eval, lr=1e30)), tmp_path, device="cpu").execute()
    assert result["status"] == "failed"
    assert result["reason"].startswith(("FloatingPointError: evaluation diverged at epoch 0",
                                        "NonFiniteError: evaluation epoch 0"))


def test_sigterm_finishes_the_epoch_and_leaves_the_run_resumable(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    step = SearchMethod.step

    def terminated_step(self: SearchMethod, *args: Any) -> dict[str, float]:
        os.kill(os.getpid(), signal.SIGTERM)
        return step(self, *args)

    monkeypatch.setattr(SearchMethod, "step", terminated_step)
    cfg = tiny()
    before = signal.getsignal(signal.SIGTERM)
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "interrupted" and "after epoch 0" in result["reason"]
    assert next_epoch(tmp_path / cfg.run_id / CHECKPOINT) == 1
    assert not (tmp_path / cfg.run_id / "result.json").exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the run's handler is removed again


def test_sigterm_stops_a_sequential_sweep_not_only_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness run/reproduce --workers 1` run their sweep in this process: after SIGTERM the current run
    checkpoints and stops, and the runs after it are not started (they stay unfinished, nothing written)."""
    step = SearchMethod.step

    def terminated_step(self: SearchMethod, *args: Any) -> dict[str, float]:
        os.kill(os.getpid(), signal.SIGTERM)
        return step(self, *args)

    monkeypatch.setattr(SearchMethod, "step", terminated_step)
    configs = [tiny(seed=0), tiny(seed=1)]
    results = run_many(configs, tmp_path, device="cpu")
    assert [r["status"] for r in results] == ["interrupted", "interrupted"]
    assert results[1]["reason"] == "sweep stopped by SIGTERM"
    assert not (tmp_path / configs[1].run_id).exists()  # never started


# -- executors and concurrency ------------------------------------------------------------------------

def _preempt_when_checkpointed(run_dir: Path, deadline: float) -> None:
    """Send submitit's preemption signal (SIGUSR2) to the job process running ``run_dir``, once its
    first checkpoint is on disk (the run logs its pid when it starts)."""
    while time.time() < deadline and not (run_dir / CHECKPOINT).exists():
        time.sleep(0.05)
    pid = int(re.findall(r"started \(pid (\d+)\)", (run_dir / "log.txt").read_text())[-1])
    os.kill(pid, signal.SIGUSR2)


def test_submitit_sweep_with_two_workers_isolates_failure_and_requeues_preempted_runs(
        reference, tmp_path: Path) -> None:
    """Three runs through submitit's local executor, two at a time.

    * The first benchmark is CIFAR-10 under a data root that does not hold it: its job raises
      ``DatasetMissing`` when it loads its data, as a run does on a node where a dataset is not
      mounted (the command line checks datasets before submitting; ``run_many`` does not).
    * The second run is preempted after its first checkpoint: submitit calls ``RunJob.checkpoint``
      and requeues it, and the new process resumes from ``search.pt`` to the reference result.
    """
    configs = [tiny(0, bench="s0-c10"), tiny(0), tiny(1, search_epochs=1, eval_epochs=1)]
    out = tmp_path / "runs"
    preempt = threading.Thread(target=_preempt_when_checkpointed, args=(out / configs[1].run_id, time.time() + 60))
    preempt.start()
    seen: list[str] = []
    results = run_many(configs, out, executor="local", workers=2, poll_s=0.2,
                       data_root=str(tmp_path / "no-data"), device="cpu",
                       on_result=lambda r: seen.append(r["run_id"]))
    preempt.join()
    assert [r["status"] for r in results] == ["failed", "complete", "complete"], results[0].get("reason")
    assert results[0]["reason"].startswith("DatasetMissing: dataset 'c10' not found")
    assert sorted(seen) == sorted(c.run_id for c in configs)
    for cfg, result in zip(configs, results, strict=True):
        on_disk = json.loads((out / cfg.run_id / "result.json").read_text())
        assert on_disk["status"] == result["status"] and on_disk["run_id"] == cfg.run_id
        validate_result(on_disk)
    log = (out / configs[1].run_id / "log.txt").read_text()
    assert log.count("started (pid") == 2 and "resumed search at epoch" in log
    assert results[1]["env"]["threads"] == 1  # two workers on two cores
    assert fingerprint(results[1]) == fingerprint(reference[0])
    # idempotent: a second sweep returns the complete runs from disk without submitting anything
    again = run_many(configs[1:], out, executor="local", workers=2)
    assert [r["timings"] for r in again] == [r["timings"] for r in results[1:]]


def test_sequential_sweep_restores_the_thread_count_when_a_run_raises(tmp_path: Path) -> None:
    def boom(result: dict[str, Any]) -> None:
        raise RuntimeError("on_result failed")

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="on_result failed"):
            run_many([tiny()], tmp_path, threads=1, on_result=boom, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_runjob_requeues_itself_on_preemption(tmp_path: Path) -> None:
    job = RunJob(tmp_path, {"device": "cpu"}, threads=1)
    cfg = tiny()
    delayed = job.checkpoint(cfg)
    assert delayed.function is job and delayed.args == (cfg,)
    assert job.run_kwargs["stop_on_sigterm"] is False  # SIGTERM is submitit's business in a job


def test_slurm_executor_is_refused_without_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="needs Slurm's sbatch"):
        run_many([tiny()], tmp_path, executor="slurm")


def _writer(configs: list[Any], out: str) -> None:
    torch.set_num_threads(1)
    run_many(configs, Path(out), device="cpu")


def test_four_processes_writing_into_one_folder_lose_nothing(tmp_path: Path) -> None:
    """Each process sweeps two seeds, each seed is in two processes' sweeps: every run is computed
    once (the other process finds it locked or complete) and every result is whole."""
    configs = [tiny(s, search_epochs=1, eval_epochs=1) for s in range(4)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=([configs[i], configs[(i + 1) % 4]], str(tmp_path)))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    for cfg in configs:
        result = json.loads((tmp_path / cfg.run_id / "result.json").read_text())
        assert result["status"] == "complete" and result["run_id"] == cfg.run_id
        assert (tmp_path / cfg.run_id / "log.txt").read_text().count("started (pid") == 1
    assert not list(tmp_path.glob("*/.*.tmp")) and not list(tmp_path.glob("*/*.tmp"))


def test_a_run_locked_by_another_process_is_skipped(tmp_path: Path) -> None:
    cfg = tiny()
    run_dir = tmp_path / cfg.run_id
    run_dir.mkdir()
    with run_lock(run_dir) as locked:
        assert locked and is_locked(run_dir)
        result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "skipped" and "another process" in result["reason"]
    assert not (run_dir / "result.json").exists() and not is_locked(run_dir)


# -- the record ---------------------------------------------------------------------------------------

def test_every_result_records_its_environment(reference) -> None:
    import numpy

    ref, run_dir = reference
    env = ref["env"]
    assert env["config_hash"] == config_hash(ref["config"]) == tiny().hash
    assert ref["run_id"].endswith(env["config_hash"][:8])
    assert env["packages"]["torch"] == torch.__version__.split("+")[0]
    assert env["packages"]["numpy"] == numpy.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["device"] == "cpu" and env["threads"] == torch.get_num_threads()
    if (ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", env["git_commit"]), env["git_commit"]
        assert isinstance(env["git_dirty"], bool)
    assert json.loads((run_dir / "result.json").read_text())["env"] == env


# -- harness status -------------------------------------------------------------------------------------

def test_status_summarises_complete_failed_and_unfinished_runs(reference, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, ref_dir = reference
    shutil.copytree(ref_dir, tmp_path / ref_dir.name)  # complete
    failed = tiny(bench="s0-c10")
    Run(failed, tmp_path, data_root=str(tmp_path / "no-data"), device="cpu").execute()  # failed
    stopped, running = tiny(seed=1), tiny(seed=2)
    step = SearchMethod.step

    def terminated_step(self: SearchMethod, *args: Any) -> dict[str, float]:
        os.kill(os.getpid(), signal.SIGTERM)
        return step(self, *args)

    monkeypatch.setattr(SearchMethod, "step", terminated_step)
    assert Run(stopped, tmp_path, device="cpu").execute()["status"] == "interrupted"  # unfinished
    (tmp_path / running.run_id).mkdir()
    (tmp_path / ".submitit").mkdir()  # not a run
    (tmp_path / "notes").mkdir()  # not a run either
    with run_lock(tmp_path / running.run_id):
        (tmp_path / running.run_id / "log.txt").write_text("")
        assert main(["status", "--runs", str(tmp_path)]) == 0
        text = capsys.readouterr().out
        assert main(["status", "--runs", str(tmp_path), "--json"]) == 0
        rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    lines = text.strip().splitlines()
    assert lines[0].endswith("4 runs: 1 complete, 1 failed, 2 unfinished")
    assert re.search(rf"^complete +{ref_dir.name}  test error \d+\.\d\d %$", text, re.M)
    assert re.search(rf"^failed +{failed.run_id}  DatasetMissing: dataset 'c10' not found", text, re.M)
    assert re.search(rf"^unfinished +{stopped.run_id}  search epoch 1/3 done, stopped", text, re.M)
    assert re.search(rf"^unfinished +{running.run_id}  started, no checkpoint yet, running now", text, re.M)
    assert rows[stopped.run_id]["method"] == "rome-v2" and rows[running.run_id]["running"] is True


def test_executor_names_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown executor 'ray'; valid: local, slurm"):
        executors.check_executor("ray", 1)
    with pytest.raises(ValueError, match="--workers must be >= 1"):
        executors.check_executor("local", 0)
