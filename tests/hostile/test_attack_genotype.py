"""Genotype files from outside (issue 18): a size bound, and the parameter rule that counts a cell's
preprocessing.

* ``harness eval --count-only`` on a genotype file with 50,000 nodes hung building the network: files
  are bounded (nodes per cell, concatenated nodes, op-name length, bytes), refused with one line,
  exit 2, before anything is built.
* A normal cell of only skip-connections (with DARTS_V2's reduction cell, itself all pooling and
  skips) was refused as "no op with parameters", though every cell trains through its preprocessing
  convolutions; the committed collapsed cell must build and count.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import harness.cli.main
import harness.runs.run
from harness.cli.main import main
from harness.evidence.check import BASELINES
from spaces import genotype as G
from spaces.genotype import KNOWN, MAX_FILE_BYTES, MAX_NODES, from_dict, load

ALL_SKIP = BASELINES / "genotypes" / "all_skip_normal.json"


@pytest.fixture(autouse=True)
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """No line here may search or train: a line that slips through validation fails the test."""

    def fail(*args, **kwargs):
        raise AssertionError("validation let a bad genotype file start work")

    monkeypatch.setattr(harness.cli.main, "run_many", fail)
    monkeypatch.setattr(harness.runs.run.Run, "execute", fail)


def _bad(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def _cell(nodes: int) -> list[list]:
    return [pair for n in range(nodes) for pair in (["skip_connect", n], ["sep_conv_3x3", n + 1])]


def test_a_50000_node_genotype_is_one_line_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"normal": _cell(50_000), "reduce": _cell(4)}))
    start = time.perf_counter()
    _bad(["eval", "--genotype", str(path), "--count-only"], "100000 [op, input] pairs (50000 nodes)", capsys)
    assert time.perf_counter() - start < 10.0  # milliseconds of work; a loaded CI machine


@pytest.mark.parametrize(("cells", "fragment"), [
    ({"normal": _cell(4), "reduce": _cell(MAX_NODES + 1)}, f"valid: at most {MAX_NODES} nodes"),
    ({"normal": _cell(4), "reduce": _cell(4), "normal_concat": list(range(2, 2 + 10_000))},
     f"names 10000 nodes; valid: at most {MAX_NODES}"),
    ({"normal": [["x" * 100_000, 0], *_cell(4)[1:]], "reduce": _cell(4)}, "an op name of 100000 characters"),
    ({"normal": [], "reduce": _cell(4)}, "has no node"),
])
def test_genotype_bounds(cells: dict, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(cells))
    _bad(["eval", "--genotype", str(path), "--count-only"], fragment, capsys)


def test_a_file_over_the_byte_bound_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"normal": _cell(4), "reduce": _cell(4)}) + " " * 2000)
    monkeypatch.setattr(G, "MAX_FILE_BYTES", 1000)  # the real bound (64 MiB) would take a large test file
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("the file was read"))
    _bad(["eval", "--genotype", str(path), "--count-only"], "bytes; valid: at most 1000", capsys)
    assert MAX_FILE_BYTES >= 16 * 2**20  # a result.json holding a genotype still loads


def test_the_largest_valid_cell_loads(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"normal": _cell(MAX_NODES), "reduce": _cell(4)}))
    assert len(load(path).normal) == 2 * MAX_NODES


def test_the_committed_all_skip_genotype_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """The collapsed cell (ROME Fig. 2) evaluates: it has parameters in its preprocessing only."""
    data = json.loads(ALL_SKIP.read_text())
    assert {op for op, _ in data["normal"]} == {"skip_connect"}
    assert {op for op, _ in data["reduce"]} <= G.PARAMETERLESS  # DARTS_V2's reduction cell
    assert data["reduce"] == [list(p) for p in KNOWN["DARTS_V2"].reduce]
    code = main(["eval", "--genotype", str(ALL_SKIP), "--bench", "s2-digits", "--budget", "cpu", "--count-only",
                 "--json"])
    assert code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["params"] > 0


def test_a_genotype_of_only_parameterless_ops_is_valid() -> None:
    """Both cells parameterless (pooling, skips): still valid, the preprocessing trains."""
    g = from_dict({"normal": [["skip_connect", 0], ["max_pool_3x3", 1]] * 4,
                   "reduce": [["avg_pool_3x3", 0], ["skip_connect", 1]] * 4})
    G.check_file_genotype(g)
