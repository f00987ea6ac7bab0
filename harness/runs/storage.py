"""Writing run folders safely: atomic files, checkpoints, the run lock and storage faults.

Every file of a run is written under a temporary name in its own folder, synced and renamed over
the target (POSIX ``rename`` is atomic), so a reader sees the old file or the new one, never half
of one. A write that fails removes its temporary file (a 2 MB ``search.pt.tmp`` left on a full disk
would keep it full); a run removes the temporary files a killed process left behind when it starts
(:func:`remove_stale_tmp`, under the run's lock, so no writer is active).

Storage faults (``ENOSPC``, ``EROFS``, ``EACCES``, ``EDQUOT``) are not failures of a method: they
become :class:`StorageFault`, which the command line reports as one line with exit code 2.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from harness.runs.layout import LOCK
from harness.utils import distributed

log = logging.getLogger("harness")
#: the key of a checkpoint that holds the SHA-256 of the rest (:func:`payload_digest`)
DIGEST = "sha256"
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: errno values that mean "the storage refuses the write", not "the run is wrong"
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


class StorageFault(OSError):
    """The output folder cannot take a write (full, read-only, no permission); one line says which."""


class RunFolderError(ValueError):
    """A run folder holds something in the place of one of its files (a directory, a FIFO)."""


class CheckpointError(ValueError):
    """Neither a checkpoint nor the one before it can be used (unreadable, damaged or another run's)."""


def is_storage_fault(exc: BaseException) -> bool:
    return isinstance(exc, StorageFault) or (isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS)


def storage_fault(exc: OSError, what: str) -> StorageFault:
    """A :class:`StorageFault` naming ``what`` was being written and why it failed."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return StorageFault(exc.errno, f"cannot write {what}{where}: {reason}")


# -- atomic files --------------------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Any], None], *, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path``, sync it and rename it to ``path``.

    The temporary file is unique (``mkstemp``), so concurrent writers never share one, and it is
    removed when anything fails (the exception is re-raised).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from the rest of a group
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write(path, lambda fh: fh.write(text))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Remove the temporary files (``*.tmp``) of writes a killed process never finished; only regular
    files directly in ``folder``. Call it while holding the folder's lock."""
    removed = []
    for p in Path(folder).glob("*.tmp"):
        try:
            if stat.S_ISREG(p.lstat().st_mode):
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d stale temporary file(s): %s", len(removed), ", ".join(p.name for p in removed))
    return removed


def probe_writable(folder: Path) -> None:
    """Create ``folder`` and check a file can be written in it; ``OSError`` if not.

    The probe is a unique temporary file (``mkstemp``): processes probing one folder at once never
    remove each other's probe (a shared ``.write-test`` name made concurrent runs fail).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def check_run_files(run_dir: Path, names: Iterable[str]) -> None:
    """Raise :class:`RunFolderError` if one of ``names`` in ``run_dir`` exists but is not a regular file
    (a directory or FIFO where ``result.json`` or ``.lock`` belongs would crash or hang the run)."""
    for name in names:
        path = Path(run_dir) / name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise RunFolderError(f"{path} is {describe_mode(mode)}, not a regular file; remove it and rerun")


def describe_mode(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


class QuietFileHandler(logging.FileHandler):
    """A log file that stops (instead of printing a traceback per record) when the disk refuses it."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failed = True


# -- checkpoints ---------------------------------------------------------------------------------------
def previous_checkpoint(path: Path) -> Path:
    """``search.pt`` -> ``search.prev.pt``: the checkpoint one epoch older."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def payload_digest(state: Any) -> str:
    """SHA-256 of a checkpoint's contents (every key but :data:`DIGEST`), independent of the file's bytes.

    A checkpoint damaged on disk may still unpickle (a flipped byte inside a weight tensor does), and
    would then be resumed as if nothing happened; the digest, stored inside the file, catches it. It
    hashes what ``torch.load`` gives back, not the zip archive, so it can live in the file it covers:
    containers in their order, scalars with their type, tensors as dtype, shape and raw bytes.
    """
    h = hashlib.sha256()
    _digest_into(h, {k: v for k, v in state.items() if k != DIGEST} if isinstance(state, dict) else state)
    return h.hexdigest()


def _digest_into(h: Any, x: Any) -> None:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(x.shape)}:".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy())  # the tensor's buffer, not a copy
    elif isinstance(x, dict):
        h.update(f"D{len(x)}:".encode())
        for k, v in x.items():
            _digest_into(h, k)
            _digest_into(h, v)
    elif isinstance(x, list | tuple):
        h.update(f"{'L' if isinstance(x, list) else 'U'}{len(x)}:".encode())
        for v in x:
            _digest_into(h, v)
    elif isinstance(x, str | bytes):
        raw = x.encode() if isinstance(x, str) else x
        h.update(f"{'S' if isinstance(x, str) else 'B'}{len(raw)}:".encode() + raw)
    elif isinstance(x, float):
        h.update(f"F{x.hex()};".encode())
    else:  # None, bool, int, and what weights_only=True can load besides (dtype, device): exact reprs
        h.update(f"{type(x).__name__}{x!r};".encode())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically and keep the previous checkpoint as ``*.prev.pt``.

    The new file is written and synced under a temporary name, then the current checkpoint becomes
    the previous one and the new one takes its name: a kill at any moment leaves at least one whole
    checkpoint, and a checkpoint damaged later still has one to fall back to. A failed write (a full
    disk) removes the temporary file and leaves both older checkpoints as they were. Under DDP only
    rank 0 writes (its state holds every process's RNG states, :func:`harness.utils.rng.rng_state`). A dict
    state gets its :func:`payload_digest` under :data:`DIGEST`, checked by :func:`load_checkpoint`.
    """
    if not distributed.is_main():
        return
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(state, dict):
        state = {**state, DIGEST: payload_digest(state)}
    # serialized in memory first: torch's own writer turns a full disk into "RuntimeError: unexpected
    # pos", while a plain write raises OSError(ENOSPC), which names the fault
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if path.exists():
        os.replace(path, previous_checkpoint(path))
    os.replace(tmp, path)


def load_checkpoint(path: Path, keys: Iterable[str] = (),
                    check: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any] | None:
    """The newest usable of ``path`` and ``*.prev.pt`` (``weights_only=True``); ``None`` if neither exists.

    A checkpoint counts as unusable, like a corrupt one, and the previous checkpoint is tried, when it
    is not a dict, its stored digest is missing or differs from its contents (damaged on disk but
    still loadable), it lacks one of ``keys``, or ``check(state)`` names a problem (the caller's
    rules: whose run it is, epoch counters in range). The digest is removed from the state returned.
    Raises :class:`CheckpointError` when checkpoints exist but none can be used.
    """
    path = Path(path)
    keys = tuple(keys)
    problems = []
    for candidate in (path, previous_checkpoint(path)):
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            problems.append(f"{candidate.name}: {describe_mode(mode)}")
            continue
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
            problems.append(f"{candidate.name}: {type(exc).__name__}")
            log.warning("checkpoint %s is unreadable (%s)", candidate, one_line(exc))
            continue
        problem = _checkpoint_problem(state, keys, check)
        if problem:
            problems.append(f"{candidate.name}: {problem}")
            log.warning("checkpoint %s is not used: %s", candidate, problem)
            continue
        if candidate != path:
            log.warning("resuming from the previous checkpoint %s", candidate)
        return state
    if problems:
        raise CheckpointError(f"no readable checkpoint in {path.parent} ({'; '.join(problems)}); delete "
                              f"{path.name} and {previous_checkpoint(path).name} to restart the run")
    return None


def _checkpoint_problem(state: Any, keys: tuple[str, ...],
                        check: Callable[[dict[str, Any]], str | None] | None) -> str | None:
    """Why a loaded checkpoint cannot be resumed (its digest is popped when it matches), else ``None``."""
    if not isinstance(state, dict):
        return "lacks a dict"
    stored = state.pop(DIGEST, None)
    if stored is None:
        return "no digest (not written by this version of the harness)"
    try:
        digest = payload_digest(state)
    except (RecursionError, TypeError, ValueError, RuntimeError) as exc:
        return f"its contents cannot be digested ({one_line(exc)})"
    if stored != digest:
        return "digest mismatch: damaged since it was written"
    missing = [k for k in keys if k not in state]
    if missing:
        return f"lacks {', '.join(missing)}"
    return check(state) if check is not None else None


# -- the run lock --------------------------------------------------------------------------------------
@contextmanager
def run_lock(run_dir: Path, attempts: int = 5) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock``; yields ``False`` if another process holds it.

    Non-blocking, with a few short retries so that a brief probe (``harness status``) is not taken
    for a running process. The kernel drops the lock when its holder dies, even by SIGKILL.
    """
    fd = os.open(Path(run_dir) / LOCK, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
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
    """Whether a process is working on the run now (holds its lock); takes the lock only for a moment.

    A ``.lock`` that is not a regular file (a directory, a FIFO) or cannot be opened is not held.
    """
    lock = Path(run_dir) / LOCK
    try:
        if not stat.S_ISREG(lock.lstat().st_mode):
            return False
        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def one_line(exc: BaseException) -> str:
    """One line naming the failure (CUDA's out-of-memory message runs over several lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
