"""Sweeps of Tables 5 and 6 as configs (no runs: only what the configs say)."""

from __future__ import annotations

import pytest

from harness.spec.sweeps import ABLATION, PAPER_K_EPOCHS, ablation_configs, k_epochs, k_sweep_configs, sweep_configs


def test_ablation_configs_cover_the_8_combinations_per_seed() -> None:
    configs = ablation_configs("s0-digits", "smoke", [0, 1])
    assert len(configs) == 16
    assert len({c.run_id for c in configs}) == 16
    combos = {(c.options["td"], c.options["ga_theta"], c.options["ga_alpha"]) for c in configs}
    assert combos == set(ABLATION)
    assert ABLATION[0] == (False, False, False) and ABLATION[-1] == (True, True, True)  # Table 6 order
    assert {c.method for c in configs} == {"rome-v2"}


def test_ablation_configs_keep_protocol_overrides_and_k() -> None:
    configs = ablation_configs("s0-digits", "smoke", [0], options={"k": 3}, search_epochs=2)
    assert {c.protocol.search_epochs for c in configs} == {2}
    assert {c.options["k"] for c in configs} == {3}


@pytest.mark.parametrize(("base", "expected"), [(50, PAPER_K_EPOCHS), (4, {1: 28, 4: 7, 7: 4, 10: 3}),
                                                (1, {1: 7, 4: 2, 7: 1, 10: 1})])
def test_k_epochs_keep_weight_updates_equal(base: int, expected: dict[int, int]) -> None:
    assert {k: k_epochs(k, base) for k in (1, 4, 7, 10)} == expected


def test_k_epochs_paper_values_for_base_50() -> None:
    assert k_epochs(4, 50) == 87  # the paper's Table 5, not round(87.5)
    assert k_epochs(2, 50) == 175


def test_k_sweep_configs_scale_epochs_from_the_budget() -> None:
    configs = k_sweep_configs("s0-c10", "paper", [0, 1])
    assert [(c.options["k"], c.protocol.search_epochs) for c in configs[::2]] == [(1, 350), (4, 87), (7, 50),
                                                                                  (10, 35)]
    smoke = k_sweep_configs("s0-digits", "smoke", [0], ks=(1, 7), k=2)  # a k override is replaced by each K
    assert [(c.options["k"], c.protocol.search_epochs) for c in smoke] == [(1, 28), (7, 4)]


def test_sweep_configs_deduplicate_and_reject_conflicting_options() -> None:
    both = sweep_configs(["rome-v2"], "s0-digits", "smoke", [0], ablation=True, ks=[1, 4, 7, 10])
    assert len(both) == 8 + 4 - 1  # the all-on combination at K=7 is the sweep's K=7 run
    with pytest.raises(ValueError, match="drop --td"):
        sweep_configs(["rome-v2"], "s0-digits", "smoke", [0], ablation=True, options={"td": False})
    with pytest.raises(ValueError, match="drop --k"):
        sweep_configs(["rome-v2"], "s0-digits", "smoke", [0], ks=[1], options={"k": 3})
    with pytest.raises(ValueError, match="no option 'td'"):
        sweep_configs(["gdas"], "s0-digits", "smoke", [0], ablation=True)
