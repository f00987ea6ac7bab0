"""The one rule that says whether a published number was reproduced: an equivalence test.

A reproduction is *shown* only when the data exclude every difference from the published figure larger
than a margin; a failure to find a difference is not evidence of equivalence (Schuirmann's two one-sided
tests, TOST; Lakens 2017, "Equivalence tests", Soc. Psychol. Personal. Sci. 8(4)). The earlier rule
(a 95 % interval of our mean overlapping the published mean +- std) rewarded fewer and noisier seeds: at
n = 2 the interval is +- 12.7 standard errors and overlaps almost anything.

**Inputs** are summary statistics, since the paper publishes only those: our per-seed values (mean ``m``,
sample std ``s``, ``n`` seeds) and the published mean ``M``, std ``S`` and number of independent searches
``N`` (:func:`harness.evidence.published.published_n`; the captions give 3 for Tables 1 and 5 and 4 for Table 2,
the others are an assumption stated there). Welch's statistic for ``d = m - M``::

    t = (d + delta) / se  and  (d - delta) / se,   se^2 = s^2 / n + S^2 / N,   df = min(n - 1, N - 1)

The degrees of freedom are Hsu's conservative choice for Welch's statistic (a lower bound of the
Welch-Satterthwaite value), not Satterthwaite's: Satterthwaite's df grow with our own variance while the
published one dominates, and on a grid of summary statistics that let noisier or fewer seeds reach a
``better``/``worse`` that cleaner or more seeds did not. A published figure without a std, or from one
search (``N = 1``, e.g. Table 4), is a point: it adds nothing to ``se`` and no df bound.

**Margin** ``delta = max(S, rounding)``: a reproduction may differ from the published mean by about one
seed-to-seed standard deviation of the published method, and never by less than the unit of the last
printed digit (0.01 for errors printed with two decimals, so that a published std of 0.00 still leaves a
margin). The margin is fixed by the published table, never by our data.

**Outcomes** at ``alpha`` (default 0.05), all from the ``1 - 2 alpha`` (90 %) Welch interval of ``d``:

* ``reproduced`` - equivalence shown: both one-sided tests reject ``d <= -delta`` and ``d >= +delta``
  (the 90 % interval lies inside ``(-delta, +delta)``);
* ``better`` / ``worse`` - a one-sided Welch test rejects ``|d| <= delta`` in the good / bad direction
  (the interval lies beyond ``+-delta``); "good" is per metric: lower error, fewer parameterless ops
  (``lower_is_better``), higher accuracy;
* ``inconclusive`` - neither: too few or too noisy seeds to tell, or a difference of about the margin;
  also with fewer than 2 seeds (no variance estimate).

The three tests are at most one at a time: their rejection regions are disjoint. Fewer or noisier seeds
widen the interval (and never add degrees of freedom), so they can only move a verdict towards
``inconclusive``; ``tests/test_verdict.py`` checks this over a grid.

**Differences between methods** (:func:`judge_difference`): the paper's claims are of the form "ROME-v2's
error is below GDAS's". Our ``m_A - m_B`` (Welch standard error over both samples) is compared with the
published ``M_A - M_B`` (its standard error from both published std and N) by the same rule; the margin
is ``max(sqrt(S_A^2 + S_B^2), rounding)``, the seed-to-seed spread of a difference of one search each.
``better`` then means the difference lies further in the good direction (e.g. ROME-v2 beats GDAS by more
than published).

Everything that compares with the paper calls :func:`judge` or :func:`judge_difference`: the report
tables (``reports/tables.py``) and ``harness check``'s paper comparison (``harness/evidence/check.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats as sps

from harness.evidence.stats import t_interval

REPRODUCED, BETTER, WORSE, INCONCLUSIVE = "reproduced", "better", "worse", "inconclusive"
VERDICTS = (REPRODUCED, BETTER, WORSE, INCONCLUSIVE)
ALPHA = 0.05
CONFIDENCE = 0.95  # of the interval of our mean shown beside the verdict
MIN_SEEDS = 2
#: the unit of the last printed digit of the published figures, per metric: errors and accuracies with
#: two decimals (Tables 1-3, 5, 6), parameterless counts with one (Table 1 'Num'); Table 4's top-1
#: accuracies have one decimal (``ROUNDING_TABLE4``)
ROUNDING = {"error": 0.01, "num": 0.1, "acc": 0.01}
ROUNDING_TABLE4 = 0.1


@dataclass(frozen=True)
class Verdict:
    """One reproduced number (or difference of two methods) against its published counterpart.

    ``diff`` is ours minus published, ``diff_low``/``diff_high`` its ``1 - 2 alpha`` Welch interval
    (the TOST interval); ``p_equivalent`` is the TOST p-value, ``p_better``/``p_worse`` the one-sided
    p-values of a difference beyond the margin. ``why`` says in words what decided.
    """

    n: int
    mean: float
    ci_low: float
    ci_high: float
    published_mean: float
    published_std: float
    published_n: int
    diff: float
    diff_low: float
    diff_high: float
    margin: float
    se: float
    df: float
    p_equivalent: float
    p_better: float
    p_worse: float
    verdict: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def diff_text(self, digits: int = 2) -> str:
        """``Δ +0.12, 90 % CI [-0.05, 0.29], margin ±0.14`` - the numbers that decided."""
        if math.isnan(self.diff):
            return "—"
        if math.isnan(self.diff_low):
            return f"Δ {self.diff:+.{digits}f}, margin ±{self.margin:.{digits}f}"
        return (f"Δ {self.diff:+.{digits}f}, 90 % CI [{self.diff_low:.{digits}f}, {self.diff_high:.{digits}f}], "
                f"margin ±{self.margin:.{digits}f}")


def _clean(values: Sequence[float]) -> list[float]:
    """The finite values (a missing or NaN value is not a seed)."""
    out = []
    for x in values:
        if x is None:
            continue
        f = float(x)
        if math.isfinite(f):
            out.append(f)
    return out


def _mean_sd(v: list[float]) -> tuple[float, float]:
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))


def _std(x: float | None) -> float:
    """A published std; none (or NaN) is 0: the figure is a point."""
    return 0.0 if x is None or math.isnan(float(x)) else float(x)


def confidence_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t interval over ``values`` (:func:`harness.evidence.stats.t_interval`; NaN
    bounds for fewer than 2 values)."""
    v = _clean(values)
    if not v:
        return math.nan, math.nan, math.nan
    if len(v) < MIN_SEEDS:
        return sum(v) / len(v), math.nan, math.nan
    return t_interval(v, confidence)


