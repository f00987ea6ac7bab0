"""Synthetic run folders for the report tests and the report benchmark: ``result.json`` files that validate
against :mod:`harness.runs.layout`, each with a real resolved spec (:func:`harness.spec.runspec.resolve`), so that the
readers, the grouping by config id and the labels see what real runs record, in milliseconds per run.

:func:`write_run` writes one run; :func:`sweep` writes a sweep of the size a user reaches with the paper's
benchmarks, methods, ablation rows and seeds (issue 18's scale item: 1,000 runs and more).
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

from harness.spec.runspec import resolve
from spaces.genotype import KNOWN, to_dict
from spaces.registry import describe

GENOTYPE = to_dict(KNOWN["DARTS_V2"])
#: the method variants of a sweep: the five methods and ROME-v2's seven ablation rows (Table 6)
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("darts", {}), ("gdas", {}), ("pcdarts", {}), ("rome-v1", {}), ("rome-v2", {}),
    *(("rome-v2", {"td": td, "ga_theta": gt, "ga_alpha": ga})
      for td, gt, ga in itertools.product((True, False), repeat=3) if not (td and gt and ga)),
]
BENCHES = ("s0-digits", "s1-digits", "s2-digits", "s3-digits", "s4-digits")


def _weights(space: str, rng: random.Random) -> dict[str, Any]:
    out = {}
    for cell, names in describe(space).items():
        rows = []
        for ops in names:
            raw = [rng.random() for _ in ops]
            rows.append([v / sum(raw) for v in raw])
        out[cell] = {"ops": rows}
    return out


def result_for(method: str, bench: str, budget: str = "check", seed: int = 0, *,
               options: dict[str, Any] | None = None, sets: dict[str, Any] | None = None, epochs: int = 3,
               status: str = "complete") -> dict[str, Any]:
    """A result of ``method`` on ``bench`` with made-up numbers (from ``seed``) and the real resolved spec."""
    spec = resolve(method, bench, budget, seed, options=options, sets=sets)
    rng = random.Random(f"{spec.run_id}")
    space = bench.split("-")[0]
    history = [{"epoch": e, "tau": 1.0, "lr": 0.025, "train_loss": 2.0 - 0.3 * e, "train_acc": 30.0 + 10 * e,
                "val_loss": 2.1 - 0.3 * e, "val_acc": 28.0 + 10 * e + rng.random(),
                "skip_connect_normal": rng.randint(0, 4), "parameterless_normal": rng.randint(0, 8),
                "genotype": GENOTYPE, "arch_weights": _weights(space, rng), "seconds": 1.0}
               for e in range(epochs)]
    result: dict[str, Any] = {
        "run_id": spec.run_id, "method": method, "options": spec.options, "bench": spec.bench, "space": space,
        "dataset": "digits", "budget": budget, "seed": seed, "status": status, "config": spec.to_dict(),
        "env": {"python": "3.11", "packages": {}, "device": "cpu", "git_commit": "0" * 40, "git_dirty": False,
                "config_hash": spec.hash},
        "timings": {"search_s": 1.0, "eval_s": 1.0, "total_s": 2.0},
        "genotype": GENOTYPE, "search": {"history": history},
        "eval": {"test_error": round(5.0 + 5 * rng.random(), 2), "params": 20000, "macs": 300000},
    }
    if status != "complete":
        result["reason"] = "made-up failure"
    return result


def write_run(folder: Path, result: dict[str, Any], name: str | None = None) -> Path:
    """``folder/<run_id>/result.json`` (or ``folder/<name>/``); returns the run folder."""
    run_dir = Path(folder) / (name or result["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


def sweep(folder: Path, n: int, budget: str = "check") -> list[Path]:
    """``n`` runs: every bench x method variant for seed 0, then seed 1, ... (every 50th run failed)."""
    combos = itertools.cycle(itertools.product(BENCHES, VARIANTS))
    per_seed = len(BENCHES) * len(VARIANTS)
    template: dict[tuple[str, str, str], dict[str, Any]] = {}
    out = []
    for i in range(n):
        bench, (method, options) = next(combos)
        seed = i // per_seed
        key = (bench, method, json.dumps(options, sort_keys=True))
        if key not in template:  # resolve once per configuration; the seed changes the run id and numbers
            template[key] = result_for(method, bench, budget, 0, options=options)
        result = json.loads(json.dumps(template[key]))
        result["seed"] = result["config"]["seed"] = seed
        result["run_id"] = result["run_id"].replace("_s0_", f"_s{seed}_")
        result["eval"]["test_error"] = round(5.0 + 5 * random.Random(i).random(), 2)
        if i % 50 == 49:
            result["status"], result["reason"] = "failed", "made-up failure"
        out.append(write_run(folder, result))
    return out
