"""The device data path (harness.data.device_data): same augmentation as the torchvision transforms,
exactly for given parameters and in distribution; repeatable; resumable after SIGKILL; sharded.

CIFAR-10 files are hand-written in torchvision's format (tests/fake_data.py), with the md5 check
turned into an existence check.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import harness.engine.evaluate
from harness.data import datasets as data
from harness.data.device_data import Augment, AugmentParams, DeviceLoader, RawSplit, apply, draw, shard
from harness.runs.layout import EVAL_CHECKPOINT
from harness.runs.run import Run
from harness.spec.runspec import fixed_config
from spaces.genotype import resolve
from tests import fake_data

MEAN, STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)
TRAIN_AUG = Augment(crop_pad=4, flip=True, cutout=16, mean=MEAN, std=STD)


def images(n: int, seed: int = 0) -> torch.Tensor:
    """n uint8 images (N x 3 x 32 x 32) with a different brightness per channel and structure per row."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (n, 3, 32, 32), generator=g)
    ramp = torch.linspace(0, 60, 32).view(1, 1, 32, 1)
    x = (base * torch.tensor([0.6, 0.8, 1.0]).view(1, 3, 1, 1) + ramp).clamp(0, 255)
    return x.to(torch.uint8)


def torchvision_reference(img: torch.Tensor, p: AugmentParams, i: int) -> torch.Tensor:
    """DARTS' CIFAR pipeline with the given parameters: pad 4, crop, flip, ToTensor, Normalize, Cutout."""
    from torchvision.transforms import functional as TF

    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    pil = TF.crop(TF.pad(pil, 4), int(p.offset_y[i]), int(p.offset_x[i]), 32, 32)
    if bool(p.flip[i]):
        pil = TF.hflip(pil)
    t = TF.normalize(TF.to_tensor(pil), MEAN, STD)
    cy, cx, half = int(p.centre_y[i]), int(p.centre_x[i]), 8
    t[:, max(cy - half, 0):min(cy - half + 16, 32), max(cx - half, 0):min(cx - half + 16, 32)] = 0
    return t


def test_batched_augmentation_equals_the_torchvision_pipeline_for_the_same_parameters() -> None:
    x = images(24)
    p = draw(TRAIN_AUG, 24, 32, torch.Generator().manual_seed(1))
    assert p.flip.any() and not p.flip.all()
    out = apply(TRAIN_AUG, x, p)
    ref = torch.stack([torchvision_reference(x[i], p, i) for i in range(24)])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_crop_offsets_flips_and_cutout_coverage_have_their_expected_frequencies() -> None:
    n = 20_000
    p = draw(TRAIN_AUG, n, 32, torch.Generator().manual_seed(2))
    for offsets in (p.offset_y, p.offset_x):  # RandomCrop(32, padding=4): uniform on 0..8
        freq = torch.bincount(offsets, minlength=9).double() / n
        assert offsets.min() == 0 and offsets.max() == 8
        assert torch.allclose(freq, torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.012)
    assert abs(p.flip.double().mean().item() - 0.5) < 0.015
    # cutout: a 16-square with a uniform centre, clipped; expected covered rows (and columns) per image
    covered = [min(c - 8 + 16, 32) - max(c - 8, 0) for c in range(32)]
    expected = (sum(covered) / 32) ** 2 / 32**2
    ones = Augment(cutout=16, mean=(0.0,) * 3, std=(1.0,) * 3)
    sub = p[slice(0, 4000)]
    out = apply(ones, torch.full((4000, 3, 32, 32), 255, dtype=torch.uint8), sub)
    measured = (out[:, 0] == 0).double().mean().item()
    assert abs(measured - expected) < 0.01, (measured, expected)


def test_per_channel_statistics_match_the_torchvision_path() -> None:
    from torchvision import transforms as T

    x = images(384, seed=3)
    loader = DeviceLoader(RawSplit(x, torch.zeros(384, dtype=torch.long), TRAIN_AUG), 384, shuffle=True, seed=0)
    batch, _ = next(iter(loader))
    tv = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD),
                    data.Cutout(16)])
    torch.manual_seed(0)
    ref = torch.stack([tv(Image.fromarray(img.permute(1, 2, 0).numpy())) for img in x])
    for dim_stat in (lambda t: t.mean(dim=(0, 2, 3)), lambda t: t.std(dim=(0, 2, 3))):
        torch.testing.assert_close(dim_stat(batch), dim_stat(ref), atol=0.03, rtol=0)


def test_batches_depend_on_the_seed_only_and_a_restored_generator_continues_exactly() -> None:
    split = RawSplit(images(40), torch.arange(40), TRAIN_AUG)
    a = DeviceLoader(split, 16, shuffle=True, seed=5)
    b = DeviceLoader(split, 16, shuffle=True, seed=5)
    first = [x for x, _ in a]
    assert all(torch.equal(u, v) for u, v in zip(first, (x for x, _ in b), strict=True))
    state = a.generator.get_state()
    c = DeviceLoader(split, 16, shuffle=True, seed=99)
    c.generator.set_state(state)
    assert all(torch.equal(u, v) for u, v in zip((x for x, _ in a), (x for x, _ in c), strict=True))
    assert not torch.equal(first[0], next(iter(DeviceLoader(split, 16, shuffle=True, seed=6)))[0])


