"""Datasets for search and evaluation.

One entry point, :func:`load`, returns a :class:`DataBundle` with the four splits a run needs:

* ``search_train`` - images that train the supernet weights during search,
* ``search_val``   - images that train the architecture parameters during search,
* ``eval_train``   - the full training set for training the derived network from scratch,
* ``test``         - the held-out test set.

For CIFAR-10/100 and SVHN the search splits are the two halves of the training set, the first half
for the weights and the second half for the architecture (DARTS, ``train_portion=0.5``). ImageNet
follows ROME's direct search: two disjoint random fractions (10 % each by default) of the training
images. ``digits`` is scikit-learn's bundled 8x8 digits set, upsampled to 16x16 RGB, so smoke-scale
runs and tests work without any download.

The training augmentation is stated once, by the run spec's ``data`` section (``crop_pad``, ``flip``,
``cutout``; :class:`AugmentFields`), and turned into one :class:`~harness.data.device_data.Augment` per split
by :func:`split_augments`. Both data paths read that one definition: the device path applies it to
tensors, the torchvision path builds its transforms from it (:func:`torchvision_transform`), so what a
run records is what either path does. ImageNet keeps its own ``RandomResizedCrop`` pipeline (torchvision
path only): ``flip`` and ``cutout`` apply to it, a padded crop does not (the spec refuses
``data.crop_pad`` > 0 there).

A dataset whose files are absent raises :class:`DatasetMissing` before anything is loaded or
downloaded; :func:`check_available` runs that check alone, so a sweep can fail fast.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from harness.data.device_data import Augment, DeviceLoader, RawSplit
from harness.utils import distributed

__all__ = [
    "DATASETS",
    "DATA_PATHS",
    "NO_AUGMENT",
    "AugmentFields",
    "Augmentation",
    "Cutout",
    "DataBundle",
    "DatasetMissing",
    "DatasetSpec",
    "check_available",
    "load",
    "make_loader",
    "split_augments",
    "split_loader",
    "tensor_bundle",
    "torchvision_transform",
]

#: how batches are made: ``device`` (:mod:`harness.data.device_data`, the small datasets) or ``torchvision``
#: (a DataLoader over PIL transforms, the only path for ImageNet)
DATA_PATHS = ("device", "torchvision")


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset.

    ``image_size`` is the native search/evaluation resolution (ImageNet: the evaluation crop);
    ``folder`` is the directory expected under ``--data-root``; ``downloadable`` says whether
    torchvision can fetch it.
    """

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: str
    downloadable: bool


DATASETS: dict[str, DatasetSpec] = {
    # mean/std of the 16x16 bilinear upsampling of pixel/16 over all 1,797 images
    "digits": DatasetSpec("digits", 10, 16, (0.3053,) * 3, (0.3189,) * 3, "", False),
    # the CIFAR-10 statistics used by DARTS
    "c10": DatasetSpec(
        "c10", 10, 32, (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768),
        "cifar-10-batches-py", True,
    ),
    # the CIFAR-100 statistics used by the DARTS-family code bases (PC-DARTS, R-DARTS)
    "c100": DatasetSpec(
        "c100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "cifar-100-python", True,
    ),
    # the SVHN statistics used by R-DARTS
    "svhn": DatasetSpec("svhn", 10, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "svhn", True),
    "imagenet": DatasetSpec(
        "imagenet", 1000, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "imagenet", False,
    ),
}

# Files torchvision needs for each downloadable dataset, relative to root/<folder>.
_REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "c10": tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
    "c100": ("train", "test", "meta"),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
}
_IMAGENET_SUBDIRS = ("train", "val")


class AugmentFields(Protocol):
    """What a run spec's ``data`` section says about the training augmentation (``harness.spec.runspec.DataSpec``).

    A protocol rather than the spec class itself, because :mod:`harness.spec.runspec` imports this module.
    """

    @property
    def crop_pad(self) -> int: ...  # zero padding of the random crop (0: no crop)

    @property
    def flip(self) -> bool: ...  # random horizontal flip with probability 1/2

    @property
    def cutout(self) -> int: ...  # side of the cutout square of evaluation training (0: none)


