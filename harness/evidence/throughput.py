"""Throughput: images per second of evaluation-network training, and seconds per search iteration.

:func:`eval_throughput` times the engine's training step (``harness.engine.evaluate.train_step``: SGD,
cross entropy with the auxiliary head, gradient clipping, at the DARTS ``cnn/train.py`` hyper-parameters
of ``harness.spec.runspec.EvalSpec``'s defaults) on a DARTS evaluation network. Its batches come from
the data layer's one loader factory (``harness.data.datasets.split_loader``), from a synthetic
``uint8`` training set (no dataset needed) with the run spec's default CIFAR augmentation, by one of
the two data paths: the device path (``harness.data.device_data``) or the torchvision path (PIL images
through the same augmentation's transforms, a ``DataLoader`` with ``workers`` processes). The timed
span includes making the batches, so the data path's cost shows. :func:`search_throughput` reuses
``harness.evidence.profile.profile_step`` (one search iteration: the architecture and the weight
update) for seconds per iteration and the CUDA peak memory.

Shapes: ``paper`` is the DARTS/ROME CIFAR evaluation protocol (DARTS_V2 cells, 36 channels, 20 cells,
batch 96, 32 x 32, auxiliary head, cutout 16); Table 7's search shape is batch 64, 16 channels,
8 cells, 32 x 32 (ROME Sec. 4.5).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from harness.data import datasets as data
from harness.data.device_data import RawSplit
from harness.engine.evaluate import memory_format, numerics, setup_training, train_step
from harness.evidence.profile import ProfileConfig, profile_step
from harness.spec.runspec import DataSpec, EvalSpec
from harness.utils.device import device_name, synchronize
from spaces.genotype import resolve
from spaces.registry import build_eval_network


@dataclass(frozen=True)
class EvalShape:
    """An evaluation network and its training batch."""

    name: str
    channels: int
    layers: int
    batch: int
    image_size: int
    genotype: str = "DARTS_V2"
    auxiliary: bool = True
    cutout: int = 16
    num_classes: int = 10


EVAL_SHAPES = {
    "paper": EvalShape("paper", channels=36, layers=20, batch=96, image_size=32),
    "smoke": EvalShape("smoke", channels=8, layers=5, batch=64, image_size=16, auxiliary=False, cutout=0),
    "ci": EvalShape("ci", channels=4, layers=2, batch=8, image_size=16, auxiliary=False, cutout=4),
}


def synthetic_split(n: int, image_size: int, cutout: int, seed: int = 0, num_classes: int = 10) -> RawSplit:
    """``n`` random ``uint8`` images with labels and CIFAR-10's evaluation-training augmentation.

    The augmentation is ``harness.data.datasets.split_augments`` of the run spec's default ``data``
    section (crop padding 4, flip) with ``cutout``, normalised with the CIFAR-10 statistics.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, image_size, image_size), generator=g, dtype=torch.uint8)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return RawSplit(x, y, data.split_augments("c10", replace(DataSpec(), cutout=cutout))["eval_train"])


def _loader(path: str, split: RawSplit, batch: int, device: torch.device, *, workers: int = 0,
            channels_last: bool = False, seed: int = 0) -> Any:
    """Shuffled batches of ``split`` by data path ``path`` from the one loader factory, in one process."""
    return data.split_loader(data.tensor_bundle(split), "eval_train", batch, shuffle=True, seed=seed, path=path,
                             device=device, num_workers=workers, memory_format=memory_format(channels_last),
                             distribute=False)


def data_throughput(path: str, split: RawSplit, batch: int, device: str | torch.device = "cpu",
                    batches: int = 4, workers: int = 0) -> float:
    """Images per second of making batches alone (no network)."""
    dev = torch.device(device)
    loader = _loader(path, split, batch, dev, workers=workers)
    it = iter(loader)
    next(it)  # warm-up (workers start, the device copy is made)
    synchronize(dev)
    t0 = time.perf_counter()
    seen = 0
    for _ in range(batches):
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        x = x.to(dev, non_blocking=True)
        seen += int(x.shape[0])
    synchronize(dev)
    return seen / (time.perf_counter() - t0)


