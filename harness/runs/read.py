"""Reading run folders that may be broken or hostile (``status``, ``report``, ``check``, resume).

One function, :func:`read_result`, decides whether a ``result.json`` can be trusted: it must be a
regular file (a FIFO would hang the reader, a directory crash it; neither is opened), hold JSON of
sane size and nesting, and validate against the documented schema (:mod:`harness.runs.layout`) plus a few
rules the schema cannot say (a complete result's genotype is a genotype, integers fit 64 bits).
Anything else comes back with a one-line reason and is listed as ``unreadable: <reason>``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema

from harness.runs.layout import RESULT, RESULT_SCHEMA
from harness.runs.storage import describe_mode
from harness.spec.runspec import config_hash
from spaces.genotype import from_dict

#: larger result files are refused unread (a real one is a few hundred kB at most)
MAX_BYTES = 64 * 2**20
MAX_DEPTH = 64
_INT_LIMIT = 2**63


def _without_weight_items(schema: dict[str, Any]) -> dict[str, Any]:
    """:data:`RESULT_SCHEMA` with the per-number rules of ``arch_weights`` left to :func:`_weights_problem`.

    Those numbers are most of a result (decisions x ops per cell and epoch): jsonschema's generic walk
    over them took 85 % of ``harness status`` (11 of 13 s for 1,000 runs); the same rules checked in a
    plain loop cost a few per cent of that. Nothing else of the schema changes.
    """
    out = copy.deepcopy(schema)
    entry = out["properties"]["search"]["properties"]["history"]["items"]
    entry["properties"]["arch_weights"] = {"type": "object"}
    return out


_VALIDATOR = jsonschema.Draft202012Validator(_without_weight_items(RESULT_SCHEMA))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _weights_problem(history: list[Any]) -> str | None:
    """The rules of :data:`harness.runs.layout.ARCH_WEIGHTS` (per cell an object with ``ops``, a list of lists of
    numbers in [0, 1], and optional ``edges``, a list of numbers >= 0), with jsonschema's reason format."""
    for i, entry in enumerate(history):
        weights = entry.get("arch_weights") if isinstance(entry, dict) else None
        if weights is None:
            continue
        where = f"schema: search/history/{i}/arch_weights"
        for cell, w in weights.items():
            if not isinstance(w, dict):
                return f"{where}/{cell}: {w!r:.60} is not of type 'object'"
            if "ops" not in w:
                return f"{where}/{cell}: 'ops' is a required property"
            ops, edges = w["ops"], w.get("edges", [])
            if not isinstance(ops, list):
                return f"{where}/{cell}/ops: {ops!r:.60} is not of type 'array'"
            for d, row in enumerate(ops):
                if not isinstance(row, list):
                    return f"{where}/{cell}/ops/{d}: {row!r:.60} is not of type 'array'"
                for j, v in enumerate(row):
                    if not _is_number(v):
                        return f"{where}/{cell}/ops/{d}/{j}: {v!r:.60} is not of type 'number'"
                    if v < 0 or v > 1:
                        return f"{where}/{cell}/ops/{d}/{j}: {v!r} is not in [0, 1]"
            if not isinstance(edges, list):
                return f"{where}/{cell}/edges: {edges!r:.60} is not of type 'array'"
            for j, v in enumerate(edges):
                if not _is_number(v) or v < 0:
                    return f"{where}/{cell}/edges/{j}: {v!r:.60} is not a number >= 0"
    return None


class Unreadable(ValueError):
    """A file of a run folder that cannot be used; the message is the reason, one line."""