@dataclass(frozen=True)
class Augmentation:
    """Augmentation fields outside a run spec (tests, profiling); a run passes its ``spec.data``."""

    crop_pad: int = 0
    flip: bool = False
    cutout: int = 0


#: nothing random: what :func:`load` does unless told otherwise
NO_AUGMENT = Augmentation()


class DatasetMissing(Exception):
    """A dataset's files are not where the harness expects them."""

    def __init__(self, name: str, root: str | Path | None):
        spec = DATASETS[name]
        self.name = name
        self.folder = spec.folder
        self.root = None if root is None else str(root)
        where = "no --data-root given" if root is None else f"--data-root is {root}"
        if spec.downloadable:
            hint = f"pass --download to fetch it into <data-root>/{spec.folder}"
        else:
            subdirs = " and ".join(f"{s}/" for s in _IMAGENET_SUBDIRS)
            hint = (
                f"it cannot be downloaded: place it manually in ImageFolder layout ({subdirs}, "
                "one subfolder per class); --download does not fetch it"
            )
        super().__init__(
            f"dataset '{name}' not found: expected folder '{spec.folder}' under --data-root "
            f"({where}); {hint}"
        )


@dataclass
class DataBundle:
    """The splits of one dataset plus the facts a network needs to be built for it.

    ``image_size`` is the evaluation resolution; ``search_image_size`` the resolution of the two
    search splits (``None`` means the same as ``image_size``).
    """

    search_train: Dataset
    search_val: Dataset
    eval_train: Dataset
    test: Dataset
    num_classes: int
    image_size: int
    in_channels: int = 3
    search_image_size: int | None = None
    #: the same splits as tensors for the device data path (empty for ImageNet)
    raw: dict[str, RawSplit] = field(default_factory=dict)


