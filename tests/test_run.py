"""End-to-end runs at a tiny protocol: search -> derive -> evaluate -> record."""

from __future__ import annotations

import json

import pytest

import methods
from harness.runs.layout import DARTS_GENOTYPE, validate_result
from harness.runs.run import run
from harness.spec.benchmarks import PAPER_15
from harness.spec.runspec import make_config
from spaces.darts import SPACES
from spaces.genotype import PARAMETERLESS, from_dict
from tests.tiny import TINY, tiny


def _check_genotype(genotype: dict, space: str) -> None:
    import jsonschema

    jsonschema.validate(genotype, DARTS_GENOTYPE)
    g = from_dict(genotype)
    ops = SPACES[space]
    for cell_type, cell in (("normal", g.normal), ("reduce", g.reduce)):
        assert len(cell) == 8
        allowed = ops.ops(cell_type)
        for k, (op, inp) in enumerate(cell):
            node = 2 + k // 2
            assert 0 <= inp < node
            edge = sum(range(2, node)) + inp  # DARTS edge index of (inp -> node)
            assert op in allowed[edge], f"{op} not allowed on {cell_type} edge {edge}"
            assert op != "none"


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_every_method_runs_end_to_end(name: str, tmp_path) -> None:
    cfg = make_config(name, "s0-digits", "smoke", seed=0, **tiny(name))
    result = run(cfg, tmp_path)
    assert result["status"] == "complete", result.get("reason")
    validate_result(result)
    on_disk = json.loads((tmp_path / cfg.run_id / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert len(result["search"]["history"]) == TINY["search_epochs"]
    assert [h["epoch"] for h in result["search"]["history"]] == [0, 1]
    _check_genotype(result["genotype"], "s0")
    if name.startswith("rome"):
        g = from_dict(result["genotype"])
        for cell in (g.normal, g.reduce):  # topology disentanglement: 2 distinct inputs per node
            assert all(cell[2 * n][1] != cell[2 * n + 1][1] for n in range(4))
    assert 0.0 <= result["eval"]["test_error"] <= 100.0
    assert result["eval"]["params"] > 0 and result["eval"]["macs"] > 0
    env = result["env"]
    assert env["config_hash"] == cfg.hash and env["packages"]["torch"]
    assert result["seed"] == 0 and result["options"] == cfg.options


@pytest.mark.parametrize("space", ["s1", "s2", "s3", "s4"])
@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_rdarts_spaces_derive_allowed_ops(space: str, name: str, tmp_path) -> None:
    cfg = make_config(name, f"{space}-digits", "smoke", seed=1, **tiny(name, eval_epochs=1, search_epochs=1))
    result = run(cfg, tmp_path)
    assert result["status"] == "complete", result.get("reason")
    _check_genotype(result["genotype"], space)
    g = from_dict(result["genotype"])
    assert result["search"]["history"][-1]["parameterless_normal"] == sum(op in PARAMETERLESS for op, _ in g.normal)


def test_same_seed_same_genotype(tmp_path) -> None:
    cfg = make_config("rome-v2", "s0-digits", "smoke", seed=3, **tiny("rome-v2"))
    a = run(cfg, tmp_path / "a")
    b = run(cfg, tmp_path / "b")
    assert a["genotype"] == b["genotype"]
    assert [h["train_loss"] for h in a["search"]["history"]] == [h["train_loss"] for h in b["search"]["history"]]
    assert a["eval"]["test_error"] == b["eval"]["test_error"]


def test_complete_run_is_not_recomputed(tmp_path) -> None:
    cfg = make_config("gdas", "s0-digits", "smoke", seed=0, **tiny("gdas"))
    first = run(cfg, tmp_path)
    path = tmp_path / cfg.run_id / "result.json"
    stamp = path.stat().st_mtime_ns
    assert run(cfg, tmp_path) == json.loads(path.read_text()) == json.loads(json.dumps(first))
    assert path.stat().st_mtime_ns == stamp


def test_failed_run_is_recorded(tmp_path) -> None:
    cfg = make_config("gdas", "s0-c10", "smoke", seed=0, **tiny("gdas"))
    result = run(cfg, tmp_path)  # CIFAR-10 is not on this machine
    assert result["status"] == "failed"
    assert "c10" in result["reason"] and "--download" in result["reason"]
    validate_result(result)


@pytest.mark.parametrize("bench", PAPER_15)
def test_each_paper_benchmark_resolves_to_its_protocol(bench: str) -> None:
    cfg = make_config("rome-v2", bench, "paper", 0)
    p = cfg.protocol
    assert (p.search_layers, p.search_channels) == (8, 16)
    if bench == "s0-imagenet":
        assert (p.search_epochs, p.search_batch, cfg.options["k"], p.eval_network) == (30, 256, 3, "imagenet")
        assert (p.eval_layers, p.eval_channels, p.eval_epochs) == (14, 48, 250)
    else:
        assert (p.search_epochs, p.search_batch, cfg.options["k"], p.eval_epochs, p.eval_batch) == (50, 64, 7, 600, 96)
        small = bench.startswith(("s1", "s2", "s3", "s4")) and not bench.endswith("c10")
        assert (p.eval_layers, p.eval_channels) == ((8, 16) if small else (20, 36))


def test_run_ids_differ_by_options_and_seed() -> None:
    a = make_config("rome-v2", "s0-digits", "smoke", 0)
    b = make_config("rome-v2", "s0-digits", "smoke", 0, {"td": False})
    c = make_config("rome-v2", "s0-digits", "smoke", 1)
    assert len({a.run_id, b.run_id, c.run_id}) == 3
    assert "_td0" in b.run_id
    assert a.options["k"] == 7 and make_config("rome-v2", "s0-imagenet", "paper", 0).options["k"] == 3


@pytest.mark.parametrize("bad, message", [
    (dict(method="nope"), "valid: darts"),
    (dict(bench="s9-c10"), "unknown benchmark"),
    (dict(budget="huge"), "valid: paper, smoke"),
    (dict(options={"k": 0}), "K must be"),
    (dict(method="gdas", options={"k": 3}), "has no option 'k'"),
    (dict(search_epochs=0), r"search.epochs=0: must be > 0"),
    (dict(seed=-1), "seed must be >= 0"),
])
def test_make_config_rejects_bad_values(bad: dict, message: str) -> None:
    args = dict(method="rome-v2", bench="s0-digits", budget="smoke", seed=0)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        make_config(**args)
