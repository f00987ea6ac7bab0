"""Bad command lines: one line on stderr starting with ``error:``, exit code 2, no traceback.

The table runs through ``harness.cli.main.main`` in this process (a fresh interpreter per row would cost
seconds each on the CI machine); two rows also run as real ``python -m harness.cli`` processes, so
that what reaches the terminal (import-time warnings included) is checked too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Paths the table refers to as ``{name}``."""
    good_cell = [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4
    bad = {
        "not_json": "{normal: oops",
        "not_object": json.dumps([1, 2, 3]),
        "no_reduce": json.dumps({"normal": good_cell}),
        "bad_input": json.dumps({"normal": [["sep_conv_3x3", 7], ["sep_conv_3x3", 1]], "reduce": good_cell}),
        "unknown_op": json.dumps({"normal": [["warp_conv_9x9", 0], ["sep_conv_3x3", 1]] * 4, "reduce": good_cell}),
        "empty_cells": json.dumps({"normal": [], "reduce": []}),
        "bad_concat": json.dumps({"normal": good_cell, "normal_concat": [9], "reduce": good_cell}),
    }
    out = {}
    for name, text in bad.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        out[name] = str(path)
    (tmp_path / "a_file").write_text("")
    out["under_a_file"] = str(tmp_path / "a_file" / "runs")  # an output folder that cannot be created
    out["out"] = str(tmp_path / "runs")
    out["missing"] = str(tmp_path / "missing")
    return out


# (command line, a fragment the message must contain); {name} is replaced from `files`
BAD = [
    ("run --method nas-magic", "unknown method 'nas-magic'"),
    ("run --method darts --k 3", "has no option 'k'"),
    ("run --bench s9-c10", "unknown benchmark 's9-c10'"),
    ("run --bench s0-mnist", "unknown benchmark"),
    ("run --budget huge", "unknown budget 'huge'"),
    ("run --k 0", "K must be"),
    ("run --epochs 0", "search.epochs=0: must be > 0"),
    ("run --set eval_epochs=0", "eval.epochs=0: must be > 0"),
    ("run --set eval_epochs=two", "eval.epochs='two': takes a int"),
    ("run --set warp=9", "unknown name 'warp'; valid: search.epochs"),
    ("run --seed -1", "seed must be >= 0"),
    ("run --seeds 0,x", "comma-separated integers"),
    ("run --k three", "'three' is not a valid integer"),
    ("run --bench s0-c10 --data-root {missing}", "dataset 'c10' not found"),
    ("run --bench s1-svhn", "dataset 'svhn' not found"),
    ("run --out {under_a_file}", "is not writable"),
    ("run --device tpu9", "device 'tpu9'"),
    ("run --device cuda:64", "--device cuda:64"),
    ("run --executor ray", "unknown executor 'ray'; valid: local, slurm"),
    ("run --workers 0", "--workers must be >= 1"),
    ("run --time-min 0", "--time-min must be >= 1"),
    ("run --mem-gb -2", "--mem-gb must be > 0"),
    ("run --gpus -1", "--gpus must be >= 0"),
    ("run --no-such-option", "No such option"),
    ("frobnicate", "No such command"),
    ("eval --genotype NOT_A_GENOTYPE --count-only", "unknown genotype 'NOT_A_GENOTYPE'"),
    ("eval --genotype {not_json} --count-only", "is not valid JSON"),
    ("eval --genotype {not_object} --count-only", "must hold a JSON object"),
    ("eval --genotype {no_reduce} --count-only", "needs 'normal' and 'reduce'"),
    ("eval --genotype {bad_input} --count-only", "not a predecessor"),
    ("eval --genotype {unknown_op} --count-only", "unknown op(s) warp_conv_9x9"),
    ("eval --genotype {empty_cells} --count-only", "has no node"),
    ("eval --genotype {bad_concat} --count-only", "concat [9]"),
    ("eval --genotype DARTS_V2 --bench s0-nope --count-only", "unknown benchmark"),
    ("eval --genotype DARTS_V2 --budget huge --count-only", "unknown budget"),
    ("eval", "Missing option '--genotype'"),
    ("describe --space s9", "s9"),
    ("status --runs {missing}", "does not exist"),
]


@pytest.mark.parametrize(("line", "fragment"), BAD, ids=[b[0].split(" {")[0] for b in BAD])
def test_bad_input_is_one_line_and_exit_code_2(line: str, fragment: str, files: dict[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**files) for a in line.split()]
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", files["out"]]  # a run that got through would write here, not into the checkout
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert fragment in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not Path(files["out"]).exists() or not any(Path(files["out"]).iterdir())


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_slurm_executor_without_slurm(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--executor", "slurm", "--out", files["out"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs Slurm's sbatch" in err


@pytest.mark.parametrize("line", ["run --method nas-magic", "eval --genotype {unknown_op} --count-only"])
def test_bad_input_in_a_real_process(line: str, files: dict[str, str], tmp_path: Path) -> None:
    argv = [a.format(**files) for a in line.split()]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
