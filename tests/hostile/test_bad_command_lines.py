"""A table of bad command lines (issue 13, point 7, and more): each exits 2 with one line on stderr,
no traceback, and creates nothing under ``--out``.

Work is impossible here: ``run_many`` and ``Run.execute`` are replaced by a function that fails the
test, so a line that slips through validation is caught before it searches or trains anything.

Rows flagged ``SPEC`` are run-spec field ranges, rejected by :func:`harness.spec.runspec.validate`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import harness.cli.main
import harness.runs.run
from tests.hostile.refusal import assert_refused

SPEC = "spec"  # flag: a protocol-field range checked by the run spec's validation

GOOD_CELL = [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["skip_connect", 2],
             ["sep_conv_3x3", 1], ["dil_conv_3x3", 3], ["sep_conv_3x3", 0], ["max_pool_3x3", 4]]


def _with(cell_edit: dict) -> str:
    return json.dumps({"normal": GOOD_CELL, "reduce": GOOD_CELL, **cell_edit})


GENOTYPES = {
    "input_float": _with({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1.7], *GOOD_CELL[2:]]}),
    "input_true": _with({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", True], *GOOD_CELL[2:]]}),
    "input_string": _with({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", "1"], *GOOD_CELL[2:]]}),
    "input_null": _with({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", None], *GOOD_CELL[2:]]}),
    "input_negative": _with({"normal": [["sep_conv_3x3", -1], ["sep_conv_3x3", 1], *GOOD_CELL[2:]]}),
    "concat_repeated": _with({"normal_concat": [2, 2, 2, 2]}),
    "concat_input_node": _with({"normal_concat": [1, 2, 3]}),
    "concat_empty": _with({"reduce_concat": []}),
    "concat_not_ints": _with({"normal_concat": ["2", "3"]}),
    "concat_float": _with({"normal_concat": [2.0, 3.5]}),
    "all_none": _with({"normal": [["none", 0], ["none", 1]] * 4}),
    "same_input_twice": _with({"normal": [["sep_conv_3x3", 1], ["sep_conv_3x3", 1], *GOOD_CELL[2:]]}),
    "op_not_string": _with({"normal": [[5, 0], ["sep_conv_3x3", 1], *GOOD_CELL[2:]]}),
    "pair_of_three": _with({"normal": [["sep_conv_3x3", 0, 1], ["sep_conv_3x3", 1], *GOOD_CELL[2:]]}),
    "cell_not_list": _with({"normal": "sep_conv_3x3"}),
    "deep_nesting": "[" * 200_000 + "]" * 200_000,
    "huge_int": '{"normal": [["sep_conv_3x3", ' + "9" * 5000 + "]], \"reduce\": []}",
    "not_utf8": None,  # written as bytes below
}

# (command line, a fragment the one-line message must contain, flag)
BAD: list[tuple[str, str, str | None]] = [
    # list options: an empty list or item is an error, not a no-op
    ('run --bench ""', "--bench expected comma-separated names", None),
    ("run --bench ,", "--bench expected comma-separated names", None),
    ("run --bench s0-digits,,s0-c10", "an empty item", None),
    ('run --method ""', "--method expected comma-separated names", None),
    ("run --method rome-v2,", "an empty item", None),
    ("run --seeds ,,,", "--seeds expected comma-separated integers", None),
    ('run --seeds ""', "--seeds expected comma-separated integers", None),
    ('run --seeds " "', "--seeds expected comma-separated integers", None),
    ("run --seeds 1,,2", "an empty item", None),
    ("run --seeds 0,1.5", "comma-separated integers", None),
    ("run --seed 4294967296", "seed must be <= 4294967295", None),
    ("run --seeds 0,4294967296", "seed must be <= 4294967295", None),
    ("run --seeds -3", "seed must be >= 0", None),
    # non-finite numbers never reach a run (a NaN learning rate trained nothing and was recorded complete)
    ("run --set eval_lr=nan", "eval.lr=nan: takes a finite number", None),
    ("run --set eval_lr=inf", "eval.lr=inf: takes a finite number", None),
    ("run --set eval_lr=-inf", "eval.lr=-inf: takes a finite number", None),
    ("run --set eval_grad_clip=nan", "eval.grad_clip=nan: takes a finite number", None),
    ("run --set eval_momentum=nan", "eval.momentum=nan: takes a finite number", None),
    ("run --set eval_weight_decay=nan", "eval.weight_decay=nan: takes a finite number", None),
    ("run --set label_smoothing=inf", "eval.label_smoothing=inf: takes a finite number", None),
    ("run --set drop_path=nan", "eval.drop_path=nan: takes a finite number", None),
    ("run --set aux_weight=inf", "eval.aux_weight=inf: takes a finite number", None),
    ("eval --genotype DARTS_V2 --bench s0-digits --budget smoke --set eval_lr=nan --out {out}",
     "eval.lr=nan: takes a finite number", None),
    # protocol-field ranges (issue 13 point 7): the run spec's validation layer
    ("run --set eval_lr=-0.1", "eval.lr", SPEC),
    ("run --set eval_lr=0", "eval.lr", SPEC),
    ("run --set eval_momentum=-1", "eval.momentum", SPEC),
    ("run --set eval_weight_decay=-1", "eval.weight_decay", SPEC),
    ("run --set label_smoothing=1.5", "eval.label_smoothing", SPEC),
    ("run --set eval_network=warp", "eval.network", SPEC),
    ("run --set search_stem=warp", "search.stem", SPEC),
    ("run --set eval_subset=0", "eval.subset", SPEC),
    ("run --set eval_channels=0", "eval.channels", SPEC),
    ("run --set search_channels=0", "search.channels", SPEC),
    ("run --set search_subset=0", "search.subset", SPEC),
    ("run --set search_image_size=-8", "search.image_size", SPEC),
    ("run --set search_image_size=0", "search.image_size", SPEC),
    ("run --set search_image_size=100000", "search.image_size", SPEC),
    ("run --set cutout=-1", "data.cutout", SPEC),
    ("run --set drop_path=2", "eval.drop_path", SPEC),
    ("run --set aux_weight=-1", "eval.aux_weight", SPEC),
    ("run --method pcdarts --partial 3", "partial", SPEC),
    # genotype files (issue 13 point 7): integer inputs in range, distinct inputs, concat, some parameters
    ("eval --genotype {input_float} --count-only", "the input must be an integer node index, got 1.7", None),
    ("eval --genotype {input_true} --count-only", "the input must be an integer node index, got True", None),
    ("eval --genotype {input_string} --count-only", "the input must be an integer node index, got '1'", None),
    ("eval --genotype {input_null} --count-only", "got None", None),
    ("eval --genotype {input_negative} --count-only", "not a predecessor", None),
    ("eval --genotype {concat_repeated} --count-only", "concat [2, 2, 2, 2] is invalid", None),
    ("eval --genotype {concat_input_node} --count-only", "concat [1, 2, 3] is invalid", None),
    ("eval --genotype {concat_empty} --count-only", "concat [] is invalid", None),
    ("eval --genotype {concat_not_ints} --count-only", "list of integer node indices", None),
    ("eval --genotype {concat_float} --count-only", "list of integer node indices", None),
    ("eval --genotype {all_none} --count-only", "has only 'none' ops", None),
    ("eval --genotype {same_input_twice} --count-only", "takes input 1 twice", None),
    ("eval --genotype {op_not_string} --count-only", "the op must be a name", None),
    ("eval --genotype {pair_of_three} --count-only", "must be [op, input]", None),
    ("eval --genotype {cell_not_list} --count-only", "must be a list of [op, input] pairs", None),
    ("eval --genotype {deep_nesting} --count-only", "not usable JSON (RecursionError)", None),
    ("eval --genotype {huge_int} --count-only", "not usable JSON (ValueError)", None),
    ("eval --genotype {not_utf8} --count-only", "not usable JSON (UnicodeDecodeError)", None),
    ("eval --genotype {dir} --count-only", "unknown genotype", None),
    ("eval --genotype DARTS_V2 --seed 4294967296 --count-only", "seed must be <= 4294967295", None),
    ("eval --genotype DARTS_V2 --seed -1 --count-only", "seed must be >= 0", None),
    # harness profile shapes
    ("profile --method rome-v2 --layers 0", "--layers must be >= 1, got 0", None),
    ("profile --method rome-v2 --num-classes 0", "--num-classes must be >= 2, got 0", None),
    ("profile --method rome-v2 --num-classes 1", "--num-classes must be >= 2, got 1", None),
    ("profile --method rome-v2 --image-size 1", "--image-size must be >= 8, got 1", None),
    ("profile --method rome-v2 --channels -1", "--channels must be >= 1, got -1", None),
    ("profile --method rome-v2 --channels 0", "--channels must be >= 1, got 0", None),
    ("profile --method rome-v2 --batch-size 0", "--batch-size must be >= 1, got 0", None),
    ("profile --method rome-v2 --steps 0", "--steps must be >= 1, got 0", None),
    ("profile --method rome-v2 --layers -5", "--layers must be >= 1, got -5", None),
    # folders
    ("run --out {a_file}", "is a file", None),
    ("run --out {a_file}/runs", "is not writable", None),
    ("report --runs {missing} --out {out}", "does not exist", None),
    ("report --runs {a_file} --out {out}", "", None),
    ("status --runs {a_file}", "", None),
    ("report --runs {empty} --out {out} --profiles {missing}", "profiles folder", None),
]


class SlippedThrough(AssertionError):
    """A bad command line reached the point where work starts."""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    def no_work(*args, **kwargs):
        raise SlippedThrough("validation let a bad command line start work")

    monkeypatch.setattr(harness.cli.main, "run_many", no_work)
    monkeypatch.setattr(harness.runs.run.Run, "execute", no_work)
    out = {}
    for name, text in GENOTYPES.items():
        path = tmp_path / f"{name}.json"
        if text is None:
            path.write_bytes(b'{"normal": "\xff\xfe"}')
        else:
            path.write_text(text)
        out[name] = str(path)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir.json").mkdir()
    (tmp_path / "empty").mkdir()
    out.update(a_file=str(tmp_path / "a_file"), dir=str(tmp_path / "a_dir.json"), empty=str(tmp_path / "empty"),
               out=str(tmp_path / "out"), missing=str(tmp_path / "missing"))
    return out


def _param(line: str, fragment: str, flag: str | None):
    return pytest.param(line, fragment, id=line.split(" {")[0])


def test_the_table_is_large_enough() -> None:
    assert len(BAD) >= 60


@pytest.mark.parametrize(("line", "fragment"), [_param(*row) for row in BAD])
def test_bad_command_line(line: str, fragment: str, files: dict[str, str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**files) for a in shlex.split(line)]
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", files["out"]]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_refused(argv, fragment, capsys)
    assert not Path(files["out"]).exists() or not any(Path(files["out"]).iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing else appeared either
