"""Tiny dataset files in torchvision's on-disk formats (CIFAR-10, CIFAR-100, SVHN, ImageNet folders).

Shared by the data tests so that each writes the same formats. torchvision checks each file's md5
against the published archives (``check_integrity`` in ``torchvision.datasets.cifar`` and
``torchvision.datasets.svhn``), which hand-written files cannot match: :func:`skip_md5` turns that
check into an existence check. Pixel values start at ``low`` (40 by default), so no image pixel is
black: a zero-padded or cut-out pixel is then told apart from the image.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


def skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept hand-written files: torchvision's md5 check becomes an existence check."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.svhn as tv_svhn

    def exists(fpath: str | Path, md5: str | None = None) -> bool:
        return Path(fpath).is_file()

    monkeypatch.setattr(tv_cifar, "check_integrity", exists)
    monkeypatch.setattr(tv_svhn, "check_integrity", exists)


def _rows(n: int, rng: np.random.Generator, low: int) -> np.ndarray:
    """n random images as CIFAR rows (N x 3072, channel-major)."""
    return rng.integers(low, 256, size=(n, 3072), dtype=np.uint8)


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 4, test: int = 6, low: int = 40) -> None:
    """``root/cifar-10-batches-py``: five training batches of ``per_batch`` images, ``test`` test images."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}",
                {"batch_label": f"training batch {i} of 5", "data": _rows(per_batch, rng, low),
                 "labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                 "filenames": [f"{i}_{j}.png" for j in range(per_batch)]})
    _pickle(folder / "test_batch",
            {"batch_label": "testing batch 1 of 1", "data": _rows(test, rng, low), "labels": list(range(test)),
             "filenames": [f"t{j}.png" for j in range(test)]})
    _pickle(folder / "batches.meta", {"label_names": [f"class{k}" for k in range(10)], "num_vis": 3072})


def write_cifar100(root: Path, train: int = 20, test: int = 6, low: int = 40) -> None:
    """``root/cifar-100-python``: ``train`` training and ``test`` test images."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, n in (("train", train), ("test", test)):
        fine = [int(v) for v in rng.integers(0, 100, n)]
        _pickle(folder / split,
                {"batch_label": split, "data": _rows(n, rng, low), "fine_labels": fine,
                 "coarse_labels": [v // 5 for v in fine], "filenames": [f"{split}{j}.png" for j in range(n)]})
    _pickle(folder / "meta", {"fine_label_names": [f"f{k}" for k in range(100)],
                              "coarse_label_names": [f"c{k}" for k in range(20)]})


def write_svhn(root: Path, n_train: int = 12, n_test: int = 5, low: int = 40) -> None:
    """``root/svhn``: the two ``.mat`` files, labels 1..10 (10 means digit 0) cycling over the images."""
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    folder = root / "svhn"
    folder.mkdir(parents=True)
    for fname, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = rng.integers(low, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)
        savemat(folder / fname, {"X": x, "y": y})


def write_imagenet(root: Path, per_class: int = 20, val_per_class: int = 2) -> None:
    """``root/imagenet/{train,val}/{n01,n02}/``: small PNG images of 40 x 48 pixels."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for split, n in (("train", per_class), ("val", val_per_class)):
        for cls in ("n01", "n02"):
            d = root / "imagenet" / split / cls
            d.mkdir(parents=True)
            for j in range(n):
                Image.fromarray(rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)).save(d / f"{j}.png")
