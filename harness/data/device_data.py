"""A device-resident data path for the small datasets (CIFAR-10/100, SVHN, digits).

The whole training set lives on the device once, as ``uint8`` (``N x C x H x W``). Each batch is
gathered by index and augmented there in one batched operation, with the augmentation of the
torchvision pipeline it replaces (DARTS ``utils._data_transforms_cifar10``): random crop with
zero padding ``crop_pad`` (``transforms.RandomCrop(32, padding=4)`` for 4: both offsets uniform in
``0 .. 2 * pad``), horizontal flip with probability 1/2, ``ToTensor`` + ``Normalize``, then cutout
(DARTS ``utils.Cutout``: one square of side ``length`` zeroed after normalisation, centre uniform over
the image, clipped at the borders). Search splits may be resized (bilinear, antialiased, like
``transforms.Resize`` on a PIL image) after crop and flip. Which of these steps a split takes is
:class:`Augment`, made from the run spec by ``harness.data.datasets.split_augments``; the torchvision path
builds its transforms from the same :class:`Augment`.

All random numbers (the sample order and every augmentation parameter) come from one CPU
``torch.Generator`` owned by the loader, seeded by the caller: the batches are a function of the
seed alone, identical on CPU and GPU, and a loader whose ``generator`` state is restored continues
exactly where it was (``harness.runs.run`` saves that state with each evaluation checkpoint). The order
is ``torch.randperm(n, generator=g)`` after one ``int64`` draw, and the epoch ends with a second
permutation drawn: the calls of a ``DataLoader`` iterator (its workers' base seed) and its
``RandomSampler`` (whose remainder permutation is drawn when it is exhausted), so a
split without augmentation (the digits) yields exactly the batches of ``DataLoader(shuffle=True,
generator=g)``.

Under ``torch.distributed`` each process takes its contiguous share of every global batch, with
the augmentation drawn for the whole global batch: the union of the shares is the single-process
batch (the device path's ``DistributedSampler``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

__all__ = ["Augment", "AugmentParams", "DeviceLoader", "RawSplit", "shard"]


@dataclass(frozen=True)
class Augment:
    """What is done to each image: crop padding, flip, resize, normalisation, cutout.

    ``mean``/``std`` ``None`` means the images are stored already normalised (float), as the digits are;
    ``fill`` is the stored value of the crop's padding (black: 0 for ``uint8``, ``-mean / std`` when
    normalised).
    """

    crop_pad: int = 0
    flip: bool = False
    cutout: int = 0
    resize: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    fill: float = 0.0

    @property
    def random(self) -> bool:
        """Whether any step is random (otherwise nothing is drawn, as a plain ``DataLoader`` draws nothing)."""
        return self.crop_pad > 0 or self.flip or self.cutout > 0


@dataclass(frozen=True)
class AugmentParams:
    """Random parameters of one batch: crop offsets in ``0 .. 2 * pad``, flips, cutout centres."""

    offset_y: torch.Tensor
    offset_x: torch.Tensor
    flip: torch.Tensor
    centre_y: torch.Tensor
    centre_x: torch.Tensor

    def __getitem__(self, s: slice) -> AugmentParams:
        return AugmentParams(self.offset_y[s], self.offset_x[s], self.flip[s], self.centre_y[s], self.centre_x[s])


def draw(aug: Augment, n: int, size: int, generator: torch.Generator) -> AugmentParams:
    """Draw the parameters of ``n`` images (always the same number of draws, whatever is enabled)."""
    span = 2 * aug.crop_pad + 1
    oy = torch.randint(span, (n,), generator=generator)
    ox = torch.randint(span, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    cy = torch.randint(size, (n,), generator=generator)
    cx = torch.randint(size, (n,), generator=generator)
    return AugmentParams(oy, ox, flip, cy, cx)


def apply(aug: Augment, images: torch.Tensor, p: AugmentParams | None) -> torch.Tensor:
    """Augment a ``B x C x H x W`` batch (``uint8``, or float when ``aug.mean`` is None) -> float batch.

    ``p`` None: no random step (normalisation and resize only).
    """
    b, c, h, w = images.shape
    dev = images.device
    x = images
    if p is not None and (aug.crop_pad > 0 or aug.flip):
        pad = aug.crop_pad
        if pad > 0:
            x = F.pad(x, (pad, pad, pad, pad), value=aug.fill)
        oy, ox = p.offset_y.to(dev), p.offset_x.to(dev)  # all 0 when pad == 0
        ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
        rows = oy[:, None] + ar_h  # B x H
        cols = ox[:, None] + ar_w  # B x W
        if aug.flip:  # a flipped crop reads its columns backwards
            cols = torch.where(p.flip.to(dev)[:, None], ox[:, None] + (w - 1) - ar_w, cols)
        # one gather over the flattened padded image: pixel (i, j) of the crop is (rows[i], cols[j])
        linear = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        x = torch.gather(x.flatten(2), 2, linear).view(b, c, h, w)
    if aug.mean is not None:
        x = x.float()
        if aug.resize is not None and aug.resize != h:
            x = F.interpolate(x.div_(255.0), size=(aug.resize, aug.resize), mode="bilinear", align_corners=False,
                              antialias=True).mul_(255.0)
        std = torch.tensor(aug.std, device=dev).view(1, -1, 1, 1)
        mean = torch.tensor(aug.mean, device=dev).view(1, -1, 1, 1)
        x = x.mul_(1.0 / (255.0 * std)).sub_(mean / std)  # (x / 255 - mean) / std in two in-place steps
    else:
        x = x.float()
        if aug.resize is not None and aug.resize != h:
            x = F.interpolate(x, size=(aug.resize, aug.resize), mode="bilinear", align_corners=False, antialias=True)
    if p is not None and aug.cutout > 0:
        size_h, size_w = x.shape[-2], x.shape[-1]
        y0 = p.centre_y.to(dev) - aug.cutout // 2
        x0 = p.centre_x.to(dev) - aug.cutout // 2
        ys, xs = torch.arange(size_h, device=dev), torch.arange(size_w, device=dev)
        in_y = (ys >= y0[:, None]) & (ys < y0[:, None] + aug.cutout)
        in_x = (xs >= x0[:, None]) & (xs < x0[:, None] + aug.cutout)
        x = x.masked_fill_((in_y[:, :, None] & in_x[:, None, :])[:, None], 0.0)
    return x


@dataclass
class RawSplit:
    """One split as tensors: images (``uint8`` N x C x H x W, or normalised float), labels, augmentation.

    :meth:`to` keeps one copy per device, so loaders made every epoch do not copy the set again.
    """

    images: torch.Tensor
    labels: torch.Tensor
    augment: Augment = Augment()
    _copies: dict[str, RawSplit] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> RawSplit:
        """The first ``n`` images (all when ``n`` is None or larger), as views."""
        if n is None or n >= len(self):
            return self
        return RawSplit(self.images[:n], self.labels[:n], self.augment)

    def with_augment(self, **changes: object) -> RawSplit:
        return RawSplit(self.images, self.labels, replace(self.augment, **changes), self._copies)

    def to(self, device: torch.device | str) -> RawSplit:
        device = torch.device(device)
        if self.images.device == device:
            return self
        key = str(device)
        if key not in self._copies:
            self._copies[key] = RawSplit(self.images.to(device), self.labels.to(device), self.augment)
        return replace(self._copies[key], augment=self.augment)


def shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[lo, hi)`` of process ``rank``'s contiguous share of ``n`` items (sizes differ by at most 1)."""
    return n * rank // world, n * (rank + 1) // world


