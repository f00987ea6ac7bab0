"""`harness check`: passes against baselines made by the same code, fails on a regression; the claims and
the paper comparison on synthetic results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import check
from harness.cli import main
from tests.hostile.folders import valid_result

SUBSET = ["--methods", "gdas", "--benches", "s2-digits", "--jobs", "1"]
KEY = "s2-digits/gdas/seed0"


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(["check", *args])
    except SystemExit as exc:  # a failed check exits 1 like `harness run` with failed runs
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out + out.err


def _edit(src: Path, dst: Path, edit: Any) -> None:
    data = json.loads(src.read_text())
    edit(data["runs"][KEY])
    dst.write_text(json.dumps(data))


@pytest.mark.slow
def test_check_passes_on_same_code_and_fails_on_regression(tmp_path: Path, capsys) -> None:
    baseline, empty = tmp_path / "check.json", str(tmp_path / "no-paper")
    common = [*SUBSET, "--paper-dir", empty]
    code, out = _check(capsys, "--update", "--baseline", str(baseline), "--out", str(tmp_path / "a"), *common)
    assert code == 0, out
    saved = json.loads(baseline.read_text())
    assert set(saved["runs"]) == {KEY} and saved["runs"][KEY]["status"] == "complete"
    assert {"genotype", "test_error", "parameterless_normal"} <= set(saved["runs"][KEY])

    # a fresh rerun of the same code reproduces the baseline exactly (CPU, one thread)
    runs = str(tmp_path / "b")
    code, out = _check(capsys, "--strict", "--baseline", str(baseline), "--out", runs, *common)
    assert code == 0, out
    assert "check passed" in out

    shifted = tmp_path / "shifted.json"
    _edit(baseline, shifted, lambda r: r.update(test_error=r["test_error"] + 10))
    code, out = _check(capsys, "--baseline", str(shifted), "--out", runs, *common)  # runs in --out are reused
    assert code == 1
    assert "check FAILED" in out and f"{KEY}: test error" in out

    def flip_first_op(r: dict[str, Any]) -> None:
        op = r["genotype"]["normal"][0]
        op[0] = "sep_conv_3x3" if op[0] == "skip_connect" else "skip_connect"

    other = tmp_path / "genotype.json"
    _edit(baseline, other, flip_first_op)
    code, out = _check(capsys, "--baseline", str(other), "--out", runs, *common)
    assert code == 0 and "genotype differs" in out  # a warning by default ...
    code, out = _check(capsys, "--strict", "--baseline", str(other), "--out", runs, *common)
    assert code == 1 and "genotype differs" in out  # ... a failure with --strict

    fewer = tmp_path / "num.json"
    _edit(baseline, fewer, lambda r: r.update(parameterless_normal=r["parameterless_normal"] + 2))
    code, out = _check(capsys, "--baseline", str(fewer), "--out", runs, *common)
    assert code == 1 and "parameterless ops" in out


def test_check_rejects_names_outside_the_suite(capsys) -> None:
    code, out = _check(capsys, "--methods", "snas", "--paper-only")
    assert code == 2 and "not a method of the check suite" in out


def test_packaged_baseline_covers_the_suite() -> None:
    data = check.load_baseline(check.CHECK_BASELINE)
    expected = {check.run_key(c.method, c.bench, c.seed) for c in check.suite_configs()}
    assert set(data["runs"]) == expected
    for run in data["runs"].values():
        assert run["status"] == "complete"
        assert 0 <= run["test_error"] <= 100 and 0 <= run["parameterless_normal"] <= 8
        assert len(run["genotype"]["normal"]) == len(run["genotype"]["reduce"]) == 8
    assert data["suite"]["budget"] == "check" and data["claims"]["all-complete"]["holds"]


# -- claims -------------------------------------------------------------------------------------------

def _run(method: str, bench: str, num: int, normal: list[list[Any]] | None = None) -> dict[str, Any]:
    cell = normal or [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4
    return {"method": method, "bench": bench, "seed": 0, "status": "complete", "test_error": 10.0,
            "parameterless_normal": num, "genotype": {"normal": cell, "reduce": cell}}


def _runs(rome_num: int, gdas_num: int) -> dict[str, dict[str, Any]]:
    rows = [_run(m, b, n) for b in ("s2-digits", "s3-digits") for m, n in (("rome-v2", rome_num), ("gdas", gdas_num))]
    return {check.run_key(r["method"], r["bench"], 0): r for r in rows}


def _claim_row(rows: list[check.Row], name: str) -> check.Row:
    return next(r for r in rows if r.subject.startswith(name + ":"))


def test_claim_regresses_only_if_it_held_in_the_baseline() -> None:
    held = check.evaluate_claims(_runs(2, 5))
    broken = check.evaluate_claims(_runs(5, 2))
    assert held["rome-v2-num-le-gdas"]["holds"] and not broken["rome-v2-num-le-gdas"]["holds"]
    assert "rome-v1-num-le-gdas" not in held  # its runs are not there: not evaluated
    assert _claim_row(check.compare_claims(broken, held, strict=False), "rome-v2-num-le-gdas").verdict == "FAIL"
    assert _claim_row(check.compare_claims(broken, broken, strict=False), "rome-v2-num-le-gdas").verdict == "warn"
    assert _claim_row(check.compare_claims(broken, broken, strict=True), "rome-v2-num-le-gdas").verdict == "FAIL"
    assert _claim_row(check.compare_claims(held, broken, strict=True), "rome-v2-num-le-gdas").verdict == "ok"


def test_td_claim_catches_a_node_with_one_input_twice() -> None:
    twice = [["sep_conv_3x3", 0], ["skip_connect", 0]] + [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 3
    runs = {"a": _run("rome-v2", "s3-digits", 1, twice), "b": _run("gdas", "s3-digits", 1, twice)}
    claims = check.evaluate_claims(runs)
    assert not claims["td-cells"]["holds"] and "s3-digits/rome-v2 normal" in claims["td-cells"]["detail"]
    runs["a"] = _run("rome-v2", "s3-digits", 1)
    assert check.evaluate_claims(runs)["td-cells"]["holds"]  # GDAS may take one input twice


# -- paper-budget results -------------------------------------------------------------------------------

def _paper_result(folder: Path, method: str, bench: str, seed: int, error: float, num: int,
                  options: dict[str, Any] | None = None, budget: str = "paper") -> None:
    run_id = f"{bench}_{method}_{budget}_s{seed}_{len(list(folder.glob('*')))}"
    base = valid_result(run_id)  # schema-valid: check trusts nothing else (tests/hostile/)
    history = [{**base["search"]["history"][0], "epoch": 49, "parameterless_normal": num}]
    result = {**base, "method": method, "bench": bench, "budget": budget, "seed": seed,
              "options": options or {}, "status": "complete", "eval": {**base["eval"], "test_error": error},
              "search": {"history": history}}
    (folder / run_id).mkdir(parents=True)
    (folder / run_id / "result.json").write_text(json.dumps(result))


def test_paper_results_are_compared_within_the_published_std(tmp_path: Path, capsys) -> None:
    paper = tmp_path / "paper"
    paper.mkdir()
    _paper_result(paper, "rome-v2", "s2-c10", 0, 3.05, 2)  # Table 1: 3.14 +- 0.14, num 2.0 +- 0.0
    _paper_result(paper, "rome-v2", "s2-c10", 1, 3.21, 2)
    _paper_result(paper, "rome-v2", "s3-c10", 0, 2.69, 2)  # 2.61 +- 0.00: within the 0.1 rounding floor
    rows = check.compare_paper(check.paper_results(paper))
    assert [r.verdict for r in rows] == ["ok", "ok"], rows
    assert "n=2" in rows[0].subject and "err 3.13" in rows[0].got

    code, out = _check(capsys, "--paper-only", "--paper-dir", str(paper))
    assert code == 0 and "check passed" in out

    _paper_result(paper, "gdas", "s2-svhn", 0, 3.06, 5)  # error fine (3.05 +- 0.02), num 5 vs 7.8 +- 0.4
    _paper_result(paper, "rome-v2", "s0-c10", 0, 2.70, 2, {"td": False, "ga_alpha": False})  # Table 6: 3.02 +- 0.05
    code, out = _check(capsys, "--paper-only", "--paper-dir", str(paper))
    assert code == 1
    assert "parameterless ops 5.0 outside 7.8 +- 0.5" in out
    assert "test error 2.70 outside 3.02 +- 0.10" in out


def test_paper_comparison_skips_what_it_cannot_compare(tmp_path: Path) -> None:
    paper = tmp_path / "paper"
    paper.mkdir()
    _paper_result(paper, "gdas", "s0-imagenet", 0, 25.0, 0)  # Table 4 publishes no std
    _paper_result(paper, "rome-v2", "s2-c10", 0, 9.9, 2, budget="smoke")
    rows = check.compare_paper(check.paper_results(paper))
    assert sorted(r.verdict for r in rows) == ["warn", "warn"]
    assert check.compare_paper(check.paper_results(tmp_path / "missing")) == []


def test_published_table_has_the_papers_headline_numbers() -> None:
    assert check.PUBLISHED[("rome-v2", "s0-c10", ())].error == 2.58  # Table 2
    assert check.PUBLISHED[("rome-v1", "s0-c100", ())].error == 17.41  # Table 3
    assert check.PUBLISHED[("gdas", "s3-svhn", ())].num == 7.5  # Table 1
    assert check.PUBLISHED[("rome-v2", "s0-c10", (("k", 1),))].error == pytest.approx(2.88)  # Table 5
    no_td_no_ga = (("ga_alpha", False), ("ga_theta", False), ("td", False))
    assert check.PUBLISHED[("rome-v2", "s0-c10", no_td_no_ga)].error == pytest.approx(3.48)  # Table 6, = GDAS
