"""The spaces match R-DARTS src/spaces.py op for op; genotypes round-trip; the noise op."""

from __future__ import annotations

import json

import pytest
import torch

from harness.cli.main import main
from spaces import genotype as G
from spaces.darts import NODE_EDGES, SPACES
from spaces.ops import OPS

A = {"skip": "skip_connect", "sep3": "sep_conv_3x3", "dil3": "dil_conv_3x3", "dil5": "dil_conv_5x5",
     "max": "max_pool_3x3", "avg": "avg_pool_3x3", "none": "none", "noise": "noise"}

# Transcribed from R-DARTS (Zela et al., 2020) src/spaces.py, edge by edge.
EXPECTED = {
    "s1": {
        "normal": [["skip", "dil3"], ["skip", "dil5"], ["skip", "dil5"], ["skip", "sep3"], ["skip", "dil3"],
                   ["max", "skip"], ["skip", "sep3"], ["skip", "sep3"], ["skip", "dil3"], ["skip", "sep3"],
                   ["max", "skip"], ["skip", "dil3"], ["dil3", "dil5"], ["dil3", "dil5"]],
        "reduce": [["max", "avg"], ["max", "dil3"], ["max", "avg"], ["max", "avg"], ["skip", "dil5"],
                   ["max", "avg"], ["max", "sep3"], ["skip", "dil3"], ["skip", "dil5"], ["max", "avg"],
                   ["max", "avg"], ["skip", "dil5"], ["skip", "dil5"], ["skip", "dil5"]],
    },
    "s2": {t: [["skip", "sep3"]] * 14 for t in ("normal", "reduce")},
    "s3": {t: [["none", "skip", "sep3"]] * 14 for t in ("normal", "reduce")},
    "s4": {t: [["noise", "sep3"]] * 14 for t in ("normal", "reduce")},
}


@pytest.mark.parametrize("space", ["s1", "s2", "s3", "s4"])
def test_describe_matches_reference(space: str, capsys) -> None:
    assert main(["describe", "--space", space, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = {t: [[A[o] for o in ops] for ops in edges] for t, edges in EXPECTED[space].items()}
    assert got == want


def test_s0_is_darts_without_none() -> None:
    s0 = SPACES["s0"]
    assert all(set(ops) == set(OPS) - {"none", "noise"} and len(ops) == 7 for ops in s0.normal + s0.reduce)
    assert [len(n) for n in NODE_EDGES] == [2, 3, 4, 5]


def test_genotype_round_trip_and_readable_print(tmp_path) -> None:
    for name, g in G.KNOWN.items():
        assert G.from_json(G.to_json(g)) == g
        path = tmp_path / f"{name}.json"
        path.write_text(G.to_json(g))
        assert G.load(path) == g
        assert repr(g).startswith("Genotype(normal=[('")
    assert G.KNOWN["GDAS_V1"].skip_normal() == 4
    assert G.KNOWN["DARTS_V2"].parameterless_normal() == 2


def test_parameterless_counts_noise_and_none() -> None:
    g = G.Genotype([("noise", 0), ("none", 1), ("skip_connect", 0), ("sep_conv_3x3", 1)] * 2, [2, 3, 4, 5],
                   [("max_pool_3x3", 0)] * 8, [2, 3, 4, 5])
    assert g.parameterless_normal() == 6
    assert g.skip_normal() == 2


@pytest.mark.parametrize("text, message", [
    ('{"normal": [["sep_conv_3x3", 0]], "reduce": []}', "2 \\[op, input\\] pairs per node"),
    ('{"normal": [["sep_conv_3x3", 5], ["sep_conv_3x3", 0]], "reduce": []}', "not a predecessor"),
    ('{"reduce": []}', "needs 'normal'"),
    ("[1, 2]", "must hold a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_malformed_genotype_file(text: str, message: str, tmp_path) -> None:
    path = tmp_path / "g.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        G.load(path)


@pytest.mark.parametrize("stride", [1, 2])
def test_noise_passes_no_gradient_and_ignores_input(stride: int) -> None:
    op = OPS["noise"](4, stride, False)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    torch.manual_seed(1)
    a = op(x)
    torch.manual_seed(1)
    b = op(100 * x)
    assert a.shape == (2, 4, 8 // stride, 8 // stride)
    assert torch.equal(a, b)  # independent of the input
    assert not a.requires_grad  # no gradient path to the input
    assert abs(float(op(torch.zeros(64, 4, 16, 16)).std()) - 1.0) < 0.05
