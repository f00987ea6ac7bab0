"""Tests for harness.data.datasets on the embedded digits and on tiny hand-written dataset files.

CIFAR and SVHN files are written in torchvision's on-disk formats by :mod:`tests.fake_data` (whose
``skip_md5`` turns torchvision's md5 check of each file into an existence check).
No test touches the network: socket connections are made to fail in every test of this module.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from harness.data import datasets as hd
from tests import fake_data

CIFAR_TRAIN_PER_BATCH = 4  # 5 batches -> 20 training images
CIFAR_TEST = 6


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything tries to open a network connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept hand-written files: torchvision's md5 check becomes an existence check."""
    fake_data.skip_md5(monkeypatch)


def _zero_box(img: torch.Tensor) -> tuple[int, int] | None:
    """Side lengths of the zeroed region if it is an axis-aligned box shared by all channels."""
    zero = img == 0
    if not zero.any():
        return None
    assert torch.equal(zero, zero[:1].expand_as(zero)), "hole differs between channels"
    rows = zero[0].any(dim=1).nonzero().flatten()
    cols = zero[0].any(dim=0).nonzero().flatten()
    h = int(rows[-1] - rows[0] + 1)
    w = int(cols[-1] - cols[0] + 1)
    assert int(zero[0].sum()) == h * w, "zeroed pixels do not form a filled rectangle"
    return h, w


# ------------------------------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits() -> hd.DataBundle:
    return hd.load("digits")


def test_digits_sizes_and_shapes(digits: hd.DataBundle) -> None:
    sizes = [len(digits.search_train), len(digits.search_val), len(digits.eval_train), len(digits.test)]
    assert sizes == [700, 700, 1400, 397]
    x, y = digits.test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.long
    assert digits.num_classes == 10 and digits.image_size == 16 and digits.in_channels == 3
    # search halves are the two halves of eval_train
    ex, ey = digits.eval_train.tensors
    assert torch.equal(digits.search_train.tensors[0], ex[:700])
    assert torch.equal(digits.search_val.tensors[1], ey[700:])


def test_digits_split_is_fixed_and_balanced(digits: hd.DataBundle) -> None:
    again = hd.load("digits", seed=123)  # the run seed must not change the split
    assert torch.equal(digits.test.tensors[0], again.test.tensors[0])
    assert torch.equal(digits.eval_train.tensors[1], again.eval_train.tensors[1])
    counts = torch.bincount(digits.test.tensors[1], minlength=10)
    assert (counts > 0).all() and counts.min() >= 20
    # train and test are disjoint (no test image appears in train)
    tr = {tuple(v.tolist()) for v in digits.eval_train.tensors[0][:, 0].flatten(1)}
    te = [tuple(v.tolist()) for v in digits.test.tensors[0][:, 0].flatten(1)]
    assert sum(t in tr for t in te) < 5  # a handful of identical digits may exist in the raw data


def test_digits_normalised(digits: hd.DataBundle) -> None:
    x = digits.eval_train.tensors[0]
    assert abs(float(x.mean())) < 0.05
    assert 0.9 < float(x.std()) < 1.1
    assert torch.equal(x[:, 0], x[:, 2])  # grey replicated to RGB


def test_digits_search_image_size() -> None:
    b = hd.load("digits", search_image_size=8)
    assert b.search_train[0][0].shape == (3, 8, 8)
    assert b.eval_train[0][0].shape == (3, 16, 16)
    assert b.search_image_size == 8


# ------------------------------------------------------------------------------------------------
# make_loader


def _order(loader: torch.utils.data.DataLoader) -> list[int]:
    return torch.cat([batch[0] for batch in loader]).tolist()


def test_make_loader_order_is_seeded() -> None:
    ds = torch.utils.data.TensorDataset(torch.arange(64))
    a = _order(hd.make_loader(ds, 8, shuffle=True, seed=1))
    b = _order(hd.make_loader(ds, 8, shuffle=True, seed=1))
    c = _order(hd.make_loader(ds, 8, shuffle=True, seed=2))
    assert a == b
    assert a != c
    assert sorted(a) == list(range(64))
    assert _order(hd.make_loader(ds, 8, shuffle=False, seed=5)) == list(range(64))
    dropped = hd.make_loader(torch.utils.data.TensorDataset(torch.arange(10)), 4, shuffle=False, seed=0,
                             drop_last=True)
    assert len(dropped) == 2


# ------------------------------------------------------------------------------------------------
# Cutout


