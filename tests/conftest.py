"""Shared test setup: one thread per test process (the CI machine has 2 cores), a fixed seed."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
