"""The verdict rule (harness/verdict.py) on hand-made numbers, one test per outcome."""

from __future__ import annotations

import math

import pytest

from harness.verdict import BETTER, REPRODUCED, TOO_FEW, WORSE, confidence_interval, judge


def test_interval_is_student_t_over_seeds() -> None:
    # 3 seeds 2.0, 3.0, 4.0: mean 3, s = 1, t_{0.975, 2} = 4.3027, half width 4.3027 / sqrt(3) = 2.4841
    mean, low, high = confidence_interval([2.0, 3.0, 4.0])
    assert mean == pytest.approx(3.0)
    assert (low, high) == pytest.approx((3.0 - 2.48414, 3.0 + 2.48414), abs=1e-4)
    # 2 seeds: t_{0.975, 1} = 12.706, s = 0.1 * sqrt(2) -> half width 12.706 * 0.1 = 1.2706
    _, low, high = confidence_interval([1.0, 1.2])
    assert high - low == pytest.approx(2 * 1.27062, abs=1e-4)


def test_reproduced_when_intervals_overlap() -> None:
    v = judge([2.6, 2.8, 3.0], published_mean=2.55, published_std=0.05)  # CI [2.30, 3.30] holds 2.55
    assert v.verdict == REPRODUCED
    assert v.diff == pytest.approx(0.25)
    # no overlap of the CI with the mean itself, but with the published interval's edge
    v = judge([3.00, 3.02, 3.04], published_mean=2.80, published_std=0.20)  # CI [2.95, 3.09], paper [2.6, 3.0]
    assert v.verdict == REPRODUCED


def test_better_error_below_the_published_interval() -> None:
    v = judge([2.00, 2.02, 2.04], published_mean=2.80, published_std=0.10)
    assert v.verdict == BETTER
    assert v.ci_high < 2.70
    assert v.diff == pytest.approx(-0.78)


def test_worse_error_above_the_published_interval() -> None:
    v = judge([3.50, 3.52, 3.54], published_mean=2.80, published_std=0.10)
    assert v.verdict == WORSE


def test_accuracy_direction_is_reversed() -> None:
    assert judge([80.0, 80.1, 80.2], 75.0, 0.5, higher_is_better=True).verdict == BETTER
    assert judge([70.0, 70.1, 70.2], 75.0, 0.5, higher_is_better=True).verdict == WORSE


def test_too_few_seeds() -> None:
    v = judge([2.5], published_mean=2.5, published_std=0.1)
    assert v.verdict == TOO_FEW
    assert v.mean == 2.5 and math.isnan(v.ci_low)
    assert judge([], 2.5, 0.1).verdict == TOO_FEW
    assert judge([2.5, float("nan")], 2.5, 0.1).verdict == TOO_FEW  # a missing value is not a seed


def test_missing_std_is_a_point_and_floor_widens_it() -> None:
    v = judge([2.70, 2.71, 2.72], published_mean=2.76, published_std=float("nan"))  # CI [2.685, 2.735]
    assert v.verdict == BETTER and v.published_std == 0.0
    assert judge([2.70, 2.71, 2.72], 2.76, 0.0, floor=0.1).verdict == REPRODUCED
