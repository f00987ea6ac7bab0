"""Reading run directories: what a runs folder holds (``harness status``, ``harness report``).

Beside :mod:`harness.runs.run`, which writes them. Each run directory is one of

* ``complete`` - ``result.json`` with ``status: complete``;
* ``failed`` - ``result.json`` with ``status: failed`` and its ``reason``;
* ``unfinished`` - no result yet (or a failed one being rerun): a run under way, or stopped (killed,
  preempted, SIGTERM) and resumable from its checkpoints by rerunning the sweep;
* ``unreadable`` - a ``result.json`` that does not validate against the schema, or is not a regular
  file, not JSON, nested absurdly deep (:func:`harness.runs.read.read_result` gives the reason).
  Such a folder is listed and skipped, never trusted; rerunning its config redoes the run.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import torch

from harness.runs.layout import CHECKPOINT, CONFIG, EVAL_CHECKPOINT, LOG, RESULT
from harness.runs.read import one_per_run_id, read_config, read_result
from harness.runs.storage import is_locked, previous_checkpoint

STATUSES = ("complete", "failed", "unfinished", "unreadable")
_MARKERS = (RESULT, CONFIG, LOG, CHECKPOINT, EVAL_CHECKPOINT)


def _next_epoch(path: Path) -> int | None:
    """Epochs done according to a checkpoint (or the one before it); ``None`` if unreadable."""
    for candidate in (path, previous_checkpoint(path)):
        if _regular(candidate):
            try:  # mmap: only the few bytes of the epoch counter are read, not the weights
                return int(torch.load(candidate, map_location="cpu", weights_only=True, mmap=True)["next_epoch"])
            except Exception:  # noqa: BLE001, S112 - a damaged checkpoint: try the previous one
                continue
    return None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _progress(run_dir: Path, config: dict[str, Any]) -> str:
    def section(name: str) -> dict[str, Any]:
        value = config.get(name)
        return value if isinstance(value, dict) else {}

    proto, search, ev = section("protocol"), section("search"), section("eval")  # protocol: before the spec
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
    if not any((run_dir / m).exists() or (run_dir / m).is_symlink() for m in _MARKERS):
        return None
    row: dict[str, Any] = {"run_id": run_dir.name, "dir": str(run_dir)}
    result: dict[str, Any] = {}
    unreadable = None
    if (run_dir / RESULT).exists() or (run_dir / RESULT).is_symlink():
        read = read_result(run_dir / RESULT)
        result, unreadable = read.data or {}, read.reason
        if read.data is not None:  # the run id it records: a copied folder holds the same run
            row["recorded_run_id"] = str(read.data["run_id"])
    config = result.get("config") or read_config(run_dir / CONFIG)
    row.update({k: _plain(config.get(k, result.get(k))) for k in ("method", "bench", "seed")})
    running = is_locked(run_dir)
    if unreadable is not None and not running:
        row.update(status="unreadable", detail=f"unreadable: {unreadable}", reason=unreadable)
    elif result.get("status") == "complete":
        ev = result["eval"]
        row.update(status="complete", detail=f"test error {ev['test_error']:.2f} %", test_error=ev["test_error"])
    elif result.get("status") == "failed" and not running:
        row.update(status="failed", detail=result.get("reason", "no reason recorded"), reason=result.get("reason"))
    else:
        progress = _progress(run_dir, config)
        state = "running now" if running else "stopped; rerun the sweep to resume"
        row.update(status="unfinished", detail=f"{progress}, {state}", progress=progress, running=running)
    return row


def _plain(value: Any) -> Any:
    """A config value shown as is only when it is a short string or an integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value[:200] if isinstance(value, str) else value


def scan_runs(runs: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run under ``runs`` (one level deep; hidden folders such as ``.submitit`` are skipped,
    symbolic links are not followed), each run id once, and a warning for each copy left out.

    A run folder copied within the runs folder (``cp -r run run.bak``) holds the same run id: counted
    twice it would pass for another seed. The folder named after the run id is kept, else the first
    by name (:func:`harness.runs.read.one_per_run_id`).
    A run's id is the one its ``result.json`` records, else its folder's name (the name shown).
    """
    rows = [_safe_status(d) for d in sorted(runs.iterdir())
            if not d.name.startswith(".") and not d.is_symlink() and d.is_dir()]
    kept, warnings = one_per_run_id([r for r in rows if r is not None],
                                    lambda r: r.get("recorded_run_id", r["run_id"]), lambda r: Path(r["dir"]))
    for row in kept:
        row.pop("recorded_run_id", None)
    return kept, warnings


def _safe_status(run_dir: Path) -> dict[str, Any] | None:
    """:func:`run_status`, or an ``unreadable`` row when the folder itself cannot be read."""
    try:
        return run_status(run_dir)
    except OSError as exc:
        reason = f"folder unreadable: {exc.strerror or exc}"
        return {"run_id": run_dir.name, "dir": str(run_dir), "method": None, "bench": None, "seed": None,
                "status": "unreadable", "detail": f"unreadable: {reason}", "reason": reason}