def test_cutout_square_inside_and_clipped() -> None:
    torch.manual_seed(0)
    cut = hd.Cutout(8)
    full = 0
    for _ in range(60):
        box = _zero_box(cut(torch.ones(3, 32, 32)))
        assert box is not None
        assert box[0] <= 8 and box[1] <= 8
        full += box == (8, 8)
    assert full > 20  # most centres are far enough from the border for the whole 8x8 hole
    img = torch.ones(3, 32, 32)
    cut(img)
    assert bool((img == 1).all()), "Cutout must not modify its input in place"


# ------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 / SVHN from tiny files


@pytest.mark.parametrize("name", ["c10", "c100"])
def test_cifar_from_files(name: str, tmp_path: Path, skip_md5: None) -> None:
    (fake_data.write_cifar10 if name == "c10" else fake_data.write_cifar100)(tmp_path)
    hd.check_available(name, tmp_path)
    torch.manual_seed(0)
    b = hd.load(name, tmp_path, augment=hd.Augmentation(crop_pad=4, flip=True, cutout=16))
    n = 5 * CIFAR_TRAIN_PER_BATCH
    assert [len(b.search_train), len(b.search_val), len(b.eval_train), len(b.test)] == [n // 2, n // 2, n,
                                                                                         CIFAR_TEST]
    assert b.num_classes == (10 if name == "c10" else 100)
    # DARTS halving: first half of the training indices for the weights, second for the architecture
    assert list(b.search_train.indices) == list(range(n // 2))
    assert list(b.search_val.indices) == list(range(n // 2, n))
    for ds in (b.search_train, b.search_val, b.eval_train, b.test):
        x, y = ds[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert isinstance(y, int)
    # test images: plain ToTensor + Normalize, so they match a manual normalisation of the raw rows
    spec = hd.DATASETS[name]
    raw = b.test.base.data[0]  # H x W x C uint8
    expect = (torch.tensor(raw).permute(2, 0, 1).float() / 255 - torch.tensor(spec.mean).view(3, 1, 1)) / \
        torch.tensor(spec.std).view(3, 1, 1)
    assert torch.allclose(b.test[0][0], expect, atol=1e-5)
    # cutout on the evaluation training set: one zeroed box, at most 16x16, seen as 16x16 sometimes
    boxes = [_zero_box(b.eval_train[i % n][0]) for i in range(30)]
    assert all(bx is not None and bx[0] <= 16 and bx[1] <= 16 for bx in boxes)
    assert any(bx == (16, 16) for bx in boxes)
    # no cutout in the search splits (raw pixels >= 40 and zero padding never normalise to exactly 0)
    assert all(_zero_box(b.search_train[i][0]) is None for i in range(len(b.search_train)))


def test_cifar_without_cutout_has_no_holes(tmp_path: Path, skip_md5: None) -> None:
    fake_data.write_cifar10(tmp_path)
    b = hd.load("c10", tmp_path, augment=hd.Augmentation(crop_pad=4, flip=True))
    assert all(_zero_box(b.eval_train[i][0]) is None for i in range(len(b.eval_train)))


def test_svhn_from_files(tmp_path: Path, skip_md5: None) -> None:
    fake_data.write_svhn(tmp_path)
    hd.check_available("svhn", tmp_path)
    b = hd.load("svhn", tmp_path, augment=hd.Augmentation(crop_pad=4, flip=True, cutout=8))
    assert [len(b.search_train), len(b.search_val), len(b.eval_train), len(b.test)] == [6, 6, 12, 5]
    x, y = b.search_val[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == 7  # index 6 of train has raw label 7
    assert b.test[4][1] == 5 and b.eval_train[9][1] == 0  # raw label 10 is digit 0
    assert b.num_classes == 10
    assert _zero_box(b.eval_train[0][0]) is not None
    # SVHN flips as R-DARTS does (src/utils.py), unless data.flip is off (crop only)
    names = [type(t).__name__ for t in b.search_train.dataset.transform.transforms]
    assert "RandomHorizontalFlip" in names and "RandomCrop" in names
    unflipped = hd.load("svhn", tmp_path, augment=hd.Augmentation(crop_pad=4, flip=False, cutout=8))
    names = [type(t).__name__ for t in unflipped.search_train.dataset.transform.transforms]
    assert "RandomHorizontalFlip" not in names and "RandomCrop" in names


# ------------------------------------------------------------------------------------------------
# ImageNet from a tiny ImageFolder


def test_imagenet_from_folder(tmp_path: Path) -> None:
    fake_data.write_imagenet(tmp_path, per_class=20, val_per_class=2)
    hd.check_available("imagenet", tmp_path)
    b = hd.load("imagenet", tmp_path, search_image_size=32, seed=0)
    assert len(b.eval_train) == 40 and len(b.test) == 4
    assert len(b.search_train) == 4 and len(b.search_val) == 4  # 10 % of 40 each
    w, a = set(b.search_train.indices), set(b.search_val.indices)
    assert not w & a and w | a <= set(range(40))
    assert b.num_classes == 2 and b.image_size == 224 and b.search_image_size == 32
    x, y = b.search_train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y in (0, 1)
    assert b.test[0][0].shape == (3, 224, 224)
    assert b.eval_train[0][0].shape == (3, 224, 224)
    # the seed picks the subsets reproducibly
    same = hd.load("imagenet", tmp_path, search_image_size=32, seed=0)
    other = hd.load("imagenet", tmp_path, search_image_size=32, seed=1)
    assert same.search_train.indices == b.search_train.indices
    assert (other.search_train.indices, other.search_val.indices) != (b.search_train.indices,
                                                                       b.search_val.indices)
    bigger = hd.load("imagenet", tmp_path, search_image_size=32, imagenet_search_fraction=0.25)
    assert len(bigger.search_train) == 10 and not set(bigger.search_train.indices) & set(
        bigger.search_val.indices)


def _steps(ds: object) -> list[str]:
    """The transform classes of a split (a Subset of, or itself, a transformed dataset)."""
    tf = getattr(ds, "dataset", ds).transform
    return [type(t).__name__ for t in tf.transforms]


def test_imagenet_takes_flip_and_cutout_from_the_spec_and_refuses_a_padded_crop(tmp_path: Path) -> None:
    fake_data.write_imagenet(tmp_path, per_class=10, val_per_class=1)
    plain = hd.load("imagenet", tmp_path, search_image_size=32)
    assert "RandomHorizontalFlip" not in _steps(plain.search_train) + _steps(plain.eval_train)
    assert "Cutout" not in _steps(plain.eval_train)
    b = hd.load("imagenet", tmp_path, search_image_size=32, augment=hd.Augmentation(flip=True, cutout=16))
    assert _steps(b.search_train) == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert _steps(b.eval_train) == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToTensor",
                                    "Normalize", "Cutout"]
    with pytest.raises(ValueError, match="crop_pad=4: ImageNet crops with RandomResizedCrop"):
        hd.load("imagenet", tmp_path, augment=hd.Augmentation(crop_pad=4))


# ------------------------------------------------------------------------------------------------
# missing data and bad names


@pytest.mark.parametrize(
    "name, folder", [("c10", "cifar-10-batches-py"), ("c100", "cifar-100-python"), ("svhn", "svhn")]
)
def test_missing_downloadable_dataset(name: str, folder: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("download attempted")

    monkeypatch.setattr(tv_utils, "download_url", no_download)
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_download)
    for root in (None, tmp_path):
        with pytest.raises(hd.DatasetMissing) as err:
            hd.check_available(name, root)
        msg = str(err.value)
        assert name in msg and folder in msg and "--download" in msg and "\n" not in msg
        with pytest.raises(hd.DatasetMissing):
            hd.load(name, root)
    # a partial folder still counts as missing
    (tmp_path / folder).mkdir()
    with pytest.raises(hd.DatasetMissing):
        hd.load(name, tmp_path)
    # download requested but nowhere to put it
    with pytest.raises(hd.DatasetMissing):
        hd.load(name, None, download=True)


def test_missing_imagenet_says_manual(tmp_path: Path) -> None:
    (tmp_path / "imagenet" / "train").mkdir(parents=True)  # val/ missing
    for download in (False, True):
        with pytest.raises(hd.DatasetMissing) as err:
            hd.load("imagenet", tmp_path, download=download)
        msg = str(err.value)
        assert "imagenet" in msg and "train/" in msg and "val/" in msg and "manually" in msg
        assert "--download" in msg


def test_digits_always_available_and_unknown_name() -> None:
    hd.check_available("digits", None)
    with pytest.raises(ValueError, match="c10"):
        hd.check_available("mnist", None)
    with pytest.raises(ValueError, match="digits"):
        hd.load("cifar10")


def test_spec_table() -> None:
    assert set(hd.DATASETS) == {"digits", "c10", "c100", "svhn", "imagenet"}
    for name, spec in hd.DATASETS.items():
        assert spec.name == name and len(spec.mean) == 3 and len(spec.std) == 3
    assert [hd.DATASETS[n].num_classes for n in ("c10", "c100", "svhn", "imagenet")] == [10, 100, 10, 1000]
    assert hd.DATASETS["imagenet"].downloadable is False and hd.DATASETS["c10"].downloadable is True
