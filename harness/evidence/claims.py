"""The paper's results as declared claims with tests that can fail (`harness report --claims`, `harness reproduce`).

A :class:`Claim` is fixed before any run: the paper's result it tests (table, figure or equation), its
hypothesis in the paper's direction, the runs it needs (:class:`Need`: a method with its options on a
benchmark, one run per seed of its ``seeds``: :data:`SEEDS`, or more where an exact test needs them to be
able to hold after Holm, :data:`COUNT_SEEDS` and :data:`SIGN_SEEDS`; a fixed genotype; a memory profile; or
nothing, for a computation on a fixed supernet) and its test (:mod:`harness.evidence.stats`). `harness
reproduce` makes exactly the declared runs; :func:`evaluate` reads them back.

Rules (issue 19):

* A claim reads only the configurations it declares: the method, benchmark, budget *and options* of a
  :class:`Need`. Runs are pooled over seeds only within one configuration (``config_id``: the resolved
  spec without the seed); configurations that change other spec fields (``--set``) are evaluated as a
  *variant* of their own, one row each, compared only with configurations of the same variant.
* "Not worse" is a non-inferiority test with the margin :data:`ERROR_MARGIN` stated here, in advance;
  where the paper says "better" a superiority test is a row of its own. No claim holds on a failure to
  reject.
* A count of parameterless ops is compared with its chance level (:func:`chance_pmf`: the exact
  distribution of the count in a derived normal cell under a uniform architecture, per space and per
  derivation rule), never with a literal 4; small integer counts use exact or permutation tests.
* The family is every tested row of one evaluation: Holm's adjustment (:func:`harness.evidence.stats.holm`); a row
  holds when its *adjusted* p is below :data:`ALPHA`. Raw and adjusted p are both shown. Rows without a
  p-value (an exact count of violations) hold on the count itself and are outside the family.
* A claim that cannot be evaluated still gets its row: ``not evaluated: <reason>``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import pandas as pd
import torch

from harness.evidence import stats
from harness.runs.settings import spec_settings
from harness.spec.runspec import fixed_config, make_config, resolve
from harness.spec.sweeps import k_sweep_configs
from methods.base import METHODS, build_method, method_class, method_hparams, option_label
from spaces.genotype import KNOWN, PARAMETERLESS, from_dict, to_dict
from spaces.registry import build_supernet

ALPHA = 0.05
DEFAULTS = "defaults"
#: the seeds of a claim's declared runs (>= 5 per configuration, issue 19)
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: the seeds of claims whose exact test has a coarse p-value: enough that its smallest attainable p is below
#: ALPHA over the family's size (39 tested rows in the committed cpu report: 0.05 / 39 = 1.3e-3), so that
#: the claim can hold after Holm at all. Two-sample permutation of counts, 7 + 7 runs: 1 / C(14, 7) = 2.9e-4
#: (5 + 5: 1 / 252 = 4.0e-3, never); sign flip over 10 runs: 1 / 2^10 = 9.8e-4 (5 runs: 1 / 32, never).
COUNT_SEEDS: tuple[int, ...] = tuple(range(7))
SIGN_SEEDS: tuple[int, ...] = tuple(range(10))
#: the non-inferiority margin of "not worse" test-error claims, in percentage points, fixed before the runs:
#: a ROME cell may be at most this much worse than its rival for "not worse" to hold. One point is about
#: 1.5 to 3 times the seed-to-seed std of a digits evaluation at budget cpu (docs/cpu-budget results).
ERROR_MARGIN = 1.0
#: Fig. 3 "ROME not rising": the most skip-connections ROME's normal cell may gain over the search
SKIP_RISE_MARGIN = 1.0
#: Table 5's K at the scale model (the paper: 1, 4, 7, 10; 10 is left out to keep the suite in hours)
K_LEVELS: tuple[int, ...] = (1, 3, 5, 7)
#: the collapsed cell of ``healthy-cell-beats-collapsed``: every normal-cell op a skip-connection
ALL_SKIP_NORMAL = [["skip_connect", i % 2] for i in range(8)]
#: Table 7's shape (batch 64, 16 channels, 8 cells, 32 x 32 images of S0)
PROFILE_SHAPE = {"bench": "s0-c10", "batch_size": 64, "channels": 16, "layers": 8, "image_size": 32, "subnets": 20}
NOT_EVALUATED = "not evaluated: "
#: the method (and options) whose sampled paths ``eq1-sampled-paths`` counts
EQ1_METHOD: tuple[str, dict[str, Any]] = ("rome-v2", {})


# -- what a claim declares -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Need:
    """One configuration a claim reads: ``kind`` ``search`` (a search run of ``method`` with ``options`` on
    ``bench``, per seed; ``k_sweep``: search epochs scaled to 7/K as Table 5, :func:`harness.spec.sweeps.k_epochs`),
    ``fixed`` (``harness eval`` of genotype ``genotype`` on ``bench``, per seed) or ``profile`` (`harness
    profile` of ``method`` at :data:`PROFILE_SHAPE`)."""

    method: str
    bench: str
    options: tuple[tuple[str, Any], ...] = ()
    kind: str = "search"
    genotype: str | None = None
    k_sweep: bool = False

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    def resolved_options(self) -> dict[str, Any]:
        if self.kind == "fixed":
            return {}
        return method_class(self.method).resolve_options(self.opts)

    def label(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.genotype} on {self.bench}"
        text = f"{option_label(self.method, self.opts)} on {self.bench}"
        return f"profile of {text}" if self.kind == "profile" else text

    def configs(self, budget: str, seeds: Iterable[int]) -> list[Any]:
        """The run specs of this need (none for a profile)."""
        if self.kind == "profile":
            return []
        if self.kind == "fixed":
            return [fixed_config(fixed_genotype(str(self.genotype)), str(self.genotype), self.bench, budget, s)
                    for s in seeds]
        if self.k_sweep:
            k = int(self.opts["k"])
            rest = {n: v for n, v in self.options if n != "k"}
            return k_sweep_configs(self.bench, budget, seeds, ks=(k,), method=self.method, options=rest)
        return [make_config(self.method, self.bench, budget, s, self.opts) for s in seeds]


def search(method: str, bench: str, **options: Any) -> Need:
    return Need(method, bench, tuple(sorted(options.items())))


def fixed_genotype(name: str) -> Any:
    """``DARTS_V2`` or ``all-skip`` (DARTS_V2 with :data:`ALL_SKIP_NORMAL` as its normal cell)."""
    if name == "all-skip":
        return from_dict({**to_dict(KNOWN["DARTS_V2"]), "normal": ALL_SKIP_NORMAL})
    return KNOWN[name]


@dataclass
class Outcome:
    """One row of the claims table: a claim's test on one variant (or why it was not evaluated)."""

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
    source: str = ""
    p_holm: float | None = None

    def row(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        return {**{k: out.pop(k) for k in ("claim", "source", "hypothesis", "budget", "variant")}, **out}


@dataclass
class Data:
    """What claims read: one row per run (:func:`reports.data.load_runs`), optionally the per-epoch
    history (:func:`reports.data.load_history`) and the memory profiles (:func:`reports.data.load_profiles`)."""

    runs: pd.DataFrame
    history: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None


Frame = pd.DataFrame
Evaluator = Callable[["Claim", Data, str], list[Outcome]]


@dataclass(frozen=True)
class Claim:
    """A result of the paper as a test, declared before the runs (module docstring)."""

    name: str
    source: str
    hypothesis: str
    test: str
    needs: tuple[Need, ...]
    fn: Evaluator = field(compare=False, repr=False)
    column: str = "test_error"
    seeds: tuple[int, ...] = SEEDS  # the seeds of the runs it declares (`harness reproduce` makes them)

    def evaluate(self, data: Data, budget: str) -> list[Outcome]:
        return self.fn(self, data, budget)

    def outcome(self, budget: str, seeds: str, t: stats.Test | None, holds: bool | None, detail: str,
                variant: str = DEFAULTS, effect: float | None = None) -> Outcome:
        if t is None:
            return Outcome(self.name, self.hypothesis, budget, seeds, self.test, effect, None, None, None, holds,
                           detail, variant, self.source)
        return Outcome(self.name, self.hypothesis, budget, seeds, self.test, t.effect, t.low, t.high, t.p, holds,
                       detail, variant, self.source)

    def missing(self, budget: str, reason: str, variant: str = DEFAULTS) -> Outcome:
        return Outcome(self.name, self.hypothesis, budget, "-", self.test, None, None, None, None, None,
                       NOT_EVALUATED + reason, variant, self.source)


# -- the runs of a need ----------------------------------------------------------------------------------------

@dataclass
class Config:
    """The complete runs of one configuration (its seeds), its label and its variant."""

    label: str
    variant: str
    runs: Frame


def _variant(settings: tuple[str, ...]) -> str:
    return ", ".join(settings) if settings else DEFAULTS


def _prepared(df: Frame) -> Frame:
    """``df`` with the columns the grouping reads (a frame made by hand: one configuration per method)."""
    missing = {"config_id": df["method"], "label": df["method"],
               "settings": pd.Series([()] * len(df), index=df.index, dtype=object),
               "options": pd.Series([{}] * len(df), index=df.index, dtype=object)}
    return df.assign(**{k: v for k, v in missing.items() if k not in df})


@cache
def _spec_options(method: str, bench: str, budget: str, options: tuple[tuple[str, Any], ...]) -> tuple | None:
    """The options a run of ``method`` with ``options`` records at ``budget`` (a budget may change a
    default: K at budget cpu), as sorted pairs; ``None`` when they do not resolve."""
    try:
        return tuple(sorted(resolve(method, bench, budget, 0, options=dict(options)).options.items()))
    except (ValueError, KeyError, TypeError):
        return None


def _same_options(recorded: Any, need: Need, budget: str | None = None) -> bool:
    """Whether recorded options are the need's, both resolved at ``budget`` (profiles: by the method alone)."""
    if not isinstance(recorded, dict):
        recorded = {}
    if budget is None:
        try:
            theirs = Need(need.method, need.bench, tuple(sorted(recorded.items()))).resolved_options()
        except (ValueError, KeyError, TypeError):
            return False
        return theirs == need.resolved_options()
    try:
        key = tuple(sorted(recorded.items()))
        hash(key)
    except TypeError:
        return False
    mine = _spec_options(need.method, need.bench, budget, need.options)
    return mine is not None and _spec_options(need.method, need.bench, budget, key) == mine


def configs(df: Frame, need: Need, budget: str) -> list[Config]:
    """Per config id, the complete runs of ``need`` at ``budget`` (method, benchmark and options as
    declared; a fixed need: its genotype; a K-sweep need: with its own settings, :func:`_own_settings`),
    sorted by seed."""
    if df.empty:
        return []
    sel = df[(df["method"] == ("fixed" if need.kind == "fixed" else need.method)) & (df["bench"] == need.bench)
             & (df["budget"] == budget) & (df["status"] == "complete")]
    if need.kind == "fixed":
        want = to_dict(fixed_genotype(str(need.genotype)))
        sel = sel.loc[[isinstance(g, dict) and g.get("normal") == want["normal"] and g.get("reduce") == want["reduce"]
                       for g in sel["genotype"]]]
    else:
        sel = sel.loc[[_same_options(o, need, budget) for o in sel["options"]]]
    own = _own_settings(need, budget)
    return [Config(str(g["label"].iloc[0]), _variant(tuple(s for s in _settings(g) if s not in own)),
                   g.sort_values("seed"))
            for _, g in sel.groupby("config_id", sort=True) if own <= set(_settings(g))]


def _settings(group: Frame) -> tuple[str, ...]:
    settings = group["settings"].iloc[0]
    return tuple(settings) if isinstance(settings, tuple | list) else ()


@cache
def _own_settings(need: Need, budget: str) -> frozenset[str]:
    """The settings that the need's own spec changes from the defaults, which are therefore not a variant:
    a K-sweep need's 7/K search epochs (Table 5) and the architecture-step counts that the scaling rule
    derives from them (``search.arch_steps``, ``search.arch_steps_ref``); none for other needs."""
    if not need.k_sweep:
        return frozenset()
    try:
        spec = need.configs(budget, [0])[0]
    except (ValueError, KeyError):
        return frozenset()
    return frozenset(spec_settings(spec))


def _values(config: Config, col: str) -> tuple[list[float], list[int]]:
    sel = config.runs.dropna(subset=[col])
    return [float(v) for v in sel[col]], [int(s) for s in sel["seed"]]


def _seeds(*groups: tuple[str, list[int]]) -> str:
    return "; ".join(f"{name}: {','.join(map(str, s))}" for name, s in groups)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _variants(df: Frame, needs: tuple[Need, ...], budget: str) -> tuple[dict[str, list[Config]], str | None]:
    """Per variant, one configuration per need (variants where every need has runs); else the reason."""
    per_need = [configs(df, n, budget) for n in needs]
    for need, found in zip(needs, per_need, strict=True):
        if not found:
            return {}, f"no complete runs of {need.label()} at budget {budget}"
    variants = sorted({c.variant for found in per_need for c in found}, key=lambda v: (v != DEFAULTS, v))
    out = {v: [next(c for c in found if c.variant == v) for found in per_need] for v in variants
           if all(any(c.variant == v for c in found) for found in per_need)}
    return out, None if out else "no variant (changed spec fields) has runs of every configuration it needs"


def _per_variant(claim: Claim, data: Data, budget: str,
                 body: Callable[[list[Config], str], Outcome]) -> list[Outcome]:
    groups, reason = _variants(data.runs, claim.needs, budget)
    if reason:
        return [claim.missing(budget, reason)]
    return [body(cs, v) for v, cs in groups.items()]


def _two_seeds(claim: Claim, budget: str, variant: str, *groups: tuple[Config, list[float]]) -> Outcome | None:
    short = [c.label for c, x in groups if len(x) < 2]
    return claim.missing(budget, f"fewer than 2 seeds of {', '.join(short)}", variant) if short else None


# -- chance level of a parameterless count ---------------------------------------------------------------------

@cache
def _normal_shape(space: str) -> Any:
    shapes = build_supernet(space, c=4, layers=3, num_classes=10).shapes
    if "normal" not in shapes or not shapes["normal"].ops_on_edges:
        raise ValueError(f"the chance level of a parameterless count is defined for DARTS spaces, not {space}")
    return shapes["normal"]


def chance_rule(method: str, options: dict[str, Any] | None = None) -> str:
    """``gdas``: GDAS's derivation (per node the top 2 (edge, op) pairs over all non-``none`` ops, two may
    share an edge; ROME without TD too); ``edges``: per node the top 2 edges, on each its best non-``none``
    op (ROME with TD, DARTS, PC-DARTS)."""
    if method == "gdas" or (method in METHODS and method.startswith("rome")
                            and not METHODS[method].disentangles_topology(options or {})):
        return "gdas"
    return "edges"


@cache
def chance_pmf(space: str, rule: str) -> tuple[float, ...]:
    """The exact distribution of the number of parameterless ops in a derived normal cell of ``space``
    under a uniform architecture (exchangeable op and edge weights: every ranking equally likely), for the
    derivation ``rule`` (:func:`chance_rule`); ``none`` is never derived. Per node the kept choices are
    enumerated, and the nodes' counts convolved (nodes are independent). DARTS spaces only."""
    shape = _normal_shape(space)
    total = [1.0]
    for edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
        node: dict[int, float] = {}
        if rule == "gdas":
            cands = [(e, o) for e in edges for o in shape.ops[e] if o != "none"]
            picks = list(itertools.combinations(cands, k))
            for pick in picks:
                c = sum(o in PARAMETERLESS for _, o in pick)
                node[c] = node.get(c, 0.0) + 1 / len(picks)
        elif rule == "edges":
            pairs = list(itertools.combinations(edges, k))
            for pair in pairs:
                choices = [[o for o in shape.ops[e] if o != "none"] for e in pair]
                combos = list(itertools.product(*choices))
                for ops in combos:
                    c = sum(o in PARAMETERLESS for o in ops)
                    node[c] = node.get(c, 0.0) + 1 / (len(pairs) * len(combos))
        else:
            raise ValueError(f"unknown derivation rule {rule!r}; valid: gdas, edges")
        pmf = [node.get(c, 0.0) for c in range(k + 1)]
        total = [sum(total[i] * pmf[c - i] for i in range(len(total)) if 0 <= c - i < len(pmf))
                 for c in range(len(total) + len(pmf) - 1)]
    return tuple(total)


def chance_mean(space: str, rule: str) -> float:
    return sum(c * p for c, p in enumerate(chance_pmf(space, rule)))


# -- claim bodies ----------------------------------------------------------------------------------------------

def _above_chance(claim: Claim, data: Data, budget: str) -> list[Outcome]:
    """One need: its parameterless count exceeds the chance level (exact test of the sum over seeds)."""
    need = claim.needs[0]
    space = need.bench.split("-")[0]
    rule = chance_rule(need.method, need.opts)
    pmf = chance_pmf(space, rule)

    def body(cs: list[Config], variant: str) -> Outcome:
        x, sx = _values(cs[0], "parameterless_normal")
        if not x:
            return claim.missing(budget, f"no parameterless count in the runs of {cs[0].label}", variant)
        t = stats.sum_vs_pmf([int(v) for v in x], pmf, alternative="greater")
        return claim.outcome(budget, _seeds((cs[0].label, sx)), t, None,
                             f"mean {_mean(x):.2f} parameterless ops, per seed {[int(v) for v in x]}; chance "
                             f"{chance_mean(space, rule):.2f} ({rule} rule, {space})", variant)
    return _per_variant(claim, data, budget, body)


def _count_below(claim: Claim, data: Data, budget: str) -> list[Outcome]:
    """Needs (a, b): ``a``'s count in ``claim.column`` is below ``b``'s (exact permutation test)."""
    def body(cs: list[Config], variant: str) -> Outcome:
        (x, sx), (y, sy) = _values(cs[0], claim.column), _values(cs[1], claim.column)
        short = _two_seeds(claim, budget, variant, (cs[0], x), (cs[1], y))
        if short:
            return short
        t = stats.permutation(x, y, alternative="less")
        return claim.outcome(budget, _seeds((cs[0].label, sx), (cs[1].label, sy)), t, None,
                             f"{cs[0].label} {_mean(x):.2f} vs {cs[1].label} {_mean(y):.2f} {claim.column}", variant)
    return _per_variant(claim, data, budget, body)


def _error_test(superior: bool) -> Evaluator:
    """Needs (a, b): ``a``'s test error is not worse than ``b``'s by :data:`ERROR_MARGIN` (non-inferiority),
    or (``superior``) is lower (Welch one-sided)."""
    def fn(claim: Claim, data: Data, budget: str) -> list[Outcome]:
        def body(cs: list[Config], variant: str) -> Outcome:
            (x, sx), (y, sy) = _values(cs[0], "test_error"), _values(cs[1], "test_error")
            short = _two_seeds(claim, budget, variant, (cs[0], x), (cs[1], y))
            if short:
                return short
            t = stats.welch(x, y, alternative="less") if superior else stats.noninferiority(x, y, ERROR_MARGIN)
            return claim.outcome(budget, _seeds((cs[0].label, sx), (cs[1].label, sy)), t, None,
                                 f"{cs[0].label} {_mean(x):.2f} vs {cs[1].label} {_mean(y):.2f} % test error"
                                 + ("" if superior else f"; margin {ERROR_MARGIN:g} points"), variant)
        return _per_variant(claim, data, budget, body)
    return fn


def _trend(claim: Claim, data: Data, budget: str) -> list[Outcome]:
    """Needs: one configuration per K; ``claim.column`` falls as K rises (Kendall tau permutation test)."""
    def body(cs: list[Config], variant: str) -> Outcome:
        levels, values, seeds = [], [], []
        for need, c in zip(claim.needs, cs, strict=True):
            x, sx = _values(c, claim.column)
            levels += [float(need.opts["k"])] * len(x)
            values += x
            seeds.append((c.label, sx))
        if len(values) < 3:
            return claim.missing(budget, "fewer than 3 runs over K", variant)
        t = stats.trend(levels, values, alternative="less")
        means = ", ".join(f"K={int(n.opts['k'])} {_mean(_values(c, claim.column)[0]):.2f}"
                          for n, c in zip(claim.needs, cs, strict=True) if _values(c, claim.column)[0])
        return claim.outcome(budget, _seeds(*seeds), t, None,
                             f"mean {claim.column}: {means}; effect: Theil-Sen slope per unit of K", variant)
    return _per_variant(claim, data, budget, body)


def _factor(name: str) -> Evaluator:
    """Needs: the 8 TD x GA-theta x GA-alpha configurations (Table 6 order); switching ``name`` on lowers the
    test error, within each of the 4 strata that differ in ``name`` only (stratified permutation test)."""
    def fn(claim: Claim, data: Data, budget: str) -> list[Outcome]:
        def body(cs: list[Config], variant: str) -> Outcome:
            by = {tuple(bool(n.opts[f]) for f in ("td", "ga_theta", "ga_alpha")): c
                  for n, c in zip(claim.needs, cs, strict=True)}
            i = ("td", "ga_theta", "ga_alpha").index(name)
            strata, seeds = [], []
            for key, on in by.items():
                if not key[i]:
                    continue
                off = by[tuple(False if j == i else v for j, v in enumerate(key))]
                x, sx = _values(on, "test_error")
                y, sy = _values(off, "test_error")
                if len(x) < 2 or len(y) < 2:
                    return claim.missing(budget, f"fewer than 2 seeds of {on.label} or {off.label}", variant)
                strata.append((x, y))
                seeds += [(on.label, sx), (off.label, sy)]
            t = stats.stratified(strata, alternative="less")
            return claim.outcome(budget, _seeds(*dict(seeds).items()), t, None,
                                 f"mean over {len(strata)} strata of (on - off) test error {t.effect:.2f} points",
                                 variant)
        return _per_variant(claim, data, budget, body)
    return fn


def _slopes(data: Data, c: Config) -> tuple[list[float], list[int]]:
    """Per run of ``c``, the least-squares slope of its normal cell's skip-connections over the search
    epochs times the epochs (the rise over the search)."""
    h = data.history
    out, seeds = [], []
    for r in c.runs.itertuples():
        rows = h[h["run_id"] == r.run_id].dropna(subset=["skip_connect_normal"]).sort_values("epoch")
        if len(rows) < 2:
            continue
        e, s = rows["epoch"].astype(float), rows["skip_connect_normal"].astype(float)
        var = float(((e - e.mean()) ** 2).sum())
        slope = float(((e - e.mean()) * (s - s.mean())).sum()) / var if var else 0.0
        out.append(slope * (len(rows) - 1))
        seeds.append(int(r.seed))
    return out, seeds


def _skip_rise(rising: bool) -> Evaluator:
    """Fig. 3 over the search history: ``rising``: the skip-connections of the need's normal cell rise
    (sign-flip test of the fitted rise > 0); else they rise by less than :data:`SKIP_RISE_MARGIN`
    (sign-flip test of rise - margin < 0: "not rising" must be shown, not assumed)."""
    def fn(claim: Claim, data: Data, budget: str) -> list[Outcome]:
        if data.history is None or data.history.empty:
            return [claim.missing(budget, "no search history was read")]

        def body(cs: list[Config], variant: str) -> Outcome:
            x, sx = _slopes(data, cs[0])
            if len(x) < 2:
                return claim.missing(budget, f"fewer than 2 runs of {cs[0].label} with 2 or more epochs", variant)
            bound = 0.0 if rising else SKIP_RISE_MARGIN
            t = stats.sign_flip(x, bound, alternative="greater" if rising else "less")
            t = replace(t, effect=t.effect + bound, low=t.low + bound, high=t.high + bound)
            return claim.outcome(budget, _seeds((cs[0].label, sx)), t, None,
                                 f"rise of skip-connections over the search (fitted), per seed "
                                 f"{[round(v, 2) for v in x]}" + ("" if rising else
                                                                   f"; margin {SKIP_RISE_MARGIN:g}"), variant)
        return _per_variant(claim, data, budget, body)
    return fn


def _profile_values(profiles: Frame | None, need: Need) -> list[float] | None:
    """The saved bytes per sampled subnet of ``need``'s profile (a method that samples nothing: one value)."""
    if profiles is None or profiles.empty or "method" not in profiles:
        return None
    for r in profiles.to_dict("records"):
        if (r.get("method") != need.method or r.get("space") != need.bench.split("-")[0]
                or not _same_options(r.get("options"), need)):
            continue
        sub = r.get("subnets")
        if isinstance(sub, dict) and sub.get("values"):
            return [float(v) for v in sub["values"]]
        if r.get("saved_bytes") is not None and not math.isnan(float(r["saved_bytes"])):
            return [float(r["saved_bytes"])]
    return None


def _memory_ratio(claim: Claim, data: Data, budget: str) -> list[Outcome]:
    """Needs (a, b) profiles: ``a``'s saved bytes per graph below ``b``'s; the ratio of means with a
    bootstrap interval, tested one-sided (permutation over subnets; against one value: sign-flip)."""
    a, b = claim.needs
    x, y = _profile_values(data.profiles, a), _profile_values(data.profiles, b)
    if x is None or y is None:
        lacking = [n.label() for n, v in ((a, x), (b, y)) if v is None]
        return [claim.missing(budget, f"no {' or '.join(lacking)} (harness profile --out)")]
    if len(y) == 1:
        ratio = stats.ratio_of_means(x, [y[0]] * len(x)) if len(x) > 1 else None
        test = stats.sign_flip(x, y[0], alternative="less") if len(x) > 1 else None
    elif len(x) == 1:
        ratio, test = stats.ratio_of_means([x[0]] * len(y), y), stats.sign_flip(y, x[0], alternative="greater")
    else:
        ratio, test = stats.ratio_of_means(x, y), stats.permutation(x, y, alternative="less")
    r = _mean(x) / _mean(y)
    seeds = f"{a.label()}: {len(x)} subnets; {b.label()}: {len(y)}"
    detail = f"saved bytes {_mean(x) / 2**20:.2f} vs {_mean(y) / 2**20:.2f} MiB, ratio {r:.3f}"
    if test is None or ratio is None:  # one value each: a measurement, no test
        return [claim.outcome(budget, seeds, None, r < 1, detail + " (one pass each: measured, not tested)",
                              effect=r)]
    out = claim.outcome(budget, seeds, test, None, detail)
    out.effect, out.low, out.high = ratio.effect, ratio.low, ratio.high
    return [out]


def sampled_path_violations(method: str, options: dict[str, Any] | None = None, space: str = "s3",
                            draws: int = 100, seed: int = 0) -> int:
    """How many of ``draws`` sampled paths break Eq. 1 (every intermediate node has exactly ``in_degree``
    (2) active incoming edges, none carrying ``none``), sampled by ``method`` on a small supernet of
    ``space`` whose architecture logits are redrawn (N(0, 3^2)) before each draw, so that paths far from
    uniform are sampled too. A method without TD keeps every edge active and breaks it."""
    torch.manual_seed(seed)
    m = build_method(method, build_supernet(space, c=4, layers=3, num_classes=10), method_hparams(method),
                     options or {})
    m.begin_epoch(0, 2)
    bad = 0
    with torch.no_grad():
        for _ in range(draws):
            for p in m.arch_parameters():
                p.normal_(0.0, 3.0)
            sample = m.sample()
            broken = False
            for t, shape in m.shapes.items():
                s = sample[t]
                active = set(range(shape.n_edges)) if getattr(s, "active", None) is None else set(s.active)
                for edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
                    on = [e for e in edges if e in active]
                    if len(on) != k or any(shape.ops[e][s.op_index[e]] == "none" for e in on):
                        broken = True
            bad += broken
    return bad


def _eq1(claim: Claim, data: Data, budget: str) -> list[Outcome]:
    """ROME-v2 with TD: 0 of the sampled paths break Eq. 1; controls without TD (GDAS, ROME-v2 TD off) shown."""
    draws = 100
    rome = sampled_path_violations(*EQ1_METHOD, draws=draws)
    gdas = sampled_path_violations("gdas", {}, draws=draws)
    off = sampled_path_violations("rome-v2", {"td": False}, draws=draws)
    return [claim.outcome("fixed supernet", f"{draws} sampled paths per method", None, rome == 0,
                          f"paths breaking Eq. 1: ROME-v2 {rome}/{draws}; controls without TD: GDAS {gdas}/{draws}, "
                          f"ROME-v2 (TD off) {off}/{draws}", "-", effect=float(rome))]


# -- the claims ------------------------------------------------------------------------------------------------

def _claims() -> list[Claim]:
    out: list[Claim] = []
    rome, gdas = "rome-v2", "gdas"
    for n in (1, 2, 3, 4):
        b = f"s{n}-digits"
        r, g = search(rome, b), search(gdas, b)
        out += [
            Claim(f"gdas-collapses-s{n}", "Table 1", f"GDAS's normal cell in S{n} keeps more parameterless ops "
                  "than chance (collapse)", "exact test of the sum over seeds vs the chance distribution, one-sided",
                  (g,), _above_chance),
            Claim(f"rome-below-gdas-s{n}", "Table 1", f"ROME-v2 keeps fewer parameterless ops than GDAS in S{n}",
                  "exact permutation, one-sided", (r, g), _count_below, "parameterless_normal", COUNT_SEEDS),
            Claim(f"rome-error-not-worse-s{n}", "Table 1", f"ROME-v2's cells in S{n} are not worse than GDAS's "
                  f"(test error, margin {ERROR_MARGIN:g} points)", "non-inferiority Welch t, one-sided", (r, g),
                  _error_test(False)),
            Claim(f"rome-error-better-s{n}", "Table 1", f"ROME-v2's cells in S{n} have a lower test error than "
                  "GDAS's", "Welch t, one-sided", (r, g), _error_test(True)),
        ]
    s0 = "s0-digits"
    for rival in ("gdas", "darts", "pcdarts"):
        pair = (search(rome, s0), search(rival, s0))
        out += [
            Claim(f"s0-not-worse-than-{rival}", "Table 2", f"ROME-v2's S0 cell is not worse than {rival}'s "
                  f"(test error, margin {ERROR_MARGIN:g} points)", "non-inferiority Welch t, one-sided", pair,
                  _error_test(False)),
            Claim(f"s0-better-than-{rival}", "Table 2", f"ROME-v2's S0 cell has a lower test error than {rival}'s",
                  "Welch t, one-sided", pair, _error_test(True)),
        ]
    ks = tuple(Need(rome, s0, (("k", k),), k_sweep=True) for k in K_LEVELS)
    for col, what in (("parameterless_normal", "parameterless ops"), ("test_error", "test error")):
        out.append(Claim(f"k-trend-{'num' if col != 'test_error' else 'error'}", "Table 5",
                         f"ROME-v2's {what} fall as K rises over {', '.join(map(str, K_LEVELS))} (S0, search "
                         "epochs scaled to 7/K)", "Kendall tau permutation, one-sided", ks, _trend, col))
    factorial = tuple(Need(rome, s0, (("ga_alpha", ga), ("ga_theta", gt), ("td", td)))
                      for td, gt, ga in itertools.product((False, True), repeat=3))
    for factor, label in (("td", "TD"), ("ga_theta", "GA-theta"), ("ga_alpha", "GA-alpha")):
        out.append(Claim(f"ablation-{factor.replace('_', '-')}", "Table 6", f"switching {label} on lowers "
                         "ROME-v2's S0 test error (the other two factors held fixed)",
                         "stratified permutation, one-sided", factorial, _factor(factor)))
    for rival in ("gdas", "darts"):
        out.append(Claim(f"memory-below-{rival}", "Table 7", f"ROME-v2 saves fewer bytes for backward per search "
                         f"step than {rival} (ratio below 1; S0, batch 64, 16 channels, 8 cells)",
                         "permutation over sampled subnets, one-sided; ratio of means, bootstrap 95 % CI",
                         (Need(rome, "s0-c10", kind="profile"), Need(rival, "s0-c10", kind="profile")),
                         _memory_ratio))
    out += [
        Claim("gdas-skip-rises", "Fig. 3", "GDAS's normal cell gains skip-connections over the search (S0)",
              "sign-flip permutation of the fitted rise, one-sided", (search(gdas, s0),), _skip_rise(True),
              seeds=SIGN_SEEDS),
        Claim("rome-skip-flat", "Fig. 3", f"ROME-v2's normal cell gains fewer than {SKIP_RISE_MARGIN:g} "
              "skip-connection over the search (S0)", "sign-flip permutation of rise - margin, one-sided",
              (search(rome, s0),), _skip_rise(False), seeds=SIGN_SEEDS),
    ]
    for n in (1, 2, 3):
        b = f"nb1s{n}-digits"
        pair = (search(rome, b), search(gdas, b))
        out += [
            Claim(f"nb1s{n}-skip-below-gdas", "Fig. 4-5", f"ROME-v2's cell in NAS-Bench-1Shot1 space {n} keeps "
                  "fewer skip-connections than GDAS's", "exact permutation, one-sided", pair, _count_below,
                  "skip_connect_normal", COUNT_SEEDS),
            Claim(f"nb1s{n}-not-worse", "Fig. 4-5", f"ROME-v2's cell in NAS-Bench-1Shot1 space {n} is not worse "
                  f"than GDAS's (test error, margin {ERROR_MARGIN:g} points)", "non-inferiority Welch t, one-sided",
                  pair, _error_test(False)),
        ]
    out += [
        Claim("eq1-sampled-paths", "Eq. 1", "every path ROME-v2 (TD) samples during search gives each node "
              "exactly 2 incoming edges, none of them 'none' (methods without TD break it)",
              "count of violating paths (must be 0)", (), _eq1),
        Claim("healthy-cell-beats-collapsed", "scale check", "at the budget's evaluation an all-skip normal cell "
              "has a higher test error than DARTS_V2's (the evaluation tells cells apart)", "Welch t, one-sided",
              (Need("fixed", "s2-digits", kind="fixed", genotype="DARTS_V2"),
               Need("fixed", "s2-digits", kind="fixed", genotype="all-skip")), _error_test(True)),
    ]
    return out


#: every claim by name, in report order
CLAIMS: dict[str, Claim] = {c.name: c for c in _claims()}


def select(names: Iterable[str] | None) -> list[Claim]:
    """The claims named (all for ``None``); ``ValueError`` naming the unknown ones and the valid names."""
    if names is None:
        return list(CLAIMS.values())
    names = list(names)
    unknown = [n for n in names if n not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim(s) {', '.join(unknown)}; valid: {', '.join(CLAIMS)}")
    return [CLAIMS[n] for n in CLAIMS if n in names]


def adjust(outcomes: list[Outcome]) -> list[Outcome]:
    """Holm over the tested rows (those with a p-value); each holds when its adjusted p < :data:`ALPHA`."""
    tested = [o for o in outcomes if o.p is not None and not math.isnan(o.p)]
    for o, q in zip(tested, stats.holm([float(o.p) for o in tested]), strict=True):  # type: ignore[arg-type]
        o.p_holm, o.holds = q, q < ALPHA
    return outcomes


def evaluate(runs: Frame, budget: str, names: list[str] | None = None, history: Frame | None = None,
             profiles: Frame | None = None) -> list[Outcome]:
    """Every claim (or those in ``names``) on the runs of ``budget``: one row per variant, a ``not
    evaluated`` row where a claim lacks its runs; Holm over the family of tested rows."""
    data = Data(_prepared(runs) if not runs.empty else runs, history, profiles)
    out: list[Outcome] = []
    for claim in select(names):
        try:
            out += claim.evaluate(data, budget)
        except (ValueError, KeyError) as exc:  # a malformed input: the row says so instead of vanishing
            out.append(claim.missing(budget, f"{type(exc).__name__}: {exc}"))
    return adjust(out)


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.{digits}g}" if abs(x) < 1e-2 and x != 0 else f"{x:.{digits}f}"


def table(outcomes: list[Outcome]) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim": o.claim, "source": o.source, "hypothesis": o.hypothesis, "budget": o.budget, "variant": o.variant,
        "seeds": o.seeds, "test": o.test,
        "effect": _fmt(o.effect), "95 % CI": "-" if o.low is None else f"[{_fmt(o.low)}, {_fmt(o.high)}]",
        "p": "-" if o.p is None else f"{o.p:.3g}", "p (Holm)": "-" if o.p_holm is None else f"{o.p_holm:.3g}",
        "holds": {True: "yes", False: "**no**", None: "-"}[o.holds], "numbers": o.detail,
    } for o in outcomes])
