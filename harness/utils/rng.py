"""Every random number generator a run uses, seeded and saved together (exact resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from harness.utils import distributed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state as plain containers and tensors (loadable with ``weights_only=True``)."""
    state = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "numpy": [state[0], torch.from_numpy(state[1].copy()), *state[2:]],
           "python": random.getstate()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return distributed.gather_states(out)  # under DDP: every process's states


def set_rng_state(state: dict[str, Any]) -> None:
    state = distributed.own_state(state)  # under DDP: this process's states
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    random.setstate(_tupleize(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tupleize(x: Any) -> Any:
    return tuple(_tupleize(i) for i in x) if isinstance(x, list | tuple) else x
