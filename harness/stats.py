"""Statistics over seeds: tests and intervals for claims and distribution checks (scipy.stats).

Per-seed values (one number per run) are compared with

* :func:`welch` - Welch's two-sample t-test (unequal variances) with the Student-t interval of the
  difference of means (``scipy.stats.ttest_ind(equal_var=False)``);
* :func:`permutation` - an exact/Monte-Carlo permutation test of the difference of means
  (``scipy.stats.permutation_test``), for small samples without a normality assumption;
* :func:`bootstrap_mean` - a BCa bootstrap interval of a mean (``scipy.stats.bootstrap``);
* :func:`t_interval` - the Student-t interval of one mean (``scipy.stats.t``);
* :func:`one_sample` - a one-sample t-test of a mean against a value.

Every function returns a :class:`Test` (effect, interval, p-value, the test's name), JSON-ready.
``alternative`` follows scipy: ``"greater"`` tests ``mean(a) - mean(b) > 0``.
"""

from __future__ import annotations

import math
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


__all__ = ["ALTERNATIVES", "Test", "bootstrap_mean", "one_sample", "permutation", "ratio_of_means", "t_interval",
           "welch"]
