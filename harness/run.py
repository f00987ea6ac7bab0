"""One run: resolve -> search -> derive -> evaluate -> record (DESIGN.md "The flow of one run").

A run lives in ``<out>/<run_id>/``: ``result.json`` (written atomically), ``search.pt`` and
``eval.pt`` (the search and evaluation checkpoints, rewritten atomically after every epoch, each
keeping the one before as ``*.prev.pt``), ``config.json``, ``log.txt`` and ``.lock``. Rerunning the same config
resumes from the checkpoints; a complete result is never recomputed.

Resuming is exact (same machine and device): a checkpoint holds the supernet or evaluation network,
the architecture parameters, both optimizers, the schedulers, ``tau``, the epoch and every RNG state
(torch, numpy, Python, CUDA), and the data order of an epoch follows from the seed and the epoch
(search) or from the loader's saved generator (evaluation). A run killed at any point (SIGKILL
included) and rerun ends with the same genotype and metrics as one never interrupted.

One process at a time works on a run: ``execute`` takes an exclusive non-blocking ``flock`` on
``.lock`` and skips a run another process holds (on Lustre this needs the ``flock`` mount option).
SIGTERM finishes the current epoch, checkpoints and stops without a result (the run stays
unfinished and resumes when rerun); under submitit, preemption is submitit's business instead
(``stop_on_sigterm=False``, see ``harness.executors``).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

import methods
from harness import benchmarks, data
from harness.benchmarks import Protocol
from harness.evaluate import train_and_test
from harness.results import RESULT, config_hash, environment, read_json, write_json
from harness.tblog import TBLogger
from methods.base import SearchHParams, build_method, method_class
from spaces.evalnet import count_macs, count_params
from spaces.registry import build_eval_network, build_supernet

log = logging.getLogger("harness")
CHECKPOINT = "search.pt"
EVAL_CHECKPOINT = "eval.pt"
CONFIG = "config.json"  # the resolved config, written when a run starts (``harness status`` reads it)
LOCK = ".lock"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result (the device and paths do not)."""

    method: str
    bench: str
    budget: str
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    protocol: Protocol = field(default_factory=Protocol)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "options": self.options, "bench": self.bench, "budget": self.budget,
                "seed": self.seed, "protocol": self.protocol.to_dict()}

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())

    @property
    def run_id(self) -> str:
        if self.method == FIXED:
            return f"{self.bench}_{FIXED}-{self.options['genotype']}_{self.budget}_s{self.seed}_{self.hash[:8]}"
        defaults = method_class(self.method).option_defaults
        changed = "".join(f"_{k}{int(v) if isinstance(v, bool) else v}" for k, v in sorted(self.options.items())
                          if defaults.get(k) != v)
        return f"{self.bench}_{self.method}{changed}_{self.budget}_s{self.seed}_{self.hash[:8]}"


def make_config(method: str, bench: str, budget: str = "smoke", seed: int = 0,
                options: dict[str, Any] | None = None, **protocol_overrides: Any) -> RunConfig:
    """Validate names and values and resolve the protocol; ``ValueError`` says what is valid."""
    cls = method_class(method)
    bench_id = benchmarks.expand(bench)
    if len(bench_id) != 1:
        raise ValueError(f"'{bench}' names {len(bench_id)} benchmarks; a run takes one")
    proto = benchmarks.resolve_protocol(bench_id[0], budget, **protocol_overrides)
    opts = dict(options or {})
    if "k" in cls.option_defaults and opts.get("k") is None and proto.k is not None:
        opts["k"] = proto.k
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return RunConfig(method, bench_id[0], budget, seed, cls.resolve_options(opts), proto)


FIXED = "fixed"
"""The ``method`` of a run that trains a given genotype instead of searching (``harness eval``)."""


