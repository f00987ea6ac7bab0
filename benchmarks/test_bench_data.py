"""Images per second of the two data paths on the CPU: the device path (harness.data.device_data: batched
crop, flip, normalisation and cutout of a uint8 tensor set) against the torchvision path (PIL
transforms per image in a DataLoader, no worker processes), DARTS' CIFAR training augmentation at
batch 96 (32 x 32, pad 4, flip, cutout 16). Target: the device path at least 10x faster."""

from __future__ import annotations

from support import TARGETS, Target

from harness.data.datasets import split_loader, tensor_bundle
from harness.evidence.throughput import synthetic_split

BATCH = 96
RATES: dict[str, float] = {}


def _bench(benchmark, path: str) -> float:
    import torch

    split = synthetic_split(BATCH * 40, 32, cutout=16)
    loader = split_loader(tensor_bundle(split), "eval_train", BATCH, shuffle=True, seed=0, path=path, device="cpu")
    it = iter(loader)

    def batch() -> int:
        nonlocal it
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        return int(x.shape[0])

    batch()  # warm-up
    n = benchmark.pedantic(batch, rounds=20, iterations=1, warmup_rounds=1)
    rate = n / benchmark.stats.stats.mean
    benchmark.extra_info.update(path=path, batch=BATCH, images_per_second=rate, threads=torch.get_num_threads())
    RATES[path] = rate
    return rate


def test_torchvision_path_images_per_second(benchmark) -> None:
    assert _bench(benchmark, "torchvision") > 0


def test_device_path_images_per_second(benchmark) -> None:
    rate = _bench(benchmark, "device")
    if "torchvision" in RATES:
        ratio = rate / RATES["torchvision"]
        benchmark.extra_info["ratio_to_torchvision"] = ratio
        # Target is "measured <= limit": the device path's time per image over the torchvision path's
        TARGETS.append(Target("device / torchvision data path, time per image", "c10-b96", 1 / ratio, 0.10,
                              f"device path {ratio:.1f}x faster ({rate:.0f} vs {RATES['torchvision']:.0f} img/s)"))
    assert rate > 0
