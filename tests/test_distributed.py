"""DDP on the CPU (gloo, 2 processes forked from the test): the loss curve of one process at the same
global batch, rank-0 checkpoints, and exact resume after SIGKILL of the whole group."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

import harness.engine.evaluate
from harness.data.device_data import Augment, DeviceLoader, RawSplit
from harness.engine.evaluate import train_and_test
from harness.runs.layout import EVAL_CHECKPOINT
from harness.runs.run import Run
from harness.spec.runspec import fixed_config
from harness.utils import distributed
from spaces.genotype import resolve
from spaces.registry import build_eval_network

CTX = multiprocessing.get_context("fork")


def split() -> RawSplit:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (64,), generator=g)
    return RawSplit(x, y, Augment(crop_pad=2, flip=True, mean=(0.5,) * 3, std=(0.25,) * 3))


def curve(rank: int = 0, world: int = 1) -> tuple[list[float], list[torch.Tensor]]:
    torch.manual_seed(0)
    net = build_eval_network(resolve("DARTS_V2"), network="cifar", c=4, layers=2, num_classes=10, in_channels=3)
    losses: list[float] = []
    train = DeviceLoader(split(), 16, shuffle=True, seed=1, rank=rank, world=world)
    test = DeviceLoader(split(), 32, shuffle=False, seed=0)
    train_and_test(net, train, test, epochs=3, lr=0.05, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
                   aux_weight=0.0, drop_path_prob=0.0, device=torch.device("cpu"),
                   on_epoch=lambda e, info: losses.append(info["train_loss"]))
    return losses, [p.detach().clone() for p in net.parameters()]


def _ddp_curve(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    losses, params = curve(rank, 2)
    torch.save({"losses": losses, "params": params}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_two_gloo_processes_follow_the_single_process_loss_curve(tmp_path: Path) -> None:
    procs = [CTX.Process(target=_ddp_curve, args=(r, str(tmp_path / "store"), str(tmp_path / "out")))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    ranks = [torch.load(tmp_path / f"out.{r}", weights_only=True) for r in range(2)]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # all-reduced: one curve
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["params"], ranks[1]["params"], strict=True))
    single, _ = curve()
    # the same samples, augmentation and mean loss per global batch; batch-norm statistics per process
    # (8 images each instead of 16) are the only difference
    assert ranks[0]["losses"] == pytest.approx(single, rel=0.05)
    assert ranks[0]["losses"][-1] < ranks[0]["losses"][0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _member(rank: int, port: int, cfg: Any, out: str, kill_at: int | None) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    if kill_at is not None and rank == 0:
        split_output, calls = harness.engine.evaluate._split_output, {"n": 0}

        def killing(output: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return split_output(output)

        harness.engine.evaluate._split_output = killing
    result = Run(cfg, out, device="cpu", progress=False).execute()
    with open(Path(out) / f"rank{rank}.json", "w") as f:
        json.dump(result, f)
    distributed.barrier_and_close()


def group(cfg: Any, out: Path, kill_at: int | None = None) -> list[int | None]:
    """Run ``cfg`` in a group of 2; with ``kill_at``, rank 0 dies by SIGKILL and the rest of the group is killed."""
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    procs = [CTX.Process(target=_member, args=(r, port, cfg, str(out), kill_at)) for r in range(2)]
    for p in procs:
        p.start()
    if kill_at is not None:
        procs[0].join(timeout=120)
        time.sleep(0.2)
        for p in procs[1:]:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
    for p in procs:
        p.join(timeout=120)
    return [p.exitcode for p in procs]


TINY = dict(eval_epochs=2, eval_subset=64, eval_batch=16, eval_layers=2, eval_channels=4, drop_path=0.2)


def test_a_killed_group_resumes_to_the_uninterrupted_group_result(tmp_path: Path) -> None:
    cfg = fixed_config(resolve("DARTS_V2"), "DARTS_V2", "s0-digits", "smoke", 0, **TINY)
    assert group(cfg, tmp_path / "ref") == [0, 0]
    ref = [json.loads((tmp_path / "ref" / f"rank{r}.json").read_text()) for r in range(2)]
    assert ref[0]["status"] == "complete" and ref[0]["eval"] == ref[1]["eval"]
    assert json.loads((tmp_path / "ref" / cfg.run_id / "result.json").read_text())["processes"] == 2

    killed = tmp_path / "killed"
    codes = group(cfg, killed, kill_at=4 + 2)  # 4 batches per epoch per process: epoch 1, batch 2
    assert codes[0] == -signal.SIGKILL
    state = torch.load(killed / cfg.run_id / EVAL_CHECKPOINT, weights_only=True)
    assert state["next_epoch"] == 1 and len(state["rng"]["ranks"]) == 2  # rank 0 saved both processes' RNGs
    assert group(cfg, killed) == [0, 0]
    resumed = json.loads((killed / cfg.run_id / "result.json").read_text())
    keys = ("test_error", "train_loss", "train_acc")
    assert {k: resumed["eval"][k] for k in keys} == {k: ref[0]["eval"][k] for k in keys}


def test_gpus_per_run_asks_slurm_for_one_task_per_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit.slurm.slurm as submitit_slurm

    from harness.runs.executors import ClusterOptions, make_executor

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    ex = make_executor("slurm", tmp_path, 3, ClusterOptions(gpus_per_run=4, gpus=1))
    params = ex._executor.parameters
    assert (params["ntasks_per_node"], params["gpus_per_node"], params["nodes"]) == (4, 4, 1)
    local = make_executor("submitit-local", tmp_path, 1, ClusterOptions(gpus_per_run=2))
    assert local._executor.parameters["tasks_per_node"] == 2
    with pytest.raises(ValueError, match="--gpus-per-run must be >= 1"):
        ClusterOptions(gpus_per_run=0)
