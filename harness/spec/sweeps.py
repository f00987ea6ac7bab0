"""Sweeps of the paper's ablations as lists of :class:`~harness.runs.run.RunSpec` (data, not loops in the CLI).

* :func:`ablation_configs` - Table 6: the 8 combinations of topology disentanglement (TD) and
  gradient accumulation for the weights (GA-theta) and the architecture (GA-alpha) of ROME.
* :func:`k_sweep_configs` - Table 5: ROME with K samples per update, the search epochs scaled so
  that every K makes the same number of weight updates as K = 7 with the base epochs.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product
from typing import Any

from harness.spec import benchmarks
from harness.spec.runspec import RunSpec, canonical, make_config

#: Table 6 order: (TD, GA-theta, GA-alpha), TD off first, then GA-theta, then GA-alpha.
ABLATION: list[tuple[bool, bool, bool]] = list(product((False, True), repeat=3))

#: K the paper's other experiments use; the K sweep keeps K * epochs equal to REFERENCE_K * base epochs
REFERENCE_K = 7
#: Table 5's search epochs for a base of 50 epochs (50 * 7 / 4 = 87.5 is printed as 87)
PAPER_K_EPOCHS: dict[int, int] = {1: 350, 4: 87, 7: 50, 10: 35}
PAPER_BASE_EPOCHS = 50


def ablation_options(td: bool, ga_theta: bool, ga_alpha: bool) -> dict[str, bool]:
    return {"td": td, "ga_theta": ga_theta, "ga_alpha": ga_alpha}


def ablation_configs(bench: str, budget: str, seeds: Iterable[int], *, method: str = "rome-v2",
                     options: dict[str, Any] | None = None, **overrides: Any) -> list[RunSpec]:
    """Table 6: every (TD, GA-theta, GA-alpha) combination x benchmark x seed.

    ``options`` are further method options (e.g. ``{"k": 7}``); the three toggles are set here.
    ``overrides`` are protocol overrides passed to :func:`~harness.spec.runspec.make_config`.
    """
    seeds = list(seeds)
    return [make_config(method, b, budget, s, {**(options or {}), **ablation_options(*combo)}, **overrides)
            for b in benchmarks.expand(bench) for combo in ABLATION for s in seeds]


def k_epochs(k: int, base_epochs: int) -> int:
    """Search epochs for K samples so that ``K * epochs`` stays ``7 * base_epochs`` (Table 5).

    The paper's values when the base is 50 epochs; else ``max(1, round(base * 7 / K))``.
    """
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    if base_epochs == PAPER_BASE_EPOCHS and k in PAPER_K_EPOCHS:
        return PAPER_K_EPOCHS[k]
    return max(1, round(base_epochs * REFERENCE_K / k))


def k_sweep_configs(bench: str, budget: str, seeds: Iterable[int], ks: Iterable[int] = (1, 4, 7, 10), *,
                    method: str = "rome-v2", options: dict[str, Any] | None = None,
                    **overrides: Any) -> list[RunSpec]:
    """Table 5: ROME with each K in ``ks`` x benchmark x seed, search epochs from :func:`k_epochs`.

    The base epochs are ``overrides["search_epochs"]`` when given, else the budget's. A ``k``
    protocol override or option is replaced by each K of the sweep.
    """
    seeds, ks = list(seeds), list(ks)
    overrides = {canonical(k): v for k, v in overrides.items() if canonical(k) != "options.k"}
    opts = {k: v for k, v in (options or {}).items() if k != "k"}
    out = []
    for b in benchmarks.expand(bench):
        probe = make_config(method, b, budget, 0, opts, **overrides).search
        assert probe is not None
        base = probe.epochs
        for k in ks:
            epochs = k_epochs(k, base)
            out += [make_config(method, b, budget, s, {**opts, "k": k}, **{**overrides, "search.epochs": epochs})
                    for s in seeds]
    return out


def sweep_configs(methods: Iterable[str], bench: str, budget: str, seeds: Iterable[int], *, ablation: bool = False,
                  ks: Iterable[int] = (), options: dict[str, Any] | None = None,
                  **overrides: Any) -> list[RunSpec]:
    """``harness run --ablation`` and/or ``--k-sweep``: both sweeps for each (ROME) method, no duplicates.

    ``ValueError`` when an option the sweep sets itself was also given (a toggle with ``ablation``,
    ``k`` with ``ks``).
    """
    opts, ks, seeds = dict(options or {}), list(ks), list(seeds)
    given = sorted({"td", "ga_theta", "ga_alpha"} & set(opts))
    if ablation and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"--ablation sets the ROME toggles itself; drop {flags}")
    if ks and "k" in opts:
        raise ValueError("--k-sweep sets K itself; drop --k")
    configs: dict[str, RunSpec] = {}
    for method in methods:
        if ablation:
            configs.update((c.run_id, c) for c in ablation_configs(bench, budget, seeds, method=method,
                                                                   options=opts, **overrides))
        if ks:
            configs.update((c.run_id, c) for c in k_sweep_configs(bench, budget, seeds, ks, method=method,
                                                                  options=opts, **overrides))
    return list(configs.values())
