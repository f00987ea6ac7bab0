"""GPU check: one command, no dataset, one table and one JSON file (``benchmarks/gpu_check.sh``).

1. Evaluation-network training images/s (DARTS_V2 at the paper shape: 36 channels, 20 cells,
   batch 96, 32 x 32, auxiliary head, cutout 16): fp32 vs bf16 + channels_last, the device data path
   vs the torchvision path (PIL transforms in ``--workers`` loader processes). Ratios are to the
   fp32 torchvision figure (the harness before the device path).
2. Seconds per search iteration and CUDA peak memory at ROME Table 7's shape (batch 64, 16 channels,
   8 cells, 32 x 32) for DARTS, PC-DARTS, GDAS, ROME-v1 and ROME-v2 (K = 7), with ROME/GDAS and
   ROME/DARTS peak ratios (Table 7: 0.74 and 0.25).
3. One small run (``rome-v2`` on the embedded digits, fp32, deterministic kernels) on the CPU and on
   ``--device``: the first search epoch's loss, the genotype and the test error compared.

``--ci`` shrinks every shape so that the whole check runs in about a minute on 2 CPU cores
(``--device cpu --ci`` is what the test suite runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.evidence.throughput import EVAL_SHAPES, eval_throughput, search_throughput  # noqa: E402
from harness.utils.device import device_name  # noqa: E402

METHODS = ["darts", "pcdarts", "gdas", "rome-v1", "rome-v2"]
TABLE7 = dict(batch=64, channels=16, layers=8, image_size=32)
CI_SEARCH = dict(batch=4, channels=4, layers=2, image_size=16)
#: the run of part 3 (check-budget scale; --ci: smaller still)
RUN = dict(search_epochs=2, search_subset=128, search_batch=32, search_layers=3, search_channels=4, k=3,
           eval_epochs=2, eval_subset=256, eval_batch=32, eval_layers=3, eval_channels=8, deterministic=True)
CI_RUN = dict(search_epochs=1, search_subset=16, search_batch=8, search_layers=2, search_channels=4, k=2,
              eval_epochs=1, eval_subset=16, eval_batch=8, eval_layers=2, eval_channels=4, deterministic=True)


def part_eval(device: str, ci: bool, workers: int, steps: int) -> list[dict[str, Any]]:
    shape = EVAL_SHAPES["ci" if ci else "paper"]
    rows = []
    for precision, cl in (("fp32", False), ("bf16", True)):
        for path in ("torchvision", "device"):
            r = eval_throughput(shape, device, precision=precision, channels_last=cl, data_path=path, steps=steps,
                                warmup=1 if ci else 3, workers=workers if path == "torchvision" else 0)
            rows.append(r)
    base = rows[0]["images_per_s"]
    for r in rows:
        r["ratio_to_fp32_torchvision"] = r["images_per_s"] / base
    return rows


def part_search(device: str, ci: bool) -> dict[str, Any]:
    shape = CI_SEARCH if ci else TABLE7
    rows = [search_throughput(m, device, options={"k": 7} if m.startswith("rome") else None, steps=1 if ci else 3,
                              **shape) for m in METHODS]
    peak = {r["method"]: r["cuda_peak_bytes"] for r in rows}
    ratios = {}
    if all(v is not None for v in peak.values()):
        for rome in ("rome-v1", "rome-v2"):
            ratios[f"{rome}/gdas"] = peak[rome] / peak["gdas"]
            ratios[f"{rome}/darts"] = peak[rome] / peak["darts"]
    return {"rows": rows, "peak_ratios": ratios, "table7_targets": {"rome/gdas": 0.74, "rome/darts": 0.25}}


def _run(device: str, ci: bool, out: Path) -> dict[str, Any]:
    from harness.runs.run import Run
    from harness.spec.runspec import make_config

    cfg = make_config("rome-v2", "s0-digits", "check", 0, None, **(CI_RUN if ci else RUN))
    t0 = time.time()
    result = Run(cfg, out, device=device).execute()
    result["wall_s"] = time.time() - t0
    return result


def part_agreement(device: str, ci: bool, tol_loss: float = 1e-3, tol_error: float = 5.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cpu = _run("cpu", ci, Path(tmp) / "cpu")
        dev = _run(device, ci, Path(tmp) / "dev")
    if cpu["status"] != "complete" or dev["status"] != "complete":
        return {"agree": False, "reason": f"cpu: {cpu.get('reason')}, {device}: {dev.get('reason')}"}
    loss_cpu = cpu["search"]["history"][0]["train_loss"]
    loss_dev = dev["search"]["history"][0]["train_loss"]
    rel = abs(loss_cpu - loss_dev) / abs(loss_cpu)
    err = abs(cpu["eval"]["test_error"] - dev["eval"]["test_error"])
    return {"devices": ["cpu", device], "first_epoch_search_loss": [loss_cpu, loss_dev], "loss_rel_diff": rel,
            "test_error": [cpu["eval"]["test_error"], dev["eval"]["test_error"]], "test_error_abs_diff": err,
            "same_genotype": cpu["genotype"] == dev["genotype"], "wall_s": [cpu["wall_s"], dev["wall_s"]],
            "tolerance": {"loss_rel": tol_loss, "test_error_points": tol_error},
            "agree": rel <= tol_loss and err <= tol_error}


def table(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    mib = 2**20
    rows = []
    for r in report["eval"]:
        rows.append(["eval train " + r["shape"]["name"], f"{r['precision']}{' +CL' if r['channels_last'] else ''}",
                     r["data_path"], f"{r['images_per_s']:.1f} img/s", f"x{r['ratio_to_fp32_torchvision']:.2f}",
                     "" if r["cuda_peak_bytes"] is None else f"{r['cuda_peak_bytes'] / mib:.0f} MiB"])
    for r in report["search"]["rows"]:
        shape = r["shape"]
        rows.append([f"search {r['method']}", f"b{shape['batch_size']} c{shape['channels']} l{shape['layers']}", "",
                     f"{r['seconds_per_iteration']:.3f} s/it", "",
                     "" if r["cuda_peak_bytes"] is None else f"{r['cuda_peak_bytes'] / mib:.0f} MiB"])
    for k, v in report["search"]["peak_ratios"].items():
        rows.append([f"peak {k}", "", "", f"{v:.2f}", "", ""])
    a = report["agreement"]
    if "loss_rel_diff" in a:
        rows.append([f"run cpu vs {a['devices'][1]}", "fp32", "device", f"loss rel {a['loss_rel_diff']:.1e}",
                     f"err diff {a['test_error_abs_diff']:.2f}", "agree" if a["agree"] else "DISAGREE"])
    else:
        rows.append(["run cpu vs device", "", "", a.get("reason", ""), "", "DISAGREE"])
    return tabulate(rows, headers=["what", "setting", "data path", "measured", "ratio", "memory / verdict"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:1 or cpu (default cuda)")
    ap.add_argument("--ci", action="store_true", help="tiny shapes (the test suite's CPU run)")
    ap.add_argument("--out", default="gpu_check.json", help="JSON report (default gpu_check.json)")
    ap.add_argument("--workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 1)),
                    help="loader processes of the torchvision path")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per evaluation setting")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device} but CUDA is not available; use --device cpu", file=sys.stderr)
        return 2
    t0 = time.time()
    report: dict[str, Any] = {"device": args.device, "ci": args.ci, "torch": torch.__version__,
                              "gpu": device_name(args.device) if args.device.startswith("cuda") else None}
    report["eval"] = part_eval(args.device, args.ci, args.workers, 2 if args.ci else args.steps)
    report["search"] = part_search(args.device, args.ci)
    report["agreement"] = part_agreement(args.device, args.ci)
    report["wall_s"] = time.time() - t0
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"{report['gpu'] or args.device}, torch {torch.__version__}, {report['wall_s']:.0f} s -> {args.out}")
    return 0 if report["agreement"].get("agree") else 1


if __name__ == "__main__":
    sys.exit(main())
