"""`harness reproduce`: the dry run lists the claims' declared runs (each once) and an estimate, --only
filters, bad input is one line and exit 2 before any folder exists, and a sweep (executor mocked with
synthetic results) ends in the claims report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.cli.reproduce import SECONDS, estimate_s, plan
from harness.evidence import claims
from tests.report_runs import result_for, write_run


def dry(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["reproduce", "--out", "unused", "--dry-run", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_dry_run_lists_every_declared_run_once(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = dry(capsys, "--budget", "cpu")
    ids = [r["run_id"] for r in plan["run_list"]]
    assert len(ids) == len(set(ids)) == plan["runs"]
    expected = {s.run_id for c in claims.CLAIMS.values() for n in c.needs for s in n.configs("cpu", c.seeds)}
    assert set(ids) == expected
    assert plan["estimated_s"] > 0 and len(plan["profiles"]) == 3  # rome-v2, gdas, darts: one profile each
    shared = next(r for r in plan["run_list"] if r["method"] == "rome-v2" and r["bench"] == "s0-digits"
                  and r["options"] == claims.CLAIMS["s0-better-than-gdas"].needs[0].configs("cpu", [0])[0].options)
    assert {"s0-better-than-gdas", "ablation-td", "rome-skip-flat"} <= set(shared["claims"])  # one run, many claims
    assert not (tmp_path / "unused").exists()


def test_only_filters(capsys: pytest.CaptureFixture[str]) -> None:
    plan = dry(capsys, "--only", "rome-below-gdas-s2", "--seeds", "0,1")
    assert sorted((r["method"], r["seed"]) for r in plan["run_list"]) == [("gdas", 0), ("gdas", 1), ("rome-v2", 0),
                                                                          ("rome-v2", 1)]
    assert plan["profiles"] == []
    two = dry(capsys, "--only", "rome-below-gdas-s2,rome-error-better-s2")
    assert two["runs"] == 14  # the same runs serve both claims: seeds 0-6 of the count test, 0-4 of Welch's


def test_dry_run_estimates_only_what_is_not_complete(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["reproduce", "--out", str(tmp_path), "--dry-run", "--only", "rome-below-gdas-s2", "--seeds", "0,1"]
    assert main(args) == 0
    before = json.loads(capsys.readouterr().out)
    first = before["run_list"][0]
    write_run(tmp_path / "runs", result_for(first["method"], first["bench"], "cpu", first["seed"],
                                            options=first["options"]))
    assert main(args) == 0
    after = json.loads(capsys.readouterr().out)
    assert (before["complete"], after["complete"]) == (0, 1)
    assert after["estimated_s"] < before["estimated_s"] and "for the 3 runs not complete" in after["estimate"]


def test_estimate_takes_measured_times_first() -> None:
    """A run's estimate is the median of the complete runs of its spec, else of its method and benchmark,
    else the table; never the table where a measurement exists."""
    specs, _, _ = plan("cpu", ["rome-below-gdas-s2"], (0, 1, 2))
    rome = [s for s in specs if s.method == "rome-v2"]
    gdas = [s for s in specs if s.method == "gdas"]
    done = {s.run_id: {"method": s.method, "bench": s.bench, "options": s.options, "timings": {"total_s": t}}
            for s, t in zip(rome[:2], (1000.0, 1200.0), strict=True)}
    assert estimate_s(rome[2:], [], "cpu", 1, done) == 1100.0  # the same spec: median of 1000 and 1200
    assert estimate_s(gdas, [], "cpu", 1, done) == 3 * SECONDS["gdas"]  # nothing measured for GDAS
    other = {"x": {"method": "rome-v2", "bench": "s2-digits", "options": {"k": 9}, "timings": {"total_s": 50.0}}}
    assert estimate_s(rome[2:], [], "cpu", 2, other) == 25.0  # same method and benchmark, 2 workers
    assert estimate_s(rome[2:], [], "cpu", 1, {}) == SECONDS["rome-v2"]


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "no-such-claim"], "unknown claim(s) no-such-claim"),
    (["--budget", "huge"], "unknown --budget 'huge'"),
    (["--workers", "0"], "--workers"),
    (["--seeds", "0,x"], "--seeds"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    assert main(["reproduce", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_sweep_then_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """The executor is mocked: each spec becomes a synthetic complete result (tests/report_runs.py)."""
    calls: list[int] = []

    def fake_run_many(specs: list[Any], out: Path, **_: Any) -> list[dict[str, Any]]:
        calls.append(len(specs))
        results = []
        for s in specs:
            r = result_for(s.method, s.bench, s.budget, s.seed, options=s.options)
            assert r["run_id"] == s.run_id
            write_run(out, r)
            results.append(r)
        return results

    monkeypatch.setattr("harness.cli.reproduce.run_many", fake_run_many)
    out = tmp_path / "sweep"
    args = ["reproduce", "--budget", "check", "--out", str(out), "--only", "rome-below-gdas-s2,rome-error-better-s2",
            "--seeds", "0,1,2"]
    assert main(args) == 0
    assert calls == [6]
    md = (out / "report" / "claims.md").read_text()
    assert "rome-below-gdas-s2" in md and "rome-error-better-s2" in md and "p (Holm)" in md
    assert "gdas-collapses-s3" not in md  # --only: the report shows the claims asked for
    assert {p.name for p in (out / "report").iterdir()} >= {"claims.csv", "claims.tex", "claims.html", "index.md"}
    assert len(list((out / "runs").iterdir())) == 6
