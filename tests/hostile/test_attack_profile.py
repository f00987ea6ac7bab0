"""The ``harness profile`` items of issue 18's attack list, each reproduced first.

Absurd shapes gave tracebacks (exit 1: ``--batch-size 1000000000``, ``--batch-size 9223372036854775808``,
beyond int64, ``--channels 1000000``, ``--image-size 1000000``, ``--num-classes 1000000000000``) or hung
(``--layers 100000`` builds 100,000 cells, ``--steps 1000000000000`` never ends). Rule: every shape has a
range (``harness.evidence.profile.LIMITS``), shapes that are each in range but together huge meet the activation
bound of runs, and a refusal is one line on stderr with exit 2 before anything is built or created.

Work is impossible here: ``profile_step`` and ``data.load`` fail the test, so a line that slips through
validation is caught before it builds a supernet; the current folder is the test's own.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import harness.data.datasets
import harness.evidence.profile
from harness.cli.main import main
from harness.evidence.profile import ProfileConfig, check_config
from tests.hostile.refusal import assert_refused


class SlippedThrough(AssertionError):
    """A bad command line reached the point where work starts."""


# (arguments after `harness profile --method M`, a fragment the one-line message must contain)
ATTACKS: list[tuple[str, str]] = [
    # tracebacks (exit 1) before
    ("--batch-size 1000000000", "--batch-size must be <= 65536, got 1000000000"),
    ("--batch-size 9223372036854775808", "--batch-size must be <= 65536, got 9223372036854775808"),
    ("--channels 1000000", "--channels must be <= 1024, got 1000000"),
    ("--image-size 1000000", "--image-size must be <= 512, got 1000000"),
    ("--num-classes 1000000000000", "--num-classes must be <= 100000, got 1000000000000"),
    # hangs before
    ("--layers 100000", "--layers must be <= 100, got 100000"),
    ("--steps 1000000000000", "--steps must be <= 1000, got 1000000000000"),
    # the same family: in range each, huge together; a distribution of one draw; seeds numpy refuses
    ("--batch-size 4096 --image-size 512", "TiB of activations"),
    ("--subnets 1", "--subnets must be 0 (no distribution) or 2..1000, got 1"),
    ("--subnets 1000000000", "--subnets must be 0 (no distribution) or 2..1000"),
    ("--seed -1", "--seed must be in 0..4294967295"),
    ("--seed 4294967296", "--seed must be in 0..4294967295"),
    ("--batch-size -9223372036854775809", "--batch-size must be >= 1"),
]


@pytest.fixture
def no_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def fail(*args, **kwargs):
        raise SlippedThrough("validation let a bad profile start work")

    monkeypatch.setattr(harness.evidence.profile, "profile_step", fail)
    monkeypatch.setattr(harness.data.datasets, "load", fail)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("method", ["darts", "rome-v2"])
@pytest.mark.parametrize(("args", "fragment"), ATTACKS, ids=[a for a, _ in ATTACKS])
def test_absurd_profile_shape_is_refused_before_work(args: str, fragment: str, method: str, no_work: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["profile", "--method", method, *shlex.split(args), "--out", str(no_work / "out")]
    assert_refused(argv, fragment, capsys)
    assert list(no_work.iterdir()) == []  # no --out folder, nothing in the current folder


def test_partial_ratio_that_does_not_divide_the_channels(no_work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PC-DARTS's M must divide the channels: refused like a run's spec, not when the supernet is built."""
    assert main(["profile", "--method", "pcdarts", "--partial", "4", "--channels", "6"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not divisible by the partial ratio" in err[0]


def test_the_limits_let_the_papers_shapes_through(no_work: Path) -> None:
    """Table 7's shape and large ones in use (DARTS's evaluation size, ImageNet images and classes) pass."""
    check_config(ProfileConfig(method="rome-v2"))
    check_config(ProfileConfig(method="darts", bench="s0-c100", batch_size=96, channels=36, layers=20))
    check_config(ProfileConfig(method="gdas", image_size=224, num_classes=1000, batch_size=16, layers=14))


def test_profile_step_checks_too() -> None:
    """The library entry point refuses what the command refuses (no CLI in between)."""
    with pytest.raises(ValueError, match="--layers must be <= 100"):
        harness.evidence.profile.profile_step(ProfileConfig(method="darts", layers=100000), "cpu")
