"""TensorBoard logs of a search, written under the run folder (``<run>/tb/``), one step per epoch.

``tensorboard --logdir RUNS`` then shows every run of a sweep side by side while they search:

* ``search/*`` - the history entry's scalars: losses and accuracies (train on the weight step, val on
  the architecture step), ``tau``, the weights' learning rate ``lr``, skip-connections and
  parameterless ops in the derived normal cell, seconds per epoch;
* ``arch/<cell>/op/<op>`` - the mean probability of each op over the cell's decisions, and
  ``arch/<cell>/parameterless`` - the mean probability mass of parameterless ops (the collapse of
  ROME Fig. 3 forming in the weights);
* histograms ``arch/<cell>/ops`` and ``arch/<cell>/edges`` - every op probability and every edge
  weight or inclusion probability (:meth:`methods.base.SearchMethod.arch_weights`).

Logging is on by default (``harness run --no-tensorboard`` turns it off). Without the ``tensorboard``
package it logs nothing and says so once. A run folder that stops taking writes (read-only, full) stops
the run like any other write to it (one line, exit 2, :mod:`harness.runs.storage`): TensorBoard's writer
thread fails first, and its traceback is not printed (:func:`_quiet_writer_thread`); the error reaches
the run through the writer's next call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spaces.base import ChoiceShape
from spaces.genotype import PARAMETERLESS as DARTS_PARAMETERLESS
from spaces.nasbench import PARAMETERLESS as NB_PARAMETERLESS

log = logging.getLogger("harness")

TB_DIR = "tb"
#: history keys logged as scalars (those present in an entry)
SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "tau", "lr", "skip_connect_normal",
           "parameterless_normal", "seconds")
PARAMETERLESS = DARTS_PARAMETERLESS | NB_PARAMETERLESS


def _quiet_writer_thread() -> None:
    """Stop ``threading.excepthook`` from printing the traceback of TensorBoard's writer thread when a
    write fails with ``OSError``; other threads and other errors go to the previous hook.

    The thread (``_AsyncWriterThread``) keeps the exception and the writer raises it again in the
    calling thread on its next ``add_*``/``flush``; printed from the thread as well, a read-only run
    folder gave a 19-line traceback before the one-line error. Installed once.
    """
    try:
        from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread
    except ImportError:
        return
    previous = threading.excepthook
    if getattr(previous, "_harness_tb_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.thread, _AsyncWriterThread) and isinstance(args.exc_value, OSError):
            return  # raised again in the run's thread by the writer's next call
        previous(args)

    hook._harness_tb_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class TBLogger:
    """One run's writer; :meth:`log_epoch` takes a search history entry. A disabled logger does nothing."""

    def __init__(self, run_dir: Path | None, shapes: Mapping[str, ChoiceShape]):
        self.shapes = dict(shapes)
        self.writer = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises this when the tensorboard package is missing
            log.warning("tensorboard is not installed; no TensorBoard logs (pip install tensorboard)")
            return
        _quiet_writer_thread()
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TB_DIR))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def log_epoch(self, entry: Mapping[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(entry["epoch"])
        for key in SCALARS:
            value = entry.get(key)
            if isinstance(value, int | float):
                self.writer.add_scalar(f"search/{key}", value, step)
        for cell, weights in (entry.get("arch_weights") or {}).items():
            self._log_cell(cell, weights, step)
        self.writer.flush()  # a killed run keeps every finished epoch

    def _log_cell(self, cell: str, weights: Mapping[str, list], step: int) -> None:
        ops = np.asarray(weights["ops"], dtype=float)
        self.writer.add_histogram(f"arch/{cell}/ops", ops, step)
        if "edges" in weights:
            self.writer.add_histogram(f"arch/{cell}/edges", np.asarray(weights["edges"], dtype=float), step)
        shape = self.shapes.get(cell)
        if shape is None or ops.shape != (len(shape.ops), shape.n_ops):
            return
        names = np.asarray(shape.ops)
        for name in dict.fromkeys(names.flatten().tolist()):
            self.writer.add_scalar(f"arch/{cell}/op/{name}", float(ops[names == name].sum() / len(shape.ops)), step)
        free = np.isin(names, list(PARAMETERLESS))
        self.writer.add_scalar(f"arch/{cell}/parameterless", float(ops[free].sum() / len(shape.ops)), step)

    def close(self) -> None:
        """Close the writer; a failure here is not raised (close runs in a ``finally``, and the error that
        stopped the run, the same refused write, is the one to report)."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except OSError as exc:
                log.info("TensorBoard writer not closed cleanly: %s", exc)