def test_process_shares_make_up_the_single_process_batch() -> None:
    split = RawSplit(images(30), torch.arange(30), TRAIN_AUG)
    whole = list(DeviceLoader(split, 12, shuffle=True, seed=1))
    parts = [list(DeviceLoader(split, 12, shuffle=True, seed=1, rank=r, world=2)) for r in range(2)]
    for k, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][k][0], parts[1][k][0]]), x)
        assert torch.equal(torch.cat([parts[0][k][1], parts[1][k][1]]), y)
    assert [shard(7, r, 3) for r in range(3)] == [(0, 2), (2, 4), (4, 7)]


def test_digits_device_batches_equal_the_dataloader_batches() -> None:
    """Same RNG calls as a DataLoader, also under ``tqdm.auto`` (which creates an extra iterator)."""
    from tqdm.auto import tqdm

    bundle = data.load("digits")
    tv = data.split_loader(bundle, "eval_train", 64, shuffle=True, seed=3, path="torchvision", cap=512)
    dev = data.split_loader(bundle, "eval_train", 64, shuffle=True, seed=3, path="device", cap=512)
    for wrap in (lambda it: it, lambda it: tqdm(it, disable=True)):
        for (x1, y1), (x2, y2) in zip(wrap(tv), wrap(dev), strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert torch.equal(tv.generator.get_state(), dev.generator.get_state())


def test_channels_last_batches_and_bad_names() -> None:
    split = RawSplit(images(8), torch.arange(8), TRAIN_AUG)
    x, _ = next(iter(DeviceLoader(split, 8, shuffle=False, seed=0, memory_format=torch.channels_last)))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="valid: device, torchvision"):
        data.split_loader(data.load("digits"), "test", 8, shuffle=False, seed=0, path="dali")


# -- CIFAR-10 files: the raw splits, and resume after SIGKILL ---------------------------------------------------

@pytest.fixture
def cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake_data.skip_md5(monkeypatch)
    root = tmp_path / "data"
    fake_data.write_cifar10(root, per_batch=8, test=8, low=0)
    return root


def test_cifar_raw_splits_hold_the_torchvision_images_and_augmentation(cifar: Path) -> None:
    bundle = data.load("c10", cifar, augment=data.Augmentation(crop_pad=4, flip=True, cutout=16),
                       search_image_size=16)
    raw = bundle.raw
    assert [len(raw[s]) for s in ("search_train", "search_val", "eval_train", "test")] == [20, 20, 40, 8]
    img, label = bundle.eval_train.base[7]
    assert torch.equal(raw["eval_train"].images[7], torch.from_numpy(np.array(img)).permute(2, 0, 1))
    assert int(raw["eval_train"].labels[7]) == label
    assert raw["eval_train"].augment == Augment(crop_pad=4, flip=True, cutout=16, mean=MEAN, std=STD)
    assert raw["search_train"].augment.resize == 16 and raw["test"].augment.crop_pad == 0
    x, _ = next(iter(data.split_loader(bundle, "search_val", 8, shuffle=True, seed=0)))
    assert x.shape == (8, 3, 16, 16)


TINY_EVAL = dict(eval_epochs=2, eval_batch=8, eval_layers=2, eval_channels=4, cutout=8, eval_subset=None)


def _child(cfg: Any, out: str, root: str, kill_at: int | None) -> None:
    torch.set_num_threads(1)
    if kill_at is not None:
        split, calls = harness.engine.evaluate._split_output, {"n": 0}

        def killing_split(output: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return split(output)

        harness.engine.evaluate._split_output = killing_split
    Run(cfg, out, data_root=root, device="cpu").execute()


def test_sigkill_mid_evaluation_resumes_to_the_uninterrupted_result_with_augmentation(cifar: Path,
                                                                                      tmp_path: Path) -> None:
    cfg = fixed_config(resolve("DARTS_V2"), "DARTS_V2", "s0-c10", "smoke", 0, **TINY_EVAL)
    assert cfg.data.path == "device"
    ref = Run(cfg, tmp_path / "ref", data_root=str(cifar), device="cpu").execute()
    assert ref["status"] == "complete", ref.get("reason")
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(cfg, str(tmp_path / "killed"), str(cifar), 7))  # epoch 1, batch 2
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -signal.SIGKILL
    run_dir = tmp_path / "killed" / cfg.run_id
    assert int(torch.load(run_dir / EVAL_CHECKPOINT, weights_only=True)["next_epoch"]) == 1
    resumed = Run(cfg, tmp_path / "killed", data_root=str(cifar), device="cpu").execute()
    keys = ("test_error", "train_loss", "train_acc")
    assert {k: resumed["eval"][k] for k in keys} == {k: ref["eval"][k] for k in keys}


def test_torchvision_path_shards_with_a_seeded_distributed_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.utils import distributed

    bundle = data.load("digits")
    monkeypatch.setattr(distributed, "world", lambda: 2)
    seen = []
    for r in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        loader = data.split_loader(bundle, "test", 40, shuffle=True, seed=4, path="torchvision")
        loader.sampler.set_epoch(1)
        seen.append(torch.cat([y for _, y in loader]))
        again = data.split_loader(bundle, "test", 40, shuffle=True, seed=4, path="torchvision")
        again.sampler.set_epoch(1)
        assert torch.equal(seen[-1], torch.cat([y for _, y in again]))
    assert len(seen[0]) + len(seen[1]) >= len(bundle.test)  # DistributedSampler pads to equal shares
    with pytest.raises(ValueError, match="does not divide over 2 processes"):
        data.split_loader(bundle, "test", 41, shuffle=True, seed=4, path="torchvision")
    assert data.default_workers("imagenet", "torchvision") >= 1
    assert data.default_workers("c10", "torchvision") == data.default_workers("c10", "device") == 0
