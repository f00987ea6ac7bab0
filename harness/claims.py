"""The paper's claims as statistical tests over seeds, evaluated on recorded runs (`harness report --claims`).

Each claim (:data:`CLAIMS`) states a hypothesis from the paper, which runs it reads (method, benchmark,
budget; one value per seed), the test (:mod:`harness.stats`: one-sided Welch t-test, one-sample t-test,
or a count) and reports the effect with its 95 % interval and p-value. A claim *holds* at a scale when
the test rejects its null at ``ALPHA`` (0.05, one-sided); one that does not hold is reported with its
numbers - a finding about that scale, not a failure of the harness.

Runs are never pooled across specs (:func:`evaluate`): a group of a claim holds the seeds of one
configuration (``config_id``: the resolved spec without the seed), and a claim is evaluated once per
*variant* - the spec fields its runs change from the defaults of their method, benchmark, budget and
preset (``settings``; method options aside, since they belong to one method). A claim comparing two
methods pairs their configurations with the same variant, one row per pair; a claim over one method
gives one row per configuration; ``td-cells`` and ``healthy-cell-beats-collapsed``, which vary the
method or genotype themselves, give one row per variant. Runs of the defaults are the variant
``defaults``.

The claims (ROME, Sec. 1, 3.3-3.6, Table 1, Table 5, Fig. 3):

* ``gdas-collapses-s3`` / ``-s2``: GDAS's derived normal cell holds more than half (4 of 8)
  parameterless ops (Table 1's "Num"; the paper's GDAS reaches 6-8 in S2/S3).
* ``rome-below-gdas-s3`` / ``-s2``: ROME-v2 keeps fewer parameterless ops than GDAS (Table 1).
* ``gdas-supernet-worse-s3``: GDAS's supernet ends with a lower search validation accuracy than ROME-v2's
  (the collapsed supernet of Fig. 3; accuracy of the supernet, not of a derived cell).
* ``darts-collapses-s3``: DARTS's parameterless count exceeds ROME-v2's (Table 1).
* ``td-cells``: ROME with TD never derives ``none`` and gives every node two distinct inputs (Eq. 1);
  a count over all ROME runs, which must be 0.
* ``k-lowers-gradient-variance``: the K-sample architecture gradient of Eq. 11 varies less with K = 7
  than with K = 1 (Table 5's mechanism): Welch test on per-repetition squared distances to the mean
  gradient (computed here on a fixed supernet and batch, no runs needed).
* ``rome-cells-not-worse-s3``: the test error of ROME-v2's derived cells is not above GDAS's (Table 1);
  two-sided Welch, reported as the difference.
* ``healthy-cell-beats-collapsed``: at the budget's evaluation setting a healthy cell (DARTS_V2's normal
  cell) has a lower test error than a collapsed one (all eight normal-cell ops skip-connections, DARTS_V2's
  reduction cell) - whether the evaluation can tell cells apart at all (`harness eval` runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from harness import stats

ALPHA = 0.05
DEFAULTS = "defaults"
HALF_OF_NORMAL_CELL = 4.0
#: the collapsed cell of ``healthy-cell-beats-collapsed``: every normal-cell op a skip-connection
ALL_SKIP_NORMAL = [["skip_connect", i % 2] for i in range(8)]


@dataclass
class Outcome:
    """A claim's result at one budget."""

    claim: str
    hypothesis: str
    budget: str
    seeds: str
    test: str
    effect: float | None
    low: float | None
    high: float | None
    p: float | None
    holds: bool | None
    detail: str
    variant: str = DEFAULTS  # the spec fields the runs change from the defaults (outside the claim's own)

    def row(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        return {**{k: out.pop(k) for k in ("claim", "hypothesis", "budget", "variant")}, **out}


Frame = pd.DataFrame
ClaimFn = Callable[[Frame, str], "Outcome | list[Outcome] | None"]


@dataclass
class Config:
    """The complete runs of one configuration (its seeds), its label and its variant."""

    label: str
    variant: str
    runs: Frame


def _variant(settings: Any) -> str:
    return ", ".join(settings) if isinstance(settings, tuple | list) and settings else DEFAULTS


def _prepared(df: Frame) -> Frame:
    """``df`` with the columns the grouping reads (a frame made by hand: one configuration per method)."""
    missing = {"config_id": df["method"], "label": df["method"],
               "settings": pd.Series([()] * len(df), index=df.index, dtype=object)}
    return df.assign(**{k: v for k, v in missing.items() if k not in df})


def _configs(df: Frame, method: str, bench: str, budget: str) -> list[Config]:
    """Per config id, the complete runs of ``method`` on ``bench`` at ``budget``, sorted by seed."""
    sel = df[(df["method"] == method) & (df["bench"] == bench) & (df["budget"] == budget)
             & (df["status"] == "complete")]
    return [Config(str(g["label"].iloc[0]), _variant(g["settings"].iloc[0]), g.sort_values("seed"))
            for _, g in sel.groupby("config_id", sort=True)]


def _pairs(a: list[Config], b: list[Config]) -> list[tuple[Config, Config]]:
    """The configurations of two methods that change the same spec fields to the same values."""
    return [(x, y) for x in a for y in b if x.variant == y.variant]


def _values(config: Config, col: str) -> tuple[list[float], list[int]]:
    sel = config.runs.dropna(subset=[col])
    return [float(v) for v in sel[col]], [int(s) for s in sel["seed"]]


def _seeds(*groups: tuple[str, list[int]]) -> str:
    return "; ".join(f"{name}: {','.join(map(str, s))}" for name, s in groups)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _greater(name: str, hypothesis: str, col: str, a: tuple[str, str], b: tuple[str, str], unit: str
             ) -> ClaimFn:
    """Welch one-sided: mean of ``col`` for (method, bench) ``a`` above that of ``b``."""
    def fn(df: Frame, budget: str) -> list[Outcome]:
        out = []
        for ca, cb in _pairs(_configs(df, *a, budget), _configs(df, *b, budget)):
            x, sx = _values(ca, col)
            y, sy = _values(cb, col)
            if len(x) < 2 or len(y) < 2:
                continue
            t = stats.welch(x, y, alternative="greater")
            out.append(Outcome(name, hypothesis, budget, _seeds((ca.label, sx), (cb.label, sy)),
                               "Welch t, one-sided", t.effect, t.low, t.high, t.p, t.p < ALPHA,
                               f"{ca.label} {_mean(x):.2f} vs {cb.label} {_mean(y):.2f} {unit} "
                               f"(n={len(x)}, {len(y)})", ca.variant))
        return out
    return fn


def _above_half(name: str, method: str, bench: str) -> ClaimFn:
    def fn(df: Frame, budget: str) -> list[Outcome]:
        out = []
        for c in _configs(df, method, bench, budget):
            x, sx = _values(c, "parameterless_normal")
            if len(x) < 2:
                continue
            t = stats.one_sample(x, HALF_OF_NORMAL_CELL, alternative="greater")
            out.append(Outcome(name, f"{method}'s normal cell in {bench} keeps more than 4 of 8 parameterless ops "
                               "(collapse, Table 1)", budget, _seeds((c.label, sx)), "one-sample t vs 4, one-sided",
                               t.effect, t.low, t.high, t.p, t.p < ALPHA,
                               f"mean {_mean(x):.2f} parameterless ops, per seed {[int(v) for v in x]}", c.variant))
        return out
    return fn


def _two_sided(name: str, hypothesis: str, col: str, a: tuple[str, str], b: tuple[str, str]) -> ClaimFn:
    """Holds unless ``a``'s mean is significantly above ``b``'s (a 'not worse' claim)."""
    def fn(df: Frame, budget: str) -> list[Outcome]:
        out = []
        for ca, cb in _pairs(_configs(df, *a, budget), _configs(df, *b, budget)):
            x, sx = _values(ca, col)
            y, sy = _values(cb, col)
            if len(x) < 2 or len(y) < 2:
                continue
            t = stats.welch(x, y)
            worse = t.p < ALPHA and t.effect > 0
            out.append(Outcome(name, hypothesis, budget, _seeds((ca.label, sx), (cb.label, sy)),
                               "Welch t, two-sided", t.effect, t.low, t.high, t.p, not worse,
                               f"{ca.label} {_mean(x):.2f} vs {cb.label} {_mean(y):.2f} % test error", ca.variant))
        return out
    return fn


def _by_variant(df: Frame) -> list[tuple[str, Frame]]:
    """``df`` split by variant (the changed spec fields outside the options), ``defaults`` first."""
    variants = [_variant(s) for s in df["settings"]]
    return [(v, df.loc[[x == v for x in variants]])
            for v in sorted(set(variants), key=lambda v: (v != DEFAULTS, v))]


def _td_cells(df: Frame, budget: str) -> list[Outcome]:
    """A count over every ROME method and option (what the claim is about), per variant."""
    from harness.check import td_cell_ok
    from methods.base import METHODS

    done = df[(df["budget"] == budget) & (df["status"] == "complete")]
    rome = done.loc[[m in METHODS and METHODS[m].disentangles_topology(o if isinstance(o, dict) else {})
                 for m, o in zip(done["method"], done.get("options", [{}] * len(done)), strict=True)]]
    out = []
    for variant, runs in _by_variant(rome):
        bad = [f"{r.bench}/{r.method}/seed{r.seed}" for r in runs.itertuples()
               if not all(td_cell_ok(r.genotype[c]) for c in ("normal", "reduce"))]
        out.append(Outcome("td-cells", "ROME (TD) never derives 'none' and keeps two distinct inputs per node "
                           "(Eq. 1)", budget, f"{len(runs)} ROME runs", "count of violating runs", float(len(bad)),
                           None, None, None, not bad, ", ".join(bad) or "no violation", variant))
    return out


def _healthy_vs_collapsed(df: Frame, budget: str) -> list[Outcome]:
    """Per benchmark and variant (the genotype is what the claim varies)."""
    fixed = df[(df["method"] == "fixed") & (df["budget"] == budget) & (df["status"] == "complete")]
    if fixed.empty:
        return []
    from spaces.genotype import KNOWN, to_dict

    darts_v2 = to_dict(KNOWN["DARTS_V2"])["normal"]
    out = []
    for variant, runs in _by_variant(fixed):
        healthy = runs.loc[[g["normal"] == darts_v2 for g in runs["genotype"]]]
        collapsed = runs.loc[[g["normal"] == ALL_SKIP_NORMAL for g in runs["genotype"]]]
        for bench in sorted(set(healthy["bench"]) & set(collapsed["bench"])):
            x = healthy[healthy["bench"] == bench].sort_values("seed")
            y = collapsed[collapsed["bench"] == bench].sort_values("seed")
            if len(x) < 2 or len(y) < 2:
                continue
            t = stats.welch(list(y["test_error"]), list(x["test_error"]), alternative="greater")
            out.append(Outcome("healthy-cell-beats-collapsed", f"on {bench} an all-skip normal cell has a higher "
                               "test error than DARTS_V2's (the evaluation tells cells apart)", budget,
                               _seeds(("all-skip", list(y["seed"])), ("DARTS_V2", list(x["seed"]))),
                               "Welch t, one-sided", t.effect, t.low, t.high, t.p, t.p < ALPHA,
                               f"all-skip {y['test_error'].mean():.2f} vs DARTS_V2 {x['test_error'].mean():.2f} % "
                               "test error", variant))
    return out


# -- K and the variance of the architecture gradient (Eq. 11) --------------------------------------------------

def gradient_spread(k: int, repeats: int = 20, seed: int = 0, space: str = "s3") -> list[float]:
    """Per repetition, the squared distance of ROME-v2's K-sample architecture gradient (Eq. 11, averaged
    over K samples) from the mean of all repetitions, on one fixed supernet and batch."""
    from methods.base import build_method, method_hparams
    from spaces.registry import build_supernet

    torch.manual_seed(seed)
    method = build_method("rome-v2", build_supernet(space, c=8, layers=5, num_classes=10),
                          method_hparams("rome-v2"),
                          {"k": k})
    method.begin_epoch(25, 50)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = torch.randn(32, 3, 16, 16, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    params = method.arch_parameters()
    grads = []
    for _ in range(repeats):
        total = [torch.zeros_like(p) for p in params]
        for _ in range(k):
            loss = F.cross_entropy(method.model(x, method.sample()), y) / k
            for acc, g in zip(total, torch.autograd.grad(loss, params), strict=True):
                acc += g
        grads.append(torch.cat([g.flatten() for g in total]))
    stacked = torch.stack(grads)
    return ((stacked - stacked.mean(0)) ** 2).sum(1).tolist()


def _k_variance(df: Frame, budget: str) -> Outcome:
    low_k, high_k = gradient_spread(1), gradient_spread(7)
    t = stats.welch(low_k, high_k, alternative="greater")
    ratio = _mean(low_k) / _mean(high_k)
    return Outcome("k-lowers-gradient-variance", "the architecture gradient of Eq. 11 varies less with K = 7 "
                   "than with K = 1 (Table 5's mechanism)", "fixed supernet", "20 repetitions per K",
                   "Welch t, one-sided", t.effect, t.low, t.high, t.p, t.p < ALPHA,
                   f"mean squared deviation K=1 {_mean(low_k):.3g}, K=7 {_mean(high_k):.3g} (ratio {ratio:.1f}; "
                   "1/K sampling predicts 7)", "-")


#: name -> (needs runs, evaluation: one outcome, one per variant, or none)
CLAIMS: dict[str, tuple[bool, ClaimFn]] = {
    "gdas-collapses-s3": (True, _above_half("gdas-collapses-s3", "gdas", "s3-digits")),
    "gdas-collapses-s2": (True, _above_half("gdas-collapses-s2", "gdas", "s2-digits")),
    "rome-below-gdas-s3": (True, _greater(
        "rome-below-gdas-s3", "ROME-v2 keeps fewer parameterless ops than GDAS in S3 (Table 1)",
        "parameterless_normal", ("gdas", "s3-digits"), ("rome-v2", "s3-digits"), "parameterless ops")),
    "rome-below-gdas-s2": (True, _greater(
        "rome-below-gdas-s2", "ROME-v2 keeps fewer parameterless ops than GDAS in S2 (Table 1)",
        "parameterless_normal", ("gdas", "s2-digits"), ("rome-v2", "s2-digits"), "parameterless ops")),
    "darts-collapses-s3": (True, _greater(
        "darts-collapses-s3", "DARTS keeps more parameterless ops than ROME-v2 in S3 (Table 1)",
        "parameterless_normal", ("darts", "s3-digits"), ("rome-v2", "s3-digits"), "parameterless ops")),
    "gdas-supernet-worse-s3": (True, _greater(
        "gdas-supernet-worse-s3", "GDAS's supernet ends with lower search validation accuracy than "
        "ROME-v2's in S3 (collapse, Fig. 3)", "search_val_acc", ("rome-v2", "s3-digits"), ("gdas", "s3-digits"),
        "% search val acc")),
    "td-cells": (True, _td_cells),
    "rome-cells-not-worse-s3": (True, _two_sided(
        "rome-cells-not-worse-s3", "ROME-v2's derived cells are not worse than GDAS's in S3 (test error, "
        "Table 1)", "test_error", ("rome-v2", "s3-digits"), ("gdas", "s3-digits"))),
    "healthy-cell-beats-collapsed": (True, _healthy_vs_collapsed),
    "k-lowers-gradient-variance": (False, _k_variance),
}


def evaluate(runs: Frame, budget: str, names: list[str] | None = None) -> list[Outcome]:
    """Every claim (or those in ``names``) on the runs of ``budget``: one outcome per variant (module
    docstring), none where a claim lacks two seeds per group."""
    if not runs.empty:
        runs = _prepared(runs)
    out: list[Outcome] = []
    for name, (needs_runs, fn) in CLAIMS.items():
        if names is not None and name not in names:
            continue
        if needs_runs and runs.empty:
            continue
        found = fn(runs, budget)
        out += [] if found is None else [found] if isinstance(found, Outcome) else found
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}g}" if abs(x) < 1e-2 and x != 0 else f"{x:.{digits}f}"


def table(outcomes: list[Outcome]) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim": o.claim, "hypothesis": o.hypothesis, "budget": o.budget, "variant": o.variant, "seeds": o.seeds,
        "test": o.test,
        "effect": _fmt(o.effect), "95 % CI": "-" if o.low is None else f"[{_fmt(o.low)}, {_fmt(o.high)}]",
        "p": "-" if o.p is None else f"{o.p:.3g}",
        "holds": {True: "yes", False: "**no**", None: "-"}[o.holds], "numbers": o.detail,
    } for o in outcomes])
