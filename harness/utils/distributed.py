"""Several processes (GPUs) for one run: ``torch.distributed`` data parallelism (DDP).

Launch any ``harness run`` / ``harness eval`` command under ``torchrun --nproc-per-node N`` (or, on
Slurm, ``--gpus-per-run N``: submitit starts N tasks and :func:`init` reads their environment). The
run then keeps the single-process protocol: the global batch, learning rate, schedule and seeds of
the protocol are unchanged, each process trains on its share of every global batch and DDP averages
the gradients (the loss of each share is scaled so that the average is the global batch's mean loss,
even for an uneven last batch). Batch-norm statistics stay per process (no ``SyncBatchNorm``, which
needs CUDA), the one difference from a single process.

Rank 0 alone takes the run's lock and writes ``config.json``, checkpoints and ``result.json``;
each checkpoint holds every process's RNG states (gathered to rank 0), so a group killed at any
point resumes exactly when relaunched with the same number of processes. The search, where it runs
under DDP, is replicated: every process runs the same seeded search (CPU and device data path
draws are identical), only rank 0 writes.
"""

from __future__ import annotations

import datetime
import io
import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["all_sum", "barrier_and_close", "broadcast", "gather_states", "init", "is_main", "local_device",
           "own_state", "rank", "world"]


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init(device: str | None = None) -> bool:
    """Join the process group described by the environment (torchrun, or submitit on Slurm).

    Returns whether more than one process takes part. ``gloo`` on the CPU, ``nccl`` on CUDA; the
    timeout is long because followers wait at the first collective while rank 0 works alone.
    """
    if dist.is_initialized():
        return world() > 1
    if "WORLD_SIZE" not in os.environ and _submitit_tasks() > 1:
        import submitit

        submitit.helpers.TorchDistributedEnvironment().export()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(days=7))
    return True


def _submitit_tasks() -> int:
    """Tasks of the submitit job this process belongs to (1 outside a job)."""
    if not any(k.startswith("SUBMITIT_") for k in os.environ):
        return 1
    import submitit

    try:
        return int(submitit.JobEnvironment().num_tasks)
    except RuntimeError:
        return 1


def local_device(device: str | None) -> str | None:
    """``cuda`` becomes this process's GPU (``cuda:LOCAL_RANK``) when several processes share a node."""
    if world() > 1 and device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def all_sum(values: list[float]) -> list[float]:
    """Sum of each value over all processes (the values themselves with one process)."""
    if world() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def gather_states(state: dict[str, Any]) -> dict[str, Any]:
    """Every process's ``state`` in one checkpointable dict (``state`` itself with one process)."""
    if world() == 1:
        return state
    states: list[Any] = [None] * world()
    dist.all_gather_object(states, _dumps(state))
    return {"ranks": [_loads(s) for s in states]}


def own_state(state: dict[str, Any]) -> dict[str, Any]:
    """This process's part of a state written by :func:`gather_states`."""
    if "ranks" not in state:
        if world() > 1:
            raise ValueError("the checkpoint was written by one process; resume it with one process")
        return state
    if len(state["ranks"]) != world():
        raise ValueError(f"the checkpoint was written by {len(state['ranks'])} processes, this run has {world()}; "
                         "resume with the same number")
    return state["ranks"][rank()]


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if world() == 1:
        return obj
    box = [_dumps(obj) if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return _loads(box[0])


def _dumps(obj: Any) -> bytes:
    """``torch.save`` bytes: ``*_object`` collectives fail to unpickle some tensors (RNG byte states)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _loads(blob: bytes) -> Any:
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def barrier_and_close() -> None:
    """Wait for every process, then leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
