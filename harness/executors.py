"""Executors: how many independent runs are carried out (local sequential for now)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.run import RunConfig, run


def run_many(configs: list[RunConfig], out: Path, *, executor: str = "local", workers: int = 1,
             on_result: Callable[[dict[str, Any]], None] | None = None, **run_kwargs: Any) -> list[dict[str, Any]]:
    """Run every config (skipping complete ones); one failed run is recorded and the others go on."""
    if executor != "local":
        raise ValueError(f"unknown executor '{executor}'; valid: local")
    results = []
    for cfg in configs:
        result = run(cfg, out, **run_kwargs)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
