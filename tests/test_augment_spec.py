"""One augmentation per benchmark, from the run spec's ``data`` section, done alike by both data paths.

For CIFAR-10/100, SVHN (tiny files in torchvision's formats) and the digits, with ``data.flip`` on and
off, every augmented image of each path is matched back to its source image: the crop offsets and the
flip that make it (the image padded with black, cropped, maybe mirrored; cut-out pixels, exactly 0,
left out of the match), and the cut-out square. Their frequencies must be what the spec says (flips
about 1/2 or none, offsets over ``0 .. 2 * crop_pad`` or none, a cutout square in every evaluation
training image or in none) on both paths. Then a run on SVHN's device path must flip (issue 18: it
never did), and the spec's ``data.crop_pad`` must be checked before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import harness.cli.main
import harness.data.device_data
import harness.runs.run
from harness.cli.main import main
from harness.data import datasets as hd
from harness.data.device_data import Augment, AugmentParams
from harness.runs.run import Run
from harness.spec.runspec import DataSpec, fixed_config, resolve
from spaces.genotype import resolve as genotype
from tests import fake_data

N_TRAIN = 100  # images of each fake training set (CIFAR-10, CIFAR-100, SVHN)
DRAWS = 300  # augmented images per path and split (a few passes over the fake sets)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    fake_data.write_cifar10(out, per_batch=N_TRAIN // 5, test=4)
    fake_data.write_cifar100(out, train=N_TRAIN, test=4)
    fake_data.write_svhn(out, n_train=N_TRAIN, n_test=4)
    return out


@pytest.fixture(autouse=True)
def _md5(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_data.skip_md5(monkeypatch)


Found = tuple[int, int, bool]


def _match(out: torch.Tensor, source: torch.Tensor, pad: int, black: torch.Tensor) -> list[Found | None]:
    """Per output image, the one ``(offset_y, offset_x, flipped)`` that makes it from its source image
    padded by ``pad`` pixels of the value ``black`` (per channel); ``None`` when none or several do.

    The candidates are told apart on the output's centre, which every crop takes from the source image
    (channel 0 only: cheap); the one found must then reproduce the whole image, padding included.
    """
    n, c, h, w = source.shape
    ch, cw = h - 2 * pad, w - 2 * pad
    windows = source[:, 0].unfold(1, ch, 1).unfold(2, cw, 1)  # n x Y x X x ch x cw: every crop's centre
    hits = []
    for o in (out, out.flip(-1)):  # a flipped crop is the mirror of the output
        centre = o[:, 0, pad:pad + ch, pad:pad + cw][:, None, None]
        keep = centre != 0  # cut-out pixels are exactly 0
        hits.append(((windows - centre).abs() * keep).amax(dim=(3, 4)) < 1e-4)
    padded = black.view(1, c, 1, 1).repeat(n, 1, h + 2 * pad, w + 2 * pad)
    padded[:, :, pad:pad + h, pad:pad + w] = source
    found: list[Found | None] = []
    for i, m in enumerate(torch.stack(hits, dim=-1)):  # Y x X x 2
        where = m.nonzero().tolist()
        if len(where) != 1:
            found.append(None)
            continue
        dy, dx, flipped = where[0][0], where[0][1], bool(where[0][2])
        crop = padded[i, :, dy:dy + h, dx:dx + w]
        crop = crop.flip(-1) if flipped else crop
        exact = float(((crop - out[i]).abs() * (out[i] != 0)).max()) < 1e-4
        found.append((dy, dx, flipped) if exact else None)
    return found


def _holes(out: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per image, the sides of its zeroed box (the same in all channels), or None without one."""
    sides: list[tuple[int, int] | None] = []
    for img in out:
        zero = img == 0
        if not zero.any():
            sides.append(None)
            continue
        assert torch.equal(zero, zero[:1].expand_as(zero)), "the hole differs between channels"
        rows, cols = zero[0].any(dim=1).nonzero().flatten(), zero[0].any(dim=0).nonzero().flatten()
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(zero[0].sum()) == h * w, "the zeroed pixels are not one filled box"
        sides.append((h, w))
    return sides


