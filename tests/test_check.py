"""`harness check`: the exact part passes on this code and fails on each of five injected bugs; the
distribution comparison (Welch tests over seeds) on synthetic and real per-seed values; the paper
comparison on synthetic results."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import methods.base
import methods.rome
import methods.sampling
from harness.cli.main import main
from harness.evidence import check, exact
from spaces.genotype import td_cell_ok
from tests.hostile.folders import valid_result


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(["check", *args])
    except SystemExit as exc:  # a failed check exits 1 like `harness run` with failed runs
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out + out.err


COMMITTED = check.load_baseline(check.CHECK_BASELINE)


# -- the exact part: passes on this code, fails on injected bugs ---------------------------------------------

def test_exact_part_passes_on_this_code(capsys, tmp_path: Path) -> None:
    code, out = _check(capsys, "--exact-only", "--paper-dir", str(tmp_path))  # an empty one: no paper rows
    assert code == 0, out
    assert "check passed: 5 checks" in out


def _bug_none_under_td(mp: pytest.MonkeyPatch) -> None:
    """ROME with TD samples ``none`` (the op mask no longer removes it)."""
    mp.setattr(methods.rome.ROME, "allow_none", property(lambda self: True))


def _bug_edges_not_distinct(mp: pytest.MonkeyPatch) -> None:
    """ROME-v2 draws a node's two edges with replacement (two independent Gumbel-Max draws)."""
    def with_replacement(logits: torch.Tensor, k: int, tau: float, generator: Any = None) -> torch.Tensor:
        hard = sum(methods.sampling.gumbel_softmax_st(logits, tau, generator=generator)[0] for _ in range(k))
        return hard.clamp(max=1.0)

    mp.setattr(methods.rome, "gumbel_topk", with_replacement)


def _bug_no_gumbel_noise(mp: pytest.MonkeyPatch) -> None:
    """The Gumbel noise is dropped: every sample is the argmax of alpha."""
    mp.setattr(methods.sampling, "gumbel", lambda shape, *, like, generator=None: torch.zeros(shape, dtype=like.dtype))


def _bug_arch_step_every_other(mp: pytest.MonkeyPatch) -> None:
    """The architecture step is skipped every other iteration."""
    original = methods.base.SearchMethod.arch_step

    def skipping(self: Any, batch: Any) -> dict[str, float]:
        self._calls = getattr(self, "_calls", 0) + 1
        return original(self, batch) if self._calls % 2 else {}

    mp.setattr(methods.base.SearchMethod, "arch_step", skipping)


def _bug_tau_reversed(mp: pytest.MonkeyPatch) -> None:
    """The temperature schedule runs backwards (tau grows from tau_min to tau_max)."""
    mp.setattr(methods.base, "tau_schedule", lambda epoch, epochs, tau_max, tau_min: tau_min + (tau_max - tau_min)
               * epoch / max(epochs - 1, 1))


