"""`harness report` and the reports package on tiny real runs (the s0-digits benchmark, smoke budget).

Real runs: GDAS and ROME-v2 (K=2) x 2 seeds, and a ROME-v2 K sweep (K = 1, 4, 7, 10, one seed). The
ablation (8 combinations x 2 seeds), the Table 1 benchmark and the memory profiles are SYNTHETIC:
result/profile files derived from the real ones by changing their options, benchmark or byte counts
(the reports only read files, and 16 more runs or a CIFAR download would not fit the test budget).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from harness.cli.main import main
from harness.evidence.profile import ProfileConfig, profile_step, write_profile
from harness.runs.run import run
from harness.spec.runspec import make_config
from harness.spec.sweeps import ABLATION, k_sweep_configs
from reports import ablation, collapse, ksens, memory, tables
from reports.common import main_variants
from reports.data import load_history, load_profiles, load_runs, published

TINY = dict(search_epochs=1, search_subset=64, search_batch=32, search_layers=2, search_channels=4, eval_epochs=1,
            eval_subset=64, eval_layers=2, eval_channels=4)
#: what TINY changes from the smoke budget, as a label names it (reports.data.run_label)
TINY_FIELDS = ("eval.channels=4, eval.epochs=1, eval.layers=2, eval.subset=64, search.batch=32, search.channels=4, "
               "search.epochs={epochs}, search.layers=2, search.subset=64")


def tiny_label(name: str, epochs: int = 1) -> str:
    """``rome-v2 (K=2)`` -> ``rome-v2 (K=2, eval.channels=4, ...)``: the label of a run made with TINY."""
    fields = TINY_FIELDS.format(epochs=epochs)
    return f"{name[:-1]}, {fields})" if name.endswith(")") else f"{name} ({fields})"


def results_in(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.rglob("result.json"))}


def write_result(folder: Path, result: dict[str, Any]) -> None:
    path = folder / result["run_id"] / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    configs = [make_config(m, "s0-digits", "smoke", s, k=2, **TINY) for m in ("gdas", "rome-v2") for s in (0, 1)]
    configs += k_sweep_configs("s0-digits", "smoke", [0], **TINY)  # K=1: 7 epochs, K=4: 2, K=7 and K=10: 1
    for cfg in configs:
        result = run(cfg, out)
        assert result["status"] == "complete", result.get("reason")
    return out


@pytest.fixture(scope="session")
def ablation_dir(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Table 6 runs: the two real ROME-v2 (K=2) results with each toggle combination."""
    out = tmp_path_factory.mktemp("ablation")
    bases = [r for r in results_in(runs_dir).values() if r["method"] == "rome-v2" and r["options"]["k"] == 2]
    assert len(bases) == 2
    for i, (td, ga_theta, ga_alpha) in enumerate(ABLATION):
        for base in bases:
            r = copy.deepcopy(base)
            r["options"].update(td=td, ga_theta=ga_theta, ga_alpha=ga_alpha)
            r["run_id"] = f"abl_{int(td)}{int(ga_theta)}{int(ga_alpha)}_s{r['seed']}"
            r["eval"]["test_error"] = 10.0 + i + r["seed"]  # mean 10.5 + i, std 0.71
            write_result(out, r)
    return out