def eval_throughput(shape: EvalShape, device: str | torch.device = "cpu", *, precision: str = "fp32",
                    channels_last: bool = False, data_path: str = "device", steps: int = 10, warmup: int = 2,
                    workers: int = 0, seed: int = 0) -> dict[str, Any]:
    """Images per second of evaluation-network training (median-free: total images over total time).

    Each step is ``harness.engine.evaluate.train_step`` of a training set up by ``setup_training`` with
    ``EvalSpec``'s defaults (lr 0.025, momentum 0.9, weight decay 3e-4, clipping at 5, auxiliary weight
    0.4) and the drop-path probability half-way through its schedule (0.1 of 0.2).
    """
    dev = torch.device(device)
    e = EvalSpec()
    torch.manual_seed(seed)
    net = build_eval_network(resolve(shape.genotype), network="cifar", c=shape.channels, layers=shape.layers,
                             num_classes=shape.num_classes, in_channels=3, auxiliary=shape.auxiliary,
                             drop_path=e.drop_path)
    training = setup_training(net, epochs=e.epochs, lr=e.lr, momentum=e.momentum, weight_decay=e.weight_decay,
                              grad_clip=e.grad_clip, aux_weight=e.aux_weight, device=dev,
                              label_smoothing=e.label_smoothing, lr_schedule=e.lr_schedule,
                              warmup_epochs=e.warmup_epochs, precision=precision, channels_last=channels_last)
    net.drop_path_prob = e.drop_path / 2
    training.model.train()
    split = synthetic_split(shape.batch * (steps + warmup), shape.image_size, shape.cutout, seed, shape.num_classes)
    loader = _loader(data_path, split, shape.batch, dev, workers=workers, channels_last=channels_last, seed=seed)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with numerics(precision):
        it = iter(loader)
        for i in range(warmup + steps):
            if i == warmup:
                synchronize(dev)
                t0 = time.perf_counter()
            train_step(training, *next(it))
        synchronize(dev)
        seconds = time.perf_counter() - t0
    return {"shape": asdict(shape), "device": device_name(dev), "precision": precision,
            "channels_last": channels_last, "data_path": data_path, "workers": workers, "steps": steps,
            "images_per_s": shape.batch * steps / seconds, "seconds_per_step": seconds / steps,
            "cuda_peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def search_throughput(method: str, device: str | torch.device = "cpu", *, options: dict[str, Any] | None = None,
                      batch: int = 64, channels: int = 16, layers: int = 8, image_size: int = 32,
                      steps: int = 3) -> dict[str, Any]:
    """Seconds per search iteration and CUDA peak memory of ``method`` (``harness.evidence.profile``'s step)."""
    cfg = ProfileConfig(method=method, options=dict(options or {}), batch_size=batch, channels=channels,
                        layers=layers, image_size=image_size, steps=steps, subnets=0)  # no distribution: unused here
    r = profile_step(cfg, device)
    return {"method": method, "options": r["options"], "device": r["device"], "shape": r["shape"],
            "seconds_per_iteration": r["seconds_per_step"], "cuda_peak_bytes": r["cuda_peak_bytes"],
            "saved_bytes": r["saved_bytes"]}


def profile_fields(profile: dict[str, Any], shape: str, device: str | None, steps: int = 3) -> dict[str, Any]:
    """The ``throughput`` fields ``harness profile --throughput SHAPE`` adds to a profile: the search
    iteration's rate (from the profile) and evaluation-network training at ``EVAL_SHAPES[shape]``."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = profile["shape"]["batch_size"]
    return {"search_seconds_per_iteration": profile["seconds_per_step"],
            "search_images_per_s": batch / profile["seconds_per_step"],
            "eval": eval_throughput(EVAL_SHAPES[shape], dev, steps=steps, warmup=1)}