def _draw(bundle: hd.DataBundle, split: str, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``DRAWS`` augmented images of ``split`` in source order, and their sources (normalised, unaugmented)."""
    raw = bundle.raw[split]
    cap = min(len(raw), DRAWS)
    outs = []
    for seed in range(-(-DRAWS // cap)):
        torch.manual_seed(seed)  # the torchvision path's transforms draw from the global RNG
        loader = hd.split_loader(bundle, split, 50, shuffle=False, seed=seed, path=path, cap=cap)
        outs.append(torch.cat([x for x, _ in loader]))
    plain = Augment(mean=raw.augment.mean, std=raw.augment.std)  # normalisation alone
    source = harness.data.device_data.apply(plain, raw.images[:cap], None)
    return torch.cat(outs), source.repeat(len(outs), 1, 1, 1)


CASES = [(bench, {"data.flip": flip}) for bench in ("s1-c10", "s1-c100", "s1-svhn", "s2-digits")
         for flip in ("true", "false")]
CASES.append(("s2-digits", {"data.flip": "true", "data.crop_pad": "2", "data.cutout": "6"}))


@pytest.mark.parametrize(("bench", "sets"), CASES, ids=[f"{b}-{'-'.join(s.values())}" for b, s in CASES])
def test_both_paths_do_what_the_spec_says(bench: str, sets: dict[str, str], root: Path) -> None:
    spec = resolve("gdas", bench, "paper", sets=sets)
    d = spec.data
    if bench.endswith("digits") and "data.crop_pad" not in sets:  # the digits' protocol: no crop, no cutout
        assert (d.crop_pad, d.cutout) == (0, 0)
    else:
        assert d.crop_pad > 0 and d.cutout > 0
    name = bench.split("-")[1]
    bundle = hd.load(name, root, augment=spec.data)  # what harness.runs.run passes
    info = hd.DATASETS[name]
    black = -torch.tensor(info.mean) / torch.tensor(info.std)  # a zero pixel, normalised
    seen: dict[str, dict[str, Any]] = {}
    for path in ("device", "torchvision"):
        for split in ("search_train", "eval_train"):
            out, source = _draw(bundle, split, path)
            assert out.shape == source.shape and out.dtype == torch.float32
            found = _match(out, source, d.crop_pad, black)
            known = [f for f in found if f is not None]
            assert len(known) >= 0.95 * len(found), f"{path} {split}: images no crop/flip of the source explains"
            flips = sum(f[2] for f in known) / len(known)
            offsets = {f[0] for f in known} | {f[1] for f in known}
            holes = _holes(out)
            if d.flip:
                assert 0.35 < flips < 0.65, (path, split, flips)
            else:
                assert flips == 0, (path, split, flips)
            assert offsets == set(range(2 * d.crop_pad + 1)), (path, split, offsets)
            assert abs(sum(f[0] for f in known) / len(known) - d.crop_pad) < 0.5
            if split == "eval_train" and d.cutout:  # a square in every image, sometimes whole
                assert all(h is not None and max(h) <= d.cutout for h in holes), (path, holes)
                assert (d.cutout, d.cutout) in holes
            else:
                assert not any(holes), (path, split)
            seen[f"{path}/{split}"] = {"flips": flips, "offsets": offsets, "holes": sum(h is not None for h in holes)}
    for split in ("search_train", "eval_train"):  # and the two paths agree with each other
        dev, tv = seen[f"device/{split}"], seen[f"torchvision/{split}"]
        assert abs(dev["flips"] - tv["flips"]) < 0.15 and dev["offsets"] == tv["offsets"]
        assert dev["holes"] == tv["holes"]


def test_digits_keep_the_batches_they_always_had() -> None:
    """The digits' protocol augments nothing: both paths yield the plain normalised images."""
    spec = resolve("gdas", "s2-digits", "paper")
    assert spec.data == DataSpec(cutout=0, flip=False, crop_pad=0, path="device")
    for bench in ("nb1s1-digits", "nb1s2-orig-digits"):
        assert resolve("gdas", bench, "paper").data == spec.data
    bundle = hd.load("digits", augment=spec.data)
    assert isinstance(bundle.eval_train, torch.utils.data.TensorDataset)
    assert not any(r.augment.random for r in bundle.raw.values())


TINY_EVAL = {"eval_epochs": 1, "eval_batch": 8, "eval_layers": 2, "eval_channels": 4, "eval_subset": None}


@pytest.mark.parametrize("flip", [True, False])
def test_an_svhn_run_on_the_device_path_flips_as_its_spec_records(flip: bool, tmp_path: Path, root: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[torch.Tensor] = []
    apply = harness.data.device_data.apply

    def spy(aug: Augment, images: torch.Tensor, p: AugmentParams | None) -> torch.Tensor:
        if p is not None:  # a training batch: the flips it takes
            drawn.append(p.flip if aug.flip else torch.zeros_like(p.flip))
        return apply(aug, images, p)

    monkeypatch.setattr(harness.data.device_data, "apply", spy)
    cfg = fixed_config(genotype("DARTS_V2"), "DARTS_V2", "s1-svhn", "smoke", 0, **TINY_EVAL,
                       **{"data.flip": str(flip)})
    result = Run(cfg, tmp_path, data_root=str(root), device="cpu", tensorboard=False).execute()
    assert result["status"] == "complete", result.get("reason")
    assert result["config"]["data"] == {"cutout": 0, "flip": flip, "crop_pad": 4, "path": "device"}
    flips = torch.cat(drawn).double()
    assert len(flips) == N_TRAIN
    assert (0.3 < flips.mean().item() < 0.7) if flip else flips.sum().item() == 0


@pytest.mark.parametrize(("line", "fragment"), [
    ("--bench s0-imagenet --set data.crop_pad=4", "data.crop_pad=4: ImageNet crops with RandomResizedCrop"),
    ("--bench s1-c10 --set data.crop_pad=-1", "data.crop_pad=-1: must be >= 0"),
    ("--bench s1-c10 --set data.crop_pad=33", "data.crop_pad=33: must be <= the image size (32)"),
    ("--bench s2-digits --set data.crop_pad=two", "data.crop_pad='two': takes a int"),
])
def test_a_bad_crop_pad_is_one_line_before_any_work(line: str, fragment: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("validation let a bad data.crop_pad start work")

    monkeypatch.setattr(harness.cli.main, "run_many", no_work)
    monkeypatch.setattr(harness.runs.run.Run, "execute", no_work)
    out = tmp_path / "out"
    code = main(["run", "--method", "gdas", *line.split(), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_the_fields_list_names_crop_pad(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--fields"]) == 0
    assert "data.crop_pad=4" in capsys.readouterr().out