def fixed_config(genotype: Any, label: str, bench: str, budget: str = "paper", seed: int = 0,
                 **protocol_overrides: Any) -> RunConfig:
    """A run that evaluates ``genotype`` (named ``label``) at the benchmark's protocol, without search.

    The genotype itself is part of the config (and so of its hash): two files of one name differ.
    """
    bench_id = benchmarks.expand(bench)
    if len(bench_id) != 1:
        raise ValueError(f"'{bench}' names {len(bench_id)} benchmarks; a run takes one")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    label = Path(label).stem if Path(label).suffix else label
    proto = benchmarks.resolve_protocol(bench_id[0], budget, **protocol_overrides)
    return RunConfig(FIXED, bench_id[0], budget, seed, {"genotype": label, "cells": genotype.to_dict()}, proto)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state as plain containers and tensors (loadable with ``weights_only=True``)."""
    state = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "numpy": [state[0], torch.from_numpy(state[1].copy()), *state[2:]],
           "python": random.getstate()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    random.setstate(_tupleize(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tupleize(x: Any) -> Any:
    return tuple(_tupleize(i) for i in x) if isinstance(x, list | tuple) else x


def _cap(ds: Dataset, n: int | None) -> Dataset:
    return ds if n is None or n >= len(ds) else Subset(ds, range(n))


def search_hparams(cfg: RunConfig) -> SearchHParams:
    return SearchHParams(epochs=cfg.protocol.search_epochs)


class Run:
    """Search, derive, evaluate and record one :class:`RunConfig` into ``out/run_id``."""

    def __init__(self, cfg: RunConfig, out: Path, *, data_root: str | None = None, download: bool = False,
                 device: str | None = None, progress: bool = False, stop_on_sigterm: bool = True,
                 tensorboard: bool = True):
        self.cfg = cfg
        self.dir = Path(out) / cfg.run_id
        self.data_root, self.download, self.progress = data_root, download, progress
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.stop_on_sigterm = stop_on_sigterm
        self.tensorboard = tensorboard  # search logs under <run>/tb/ (harness.tblog)
        self._stop = False

    @property
    def result_path(self) -> Path:
        return self.dir / RESULT

    def existing(self) -> dict[str, Any] | None:
        if self.result_path.exists():
            try:
                result = read_json(self.result_path)
            except ValueError:
                return None
            if result.get("status") == "complete":
                return result
        return None

    # -- the whole run ------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        """Run to completion (or resume); failures are recorded, not raised.

        Returns the result; besides ``complete`` and ``failed`` (both written to ``result.json``)
        the status may be ``skipped`` (another process holds the run's lock) or ``interrupted``
        (stopped by SIGTERM after a checkpoint); those two write nothing.
        """
        done = self.existing()
        if done is not None:
            return done
        self.dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.dir) as locked:
            if not locked:
                log.info("%s: skipped, another process holds %s", self.cfg.run_id, self.dir / LOCK)
                return self._unwritten("skipped", f"another process is running it (holds {self.dir / LOCK})")
            done = self.existing()  # completed by another process since the first look
            if done is not None:
                return done
            return self._execute_locked()

    def _execute_locked(self) -> dict[str, Any]:
        handler = logging.FileHandler(self.dir / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("run %s started (pid %d)", self.cfg.run_id, os.getpid())
        if not (self.dir / CONFIG).exists():
            write_json(self.dir / CONFIG, {"run_id": self.cfg.run_id, **self.cfg.to_dict()})
        started = time.time()
        try:
            result = self._execute()
        except InterruptedError as exc:
            log.info("%s", exc)
            return self._unwritten("interrupted", str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
            log.exception("run failed")
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()  # the next run of a sequential sweep needs the memory
            result = self._base_result()
            result.update(status="failed", reason=_reason(exc), timings={"total_s": time.time() - started})
        finally:
            log.removeHandler(handler)
            handler.close()
        write_json(self.result_path, result)
        return result

    def _unwritten(self, status: str, reason: str) -> dict[str, Any]:
        """A result that is reported but not recorded: the run stays unfinished on disk."""
        return {"run_id": self.cfg.run_id, "method": self.cfg.method, "bench": self.cfg.bench,
                "seed": self.cfg.seed, "status": status, "reason": reason}

    def _base_result(self) -> dict[str, Any]:
        cfg = self.cfg
        bench = benchmarks.get(cfg.bench)
        return {"run_id": cfg.run_id, "method": cfg.method, "options": cfg.options, "bench": cfg.bench,
                "space": bench.space, "dataset": bench.dataset, "budget": cfg.budget, "seed": cfg.seed,
                "status": "running", "config": cfg.to_dict(), "env": environment(self.device, cfg.to_dict())}

    def _execute(self) -> dict[str, Any]:
        cfg, proto = self.cfg, self.cfg.protocol
        bench = benchmarks.get(cfg.bench)
        seed_everything(cfg.seed)
        bundle = data.load(bench.dataset, self.data_root, download=self.download, cutout=proto.cutout,
                           search_image_size=proto.search_image_size, seed=cfg.seed)
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
    def build_method(self, space: str, num_classes: int, in_channels: int) -> methods.SearchMethod:
        cfg, proto = self.cfg, self.cfg.protocol
        cls = method_class(cfg.method)
        extra = {} if proto.search_stem == "cifar" else {"stem": proto.search_stem}
        net = build_supernet(space, c=proto.search_channels, layers=proto.search_layers, num_classes=num_classes,
                             in_channels=in_channels, **extra, **cls.supernet_kwargs(cfg.options)).to(self.device)
        return build_method(cfg.method, net, search_hparams(cfg), cfg.options)

    def search(self, bundle: data.DataBundle, space: str) -> tuple[Any, list[dict[str, Any]]]:
        cfg, proto = self.cfg, self.cfg.protocol
        if cfg.method == FIXED:  # nothing to search: the genotype is given
            from spaces.genotype import from_dict

            return from_dict(cfg.options["cells"]), []
        method = self.build_method(space, bundle.num_classes, bundle.in_channels)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.w_opt, proto.search_epochs,
                                                           eta_min=method.hp.w_lr_min)
        history: list[dict[str, Any]] = []
        start = 0
        ckpt = self.dir / CHECKPOINT
        state = load_checkpoint(ckpt)
        if state is not None:
            method.load_state_dict(state["method"])
            sched.load_state_dict(state["scheduler"])
            history, start = state["history"], int(state["next_epoch"])
            set_rng_state(state["rng"])
            log.info("resumed search at epoch %d", start)
        train = _cap(bundle.search_train, proto.search_subset)
        val = _cap(bundle.search_val, proto.search_subset)
        tb = TBLogger(self.dir if self.tensorboard else None, method.shapes)
        with self._sigterm_stops():
            bar = tqdm(range(start, proto.search_epochs), desc=f"search {cfg.run_id}", disable=not self.progress,
                       initial=start, total=proto.search_epochs)
            for epoch in bar:
                method.model.train()
                method.begin_epoch(epoch, proto.search_epochs)
                order = cfg.seed * 100_003 + epoch  # data order depends only on seed and epoch
                loaders = zip(data.make_loader(train, proto.search_batch, shuffle=True, seed=order),
                              data.make_loader(val, proto.search_batch, shuffle=True, seed=order + 50_000),
                              strict=False)
                sums: dict[str, float] = {}
                steps = 0
                t0 = time.time()
                for (xt, yt), (xv, yv) in loaders:
                    stats = method.step((xt.to(self.device), yt.to(self.device)),
                                        (xv.to(self.device), yv.to(self.device)))
                    if not all(math.isfinite(v) for v in stats.values()):
                        raise FloatingPointError(f"search diverged at epoch {epoch}: {stats}")
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0.0) + v
                    steps += 1
                sched.step()
                genotype = method.genotype()
                entry = {"epoch": epoch, "tau": method.tau, "lr": sched.get_last_lr()[0], "steps": steps,
                         **{k: v / max(steps, 1) for k, v in sums.items()},
                         "skip_connect_normal": genotype.skip_normal(),
                         "parameterless_normal": genotype.parameterless_normal(),
                         "genotype": genotype.to_dict(), "arch_weights": method.arch_weights(),
                         "seconds": time.time() - t0}
                history.append(entry)
                tb.log_epoch(entry)
                log.info("epoch %d %s", epoch, {k: v for k, v in entry.items()
                                                if k not in ("genotype", "arch_weights")})
                bar.set_postfix(skip=entry["skip_connect_normal"], loss=f"{entry.get('train_loss', 0):.3f}")
                save_checkpoint(ckpt, {"method": method.state_dict(), "scheduler": sched.state_dict(),
                                       "history": history, "next_epoch": epoch + 1, "rng": rng_state()})
                if self._stop:
                    raise InterruptedError(f"stopped by SIGTERM after epoch {epoch}; rerun to resume")
        tb.close()
        return method.genotype(), history

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
        proto, cfg = self.cfg.protocol, self.cfg
        seed_everything(cfg.seed)
        kwargs = dict(network=proto.eval_network, c=proto.eval_channels, layers=proto.eval_layers,
                      num_classes=bundle.num_classes, in_channels=bundle.in_channels)
        net = build_eval_network(genotype, auxiliary=proto.aux_weight > 0, drop_path=proto.drop_path, **kwargs)
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
        train = data.make_loader(_cap(bundle.eval_train, proto.eval_subset), proto.eval_batch, shuffle=True,
                                 seed=cfg.seed)
        test = data.make_loader(bundle.test, max(proto.eval_batch, 256), shuffle=False, seed=cfg.seed)
        ckpt = self.dir / EVAL_CHECKPOINT
        resume = load_checkpoint(ckpt)
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

        def checkpoint(state: dict[str, Any]) -> None:
            save_checkpoint(ckpt, {**state, "genotype": genotype.to_dict(), "rng": rng_state(),
                                   "loader": train.generator.get_state()})
            if self._stop:
                raise InterruptedError(f"stopped by SIGTERM after evaluation epoch {state['next_epoch'] - 1}; "
                                       "rerun to resume")

        with self._sigterm_stops():
            stats = train_and_test(net.to(self.device), train, test, epochs=proto.eval_epochs, lr=proto.eval_lr,
                                   momentum=proto.eval_momentum, weight_decay=proto.eval_weight_decay,
                                   grad_clip=proto.eval_grad_clip, aux_weight=proto.aux_weight,
                                   drop_path_prob=proto.drop_path, device=self.device,
                                   label_smoothing=proto.label_smoothing, progress=self.progress,
                                   on_epoch=on_epoch, checkpoint=checkpoint, resume=resume)
        return {**stats, "params": params, "macs": macs, "macs_include": macs_include, **noted}


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class CheckpointError(ValueError):
    """Neither a checkpoint nor the one before it can be read."""


def previous_checkpoint(path: Path) -> Path:
    """``search.pt`` -> ``search.prev.pt``: the checkpoint one epoch older."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically and keep the previous checkpoint as ``*.prev.pt``.

    The new file is written and synced under a temporary name, then the current checkpoint becomes
    the previous one and the new one takes its name: a kill at any moment leaves at least one whole
    checkpoint, and a checkpoint damaged later still has one to fall back to.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        os.replace(path, previous_checkpoint(path))
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The newest readable of ``path`` and ``*.prev.pt`` (``weights_only=True``); ``None`` if neither exists.

    Raises :class:`CheckpointError` when checkpoints exist but none can be read.
    """
    problems = []
    for candidate in (path, previous_checkpoint(path)):
        if not candidate.exists():
            continue
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
            problems.append(f"{candidate.name}: {type(exc).__name__}")
            log.warning("checkpoint %s is unreadable (%s)", candidate, _reason(exc))
            continue
        if candidate != path:
            log.warning("resuming from the previous checkpoint %s", candidate)
        return state
    if problems:
        raise CheckpointError(f"no readable checkpoint in {path.parent} ({'; '.join(problems)}); delete "
                              f"{path.name} and {previous_checkpoint(path).name} to restart the run")
    return None


@contextmanager
def run_lock(run_dir: Path, attempts: int = 5) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock``; yields ``False`` if another process holds it.

    Non-blocking, with a few short retries so that a brief probe (``harness status``) is not taken
    for a running process. The kernel drops the lock when its holder dies, even by SIGKILL.
    """
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts - 1:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)  # releases the lock


def is_locked(run_dir: Path) -> bool:
    """Whether a process is working on the run now (holds its lock); takes the lock only for a moment."""
    lock = run_dir / LOCK
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _reason(exc: BaseException) -> str:
    """One line naming the failure (CUDA's out-of-memory message runs over several lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def run(cfg: RunConfig, out: Path, **kwargs: Any) -> dict[str, Any]:
    return Run(cfg, out, **kwargs).execute()
