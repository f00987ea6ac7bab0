"""The `cpu` budget's scaling rule and the entropy of the architecture distribution (issue 19, "What to
build", first bullet): ``search.scale=arch-steps`` makes a_lr x architecture steps equal the paper
protocol's (:func:`harness.spec.runspec.arch_steps`), the values are recorded in the spec, ``result.json``'s
config and ``harness run --dry-run``, and each search epoch records the op and edge entropy of every
cell type (:func:`harness.engine.search.arch_entropy`), drawn in the collapse figure.

Hand computations: the paper's CIFAR-10 search splits hold 25,000 images (ceil(25000 / 64) = 391 steps
an epoch at batch 64, 50 epochs); the digits' 700 (ceil(700 / 64) = 11 at batch 64, 20 epochs at `cpu`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch

from harness.cli.main import main
from harness.engine.search import arch_entropy, build_search_method, epoch_entry
from harness.runs.layout import validate_result
from harness.spec.runspec import SpecError, resolve, with_sets

matplotlib.use("Agg")

PAPER_STEPS = 50 * 391  # 19,550 architecture steps in the paper's CIFAR-10 search
CPU_STEPS = 20 * 11  # 220 at budget cpu on the digits


def test_rule_without_warmup_gdas() -> None:
    s = resolve("gdas", "s3-digits", "cpu", 0).search
    assert (s.scale, s.a_lr_ref, s.arch_steps_ref, s.arch_steps) == ("arch-steps", 3e-4, PAPER_STEPS, CPU_STEPS)
    assert s.a_lr == pytest.approx(3e-4 * 19550 / 220, rel=1e-3)  # 0.02666: 220 x a_lr = 5.9, the paper's reach
    assert s.a_lr * s.arch_steps == pytest.approx(3e-4 * PAPER_STEPS, rel=1e-3)


def test_rule_with_warmup_pcdarts() -> None:
    """PC-DARTS: Adam 6e-4, no architecture step in the first 30 % of epochs (15 of 50; 6 of 20)."""
    s = resolve("pcdarts", "s3-digits", "cpu", 0).search
    assert s.arch_warmup == 0.3  # kept as a fraction
    assert (s.a_lr_ref, s.arch_steps_ref, s.arch_steps) == (6e-4, 35 * 391, 14 * 11)
    assert s.a_lr == pytest.approx(6e-4 * 13685 / 154, rel=1e-3)


def test_paper_budget_is_untouched_and_the_check_budget_scales() -> None:
    paper = resolve("gdas", "s0-c10", "paper", 0)
    assert paper.search.scale == "none" and paper.search.a_lr == 3e-4
    check = resolve("rome-v2", "s3-digits", "check", 0).search  # harness check: 10 epochs of 256 / 32 steps
    assert (check.scale, check.arch_steps, check.arch_steps_ref) == ("arch-steps", 80, PAPER_STEPS)
    assert check.a_lr == pytest.approx(3e-4 * PAPER_STEPS / 80, rel=1e-3)
    # the rule at the paper's own protocol changes nothing: its steps are the paper's
    same = resolve("gdas", "s0-c10", "paper", 0, sets={"search.scale": "arch-steps"}).search
    assert (same.a_lr, same.arch_steps, same.arch_steps_ref) == (3e-4, PAPER_STEPS, PAPER_STEPS)


def test_rule_off_keeps_the_hash_of_the_budget_before_the_rule() -> None:
    """``--set search.scale=none`` records no scale field: the run id of the pre-rule cpu budget."""
    off = resolve("gdas", "s3-digits", "cpu", 0, sets={"search.scale": "none"})
    assert off.search.a_lr == 3e-4 and not {"scale", "a_lr_ref"} & set(off.to_dict()["search"])
    assert off.run_id == "s3-digits_gdas_cpu_s0_762a1e13"  # the id `harness run` gave it before the rule


def test_users_a_lr_wins_and_the_rule_is_then_not_recorded() -> None:
    s = resolve("rome-v2", "s3-digits", "cpu", 0, sets={"search.a_lr": "0.03"}).search
    assert (s.a_lr, s.scale, s.a_lr_ref, s.arch_steps) == (0.03, "none", None, None)


def test_reference_lr_and_epochs() -> None:
    s = resolve("gdas", "s3-digits", "cpu", 0, sets={"search.a_lr_ref": "6e-4"}).search
    assert s.a_lr == pytest.approx(6e-4 * 19550 / 220, rel=1e-3)
    # 40 cpu epochs stand for 100 paper epochs: a_lr stays, the run moves twice as far (as --epochs would)
    long = resolve("gdas", "s3-digits", "cpu", 0, sets={"search.epochs": "40"}).search
    assert (long.arch_steps, long.arch_steps_ref, long.a_lr) == (440, 2 * PAPER_STEPS, s.a_lr / 2)


@pytest.mark.parametrize(("sets", "fragment"), [
    ({"search.a_lr": "0.1", "search.scale": "arch-steps"}, "not both"),
    ({"search.a_lr": "0.1", "search.a_lr_ref": "3e-4"}, "not both"),
    ({"search.arch_steps": "300"}, "derived by search.scale"),
    ({"search.arch_steps_ref": "300"}, "derived by search.scale"),
    ({"search.scale": "none", "search.a_lr_ref": "3e-4"}, "only with search.scale=arch-steps"),
    ({"search.scale": "steps"}, "valid: none, arch-steps"),
    ({"search.a_lr_ref": "-1"}, "search.a_lr_ref=-1.0: must be > 0"),
])
def test_bad_rule_settings(sets: dict[str, str], fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        resolve("gdas", "s3-digits", "cpu", 0, sets=sets)


def test_a_spec_cannot_claim_a_rule_it_broke() -> None:
    spec = resolve("gdas", "s3-digits", "cpu", 0)
    with pytest.raises(SpecError, match="a_lr_ref x arch_steps_ref / arch_steps"):
        with_sets(spec, search={"a_lr": 0.5})


def test_bad_command_line_exits_2_before_any_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    code = main(["run", "--method", "gdas", "--bench", "s3-digits", "--budget", "cpu", "--out", str(out),
                 "--set", "search.a_lr=0.1", "--set", "search.scale=arch-steps"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not both" in err and not out.exists()


def test_dry_run_and_list_show_the_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--method", "gdas,pcdarts", "--bench", "s3-digits", "--budget", "cpu", "--dry-run"]) == 0
    runs = json.loads(capsys.readouterr().out)
    search = {r["config"]["method"]: r["config"]["search"] for r in runs}
    assert search["gdas"]["scale"] == "arch-steps" and search["gdas"]["a_lr"] == 0.02666
    assert (search["pcdarts"]["arch_steps_ref"], search["pcdarts"]["arch_steps"]) == (13685, 154)
    assert main(["list", "--fields"]) == 0
    listed = capsys.readouterr().out
    assert "cpu: search.scale=arch-steps" in listed and "search.a_lr_ref=None" in listed


# -- entropy ---------------------------------------------------------------------------------------------
def _method(name: str, bench: str):  # noqa: ANN202 (a SearchMethod)
    spec = resolve(name, bench, "check", 0)
    method = build_search_method(spec, bench.rsplit("-", 1)[0], 10, 3, torch.device("cpu"))
    return spec, method


@pytest.mark.parametrize(("name", "ops", "edges"), [
    ("gdas", math.log(3), None),  # S3: none, skip, sep_conv_3x3; no edge parameters in a DARTS space
    ("rome-v2", math.log(2), (math.log(3) + math.log(4) + math.log(5)) / 3),  # TD: never none; nodes of 3-5 inputs
    ("rome-v1", math.log(2), (math.log(3) + math.log(6) + math.log(10)) / 3),  # pairs of 3, 4, 5 inputs
    ("pcdarts", math.log(3), (math.log(3) + math.log(4) + math.log(5)) / 3),
])
def test_entropy_of_a_uniform_architecture(name: str, ops: float, edges: float | None) -> None:
    _, method = _method(name, "s3-digits")
    with torch.no_grad():
        for p in method.arch_parameters():
            p.zero_()
    h = arch_entropy(method)
    for cell in ("normal", "reduce"):
        assert h[cell]["ops"] == pytest.approx(ops, abs=1e-4)
        assert h[cell].get("edges") == (None if edges is None else pytest.approx(edges, abs=1e-4))


def test_entropy_of_a_decided_architecture_and_the_history_entry() -> None:
    spec, method = _method("rome-v2", "s3-digits")
    with torch.no_grad():
        for p in method.alpha.values():
            p.zero_()
            p[:, -1] = 60.0  # one op (not ``none``) far ahead on every edge: a point mass
    assert arch_entropy(method)["normal"]["ops"] == pytest.approx(0.0, abs=1e-4)
    entry = epoch_entry(method, 0, 0.01, 1, {"train_loss": 1.0, "train_acc": 50.0}, 0.1)
    assert entry["op_entropy_normal"] == entry["entropy"]["normal"]["ops"]
    assert set(entry["entropy"]) == {"normal", "reduce"}


def test_entropy_of_a_nasbench_cell_and_the_schema() -> None:
    """One cell type (``cell``); every method has ``beta`` on a node's inputs there."""
    spec, method = _method("darts", "nb1s1-digits")
    entry = epoch_entry(method, 0, 0.01, 1, {"train_loss": 1.0, "train_acc": 50.0}, 0.1)
    assert set(entry["entropy"]) == {"cell"} and "edges" in entry["entropy"]["cell"]
    assert entry["op_entropy_normal"] == entry["entropy"]["cell"]["ops"]
    result = {"run_id": "r", "method": "darts", "options": {}, "bench": "b", "space": "s", "dataset": "d",
              "budget": "check", "seed": 0, "status": "complete", "config": spec.to_dict(),
              "env": {"python": "3", "packages": {}, "device": "cpu", "git_commit": "0", "config_hash": "0"},
              "timings": {}, "genotype": {}, "eval": {"test_error": 1.0, "params": 1, "macs": 1},
              "search": {"history": [{k: v for k, v in entry.items() if k not in ("entropy", "op_entropy_normal")},
                                     entry]}}  # an entry of an older result (no entropy) stays valid
    validate_result(json.loads(json.dumps(result)))
    entry["entropy"]["cell"]["ops"] = -0.5
    with pytest.raises(Exception, match="-0.5"):
        validate_result(json.loads(json.dumps(result)))


