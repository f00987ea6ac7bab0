"""`harness.evidence.check_power`: each injected regression really breaks what it names (the exact part sees it),
and the resampled trials count failures of the check's own decision on synthetic pools: a harmful pool
fails nearly always, a clean one rarely."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from harness.evidence import check, check_power, exact

COMMITTED = check.load_baseline(check.CHECK_BASELINE)


@pytest.mark.parametrize("name", list(check_power.INJECTIONS))
def test_each_injected_regression_changes_the_method_steps(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    check_power.inject(name, monkeypatch.setattr)
    rows = check.exact_rows(exact.compute(["steps"]), COMMITTED["exact"])
    assert [r.verdict for r in rows] == ["FAIL"], (name, rows)


def _rome(monkeypatch: pytest.MonkeyPatch, name: str | None) -> Any:
    if name is not None:
        check_power.inject(name, monkeypatch.setattr)
    return exact._method("rome-v2", {"k": 3}, "s2")  # a tiny S2 supernet, mid-search


def test_injections_do_what_they_say(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = _rome(monkeypatch, None)
    assert (clean.k_arch, clean.k_weight) == (3, 3)
    clean.begin_epoch(5, 10)
    assert clean.tau < clean.hp.tau_max
    with monkeypatch.context() as mp:
        assert _rome(mp, "k-ignored").k_arch == 1
    with monkeypatch.context() as mp:
        m = _rome(mp, "tau-fixed")
        m.begin_epoch(5, 10)
        assert m.tau == m.hp.tau_max
    with monkeypatch.context() as mp:
        assert not _rome(mp, "arch-frozen").arch_update_enabled()
    with monkeypatch.context() as mp:
        sampled = _rome(mp, "td-off").sample()["normal"]
        assert sampled.active is None  # every edge runs: no in-degree constraint (Eq. 1)
    with monkeypatch.context() as mp:
        m = _rome(mp, "all-skip")
        ops = m.shapes["normal"].ops
        assert all(ops[e][i] == "skip_connect" for e, i in enumerate(m.sample()["normal"].op_index))
    with monkeypatch.context() as mp:
        m = _rome(mp, "gumbel-dropped")
        assert len({tuple(m.sample()["normal"].active) for _ in range(20)}) == 1  # always the top 2 of beta


def _pool(method: str, seeds: range, shift: dict[str, float] | None = None) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seeds.start * 7 + len(method))
    shift = shift or {}
    runs = []
    for s in seeds:
        def draw(mean: float, sd: float, metric: str) -> float:
            return float(mean + sd * torch.randn(1, generator=g)) + shift.get(metric, 0.0)

        runs.append({"method": method, "bench": "s2-digits", "seed": s, "status": "complete", "options": {},
                     "test_error": draw(8.0, 2.0, "test_error"),
                     "parameterless_normal": min(8.0, float(round(draw(3.0, 1.0, "parameterless_normal")))),
                     "search_val_acc": draw(65.0, 6.0, "search_val_acc"), "op_entropy": draw(0.5, 0.04, "op_entropy"),
                     "op_entropy_first": 0.69, "genotype": None})
    return runs


def test_trials_count_failures_of_the_checks_decision() -> None:
    clean = _pool("gdas", range(24))
    null = check_power.trials(clean, None, n=100, size=8)
    assert null["either"] <= 5, null  # a false alarm is rare
    collapsed = _pool("gdas", range(100, 108), {"parameterless_normal": 5.0, "search_val_acc": -10.0})
    hit = check_power.trials(clean, collapsed, n=100, size=8)
    assert hit["dist"] >= 95 and hit["either"] >= 95, hit
    frozen = _pool("gdas", range(100, 108), {"op_entropy": 0.19})  # entropy stays at 0.69: the architecture froze
    hit = check_power.trials(clean, frozen, n=50, size=8)
    assert hit["invariants"] == 50, hit


def test_report_lists_every_pool_with_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"clean": {"runs": _pool("gdas", range(24)), "exact_failed": [], "seconds": 1.0},
            "all-skip": {"runs": _pool("gdas", range(100, 108), {"parameterless_normal": 5.0}),
                         "exact_failed": ["steps"], "seconds": 1.0}}
    text = check_power.report(data, 40, "python -m harness.evidence.check_power --out X", 60.0)
    assert "| clean | nothing (false alarms) | passes |" in text
    assert "| all-skip | every sampled op is replaced by skip-connect | fails (steps) |" in text
    assert "100.0 % [91.2, 100.0] |\n" in text  # the whole check: the exact part always fails


def test_unknown_regression_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        check_power.main(["--out", str(tmp_path), "--only", "no-such"])
    assert exc.value.code == 2 and "valid: arch-frozen" in capsys.readouterr().err
