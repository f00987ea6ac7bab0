"""Hardening (issue 13): storage faults, stale temporary files, the write-probe race, NaN weights in the
last step, checkpoints with the wrong keys, and paths derived from data that must stay inside ``--out``.

The bad command lines and hostile run folders are in ``tests/hostile/``.
"""

from __future__ import annotations

import errno
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import harness.runs.storage
from harness.cli.common import writable
from harness.cli.main import main
from harness.engine import health
from harness.runs.layout import CHECKPOINT, SEARCH_KEYS
from harness.runs.read import read_result
from harness.runs.run import Run
from harness.runs.storage import CheckpointError, load_checkpoint, save_checkpoint, write_json
from harness.spec.runspec import fixed_config, make_config
from harness.utils import paths
from methods.base import SearchMethod
from spaces.genotype import KNOWN
from tests.tiny import tiny

#: search: 96 images in batches of 32 = 3 steps per epoch; evaluation: 128 in batches of 64 = 2 steps
TINY_SET = {**tiny("rome-v2"), "search_epochs": 1}
SEARCH_STEPS, EVAL_STEPS = 3, 2


def tiny_cfg(**extra: Any):
    opts = dict(TINY_SET)
    k = opts.pop("k")
    return make_config("rome-v2", "s0-digits", "smoke", 0, {"k": k}, **{**opts, **extra})


def cli_run(out: Path) -> list[str]:
    opts = dict(TINY_SET)
    k = opts.pop("k")
    sets = [a for key, v in opts.items() for a in ("--set", f"{key}={v}")]
    return ["run", "--bench", "s0-digits", "--k", str(k), "--out", str(out), "--no-progress", *sets]


def _outside(tmp_path: Path, out: Path) -> set[Path]:
    """Files under ``tmp_path`` but not under ``out``."""
    return {p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents}


# -- storage faults -------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_checkpoint_write_is_one_line_exit_2_and_keeps_the_previous_one(
        code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The disk fills during the second checkpoint: the half-written file is removed, the first
    checkpoint stays readable, the failure is recorded while the disk still takes a small file, and the
    command says so in one line with exit code 2."""
    calls = []

    class FullDisk:
        """The temporary checkpoint file: 4 kB reach the disk, then the write fails."""

        def __init__(self, fh: Any):
            self.fh = fh

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

        def write(self, data: Any) -> None:
            self.fh.write(bytes(data[:4096]))
            self.fh.flush()
            raise OSError(code, os.strerror(code))

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = open(file, mode, *args, **kwargs)  # noqa: SIM115 - returned to the caller's with
        if str(file).endswith(CHECKPOINT + ".tmp"):
            calls.append(1)
            if len(calls) == 2:
                return FullDisk(fh)
        return fh

    monkeypatch.setattr(harness.runs.storage, "open", fake_open, raising=False)
    out = tmp_path / "runs"
    cfg = tiny_cfg(search_epochs=2)
    argv = cli_run(out)
    argv[argv.index("search_epochs=1")] = "search_epochs=2"
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: cannot write run "), captured.err
    assert os.strerror(code) in captured.err and "Traceback" not in captured.err + captured.out
    run_dir = out / cfg.run_id
    assert not list(run_dir.glob("*.tmp"))
    state = load_checkpoint(run_dir / CHECKPOINT, SEARCH_KEYS)
    assert state is not None and state["next_epoch"] == 1  # the epoch-0 checkpoint, intact
    failed = read_result(run_dir / "result.json")
    assert failed.ok and failed.data["status"] == "failed" and os.strerror(code) in failed.data["reason"]
    assert _outside(tmp_path, out) == set()


def test_when_even_the_failure_cannot_be_recorded_it_is_still_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk refuses the checkpoint and then the failed result: exit 2, one line, no temporary
    files (the case that once printed tracebacks and left a 2 MB ``search.pt.tmp``)."""
    real_fsync = os.fsync
    state = {"full": False}

    def fsync(fd: int) -> None:
        if state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def step(self: SearchMethod, *args: Any) -> dict[str, float]:
        state["full"] = True  # the disk fills during the first step
        return original(self, *args)

    original = SearchMethod.step
    monkeypatch.setattr(SearchMethod, "step", step)
    monkeypatch.setattr(harness.runs.storage.os, "fsync", fsync)
    out = tmp_path / "runs"
    assert main(cli_run(out)) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "No space left on device" in captured.err
    assert "Traceback" not in captured.err + captured.out
    run_dir = out / tiny_cfg().run_id
    assert not list(run_dir.glob("*.tmp")) and not (run_dir / "result.json").exists()