def _part(std: float, n: int) -> tuple[float, int]:
    """One sample's share of the variance of a difference: (std^2 / n, its degrees of freedom)."""
    return (std * std / n if n >= 1 else 0.0), max(n - 1, 0)


def decide(diff: float, parts: Sequence[tuple[float, int]], margin: float, *, lower_is_better: bool = True,
           alpha: float = ALPHA) -> tuple[str, float, float, float, float, float, float, float]:
    """TOST and the two one-sided tests beyond the margin for an estimated difference ``diff`` whose
    variance is the sum of ``parts`` (each ``(variance of a mean, degrees of freedom)``; a part with 0
    variance, a published point, counts for nothing).

    Returns ``(verdict, se, df, low, high, p_equivalent, p_better, p_worse)``; ``low``/``high`` bound the
    ``1 - 2 alpha`` interval of ``diff``.
    """
    var = sum(v for v, _ in parts)
    se = math.sqrt(var)
    # Hsu's conservative degrees of freedom (module docstring): the fewest of the samples with variance
    used = [(v, k) for v, k in parts if v > 0]
    if se == 0:
        df = math.inf
        inside = abs(diff) < margin
        p_eq = 0.0 if inside else 1.0
        p_lo = 0.0 if diff < -margin else 1.0  # the difference lies below -margin
        p_hi = 0.0 if diff > margin else 1.0
        low = high = diff
    else:
        df = float(min(k for _, k in used))
        dist = sps.t(df)
        p_eq = max(float(dist.sf((diff + margin) / se)), float(dist.cdf((diff - margin) / se)))
        p_lo = float(dist.cdf((diff + margin) / se))  # H0: diff >= -margin
        p_hi = float(dist.sf((diff - margin) / se))  # H0: diff <= +margin
        q = float(dist.ppf(1 - alpha))
        low, high = diff - q * se, diff + q * se
    p_better, p_worse = (p_lo, p_hi) if lower_is_better else (p_hi, p_lo)
    if p_eq < alpha:
        verdict = REPRODUCED
    elif p_better < alpha:
        verdict = BETTER
    elif p_worse < alpha:
        verdict = WORSE
    else:
        verdict = INCONCLUSIVE
    return verdict, se, df, low, high, p_eq, p_better, p_worse


def unreachable(published_parts: Sequence[tuple[float, int]], margin: float, alpha: float = ALPHA) -> bool:
    """Whether no data of ours can show equivalence: even with our variance 0 and our df unbounded, the
    published part alone gives ``t_{1-alpha, df} * se >= margin``. With a margin of one published std this
    holds whenever ``sqrt(N) <= t_{1-alpha, N-1}`` - N = 3 (2.92) and N = 4 (2.35), the paper's n: its
    means are known to +- 1.7 and +- 1.2 std (90 %), wider than the margin."""
    used = [(v, k) for v, k in published_parts if v > 0]
    if not used:
        return False
    se = math.sqrt(sum(v for v, _ in used))
    return float(sps.t(min(k for _, k in used)).ppf(1 - alpha)) * se >= margin