def read_json_file(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """Parse ``path`` as JSON; :class:`Unreadable` with the reason for anything else.

    The file is checked with ``stat`` before it is opened (a FIFO or directory is refused, never
    opened), opened non-blocking and checked again (it may have been swapped in between).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise Unreadable(f"cannot stat: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable(f"{describe_mode(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        raise Unreadable(f"{st.st_size} bytes, larger than {max_bytes}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise Unreadable(f"cannot open: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unreadable("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise Unreadable("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Unreadable(f"not usable JSON ({str(exc).splitlines()[0][:80]})") from None
    problem = _sanity(data)
    if problem:
        raise Unreadable(problem)
    return data


def _sanity(data: Any) -> str | None:
    """Nesting deeper than :data:`MAX_DEPTH` or integers beyond 64 bits (iteratively: no recursion).

    Only containers go on the stack; the scalars (most of a result: the recorded weights) are checked in
    the one pass over their container, which halves the cost of reading a run folder.
    """
    if not isinstance(data, dict | list):
        return "an integer does not fit in 64 bits" if type(data) is int and abs(data) >= _INT_LIMIT else None
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        values = item.values() if isinstance(item, dict) else item
        if values and depth >= MAX_DEPTH:
            return f"JSON nested deeper than {MAX_DEPTH} levels"
        for v in values:
            if isinstance(v, dict | list):
                stack.append((v, depth + 1))
            elif type(v) is int and abs(v) >= _INT_LIMIT:
                return "an integer does not fit in 64 bits"
    return None


@dataclass
class ReadResult:
    """A ``result.json`` and whether it can be trusted: ``data`` when it can, else ``reason``."""

    path: Path
    data: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def complete(self) -> bool:
        return self.data is not None and self.data.get("status") == "complete"


def schema_problem(data: Any) -> str | None:
    """The first way ``data`` breaks :data:`~harness.runs.layout.RESULT_SCHEMA` (or the genotype rules), else None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    try:
        error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(data))
    except RecursionError:
        return "JSON nested too deeply"
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        return f"schema: {where}: {error.message[:120]}"
    search = data.get("search")
    if isinstance(search, dict) and (problem := _weights_problem(search.get("history") or [])):
        return problem
    for name in ("run_id", "method", "bench", "budget"):
        if not data[name]:
            return f"schema: {name} is empty"
    if data["status"] == "complete":
        ev = data["eval"]
        if not (isinstance(ev["test_error"], int | float) and math.isfinite(ev["test_error"])):
            return f"complete but test_error is {ev['test_error']}"
        genotype = data["genotype"]
        if "normal" in genotype:  # the DARTS cell format (other spaces record their own)
            try:
                from_dict(genotype)
            except ValueError as exc:
                return f"invalid genotype: {str(exc)[:120]}"
    return None


def read_result(path: Path) -> ReadResult:
    """Read and check one ``result.json`` (never raises for what the file holds)."""
    path = Path(path)
    try:
        data = read_json_file(path)
    except Unreadable as exc:
        return ReadResult(path, reason=str(exc))
    problem = schema_problem(data)
    if problem:
        return ReadResult(path, reason=problem)
    return ReadResult(path, data=data)


def read_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict; ``{}`` when it is missing or unusable."""
    try:
        data = read_json_file(path)
    except Unreadable:
        return {}
    return data if isinstance(data, dict) else {}


def find_results(root: Path, name: str = RESULT) -> list[Path]:
    """Every ``name`` under ``root`` (any depth), sorted; symbolic links to folders are not followed
    and unreadable folders are skipped (``os.walk``)."""
    found = []
    for folder, dirs, files in os.walk(root, onerror=lambda exc: None):
        dirs.sort()
        if name in files or name in dirs:  # a directory named result.json is reported, not skipped
            found.append(Path(folder) / name)
    return sorted(found)


def config_id(config: Mapping[str, Any], without: Iterable[str] = ()) -> str:
    """The configuration a run belongs to: :func:`harness.runs.results.config_hash` (the hash behind the run id)
    of its resolved spec (``result["config"]``) with the seed removed, so that runs which differ only in
    the seed share it and runs which differ in anything else never do. ``without``: further dotted names
    left out (``options.k``: the runs of one K sweep share the id)."""
    drop = {"seed", *without}
    tree: dict[str, Any] = {}
    for key, value in config.items():
        if key in drop:
            continue
        if isinstance(value, dict) and any(name.startswith(f"{key}.") for name in drop):
            value = {k: v for k, v in value.items() if f"{key}.{k}" not in drop}
        tree[key] = value
    return config_hash(tree)


_Item = TypeVar("_Item")


def one_per_run_id(items: Iterable[_Item], run_id: Callable[[_Item], str],
                   folder: Callable[[_Item], Path]) -> tuple[list[_Item], list[str]]:
    """One item per run id, and a warning naming each other copy: a run folder copied within the runs
    folder (``cp -r run run.bak``) holds the same run id, and counted twice it would pass for another
    seed. The copy kept is the one in a folder named after the run id, then the shallowest, then the
    first by path; the items come back sorted by folder."""
    by_id: dict[str, list[_Item]] = {}
    for item in items:
        by_id.setdefault(run_id(item), []).append(item)
    kept, warnings = [], []
    for rid, copies in by_id.items():
        copies.sort(key=lambda c: (folder(c).name != rid, len(folder(c).parts), str(folder(c))))
        kept.append(copies[0])
        warnings += [f"{folder(c)}: run {rid} again (a copy of {folder(copies[0])}); counted once" for c in copies[1:]]
    kept.sort(key=lambda c: str(folder(c)))
    return kept, warnings
