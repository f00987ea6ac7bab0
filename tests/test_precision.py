"""Precision, memory layout, data path and determinism as protocol fields: validated, recorded in
result.json, and on the CPU either no-ops (tf32, channels_last) or a working bf16 autocast step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.engine.evaluate import numerics, train_and_test
from harness.runs.run import Run
from harness.spec.runspec import fixed_config, make_config, parse_sets
from spaces.genotype import resolve
from spaces.registry import build_eval_network

TINY = dict(eval_epochs=1, eval_subset=64, eval_batch=16, eval_layers=2, eval_channels=4)


def tiny_train(precision: str = "fp32", channels_last: bool = False) -> dict[str, float]:
    torch.manual_seed(0)
    net = build_eval_network(resolve("DARTS_V2"), network="cifar", c=4, layers=2, num_classes=10, in_channels=3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    with numerics(precision):
        return train_and_test(net, batches, batches, epochs=2, lr=0.05, momentum=0.9, weight_decay=3e-4,
                              grad_clip=5.0, aux_weight=0.0, drop_path_prob=0.0, device=torch.device("cpu"),
                              precision=precision, channels_last=channels_last)


def test_bf16_autocast_trains_on_the_cpu_close_to_fp32() -> None:
    fp32, bf16 = tiny_train("fp32"), tiny_train("bf16")
    assert math.isfinite(bf16["train_loss"])
    assert bf16["train_loss"] != fp32["train_loss"]  # autocast really ran in bfloat16
    assert abs(bf16["train_loss"] - fp32["train_loss"]) < 0.1 * fp32["train_loss"]


def test_tf32_and_channels_last_are_no_ops_on_the_cpu() -> None:
    ref = tiny_train("fp32")
    for other in (tiny_train("tf32"), tiny_train("fp32", channels_last=True)):
        assert other["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-5)
        assert other["test_acc"] == ref["test_acc"]


def test_numerics_sets_and_restores_the_backend_switches() -> None:
    b = torch.backends
    before = (b.cudnn.benchmark, b.cudnn.allow_tf32, torch.are_deterministic_algorithms_enabled())
    with numerics("tf32"):
        assert b.cudnn.allow_tf32 and b.cuda.matmul.allow_tf32 and b.cudnn.benchmark
    with numerics("fp32", deterministic=True):
        assert not b.cudnn.allow_tf32 and not b.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()
    assert (b.cudnn.benchmark, b.cudnn.allow_tf32, torch.are_deterministic_algorithms_enabled()) == before
    with pytest.raises(ValueError, match="valid: fp32, tf32, bf16"), numerics("fp16"):
        pass


def test_fields_are_recorded_in_result_json(tmp_path: Path) -> None:
    overrides = parse_sets(["precision=bf16", "eval.channels_last=true", "data_path=torchvision",
                            "deterministic=1"])
    cfg = fixed_config(resolve("DARTS_V2"), "DARTS_V2", "s0-digits", "smoke", 0, **TINY, **overrides)
    result = Run(cfg, tmp_path, device="cpu").execute()
    assert result["status"] == "complete", result.get("reason")
    config = json.loads((tmp_path / cfg.run_id / "result.json").read_text())["config"]
    assert {k: config["eval"][k] for k in ("precision", "channels_last", "deterministic")} == \
        {"precision": "bf16", "channels_last": True, "deterministic": True}
    assert config["data"]["path"] == "torchvision"
    default = fixed_config(resolve("DARTS_V2"), "DARTS_V2", "s0-digits", "smoke", 0, **TINY)
    assert (default.eval.precision, default.eval.channels_last, default.data.path, default.eval.deterministic) == \
        ("fp32", False, "device", False)
    assert make_config("gdas", "s0-imagenet", "paper").data.path == "torchvision"


@pytest.mark.parametrize("setting, message", [
    ("precision=fp16", "valid: fp32, tf32, bf16"),
    ("data_path=dali", "valid: device, torchvision"),
    ("channels_last=maybe", "eval.channels_last='maybe': takes a bool"),
])
def test_bad_values_are_one_line_errors(setting: str, message: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["eval", "--genotype", "DARTS_V2", "--bench", "s0-digits", "--budget", "smoke", "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_imagenet_refuses_the_device_path() -> None:
    with pytest.raises(ValueError, match="ImageNet takes data.path=torchvision"):
        make_config("gdas", "s0-imagenet", "paper", data_path="device")