# -- the collapse figure -----------------------------------------------------------------------------------
def _history(with_entropy: bool) -> pd.DataFrame:
    rows = [{"bench": "s3-digits", "budget": "cpu", "label": label, "seed": seed, "epoch": e,
             "skip_connect_normal": 2, "parameterless_normal": 3, "val_acc": 50.0 + e, "search_epochs": 3,
             "op_entropy_normal": (start - 0.1 * e * (seed + 1)) if with_entropy else float("nan")}
            for label, start in (("gdas", math.log(3)), ("rome-v2", math.log(2)))
            for seed in (0, 1) for e in range(3)]
    return pd.DataFrame(rows)


def test_collapse_figure_draws_the_entropy_panel() -> None:
    from reports.collapse import plot, summary

    fig = plot(_history(True), "t")
    panel = fig.axes[3]
    assert panel.get_ylabel() == "op entropy of normal cell (nats)"
    assert len(panel.lines) >= 2 and len(panel.collections) >= 2  # a mean line and a ± 1 std band per method
    table = summary(_history(True))
    first = table[(table["label"] == "gdas") & (table["epoch"] == 0)].iloc[0]
    assert first["op_entropy_mean"] == pytest.approx(math.log(3) - 0.0)
    old = plot(_history(False), "t")  # results from before the entropy: a note, no failure
    assert "not recorded" in old.axes[3].texts[0].get_text()