def _why(verdict: str, n: int, unreachable: bool = False) -> str:
    """The verdict's reason in words (shown in ``harness check``'s notes)."""
    if n < MIN_SEEDS:
        return f"{n} seed(s): no variance estimate, at least {MIN_SEEDS} needed"
    if verdict == INCONCLUSIVE and unreachable:
        return ("equivalence cannot be shown at this published n: the published mean's own uncertainty "
                "exceeds the margin, whatever our seeds")
    return {REPRODUCED: "the 90 % interval of Δ lies inside ±margin (TOST)",
            BETTER: "the 90 % interval of Δ lies beyond the margin, on the good side",
            WORSE: "the 90 % interval of Δ lies beyond the margin, on the bad side",
            INCONCLUSIVE: "the 90 % interval of Δ crosses ±margin: more seeds or less noise needed"}[verdict]


def _too_few(n: int, mean: float, low: float, high: float, published_mean: float, published_std: float,
             published_n: int, diff: float, margin: float) -> Verdict:
    """``inconclusive``: fewer than :data:`MIN_SEEDS` seeds, no test made."""
    nan = math.nan
    return Verdict(n, mean, low, high, published_mean, published_std, published_n, diff, nan, nan, margin, nan,
                   nan, nan, nan, nan, INCONCLUSIVE, _why(INCONCLUSIVE, n))


def judge(values: Sequence[float], published_mean: float, published_std: float | None = None,
          published_n: int = 1, *, higher_is_better: bool = False, rounding: float = ROUNDING["error"],
          alpha: float = ALPHA) -> Verdict:
    """The verdict for the per-seed ``values`` of one configuration against the published mean +- std
    over ``published_n`` searches (see the module docstring).

    ``higher_is_better``: False for errors and parameterless counts (default), True for accuracies.
    ``rounding``: the unit of the published figure's last digit (:data:`ROUNDING`), the least margin.
    """
    clean = _clean(values)
    mean, low, high = confidence_interval(clean)
    std = _std(published_std)
    pn = max(int(published_n), 1)
    margin = max(std, rounding)
    diff = mean - float(published_mean) if clean else math.nan
    if len(clean) < MIN_SEEDS:
        return _too_few(len(clean), mean, low, high, float(published_mean), std, pn, diff, margin)
    _, sd = _mean_sd(clean)
    parts = [_part(sd, len(clean))] + ([_part(std, pn)] if pn >= 2 else [])
    verdict, se, df, dlo, dhi, p_eq, p_b, p_w = decide(diff, parts, margin, lower_is_better=not higher_is_better,
                                                       alpha=alpha)
    return Verdict(len(clean), mean, low, high, float(published_mean), std, pn, diff, dlo, dhi, margin, se, df,
                   p_eq, p_b, p_w, verdict, _why(verdict, len(clean), unreachable(parts[1:], margin, alpha)))


def judge_difference(values_a: Sequence[float], values_b: Sequence[float],
                     published_a: tuple[float, float | None, int], published_b: tuple[float, float | None, int],
                     *, higher_is_better: bool = False, rounding: float = ROUNDING["error"],
                     alpha: float = ALPHA) -> Verdict:
    """The verdict on our difference ``mean(values_a) - mean(values_b)`` (two methods, same benchmark and
    budget) against the published difference; ``published_a``/``_b`` are ``(mean, std, n)``.

    ``n``/``mean``/``ci_*`` of the result describe our difference (``n``: the smaller sample); the
    published std is that of a difference of one search each, ``sqrt(S_A^2 + S_B^2)``, which is also the
    margin (at least ``rounding``).
    """
    a, b = _clean(values_a), _clean(values_b)
    (ma, sa, na), (mb, sb, nb) = published_a, published_b
    sa, sb, na, nb = _std(sa), _std(sb), max(int(na), 1), max(int(nb), 1)
    pub_diff = float(ma) - float(mb)
    pub_std = math.sqrt(sa * sa + sb * sb)
    margin = max(pub_std, rounding)
    n = min(len(a), len(b))
    if n < MIN_SEEDS:
        mean = _mean_sd(a)[0] - _mean_sd(b)[0] if a and b else math.nan
        return _too_few(n, mean, math.nan, math.nan, pub_diff, pub_std, min(na, nb), mean - pub_diff, margin)
    (mean_a, sd_a), (mean_b, sd_b) = _mean_sd(a), _mean_sd(b)
    ours = mean_a - mean_b
    ours_parts = [_part(sd_a, len(a)), _part(sd_b, len(b))]
    pub_parts = [_part(s, k) for s, k in ((sa, na), (sb, nb)) if k >= 2]
    # our difference's own 95 % Welch interval, for display beside the published difference
    _, se_o, df_o, *_ = decide(ours, ours_parts, 0.0)
    q = float(sps.t(df_o).ppf(1 - (1 - CONFIDENCE) / 2)) if se_o > 0 else 0.0
    diff = ours - pub_diff
    verdict, se, df, dlo, dhi, p_eq, p_b, p_w = decide(diff, ours_parts + pub_parts, margin,
                                                       lower_is_better=not higher_is_better, alpha=alpha)
    return Verdict(n, ours, ours - q * se_o, ours + q * se_o, pub_diff, pub_std, min(na, nb), diff, dlo, dhi, margin,
                   se, df, p_eq, p_b, p_w, verdict, _why(verdict, n, unreachable(pub_parts, margin, alpha)))
