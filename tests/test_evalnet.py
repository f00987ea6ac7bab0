"""Evaluation networks (spaces/evalnet.py) and the train/test loop (harness/engine/evaluate.py)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from harness.engine.evaluate import evaluate_accuracy, train_and_test
from spaces.evalnet import (
    MACS_INCLUDE,
    EvalCell,
    NetworkCIFAR,
    NetworkImageNet,
    count_macs,
    count_params,
    drop_path,
)
from spaces.genotype import KNOWN, Genotype

# Published CIFAR-10 counts (20 cells, 36 channels, auxiliary head excluded), in millions.
# DARTS_V1 is published as 3.3 M in the DARTS paper, but its released genotype builds 3,169,414
# parameters (3.2 M) - the same network DARTS's own code builds; we pin what the genotype gives.
CIFAR_PARAMS_M = {"DARTS_V2": 3.3, "PC_DARTS": 3.6, "GDAS_V1": 3.4, "DARTS_V1": 3.2}

# Multiply-adds of DARTS_V2 on ImageNet at 224 x 224 counted over convolutions and linear layers.
# The DARTS paper reports 574 M, which no conv + fc count reproduces (quark0/darts issue #46:
# 523 M and 545 M with other counters); adding BN, ReLU, pooling and additions still stays < 545 M.
IMAGENET_MACS_MEASURED = 529_911_552
IMAGENET_MACS_PUBLISHED = 574e6


@pytest.mark.parametrize("name", sorted(CIFAR_PARAMS_M))
def test_cifar_param_counts_match_published(name: str) -> None:
    model = NetworkCIFAR(36, 10, 20, True, KNOWN[name])
    assert round(count_params(model) / 1e6, 1) == CIFAR_PARAMS_M[name]


def test_darts_v2_cifar_exact_count() -> None:
    # DARTS's training log prints "param size = 3.349342MB" for this network.
    assert count_params(NetworkCIFAR(36, 10, 20, True, KNOWN["DARTS_V2"])) == 3_349_342


def test_darts_v2_imagenet_params_and_macs() -> None:
    model = NetworkImageNet(48, 1000, 14, True, KNOWN["DARTS_V2"])
    assert round(count_params(model) / 1e6, 1) == 4.7
    model.train()
    macs = count_macs(model, (1, 3, 224, 224))
    assert model.training  # mode restored
    assert abs(macs - IMAGENET_MACS_MEASURED) / IMAGENET_MACS_MEASURED < 0.01
    # Within 8 % of (and below) the published 574 M; see the comment at IMAGENET_MACS_MEASURED.
    assert 0.92 < macs / IMAGENET_MACS_PUBLISHED < 1.0
    assert any("conv" in item for item in MACS_INCLUDE)


def test_count_macs_matches_hand_count_of_a_linear_and_conv() -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
    )
    # conv: 8*8 outputs * 4 channels * 3*3*3; linear: 4*5; BN / ReLU / pooling not counted.
    assert count_macs(net, (1, 3, 8, 8)) == 8 * 8 * 4 * 27 + 4 * 5


def test_aux_head_excluded_from_count_but_trained() -> None:
    genotype = KNOWN["DARTS_V2"]
    with_aux = NetworkCIFAR(8, 10, 5, True, genotype)
    without_aux = NetworkCIFAR(8, 10, 5, False, genotype)
    aux_params = sum(p.numel() for p in with_aux.auxiliary_head.parameters())
    assert aux_params > 0
    total = sum(p.numel() for p in with_aux.parameters())
    assert count_params(with_aux) == total - aux_params
    assert count_params(with_aux) == count_params(without_aux)


@pytest.mark.parametrize("auxiliary", [True, False])
@pytest.mark.parametrize("size", [16, 32])
def test_cifar_forward_shapes_and_aux_modes(auxiliary: bool, size: int) -> None:
    torch.manual_seed(0)
    model = NetworkCIFAR(8, 10, 5, auxiliary, KNOWN["DARTS_V2"], drop_path_prob=0.2)
    x = torch.randn(2, 3, size, size)
    model.train()
    logits, aux = model(x)
    assert logits.shape == (2, 10)
    if auxiliary:
        assert aux is not None and aux.shape == (2, 10)
    else:
        assert aux is None
    model.eval()
    logits, aux = model(x)
    assert logits.shape == (2, 10) and aux is None


def test_cifar_in_channels_and_small_imagenet_forward() -> None:
    model = NetworkCIFAR(4, 3, 3, True, KNOWN["GDAS_V1"], in_channels=1)
    logits, aux = model.train()(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 3) and aux.shape == (2, 3)
    net = NetworkImageNet(8, 7, 3, True, KNOWN["PC_DARTS"])
    logits, aux = net.train()(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    assert net.eval()(torch.randn(1, 3, 64, 64))[1] is None


def test_drop_path_zeroes_whole_samples() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 4, 4) + 0.1
    y = drop_path(x, 0.5)
    dropped = (y == 0).flatten(1).all(dim=1)
    kept = torch.isclose(y, 2 * x).flatten(1).all(dim=1)
    assert bool((dropped | kept).all())
    assert 0 < int(dropped.sum()) < 64
    assert drop_path(x, 0.0) is x
    assert torch.equal(drop_path(x, 1.0), torch.zeros_like(x))


def _single_node_cell(op: str) -> EvalCell:
    return EvalCell([(op, 0), (op, 1)], [2], 6, 6, 6, reduction=False, reduction_prev=False)


def test_cell_drop_path_only_in_training_and_not_on_identity() -> None:
    torch.manual_seed(0)
    s0, s1 = torch.randn(16, 6, 6, 6), torch.randn(16, 6, 6, 6)
    cell = _single_node_cell("sep_conv_3x3").train()
    out = cell(s0, s1, drop_prob=0.9)
    zero_samples = (out == 0).flatten(1).all(dim=1)
    assert int(zero_samples.sum()) > 0  # both paths dropped for some samples (p = 0.81 each)
    assert not bool(zero_samples.all())
    cell.eval()
    assert torch.equal(cell(s0, s1, drop_prob=0.9), cell(s0, s1, drop_prob=0.0))
    # Identity edges are never dropped.
    skip = _single_node_cell("skip_connect").train()
    assert torch.equal(skip(s0, s1, drop_prob=0.9), skip(s0, s1, drop_prob=0.0))


def test_cell_with_other_node_counts() -> None:
    pairs = [("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("dil_conv_3x3", 0),
             ("avg_pool_3x3", 3), ("skip_connect", 2)]
    cell = EvalCell(pairs, [2, 3, 4], 6, 10, 4, reduction=True, reduction_prev=True)
    out = cell.eval()(torch.randn(2, 6, 16, 16), torch.randn(2, 10, 8, 8))
    assert out.shape == (2, 12, 4, 4)
    genotype = Genotype(pairs, [2, 3, 4], pairs, [3, 4])
    model = NetworkCIFAR(4, 5, 4, True, genotype)
    logits, aux = model.train()(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 5) and aux.shape == (2, 5)
    with pytest.raises(ValueError, match="even"):
        EvalCell(pairs[:3], [2], 6, 6, 4, False, False)
    with pytest.raises(ValueError, match="predecessor"):
        EvalCell([("skip_connect", 2), ("skip_connect", 0)], [2], 6, 6, 4, False, False)


def _separable_data(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.5 * torch.randn(n, 3, 8, 8, generator=gen)
    images += (2.0 * labels.float() - 1.0).view(n, 1, 1, 1)  # class 0 dark, class 1 bright
    return TensorDataset(images, labels)


def test_train_and_test_learns_a_separable_task() -> None:
    torch.manual_seed(0)
    # Batches of 8 give 32 updates, enough for BN running statistics to settle (eval uses them).
    train = DataLoader(_separable_data(64, 1), batch_size=8, shuffle=True)
    test = DataLoader(_separable_data(32, 2), batch_size=32)
    model = NetworkCIFAR(4, 2, 3, True, KNOWN["DARTS_V2"])
    seen: list[dict[str, float]] = []
    result = train_and_test(
        model, train, test, epochs=4, lr=0.05, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
        aux_weight=0.4, drop_path_prob=0.2, device=torch.device("cpu"),
        on_epoch=lambda epoch, info: seen.append(info),
    )
    assert {"test_error", "test_acc", "train_loss", "epochs"} <= set(result)
    assert result["epochs"] == 4
    assert result["test_error"] == pytest.approx(100.0 - result["test_acc"])
    assert result["test_error"] < 25.0  # chance is 50 %
    assert result["train_loss"] == result["train_loss"]  # not NaN
    assert [info["epoch"] for info in seen] == [0, 1, 2, 3]
    assert [info["drop_path_prob"] for info in seen] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert seen[0]["lr"] == pytest.approx(0.05) and seen[-1]["lr"] < 0.05
    assert model.drop_path_prob == pytest.approx(0.15)
    assert evaluate_accuracy(model, test, torch.device("cpu")) == pytest.approx(result["test_acc"])
