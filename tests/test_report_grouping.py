"""Reports and claims group runs by configuration (the spec without the seed), never by method name alone
(issue 18, "Why" item 2): two runs of one method that differ only in ``--set search.a_lr=0.03`` are two
rows in ``harness report`` and in ``harness report --claims``, and their numbers are never averaged.

SYNTHETIC runs (:mod:`tests.report_runs`): result files with the real resolved spec of ``harness run``
(:func:`harness.spec.runspec.resolve`) and made-up numbers, chosen so that pooling would show: the default
GDAS runs collapse (6 to 8 parameterless ops), the ``search.a_lr=0.03`` ones do not (1 or 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli.main import main
from harness.runs.read import config_id
from harness.runs.settings import default_spec, spec_changes
from reports.data import load_runs, run_label
from tests.report_runs import result_for, write_run

A_LR = {"search.a_lr": "0.03"}
#: (method, sets) -> parameterless ops of the derived normal cell, per seed 0, 1, 2
PARAMETERLESS = {("gdas", None): [6, 7, 8], ("gdas", "a_lr"): [1, 2, 1],
                 ("rome-v2", None): [2, 3, 2], ("rome-v2", "a_lr"): [0, 1, 0]}


def _result(method: str, seed: int, sets: dict[str, Any] | None, parameterless: int) -> dict[str, Any]:
    r = result_for(method, "s3-digits", "cpu", seed, sets=sets)
    r["search"]["history"][-1]["parameterless_normal"] = parameterless
    r["eval"]["test_error"] = 10.0 + parameterless
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    for (method, which), counts in PARAMETERLESS.items():
        for seed, count in enumerate(counts):
            write_run(folder, _result(method, seed, A_LR if which else None, count))
    return folder


def test_a_set_field_makes_another_configuration_with_its_own_label(runs: Path) -> None:
    df = load_runs(runs)
    assert len(df) == 12 and df["run_id"].is_unique
    rome = df[df["method"] == "rome-v2"]
    assert set(rome["label"]) == {"rome-v2 (K=3)", "rome-v2 (K=3, search.a_lr=0.03)"}  # the example
    assert set(df.loc[df["method"] == "gdas", "label"]) == {"gdas", "gdas (search.a_lr=0.03)"}
    assert df["config_id"].nunique() == 4
    assert all(sorted(seeds) == [0, 1, 2] for seeds in df.groupby("config_id")["seed"].apply(list))
    assert set(df.loc[df["default"], "settings"]) == {()} and set(df.loc[~df["default"], "settings"]) == {
        ("search.a_lr=0.03",)}


def test_config_id_leaves_out_the_seed_and_nothing_else() -> None:
    one, two = (result_for("gdas", "s3-digits", "cpu", s)["config"] for s in (0, 1))
    assert one != two and config_id(one) == config_id(two)
    other = result_for("gdas", "s3-digits", "cpu", 0, sets=A_LR)["config"]
    assert config_id(other) != config_id(one)
    # a given a_lr turns the cpu budget's scaling rule off (harness.spec.runspec._scale): compare with the rule off
    unscaled = result_for("gdas", "s3-digits", "cpu", 0, sets={"search.scale": "none"})["config"]
    assert config_id(other, without=("search.a_lr",)) == config_id(unscaled, without=("search.a_lr",))


def test_label_names_every_changed_field_and_keeps_option_labels() -> None:
    r = result_for("rome-v2", "s2-digits", "smoke", 0, options={"td": False},
                   sets={"eval.epochs": "3", "search.a_betas": "0.9,0.99", "data.cutout": "8"})
    changes, default = spec_changes(r)
    assert not default and changes == ["data.cutout=8", "eval.epochs=3", "search.a_betas=0.9,0.99"]
    assert run_label("rome-v2", r["options"], changes) == "rome-v2 (TD off, data.cutout=8, eval.epochs=3, " \
                                                         "search.a_betas=0.9,0.99)"
    assert spec_changes(result_for("darts", "s2-digits", "smoke", 3)) == ([], True)
    before = default_spec.cache_info().misses
    for seed in range(5):  # one resolution per method, benchmark, budget and preset, not per run
        spec_changes(result_for("darts", "s2-digits", "smoke", seed))
    assert default_spec.cache_info().misses == before


def test_report_keeps_the_two_configurations_apart(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--collapse"]) == 0
    index = (out / "index.md").read_text()
    rows = [line for line in index.splitlines() if line.startswith("| s3-digits")]
    assert len(rows) == 4, index  # one row per configuration, 3 runs each (not 2 rows of 6 runs)
    assert all(r.replace(" ", "").endswith("|3|3|") for r in rows), rows
    assert any("| rome-v2 (K=3, search.a_lr=0.03) |" in r for r in rows), rows
    collapse = pd.read_csv(out / "collapse.csv")
    last = collapse[collapse["epoch"] == collapse["epoch"].max()].set_index("label")
    assert last.loc["gdas", "parameterless_mean"] == 7.0
    assert last.loc["gdas (search.a_lr=0.03)", "parameterless_mean"] == pytest.approx(4 / 3)
    assert (last["n"] == 3).all()


def test_claims_are_one_row_per_variant_and_never_pooled(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "claims"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--claims"]) == 0
    csv = pd.read_csv(out / "claims.csv")
    collapse = csv[csv["claim"] == "gdas-collapses-s3"].set_index("variant")
    assert len(collapse) == 2  # two rows, not one pooled over [6, 7, 8, 1, 2, 1]
    assert collapse.loc["defaults", "detail"].startswith("mean 7.00") and collapse.loc["defaults", "holds"]
    assert collapse.loc["search.a_lr=0.03", "detail"].startswith("mean 1.33")
    assert not collapse.loc["search.a_lr=0.03", "holds"]
    below = csv[csv["claim"] == "rome-below-gdas-s3"].set_index("variant")
    assert set(below.index) == {"defaults", "search.a_lr=0.03"}  # each GDAS group beside its ROME-v2 group
    assert set(below.loc["search.a_lr=0.03", "seeds"].split("; ")) == {
        "gdas (search.a_lr=0.03): 0,1,2", "rome-v2 (K=3, search.a_lr=0.03): 0,1,2"}
    md = (out / "claims.md").read_text()
    assert "| variant" in md and "search.a_lr=0.03" in md
