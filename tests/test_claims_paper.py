"""Every claim of harness.evidence.claims on synthetic runs: one input on which it must hold and one on which it
must fail (a claim that cannot fail tests nothing); claims without their runs keep a 'not evaluated' row;
Holm over the family; the chance level of a parameterless count."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.evidence import claims


def runs(method: str, bench: str, col: str, values: list[float], settings: tuple[str, ...] = (),
         **options: Any) -> list[dict[str, Any]]:
    """One complete run per value (seeds 0..), ``col`` set to it, ``settings`` its changed spec fields;
    hand-made frames get one config per method and options (harness.evidence.claims._prepared)."""
    tag = "_".join(f"{k}{v}" for k, v in sorted(options.items())) + "_".join(settings)
    return [{"run_id": f"{bench}_{method}_{tag}_{s}", "method": method, "bench": bench, "budget": "cpu", "seed": s,
             "status": "complete", "options": dict(options), "config_id": f"{method}{tag}", "label": method,
             "settings": settings, col: v} for s, v in enumerate(values)]


def one(name: str, rows: list[dict[str, Any]], **kw: Any) -> claims.Outcome:
    out = claims.evaluate(pd.DataFrame(rows), "cpu", [name], **kw)
    assert len(out) == 1, out
    return out[0]


HIGH, LOW = [7, 6, 7, 8, 7], [2, 3, 2, 1, 2]
ERR = [10.0, 10.1, 9.9, 10.05, 9.95]


def pair(name: str, bench: str, rival: str, col: str, a: list[float], b: list[float]) -> bool | None:
    return one(name, runs("rome-v2", bench, col, a) + runs(rival, bench, col, b)).holds


@pytest.mark.parametrize("n", [1, 3])
def test_table1_counts(n: int) -> None:
    b = f"s{n}-digits"
    assert one(f"gdas-collapses-s{n}", runs("gdas", b, "parameterless_normal", HIGH)).holds
    assert not one(f"gdas-collapses-s{n}", runs("gdas", b, "parameterless_normal", [4, 5, 3, 4, 4])).holds
    assert pair(f"rome-below-gdas-s{n}", b, "gdas", "parameterless_normal", LOW, HIGH)
    assert not pair(f"rome-below-gdas-s{n}", b, "gdas", "parameterless_normal", HIGH, LOW)


@pytest.mark.parametrize(("name", "bench", "rival"), [
    ("rome-error-not-worse-s2", "s2-digits", "gdas"), ("s0-not-worse-than-darts", "s0-digits", "darts"),
    ("s0-not-worse-than-pcdarts", "s0-digits", "pcdarts"), ("nb1s2-not-worse", "nb1s2-digits", "gdas")])
def test_not_worse_is_non_inferiority(name: str, bench: str, rival: str) -> None:
    assert pair(name, bench, rival, "test_error", ERR, ERR)
    noisy = [8.0, 12.0, 9.0, 11.5, 9.5]  # same mean as ERR but too noisy to exclude +1 point: must not hold
    out = one(name, runs("rome-v2", bench, "test_error", noisy) + runs(rival, bench, "test_error", ERR))
    assert not out.holds and out.p is not None and out.p > 0.05 and out.high > claims.ERROR_MARGIN


@pytest.mark.parametrize(("name", "bench", "rival"), [
    ("rome-error-better-s4", "s4-digits", "gdas"), ("s0-better-than-gdas", "s0-digits", "gdas")])
def test_better_is_superiority(name: str, bench: str, rival: str) -> None:
    assert pair(name, bench, rival, "test_error", [e - 2 for e in ERR], ERR)
    assert not pair(name, bench, rival, "test_error", ERR, ERR)


def test_nasbench_skip_count() -> None:
    assert pair("nb1s1-skip-below-gdas", "nb1s1-digits", "gdas", "skip_connect_normal", LOW, HIGH)
    assert not pair("nb1s1-skip-below-gdas", "nb1s1-digits", "gdas", "skip_connect_normal", LOW, LOW)


def k_runs(col: str, per_k: dict[int, list[float]]) -> list[dict[str, Any]]:
    """Runs of Table 5's sweep, each K with the settings its 7/K epochs change (search.epochs, arch steps)."""
    own = {n.opts["k"]: tuple(sorted(claims._own_settings(n, "cpu"))) for n in claims.CLAIMS["k-trend-num"].needs}
    return [r for k, v in per_k.items() for r in runs("rome-v2", "s0-digits", col, v, own[k], k=k)]


