"""``harness status`` and ``harness report`` over a folder of hostile run folders (issue 13, points 1,
5 and 6): exit 0, every bad entry listed as ``unreadable: <reason>``, strings escaped, nothing written
outside ``--out``, no hang on FIFOs."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.runs.read import read_result
from harness.runs.run import Run
from tests.hostile import folders


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    outside = tmp_path / "outside"
    runs = tmp_path / "deep" / "er" / "runs"
    expected = folders.build(runs, outside)
    return runs, expected, outside


@pytest.fixture(autouse=True)
def _no_hang():
    """A FIFO opened for reading blocks forever; fail the test instead of the suite."""
    def alarm(signum, frame):
        raise TimeoutError("hung (a FIFO was opened?)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_there_are_at_least_20_hostile_folders(hostile) -> None:
    runs, expected, _ = hostile
    assert len(expected) + len(folders.ODD_BUT_VALID) + len(folders.BROKEN_UNFINISHED) >= 20
    assert len(expected) >= 20


def test_status_lists_each_bad_entry_with_its_reason(hostile, capsys: pytest.CaptureFixture[str]) -> None:
    runs, expected, _ = hostile
    assert main(["status", "--runs", str(runs)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = {line.split()[1]: line for line in captured.out.splitlines()[1:] if len(line.split()) > 1}
    for name, reason in expected.items():
        assert name in lines, f"{name} missing from status:\n{captured.out}"
        assert lines[name].startswith("unreadable") and "unreadable: " in lines[name], lines[name]
        assert reason in lines[name], lines[name]
    for name in folders.ODD_BUT_VALID:
        assert lines[name].startswith("complete"), lines[name]
    for name in folders.BROKEN_UNFINISHED:
        assert lines[name].startswith("unfinished"), lines[name]
    assert "checkpoint unreadable" in lines["checkpoint_is_dir"] and "checkpoint unreadable" in lines[
        "checkpoint_garbage"]
    assert main(["status", "--runs", str(runs), "--json"]) == 0
    rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n for n, r in rows.items() if r["status"] == "unreadable"} == set(expected)


def test_report_survives_escapes_and_writes_only_inside_out(hostile, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    runs, expected, outside = hostile
    out = tmp_path / "report"
    before = _tree(tmp_path)
    assert main(["report", "--runs", str(runs), "--out", str(out), "--all"]) == 0  # --all: the cell drawings too
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert not outside.exists()  # the run ids '../../../../outside/x' and '/.../outside/abs' wrote nothing
    created = _tree(tmp_path) - before
    assert created and all(p == "report" or p.startswith("report/") for p in created), created
    index = (out / "index.md").read_text()
    for name, reason in expected.items():
        line = next((ln for ln in index.splitlines() if f"/{name}/result.json" in ln), None)
        assert line is not None, f"{name} not listed in index.md"
        assert "unreadable: " in line and reason.replace("[", "\\[") in line, line
    for md in out.rglob("*.md"):
        text = md.read_text()
        assert "<script>" not in text and "<img" not in text, md
        assert not re.search(r"(?<!\\)\]\(javascript:", text), md  # an escaped \] is no link
    # the hostile run id and the '$' op became file names inside report/cells and figures drew
    cells = sorted(p.name for p in (out / "cells").glob("*.png"))
    assert len(cells) == len(folders.ODD_BUT_VALID), cells
    assert all("/" not in c and not c.startswith(".") for c in cells)
    table = (out / "cells.md").read_text()
    rows = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert len({ln.count("|") - ln.count("\\|") for ln in rows}) == 1, rows  # no cell broke the table


def test_a_result_is_trusted_only_when_it_validates(hostile, tmp_path: Path) -> None:
    runs, expected, _ = hostile
    for name in expected:
        read = read_result(runs / name / "result.json")
        assert not read.ok and read.reason
    assert read_result(runs / "dollar_op" / "result.json").complete


def test_a_run_does_not_trust_a_partial_complete_result(tmp_path: Path) -> None:
    """``{"status": "complete"}`` once made the run skip forever; now it is redone (here: its data is
    missing, so it fails and says why)."""
    from harness.spec.runspec import make_config

    cfg = make_config("rome-v2", "s0-c10", "smoke", 0, None)
    d = tmp_path / cfg.run_id
    d.mkdir()
    (d / "result.json").write_text('{"status": "complete"}')
    assert Run(cfg, tmp_path, data_root=str(tmp_path / "none"), device="cpu").existing() is None


@pytest.mark.parametrize("name", ["result.json", ".lock", "log.txt"])
def test_a_run_folder_with_a_directory_in_place_of_a_file_is_one_line_exit_2(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.spec.runspec import make_config

    cfg = make_config("rome-v2", "s0-digits", "smoke", 0, None)
    (tmp_path / cfg.run_id / name).mkdir(parents=True)
    assert main(["run", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory, not a regular file" in err and "Traceback" not in err


def test_status_of_a_fifo_result_does_not_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r").mkdir()
    os.mkfifo(tmp_path / "r" / "result.json")
    assert main(["status", "--runs", str(tmp_path)]) == 0
    assert "unreadable: a FIFO" in capsys.readouterr().out
