"""Issue 18's attack list, the readers' and reports' rows: each reproduced first, then fixed.

* A run folder copied within ``--runs`` counted twice in ``status`` and ``report`` (n = 3 for 2 seeds).
* More than 10 method names raised ``KeyError`` in the benchmarks figure (a 10-colour palette).
* ``report --claims --out <a path below a regular file>`` ended in a traceback.
* ``report --out`` equal to or inside ``--runs`` wrote the report among the runs.
* Scale: every run's cell drawing was made and embedded in ``index.html`` (1,000 runs: 734 s, 241 MB);
  drawings of single runs are now made only when named. The timings are in
  ``benchmarks/test_bench_reports.py`` (no timed assertion here).

The run folders are SYNTHETIC (:mod:`tests.report_runs`: schema-valid results with real resolved specs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main
from reports import html
from tests.report_runs import result_for, sweep, write_run


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_error(capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and fragment in err, err
    assert "Traceback" not in captured.out + captured.err


@pytest.fixture
def two_seeds(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs, result_for("gdas", "s2-digits", "check", seed))
    return runs


@pytest.mark.parametrize("where", ["sibling", "subfolder"])
def test_a_copied_run_folder_counts_once(two_seeds: Path, tmp_path: Path, where: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    original = sorted(two_seeds.iterdir())[0]
    copy = two_seeds / f"{original.name}.bak" if where == "sibling" else two_seeds / "old" / original.name
    shutil.copytree(original, copy)
    assert main(["status", "--runs", str(two_seeds), "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    if where == "sibling":  # status reads one level deep: only the sibling copy is a run folder to it
        assert len(rows) == 2 and {r["dir"] for r in rows} == {str(d) for d in two_seeds.iterdir()
                                                              if d.name != "old" and not d.name.endswith(".bak")}
        assert f"{copy}: run {original.name} again (a copy of {original})" in captured.err
    else:
        assert len(rows) == 2
    out = tmp_path / "report"
    assert main(["report", "--runs", str(two_seeds), "--out", str(out), "--collapse"]) == 0
    captured = capsys.readouterr()
    assert f"{copy}: run {original.name} again (a copy of {original}); counted once" in captured.err
    index = (out / "index.md").read_text()
    assert ": 2 runs (2 complete)" in index and "counted once" in index
    assert set(pd.read_csv(out / "collapse.csv")["n"]) == {2}  # two seeds, not three


def test_more_than_ten_method_names_get_a_palette(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    base = result_for("gdas", "s2-digits", "check", 0)
    for i in range(12):  # method names this version does not know: read, labelled, drawn
        write_run(runs, {**base, "method": f"method-{i:02d}", "run_id": f"run-{i:02d}"})
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--benchmarks", "--collapse"]) == 0
    assert (out / "benchmarks.png").stat().st_size > 0 and (out / "collapse_s2-digits_check.png").stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err
    from reports.common import palette

    colours = palette([f"m{i}" for i in range(25)])
    assert len(set(colours.values())) == 25


@pytest.mark.parametrize("flags", [["--claims"], [], ["--claims", "--benchmarks"]])
def test_out_below_a_regular_file_is_one_line(two_seeds: Path, tmp_path: Path, flags: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    before = _tree(tmp_path)
    assert main(["report", "--runs", str(two_seeds), "--out", str(tmp_path / "a_file" / "report"), *flags]) == 2
    _one_line_error(capsys, "a_file is not a folder")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("inside", [".", "report", "deeper/report"])
def test_out_equal_to_or_inside_runs_is_one_line(two_seeds: Path, inside: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(two_seeds)
    assert main(["report", "--runs", str(two_seeds), "--out", str(two_seeds / inside), "--claims"]) == 2
    _one_line_error(capsys, "inside the runs folder")
    assert _tree(two_seeds) == before


def test_out_empty_is_one_line(two_seeds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--runs", str(two_seeds), "--out", ""]) == 2
    _one_line_error(capsys, "--out is empty")


def test_drawings_of_single_runs_only_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A default report over 60 runs draws no run (the page holds a few section figures); ``--cells``
    draws each complete run, and the page embeds at most ``MAX_EMBEDDED`` of them, linking the rest."""
    runs = tmp_path / "runs"
    sweep(runs, 60)
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--out", str(out)]) == 0
    assert not (out / "cells").exists() and not (out / "weights.md").exists()
    page = (out / "index.html").read_text()
    assert page.count("data:image/png") == len(list(out.glob("*.png"))) < 15
    monkeypatch.setattr(html, "MAX_EMBEDDED", 2)
    few = tmp_path / "few"
    for r in sorted(runs.iterdir())[:4]:
        shutil.copytree(r, few / r.name)
    out = tmp_path / "cells"
    assert main(["report", "--runs", str(few), "--out", str(out), "--cells"]) == 0
    drawn = sorted((out / "cells").glob("*.png"))
    page = (out / "index.html").read_text()
    assert len(drawn) == 4 and page.count("data:image/png") == 2
    assert "2 more drawings of single runs are linked" in page and f'href="cells/{drawn[-1].name}"' in page


@pytest.mark.parametrize("cell", [
    {"ops": [[0.5, 1.5]]}, {"ops": [[0.5, "x"]]}, {"ops": [[True, 0.5]]}, {"ops": [0.5]}, {"ops": "x"},
    {"edges": [0.1]}, {"ops": [[0.5, 0.5]], "edges": [-1.0]}, {"ops": [[0.5, 0.5]], "edges": "x"}, [0.5],
])
def test_recorded_weights_are_still_checked(tmp_path: Path, cell: object) -> None:
    """``status`` no longer walks the weights through jsonschema (85 % of its time); the plain loop that
    replaced it refuses what the schema refuses (``harness.runs.layout.ARCH_WEIGHTS``)."""
    from harness.runs.read import read_result

    good = result_for("rome-v2", "s2-digits", "check", 0)
    assert read_result(write_run(tmp_path, good) / "result.json").ok
    good["search"]["history"][1]["arch_weights"]["normal"] = cell
    read = read_result(write_run(tmp_path, good, "bad") / "result.json")
    assert not read.ok and read.reason.startswith("schema: search/history/1/arch_weights/normal"), read.reason
