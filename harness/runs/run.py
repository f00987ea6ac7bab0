"""One run: resolve -> search -> derive -> evaluate -> record (the spec is :mod:`harness.spec.runspec`).

A run lives in ``<out>/<run_id>/``: ``result.json`` (written atomically), ``search.pt`` and
``eval.pt`` (the search and evaluation checkpoints, rewritten atomically after every epoch, each
keeping the one before as ``*.prev.pt``), ``config.json``, ``log.txt`` and ``.lock``. Rerunning the same config
resumes from the checkpoints; a complete result is never recomputed.

Resuming is exact (same machine and device): a checkpoint holds the supernet or evaluation network,
the architecture parameters, both optimizers, the schedulers, ``tau``, the epoch and every RNG state
(torch, numpy, Python, CUDA), and the data order of an epoch follows from the seed and the epoch
(search) or from the loader's saved generator (evaluation). A run killed at any point (SIGKILL
included) and rerun ends with the same genotype and metrics as one never interrupted. A checkpoint
also carries the run's config hash and the digest of its contents (:mod:`harness.runs.storage`); one damaged
on disk, copied from another run or with an epoch counter out of range is not resumed
(:meth:`Run._checkpoint_check`): the one before it is tried.

One process at a time works on a run: ``execute`` takes an exclusive non-blocking ``flock`` on
``.lock`` and skips a run another process holds (on Lustre this needs the ``flock`` mount option).
SIGTERM finishes the current epoch, checkpoints and stops without a result (the run stays
unfinished and resumes when rerun); under submitit, preemption is submitit's business instead
(``stop_on_sigterm=False``, see ``harness.runs.executors``).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from harness.data import datasets as data
from harness.engine import health
from harness.engine.evaluate import memory_format, numerics, train_and_test
from harness.engine.search import search_loop
from harness.runs.layout import CHECKPOINT, CONFIG, EVAL_CHECKPOINT, EVAL_KEYS, LOCK, LOG, RESULT, SEARCH_KEYS
from harness.runs.read import read_result
from harness.runs.results import environment
from harness.runs.storage import (  # noqa: F401  (re-exported: the old import path)
    CheckpointError,
    QuietFileHandler,
    StorageFault,
    check_run_files,
    is_locked,
    is_storage_fault,
    load_checkpoint,
    previous_checkpoint,
    remove_stale_tmp,
    run_lock,
    save_checkpoint,
    storage_fault,
    write_json,
)
from harness.runs.storage import one_line as _reason
from harness.runs.tblog import TBLogger
from harness.spec import benchmarks
from harness.spec.runspec import RunSpec
from harness.utils import distributed, paths
from harness.utils.rng import rng_state, seed_everything, set_rng_state
from methods.base import SearchMethod
from spaces.evalnet import count_macs, count_params
from spaces.genotype import from_dict
from spaces.registry import build_eval_network

log = logging.getLogger("harness")


class Run:
    """Search, derive, evaluate and record one :class:`RunSpec` into ``out/run_id``."""

    def __init__(self, cfg: RunSpec, out: Path, *, data_root: str | None = None, download: bool = False,
                 device: str | None = None, progress: bool = False, stop_on_sigterm: bool = True,
                 tensorboard: bool = True):
        self.cfg = cfg
        self.dir = paths.child(Path(out), cfg.run_id)
        self.data_root, self.download, self.progress = data_root, download, progress
        distributed.init(device)  # joins torchrun's / Slurm's process group when there is one
        device = distributed.local_device(device)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.stop_on_sigterm = stop_on_sigterm
        self.tensorboard = tensorboard  # search logs under <run>/tb/ (harness.runs.tblog)
        self._stop = False

    @property
    def result_path(self) -> Path:
        return self.dir / RESULT

    def existing(self) -> dict[str, Any] | None:
        if self.result_path.exists():  # trusted only when it validates against the schema
            read = read_result(self.result_path)
            if read.complete:
                return read.data
            if read.reason:
                log.info("%s: %s; the run is redone", self.result_path, read.reason)
        return None

    # -- the whole run ------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        """Run to completion (or resume); failures are recorded, not raised.

        Returns the result; besides ``complete`` and ``failed`` (both written to ``result.json``)
        the status may be ``skipped`` (another process holds the run's lock) or ``interrupted``
        (stopped by SIGTERM after a checkpoint); those two write nothing.
        """
        if not distributed.is_main():  # DDP: rank 0 decides and writes, the others compute along
            verdict = distributed.broadcast(None)
            if verdict is not None:
                return verdict
            with numerics(self.cfg.eval.precision, self.cfg.eval.deterministic):
                return self._execute()
        try:
            return self._execute_guarded()
        except OSError as exc:  # a full, read-only or forbidden output folder: one line, exit 2
            if is_storage_fault(exc) and not isinstance(exc, StorageFault):
                raise storage_fault(exc, f"run {self.cfg.run_id}") from None
            raise

    def _execute_guarded(self) -> dict[str, Any]:
        check_run_files(self.dir, (RESULT, CONFIG, LOCK, LOG))
        done = self.existing()
        if done is not None:
            return distributed.broadcast(done)
        self.dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.dir) as locked:
            if not locked:
                log.info("%s: skipped, another process holds %s", self.cfg.run_id, self.dir / LOCK)
                return distributed.broadcast(
                    self.unwritten("skipped", f"another process is running it (holds {self.dir / LOCK})"))
            done = self.existing()  # completed by another process since the first look
            if done is not None:
                return distributed.broadcast(done)
            distributed.broadcast(None)
            return self._execute_locked()

    def _execute_locked(self) -> dict[str, Any]:
        remove_stale_tmp(self.dir)  # left by a process killed while writing; we hold the lock
        handler = QuietFileHandler(self.dir / LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("run %s started (pid %d)", self.cfg.run_id, os.getpid())
        if not (self.dir / CONFIG).exists():
            write_json(self.dir / CONFIG, {"run_id": self.cfg.run_id, **self.cfg.to_dict()})
        started = time.time()
        try:
            with numerics(self.cfg.eval.precision, self.cfg.eval.deterministic):
                result = self._execute()
        except InterruptedError as exc:
            log.info("%s", exc)
            return self.unwritten("interrupted", str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
            log.exception("run failed")
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()  # the next run of a sequential sweep needs the memory
            result = self._base_result()
            result.update(status="failed", reason=_reason(exc), timings={"total_s": time.time() - started})
            if is_storage_fault(exc):  # record the failure if the disk still takes it, then stop
                write_json(self.result_path, result)
                raise storage_fault(exc, f"run {self.cfg.run_id}") from None
        finally:
            log.removeHandler(handler)
            handler.close()
        write_json(self.result_path, result)
        return result

    def unwritten(self, status: str, reason: str) -> dict[str, Any]:
        """A result that is reported but not recorded: the run stays unfinished on disk."""
        return {"run_id": self.cfg.run_id, "method": self.cfg.method, "bench": self.cfg.bench,
                "seed": self.cfg.seed, "status": status, "reason": reason}

    def _base_result(self) -> dict[str, Any]:
        cfg = self.cfg
        bench = benchmarks.get(cfg.bench)
        return {"run_id": cfg.run_id, "method": cfg.method, "options": cfg.options, "bench": cfg.bench,
                "space": bench.space, "dataset": bench.dataset, "budget": cfg.budget, "seed": cfg.seed,
                "status": "running", "config": cfg.to_dict(), "env": environment(self.device, cfg.to_dict()),
                "processes": distributed.world()}  # DDP processes (GPUs) that trained the run

    def _execute(self) -> dict[str, Any]:
        cfg = self.cfg
        bench = benchmarks.get(cfg.bench)
        seed_everything(cfg.seed)
        bundle = data.load(bench.dataset, self.data_root, download=self.download, augment=cfg.data,
                           search_image_size=cfg.search and cfg.search.image_size,
                           seed=cfg.seed)
        t0 = time.time()
        genotype, history = self.search(bundle, bench.space)
        t1 = time.time()
        evaluation = self.evaluate(genotype, bundle)
        t2 = time.time()
        result = self._base_result()
        result.update(status="complete", genotype=genotype.to_dict(), search={"history": history},
                      eval=evaluation, timings={"search_s": t1 - t0, "eval_s": t2 - t1, "total_s": t2 - t0})
        return result

    # -- search ----------------------------------------------------------------------------------------
    def search(self, bundle: data.DataBundle, space: str) -> tuple[Any, list[dict[str, Any]]]:
        """The search of :mod:`harness.engine.search`, resumed from and checkpointed to ``search.pt``."""
        cfg = self.cfg
        if cfg.search is None:  # nothing to search: the genotype is given (harness eval)
            return from_dict(cfg.options["cells"]), []
        ckpt = self.dir / CHECKPOINT

        def save(state: dict[str, Any]) -> None:
            save_checkpoint(ckpt, {**state, "config_hash": cfg.hash, "rng": rng_state()})
            if self._stop:
                raise InterruptedError(f"stopped by SIGTERM after epoch {state['next_epoch'] - 1}; rerun to resume")

        state = distributed.broadcast(load_checkpoint(ckpt, SEARCH_KEYS, self._checkpoint_check(cfg.search.epochs)))
        if state is not None:
            log.info("resumed search at epoch %d", int(state["next_epoch"]))
        tb: TBLogger | None = None

        def on_epoch(entry: dict[str, Any], method: SearchMethod) -> None:
            nonlocal tb
            if tb is None:  # search logs under <run>/tb/ (harness.runs.tblog); under DDP rank 0 writes
                tb = TBLogger(self.dir if self.tensorboard and distributed.is_main() else None, method.shapes)
            tb.log_epoch(entry)
            log.info("epoch %d %s", entry["epoch"], {k: v for k, v in entry.items()
                                                     if k not in ("genotype", "arch_weights")})

        with self._sigterm_stops():
            try:
                return search_loop(cfg, bundle, space, self.device, resume=state, save=save,
                                   progress=self.progress, on_epoch=on_epoch)
            finally:
                if tb is not None:
                    tb.close()

    def _checkpoint_check(self, epochs: int) -> Callable[[dict[str, Any]], str | None]:
        """The rules a checkpoint of this run must pass to be resumed (else ``*.prev.pt`` is tried): written
        by a run of this very config (a checkpoint copied from another seed's folder is refused), and its
        epoch counter is one a run of ``epochs`` epochs writes (1 to ``epochs``; a search's history holds
        one entry per finished epoch)."""

        def check(state: dict[str, Any]) -> str | None:
            if state.get("config_hash") != self.cfg.hash:
                return (f"written by another run (config hash {str(state.get('config_hash'))[:8]}, "
                        f"this run's {self.cfg.hash[:8]})")
            done = state["next_epoch"]
            if type(done) is not int or not 1 <= done <= epochs:
                return f"next_epoch {done!r} outside 1..{epochs}"
            history = state.get("history")
            if history is not None and (not isinstance(history, list) or len(history) != done):
                return f"its history does not hold {done} epochs"
            return None

        return check

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._stop = True  # finish the epoch, checkpoint, then stop

    @contextmanager
    def _sigterm_stops(self) -> Iterator[None]:
        """While inside, SIGTERM sets ``_stop`` (checked after each epoch's checkpoint)."""
        if not (self.stop_on_sigterm and _main_thread()):
            yield
            return
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate(self, genotype: Any, bundle: data.DataBundle) -> dict[str, Any]:
        e, cfg = self.cfg.eval, self.cfg
        seed_everything(cfg.seed)
        kwargs = dict(network=e.network, c=e.channels, layers=e.layers,
                      num_classes=bundle.num_classes, in_channels=bundle.in_channels)
        net = build_eval_network(genotype, auxiliary=e.aux_weight > 0, drop_path=e.drop_path, **kwargs)
        size = bundle.image_size
        macs = count_macs(net, (1, bundle.in_channels, size, size))
        params = count_params(net)
        macs_include = ("multiply-adds of convolutions and fully connected layers, one image, "
                        "auxiliary head excluded")
        # a genotype may carry a benchmark table's result (NAS-Bench-101 by hash) that replaces training
        tabulated, note = getattr(genotype, "tabulated_eval", lambda: (None, None))()
        noted = {"note": note} if note else {}
        if note:
            log.info("evaluation: %s", note)
        if tabulated is not None:
            return {**tabulated, "params": params, "macs": macs, "macs_include": macs_include, **noted}
        fmt = memory_format(e.channels_last)
        path = cfg.data.path
        train = data.split_loader(bundle, "eval_train", e.batch, shuffle=True, seed=cfg.seed, path=path,
                                  device=self.device, cap=e.subset, memory_format=fmt,
                                  num_workers=data.default_workers(benchmarks.get(cfg.bench).dataset, path))
        test = data.split_loader(bundle, "test", max(e.batch, 256), shuffle=False, seed=cfg.seed, path=path,
                                 device=self.device, memory_format=fmt, distribute=False)
        ckpt = self.dir / EVAL_CHECKPOINT
        resume = distributed.broadcast(load_checkpoint(ckpt, EVAL_KEYS, self._checkpoint_check(e.epochs)))
        if resume is not None and resume.get("genotype") != genotype.to_dict():
            log.warning("%s belongs to another genotype; evaluation starts over", ckpt)
            resume = None
        if resume is not None:
            # the state of an uninterrupted run at this epoch: RNGs (drop path, augmentation) and the
            # loader's generator (the order of the next epochs)
            set_rng_state(resume["rng"])
            train.generator.set_state(resume["loader"])
            log.info("resumed evaluation at epoch %d", int(resume["next_epoch"]))

        def on_epoch(epoch: int, info: dict[str, float]) -> None:
            log.info("eval epoch %d %s", epoch, info)
            if not math.isfinite(info["train_loss"]):
                raise FloatingPointError(f"evaluation diverged at epoch {epoch}: train loss {info['train_loss']}")
            health.check_model(net, f"evaluation epoch {epoch}")  # the loss predates the epoch's last step

        def checkpoint(state: dict[str, Any]) -> None:
            save_checkpoint(ckpt, {**state, "config_hash": cfg.hash, "genotype": genotype.to_dict(), "rng": rng_state(),
                                   "loader": train.generator.get_state()})
            if self._stop:
                raise InterruptedError(f"stopped by SIGTERM after evaluation epoch {state['next_epoch'] - 1}; "
                                       "rerun to resume")

        with self._sigterm_stops():
            stats = train_and_test(net.to(self.device), train, test, epochs=e.epochs, lr=e.lr,
                                   momentum=e.momentum, weight_decay=e.weight_decay,
                                   grad_clip=e.grad_clip, aux_weight=e.aux_weight,
                                   drop_path_prob=e.drop_path, device=self.device,
                                   label_smoothing=e.label_smoothing, lr_schedule=e.lr_schedule,
                                   warmup_epochs=e.warmup_epochs, precision=e.precision,
                                   channels_last=e.channels_last, progress=self.progress,
                                   on_epoch=on_epoch, checkpoint=checkpoint, resume=resume)
        return {**stats, "params": params, "macs": macs, "macs_include": macs_include, **noted}


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run(cfg: RunSpec, out: Path, **kwargs: Any) -> dict[str, Any]:
    return Run(cfg, out, **kwargs).execute()