@pytest.fixture(scope="session")
def profiles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real GDAS profile at a tiny shape; the others synthetic copies with scaled saved bytes."""
    out = tmp_path_factory.mktemp("profiles")
    real = profile_step(ProfileConfig("gdas", "s0-digits", batch_size=4, channels=4, layers=5, image_size=8,
                                      steps=1), "cpu")
    darts = real["saved_bytes"] * 3
    variants = [("darts", {}, 1.0), ("pcdarts", {"partial": 2}, 0.6), ("rome-v2", {"k": 7, "td": True,
                "ga_theta": True, "ga_alpha": True}, 0.2), ("pcdarts", {"partial": 4}, 0.4)]
    for method, options, ratio in variants:
        write_profile({**real, "method": method, "options": options, "saved_bytes": int(ratio * darts)}, out)
    write_profile(real, out)  # GDAS: 1/3 of DARTS
    return out


# -- data --------------------------------------------------------------------------------------------

def test_load_runs_flattens_one_row_per_result(runs_dir: Path) -> None:
    runs = load_runs(runs_dir)
    assert len(runs) == 8 and set(runs["status"]) == {"complete"}
    assert set(runs["method"]) == {"gdas", "rome-v2"}
    rome = runs[runs["method"] == "rome-v2"]
    assert sorted(rome["k"].astype(int)) == [1, 2, 2, 4, 7, 10]
    assert rome["td"].astype(bool).all() and runs.loc[runs["method"] == "gdas", "k"].isna().all()
    assert runs["test_error"].between(0, 100).all() and (runs["params"] > 0).all()
    assert runs["parameterless_normal"].between(0, 8).all()
    assert set(runs.loc[runs["method"] == "gdas", "label"]) == {tiny_label("gdas")}
    assert set(rome["label"]) == {tiny_label("rome-v2"), tiny_label("rome-v2 (K=1)", 7), tiny_label("rome-v2 (K=2)"),
                                  tiny_label("rome-v2 (K=4)", 2), tiny_label("rome-v2 (K=10)")}
    assert runs.groupby("label")["config_id"].nunique().eq(1).all()  # a label names one configuration
    assert runs["config_id"].nunique() == 6 and not runs["default"].any()  # seeds 0 and 1 share their config id


def test_load_runs_skips_unreadable_files_with_a_warning(runs_dir: Path, tmp_path: Path) -> None:
    first = next(iter(runs_dir.glob("*/result.json")))
    shutil.copytree(first.parent, tmp_path / first.parent.name)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text("{not json")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "result.json").write_text('{"hello": 1}')
    runs = load_runs(tmp_path)
    assert len(runs) == 1
    assert len(runs.attrs["warnings"]) == 2 and any("broken" in w for w in runs.attrs["warnings"])


def test_load_history_one_row_per_run_and_epoch(runs_dir: Path) -> None:
    history = load_history(runs_dir)
    epochs = sum(len(r["search"]["history"]) for r in results_in(runs_dir).values())
    assert len(history) == epochs == 4 * 1 + 7 + 2 + 1 + 1
    assert {"epoch", "skip_connect_normal", "parameterless_normal", "tau", "label"} <= set(history.columns)


@pytest.mark.parametrize("table", range(1, 8))
def test_published_tables_name_their_source(table: int) -> None:
    df = published(table)
    assert (df["source"] == f"ROME Table {table}").all()


def test_published_numbers_spot_checks() -> None:
    t1 = published(1).set_index(["bench", "method"])
    assert len(t1) == 60
    assert tuple(t1.loc[("s2-c10", "GDAS"), ["error_mean", "error_std", "num_mean", "num_std"]]) == (3.89, 0.17,
                                                                                                     6.0, 0.7)
    assert t1.loc[("s1-svhn", "DARTS"), "error_std"] == 5.50
    t2 = published(2).set_index("model")
    assert t2.loc["ROME-v2 (avg.)", "error_mean"] == 2.58 and t2.loc["ROME-v1 (best)", "flops_m"] == 683
    assert published(3).set_index("model").loc["ROME-V2 (best)", "error_mean"] == 17.57
    assert published(4).set_index(["block", "model"]).loc[("direct", "ROME"), "top1_acc"] == 75.5
    assert list(published(5)["search_epochs"]) == [350, 87, 50, 35]
    t6 = published(6)
    assert len(t6) == 8 and t6.iloc[0]["acc_mean"] == 96.52 and t6.iloc[-1]["acc_mean"] == 97.42
    assert dict(zip(published(7)["method"], published(7)["memory_gb"], strict=True)) == {
        "DARTS": 9.4, "GDAS": 3.1, "PC-DARTS (M=4)": 3.7, "PC-DARTS (M=2)": 5.7, "ROME": 2.3}


# -- ablation (Table 6) ------------------------------------------------------------------------------

def test_ablation_report_has_8_rows_beside_the_paper(ablation_dir: Path, tmp_path: Path) -> None:
    section = ablation.build(load_runs(ablation_dir), tmp_path, ablation_dir)
    assert not section.messages
    (t,) = section.tables.values()
    assert len(t) == 8 and (t["n"] == 2).all()
    assert list(zip(t["td"], t["ga_theta"], t["ga_alpha"], strict=True)) == ABLATION
    assert list(t["test_error_mean"]) == pytest.approx([10.5 + i for i in range(8)])
    assert t["test_error_std"].iloc[0] == pytest.approx(0.7071, abs=1e-3)
    assert t["paper_acc_mean"].iloc[-1] == 97.42 and t["paper_acc_mean"].iloc[0] == 96.52
    for name in ("ablation.md", "ablation.csv", "ablation.png", "ablation.pdf"):
        assert (tmp_path / name).exists()
    md = (tmp_path / "ablation.md").read_text()
    assert "97.42 ± 0.07" in md and "10.50 ± 0.71" in md and "not comparable" in md
    assert len(pd.read_csv(tmp_path / "ablation.csv")) == 8


def test_ablation_names_missing_combinations(ablation_dir: Path, tmp_path: Path) -> None:
    part = tmp_path / "runs"
    for d in ablation_dir.iterdir():
        if not d.name.startswith(("abl_000", "abl_111")):
            shutil.copytree(d, part / d.name)
    section = ablation.build(load_runs(part), tmp_path / "out", part)
    (t,) = section.tables.values()
    assert len(t) == 8 and list(t["n"]) == [0, 2, 2, 2, 2, 2, 2, 0]
    assert any("2 of 8 combinations have no runs" in m and "harness run --ablation" in m
               for m in section.messages)


# -- K sensitivity (Table 5) -------------------------------------------------------------------------

def test_k_report_has_one_row_per_k(runs_dir: Path, tmp_path: Path) -> None:
    section = ksens.build(load_runs(runs_dir), tmp_path, runs_dir)
    (t,) = section.tables.values()
    assert list(t["k"]) == [1, 4, 7, 10]  # the K=2 runs searched 1 epoch, off the sweep: left out
    assert list(t["n"]) == [1, 1, 1, 1]
    assert list(t["search_epochs"]) == ["7", "2", "1", "1"]
    assert list(t["paper_search_epochs"]) == [350, 87, 50, 35]
    for name in ("k_sensitivity.md", "k_sensitivity.csv", "k_sensitivity.png", "k_sensitivity.pdf"):
        assert (tmp_path / name).exists()
    assert "2 other complete runs" in (tmp_path / "k_sensitivity.md").read_text()


# -- collapse (Fig. 3) -------------------------------------------------------------------------------

def test_collapse_figure_has_one_line_per_method(runs_dir: Path, tmp_path: Path) -> None:
    history = load_history(runs_dir)
    shown = main_variants(history)
    assert set(shown["label"]) == {tiny_label("gdas"), tiny_label("rome-v2 (K=2)")}  # not the K sweep's
    fig = collapse.plot(shown, "test")
    try:
        for ax in fig.axes:
            drawn = [line for line in ax.get_lines() if len(line.get_xdata()) > 0]
            assert len({line.get_color() for line in drawn}) == 2
        assert [t.get_text().replace("\n", " ") for t in fig.legends[0].get_texts()] == [
            f"{tiny_label('gdas')} (2 seeds)", f"{tiny_label('rome-v2 (K=2)')} (2 seeds)"]
    finally:
        plt.close(fig)
    section = collapse.build(history, tmp_path, runs_dir)
    csv = pd.read_csv(tmp_path / "collapse.csv")
    assert set(csv.loc[csv["plotted"], "label"]) == {tiny_label("gdas"), tiny_label("rome-v2 (K=2)")}
    assert len(set(csv["label"])) == 6
    assert {p.name for p in section.files} >= {"collapse.md", "collapse.csv", "collapse_s0-digits_smoke.png",
                                               "collapse_s0-digits_smoke.pdf"}


# -- memory (Table 7) --------------------------------------------------------------------------------

def test_memory_report_orders_as_the_paper(profiles_dir: Path, tmp_path: Path) -> None:
    section = memory.build(load_profiles(profiles_dir), tmp_path, profiles_dir)
    (t,) = section.tables.values()
    assert list(t["method"]) == ["ROME", "GDAS", "PC-DARTS (M=4)", "PC-DARTS (M=2)", "DARTS"]
    assert list(t["saved_ratio_to_darts"]) == pytest.approx([0.2, 1 / 3, 0.4, 0.6, 1.0], abs=1e-3)
    assert list(t["paper_memory_gb"]) == [2.3, 3.1, 3.7, 5.7, 9.4]
    assert memory.ordering(t) == "ROME < GDAS < PC-DARTS (M=4) < PC-DARTS (M=2) < DARTS"
    md = (tmp_path / "memory.md").read_text()
    assert "Not the paper's shape" in md and "0.24" in md  # the paper's ROME / DARTS = 2.3 / 9.4
    for name in ("memory.md", "memory.csv", "memory.png", "memory.pdf"):
        assert (tmp_path / name).exists()


# -- benchmarks (Tables 1-4) -------------------------------------------------------------------------

def test_benchmarks_table_shows_paper_values_beside_reproduced(runs_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(runs_dir, folder)
    for r in results_in(runs_dir).values():  # synthetic: the real tiny runs relabelled as S1 on CIFAR-10
        if r["method"] == "gdas" or r["options"].get("k") == 2:
            write_result(folder, {**r, "bench": "s1-c10", "space": "s1", "dataset": "c10",
                                  "run_id": "s1c10_" + r["run_id"]})
    section = tables.build(load_runs(folder), tmp_path / "out", folder)
    t1 = section.tables["table1"].set_index("paper_method")
    assert list(t1.index) == ["DARTS", "GDAS", "ROME"]  # the rows of methods the harness runs
    assert t1.loc["GDAS", "paper_error_mean"] == 2.89 and t1.loc["GDAS", "n"] == 2
    assert t1.loc["ROME", "variant"] == tiny_label("rome-v2 (K=2)") and t1.loc["DARTS", "n"] == 0
    assert t1.loc["GDAS", "diff"] == pytest.approx(t1.loc["GDAS", "error_mean"] - 2.89)
    md = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "2.89 ± 0.09" in md and "3.8 ± 0.4" in md and "2.66 ± 0.06" in md
    assert "not comparable to the paper's values" in md
    assert "Benchmarks without a paper counterpart" in md and "s0-digits" in md
    assert any("Table 2: no runs on s0-c10" in m for m in section.messages)
    for name in ("benchmarks.md", "benchmarks.csv", "benchmarks.png", "benchmarks.pdf"):
        assert (tmp_path / "out" / name).exists()


# -- the command -------------------------------------------------------------------------------------

def test_report_command_writes_every_report_and_the_index(runs_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs_dir), "--out", str(out), "--all"]) == 0
    printed = capsys.readouterr().out
    # this folder has no ablation runs and no profiles: said, not failed
    assert "ablation: no ROME runs with toggles found in" in printed and "harness run --ablation" in printed
    assert "memory: no profile_*.json found" in printed
    for stem in ("benchmarks", "k_sensitivity", "collapse_s0-digits_smoke"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").stat().st_size > 0
    for name in ("benchmarks", "k_sensitivity", "collapse", "cells"):
        assert (out / f"{name}.md").exists() and (out / f"{name}.csv").exists()
    assert len(list((out / "cells").glob("*.png"))) == 8
    index = (out / "index.md").read_text()
    for link in ("benchmarks.md", "k_sensitivity.md", "collapse.md", "cells.md", "k_sensitivity.png"):
        assert f"]({link})" in index
    assert "no ROME runs with toggles" in index


def test_report_draws_single_runs_only_when_asked(runs_dir: Path, tmp_path: Path) -> None:
    """No flag: every report but the drawings of single runs (a cell drawing per run made 1,000 runs take
    minutes); --cells draws them."""
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs_dir), "--out", str(out)]) == 0
    assert (out / "benchmarks.md").exists() and (out / "collapse.md").exists()
    assert not (out / "cells").exists() and not (out / "cells.md").exists() and not (out / "weights.md").exists()
    assert main(["report", "--runs", str(runs_dir), "--out", str(out), "--cells"]) == 0
    assert len(list((out / "cells").glob("*.png"))) == 8 and not (out / "weights.md").exists()


def test_report_flags_select_reports(profiles_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--runs", str(profiles_dir), "--out", str(out), "--memory"]) == 0
    assert (out / "memory.md").exists() and not (out / "benchmarks.md").exists()
    assert "memory.md" in (out / "index.md").read_text()


def test_report_on_an_empty_folder_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs").mkdir()
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--all"]) == 0
    printed = capsys.readouterr().out
    for name in ("benchmarks", "ablation", "k-sensitivity", "collapse", "memory", "cells", "weights"):
        assert f"{name}: no " in printed
    assert (tmp_path / "out" / "index.md").exists()


def test_report_on_a_missing_folder_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
