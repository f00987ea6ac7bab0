"""Parsing of list-valued command-line options, strict: an empty item or list is an error, not a no-op.

``--seeds ,,,`` once ran nothing and exited 0, ``--seeds ""`` silently ran seed 0 and
``--bench ""`` did nothing; each now fails before any work with one line saying what is valid.
Contradictory options (``--seed 1 --seeds 2,3``) are an error too, since either reading could be
the one meant; a value repeated in a list (``--seeds 0,0``) only names the same run twice, so it is
dropped with a note (:func:`unique`) and the run runs once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

#: numpy's legacy seeding takes 32-bit seeds (``np.random.seed``)
MAX_SEED = 2**32 - 1


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
