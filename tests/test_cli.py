"""The command line: list, describe, eval --count-only, run on digits, --bench all failing fast."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from harness.spec.benchmarks import PAPER_15, expand


def test_list_names_every_method_and_the_15_benchmarks(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("darts", "gdas", "pcdarts", "rome-v1", "rome-v2", *PAPER_15, "smoke", "paper"):
        assert name in out


def test_bench_all_is_the_papers_15() -> None:
    assert expand("all") == PAPER_15 and len(PAPER_15) == 15 and len(set(PAPER_15)) == 15
    assert expand("s0,rdarts") == PAPER_15


@pytest.mark.parametrize("name, params_m", [("DARTS_V2", 3.3), ("PC_DARTS", 3.6), ("GDAS_V1", 3.4)])
def test_eval_count_only_gives_published_parameters(name: str, params_m: float, capsys) -> None:
    assert main(["eval", "--genotype", name, "--bench", "s0-c10", "--count-only", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["params"] / 1e6, 1) == params_m
    assert out["macs"] > 4e8 and "convolution" in out["macs_include"][0]


def test_eval_imagenet_darts_v2(capsys) -> None:
    assert main(["eval", "--genotype", "DARTS_V2", "--bench", "s0-imagenet", "--count-only", "--json"]) == 0
    assert round(json.loads(capsys.readouterr().out)["params"] / 1e6, 1) == 4.7


def test_bench_all_fails_fast_when_data_is_missing(tmp_path, capsys) -> None:
    code = main(["run", "--method", "rome-v2", "--bench", "all", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "dataset 'c10' not found" in err and "cifar-10-batches-py" in err and "--download" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_run_on_digits_writes_a_result(tmp_path, capsys) -> None:
    sets = ["--set", "search_layers=2", "--set", "search_channels=4", "--set", "search_subset=64",
            "--set", "eval_layers=2", "--set", "eval_channels=4", "--set", "eval_epochs=1",
            "--set", "eval_subset=64", "--set", "k=2"]
    code = main(["run", "--method", "rome-v2", "--bench", "s2-digits", "--epochs", "1", "--out", str(tmp_path),
                 "--no-progress", *sets])
    assert code == 0
    out = capsys.readouterr().out
    assert "test error" in out
    (result,) = tmp_path.glob("*/result.json")
    data = json.loads(result.read_text())
    assert data["status"] == "complete" and data["bench"] == "s2-digits" and data["options"]["k"] == 2


def test_eval_trains_a_fixed_genotype_once(tmp_path, capsys) -> None:
    args = ["eval", "--genotype", "DARTS_V2", "--bench", "s0-digits", "--budget", "smoke", "--out", str(tmp_path),
            "--no-progress", "--json", "--set", "eval_layers=2", "--set", "eval_channels=4",
            "--set", "eval_epochs=1", "--set", "eval_subset=64"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "complete" and result["method"] == "fixed"
    assert result["options"]["genotype"] == "DARTS_V2" and result["search"]["history"] == []
    assert result["genotype"]["normal"][0] == ["sep_conv_3x3", 0]
    assert 0 <= result["eval"]["test_error"] <= 100 and result["eval"]["params"] > 0
    path = tmp_path / result["run_id"] / "result.json"
    stamp = path.stat().st_mtime_ns
    assert main(args) == 0  # complete: not retrained
    assert json.loads(capsys.readouterr().out)["eval"] == result["eval"] and path.stat().st_mtime_ns == stamp
    other = tmp_path / "g.json"
    other.write_text(json.dumps({**result["genotype"], "normal": [["skip_connect", 0], ["sep_conv_3x3", 1]] * 4}))
    assert main([*args[:2], str(other), *args[3:]]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"].startswith("s0-digits_fixed-g_smoke_s0_")
