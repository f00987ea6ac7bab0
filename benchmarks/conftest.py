"""Benchmark session setup: thread count, and the targets' summary printed at the end.

Run with ``tox -e bench`` (JSON in ``benchmark.json``) or
``python -m pytest benchmarks --benchmark-enable --benchmark-json=FILE``. ``BENCH_THREADS`` sets
torch's CPU threads (default 1, so that figures from a shared machine are comparable);
``BENCH_ASSERT_TARGETS=1`` makes a missed target fail its test instead of only being reported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from support import TARGETS  # noqa: E402

torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TARGETS:
        return
    tr = terminalreporter
    tr.section("performance targets (ratios measured in this run)")
    tr.write_line(f"{'target':<52} {'shape':<7} {'measured':>9} {'limit':>7}  verdict")
    for t in TARGETS:
        tr.write_line(f"{t.name:<52} {t.shape:<7} {t.measured:>9.3f} {t.limit:>7.2f}  {t.verdict}  {t.detail}")
    tr.write_line(f"torch threads: {torch.get_num_threads()}")