class Cutout:
    """Zero one square hole of side ``length`` at a uniformly random centre (clipped at the borders).

    Works on a ``C x H x W`` tensor, after normalisation, as in DARTS. The centre is drawn from
    torch's RNG, which DataLoader seeds per worker (numpy's RNG would repeat across workers).
    """

    def __init__(self, length: int):
        if length <= 0:
            raise ValueError(f"cutout length must be positive, got {length}")
        self.length = int(length)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2], img.shape[-1]
        cy = int(torch.randint(h, (1,)))
        cx = int(torch.randint(w, (1,)))
        y0, x0 = cy - self.length // 2, cx - self.length // 2
        y1, x1 = y0 + self.length, x0 + self.length
        out = img.clone()
        out[..., max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = 0
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"


class _Transformed(Dataset):
    """Apply ``transform`` to the images of an untransformed base dataset.

    Lets one copy of the raw data serve several splits with different augmentations.
    """

    def __init__(self, base: Dataset, transform: Callable[[Any], Any] | None):
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img, target = self.base[index]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(target)


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        valid = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset '{name}'; valid names: {valid}") from None


def _present(name: str, root: Path) -> bool:
    """True when all files torchvision reads for ``name`` exist under ``root``."""
    folder = root / DATASETS[name].folder
    if name == "imagenet":
        return all((folder / sub).is_dir() for sub in _IMAGENET_SUBDIRS)
    return all((folder / f).is_file() for f in _REQUIRED_FILES[name])


def crop_pad_problem(dataset: str, pad: int) -> str | None:
    """Why ``pad`` cannot be the padding of ``dataset``'s random crop, else ``None``: ImageNet crops with
    ``RandomResizedCrop`` (so a padded crop would be recorded but not done), and a padding beyond the image
    size crops mostly padding, a typo rather than a protocol."""
    if pad and dataset == "imagenet":
        return f"crop_pad={pad}: ImageNet crops with RandomResizedCrop, not a padded crop; valid: 0"
    size = DATASETS[dataset].image_size
    if pad > size:
        return f"crop_pad={pad}: must be <= the image size ({size})"
    return None


def check_available(name: str, root: str | Path | None) -> None:
    """Raise :class:`DatasetMissing` if ``name`` is not on disk (``digits`` always is).

    Only looks at the file system: nothing is loaded and nothing is downloaded.
    """
    _spec(name)
    if name == "digits":
        return
    if root is None or not _present(name, Path(root)):
        raise DatasetMissing(name, root)


def load(
    name: str,
    root: str | Path | None = None,
    *,
    augment: AugmentFields = NO_AUGMENT,
    download: bool = False,
    search_image_size: int | None = None,
    imagenet_search_fraction: float = 0.1,
    seed: int = 0,
) -> DataBundle:
    """Build the :class:`DataBundle` for dataset ``name`` found under ``root``.

    ``augment`` is the run spec's ``data`` section (crop padding, flip, cutout; see
    :func:`split_augments`); the default augments nothing, so a caller without a spec gets plain images.
    ``download`` lets torchvision fetch CIFAR-10/100 and SVHN into ``root`` when absent;
    ``search_image_size`` resizes the search splits (default: the dataset's native size);
    ``imagenet_search_fraction`` and ``seed`` choose ImageNet's two disjoint search subsets.
    The CIFAR/SVHN halving and the digits split do not depend on ``seed``.
    """
    spec = _spec(name)
    if name != "digits" and not (download and spec.downloadable and root is not None):
        check_available(name, root)
    if name == "digits":
        return _load_digits(augment, search_image_size)
    assert root is not None
    root = Path(root)
    if name in ("c10", "c100", "svhn"):
        return _load_small(name, root, download, augment, search_image_size)
    problem = crop_pad_problem("imagenet", augment.crop_pad)
    if problem:
        raise ValueError(problem)
    return _load_imagenet(root, search_image_size, imagenet_search_fraction, seed, augment)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose sample order (and workers' base seeds) come from a generator seeded with ``seed``.

    With ``num_workers=0`` random augmentations draw from the process-wide torch RNG, so seed that
    too (``torch.manual_seed``) for fully repeatable batches.
    """
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=gen,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        pin_memory=num_workers > 0 and torch.cuda.is_available(),
    )


def split_loader(
    bundle: DataBundle,
    split: str,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    path: str = "device",
    device: torch.device | str = "cpu",
    cap: int | None = None,
    num_workers: int = 0,
    memory_format: torch.memory_format = torch.contiguous_format,
    distribute: bool = True,
) -> DataLoader | DeviceLoader:
    """Batches of ``bundle``'s ``split`` (its first ``cap`` images) by the data path ``path``.

    Both kinds of loader expose ``generator``, whose state decides every later batch. Under
    ``torch.distributed`` with more than one process, each process gets its share of every global
    batch of ``batch_size``: the device path slices the global batch, the torchvision path uses a
    ``DistributedSampler`` seeded with ``seed`` (``batch_size`` must then divide by the world size).
    ``distribute=False`` gives every process the whole batches (a replicated search, a test set).
    ``num_workers`` > 0 (torchvision path) adds persistent, seeded workers and pinned memory on CUDA.
    """
    if path not in DATA_PATHS:
        raise ValueError(f"unknown data path '{path}'; valid: {', '.join(DATA_PATHS)}")
    rank, world = (distributed.rank(), distributed.world()) if distribute else (0, 1)
    if path == "device":
        if split not in bundle.raw:
            raise ValueError("the device data path covers c10, c100, svhn and digits; use data_path=torchvision")
        return DeviceLoader(bundle.raw[split].head(cap), batch_size, shuffle=shuffle, seed=seed, device=device,
                            rank=rank, world=world, memory_format=memory_format)
    ds = getattr(bundle, split)
    if cap is not None and cap < len(ds):
        ds = Subset(ds, range(cap))
    if world == 1:
        loader = make_loader(ds, batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers)
    else:
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} does not divide over {world} processes")
        gen = torch.Generator()
        gen.manual_seed(int(seed))
        loader = DataLoader(ds, batch_size=batch_size // world, sampler=DistributedSampler(
            ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=int(seed)), num_workers=num_workers,
            generator=gen, worker_init_fn=_seed_worker if num_workers > 0 else None,
            persistent_workers=num_workers > 0, pin_memory=num_workers > 0 and torch.device(device).type == "cuda")
    return loader


class _PILImages(Dataset):
    """The ``uint8`` images of a :class:`RawSplit` as PIL images with their labels (as torchvision's CIFAR)."""

    def __init__(self, split: RawSplit):
        self.images = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = split.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return Image.fromarray(self.images[index]), self.labels[index]


def tensor_bundle(split: RawSplit, num_classes: int = 10) -> DataBundle:
    """A :class:`DataBundle` whose every split is ``split``, for :func:`split_loader` without a dataset on disk.

    The device path batches ``split`` itself; the torchvision path its images (PIL images when ``uint8``)
    through :func:`torchvision_transform` of its augmentation. The throughput benchmark feeds synthetic
    images through it (``harness.evidence.throughput``).
    """
    base: Dataset = _PILImages(split) if split.augment.mean is not None else TensorDataset(split.images, split.labels)
    size = int(split.images.shape[-1])
    ds = _Transformed(base, torchvision_transform(split.augment, size))
    return DataBundle(search_train=ds, search_val=ds, eval_train=ds, test=ds, num_classes=num_classes,
                      image_size=size, in_channels=int(split.images.shape[1]),
                      raw={name: split for name in ("search_train", "search_val", "eval_train", "test")})


def default_workers(dataset: str, path: str) -> int:
    """Loader processes of the torchvision path: ImageNet decodes JPEGs in up to 8 workers; 0 otherwise.

    The small datasets keep 0 (augmentation from the process's seeded RNG, as before); their fast path
    is the device path.
    """
    if path != "torchvision" or dataset != "imagenet":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores - 1))


def _seed_worker(worker_id: int) -> None:
    """Derive numpy's and Python's RNG seeds in a worker from torch's per-worker seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


# ----------------------------------------------------------------------------------------------
# the augmentation of each split, read by both data paths


def split_augments(name: str, fields: AugmentFields, search_size: int | None = None) -> dict[str, Augment]:
    """The augmentation of each split of ``name`` (c10, c100, svhn, digits) from the spec's ``data`` fields.

    This is the one definition both data paths read (the device path as is, the torchvision path
    through :func:`torchvision_transform`). The two search splits and the evaluation training set take
    the random crop (padding ``crop_pad``) and the flip; cutout is for evaluation training only (DARTS
    ``train.py``, not ``train_search.py``); the test set is only normalised. CIFAR and SVHN are stored
    as ``uint8`` and padded with black; their search splits are resized after crop and flip. The
    digits are stored normalised, at the search size already (so their crop padding counts pixels of
    the stored size), and are padded with the normalised value of black, their background.
    """
    spec = _spec(name)
    if name == "imagenet":
        raise ValueError("ImageNet's augmentation is its RandomResizedCrop pipeline (torchvision path only)")
    crop = {"crop_pad": int(fields.crop_pad), "flip": bool(fields.flip)}
    stored: dict[str, Any]
    if name == "digits":
        assert len(set(spec.mean)) == 1 and len(set(spec.std)) == 1  # grey: one padding value for all channels
        stored, resize = {"fill": -spec.mean[0] / spec.std[0]}, None
    else:
        size = search_size or spec.image_size
        stored, resize = {"mean": spec.mean, "std": spec.std}, size if size != spec.image_size else None
    search = Augment(resize=resize, **crop, **stored)
    return {"search_train": search, "search_val": search,
            "eval_train": Augment(cutout=int(fields.cutout), **crop, **stored), "test": Augment(**stored)}


def torchvision_transform(aug: Augment, size: int) -> Callable[[Any], torch.Tensor]:
    """The torchvision pipeline of ``aug`` for stored images of side ``size``.

    ``uint8`` datasets (``aug.mean`` set) get PIL images: crop, flip, resize, ``ToTensor`` +
    ``Normalize``, cutout, as DARTS ``utils._data_transforms_cifar10``. The normalised digits get
    tensors: the same steps on the tensor, without the normalisation they already had.
    """
    from torchvision import transforms as T

    steps: list[Any] = []
    if aug.crop_pad > 0:
        fill = {} if aug.mean is not None else {"fill": aug.fill}  # PIL pads with black (0)
        steps.append(T.RandomCrop(size, padding=aug.crop_pad, **fill))
    if aug.flip:
        steps.append(T.RandomHorizontalFlip())
    if aug.resize is not None and aug.resize != size:
        steps.append(T.Resize(aug.resize))
    if aug.mean is not None:
        assert aug.std is not None
        steps += [T.ToTensor(), T.Normalize(aug.mean, aug.std)]
    if aug.cutout > 0:
        steps.append(Cutout(aug.cutout))
    return T.Compose(steps)


# ----------------------------------------------------------------------------------------------
# digits


_DIGITS_TRAIN = 1400


def _load_digits(fields: AugmentFields, search_image_size: int | None) -> DataBundle:
    """scikit-learn's 1,797 digits: fixed split 1,400 train / 397 test, train halved for search.

    A split without random augmentation stays a plain ``TensorDataset`` (a ``DataLoader`` over it
    yields exactly the device path's batches).
    """
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    spec = DATASETS["digits"]
    raw = load_digits()
    x8 = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0  # N x 1 x 8 x 8 in [0, 1]
    y = torch.tensor(raw.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train_idx, test_idx = perm[:_DIGITS_TRAIN], perm[_DIGITS_TRAIN:]

    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)

    def prepare(idx: torch.Tensor, size: int) -> torch.Tensor:
        up = F.interpolate(x8[idx], size=(size, size), mode="bilinear", align_corners=False)
        return (up.repeat(1, 3, 1, 1) - mean) / std

    size = spec.image_size
    s_size = search_image_size or size
    train_x, test_x = prepare(train_idx, size), prepare(test_idx, size)
    search_x = train_x if s_size == size else prepare(train_idx, s_size)
    train_y, test_y = y[train_idx], y[test_idx]
    half = _DIGITS_TRAIN // 2
    augs = split_augments("digits", fields, s_size)
    raw = {"search_train": RawSplit(search_x[:half], train_y[:half], augs["search_train"]),
           "search_val": RawSplit(search_x[half:], train_y[half:], augs["search_val"]),
           "eval_train": RawSplit(train_x, train_y, augs["eval_train"]),
           "test": RawSplit(test_x, test_y, augs["test"])}

    def dataset(split: str) -> Dataset:
        r = raw[split]
        base = TensorDataset(r.images, r.labels)
        return _Transformed(base, torchvision_transform(r.augment, r.images.shape[-1])) if r.augment.random else base

    return DataBundle(
        search_train=dataset("search_train"),
        search_val=dataset("search_val"),
        eval_train=dataset("eval_train"),
        test=dataset("test"),
        num_classes=spec.num_classes,
        image_size=size,
        search_image_size=s_size,
        raw=raw,
    )


# ----------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 / SVHN


def _load_small(
    name: str, root: Path, download: bool, fields: AugmentFields, search_image_size: int | None
) -> DataBundle:
    """CIFAR-10/100 and SVHN via torchvision; the training set is halved for search.

    SVHN flips like the others when ``fields.flip`` is set (the default of the run spec), as R-DARTS
    (``src/utils.py`` ``_data_transforms_svhn``), whose protocol ROME follows for S1-S4.
    """
    from torchvision import datasets as D

    spec = DATASETS[name]
    s_size = search_image_size or spec.image_size
    augs = split_augments(name, fields, s_size)
    search_tf, train_tf, test_tf = (torchvision_transform(augs[s], spec.image_size)
                                    for s in ("search_train", "eval_train", "test"))
    base_train: Dataset
    if name == "svhn":
        base_train = D.SVHN(str(root / spec.folder), split="train", download=download)
        base_test = D.SVHN(str(root / spec.folder), split="test", download=download)
    else:
        cls = D.CIFAR10 if name == "c10" else D.CIFAR100
        base_train = cls(str(root), train=True, download=download)
        base_test = cls(str(root), train=False, download=download)

    n = len(base_train)
    half = n // 2
    search_base = _Transformed(base_train, search_tf)
    return DataBundle(
        search_train=Subset(search_base, range(half)),
        search_val=Subset(search_base, range(half, n)),
        eval_train=_Transformed(base_train, train_tf),
        test=_Transformed(base_test, test_tf),
        num_classes=spec.num_classes,
        image_size=spec.image_size,
        search_image_size=s_size,
        raw=_raw_small(base_train, base_test, augs),
    )


def _uint8_nchw(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N x C x H x W uint8, labels) of a torchvision CIFAR (``data`` N x H x W x C) or SVHN (N x C x H x W)."""
    images = torch.from_numpy(np.asarray(ds.data))
    if images.shape[-1] == 3:
        images = images.permute(0, 3, 1, 2)
    labels = ds.labels if hasattr(ds, "labels") else ds.targets
    return images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.long)


def _raw_small(base_train: Any, base_test: Any, augs: dict[str, Augment]) -> dict[str, RawSplit]:
    """The splits of :func:`_load_small` for the device path, with the augmentation its transforms were built from."""
    x, y = _uint8_nchw(base_train)
    xt, yt = _uint8_nchw(base_test)
    half = len(y) // 2
    return {"search_train": RawSplit(x[:half], y[:half], augs["search_train"]),
            "search_val": RawSplit(x[half:], y[half:], augs["search_val"]),
            "eval_train": RawSplit(x, y, augs["eval_train"]), "test": RawSplit(xt, yt, augs["test"])}


# ----------------------------------------------------------------------------------------------
# ImageNet


def _load_imagenet(
    root: Path, search_image_size: int | None, fraction: float, seed: int, fields: AugmentFields = NO_AUGMENT
) -> DataBundle:
    """ImageFolder train/ and val/; ROME's direct search on two disjoint random fractions of train.

    ``num_classes`` is the number of class folders actually found, so a class subset also works. The
    crop is ``RandomResizedCrop`` (PC-DARTS ``train_imagenet.py``), so ``fields.crop_pad`` does not apply;
    ``fields.flip`` adds the horizontal flip to the search and training transforms and ``fields.cutout``
    cutout to the training transform, as for CIFAR.
    """
    from torchvision import datasets as D
    from torchvision import transforms as T

    spec = DATASETS["imagenet"]
    if not 0.0 < fraction <= 0.5:
        raise ValueError(f"imagenet_search_fraction must be in (0, 0.5], got {fraction}")
    folder = root / spec.folder
    base_train = D.ImageFolder(str(folder / "train"))
    base_test = D.ImageFolder(str(folder / "val"))

    n = len(base_train)
    k = max(1, int(fraction * n))
    if 2 * k > n:
        raise ValueError(f"ImageNet train set too small ({n} images) for two search subsets of {k}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    w_idx, a_idx = sorted(perm[:k]), sorted(perm[k:2 * k])

    s_size = search_image_size or spec.image_size
    norm = [T.ToTensor(), T.Normalize(spec.mean, spec.std)]
    flip = [T.RandomHorizontalFlip()] if fields.flip else []
    search_tf = T.Compose([T.RandomResizedCrop(s_size), *flip, *norm])
    train_tf = T.Compose(
        [
            T.RandomResizedCrop(spec.image_size),
            *flip,
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
            *norm,
            *([Cutout(fields.cutout)] if fields.cutout > 0 else []),
        ]
    )
    test_tf = T.Compose([T.Resize(256), T.CenterCrop(spec.image_size), *norm])

    search_base = _Transformed(base_train, search_tf)
    return DataBundle(
        search_train=Subset(search_base, w_idx),
        search_val=Subset(search_base, a_idx),
        eval_train=_Transformed(base_train, train_tf),
        test=_Transformed(base_test, test_tf),
        num_classes=len(base_train.classes),
        image_size=spec.image_size,
        search_image_size=s_size,
    )