#: bug -> (injection, the exact checks it must make fail)
BUGS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "none-under-td": (_bug_none_under_td, {"method_samples", "steps"}),
    "edges-not-distinct": (_bug_edges_not_distinct, {"method_samples", "steps"}),
    "no-gumbel-noise": (_bug_no_gumbel_noise, {"samplers", "method_samples", "steps"}),
    "arch-step-every-other": (_bug_arch_step_every_other, {"steps"}),
    "tau-reversed": (_bug_tau_reversed, {"steps"}),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_exact_part_fails_on_an_injected_bug(bug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inject, must_fail = BUGS[bug]
    inject(monkeypatch)
    rows = check.exact_rows(exact.compute(["samplers", "method_samples", "steps"]), COMMITTED["exact"])
    failed = {r.subject for r in rows if r.verdict == "FAIL"}
    assert must_fail <= failed, (bug, [(r.subject, r.notes) for r in rows])


def test_exact_compare_tolerates_rounding_only() -> None:
    committed = {"steps": {"m": [{"arch": [1.0, 2.0], "arch_steps": 1, "iteration": 0}]}}
    same = {"steps": {"m": [{"arch": [1.0 + 1e-12, 2.0], "arch_steps": 1, "iteration": 0}]}}
    moved = {"steps": {"m": [{"arch": [1.0 + 1e-4, 2.0], "arch_steps": 1, "iteration": 0}]}}
    assert exact.compare(same, committed) == {"steps": []}
    assert exact.compare(moved, committed)["steps"] == ["steps/m[0]/arch[0]: 1 -> 1.0001"]


# -- the distribution part ---------------------------------------------------------------------------------

SEEDS = 8


def _runs(values: dict[str, list[float]], method: str = "gdas", **extra: Any) -> check.Runs:
    n = len(values["test_error"])
    return {check.run_key(method, "s2-digits", s): {"method": method, "bench": "s2-digits", "seed": s,
                                                     "status": "complete", "options": {}, **extra,
                                                     **{k: v[s] for k, v in values.items()}}
            for s in range(n)}


def _draw(seed: int, **shift: float) -> dict[str, list[float]]:
    """Eight seeds of a learning search: val acc ~ 65 %, ~3 parameterless ops, entropy falling 0.69 -> 0.5."""
    g = torch.Generator().manual_seed(seed)

    def noisy(mean: float, sd: float) -> list[float]:
        return (mean + sd * torch.randn(SEEDS, generator=g, dtype=torch.float64)).tolist()

    values = {"test_error": noisy(8.0, 2.0), "parameterless_normal": [float(round(v)) for v in noisy(3.0, 1.0)],
              "search_val_acc": noisy(65.0, 6.0), "op_entropy": noisy(0.50, 0.04), "op_entropy_first": [0.69] * SEEDS}
    for metric, delta in shift.items():
        values[metric] = [v + delta for v in values[metric]]
    return values


BASE = _draw(0)


def _verdicts(rows: list[check.Row]) -> dict[str, str]:
    return {r.subject.split()[-1]: r.verdict for r in rows}


def test_distribution_passes_a_new_draw_and_fails_each_harmful_shift() -> None:
    rows = check.compare_distributions(_runs(_draw(1)), _runs(BASE))
    assert set(_verdicts(rows).values()) == {"ok"}, [(r.subject, r.notes) for r in rows]
    assert "one-sided Welch" in rows[0].notes[0] and "Holm p=" in rows[0].notes[0]
    for metric, harmful in (("test_error", 8.0), ("parameterless_normal", 3.0), ("search_val_acc", -30.0),
                            ("op_entropy", 0.15)):
        verdicts = _verdicts(check.compare_distributions(_runs(_draw(1, **{metric: harmful})), _runs(BASE)))
        assert verdicts[metric] == "FAIL" and sum(v == "FAIL" for v in verdicts.values()) == 1, (metric, verdicts)
        # the same shift in the helpful direction is no regression: one-sided tests
        verdicts = _verdicts(check.compare_distributions(_runs(_draw(1, **{metric: -harmful})), _runs(BASE)))
        assert set(verdicts.values()) == {"ok"}, (metric, verdicts)


def test_an_all_parameterless_cell_and_a_chance_level_supernet_fail_the_check() -> None:
    """The two regressions the old two-sided Bonferroni check let pass (p ~ 0.005 against 5 seeds)."""
    all_skip = {**_draw(1), "parameterless_normal": [8.0] * SEEDS}
    rows = check.compare_distributions(_runs(all_skip), _runs(BASE))
    assert _verdicts(rows)["parameterless_normal"] == "FAIL"
    chance = {**_draw(1), "search_val_acc": [11.0, 9.5, 10.2, 12.0, 10.9, 9.0, 10.0, 11.5]}
    assert _verdicts(check.compare_distributions(_runs(chance), _runs(BASE)))["search_val_acc"] == "FAIL"
    inv = {r.subject: r.verdict for r in check.invariant_rows(_runs(chance, genotype=None))}
    assert inv["s2-digits/gdas: mean search accuracy beats chance by 30 points"] == "FAIL"


def test_holm_keeps_the_family_wise_rate_over_every_test() -> None:
    base, rerun = _runs(BASE), _runs(_draw(1, search_val_acc=-7.0))  # one moderate shift: p ~ 0.02
    rows = check.compare_distributions(rerun, base)
    note = next(r.notes[0] for r in rows if r.subject.endswith("search_val_acc"))
    p_raw, p_holm = (float(re.search(rf"{k}=([0-9.e+-]+)", note).group(1)) for k in ("Welch p", "Holm p"))
    assert p_raw < 0.05 and p_holm == pytest.approx(min(1.0, p_raw * 4), rel=0.01) and p_holm > check.ALPHA
    assert _verdicts(rows)["search_val_acc"] == "ok"


def test_distribution_needs_baseline_seeds() -> None:
    rows = check.compare_distributions(_runs(BASE), {})
    assert {r.verdict for r in rows} == {"FAIL"} and "harness check --update" in rows[0].notes[0]


def test_identical_values_pass_and_differences_below_resolution_pass() -> None:
    flat = {"test_error": [10.0] * 5, "parameterless_normal": [4] * 5, "search_val_acc": [50.0] * 5}
    assert {r.verdict for r in check.compare_distributions(_runs(flat), _runs(flat))} == {"ok"}
    nudged = {**flat, "test_error": [10.2] * 5}  # less than one test image
    assert {r.verdict for r in check.compare_distributions(_runs(nudged), _runs(flat))} == {"ok"}


def _invariants(runs: check.Runs) -> dict[str, str]:
    return {r.subject: r.verdict for r in check.invariant_rows(runs)}


def test_invariants_hold_on_a_learning_search_and_fail_on_each_broken_one() -> None:
    schedule = {"tau": [10.0 - 9.9 * e / 9 for e in range(10)], "tau_schedule": [10.0, 0.1, 10]}
    cell = [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4
    good = _runs(_draw(1), "rome-v2", genotype={"normal": cell, "reduce": cell}, **schedule)
    assert set(_invariants(good).values()) == {"ok"}, _invariants(good)
    moved = "s2-digits/rome-v2: the op distribution moved (final / first-epoch entropy)"
    frozen = _runs({**_draw(1), "op_entropy": [0.69] * SEEDS}, "rome-v2", genotype={"normal": cell, "reduce": cell},
                   **schedule)
    assert _invariants(frozen)[moved] == "FAIL"
    fixed = _runs(_draw(1), "rome-v2", genotype={"normal": cell, "reduce": cell}, tau=[10.0] * 10,
                  tau_schedule=[10.0, 0.1, 10])
    assert _invariants(fixed)["s2-digits/rome-v2: tau follows its linear schedule every epoch"] == "FAIL"
    twice = [["sep_conv_3x3", 0], ["skip_connect", 0]] + cell[2:]
    broken = _runs(_draw(1), "rome-v2", genotype={"normal": twice, "reduce": cell}, **schedule)
    assert _invariants(broken)["ROME cells: two distinct inputs per node, no 'none' (Eq. 1)"] == "FAIL"
    failed = {**good, "s2-digits/rome-v2/seed0": {**good["s2-digits/rome-v2/seed0"], "status": "failed"}}
    assert _invariants(failed)["every run completes"] == "FAIL"


def test_td_invariant_catches_a_node_with_one_input_twice() -> None:
    twice = [["sep_conv_3x3", 0], ["skip_connect", 0]] + [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 3
    assert not td_cell_ok(twice)
    assert not td_cell_ok([["none", 0], ["sep_conv_3x3", 1]] * 4)
    assert td_cell_ok([["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4)


@pytest.mark.slow
def test_update_then_rerun_passes(tmp_path: Path, capsys) -> None:
    baseline = tmp_path / "check.json"
    (tmp_path / "none").mkdir()  # no paper results (a missing --paper-dir is an error)
    common = ["--methods", "gdas", "--seeds", "0,1", "--jobs", "1", "--paper-dir", str(tmp_path / "none")]
    code, out = _check(capsys, "--update", "--baseline", str(baseline), "--out", str(tmp_path / "a"), *common)
    assert code == 0, out
    saved = json.loads(baseline.read_text())
    assert set(saved["runs"]) == {"s2-digits/gdas/seed0", "s2-digits/gdas/seed1"}
    assert set(saved["exact"]) == set(exact.CHECKS) and saved["env"]["cpu_capability"]
    code, out = _check(capsys, "--baseline", str(baseline), "--out", str(tmp_path / "b"), *common)
    assert code == 0 and "check passed" in out, out


def test_check_rejects_names_outside_the_suite(capsys) -> None:
    code, out = _check(capsys, "--methods", "snas", "--paper-only")
    assert code == 2 and "not a method of the check suite" in out
    code, out = _check(capsys, "--seeds", "0", "--paper-only")
    assert code == 2 and "at least 2 distinct seeds" in out


def test_packaged_baseline_covers_the_suite() -> None:
    expected = {check.run_key(c.method, c.bench, c.seed) for c in check.suite_configs()}
    assert set(COMMITTED["runs"]) == expected
    for run in COMMITTED["runs"].values():
        assert run["status"] == "complete" and 0 <= run["parameterless_normal"] <= 8
    # the committed suite passes its own invariants (a learning supernet, a moving architecture)
    assert {r.verdict for r in check.invariant_rows(COMMITTED["runs"])} == {"ok"}
    assert set(COMMITTED["exact"]) == set(exact.CHECKS)


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


def test_paper_results_are_judged_by_the_verdict_rule(tmp_path: Path, capsys) -> None:
    paper = tmp_path / "paper"
    paper.mkdir()
    _paper_result(paper, "rome-v2", "s2-c10", 0, 3.05, 2)  # Table 1: 3.14 +- 0.14 (n 3), num 2.0 +- 0.0
    _paper_result(paper, "rome-v2", "s2-c10", 1, 3.21, 2)
    _paper_result(paper, "rome-v2", "s3-c10", 0, 2.69, 2)  # one seed: no variance, inconclusive
    rows = check.compare_paper(check.paper_results(paper))
    assert [r.verdict for r in rows] == ["warn", "warn"], rows
    # two seeds against n = 3 cannot show equivalence within one std: inconclusive, not "reproduced" (the
    # old overlap rule's verdict, its interval [2.11, 4.15] overlapping 3.14 +- 0.14); the count is exact
    assert "n=2" in rows[0].subject and "tes 3.13 inconclusive, par 2.00 reproduced" in rows[0].got
    assert "test error 3.13 vs 3.14 +- 0.14 (n=3): inconclusive, Δ -0.01, 90 % CI" in rows[0].notes[0]
    assert "equivalence cannot be shown at this published n" in rows[0].notes[0]
    assert "no variance estimate" in rows[1].notes[0]

    code, out = _check(capsys, "--paper-only", "--paper-dir", str(paper))
    assert code == 0 and "check passed" in out

    for seed in (0, 1):  # error fine (3.05 +- 0.02), 9 parameterless ops vs 7.8 +- 0.4 (n 3): worse
        _paper_result(paper, "gdas", "s2-svhn", seed, 3.05, 9)
    for seed, err in ((0, 3.30), (1, 3.32)):  # Table 6 (no TD, no GA-alpha): 3.02 +- 0.05: worse
        _paper_result(paper, "rome-v2", "s0-c10", seed, err, 2, {"td": False, "ga_alpha": False})
    code, out = _check(capsys, "--paper-only", "--paper-dir", str(paper))
    assert code == 1
    assert "parameterless ops 9.00 vs 7.80 +- 0.40 (n=3): worse, Δ +1.20, 90 % CI [0.53, 1.87], margin ±0.40" in out
    assert "test error 3.31 vs 3.02 +- 0.05 (n=3): worse" in out


def test_paper_comparison_judges_rome_minus_gdas(tmp_path: Path) -> None:
    """ROME-v2 - GDAS per benchmark against the published difference (Table 1 S1 CIFAR-10: 2.66 - 2.89 =
    -0.23, num 1.3 - 3.8 = -2.5): here ROME is worse than GDAS in error, so the difference fails; ROME's
    count lead of 3 ops against the published 2.5 +- 0.57 is inconclusive."""
    paper = tmp_path / "paper"
    paper.mkdir()
    for seed, (rome, gdas) in enumerate(((3.50, 2.89), (3.52, 2.90), (3.54, 2.88))):
        _paper_result(paper, "rome-v2", "s1-c10", seed, rome, 1)
        _paper_result(paper, "gdas", "s1-c10", seed, gdas, 4)
    rows = check.compare_paper(check.paper_results(paper))
    diff = [r for r in rows if "rome-v2 - gdas" in r.subject]
    assert len(diff) == 1 and diff[0].verdict == "FAIL", rows
    assert diff[0].subject == "s1-c10 rome-v2 - gdas (n=3, 3)"
    assert diff[0].expected == "err -0.23, num -2.5 (published difference)"
    assert "tes 0.63 worse" in diff[0].got
    assert "parameterless ops difference -3.00 vs -2.50 +- 0.57 (n=3): inconclusive" in "; ".join(diff[0].notes)
    only_rome = [r for r in check.paper_results(paper) if r["method"] == "rome-v2"]
    assert not [r for r in check.compare_paper(only_rome) if "gdas" in r.subject]  # no GDAS runs: no difference


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