def test_a_failed_json_write_removes_its_temporary_file_and_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "result.json"
    write_json(path, {"a": 1})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(harness.runs.storage.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert path.read_text().strip().endswith("}") and '"a": 1' in path.read_text()


def test_a_read_only_out_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def read_only(*args: Any, **kwargs: Any):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(harness.runs.storage.tempfile, "mkstemp", read_only)
    assert main(cli_run(tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable: Read-only file system" in err


def test_stale_temporary_files_are_removed_when_a_run_starts(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_cfg()
    run_dir = tmp_path / cfg.run_id
    run_dir.mkdir()
    for name in ("search.pt.tmp", ".result.json.x1y2.tmp", ".config.json.zz.tmp"):
        (run_dir / name).write_bytes(b"\0" * 2048)  # left by a killed process
    (run_dir / "keep.tmp").mkdir()  # not a file of ours: left alone
    monkeypatch.setattr(Run, "_execute", lambda self: (_ for _ in ()).throw(ValueError("stop here")))
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "failed" and result["reason"] == "ValueError: stop here"
    assert sorted(p.name for p in run_dir.glob("*.tmp")) == ["keep.tmp"]


def _probe_many(folder: str, n: int, queue: Any) -> None:
    errors = 0
    for _ in range(n):
        try:
            writable(Path(folder))
        except Exception:  # noqa: BLE001 - counted
            errors += 1
    queue.put(errors)


def test_three_processes_probing_one_folder_never_see_it_as_unwritable(tmp_path: Path) -> None:
    """The shared ``.write-test`` name failed 9 % of 3 x 5,000 concurrent probes; unique names fail none."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_probe_many, args=(str(tmp_path / "out"), 1500, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    errors = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors == [0, 0, 0]
    assert list((tmp_path / "out").iterdir()) == []  # every probe removed itself


# -- checkpoints ----------------------------------------------------------------------------------------
def test_a_checkpoint_with_the_wrong_keys_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "search.pt"
    good = {k: torch.tensor(1) for k in SEARCH_KEYS}
    save_checkpoint(path, good)
    save_checkpoint(path, {"something": "else"})
    state = load_checkpoint(path, SEARCH_KEYS)
    assert state is not None and set(state) == set(SEARCH_KEYS)
    save_checkpoint(path, [1, 2, 3])  # not even a dict; the previous one now lacks keys too
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(path, SEARCH_KEYS)


# -- numerical health -----------------------------------------------------------------------------------
def test_nan_weights_from_the_last_search_step_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The epoch's mean loss comes from before each update, so a divergence in the last step never
    showed in it; the weights are checked after the epoch."""
    original = SearchMethod.step
    calls = []

    def step(self: SearchMethod, *args: Any) -> dict[str, float]:
        stats = original(self, *args)
        calls.append(1)
        if len(calls) == SEARCH_STEPS:
            with torch.no_grad():
                self.arch_parameters()[0].fill_(math.nan)
        return stats  # finite: computed before the update

    monkeypatch.setattr(SearchMethod, "step", step)
    result = Run(tiny_cfg(), tmp_path, device="cpu").execute()
    assert len(calls) == SEARCH_STEPS
    assert result["status"] == "failed"
    assert result["reason"].startswith("NonFiniteError: search epoch 0: 1 of "), result["reason"]


def test_nan_weights_from_the_last_evaluation_step_fail_the_run(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The case recorded as ``complete`` (test error 91 %) before: NaN weights after the last step."""
    real_step = torch.optim.SGD.step
    calls = []

    def step(self: torch.optim.SGD, *args: Any, **kwargs: Any) -> Any:
        out = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == EVAL_STEPS:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(math.nan)
        return out

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    opts = {k: v for k, v in TINY_SET.items() if k.startswith("eval_")}
    cfg = fixed_config(KNOWN["DARTS_V2"], "DARTS_V2", "s0-digits", "smoke", 0, **opts)
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert len(calls) == EVAL_STEPS
    assert result["status"] == "failed"
    assert result["reason"].startswith("NonFiniteError: evaluation epoch 0:"), result["reason"]


def test_nan_test_logits_are_an_error() -> None:
    from harness.engine.evaluate import evaluate_accuracy

    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias.fill_(math.nan)
    with pytest.raises(health.NonFiniteError, match="test logits"):
        evaluate_accuracy(model, [(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))], torch.device("cpu"))


def test_non_finite_checks() -> None:
    good, bad = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        bad.weight[0, 0] = math.inf
    health.check_model(good, "x")
    with pytest.raises(health.NonFiniteError, match=r"x: 1 of 2 parameter tensors hold NaN or inf \(weight\)"):
        health.check_model(bad, "x")
    with pytest.raises(health.NonFiniteError, match=r"arch\[0\]"):
        health.check_model(good, "x", extra=[("arch[0]", torch.tensor([math.nan]))])
    with pytest.raises(ValueError, match="eval.lr=nan: takes a finite number"):
        make_config("rome-v2", "s0-digits", "smoke", 0, None, eval_lr=math.nan)


# -- paths ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["../../../../outside/x", "/etc/passwd", "..", ".", "", ".hidden", "a/../../b",
                                  "x\0y", "$\\frac{1}{", "<script>", "a" * 400, "C:\\Windows\\x", "\n"])
def test_slug_is_one_safe_component(text: str) -> None:
    s = paths.slug(text)
    assert s and "/" not in s and "\\" not in s and "\0" not in s and not s.startswith(".")
    assert s not in (".", "..") and len(s) <= paths.MAX_LEN
    assert paths.slug(s) == s  # a slug is already safe


def test_slug_keeps_safe_names_and_separates_unsafe_ones() -> None:
    rid = "s0-digits_rome-v2_k2_smoke_s0_0123abcd"
    assert paths.slug(rid) == rid  # existing run folders keep their names
    assert paths.slug("a/b") != paths.slug("a_b") and paths.slug("a/b") != paths.slug("a:b")


def test_child_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "evil").symlink_to(elsewhere)
    with pytest.raises(paths.PathEscape, match="resolves outside"):
        paths.child(root, "evil")
    assert paths.child(root, "../../x").parent == root


def test_a_genotype_file_path_never_names_the_run_folder(tmp_path: Path) -> None:
    cfg = fixed_config(KNOWN["DARTS_V2"], "../../../TRAV", "s0-digits", "smoke", 0)
    run = Run(cfg, tmp_path / "out")
    assert run.dir.parent == tmp_path / "out" and "TRAV" in run.dir.name and ".." not in run.dir.name
    other = fixed_config(KNOWN["DARTS_V2"], "/abs/dir/geno.json", "s0-digits", "smoke", 0)
    assert Run(other, tmp_path / "out").dir.parent == tmp_path / "out"
    assert other.options["genotype"] == "geno"


def test_eval_of_a_genotype_file_with_a_relative_path_writes_only_inside_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``harness eval --genotype ../../../TRAV`` once wrote its run folder outside ``--out``."""
    from spaces.genotype import to_json

    (tmp_path / "TRAV").write_text(to_json(KNOWN["DARTS_V2"]))
    cwd = tmp_path / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    sets = [a for k, v in TINY_SET.items() if k.startswith("eval_") for a in ("--set", f"{k}={v}")]
    code = main(["eval", "--genotype", "../../../TRAV", "--bench", "s0-digits", "--budget", "smoke", "--out",
                 "out", "--no-progress", "--device", "cpu", *sets])
    assert code == 0, capsys.readouterr()
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files - {tmp_path / "TRAV"} and all((cwd / "out") in p.parents for p in files - {tmp_path / "TRAV"})


def test_a_broken_run_folder_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    """Outside pytest no log handler catches warnings: still exactly one line on stderr."""
    import subprocess
    import sys

    cfg = make_config("rome-v2", "s0-digits", "smoke", 0, None)
    (tmp_path / cfg.run_id / ".lock").mkdir(parents=True)
    (tmp_path / cfg.run_id / "result.json").write_text('{"status": "complete"}')
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and ".lock is a directory, not a regular file" in proc.stderr


def test_check_lists_an_unreadable_paper_result_as_failed(tmp_path: Path) -> None:
    from harness.evidence import check

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text('{"status": "complete"}')
    (tmp_path / "d" / "result.json").mkdir(parents=True)
    rows = check.compare_paper(check.paper_results(tmp_path))
    assert [r.verdict for r in rows] == ["FAIL", "FAIL"]
    assert all(r.notes[0].startswith("unreadable: ") for r in rows)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs (needs root and mount; skipped elsewhere), unmounted afterwards."""
    import shutil
    import subprocess

    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_tmpfs_is_one_line_exit_2_and_the_rerun_resumes(tiny_tmpfs: Path) -> None:
    """The real thing: a 2 MiB ``--out`` filled up to its last 24 kB. The run records its failure
    (or says it cannot) in one line with exit 2, leaves no temporary file, and once space is freed
    the same command completes."""
    import subprocess
    import sys

    filler = tiny_tmpfs / "filler"
    st = os.statvfs(tiny_tmpfs)
    filler.write_bytes(b"\1" * (st.f_bavail * st.f_frsize - 24 * 1024))
    out = tiny_tmpfs / "runs"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "harness.cli", *cli_run(out), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not list(out.rglob("*.tmp"))
    filler.unlink()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert read_result(out / tiny_cfg().run_id / "result.json").complete
