"""A folder of hostile run folders (issue 13, points 5 and 6), built fresh in a temporary folder.

:func:`build` writes them and returns which folders ``status`` and ``report`` must list as
``unreadable`` (with a fragment of the reason) and which are odd but valid (trusted, drawn, escaped).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from harness.spec.runspec import make_config
from spaces.genotype import KNOWN, to_dict

GENOTYPE = to_dict(KNOWN["DARTS_V2"])


def valid_result(run_id: str, **changes: Any) -> dict[str, Any]:
    """A complete result that validates against ``harness.runs.layout.RESULT_SCHEMA``."""
    options = {"k": 7, "td": True, "ga_theta": True, "ga_alpha": True}
    result = {
        "run_id": run_id, "method": "rome-v2", "options": options, "bench": "s0-c10", "space": "s0",
        "dataset": "c10", "budget": "smoke", "seed": 0, "status": "complete",
        "config": make_config("rome-v2", "s0-c10", "smoke", 0, search_epochs=1, eval_epochs=1).to_dict(),
        "genotype": GENOTYPE,
        "search": {"history": [{"epoch": 0, "tau": 1.0, "skip_connect_normal": 2, "parameterless_normal": 2,
                                "genotype": GENOTYPE, "train_loss": 2.0, "train_acc": 20.0}]},
        "eval": {"test_error": 12.5, "params": 1000, "macs": 20000},
        "env": {"python": "3.11", "packages": {}, "device": "cpu", "git_commit": None, "config_hash": "0" * 64},
        "timings": {"search_s": 1.0, "eval_s": 1.0, "total_s": 2.0},
    }
    result.update(changes)
    return result


def _deep(n: int) -> str:
    return "[" * n + "]" * n


#: name -> result.json text (``None``: built by hand in :func:`build`) and a fragment of the reason
UNREADABLE: dict[str, tuple[str | None, str]] = {
    "list": ("[]", "a JSON list, not an object"),
    "only_status": ('{"status": "complete"}', "schema"),
    "truncated": ('{"status": "comp', "not valid JSON"),
    "empty_file": ("", "not valid JSON"),
    "deep_array": (_deep(200_000), "nested too deeply"),
    "deep_but_parsable": ('{"a": ' + _deep(500) + "}", "nested deeper than 64"),
    "huge_int_64": (None, "does not fit in 64 bits"),
    "huge_int_digits": ('{"seed": ' + "7" * 5000 + "}", "not usable JSON"),
    "eval_string": (None, "schema: eval"),
    "method_list": (None, "schema: method"),
    "status_weird": (None, "schema"),
    "options_list": (None, "schema: options"),
    "history_dict": (None, "schema: search/history"),
    "invalid_genotype": (None, "invalid genotype"),
    "nan_test_error": (None, "test_error is nan"),
    "negative_seed": (None, "schema: seed"),
    "empty_method": (None, "method is empty"),
    "not_utf8": (None, "not UTF-8"),
    "result_is_dir": (None, "a directory, not a regular file"),
    "result_is_fifo": (None, "a FIFO, not a regular file"),
    "dangling_link": (None, "cannot stat"),
    "complete_without_eval": (None, "schema"),
}

#: valid results whose strings are hostile: trusted, but escaped wherever they are shown
ODD_BUT_VALID = ["dollar_op", "html_strings", "traversal_id", "absolute_id"]

#: folders that are runs without a result (status: unfinished), with broken parts
BROKEN_UNFINISHED = ["lock_is_dir", "log_is_dir", "config_is_fifo", "checkpoint_is_dir", "checkpoint_garbage"]


def build(root: Path, outside: Path) -> dict[str, str]:
    """Write the hostile folders under ``root``; ``outside`` is where a traversal would land."""
    root.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (text, reason) in UNREADABLE.items():
        d = root / name
        d.mkdir()
        expected[name] = reason
        if text is not None:
            (d / "result.json").write_text(text)
    edits: dict[str, dict[str, Any]] = {
        "huge_int_64": {"eval": {"test_error": 1.0, "params": 10**30, "macs": 1}},
        "eval_string": {"eval": "x"},
        "method_list": {"method": ["rome-v2"]},
        "status_weird": {"status": "done-ish"},
        "options_list": {"options": [1, 2]},
        "history_dict": {"search": {"history": {"epoch": 0}}},
        "invalid_genotype": {"genotype": {"normal": [["sep_conv_3x3", 9]] * 2, "reduce": []}},
        "nan_test_error": {"eval": {"test_error": float("nan"), "params": 1, "macs": 1}},
        "negative_seed": {"seed": -4},
        "empty_method": {"method": ""},
    }
    for name, change in edits.items():
        (root / name / "result.json").write_text(json.dumps(valid_result(name, **change)))
    no_eval = valid_result("complete_without_eval")
    del no_eval["eval"]
    (root / "complete_without_eval" / "result.json").write_text(json.dumps(no_eval))
    (root / "not_utf8" / "result.json").write_bytes(b'{"run_id": "\xff\xfe"}')
    (root / "result_is_dir" / "result.json").mkdir()
    os.mkfifo(root / "result_is_fifo" / "result.json")
    (root / "dangling_link" / "result.json").symlink_to(root / "no-such-file")

    # odd but valid: strings that are markup elsewhere, run ids that are paths
    dollar = copy.deepcopy(GENOTYPE)
    dollar["normal"][0][0] = "$\\frac{1}{"  # an unknown op name, but a string: mathtext would fail on it
    odd = {
        "dollar_op": valid_result("dollar $x^ op", genotype=dollar),
        "html_strings": valid_result("<script>alert(1)</script>|a\nb", bench="s0-c10",
                                     method="rome-v2<img src=x onerror=alert(1)>",
                                     budget="[click](javascript:alert(1))"),
        "traversal_id": valid_result("../../../../" + outside.name + "/x"),
        "absolute_id": valid_result(str(outside / "abs")),
    }
    for name, result in odd.items():
        (root / name).mkdir()
        (root / name / "result.json").write_text(json.dumps(result))

    # runs without a result, with broken parts: status must not crash or hang on them
    for name in BROKEN_UNFINISHED:
        (root / name).mkdir()
    (root / "lock_is_dir" / ".lock").mkdir()
    (root / "lock_is_dir" / "config.json").write_text(json.dumps({"method": "rome-v2", "bench": "s0-c10", "seed": 0}))
    (root / "log_is_dir" / "log.txt").mkdir()
    os.mkfifo(root / "config_is_fifo" / "config.json")
    (root / "config_is_fifo" / "log.txt").write_text("")
    (root / "checkpoint_is_dir" / "search.pt").mkdir()
    (root / "checkpoint_garbage" / "search.pt").write_bytes(b"not a torch file")
    return expected
