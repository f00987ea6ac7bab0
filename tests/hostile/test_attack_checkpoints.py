"""Issue 18's attack list, checkpoints and the readers of ``harness check``: each row reproduces one fault.

* A checkpoint damaged in the middle but still loadable (``search.pt`` or ``eval.pt``) is refused by its
  digest and the previous checkpoint is resumed; with both damaged the run fails naming the files.
* A checkpoint copied from another seed's run folder is refused (its config hash is another run's).
* Epoch counters outside what the spec's epochs can write (99, -5) are refused.
* A run folder that turns read-only mid-run is one line and exit 2, without the traceback TensorBoard's
  writer thread printed.
* ``harness check --baseline`` of a device or a FIFO, and ``--paper-dir`` of a missing folder, are one
  line and exit 2 before any work.

Runs are tiny (2 search and 2 evaluation epochs of 2-4 steps on digits); one complete reference run is
copied and damaged, so a rerun only redoes the last epoch or nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import struct
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

import harness.runs.storage
from harness.cli.main import main
from harness.runs.layout import CHECKPOINT, EVAL_CHECKPOINT, EVAL_KEYS, SEARCH_KEYS
from harness.runs.run import Run
from harness.runs.storage import DIGEST, CheckpointError, load_checkpoint, previous_checkpoint, save_checkpoint
from harness.spec.runspec import make_config
from methods.base import SearchMethod

TINY = dict(search_epochs=2, search_subset=32, search_batch=16, search_layers=2, search_channels=4,
            eval_epochs=2, eval_subset=64, eval_batch=32, eval_layers=2, eval_channels=4)


def tiny(seed: int = 0):
    return make_config("rome-v2", "s0-digits", "smoke", seed, {"k": 2}, **TINY)


def fingerprint(result: dict[str, Any]) -> dict[str, Any]:
    history = [{k: v for k, v in e.items() if k != "seconds"} for e in result["search"]["history"]]
    return {"status": result["status"], "genotype": result["genotype"], "history": history,
            "eval": {k: result["eval"][k] for k in ("test_error", "train_loss", "train_acc")}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("reference")
    cfg = tiny()
    result = Run(cfg, out, device="cpu", tensorboard=False).execute()
    assert result["status"] == "complete", result.get("reason")
    return result, out / cfg.run_id


def unfinished_copy(reference: tuple[dict[str, Any], Path], out: Path, cfg: Any = None) -> Path:
    """The reference run's folder with its checkpoints but no result, as ``cfg``'s run folder."""
    run_dir = out / (cfg or tiny()).run_id
    shutil.copytree(reference[1], run_dir)
    for name in ("result.json", "log.txt"):
        (run_dir / name).unlink()
    return run_dir


def rerun(out: Path, cfg: Any = None) -> tuple[dict[str, Any], str]:
    cfg = cfg or tiny()
    result = Run(cfg, out, device="cpu", tensorboard=False).execute()
    return result, (out / cfg.run_id / "log.txt").read_text()


def flip_bytes_in_largest_tensor(path: Path, n: int = 16) -> None:
    """XOR ``n`` bytes in the middle of the checkpoint's largest tensor record: the zip archive and the
    pickle stay intact, so ``torch.load`` still succeeds and returns other numbers."""
    with zipfile.ZipFile(path) as z:
        big = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[big.header_offset + 26:big.header_offset + 30])
    middle = big.header_offset + 30 + name_len + extra_len + big.file_size // 2
    for i in range(middle, middle + n):
        raw[i] ^= 0xFF
    path.write_bytes(raw)


# -- 1. damaged but loadable -------------------------------------------------------------------------------

def test_a_loadable_damaged_checkpoint_is_refused_by_its_digest(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT
    weights = torch.arange(4096, dtype=torch.float32)
    for epoch in (1, 2):
        save_checkpoint(path, {"next_epoch": epoch, "w": weights + epoch})
    state = load_checkpoint(path)
    assert state is not None and state["next_epoch"] == 2 and DIGEST not in state
    flip_bytes_in_largest_tensor(path)
    assert not torch.equal(torch.load(path, weights_only=True)["w"], weights + 2)  # loadable, other numbers
    assert load_checkpoint(path)["next_epoch"] == 1  # the previous one, intact
    flip_bytes_in_largest_tensor(previous_checkpoint(path))
    with pytest.raises(CheckpointError, match=r"digest mismatch.*delete search.pt and search.prev.pt"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_digest_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT
    torch.save({"next_epoch": 1}, path)  # not written by save_checkpoint
    with pytest.raises(CheckpointError, match="no digest"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", [CHECKPOINT, EVAL_CHECKPOINT])
def test_a_run_resumes_from_the_previous_checkpoint_when_the_last_is_damaged(
        reference: tuple[dict[str, Any], Path], tmp_path: Path, name: str) -> None:
    """16 flipped bytes gave a ``complete`` run with another genotype; now the damaged file is refused and
    the rerun redoes the last epoch from ``*.prev.pt``, ending exactly as the uninterrupted run."""
    run_dir = unfinished_copy(reference, tmp_path)
    flip_bytes_in_largest_tensor(run_dir / name)
    result, log = rerun(tmp_path)
    assert f"checkpoint {run_dir / name} is not used: digest mismatch" in log
    assert f"resuming from the previous checkpoint {previous_checkpoint(run_dir / name)}" in log
    assert fingerprint(result) == fingerprint(reference[0])


# -- 2. another run's checkpoint ---------------------------------------------------------------------------

def test_a_checkpoint_copied_from_another_seeds_run_is_refused(reference: tuple[dict[str, Any], Path],
                                                               tmp_path: Path) -> None:
    other = tiny(seed=1)
    unfinished_copy(reference, tmp_path, other)
    result, _ = rerun(tmp_path, other)
    assert result["status"] == "failed", "seed 0's checkpoint was resumed as seed 1's run"
    assert "written by another run" in result["reason"]
    assert "delete search.pt and search.prev.pt to restart the run" in result["reason"]


# -- 3. epoch counters -------------------------------------------------------------------------------------

def _set_next_epoch(path: Path, value: int) -> None:
    """Rewrite the newest checkpoint with another ``next_epoch`` and a valid digest (what a buggy or
    hostile writer could produce); the current one becomes ``*.prev.pt``."""
    state = torch.load(path, weights_only=True)
    state["next_epoch"] = value
    save_checkpoint(path, state)


@pytest.mark.parametrize(("name", "keys", "epochs"), [(CHECKPOINT, SEARCH_KEYS, TINY["search_epochs"]),
                                                      (EVAL_CHECKPOINT, EVAL_KEYS, TINY["eval_epochs"])])
@pytest.mark.parametrize("bad", [99, -5, True])
def test_epoch_counters_out_of_range_are_refused(reference: tuple[dict[str, Any], Path], tmp_path: Path,
                                                 name: str, keys: tuple[str, ...], epochs: int, bad: Any) -> None:
    path = tmp_path / name
    shutil.copy(reference[1] / name, path)
    _set_next_epoch(path, bad)
    check = Run(tiny(), tmp_path, device="cpu")._checkpoint_check(epochs)
    state = load_checkpoint(path, keys, check)  # falls back to the untouched one
    assert state is not None and state["next_epoch"] == epochs
    previous_checkpoint(path).unlink()
    with pytest.raises(CheckpointError, match=rf"next_epoch {bad!r} outside 1\.\.{epochs}"):
        load_checkpoint(path, keys, check)


@pytest.mark.parametrize(("name", "bad"), [(CHECKPOINT, 99), (EVAL_CHECKPOINT, -5)])
def test_a_run_does_not_resume_from_an_epoch_counter_out_of_range(reference: tuple[dict[str, Any], Path],
                                                                  tmp_path: Path, name: str, bad: int) -> None:
    run_dir = unfinished_copy(reference, tmp_path)
    _set_next_epoch(run_dir / name, bad)
    result, log = rerun(tmp_path)
    assert f"next_epoch {bad} outside 1..2" in log
    assert fingerprint(result) == fingerprint(reference[0])


# -- 4. a run folder that turns read-only mid-run ---------------------------------------------------------

def test_a_folder_turning_read_only_mid_run_is_one_line_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """From the second search epoch on every write fails with EACCES (``chmod -R a-w`` for a user who is
    not root), TensorBoard's event file included; its writer thread used to print a 19-line traceback
    before the one-line error."""
    from tensorboard.compat.tensorflow_stub.io.gfile import LocalFileSystem
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    # pytest catches thread exceptions with its own hook; the default one prints to stderr, as outside
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    read_only = {"on": False}

    def refuse(name: Any) -> None:
        if read_only["on"]:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))

    def guarded(original: Any, name_arg: int = 0) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refuse(args[name_arg] if len(args) > name_arg else "")
            return original(*args, **kwargs)
        return wrapper

    step = SearchMethod.step

    def step_then_read_only(self: SearchMethod, *args: Any) -> dict[str, float]:
        if self.epoch == 1:
            read_only["on"] = True
        return step(self, *args)

    monkeypatch.setattr(SearchMethod, "step", step_then_read_only)
    monkeypatch.setattr(LocalFileSystem, "write", guarded(LocalFileSystem.write, 1))
    monkeypatch.setattr(LocalFileSystem, "append", guarded(LocalFileSystem.append, 1))
    monkeypatch.setattr(harness.runs.storage, "open", guarded(open), raising=False)
    monkeypatch.setattr(harness.runs.storage.tempfile, "mkstemp", guarded(harness.runs.storage.tempfile.mkstemp))
    out = tmp_path / "runs"
    sets = [a for key, v in TINY.items() for a in ("--set", f"{key}={v}")]
    code = main(["run", "--bench", "s0-digits", "--k", "2", "--out", str(out), "--no-progress", *sets])
    for thread in threading.enumerate():  # the writer thread reports its failure on its own time
        if isinstance(thread, _AsyncWriterThread):
            thread.join(timeout=10)
    time.sleep(0.1)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: cannot write run ") and "Permission denied" in err


# -- 5, 6. harness check's inputs --------------------------------------------------------------------------

def _check_exit(capsys: pytest.CaptureFixture[str], *args: str, timeout: float = 60) -> tuple[int | None, str]:
    """``harness check --paper-only ARGS`` in a thread, so that a reader that blocks fails the test."""
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(["check", "--paper-only", *args])), daemon=True)
    worker.start()
    worker.join(timeout)
    return (codes[0] if codes else None), capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_check_refuses_a_device_as_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _check_exit(capsys, "--baseline", "/dev/zero")
    assert code == 2 and err.count("\n") == 1
    assert "baseline file /dev/zero: a character device, not a regular file" in err


def test_check_refuses_a_fifo_as_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "baseline.json"
    os.mkfifo(fifo)
    try:
        code, err = _check_exit(capsys, "--baseline", str(fifo), timeout=30)
    finally:  # a reader blocked on the FIFO gets its end of file
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert code == 2, "harness check hung on a FIFO"
    assert err.count("\n") == 1 and "a FIFO, not a regular file" in err


@pytest.mark.parametrize(("content", "reason"), [
    ("[1, 2", "not valid JSON"),
    (json.dumps({"runs": {"x": 3}}), "run 'x' is not an object"),
    (json.dumps({"runs": {"x": {"method": "darts", "bench": "s2-digits", "test_error": "5"}}}),
     "test_error not a number"),
])
def test_check_refuses_a_malformed_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                            reason: str) -> None:
    baseline = tmp_path / "check.json"
    baseline.write_text(content)
    code, err = _check_exit(capsys, "--baseline", str(baseline))
    assert code == 2 and err.count("\n") == 1 and reason in err, err


def test_check_refuses_a_missing_paper_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _check_exit(capsys, "--paper-dir", str(tmp_path / "missing"))
    assert code == 2, "a missing --paper-dir passed with '0 checks'"
    assert err == f"error: --paper-dir {tmp_path / 'missing'}: no such folder\n"
