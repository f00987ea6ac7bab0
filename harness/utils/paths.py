"""File names derived from data, and the rule that every write stays inside ``--out``.

Run ids, genotype labels, benchmark and method names come from command lines, genotype files and
``result.json`` files that anyone may have edited; a run id of ``../../x`` once wrote figures four
folders above the report. :func:`slug` turns any such text into one safe file-name component, and
:func:`child` refuses a path that resolves outside its root.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

#: characters a slug keeps; every other run of characters becomes one ``_``
_UNSAFE = re.compile(r"[^A-Za-z0-9.=-]+")
MAX_LEN = 150  # file-name components are limited to 255 bytes; leave room for suffixes


class PathEscape(ValueError):
    """A path derived from data resolves outside the folder it must stay in."""


def slug(*parts: Any, max_len: int = MAX_LEN) -> str:
    """One safe file-name component from ``parts`` (``None`` parts left out), joined by ``_``.

    Letters, digits and ``. = -`` are kept, anything else (``/``, ``\\``, spaces, ``$``, control
    characters) becomes ``_``; leading and trailing ``_`` and ``.`` are stripped, so the result is
    never ``.``, ``..`` or hidden. A name that needed changing, or is longer than ``max_len``, gets
    8 hex digits of the SHA-256 of the original text appended, so two different names never share a
    slug by accident; a name that is already safe is returned unchanged (existing run folders keep
    their names).
    """
    text = "_".join(str(p) for p in parts if p is not None)
    safe = _UNSAFE.sub("_", text).strip("_.")
    if safe == text and 0 < len(safe) <= max_len:
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[: max_len - 9]}_{digest}" if safe else f"unnamed_{digest}"


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symbolic links followed) to ``root`` or below it."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def child(root: Path, *names: str) -> Path:
    """``root / names...``, each name slugged; :class:`PathEscape` if it would resolve outside ``root``
    (e.g. through a symbolic link planted in the folder)."""
    path = Path(root).joinpath(*(slug(n) for n in names))
    if not inside(root, path):
        raise PathEscape(f"{path} resolves outside {root}; refusing to write there")
    return path
