"""The command-line and run-spec items of issue 18's attack list, each reproduced first.

Rules (docs/run-folders.md "Hostile input"):

* refused (exit 2, one line on stderr, nothing created): a job option out of its range (``--workers``
  1..1024, ``--mem-gb`` finite in (0, 65536]), ``--seed`` together with ``--seeds``, a ``--set`` name
  given twice (an alias and its dotted name count as one name), a flag and a ``--set`` of the same
  field, an empty ``--out``/``--data-root``, a spec value beyond ``harness.spec.runspec.LIMITS`` or below
  ``TAU_MIN``, a cutout wider than the image, evaluation shapes over the memory bound, a malformed
  ``--k-sweep``;
* accepted with a note on stderr: a seed, method or K repeated in its list runs once.

As in ``test_bad_command_lines.py``, work is impossible here (``run_many`` and ``Run.execute`` fail the
test), and the current folder is the test's own, so ``--out ''`` writing there is seen.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import harness.cli.main
import harness.runs.run
from harness.cli.main import main
from harness.spec.benchmarks import BENCHMARKS, BUDGETS, PRESETS
from harness.spec.runspec import resolve
from tests.hostile.refusal import assert_refused

# (command line, a fragment the one-line message must contain)
BAD: list[tuple[str, str]] = [
    # job options: bounded, finite
    ("run --workers 99999999999999999", "--workers must be <= 1024, got 99999999999999999 (valid: 1..1024)"),
    ("run --workers 1025", "--workers must be <= 1024"),
    ("run --mem-gb nan", "--mem-gb must be a finite number, got nan"),
    ("run --mem-gb inf", "--mem-gb must be a finite number, got inf"),
    ("run --mem-gb -inf", "--mem-gb must be a finite number"),
    ("run --mem-gb 1e9", "--mem-gb must be <= 65536"),
    ("run --gpus 100000", "--gpus must be <= 64"),
    ("run --gpus-per-run 100000", "--gpus-per-run must be <= 64"),
    ("run --time-min 99999999999", "--time-min must be <= 525600"),
    # contradictory options
    ("run --seed 1 --seeds 2,3", "--seed 1 and --seeds 2,3: give one of them"),
    ("run --set eval_lr=0.1 --set eval.lr=0.2", "--set eval.lr given twice ('eval_lr=0.1' and 'eval.lr=0.2')"),
    ("run --set eval.lr=0.1 --set eval.lr=0.1", "--set eval.lr given twice"),
    ("run --set k=3 --set options.k=4", "--set options.k given twice"),
    ("eval --genotype DARTS_V2 --set cutout=0 --set data.cutout=8 --count-only", "--set data.cutout given twice"),
    ("run --epochs 3 --set search.epochs=4", "--epochs 3 and --set search.epochs=4: give one of them"),
    ("run --k 3 --set options.k=4", "--k 3 and --set options.k=4: give one of them"),
    ("run --k 3 --set k=4", "--k 3 and --set options.k=4"),
    # an empty folder name is the current folder
    ("run --out ''", "--out '': an empty folder name"),
    ("run --out ' '", "--out ' ': an empty folder name"),
    ("run --data-root ''", "--data-root '': an empty folder name"),
    ("run --executor slurm --slurm-folder ''", "--slurm-folder '': an empty folder name"),
    ("eval --genotype DARTS_V2 --bench s0-digits --budget check --out ''", "--out '': an empty folder name"),
    ("eval --genotype DARTS_V2 --bench s0-digits --budget check --data-root ''", "--data-root ''"),
    # values no experiment means, which failed or hung hours into the run
    ("run --set eval.lr=1e300", "eval.lr=1e+300: must be <= 10"),
    ("run --set search.w_lr=11", "search.w_lr=11.0: must be <= 10"),
    ("run --set search.a_lr=1e5", "search.a_lr=100000.0: must be <= 10"),
    ("run --set eval.weight_decay=2", "eval.weight_decay=2.0: must be <= 1"),
    ("run --set search.tau_max=1e308", "search.tau_max=1e+308: must be <= 1000"),
    ("run --set search.tau_max=1e-308 --set search.tau_min=1e-308", "search.tau_max=1e-308: must be >= 0.001"),
    ("run --set search.tau_min=1e-308", "search.tau_min=1e-308: must be >= 0.001"),
    ("run --set data.cutout=999999999", "data.cutout=999999999: must be <= the image size (16)"),
    ("run --bench s0-c10 --set data.cutout=33", "data.cutout=33: must be <= the image size (32)"),
    ("run --set eval.epochs=100000", "eval.epochs=100000: must be <= 10000"),
    ("run --set search.epochs=100000", "search.epochs=100000: must be <= 10000"),
    # the evaluation network's shapes: layers bounded, and all shapes under the memory bound
    ("run --set eval.layers=1000000000", "eval.layers=1000000000: must be <= 100"),
    ("run --set eval.layers=101", "eval.layers=101: must be <= 100"),
    ("run --set search.layers=101", "search.layers=101: must be <= 100"),
    ("run --set eval.channels=9999999", "eval.channels=9999999: must be <= 1024"),
    ("run --set eval.channels=1024 --set eval.batch=65536", "TiB of activations and weights"),
    ("run --bench s0-c10 --budget paper --set eval.layers=100 --set eval.batch=4096",
     "eval.layers=100, eval.channels=36, eval.batch=4096: about"),
    ("eval --genotype DARTS_V2 --bench s0-digits --set eval.channels=1024 --set eval.batch=65536 --count-only",
     "TiB of activations and weights"),
    # --k-sweep: the strict list parser of every other integer list
    ("run --k-sweep ,,3", "--k-sweep expected comma-separated integers, got ',,3' (an empty item)"),
    ("run --k-sweep ''", "--k-sweep expected comma-separated integers"),
    ("run --k-sweep 3,", "an empty item"),
    ("run --k-sweep 3,x", "--k-sweep expected comma-separated integers, got '3,x'"),
]


class SlippedThrough(AssertionError):
    """A bad command line reached the point where work starts."""


@pytest.fixture
def no_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def fail(*args, **kwargs):
        raise SlippedThrough("validation let a bad command line start work")

    monkeypatch.setattr(harness.cli.main, "run_many", fail)
    monkeypatch.setattr(harness.runs.run.Run, "execute", fail)
    monkeypatch.chdir(tmp_path)  # `--out ''` would write here
    return tmp_path


@pytest.mark.parametrize(("line", "fragment"), BAD, ids=[row[0] for row in BAD])
def test_attack_line_is_refused(line: str, fragment: str, no_work: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = shlex.split(line)
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(no_work / "out")]
    assert_refused(argv, fragment, capsys)
    assert list(no_work.iterdir()) == []  # no --out, no probe file, nothing in the current folder


@pytest.mark.parametrize(("option", "value", "note"), [
    ("--seeds", "0,0,1,1", "note: --seeds names 0, 1 more than once; each runs once"),
    ("--method", "gdas,rome-v2,gdas", "note: --method names gdas more than once; each runs once"),
    ("--k-sweep", "2,3,2", "note: --k-sweep names 2 more than once; each runs once"),
])
def test_a_repeated_list_item_runs_once_with_a_note(option: str, value: str, note: str, no_work: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--budget", "check", "--dry-run", "--out", str(no_work / "out"), option, value])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.splitlines() == [note]
    ids = [c["run_id"] for c in json.loads(captured.out)]
    unique = list(dict.fromkeys(x.strip() for x in value.split(",")))
    assert len(ids) == len(set(ids)) == len(unique)


def test_every_shipped_protocol_is_within_the_limits() -> None:
    """The limits refuse typos only: every benchmark x budget x preset, at the default and the largest
    K the paper uses, resolves (the paper's ImageNet evaluation, batch 1024 at 224 pixels, included)."""
    for bench in BENCHMARKS:
        for budget in BUDGETS:
            for preset in PRESETS:
                for method, options in (("rome-v2", {"k": 7}), ("gdas", {}), ("pcdarts", {})):
                    resolve(method, bench, budget, options=options, preset=preset)


def test_list_fields_states_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--fields"]) == 0
    limits = [line for line in capsys.readouterr().out.splitlines() if line.startswith("limits:")]
    assert len(limits) == 1
    for fragment in ("eval.lr <= 10", "eval.layers <= 100", "search.tau_max and search.tau_min >= 0.001",
                     "data.cutout <= the image size"):
        assert fragment in limits[0]


def test_the_smallest_tau_keeps_sampling_finite() -> None:
    """``search.tau_min=1e-308`` passed validation, then the run failed: in float32 that tau is 0 and
    the relaxed weights are NaN. At ``TAU_MIN`` both the samples and their gradients stay finite."""
    import torch

    from harness.spec.runspec import TAU_MIN
    from methods.sampling import gumbel_softmax_st, gumbel_topk

    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(64, 8, generator=gen) * 30).requires_grad_()
    hard, _ = gumbel_softmax_st(logits, TAU_MIN, generator=gen)
    mask = gumbel_topk(logits, 2, TAU_MIN, generator=gen)
    ((hard + mask) * torch.randn(64, 8, generator=gen)).sum().backward()
    assert torch.isfinite(hard).all() and torch.isfinite(mask).all() and torch.isfinite(logits.grad).all()
    assert not torch.isfinite(gumbel_softmax_st(logits.detach(), 1e-308, generator=gen)[0]).all()
