"""Reading and reporting many runs (issue 18's scale item): ``harness report`` over 1,000 small run folders
in 60 s or less (10,000 in 10 minutes or less), and ``harness status`` over the same folder.

The runs are SYNTHETIC (:func:`tests.report_runs.sweep`: schema-valid results with real resolved specs,
3 search epochs with architecture weights each, every 50th run failed) - the paper's benchmarks sweep
shape: 5 benchmarks x 12 method variants (the five methods and ROME-v2's seven ablation rows) x seeds.
The report is the default one (no flag: every report but the drawings of single runs). Before the fix:
1,000 runs took 734 s and 10,000 did not finish in 600 s; ``status`` took 95 s for 10,000 runs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from support import TARGETS, Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.report_runs

from tests.report_runs import sweep  # noqa: E402

RUNS = int(os.environ.get("BENCH_REPORT_RUNS", "1000"))
LIMIT_S = 60.0 * RUNS / 1000  # the target: 1,000 runs in 60 s (10,000 in 600 s)
ASSERT = os.environ.get("BENCH_ASSERT_TARGETS") == "1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    sweep(folder, RUNS)
    return folder


def test_report_over_many_runs(benchmark, runs: Path, tmp_path: Path) -> None:
    from reports.index import build_reports

    def report() -> int:
        out = tmp_path / f"report{time.monotonic_ns()}"
        sections = build_reports(runs, out)
        return len(sections)

    n = benchmark.pedantic(report, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(runs=RUNS, seconds=seconds)
    TARGETS.append(Target(f"harness report over {RUNS} runs, s / {LIMIT_S:.0f} s", f"{RUNS}runs",
                          seconds / LIMIT_S, 1.0, f"{seconds:.1f} s"))
    assert n > 0
    if ASSERT:
        assert seconds <= LIMIT_S


def test_status_over_many_runs(benchmark, runs: Path) -> None:
    from harness.runs.status import scan_runs

    rows, duplicates = benchmark.pedantic(lambda: scan_runs(runs), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(runs=RUNS, seconds=seconds, ms_per_run=1000 * seconds / RUNS)
    TARGETS.append(Target(f"harness status over {RUNS} runs, ms per run", f"{RUNS}runs", 1000 * seconds / RUNS,
                          2.0, f"{seconds:.1f} s (10,000 runs took 95 s before: 9.5 ms per run)",
                          informational=True))
    assert len(rows) == RUNS and not duplicates
