"""The verdict rule (harness/evidence/verdict.py): TOST on Welch's t from summary statistics.

Closed-form cases use df = 2 (the paper's n = 3 against 3 of ours), where Student's t has the CDF
``F(t) = 1/2 + t / (2 sqrt(2 + t^2))``, so the p-values are checked against a formula, not scipy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.evidence.published import published_n
from harness.evidence.verdict import (
    BETTER,
    INCONCLUSIVE,
    REPRODUCED,
    WORSE,
    confidence_interval,
    judge,
    judge_difference,
)


def _sf2(t: float) -> float:
    """Upper tail of Student's t with 2 degrees of freedom, closed form."""
    return 0.5 * (1 - t / math.sqrt(2 + t * t))


def _values(mean: float, sd: float, n: int) -> list[float]:
    """``n`` values whose sample mean and sample std are exactly ``mean`` and ``sd``."""
    z = np.linspace(-1.0, 1.0, n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


def test_interval_is_student_t_over_seeds() -> None:
    # 3 seeds 2.0, 3.0, 4.0: mean 3, s = 1, t_{0.975, 2} = 4.3027, half width 4.3027 / sqrt(3) = 2.4841
    mean, low, high = confidence_interval([2.0, 3.0, 4.0])
    assert mean == pytest.approx(3.0)
    assert (low, high) == pytest.approx((3.0 - 2.48414, 3.0 + 2.48414), abs=1e-4)


def test_worse_closed_form() -> None:
    # ours 3.52 (s 0.02, n 3) against Table 1 S2 CIFAR-10 ROME 3.14 +- 0.14 (n 3): d = 0.38, margin 0.14,
    # se^2 = 0.0004/3 + 0.0196/3 = 0.02/3, df = min(2, 2); t = (0.38 - 0.14) / se = 2.9394 -> p = 0.0494
    v = judge([3.50, 3.52, 3.54], 3.14, 0.14, 3)
    se = math.sqrt(0.02 / 3)
    assert (v.diff, v.margin, v.se, v.df) == pytest.approx((0.38, 0.14, se, 2.0))
    assert v.p_worse == pytest.approx(_sf2(0.24 / se), abs=1e-9) == pytest.approx(0.04944, abs=1e-4)
    assert v.verdict == WORSE
    assert v.p_better == pytest.approx(1 - _sf2((0.38 + 0.14) / se), abs=1e-9)
    # the TOST interval is the 90 % one: d +- t_{0.95, 2} se, t_{0.95, 2} = 2.919986
    assert (v.diff_low, v.diff_high) == pytest.approx((0.38 - 2.919986 * se, 0.38 + 2.919986 * se), abs=1e-5)
    assert v.diff_low > v.margin


def test_better_mirrors_worse_and_accuracy_reverses_the_direction() -> None:
    v = judge([2.74, 2.76, 2.78], 3.14, 0.14, 3)
    assert v.verdict == BETTER and v.p_better == pytest.approx(_sf2(0.24 / math.sqrt(0.02 / 3)), abs=1e-9)
    assert judge([97.80, 97.82, 97.84], 97.42, 0.14, 3, higher_is_better=True).verdict == BETTER
    assert judge([97.00, 97.02, 97.04], 97.42, 0.14, 3, higher_is_better=True).verdict == WORSE


def test_reproduced_closed_form() -> None:
    # a published std of 0.00 (Table 1 S3 CIFAR-10 ROME 2.61): a point, margin = rounding 0.01;
    # ours s 0.001, n 3: se = 0.001 / sqrt(3), t = 0.01 / se = 17.32 both ways
    v = judge([2.609, 2.610, 2.611], 2.61, 0.0, 3)
    se = 0.001 / math.sqrt(3)
    assert v.margin == 0.01 and v.se == pytest.approx(se) and v.df == 2
    assert v.p_equivalent == pytest.approx(_sf2(0.01 / se), abs=1e-9) and v.p_equivalent < 0.002
    assert v.verdict == REPRODUCED
    # with a published std: reachable once the published mean is known well (many published searches)
    assert judge(_values(3.14, 0.05, 5), 3.14, 0.14, 30).verdict == REPRODUCED


def test_counts_without_spread_are_exact() -> None:
    # parameterless ops: ROME S2 CIFAR-10 2.0 +- 0.0; five seeds of 2 is reproduced, of 3 worse, of 1 better
    assert judge([2, 2, 2, 2, 2], 2.0, 0.0, 3, rounding=0.1).verdict == REPRODUCED
    assert judge([3, 3, 3, 3, 3], 2.0, 0.0, 3, rounding=0.1).verdict == WORSE
    assert judge([1, 1, 1, 1, 1], 2.0, 0.0, 3, rounding=0.1).verdict == BETTER
    assert judge([2, 2, 2], 2.5, 0.0, 3, rounding=0.5).verdict == INCONCLUSIVE  # exactly the margin away


def test_inconclusive_and_unreachable_at_the_papers_n() -> None:
    # ours exactly the published mean, almost no spread; the paper's n = 3 leaves its mean uncertain by
    # t_{0.95, 2} * 0.14 / sqrt(3) = 0.236 > margin 0.14: equivalence cannot be shown, and says so
    v = judge([3.13, 3.14, 3.15], 3.14, 0.14, 3)
    assert v.verdict == INCONCLUSIVE and "cannot be shown" in v.why
    v = judge([3.0, 3.3, 3.1], 3.14, 0.02, 30)  # noisy seeds: inconclusive, but reachable with more
    assert v.verdict == INCONCLUSIVE and "more seeds" in v.why


def test_too_few_seeds_is_inconclusive() -> None:
    for values in ([2.5], [], [2.5, float("nan")], [2.5, None]):
        v = judge(values, 2.5, 0.1, 3)
        assert v.verdict == INCONCLUSIVE and "no variance estimate" in v.why
    assert math.isnan(judge([2.5], 2.5, 0.1, 3).ci_low)


def test_the_old_overlap_rule_said_reproduced_where_this_one_is_inconclusive() -> None:
    # two seeds far apart: the 95 % interval 2.7 +- 12.706 * 0.7 overlaps Table 1's 2.66 +- 0.06, so the
    # old rule called it reproduced; 2 seeds that differ by 1.4 points show nothing
    values = [2.0, 3.4]
    _, low, high = confidence_interval(values)
    assert low <= 2.66 + 0.06 and high >= 2.66 - 0.06  # the old rule's "reproduced"
    assert judge(values, 2.66, 0.06, 3).verdict == INCONCLUSIVE


def test_fewer_or_noisier_seeds_never_reach_a_verdict_that_more_or_cleaner_seeds_do_not() -> None:
    """For fixed summary statistics, the set of n (and of 1 / sd) with a conclusive verdict is upward
    closed and the verdict does not change inside it: fewer or noisier seeds only make `inconclusive`
    more likely, never `reproduced` (nor `better`/`worse`). Welch-Satterthwaite df would fail this."""
    reached = set()
    for pub_sd, pub_n in ((0.0, 3), (0.05, 3), (0.14, 4), (0.14, 40)):
        margin = max(pub_sd, 0.01)
        for d in np.array([-3.0, -2.625, -1.5, -0.9, -0.3, 0.0, 0.5, 1.0, 2.0, 2.625]) * margin:
            for sd in (0.002, 0.01, 0.03, 0.1, 0.5):
                verdicts = [judge(_values(3.0 + d, sd, n), 3.0, pub_sd, pub_n).verdict for n in (2, 3, 4, 6, 10, 20)]
                conclusive = [v for v in verdicts if v != INCONCLUSIVE]
                assert verdicts[len(verdicts) - len(conclusive):] == conclusive, (pub_sd, pub_n, d, sd, verdicts)
                assert len(set(conclusive)) <= 1
                reached.update(verdicts)
            for n in (2, 5):
                verdicts = [judge(_values(3.0 + d, sd, n), 3.0, pub_sd, pub_n).verdict
                            for sd in (0.001, 0.01, 0.014, 0.02, 0.05, 0.2, 1.0)]  # noisier to the right
                conclusive = [v for v in verdicts if v != INCONCLUSIVE]
                assert verdicts[:len(conclusive)] == conclusive, (pub_sd, pub_n, d, n, verdicts)
                assert len(set(conclusive)) <= 1
    assert reached == {REPRODUCED, BETTER, WORSE, INCONCLUSIVE}  # the grid reaches every outcome


def test_fewer_published_searches_never_help() -> None:
    for d in (0.0, 0.05, 0.3):
        verdicts = [judge(_values(3.0 + d, 0.02, 10), 3.0, 0.1, n).verdict for n in (2, 3, 4, 8, 30, 300)]
        conclusive = [v for v in verdicts if v != INCONCLUSIVE]
        assert verdicts[len(verdicts) - len(conclusive):] == conclusive, verdicts


def test_difference_between_methods() -> None:
    # Table 1 S1 CIFAR-10: ROME 2.66 +- 0.06, GDAS 2.89 +- 0.09, n 3: published ROME - GDAS = -0.23,
    # std of a difference sqrt(0.06^2 + 0.09^2) = 0.1082 = margin
    rome, gdas = (2.66, 0.06, 3), (2.89, 0.09, 3)
    v = judge_difference([3.5, 3.6, 3.7], [3.0, 3.1, 3.2], rome, gdas)  # ours +0.5: ROME worse than GDAS
    se = math.sqrt((0.01 + 0.01 + 0.0036 + 0.0081) / 3)
    assert (v.mean, v.published_mean, v.margin) == pytest.approx((0.5, -0.23, math.sqrt(0.0117)))
    assert (v.diff, v.se, v.df) == pytest.approx((0.73, se, 2.0))
    assert v.p_worse == pytest.approx(_sf2((0.73 - math.sqrt(0.0117)) / se), abs=1e-9)
    assert v.verdict == WORSE
    assert judge_difference([1.9, 2.0, 2.1], [3.0, 3.1, 3.2], rome, gdas).verdict == BETTER  # ROME ahead by 1.1
    assert judge_difference([2.6, 2.7, 2.8], [3.0, 3.1, 3.2], rome, gdas).verdict == INCONCLUSIVE
    # reproduced when the published difference is known well and ours is tight around it
    v = judge_difference([2.65, 2.66, 2.67], [2.88, 2.89, 2.90], (2.66, 0.06, 50), (2.89, 0.09, 50))
    assert v.verdict == REPRODUCED and v.diff == pytest.approx(0.0, abs=1e-12)
    assert judge_difference([2.6], [3.0, 3.1], rome, gdas).verdict == INCONCLUSIVE  # one seed of ROME
    # accuracies: higher is better, so a larger difference is better
    assert judge_difference([97.9, 98.0, 98.1], [96.9, 97.0, 97.1], (97.42, 0.07, 3), (96.52, 0.07, 3),
                            higher_is_better=True).verdict == INCONCLUSIVE


def test_published_n_from_the_captions() -> None:
    assert published_n(1) == 3 and published_n(2) == 4 and published_n(5) == 3
    assert published_n(2, "best") == 1 and published_n(4) == 1 and published_n(2, "single") == 1
