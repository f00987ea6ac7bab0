"""The resolved run spec (harness.spec.runspec): composition, --set parsing, validation before any work, the
record and hash, presets, method options declared once, and the evaluation lr schedules."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.engine.evaluate import lr_factor, lr_scheduler
from harness.runs.run import run
from harness.spec import benchmarks
from harness.spec.benchmarks import PresetRule
from harness.spec.runspec import SpecError, fixed_config, make_config, parse_sets, parse_value, resolve
from methods.base import METHODS, SearchHParams, build_method, option, option_label, register_method
from methods.gdas import GDAS
from methods.rome import ROMEv2
from spaces.darts import SPACES
from spaces.genotype import resolve as genotype
from spaces.supernet import SearchNetwork
from tests.tiny import tiny


def dry_run(*args: str) -> list[dict]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["run", *args, "--dry-run"]) == 0
    return json.loads(buf.getvalue())


# -- composition and --set ---------------------------------------------------------------------------------
def test_dotted_and_old_flat_names_resolve_to_the_same_spec() -> None:
    dotted = make_config("rome-v2", "s0-digits", "smoke", 0, sets={"eval.epochs": "3", "search.channels": 4,
                                                                    "options.k": "2"})
    flat = make_config("rome-v2", "s0-digits", "smoke", 0, eval_epochs=3, search_channels=4, k=2)
    assert dotted == flat and dotted.hash == flat.hash
    assert (dotted.eval.epochs, dotted.search.channels, dotted.options["k"]) == (3, 4, 2)
    assert dotted.protocol.eval_epochs == 3  # the old flat view


def test_layers_compose_in_order_benchmark_budget_method_user() -> None:
    paper = make_config("rome-v2", "s0-imagenet", "paper", 0)
    assert paper.options["k"] == 3 and paper.search.epochs == 30  # the benchmark's protocol
    assert paper.search.w_lr == 0.05  # ROME's own (Sec. 4.1), over the shared 0.025
    smoke = make_config("rome-v2", "s0-imagenet", "smoke", 0)
    assert smoke.search.epochs == 4  # the budget over the benchmark
    user = make_config("rome-v2", "s0-imagenet", "smoke", 0, sets={"search.w_lr": "0.2"})
    assert user.search.w_lr == 0.2  # the user's over the method's
    pc = make_config("pcdarts", "s0-digits", "smoke", 0)
    assert (pc.search.w_lr, pc.search.a_lr, pc.search.arch_warmup) == (0.1, 6e-4, 0.3)
    assert make_config("gdas", "s0-digits", "smoke", 0).search.arch_first is False  # recorded, not "default"


@pytest.mark.parametrize("text, kind, value", [
    ("true", bool, True), ("off", bool, False), ("none", int | None, None), ("7", int | None, 7),
    ("6e-4", float, 6e-4), ("0.5,0.99", tuple[float, float], (0.5, 0.99)), ("cifar", str, "cifar"),
])
def test_parse_value(text: str, kind: object, value: object) -> None:
    assert parse_value("x", text, kind) == value


def test_bad_names_and_types_name_the_valid_keys() -> None:
    with pytest.raises(SpecError, match=r"unknown name 'search.nope'; valid: search.epochs, .*eval.lr"):
        make_config("gdas", "s0-digits", "smoke", 0, sets={"search.nope": "1"})
    with pytest.raises(SpecError, match=r"eval.epochs='two': takes a int"):
        make_config("gdas", "s0-digits", "smoke", 0, sets={"eval_epochs": "two"})
    with pytest.raises(SpecError, match="unknown name 'options.k'"):  # GDAS samples one architecture
        make_config("gdas", "s0-digits", "smoke", 0, sets={"options.k": "3"})
    assert make_config("gdas", "s0-digits", "smoke", 0, k=3).options == {}  # the old flat k: where K exists
    with pytest.raises(SpecError, match="expected NAME=VALUE"):
        parse_sets(["eval.epochs"])


# -- validation before any work (issue: 17 values failed inside the run, 18 passed silently) ------------------
BAD = [
    ({"eval_lr": "-0.1"}, "eval.lr=-0.1: must be > 0"),
    ({"eval_lr": "0"}, "eval.lr=0.0: must be > 0"),
    ({"eval_lr": "nan"}, "eval.lr=nan: takes a finite number"),
    ({"eval_lr": "inf"}, "eval.lr=inf: takes a finite number"),
    ({"eval_momentum": "-0.5"}, "eval.momentum=-0.5: must be in [0, 1)"),
    ({"eval_weight_decay": "-1e-4"}, "eval.weight_decay=-0.0001: must be >= 0"),
    ({"label_smoothing": "1.5"}, "eval.label_smoothing=1.5"),
    ({"eval_network": "resnet"}, "eval.network='resnet': valid: cifar, imagenet, nasbench101"),
    ({"search_stem": "vit"}, "search.stem='vit': valid: cifar, imagenet"),
    ({"eval_subset": "0"}, "eval.subset=0: must be > 0"),
    ({"eval_channels": "0"}, "eval.channels=0"),
    ({"search_channels": "0"}, "search.channels=0"),
    ({"search_subset": "0"}, "search.subset=0"),
    ({"search_image_size": "-32"}, "search.image_size=-32"),
    ({"search_image_size": "0"}, "search.image_size=0"),
    ({"search_image_size": "100000"}, "TiB of activations"),
    ({"cutout": "-1"}, "data.cutout=-1: must be >= 0"),
    ({"drop_path": "2"}, "eval.drop_path=2.0: must be in [0, 1)"),
    ({"aux_weight": "-1"}, "eval.aux_weight=-1.0: must be >= 0"),
    ({"eval_grad_clip": "nan"}, "eval.grad_clip=nan: takes a finite number"),
    ({"search.w_lr": "-1"}, "search.w_lr=-1.0"),
    ({"search.a_lr": "nan"}, "search.a_lr=nan"),
    ({"search.w_momentum": "1.5"}, "search.w_momentum=1.5"),
    ({"search.tau_min": "0"}, "search.tau_min=0.0"),
    ({"search.tau_min": "20"}, "search.tau_min=20.0: must be <= search.tau_max"),
    ({"search.clip_mode": "sometimes"}, "valid: per_sample, summed, off"),
    ({"search.a_betas": "0.5,1.5"}, "search.a_betas"),
    ({"search.arch_warmup": "1"}, "search.arch_warmup=1.0"),
    ({"eval.lr_schedule": "step"}, "valid: cosine, linear"),
    ({"eval.warmup_epochs": "99"}, "eval.warmup_epochs=99: must be <= eval.epochs"),
]


@pytest.mark.parametrize("sets, message", BAD, ids=[next(iter(b[0])) + "=" + next(iter(b[0].values())) for b in BAD])
def test_each_bad_value_is_rejected_naming_field_and_value(sets: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        make_config("rome-v2", "s0-digits", "smoke", 0, sets=sets)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_cross_field_rules() -> None:
    with pytest.raises(SpecError, match="search.channels=8 is not divisible by the partial ratio options.partial=3"):
        make_config("pcdarts", "s0-digits", "smoke", 0, {"partial": 3})
    assert make_config("pcdarts", "s0-digits", "smoke", 0, {"partial": 2}).options == {"partial": 2}
    with pytest.raises(SpecError, match=r"seed=4294967296: must be an integer with 0 <= seed < 2\*\*32"):
        make_config("gdas", "s0-digits", "smoke", 4294967296)
    assert make_config("gdas", "s0-digits", "smoke", 2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize("argv", [
    ["--set", "eval_lr=nan"], ["--set", "cutout=-1"], ["--seed", "4294967296"],
    ["--method", "pcdarts", "--partial", "3"],
    ["--set", "search_image_size=100000"], ["--bench", ""], ["--seeds", ",,,"], ["--seeds", ""],
])
def test_cli_rejects_before_creating_anything(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "runs"
    assert main(["run", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists()


# -- record, hash, reuse ------------------------------------------------------------------------------------
def test_changing_a_preset_hyper_parameter_changes_the_run_id_and_is_not_reused(tmp_path: Path, monkeypatch) -> None:
    args = ("gdas", "s0-digits", "smoke", 0)
    first_cfg = make_config(*args, **tiny("gdas"))
    first = run(first_cfg, tmp_path)
    assert first["status"] == "complete"
    assert first["config"] == json.loads(json.dumps(first_cfg.to_dict()))
    assert first["config"]["search"]["a_lr"] == 3e-4 and first["env"]["config_hash"] == first_cfg.hash

    monkeypatch.setitem(benchmarks.PRESETS, "default", [PresetRule({"search.a_lr": 1e-3}, ("gdas",))])
    second_cfg = make_config(*args, **tiny("gdas"))
    assert second_cfg.run_id != first_cfg.run_id
    second = run(second_cfg, tmp_path)
    assert second["run_id"] == second_cfg.run_id and second["config"]["search"]["a_lr"] == 1e-3
    assert second["search"]["history"] != first["search"]["history"]  # searched again, not the old result
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first_cfg.run_id, second_cfg.run_id])


def test_a_methods_own_default_is_in_the_hash(monkeypatch) -> None:
    before = make_config("rome-v2", "s0-digits", "smoke", 0)
    monkeypatch.setattr(ROMEv2, "search_defaults", {"w_lr": 0.051})
    after = make_config("rome-v2", "s0-digits", "smoke", 0)
    assert after.search.w_lr == 0.051 and after.run_id != before.run_id


def test_dry_run_prints_the_spec_and_run_id(tmp_path: Path) -> None:
    changed = dry_run("--method", "rome-v2", "--bench", "s0-digits", "--set", "search.a_lr=1e-3",
                      "--out", str(tmp_path / "runs"))
    default = dry_run("--method", "rome-v2", "--bench", "s0-digits", "--out", str(tmp_path / "runs"))
    assert changed[0]["config"]["search"]["a_lr"] == 1e-3 and default[0]["config"]["search"]["a_lr"] == 3e-4
    assert changed[0]["run_id"] != default[0]["run_id"]
    assert changed[0]["run_id"] == make_config("rome-v2", "s0-digits", "smoke", 0, sets={"search.a_lr": 1e-3}).run_id
    assert not (tmp_path / "runs").exists()


def test_fixed_evaluation_has_no_search_section_and_a_safe_run_id() -> None:
    g = genotype("DARTS_V2")
    cfg = fixed_config(g, "../../outside/DARTS_V2.json", "s0-digits", "smoke", 0)
    assert cfg.search is None and cfg.to_dict()["search"] is None
    assert "/" not in cfg.run_id and cfg.run_id.startswith("s0-digits_fixed-DARTS_V2_smoke_s0_")
    again = fixed_config(g, "DARTS_V2", "s0-digits", "smoke", 0, **{"search.a_lr": "1e-3"})
    assert again.run_id == cfg.run_id  # nothing of a search decides a fixed evaluation
    with pytest.raises(SpecError, match="eval.lr=-1.0: must be > 0"):
        fixed_config(g, "x", "s0-digits", "smoke", 0, eval_lr="-1")


# -- presets -------------------------------------------------------------------------------------------------
def test_released_presets() -> None:
    nb = make_config("gdas", "nb1s1-digits", "smoke", 0, preset="released")
    assert (nb.search.tau_max, nb.search.tau_min, nb.search.arch_first) == (10.0, 1.0, True)
    assert "_released_" in nb.run_id and nb.run_id != make_config("gdas", "nb1s1-digits", "smoke", 0).run_id
    s0 = make_config("gdas", "s0-c10", "paper", 0, preset="released")
    assert (s0.search.epochs, s0.search.batch, s0.search.w_weight_decay, s0.search.w_nesterov) == (250, 256, 5e-4, True)
    s0_smoke = make_config("gdas", "s0-c10", "smoke", 0, preset="released")
    assert s0_smoke.search.epochs == 4 and s0_smoke.search.w_nesterov  # the budget keeps its epochs
    inet = make_config("rome-v2", "s0-imagenet", "paper", 0, preset="released")
    assert (inet.eval.lr_schedule, inet.eval.warmup_epochs) == ("linear", 5)
    default = make_config("rome-v2", "s0-imagenet", "paper", 0)
    assert (default.eval.lr_schedule, default.eval.warmup_epochs) == ("cosine", 0)
    assert make_config("rome-v2", "s0-c10", "paper", 0, preset="released").search == \
        make_config("rome-v2", "s0-c10", "paper", 0).search  # ROME has no released code to follow
    with pytest.raises(SpecError, match="unknown preset 'nope'; valid: default, released"):
        make_config("gdas", "s0-digits", "smoke", 0, preset="nope")


def test_arch_first_from_the_spec_orders_the_step() -> None:
    net = SearchNetwork(SPACES["s0"], c=4, num_classes=3, layers=3)
    assert build_method("gdas", net, SearchHParams(epochs=2)).arch_first is False
    assert build_method("gdas", net, SearchHParams(epochs=2, arch_first=True)).arch_first is True


# -- where ROME's clip applies (Eq. 12) ---------------------------------------------------------------------
def _grad_norm_after_step(mode: str) -> float:
    torch.manual_seed(0)
    net = SearchNetwork(SPACES["s0"], c=4, num_classes=3, layers=3)
    hp = SearchHParams(epochs=2, grad_clip=1e-3, clip_mode=mode)
    method = build_method("rome-v2", net, hp, {"k": 4})
    method.begin_epoch(0, 2)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 3, (4,), generator=g)
    method.weight_step((x, y))
    grads = [p.grad for p in method.weight_parameters() if p.grad is not None]
    return float(torch.norm(torch.stack([torch.norm(gr) for gr in grads])))


def test_clip_modes_of_the_summed_weight_gradient() -> None:
    summed, per_sample, off = (_grad_norm_after_step(m) for m in ("summed", "per_sample", "off"))
    assert summed == pytest.approx(1e-3, rel=1e-3)  # the sum of Eq. 12 rescaled to the clip
    assert 1.5e-3 < per_sample <= 4e-3 + 1e-9  # K clipped terms summed: up to K times the clip
    assert off > per_sample


# -- methods declare their options once ------------------------------------------------------------------------
@pytest.fixture
def toy_method():
    @dataclass(frozen=True)
    class ToyOptions:
        wiggle: int = option(3, "how much the toy wiggles", label="W",
                             check=lambda v: None if v > 0 else "wiggle must be > 0")

    class Toy(GDAS):
        Options = ToyOptions

    register_method("toy-test")(Toy)
    yield Toy
    del METHODS["toy-test"]


def test_a_method_registered_here_gets_flag_slug_label_and_profile_name(toy_method, tmp_path: Path) -> None:
    from harness.evidence.profile import profile_filename
    from reports.data import variant_label

    [entry] = dry_run("--method", "toy-test", "--wiggle", "5", "--out", str(tmp_path))
    assert entry["config"]["options"] == {"wiggle": 5}
    assert "_toy-test_wiggle5_smoke_" in entry["run_id"]
    assert variant_label("toy-test", {"wiggle": 5}) == option_label("toy-test", {"wiggle": 5}) == "toy-test (W=5)"
    assert variant_label("toy-test", {"wiggle": 3}) == "toy-test"
    assert profile_filename({"method": "toy-test", "options": {"wiggle": 5}}) == "profile_toy-test_wiggle5.json"
    with pytest.raises(SpecError, match=r"options.wiggle=0: wiggle must be > 0"):
        resolve("toy-test", "s0-digits", options={"wiggle": 0})


# -- evaluation lr schedules ----------------------------------------------------------------------------------
def test_linear_schedule_with_warm_up_follows_pc_darts_train_imagenet() -> None:
    epochs, lr = 250, 0.5
    assert lr * lr_factor(0, epochs, "linear", 5) == pytest.approx(lr * 245 / 245 * 1 / 5)
    assert lr * lr_factor(4, epochs, "linear", 5) == pytest.approx(lr * 241 / 245)
    assert lr * lr_factor(100, epochs, "linear", 5) == pytest.approx(lr * 145 / 245)
    assert lr * lr_factor(246, epochs, "linear", 5) == pytest.approx(lr * 4 / (245 * 5))  # the last 5: a smaller slope
    assert lr_factor(10, 20, "cosine", 0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_scheduler_steps_the_factor_and_default_stays_cosine_annealing() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert isinstance(lr_scheduler(opt, 10), torch.optim.lr_scheduler.CosineAnnealingLR)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = lr_scheduler(opt, 10, "linear", 2)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([lr_factor(e, 10, "linear", 2) for e in range(10)])
    assert seen[0] < seen[1] and seen[2] > seen[5]


def test_each_released_rule_names_its_source_and_the_readme_documents_it() -> None:
    readme = (Path(__file__).resolve().parents[1] / "docs" / "run-spec.md").read_text()  # the presets table
    for rule in benchmarks.PRESETS["released"]:
        repo, path = rule.source.split()[:2]
        assert "/" in repo and path in readme, rule.source
