"""Parsing of list-valued command-line options, strict: an empty item or list is an error, not a no-op.

``--seeds ,,,`` once ran nothing and exited 0, ``--seeds ""`` silently ran seed 0 and
``--bench ""`` did nothing; each now fails before any work with one line saying what is valid.
Contradictory options (``--seed 1 --seeds 2,3``) are an error too, since either reading could be
the one meant; a value repeated in a list (``--seeds 0,0``) only names the same run twice, so it is
dropped with a note (:func:`unique`) and the run runs once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import click
import torch

import methods
from harness.runs.storage import probe_writable
from harness.spec.runspec import MAX_SEED
from methods.base import option_fields

T = TypeVar("T", bound=Hashable)



def int_list(text: str, option: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``ValueError`` for an empty list or item, or a non-integer."""
    items = [x.strip() for x in text.split(",")]
    if not any(items) or not all(items):
        raise ValueError(f"{option} expected comma-separated integers, got '{text}' (an empty item)")
    try:
        return [int(x) for x in items]
    except ValueError:
        raise ValueError(f"{option} expected comma-separated integers, got '{text}'") from None


def seed_list(seed: int | None, seeds: str | None) -> list[int]:
    """The seeds of ``--seed`` or ``--seeds`` (default ``[0]``), each in ``0..2**32-1``; both options
    together are an error (``--seeds`` used to win without a word)."""
    if seed is not None and seeds is not None:
        raise ValueError(f"--seed {seed} and --seeds {seeds}: give one of them (--seeds takes a list)")
    out = int_list(seeds, "--seeds") if seeds is not None else [0 if seed is None else seed]
    for s in out:
        if s < 0:
            raise ValueError(f"seed must be >= 0, got {s}")
        if s > MAX_SEED:
            raise ValueError(f"seed must be <= {MAX_SEED} (numpy's seed range), got {s}")
    return out


def name_list(text: str, option: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``; ``ValueError`` for an empty list or item."""
    items = [x.strip() for x in text.split(",")]
    if not all(items):
        raise ValueError(f"{option} expected comma-separated names, got '{text}' (an empty item)")
    return items


def folder(text: str | None, option: str) -> None:
    """``ValueError`` for an empty folder name: ``Path("")`` is the current folder, so ``--out ''``
    wrote run folders wherever the command was started; ``.`` says that on purpose."""
    if text is not None and not text.strip():
        raise ValueError(f"{option} '{text}': an empty folder name; give a folder (. for the current one)")


def unique(values: list[T], option: str, note: Callable[[str], None]) -> list[T]:
    """``values`` without repeats, first occurrence kept; ``note`` gets one line naming the repeats.

    A repeated seed, method or K names the same run (the same run id) twice: running it once is what
    the command means, and the note says so rather than erroring on a harmless typo."""
    out = list(dict.fromkeys(values))
    if len(out) < len(values):
        twice = dict.fromkeys(v for i, v in enumerate(values) if v in values[:i])
        shown = ", ".join(str(v) for v in twice)
        note(f"note: {option} names {shown} more than once; each runs once")
    return out


class HarnessError(click.ClickException):
    exit_code = 2


def note(line: str) -> None:
    """A note on stderr that does not stop the command (stdout stays the command's output, e.g. JSON)."""
    click.echo(line, err=True)


def method_option_params() -> list[click.Option]:
    """One click option per method option declared in the registry (``methods.base.option``), generated
    when a command is parsed, so a method registered later gets its flags too."""
    owners: dict[str, list[str]] = {}
    decl: dict[str, Any] = {}
    for name, cls in sorted(methods.METHODS.items()):
        for f in option_fields(cls.Options):
            owners.setdefault(f.name, []).append(name)
            decl.setdefault(f.name, f)
    params = []
    for key, f in decl.items():
        flag, kind = key.replace("_", "-"), type(f.default)
        text = f"{f.metadata.get('help', key)} [{', '.join(owners[key])}; default {f.default}]"
        if kind is bool:
            params.append(click.Option([f"--{flag}/--no-{flag}", key], default=None, help=text))
        else:
            params.append(click.Option([f"--{flag}", key], type=kind, default=None, help=text))
    return params


class WithMethodOptions(click.Command):
    """A command that also takes every registered method's option flags (``--k``, ``--td/--no-td``, ...)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        own = super().get_params(ctx)
        names = {p.name for p in own}
        return [*own, *(p for p in method_option_params() if p.name not in names)]


def method_options(**kw: Any) -> dict[str, Any]:
    """Method options given on the command line (unset ones stay the method's defaults)."""
    known = {p.name for p in method_option_params()}
    return {k: v for k, v in kw.items() if v is not None and k in known}


executor_options = [
    click.option("--executor", default="local", show_default=True, metavar="local|slurm",
                 help="local: this machine (--workers processes at once); slurm: one submitit job array"),
    click.option("--workers", type=int, default=1, show_default=True,
                 help="runs at once (local processes, or Slurm array tasks)"),
    click.option("--partition", default=None, help="Slurm partition"),
    click.option("--time-min", type=int, default=None, help="time limit per job in minutes (Slurm default: 3 days)"),
    click.option("--gpus", type=int, default=0, show_default=True, help="GPUs per job"),
    click.option("--gpus-per-run", type=int, default=1, show_default=True,
                 help="processes (GPUs) per run, joined by torch.distributed DDP (Slurm tasks per node)"),
    click.option("--mem-gb", type=float, default=None, help="memory per job in GB"),
    click.option("--slurm-folder", default=None, help="submitit logs and pickles (default: OUT/.submitit)"),
]


def with_options(options: list[Any]):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


def check_device(name: str | None, here: bool = True) -> str | None:
    """A device torch knows and, when the runs are ``here`` (not on Slurm's nodes), this machine has:
    a wrong one would fail every run of a sweep."""
    if name is None:
        return None
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise HarnessError(f"unknown device '{name}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and here:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise HarnessError(f"--device {name}: no CUDA device is available on this machine")
        if dev.index is not None and dev.index >= count:
            raise HarnessError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif dev.type != "cpu":
        raise HarnessError(f"unsupported device '{name}'; use cpu, cuda or cuda:N")
    return name


def writable(path: Path) -> Path:
    try:
        probe_writable(path)  # a unique probe file: concurrent runs do not remove each other's
    except OSError as exc:
        raise HarnessError(f"output folder {path} is not writable: {exc.strerror}") from None
    return path
