"""``--preset released`` for GDAS builds xautodl's search network (issue 18, point 5).

xautodl's NASNet-space GDAS supernet (``xautodl/models/cell_searchs/search_model_gdas_nasnet.py``)
differs from DARTS's ``model_search.py`` layout in a BN + ReLU (``lastact``) before the global pool
and in pooling ops without a BN (``xautodl/models/cell_operations.py`` ``POOLING``). The harness
builds it with ``search.head=bn_relu`` and ``search.pool_bn=false``; these tests compare that
supernet with the released one: parameter counts and the multiset of layers.

The released package is compared directly when it is importable. It cannot be a test extra: xautodl
1.0.0 pins ``numpy<=1.19.5``, which no resolver can combine with this project's ``numpy>=1.24``; install
it with ``pip install --no-deps xautodl==1.0.0`` (it imports and builds with today's numpy). Without it,
the counts below, measured from xautodl 1.0.0's network, stand in.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch
from torch import nn

from harness.cli.main import main
from harness.engine.search import build_search_method
from harness.spec.runspec import SpecError, resolve
from spaces.base import Mixed
from spaces.darts import SPACES
from spaces.supernet import SearchNetwork

#: harness op name -> xautodl's name of the same op (``cell_operations.py`` ``OPS``/``DARTS_SPACE``)
XAUTODL_NAMES = {"none": "none", "skip_connect": "skip_connect", "sep_conv_3x3": "dua_sepc_3x3",
                 "sep_conv_5x5": "dua_sepc_5x5", "dil_conv_3x3": "dil_sepc_3x3", "dil_conv_5x5": "dil_sepc_5x5",
                 "max_pool_3x3": "max_pool_3x3", "avg_pool_3x3": "avg_pool_3x3"}

#: xautodl 1.0.0 ``NASNetworkGDAS(C=8, N=1, steps=4, multiplier=4, stem_multiplier=3, num_classes=10, ops,
#: affine=False, track_running_stats=True)``: (parameters without the architecture weights, of which conv
#: biases). Its convolutions take ``bias=not affine``, so with the search's ``affine=False`` each has a bias;
#: each is followed by a BN that subtracts the per-channel mean, which cancels the bias exactly, so the
#: harness's bias-free convolutions compute the same function and the counts compare without them.
RELEASED_COUNTS = {"s0": (214_898, 5_200), "s2": (70_642, 2_064), "s3": (70_642, 2_064)}
C, N, CLASSES = 8, 1, 10


def released_layout(space: str, head: str = "bn_relu", pool_bn: bool = False) -> SearchNetwork:
    """The harness supernet shaped like xautodl's: 3N cells (reductions at N and 2N, as the harness's
    ``layers // 3`` and ``2 * layers // 3``), 3-channel input, stem multiplier 3, 4 steps, multiplier 4."""
    return SearchNetwork(SPACES[space], c=C, num_classes=CLASSES, layers=3 * N, in_channels=3,
                         head=head, pool_bn=pool_bn)


def weights(net: nn.Module) -> int:
    return sum(p.numel() for name, p in net.named_parameters() if not name.startswith("arch_"))


def conv_biases(net: nn.Module) -> int:
    return sum(m.bias.numel() for m in net.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)


