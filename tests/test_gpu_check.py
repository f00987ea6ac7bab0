"""benchmarks/gpu_check.py in its CI form on the CPU (``--device cpu --ci``): every part runs and the
JSON report holds the table's figures; the shell wrapper refuses CUDA where there is none."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_driver():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_on_the_cpu_in_ci_form(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "check.json"
    assert load_driver().main(["--device", "cpu", "--ci", "--out", str(out), "--workers", "0"]) == 0
    report = json.loads(out.read_text())
    ev = report["eval"]
    assert [(r["precision"], r["channels_last"], r["data_path"]) for r in ev] == [
        ("fp32", False, "torchvision"), ("fp32", False, "device"), ("bf16", True, "torchvision"),
        ("bf16", True, "device")]
    assert all(r["images_per_s"] > 0 and r["cuda_peak_bytes"] is None for r in ev)
    assert ev[0]["ratio_to_fp32_torchvision"] == 1.0
    assert [r["method"] for r in report["search"]["rows"]] == ["darts", "pcdarts", "gdas", "rome-v1", "rome-v2"]
    assert report["search"]["rows"][-1]["options"]["k"] == 7
    assert report["search"]["peak_ratios"] == {}  # no CUDA peak on the CPU
    agreement = report["agreement"]
    assert agreement["agree"] and agreement["loss_rel_diff"] == 0.0 and agreement["same_genotype"]
    printed = capsys.readouterr().out
    assert "search rome-v2" in printed and "run cpu vs cpu" in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_wrapper_refuses_cuda_without_a_gpu(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "CUDA is not available" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_profile_reports_throughput_as_json(capsys: pytest.CaptureFixture) -> None:
    from harness.cli.main import main

    code = main(["profile", "--method", "gdas", "--batch-size", "4", "--channels", "4", "--layers", "2",
                 "--image-size", "16", "--steps", "1", "--throughput", "ci", "--device", "cpu", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    tp = result["throughput"]
    assert tp["search_seconds_per_iteration"] == result["seconds_per_step"]
    assert tp["search_images_per_s"] == pytest.approx(4 / result["seconds_per_step"])
    assert tp["eval"]["shape"]["name"] == "ci" and tp["eval"]["images_per_s"] > 0
    assert tp["eval"]["cuda_peak_bytes"] is None and result["cuda_peak_bytes"] is None