class DeviceLoader:
    """Batches of a :class:`RawSplit` made on its device; an iterable like a ``DataLoader``.

    ``generator`` (a seeded CPU generator) decides the order and the augmentation; ``rank``/``world``
    give each process its share of every global batch of ``batch_size``.
    """

    def __init__(self, split: RawSplit, batch_size: int, *, shuffle: bool, seed: int,
                 device: torch.device | str = "cpu", drop_last: bool = False, rank: int = 0, world: int = 1,
                 memory_format: torch.memory_format = torch.contiguous_format):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.split = split.to(device)
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world = rank, world
        self.memory_format = memory_format
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self.dataset = split  # DataLoader-like attribute (len() gives the number of images)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # a DataLoader draws its workers' base seed from the generator when the iterator is created
        # (not lazily: ``tqdm.auto`` creates one iterator it never uses, which costs a DataLoader a draw)
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return self._batches()

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        size = self.split.images.shape[-1]
        dev = self.split.images.device
        aug = self.split.augment
        random_aug = aug.random  # nothing drawn otherwise (the digits by default)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            params = draw(self.split.augment, len(idx), size, self.generator) if random_aug else None
            lo, hi = shard(len(idx), self.rank, self.world)
            local = idx[lo:hi].to(dev)
            x = self.split.images[local]
            x = apply(aug, x, None if params is None else params[lo:hi])
            yield x.contiguous(memory_format=self.memory_format), self.split.labels[local]
        if self.shuffle:  # RandomSampler draws a second permutation (for its remainder) when exhausted
            torch.randperm(n, generator=self.generator)