def layers(net: nn.Module) -> Counter[tuple[Any, ...]]:
    """The network's leaf layers as a multiset of (type, shape) keys, conv biases aside (see above);
    padding modules (the harness pads in ``forward``) and empty containers (xautodl's cells hold an
    unused ``_ops`` list) are left out."""
    out: Counter[tuple[Any, ...]] = Counter()
    for m in net.modules():
        if list(m.children()) or isinstance(m, nn.ConstantPad2d | nn.ModuleList | nn.ModuleDict | nn.Sequential):
            continue
        if isinstance(m, nn.Conv2d):
            key: tuple[Any, ...] = ("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                    m.dilation, m.groups)
        elif isinstance(m, nn.BatchNorm2d):
            key = ("bn", m.num_features, m.affine, m.track_running_stats)
        elif isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
            key = (type(m).__name__, m.kernel_size, m.stride, m.padding)
        elif isinstance(m, nn.Linear):
            key = ("linear", m.in_features, m.out_features)
        else:
            key = (type(m).__name__,)  # ReLU, Identity, Zero, AdaptiveAvgPool2d
        out[key] += 1
    return out


@pytest.mark.parametrize("space", sorted(RELEASED_COUNTS))
def test_parameter_count_matches_the_released_network(space: str) -> None:
    total, biases = RELEASED_COUNTS[space]
    assert weights(released_layout(space)) == total - biases
    # DARTS's layout differs by exactly the head's BN (2 x its channels); pool BNs have no parameters
    assert weights(released_layout(space, "plain", True)) == total - biases - 2 * 4 * 4 * C


def test_the_layers_match_xautodl() -> None:
    mod = pytest.importorskip(
        "xautodl.models.cell_searchs.search_model_gdas_nasnet",
        reason="xautodl is not installed (pip install --no-deps xautodl==1.0.0; its numpy<=1.19.5 pin keeps it "
               "out of the test extra); RELEASED_COUNTS stand in")
    for space in sorted(RELEASED_COUNTS):
        ops = [XAUTODL_NAMES[o] for o in SPACES[space].normal[0]]
        released = mod.NASNetworkGDAS(C, N, 4, 4, 3, CLASSES, ops, False, True)
        ours = released_layout(space)
        assert (weights(released), conv_biases(released)) == RELEASED_COUNTS[space]
        assert weights(ours) == weights(released) - conv_biases(released)
        assert layers(ours) == layers(released), space
        assert layers(released_layout(space, "plain", True)) != layers(released)
        assert layers(ours.lastact) == layers(released.lastact)  # BatchNorm2d(affine) + ReLU


POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def pool_ops(net: SearchNetwork) -> tuple[int, int]:
    """(bare pooling ops, pooling ops followed by a BN) on the supernet's edges."""
    ops = [op for cell in net.cells for edge in cell.edges for op in edge.ops]
    with_bn = [op for op in ops if isinstance(op, nn.Sequential) and isinstance(op[0], POOLS)]
    assert all(isinstance(op[1], nn.BatchNorm2d) and not op[1].affine for op in with_bn)
    return sum(isinstance(op, POOLS) for op in ops), len(with_bn)


def test_pooling_ops_and_head_follow_the_options() -> None:
    darts, xautodl = released_layout("s0", "plain", True), released_layout("s0")
    n_pools = 2 * 14 * 3 * N  # S0: max and avg pool on each of 14 edges of 3N cells
    assert pool_ops(darts) == (0, n_pools) and pool_ops(xautodl) == (n_pools, 0)
    assert isinstance(darts.lastact, nn.Identity)
    bn, relu = xautodl.lastact
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.num_features == 4 * 4 * C and isinstance(relu, nn.ReLU)
    # DARTS's layout keeps its state dict keys: checkpoints of earlier runs still load
    assert not any(k.startswith("lastact") for k in darts.state_dict())
    x = torch.randn(2, 3, 16, 16)
    arch = {t: _uniform(xautodl, t) for t in ("normal", "reduce")}
    assert xautodl(x, arch).shape == darts(x, arch).shape == (2, CLASSES)


def _uniform(net: SearchNetwork, cell_type: str) -> Mixed:
    shape = net.shapes[cell_type]
    return Mixed(torch.full((shape.n_edges, shape.n_ops), 1.0 / shape.n_ops))


def test_released_preset_sets_the_layout_for_gdas_in_the_darts_spaces() -> None:
    for bench in ("s0-c10", "s1-c100", "s2-digits", "s3-svhn", "s4-c10", "s0-imagenet"):
        s = resolve("gdas", bench, "cpu", preset="released").search
        assert (s.head, s.pool_bn) == ("bn_relu", False), bench
        s = resolve("gdas", bench, "cpu").search
        assert (s.head, s.pool_bn) == ("plain", True), bench  # the default preset keeps DARTS's
    for method, bench in (("rome-v2", "s2-digits"), ("darts", "s0-c10"), ("gdas", "nb1s1-digits")):
        s = resolve(method, bench, "cpu", preset="released").search
        assert (s.head, s.pool_bn) == ("plain", True), (method, bench)


def test_the_spec_reaches_the_supernet() -> None:
    spec = resolve("gdas", "s0-digits", "check", preset="released")
    net = build_search_method(spec, "s0", num_classes=10, in_channels=3, device=torch.device("cpu")).model
    assert isinstance(net.lastact[0], nn.BatchNorm2d)
    bare, with_bn = pool_ops(net)
    assert bare > 0 and with_bn == 0
    assert spec.hash != resolve("gdas", "s0-digits", "check").hash


@pytest.mark.parametrize(("sets", "bench", "fragment"), [
    ({"search.head": "lastact"}, "s2-digits", "search.head='lastact': valid: plain, bn_relu"),
    ({"search.head": "bn_relu"}, "nb1s1-digits", "the nb1s1 supernet has its own head"),
    ({"search.pool_bn": "false"}, "nb1s2-c10", "the nb1s2 supernet has its own pooling ops"),
    ({"search.pool_bn": "maybe"}, "s0-digits", "search.pool_bn='maybe': takes a bool"),
])
def test_bad_layout_values(sets: dict[str, str], bench: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(")):
        resolve("gdas", bench, "cpu", sets=sets)


def test_bad_layout_on_the_command_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    code = main(["run", "--method", "gdas", "--bench", "nb1s1-digits", "--budget", "cpu", "--set",
                 "search.head=bn_relu", "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "search.head" in err[0]
    assert not out.exists()
