"""Statistics over seeds: tests and intervals for claims and distribution checks (scipy.stats).

Per-seed values (one number per run) are compared with

* :func:`welch` - Welch's two-sample t-test (unequal variances) with the Student-t interval of the
  difference of means (``scipy.stats.ttest_ind(equal_var=False)``);
* :func:`permutation` - an exact/Monte-Carlo permutation test of the difference of means
  (``scipy.stats.permutation_test``), for small samples without a normality assumption;
* :func:`bootstrap_mean` - a BCa bootstrap interval of a mean (``scipy.stats.bootstrap``);
* :func:`t_interval` - the Student-t interval of one mean (``scipy.stats.t``);
* :func:`one_sample` - a one-sample t-test of a mean against a value;
* :func:`noninferiority` - a one-sided Welch test that ``mean(a)`` exceeds ``mean(b)`` by less than a
  margin stated before the runs (a "not worse" claim never holds on a failure to reject);
* :func:`sign_flip` - the exact sign-flip (one-sample permutation) test of a mean against a value;
* :func:`sum_vs_pmf` - the exact test of a sum of i.i.d. integer counts against their known distribution
  (a count against its chance level);
* :func:`trend` - a permutation test of Kendall's tau between a level (K) and per-seed values, with the
  Theil-Sen slope and its interval;
* :func:`stratified` - a permutation test of a factor's effect within strata (configurations that differ
  in that factor only; the main effect of a factorial design without pooling configurations);
* :func:`holm` - Holm's step-down adjustment of a family of p-values.

Every function returns a :class:`Test` (effect, interval, p-value, the test's name), JSON-ready.
``alternative`` follows scipy: ``"greater"`` tests ``mean(a) - mean(b) > 0``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class Test:
    """A test's result: ``effect`` (difference of means, or a mean) with a ``level`` interval and p-value."""

    test: str
    effect: float
    low: float
    high: float
    p: float
    n: tuple[int, ...]
    level: float = 0.95
    alternative: str = "two-sided"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def interval(self, digits: int = 2) -> str:
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _arr(x: Sequence[float], what: str, minimum: int = 2) -> np.ndarray:
    a = np.asarray(list(x), dtype=float)
    if a.ndim != 1 or len(a) < minimum or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} needs at least {minimum} finite values, got {list(x)}")
    return a


