"""Reading run directories: what a runs folder holds (``harness status``, ``harness report``).

Beside :mod:`harness.run`, which writes them. Each run directory is one of

* ``complete`` - ``result.json`` with ``status: complete``;
* ``failed`` - ``result.json`` with ``status: failed`` and its ``reason``;
* ``unfinished`` - no result yet (or a failed one being rerun): a run under way, or stopped (killed,
  preempted, SIGTERM) and resumable from its checkpoints by rerunning the sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness.results import RESULT, read_json
from harness.run import CHECKPOINT, CONFIG, EVAL_CHECKPOINT, is_locked, previous_checkpoint

STATUSES = ("complete", "failed", "unfinished")
_MARKERS = (RESULT, CONFIG, "log.txt", CHECKPOINT, EVAL_CHECKPOINT)


def _next_epoch(path: Path) -> int | None:
    """Epochs done according to a checkpoint (or the one before it); ``None`` if unreadable."""
    for candidate in (path, previous_checkpoint(path)):
        if candidate.exists():
            try:  # mmap: only the few bytes of the epoch counter are read, not the weights
                return int(torch.load(candidate, map_location="cpu", weights_only=True, mmap=True)["next_epoch"])
            except Exception:  # noqa: BLE001, S112 - a damaged checkpoint: try the previous one
                continue
    return None


def _progress(run_dir: Path, config: dict[str, Any]) -> str:
    proto = config.get("protocol") or {}  # results written before the run spec had sections
    search, ev = config.get("search") or {}, config.get("eval") or {}
    for name, phase, total in ((EVAL_CHECKPOINT, "evaluation", ev.get("epochs", proto.get("eval_epochs"))),
                               (CHECKPOINT, "search", search.get("epochs", proto.get("search_epochs")))):
        path = run_dir / name
        if path.exists() or previous_checkpoint(path).exists():
            done = _next_epoch(path)
            if done is None:
                return f"{phase} checkpoint unreadable"
            return f"{phase} epoch {done}/{total if total is not None else '?'} done"
    return "started, no checkpoint yet"


def run_status(run_dir: Path) -> dict[str, Any] | None:
    """The status of one run directory, or ``None`` if the folder is not a run."""
    if not any((run_dir / m).exists() for m in _MARKERS):
        return None
    row: dict[str, Any] = {"run_id": run_dir.name, "dir": str(run_dir)}
    result: dict[str, Any] = {}
    if (run_dir / RESULT).exists():
        try:
            result = read_json(run_dir / RESULT)
        except ValueError:
            row["note"] = "result.json unreadable"
    config = result.get("config") or {}
    if not config and (run_dir / CONFIG).exists():
        try:
            config = read_json(run_dir / CONFIG)
        except ValueError:
            config = {}
    row.update({k: config.get(k, result.get(k)) for k in ("method", "bench", "seed")})
    running = is_locked(run_dir)
    if result.get("status") == "complete":
        ev = result.get("eval", {})
        row.update(status="complete", detail=f"test error {ev.get('test_error', float('nan')):.2f} %",
                   test_error=ev.get("test_error"))
    elif result.get("status") == "failed" and not running:
        row.update(status="failed", detail=result.get("reason", "no reason recorded"), reason=result.get("reason"))
    else:
        progress = _progress(run_dir, config)
        state = "running now" if running else "stopped; rerun the sweep to resume"
        row.update(status="unfinished", detail=f"{progress}, {state}", progress=progress, running=running)
    return row


def scan(runs: Path) -> list[dict[str, Any]]:
    """Every run under ``runs`` (one level deep; hidden folders such as ``.submitit`` are skipped)."""
    rows = [run_status(d) for d in sorted(runs.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return [r for r in rows if r is not None]
