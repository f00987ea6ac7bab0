"""The run folder's layout: the names of its files, the keys its checkpoints must hold, and the
documented schema of ``result.json`` (JSON Schema) with a validator.

A run folder ``OUT/<run_id>/`` holds ``config.json`` (the resolved spec, written when the run starts),
``log.txt``, ``search.pt`` and ``eval.pt`` (checkpoints, each with a ``*.prev.pt`` fallback), a ``.lock``
while a process runs it, TensorBoard events, and ``result.json`` once it is complete or failed.
"""

from __future__ import annotations

from typing import Any

import jsonschema

RESULT = "result.json"
CONFIG = "config.json"
LOG = "log.txt"
LOCK = ".lock"
CHECKPOINT = "search.pt"
EVAL_CHECKPOINT = "eval.pt"
#: keys a checkpoint must hold to be resumed from (one without them falls back to ``*.prev.pt``)
SEARCH_KEYS = ("method", "scheduler", "history", "next_epoch", "rng")
EVAL_KEYS = ("next_epoch", "model", "optimizer", "scheduler", "train_loss", "train_acc", "genotype", "rng", "loader")

_NUM = {"type": "number"}
_PAIRS = {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}],
                                     "minItems": 2, "maxItems": 2}}

#: per cell type, op probabilities (decisions x ops) and, where the method has them, edge weights
#: or inclusion probabilities (methods.base.SearchMethod.arch_weights)
ARCH_WEIGHTS = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["ops"],
    "properties": {"ops": {"type": "array", "items": {"type": "array", "items": {"type": "number", "minimum": 0,
                                                                                   "maximum": 1}}},
                   "edges": {"type": "array", "items": {"type": "number", "minimum": 0}}}}}

#: per cell type, the mean entropy (nats) of the op distributions and, where the method has edge
#: parameters, of the nodes' input distributions (harness.engine.search.arch_entropy); results made before
#: it was recorded have none
ENTROPY = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["ops"], "additionalProperties": False,
    "properties": {"ops": {"type": "number", "minimum": 0}, "edges": {"type": "number", "minimum": 0}}}}

HISTORY_ENTRY = {
    "type": "object",
    "required": ["epoch", "tau", "skip_connect_normal", "parameterless_normal", "genotype", "train_loss",
                 "train_acc"],
    "properties": {"epoch": {"type": "integer", "minimum": 0}, "tau": _NUM,
                   "skip_connect_normal": {"type": "integer", "minimum": 0},
                   "parameterless_normal": {"type": "integer", "minimum": 0},
                   "train_loss": _NUM, "train_acc": _NUM, "val_loss": _NUM, "val_acc": _NUM,
                   "genotype": {"type": "object"}, "arch_weights": ARCH_WEIGHTS,
                   "op_entropy_normal": {"type": "number", "minimum": 0}, "entropy": ENTROPY},
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "harness result.json",
    "type": "object",
    "required": ["run_id", "method", "options", "bench", "space", "dataset", "budget", "seed", "status", "config",
                 "env", "timings"],
    "properties": {
        "run_id": {"type": "string"},
        "method": {"type": "string"},
        "options": {"type": "object"},
        "bench": {"type": "string"},
        "space": {"type": "string"},
        "dataset": {"type": "string"},
        "budget": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "status": {"enum": ["complete", "failed"]},
        "reason": {"type": "string"},
        "config": {"type": "object",
                   "required": ["method", "options", "bench", "budget", "seed", "preset", "search", "eval", "data"]},
        "genotype": {"type": "object"},
        "search": {"type": "object", "required": ["history"],
                   "properties": {"history": {"type": "array", "items": HISTORY_ENTRY}}},
        "eval": {"type": "object", "required": ["test_error", "params", "macs"],
                 "properties": {"test_error": {"type": "number", "minimum": 0, "maximum": 100},
                                "params": {"type": "integer", "minimum": 0},
                                "macs": {"type": "integer", "minimum": 0}}},
        "env": {"type": "object", "required": ["python", "packages", "device", "git_commit", "config_hash"]},
        "timings": {"type": "object", "properties": {"search_s": _NUM, "eval_s": _NUM, "total_s": _NUM}},
    },
    "allOf": [{
        "if": {"properties": {"status": {"const": "complete"}}},
        "then": {"required": ["genotype", "search", "eval"]},
        "else": {"required": ["reason"]},
    }],
}

#: the genotype of the DARTS spaces
DARTS_GENOTYPE = {"type": "object", "required": ["normal", "normal_concat", "reduce", "reduce_concat"],
                  "properties": {"normal": _PAIRS, "reduce": _PAIRS}}


def validate_result(result: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``result`` does not follow :data:`RESULT_SCHEMA`."""
    jsonschema.validate(result, RESULT_SCHEMA)