def _check_alt(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative '{alternative}'; valid: {', '.join(ALTERNATIVES)}")


def t_interval(x: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of the mean of ``x`` (a zero-spread sample: a point)."""
    a = _arr(x, "t_interval")
    mean, sem = float(a.mean()), float(stats.sem(a))
    if sem == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(level, len(a) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def welch(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided", level: float = 0.95) -> Test:
    """Welch's t-test of ``mean(a) - mean(b)`` and its Welch-Satterthwaite Student-t interval
    (one-sided alternatives give a one-sided interval, as scipy's ``confidence_interval``)."""
    _check_alt(alternative)
    x, y = _arr(a, "welch (a)"), _arr(b, "welch (b)")
    effect = float(x.mean() - y.mean())
    if x.var(ddof=1) == 0 and y.var(ddof=1) == 0:  # no spread: the difference is exact
        p = 1.0 if effect == 0 else (0.0 if (alternative == "two-sided" or (effect > 0) == (alternative == "greater"))
                                     else 1.0)
        return Test("welch t", effect, effect, effect, p, (len(x), len(y)), level, alternative)
    with warnings.catch_warnings():  # one sample without spread (a frozen entropy): scipy warns, t is exact
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False, alternative=alternative)
    ci = res.confidence_interval(level)
    return Test("welch t", effect, float(ci.low), float(ci.high), float(res.pvalue), (len(x), len(y)), level,
                alternative)


def permutation(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided", level: float = 0.95,
                n_resamples: int = 9999, seed: int = 0) -> Test:
    """Permutation test of ``mean(a) - mean(b)`` (exact when the permutations are few); the interval is a
    bootstrap percentile interval of the difference (seeded)."""
    _check_alt(alternative)
    x, y = _arr(a, "permutation (a)"), _arr(b, "permutation (b)")

    def diff(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    rng = np.random.default_rng(seed)
    res = stats.permutation_test((x, y), diff, vectorized=True, n_resamples=n_resamples, alternative=alternative,
                                 random_state=rng)
    boot = stats.bootstrap((x, y), diff, vectorized=True, confidence_level=level, method="percentile",
                           n_resamples=n_resamples, random_state=rng)
    lo, hi = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    effect = float(x.mean() - y.mean())
    if math.isnan(lo):  # no spread in either sample
        lo = hi = effect
    return Test("permutation", effect, lo, hi, float(res.pvalue), (len(x), len(y)), level, alternative)


def bootstrap_mean(x: Sequence[float], level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Test:
    """Mean of ``x`` with a BCa bootstrap interval (p: NaN, no test)."""
    a = _arr(x, "bootstrap_mean")
    mean = float(a.mean())
    if np.all(a == a[0]):
        return Test("bootstrap", mean, mean, mean, float("nan"), (len(a),), level)
    res = stats.bootstrap((a,), np.mean, confidence_level=level, method="BCa", n_resamples=n_resamples,
                          random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Test("bootstrap", mean, float(ci.low), float(ci.high), float("nan"), (len(a),), level)


def one_sample(x: Sequence[float], value: float, alternative: str = "two-sided", level: float = 0.95) -> Test:
    """One-sample t-test of ``mean(x) - value`` with its Student-t interval."""
    _check_alt(alternative)
    a = _arr(x, "one_sample")
    effect = float(a.mean() - value)
    if a.var(ddof=1) == 0:
        p = 1.0 if effect == 0 else (0.0 if (alternative == "two-sided" or (effect > 0) == (alternative == "greater"))
                                     else 1.0)
        return Test("one-sample t", effect, effect, effect, p, (len(a),), level, alternative)
    res = stats.ttest_1samp(a, value, alternative=alternative)
    ci = res.confidence_interval(level)
    return Test("one-sample t", effect, float(ci.low) - value, float(ci.high) - value, float(res.pvalue), (len(a),),
                level, alternative)


def ratio_of_means(a: Sequence[float], b: Sequence[float], level: float = 0.95, n_resamples: int = 9999,
                   seed: int = 0) -> Test:
    """``mean(a) / mean(b)`` with a percentile bootstrap interval (independent samples; p: NaN)."""
    x, y = _arr(a, "ratio_of_means (a)"), _arr(b, "ratio_of_means (b)")
    ratio = float(x.mean() / y.mean())
    if np.all(x == x[0]) and np.all(y == y[0]):
        return Test("bootstrap ratio", ratio, ratio, ratio, float("nan"), (len(x), len(y)), level)

    def stat(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(u, axis=axis) / np.mean(v, axis=axis)

    res = stats.bootstrap((x, y), stat, vectorized=True, confidence_level=level, method="percentile",
                          n_resamples=n_resamples, random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Test("bootstrap ratio", ratio, float(ci.low), float(ci.high), float("nan"), (len(x), len(y)), level)


def noninferiority(a: Sequence[float], b: Sequence[float], margin: float, level: float = 0.95) -> Test:
    """Non-inferiority of ``a`` against ``b`` where lower is better: H0 ``mean(a) - mean(b) >= margin``
    against H1 ``< margin`` (Welch, one-sided). ``effect`` is the plain difference ``mean(a) - mean(b)``
    and ``high`` its one-sided upper ``level`` bound: the claim holds when that bound is below the margin
    (the same decision as ``p < 1 - level``)."""
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"a non-inferiority margin must be a positive number, got {margin}")
    t = welch(a, [v + margin for v in b], alternative="less", level=level)
    return Test(f"non-inferiority Welch t (margin {margin:g})", t.effect + margin, t.low + margin,
                t.high + margin, t.p, t.n, level, "less")


def sign_flip(x: Sequence[float], value: float = 0.0, alternative: str = "two-sided", level: float = 0.95,
              n_resamples: int = 9999, seed: int = 0) -> Test:
    """Sign-flip test of ``mean(x) - value`` (exact for up to 13 values: every one of the 2^n sign
    patterns); the interval is the Student-t one. For small integer differences, where a t-test's
    normality is a poor guess."""
    _check_alt(alternative)
    a = _arr(x, "sign_flip") - value
    effect = float(a.mean())
    res = stats.permutation_test((a,), np.mean, vectorized=True, permutation_type="samples",
                                 n_resamples=n_resamples, alternative=alternative,
                                 random_state=np.random.default_rng(seed))
    _, lo, hi = t_interval(list(a), level)
    return Test("sign-flip permutation", effect, lo, hi, float(res.pvalue), (len(a),), level, alternative)


def sum_vs_pmf(x: Sequence[int], pmf: Sequence[float], alternative: str = "greater", level: float = 0.95) -> Test:
    """Exact test of i.i.d. counts ``x`` (one per seed) against a known distribution ``pmf`` (``pmf[c]``:
    the chance of count ``c``): the null distribution of their sum is the n-fold convolution of ``pmf``,
    and ``p`` its tail at the observed sum. ``effect``: mean count minus the chance mean, with the
    Student-t interval."""
    _check_alt(alternative)
    a = _arr(x, "sum_vs_pmf", minimum=1)
    if not np.all(a == np.round(a)) or a.min() < 0 or a.max() >= len(pmf):
        raise ValueError(f"sum_vs_pmf needs counts in 0..{len(pmf) - 1}, got {list(x)}")
    p0 = np.asarray(pmf, dtype=float)
    if p0.min() < 0 or not math.isclose(p0.sum(), 1.0, rel_tol=1e-9):
        raise ValueError("pmf must be a probability distribution")
    dist = np.array([1.0])
    for _ in range(len(a)):
        dist = np.convolve(dist, p0)
    total = int(a.sum())
    upper, lower = float(dist[total:].sum()), float(dist[:total + 1].sum())
    p = {"greater": upper, "less": lower, "two-sided": min(1.0, 2 * min(upper, lower))}[alternative]
    chance = float(np.dot(np.arange(len(p0)), p0))
    if len(a) > 1:
        _, lo, hi = t_interval(list(a), level)
    else:
        lo = hi = float(a[0])
    return Test("exact count vs chance", float(a.mean()) - chance, lo - chance, hi - chance, min(p, 1.0), (len(a),),
                level, alternative)


def trend(levels: Sequence[float], values: Sequence[float], alternative: str = "less", level: float = 0.95,
          n_resamples: int = 9999, seed: int = 0) -> Test:
    """Monotone trend of ``values`` over ``levels`` (one pair per run): a permutation test of Kendall's
    tau (``"less"``: values fall as the level rises), and as the effect the Theil-Sen slope with its
    interval (robust to the ties of small counts). Kendall's tau needs no linearity and no normality."""
    _check_alt(alternative)
    x, y = _arr(levels, "trend (levels)", 3), _arr(values, "trend (values)", 3)
    if len(x) != len(y) or len(set(x.tolist())) < 2:
        raise ValueError("trend needs one value per level and at least two distinct levels")

    def tau(u: np.ndarray) -> float:
        t = stats.kendalltau(x, u).statistic
        return 0.0 if math.isnan(t) else float(t)

    res = stats.permutation_test((y,), tau, permutation_type="pairings", n_resamples=n_resamples,
                                 alternative=alternative, random_state=np.random.default_rng(seed))
    slope, _, lo, hi = stats.theilslopes(y, x, alpha=level)
    return Test("Kendall tau permutation", float(slope), float(lo), float(hi), float(res.pvalue), (len(x),), level,
                alternative)


def stratified(strata: Sequence[tuple[Sequence[float], Sequence[float]]], alternative: str = "less",
               level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Test:
    """Effect of a factor from strata ``(on, off)``: per stratum the runs of two configurations that differ
    in the factor only. Statistic: the mean over strata of ``mean(on) - mean(off)``; the null permutes the
    factor's label within each stratum only (Monte Carlo, seeded; p counts the observed arrangement), so
    runs of different configurations are never exchanged. Interval: Student-t over the strata's
    differences (a point for one stratum)."""
    _check_alt(alternative)
    groups = [(_arr(on, "stratified (on)"), _arr(off, "stratified (off)")) for on, off in strata]
    if not groups:
        raise ValueError("stratified needs at least one stratum")
    diffs = [float(on.mean() - off.mean()) for on, off in groups]
    observed = float(np.mean(diffs))
    rng = np.random.default_rng(seed)
    null = np.zeros(n_resamples)
    for on, off in groups:
        pooled, k = np.concatenate([on, off]), len(on)
        perm = rng.permuted(np.tile(pooled, (n_resamples, 1)), axis=1)
        null += perm[:, :k].mean(1) - perm[:, k:].mean(1)
    null /= len(groups)
    eps = 1e-12 * max(1.0, abs(observed))
    count = {"less": np.sum(null <= observed + eps), "greater": np.sum(null >= observed - eps),
             "two-sided": np.sum(np.abs(null) >= abs(observed) - eps)}[alternative]
    p = float((count + 1) / (n_resamples + 1))
    lo, hi = (observed, observed) if len(diffs) < 2 else t_interval(diffs, level)[1:]
    return Test("stratified permutation", observed, lo, hi, p, tuple(len(on) + len(off) for on, off in groups),
                level, alternative)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control at any dependence): the i-th smallest
    p times (m - i + 1), made monotone and capped at 1; in the input's order."""
    p = [float(v) for v in pvalues]
    if any(not (0.0 <= v <= 1.0) for v in p):
        raise ValueError(f"p-values must lie in [0, 1], got {p}")
    m, out, running = len(p), [0.0] * len(p), 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p[j])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


__all__ = ["ALTERNATIVES", "Test", "bootstrap_mean", "holm", "noninferiority", "one_sample", "permutation",
           "ratio_of_means", "sign_flip", "stratified", "sum_vs_pmf", "t_interval", "trend", "welch"]
