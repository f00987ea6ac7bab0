"""The one rule that says whether a published number was reproduced.

For one benchmark x method (x options) with ``n`` seeds: the reproduced mean with its 95 % confidence
interval, Student's t over the seeds (``mean +- t_{0.975, n-1} * s / sqrt(n)``, ``s`` the sample
standard deviation), beside the published mean +- std. The verdict:

* ``reproduced`` - the confidence interval and the published interval ``[mean - std, mean + std]``
  overlap;
* ``better`` / ``worse`` - they do not, and the reproduced interval lies on the better / worse side
  (lower is better for an error, higher for an accuracy);
* ``too few seeds`` - fewer than 2 seeds: no interval can be estimated.

A published std of 0 (or none, as in the paper's Table 4) makes the published interval a point; a
``floor`` widens it to the rounding of the published figures (e.g. 0.1 for errors printed with two
decimals whose std reads 0.00).

Everything that compares with the paper calls :func:`judge`: the report tables (``reports/tables.py``)
and ``harness check``'s paper-budget comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.stats import t_interval

REPRODUCED, BETTER, WORSE, TOO_FEW = "reproduced", "better", "worse", "too few seeds"
VERDICTS = (REPRODUCED, BETTER, WORSE, TOO_FEW)
CONFIDENCE = 0.95
MIN_SEEDS = 2
#: least half widths of a published interval: the rounding of the published figures (a std printed as
#: 0.00 beside a two-decimal error; parameterless counts printed with one decimal)
FLOOR = {"error": 0.1, "num": 0.5}


@dataclass(frozen=True)
class Verdict:
    """One reproduced number against its published counterpart."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    published_mean: float
    published_std: float
    diff: float  # reproduced mean - published mean
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ci_text(self, digits: int = 2) -> str:
        """``[low, high]``, or a dash without an interval."""
        if math.isnan(self.ci_low):
            return "—"
        return f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


def confidence_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t interval over ``values`` (:func:`harness.stats.t_interval`; NaN
    bounds for fewer than 2 values)."""
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return math.nan, math.nan, math.nan
    if len(v) < MIN_SEEDS:
        return sum(v) / len(v), math.nan, math.nan
    return t_interval(v, confidence)


def judge(values: Sequence[float], published_mean: float, published_std: float | None = None, *,
          higher_is_better: bool = False, floor: float = 0.0, confidence: float = CONFIDENCE) -> Verdict:
    """The verdict for the per-seed ``values`` of one configuration against the published mean +- std.

    ``higher_is_better``: False for errors (default), True for accuracies. ``floor``: the least half
    width of the published interval (rounding of the published figures).
    """
    clean = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    mean, low, high = confidence_interval(clean, confidence)
    std = 0.0 if published_std is None or math.isnan(published_std) else float(published_std)
    half = max(std, floor)
    diff = mean - published_mean
    if len(clean) < MIN_SEEDS:
        verdict = TOO_FEW
    elif low <= published_mean + half and published_mean - half <= high:
        verdict = REPRODUCED
    elif (high < published_mean - half) != higher_is_better:
        verdict = BETTER
    else:
        verdict = WORSE
    return Verdict(len(clean), mean, low, high, float(published_mean), std, diff, verdict)
