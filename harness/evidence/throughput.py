"""Throughput: images per second of evaluation-network training, and seconds per search iteration.

:func:`eval_throughput` times the training step of ``harness.engine.evaluate.train_and_test`` (SGD, cross
entropy with the auxiliary head, gradient clipping) on a DARTS evaluation network fed by one of the
two data paths, from a synthetic ``uint8`` training set (no dataset needed): the device path
(``harness.data.device_data``) or the torchvision path (PIL images through the DARTS CIFAR transforms,
a ``DataLoader`` with ``workers`` processes). The timed span includes making the batches, so the
data path's cost shows. :func:`search_throughput` reuses ``harness.evidence.profile.profile_step`` (one
search iteration: the architecture and the weight update) for seconds per iteration and the CUDA
peak memory.

Shapes: ``paper`` is the DARTS/ROME CIFAR evaluation protocol (DARTS_V2 cells, 36 channels, 20 cells,
batch 96, 32 x 32, auxiliary head, cutout 16); Table 7's search shape is batch 64, 16 channels,
8 cells, 32 x 32 (ROME Sec. 4.5).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from harness.data import datasets as data
from harness.data.device_data import Augment, DeviceLoader, RawSplit
from harness.engine.evaluate import autocast, memory_format, numerics
from harness.evidence.profile import ProfileConfig, profile_step
from spaces.genotype import resolve
from spaces.registry import build_eval_network

#: CIFAR-10 statistics (DARTS); the synthetic images are normalised with them
_MEAN, _STD = data.DATASETS["c10"].mean, data.DATASETS["c10"].std


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
    """``n`` random ``uint8`` images with labels and the CIFAR training augmentation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, image_size, image_size), generator=g, dtype=torch.uint8)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return RawSplit(x, y, Augment(crop_pad=4, flip=True, cutout=cutout, mean=_MEAN, std=_STD))


class PILSplit(Dataset):
    """The same images as PIL images through torchvision transforms (the torchvision data path)."""

    def __init__(self, split: RawSplit, transform: Any):
        self.images = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def torchvision_transform(image_size: int, cutout: int) -> Any:
    """DARTS' CIFAR training transform at ``image_size``: crop (pad 4), flip, to tensor, normalise, cutout."""
    from torchvision import transforms as T

    steps: list[Any] = [T.RandomCrop(image_size, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize(_MEAN, _STD)]
    if cutout > 0:
        steps.append(data.Cutout(cutout))
    return T.Compose(steps)


def make_loader(path: str, split: RawSplit, batch: int, device: torch.device, *, workers: int = 0,
                channels_last: bool = False, seed: int = 0) -> Any:
    """A loader of ``split`` by data path ``device`` or ``torchvision`` (``workers`` processes)."""
    if path == "device":
        return DeviceLoader(split, batch, shuffle=True, seed=seed, device=device,
                            memory_format=memory_format(channels_last))
    if path != "torchvision":
        raise ValueError(f"unknown data path '{path}'; valid: {', '.join(data.DATA_PATHS)}")
    ds = PILSplit(split, torchvision_transform(split.images.shape[-1], split.augment.cutout))
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch, shuffle=True, generator=gen, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=workers > 0 and device.type == "cuda")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_throughput(path: str, split: RawSplit, batch: int, device: str | torch.device = "cpu",
                    batches: int = 4, workers: int = 0) -> float:
    """Images per second of making batches alone (no network)."""
    dev = torch.device(device)
    loader = make_loader(path, split, batch, dev, workers=workers)
    it = iter(loader)
    next(it)  # warm-up (workers start, the device copy is made)
    _sync(dev)
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
    _sync(dev)
    return seen / (time.perf_counter() - t0)


def eval_throughput(shape: EvalShape, device: str | torch.device = "cpu", *, precision: str = "fp32",
                    channels_last: bool = False, data_path: str = "device", steps: int = 10, warmup: int = 2,
                    workers: int = 0, seed: int = 0) -> dict[str, Any]:
    """Images per second of evaluation-network training (median-free: total images over total time)."""

    dev = torch.device(device)
    torch.manual_seed(seed)
    net = build_eval_network(resolve(shape.genotype), network="cifar", c=shape.channels, layers=shape.layers,
                             num_classes=shape.num_classes, in_channels=3, auxiliary=shape.auxiliary,
                             drop_path=0.2)
    fmt = memory_format(channels_last)
    net.to(dev, memory_format=fmt).train()
    net.drop_path_prob = 0.1
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    criterion = nn.CrossEntropyLoss()
    split = synthetic_split(shape.batch * (steps + warmup), shape.image_size, shape.cutout, seed, shape.num_classes)
    loader = make_loader(data_path, split, shape.batch, dev, workers=workers, channels_last=channels_last, seed=seed)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with numerics(precision):
        it = iter(loader)
        for i in range(warmup + steps):
            if i == warmup:
                _sync(dev)
                t0 = time.perf_counter()
            x, y = next(it)
            x = x.to(dev, non_blocking=True).contiguous(memory_format=fmt)
            y = y.to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with autocast(dev, precision):
                out = net(x)
                logits, aux = out if isinstance(out, tuple) else (out, None)
                loss = criterion(logits, y) + (0.4 * criterion(aux, y) if aux is not None else 0.0)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
        _sync(dev)
        seconds = time.perf_counter() - t0
    return {"shape": asdict(shape), "device": _device_name(dev), "precision": precision,
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


def _device_name(dev: torch.device) -> str:
    return str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
