"""harness.evidence.stats (Welch, permutation, bootstrap, Student-t), the claims over seeds and the collapse
report's search accuracy panel, on synthetic per-seed values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats as sps

from harness.evidence import claims, stats
from tests.hostile.folders import valid_result


def test_welch_matches_scipy_and_orients_the_effect() -> None:
    a, b = [5.0, 6.0, 7.0, 6.5, 5.5], [3.0, 4.0, 3.5, 2.5, 4.5]
    t = stats.welch(a, b, alternative="greater")
    assert t.effect == pytest.approx(2.5)
    assert t.p == pytest.approx(sps.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    assert t.low < t.effect and t.high == float("inf")
    two = stats.welch(a, b)
    assert two.low < 2.5 < two.high and two.p == pytest.approx(2 * t.p)
    assert stats.welch(b, a, alternative="greater").p > 0.5


def test_no_spread_is_exact() -> None:
    assert stats.welch([3, 3, 3], [3, 3]).p == 1.0
    assert stats.welch([4, 4, 4], [3, 3], alternative="greater").p == 0.0
    assert stats.welch([4, 4, 4], [3, 3], alternative="less").p == 1.0


def test_permutation_bootstrap_and_t_interval() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]
    perm = stats.permutation(a, b, alternative="less")
    assert perm.p == pytest.approx(1 / 70)  # exact: 1 of C(8, 4) splits is as extreme
    assert perm.low <= perm.effect == -4.0 <= perm.high
    mean, lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and (lo, hi) == pytest.approx(sps.t.interval(0.95, 2, loc=2.0, scale=sps.sem([1, 2, 3])))
    boot = stats.bootstrap_mean([1.0, 2.0, 3.0, 4.0, 10.0])
    assert boot.low < 4.0 < boot.high
    r = stats.ratio_of_means([2.0, 2.2, 1.8], [4.0, 4.4, 3.6])
    assert r.effect == pytest.approx(0.5) and r.low <= 0.5 <= r.high
    one = stats.one_sample([5.0, 6.0, 7.0], 4.0, alternative="greater")
    assert one.effect == pytest.approx(2.0) and one.p < 0.05 and one.low < 2.0


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least 2 finite values"):
        stats.welch([1.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="unknown alternative"):
        stats.welch([1.0, 2.0], [2.0, 3.0], alternative="bigger")


# -- claims ------------------------------------------------------------------------------------------------

def _row(method: str, bench: str, seed: int, num: int, acc: float, err: float, normal: Any = None) -> dict:
    cell = normal or [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4
    return {"run_id": f"{bench}_{method}_{seed}", "method": method, "bench": bench, "budget": "cpu", "seed": seed,
            "status": "complete", "parameterless_normal": num, "search_val_acc": acc, "test_error": err,
            "genotype": {"normal": cell, "reduce": cell}, "options": {}}


def _frame(gdas_num: list[int], rome_num: list[int]) -> pd.DataFrame:
    rows = [_row("gdas", "s3-digits", s, n, 40.0 + s, 15.0) for s, n in enumerate(gdas_num)]
    rows += [_row("rome-v2", "s3-digits", s, n, 90.0 + s, 14.0 + s) for s, n in enumerate(rome_num)]
    return pd.DataFrame(rows)


def _by_name(outcomes: list[claims.Outcome]) -> dict[str, claims.Outcome]:
    return {o.claim: o for o in outcomes}


def test_claims_hold_and_fail_with_their_numbers() -> None:
    names = ["gdas-collapses-s3", "rome-below-gdas-s3", "rome-error-not-worse-s3"]
    held = _by_name(claims.evaluate(_frame([6, 7, 6, 7, 8], [2, 3, 2, 3, 2]), "cpu", names))
    assert held["gdas-collapses-s3"].holds and held["rome-below-gdas-s3"].holds, held
    assert held["rome-below-gdas-s3"].effect == pytest.approx(2.4 - 6.8) and held["rome-below-gdas-s3"].p < 0.01
    assert held["rome-below-gdas-s3"].seeds == "rome-v2: 0,1,2,3,4; gdas: 0,1,2,3,4"
    assert not held["rome-error-not-worse-s3"].holds  # ROME 16 vs GDAS 15 (+-1.6): not shown within 1 point
    not_held = _by_name(claims.evaluate(_frame([3, 3, 4, 3, 5], [5, 5, 6, 4, 5]), "cpu", names))
    assert not not_held["gdas-collapses-s3"].holds and not not_held["rome-below-gdas-s3"].holds
    assert not_held["rome-below-gdas-s3"].effect > 0  # reported with its numbers
    other = _by_name(claims.evaluate(_frame([6, 7], [2, 3]), "paper", names))  # runs of another budget
    assert all(o.holds is None and o.detail.startswith("not evaluated: no complete runs") for o in other.values())


def test_new_tests_match_their_definitions() -> None:
    t = stats.noninferiority([10.0, 10.2, 9.8], [10.0, 10.1, 9.9], 1.0)
    shifted = sps.ttest_ind([10.0, 10.2, 9.8], [11.0, 11.1, 10.9], equal_var=False, alternative="less")
    assert t.p == pytest.approx(shifted.pvalue) and t.effect == pytest.approx(0.0) and t.high < 1.0
    with pytest.raises(ValueError, match="margin"):
        stats.noninferiority([1.0, 2.0], [1.0, 2.0], 0.0)
    assert stats.sign_flip([1.0, 2.0, 3.0, 4.0], alternative="greater").p == pytest.approx(1 / 16)
    fair = [0.25, 0.5, 0.25]  # two fair coins; two seeds with 2 heads each: 4 of 4, p = 1/16
    assert stats.sum_vs_pmf([2, 2], fair).p == pytest.approx(1 / 16)
    assert stats.sum_vs_pmf([0, 0], fair, alternative="less").p == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="counts"):
        stats.sum_vs_pmf([3], fair)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.trend([1, 1, 2, 2, 3, 3], [5, 6, 4, 4, 2, 1], alternative="less").p < 0.05
    s = stats.stratified([([1.0, 2.0], [3.0, 4.0])], alternative="less")
    assert s.effect == -2.0 and s.p == pytest.approx(1 / 6, abs=0.02)  # 1 of C(4, 2) splits


def test_healthy_versus_collapsed_cell() -> None:
    from spaces.genotype import KNOWN, to_dict

    healthy = to_dict(KNOWN["DARTS_V2"])
    collapsed = {**healthy, "normal": claims.ALL_SKIP_NORMAL}
    rows = [{**_row("fixed", "s2-digits", s, 0, 0.0, e), "genotype": g}
            for g, errs in ((healthy, [9.0, 10.0, 11.0]), (collapsed, [16.0, 17.0, 18.0]))
            for s, e in enumerate(errs)]
    out = _by_name(claims.evaluate(pd.DataFrame(rows), "cpu", ["healthy-cell-beats-collapsed"]))
    # effect: healthy minus collapsed test error
    assert out["healthy-cell-beats-collapsed"].holds and out["healthy-cell-beats-collapsed"].effect == -7.0


def test_report_claims_writes_markdown_and_csv(tmp_path: Path) -> None:
    from harness.cli.main import main

    runs = tmp_path / "runs"
    for r in _frame([6, 7, 6, 7, 8], [2, 3, 2, 3, 2]).to_dict("records"):
        d = runs / r["run_id"]
        d.mkdir(parents=True)
        base = valid_result(r["run_id"])  # schema-valid: reports trust nothing else (tests/hostile/)
        result = {**base, **{k: r[k] for k in ("run_id", "method", "bench", "budget", "seed", "status", "genotype",
                                               "options")},
                  "eval": {**base["eval"], "test_error": r["test_error"]},
                  "search": {"history": [{**base["search"]["history"][0],
                                          "parameterless_normal": r["parameterless_normal"],
                                          "val_acc": r["search_val_acc"]}]}}
        (d / "result.json").write_text(json.dumps(result))
    code = main(["report", "--runs", str(runs), "--out", str(tmp_path / "out"), "--claims"])
    assert code in (0, None)
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "rome-below-gdas-s3" in md and "exact permutation, one-sided" in md and "p (Holm)" in md
    assert "not evaluated: no complete runs of rome-v2 on s1-digits" in md  # a claim without runs keeps its row
    csv = pd.read_csv(tmp_path / "out" / "claims.csv")
    assert bool(csv.set_index("claim").loc["rome-below-gdas-s3", "holds"])
    assert (tmp_path / "out" / "claims.tex").read_text().count("\\toprule") == 1
    assert "<table>" in (tmp_path / "out" / "claims.html").read_text()


def test_committed_all_skip_genotype_is_the_collapsed_cell() -> None:
    data = json.loads((Path(claims.__file__).parent / "baselines" / "genotypes" / "all_skip_normal.json").read_text())
    assert data["normal"] == claims.ALL_SKIP_NORMAL


def test_readme_shows_the_committed_claims_table(tmp_path: Path) -> None:
    """The README's headline table is :func:`reports.claims.headline` of the committed suite's claims.csv,
    row for row: a rerun report that changes a verdict makes this fail until the README follows."""
    from reports.claims import headline

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme[readme.index("<!-- headline-claims -->"):readme.index("<!-- /headline-claims -->")]
    csv = root / "docs" / "reproduce-cpu" / "report" / "claims.csv"
    assert headline(csv) in block
    flipped = pd.read_csv(csv)
    flipped.loc[flipped["holds"].eq(True).idxmax(), "holds"] = False
    flipped.to_csv(tmp_path / "claims.csv", index=False)
    assert headline(tmp_path / "claims.csv") not in block
