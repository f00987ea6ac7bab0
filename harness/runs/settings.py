"""The spec fields a run changes from the defaults of its method, benchmark, budget and preset.

A run's ``settings`` (``("search.a_lr=0.03",)``) are what ``--set`` would have to say to make its spec
from the defaults (:func:`harness.spec.runspec.resolve`); options are compared apart (``result["options"]``).
Reports label configurations by them and claims group runs into variants by them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from harness.spec.runspec import FIXED, RunSpec, resolve, resolve_fixed

#: the spec sections compared field by field with the defaults (``search.a_lr``, ``eval.epochs``, ...)
SPEC_SECTIONS = ("search", "eval", "data")


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """``{"search.a_lr": 3e-4, ...}``: the dotted fields of a spec's sections, and its ``preset``."""
    out = {f"{section}.{k}": v for section in SPEC_SECTIONS
           if isinstance(config.get(section), dict) for k, v in config[section].items()}
    out["preset"] = config.get("preset", "default")
    return out


@cache
def default_spec(method: str, bench: str, budget: str, preset: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The dotted fields and options of the spec a run of ``method`` on ``bench`` at ``budget`` with ``preset``
    gets without ``--set`` or options (:func:`harness.spec.runspec.resolve`), as ``result.json`` records them;
    ``None`` when that no longer resolves (a method or benchmark unknown to this version). Cached: one
    resolution per configuration family, however many runs."""
    try:
        if method == FIXED:
            spec = resolve_fixed("-", {}, bench, budget, preset=preset)
        else:
            spec = resolve(method, bench, budget, preset=preset)
    except (ValueError, KeyError, TypeError):  # SpecError is a ValueError
        return None
    recorded = _recorded(spec)
    return _flat(recorded), recorded["options"]


def _recorded(spec: RunSpec) -> dict[str, Any]:
    """``spec`` as ``result.json`` records it (tuples as lists)."""
    return json.loads(json.dumps(spec.to_dict()))


def _text(value: Any) -> str:
    """A field's value as ``--set`` takes it (``true``, ``none``, ``0.5,0.999``); floats exactly (``repr``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def spec_changes(r: dict[str, Any]) -> tuple[list[str], bool]:
    """``["search.a_lr=0.03", "preset=released"]``: the fields of a run's spec (outside its options) that
    differ from the defaults of its method, benchmark, budget and preset, sorted by name; and whether the
    run has the defaults throughout (options included)."""
    config = r.get("config") if isinstance(r.get("config"), dict) else {}
    key = tuple(str(config.get(k, r.get(k))) for k in ("method", "bench", "budget"))
    preset = str(config.get("preset", "default"))
    found = default_spec(*key, preset)
    flat = _flat(config)
    changes = [] if preset == "default" else [f"preset={preset}"]
    if found is None:
        return changes, False
    defaults, options = found
    changes += [f"{k}={_text(v)}" for k, v in sorted(flat.items())
                if k != "preset" and k in defaults and v != defaults[k]]
    same_options = key[0] == "fixed" or (r.get("options") or {}) == options
    return changes, not changes and same_options


def spec_settings(spec: RunSpec) -> list[str]:
    """:func:`spec_changes` of a run of the resolved ``spec``, before it is run."""
    return spec_changes({"config": _recorded(spec)})[0]