def test_table5_trend_over_k() -> None:
    falling = {1: [6, 5, 6, 6, 5], 3: [5, 4, 5, 4, 5], 5: [4, 3, 4, 3, 4], 7: [2, 3, 2, 3, 2]}
    out = one("k-trend-num", k_runs("parameterless_normal", falling))
    assert out.holds and out.effect < 0
    rising = dict(zip(falling, reversed(falling.values()), strict=True))
    assert not one("k-trend-num", k_runs("parameterless_normal", rising)).holds
    assert not one("k-trend-error", k_runs("test_error", {k: ERR for k in claims.K_LEVELS})).holds
    missing = one("k-trend-error", k_runs("test_error", {1: ERR, 7: ERR}))
    assert missing.holds is None and missing.detail.startswith("not evaluated: no complete runs of rome-v2 (K=3)")


def factorial(effect: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for need in claims.CLAIMS["ablation-td"].needs:
        o = need.opts
        shift = sum(-v for f, v in effect.items() if o[f])
        rows += runs("rome-v2", "s0-digits", "test_error", [e + shift for e in ERR], **o)
    return rows


def test_table6_factor_effects() -> None:
    rows = factorial({"td": 1.0, "ga_theta": 0.0, "ga_alpha": 0.5})
    assert one("ablation-td", rows).holds and one("ablation-ga-alpha", rows).holds
    out = one("ablation-ga-theta", rows)
    assert not out.holds and out.effect == pytest.approx(0.0)


def history(per_seed: list[list[int]], method: str) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    rows = runs(method, "s0-digits", "test_error", ERR)
    hist = [{"run_id": r["run_id"], "epoch": e, "skip_connect_normal": v}
            for r, seq in zip(rows, per_seed, strict=True) for e, v in enumerate(seq)]
    return rows, pd.DataFrame(hist)


def test_fig3_skip_trajectory() -> None:
    rising = [[1, 2, 3, 4], [1, 1, 3, 5], [0, 2, 3, 3], [2, 3, 4, 5], [1, 2, 2, 4]]
    flat = [[2, 2, 2, 2], [2, 1, 2, 2], [1, 2, 1, 1], [2, 2, 2, 1], [3, 2, 2, 2]]
    rows, h = history(rising, "gdas")
    assert one("gdas-skip-rises", rows, history=h).holds
    rows, h = history(flat, "gdas")
    assert not one("gdas-skip-rises", rows, history=h).holds
    rows, h = history(flat, "rome-v2")
    assert one("rome-skip-flat", rows, history=h).holds
    rows, h = history(rising, "rome-v2")
    assert not one("rome-skip-flat", rows, history=h).holds
    assert one("rome-skip-flat", rows).detail == "not evaluated: no search history was read"


def profiles(rome: list[float], rival: str, other: list[float]) -> pd.DataFrame:
    def row(method: str, values: list[float]) -> dict[str, Any]:
        return {"method": method, "options": {}, "space": "s0", "saved_bytes": max(values),
                "subnets": {"values": values} if len(values) > 1 else None}
    return pd.DataFrame([row("rome-v2", rome), row(rival, other)])


def test_table7_memory_ratio() -> None:
    small, large = [1.0e6, 1.1e6, 0.9e6, 1.05e6] * 5, [2.0e6, 2.2e6, 1.8e6, 2.1e6] * 5
    out = one("memory-below-gdas", [], profiles=profiles(small, "gdas", large))
    assert out.holds and out.effect == pytest.approx(sum(small) / sum(large)) and out.high < 1
    assert not one("memory-below-gdas", [], profiles=profiles(large, "gdas", small)).holds
    assert one("memory-below-darts", [], profiles=profiles(small, "darts", [3e6])).holds  # DARTS: one pass
    assert not one("memory-below-darts", [], profiles=profiles(small, "darts", [0.5e6])).holds
    assert one("memory-below-darts", []).detail.startswith("not evaluated: no profile of rome-v2")


def test_eq1_on_sampled_paths_fails_without_td(monkeypatch: pytest.MonkeyPatch) -> None:
    assert claims.sampled_path_violations("rome-v2", draws=20) == 0
    assert claims.sampled_path_violations("gdas", draws=20) == 20
    monkeypatch.setattr(claims, "sampled_path_violations",
                        lambda method, options=None, draws=100, **_: 0 if method == "rome-v2" and not options else 7)
    assert one("eq1-sampled-paths", []).holds
    monkeypatch.setattr(claims, "EQ1_METHOD", ("rome-v2", {"td": False}))
    out = one("eq1-sampled-paths", [])
    assert out.holds is False and out.effect == 7


def test_every_claim_keeps_a_row_without_runs() -> None:
    out = claims.evaluate(pd.DataFrame(), "cpu", [n for n in claims.CLAIMS if n != "eq1-sampled-paths"])
    assert [o.claim for o in out] == [n for n in claims.CLAIMS if n != "eq1-sampled-paths"]
    assert all(o.holds is None and o.detail.startswith(claims.NOT_EVALUATED) for o in out)


def test_holm_over_the_family() -> None:
    weak = [5, 6, 5, 5, 5]  # one-sided exact p 0.025 each: holds alone, not as two of a family
    rows = runs("gdas", "s2-digits", "parameterless_normal", weak) + runs("gdas", "s4-digits", "parameterless_normal",
                                                                          weak)
    alone = claims.evaluate(pd.DataFrame(rows), "cpu", ["gdas-collapses-s2"])[0]
    family = claims.evaluate(pd.DataFrame(rows), "cpu", ["gdas-collapses-s2", "gdas-collapses-s4"])
    assert alone.holds and alone.p_holm == alone.p < 0.05
    assert all(o.p == pytest.approx(alone.p) and o.p_holm == pytest.approx(2 * alone.p) and not o.holds
               for o in family)
    table = claims.table(family)
    assert {"p", "p (Holm)"} <= set(table.columns)


def test_chance_level_is_exact_and_per_rule() -> None:
    for space in ("s1", "s2", "s3", "s4"):
        for rule in ("gdas", "edges"):
            pmf = claims.chance_pmf(space, rule)
            assert len(pmf) == 9 and math.isclose(sum(pmf), 1.0)
    # S2 (skip or sep_conv on every edge), TD rule: 8 independent fair coins
    assert claims.chance_pmf("s2", "edges") == pytest.approx([math.comb(8, c) / 256 for c in range(9)])
    # GDAS rule: node i picks 2 of its 2(i + 2) (edge, op) pairs, half of them parameterless
    node0 = [math.comb(2, c) * math.comb(2, 2 - c) / math.comb(4, 2) for c in range(3)]
    assert claims.chance_pmf("s2", "gdas")[0] == pytest.approx(
        math.prod(math.comb(n, 2) / math.comb(2 * n, 2) for n in (2, 3, 4, 5)))
    assert node0[0] == pytest.approx(1 / 6)
    assert claims.chance_rule("gdas") == "gdas" and claims.chance_rule("rome-v2", {"td": False}) == "gdas"
    assert claims.chance_rule("rome-v2") == "edges" and claims.chance_rule("darts") == "edges"
    with pytest.raises(ValueError, match="DARTS spaces"):
        claims.chance_pmf("nb1s1", "gdas")


def test_declared_runs_resolve() -> None:
    need = claims.CLAIMS["k-trend-num"].needs[0]
    specs = need.configs("cpu", [0, 1])
    assert [s.options["k"] for s in specs] == [1, 1] and specs[0].search.epochs > \
        claims.CLAIMS["k-trend-num"].needs[-1].configs("cpu", [0])[0].search.epochs
    fixed = claims.CLAIMS["healthy-cell-beats-collapsed"].needs[1].configs("cpu", [0])
    assert fixed[0].method == "fixed"


def test_k_sweep_runs_are_the_trend_s_own_configurations(tmp_path: Path) -> None:
    """Real result files: Table 5's runs change search.epochs (7/K) and the arch-step counts derived from it;
    those settings are the K-trend needs' own, not a variant, and a plain K=3 run (the budget's epochs) is
    never taken for the sweep's K=3."""
    from reports.data import load_runs
    from tests.report_runs import result_for, write_run

    needs = claims.CLAIMS["k-trend-num"].needs
    for need in needs:
        for spec in need.configs("cpu", [0, 1, 2]):
            r = result_for("rome-v2", "s0-digits", "cpu", spec.seed, options=spec.options,
                           sets={"search.epochs": spec.search.epochs})
            assert r["run_id"] == spec.run_id  # the same spec as `harness reproduce` makes
            write_run(tmp_path, r)
    plain = [result_for("rome-v2", "s0-digits", "cpu", s) for s in (0, 1, 2)]  # K=3 at the budget's epochs
    assert plain[0]["config"]["search"]["epochs"] != needs[1].configs("cpu", [0])[0].search.epochs
    for r in plain:
        write_run(tmp_path, r)
    out = one("k-trend-error", load_runs(tmp_path).to_dict("records"))
    assert out.variant == claims.DEFAULTS and out.p is not None, out.detail
    assert "search.epochs=47" in out.seeds and out.seeds.count(": 0,1,2") == 4
    sweep_k3 = {s.run_id for s in needs[1].configs("cpu", [0, 1, 2])}
    for rid in sweep_k3:
        (tmp_path / rid / "result.json").unlink()
    missing = one("k-trend-error", load_runs(tmp_path).to_dict("records"))  # the plain K=3 runs are still there
    assert missing.holds is None and missing.detail.startswith("not evaluated: no complete runs of rome-v2 (K=3)")


@pytest.mark.parametrize(("name", "kind"), [
    ("rome-below-gdas-s2", "count"), ("nb1s1-skip-below-gdas", "count"), ("gdas-skip-rises", "sign"),
    ("rome-skip-flat", "sign")])
def test_declared_seeds_can_hold_after_holm(name: str, kind: str) -> None:
    """An exact test's smallest p is set by its seeds (1 / C(2n, n), 1 / 2^n): with the declared seeds the
    most extreme input must reach ALPHA over the whole family, else the claim could never hold after Holm.
    With 5 seeds it cannot (the inputs on which this must fail)."""
    family = sum(c.name != "eq1-sampled-paths" for c in claims.CLAIMS.values())  # every other row has a p

    def best_p(n: int) -> float:
        claim = claims.CLAIMS[name]
        if kind == "count":
            return one(name, runs("rome-v2", claim.needs[0].bench, claim.column, [1.0] * n)
                       + runs("gdas", claim.needs[0].bench, claim.column, [7.0] * n)).p
        good = [[2, 2, 2, 2]] * n if name == "rome-skip-flat" else [[1, 2, 3, 4]] * n
        method = claim.needs[0].method
        rows = runs(method, "s0-digits", "test_error", [10.0] * n)
        h = pd.DataFrame([{"run_id": r["run_id"], "epoch": e, "skip_connect_normal": v}
                          for r, seq in zip(rows, good, strict=True) for e, v in enumerate(seq)])
        return one(name, rows, history=h).p

    assert best_p(len(claims.CLAIMS[name].seeds)) * family < claims.ALPHA
    assert best_p(5) * family > claims.ALPHA
