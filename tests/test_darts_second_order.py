"""Second-order ("unrolled") DARTS, option ``order`` of ``darts`` (Liu et al., 2019, Eq. 6-8).

The finite-difference architecture gradient is checked against an exact one from autograd (through
the virtual step with ``create_graph=True``), in double precision on a tiny supernet (4 channels,
2 cells, 8 x 8 inputs, batch 4). BatchNorm stays in training mode throughout, so each forward
depends only on its batch and the weights.

DARTS's radius (``eps = 0.01 / ||v||``) crosses ReLU and max-pool kinks of this supernet, which puts
the difference off by O(1) (measured: the Hessian-vector term off by 120-350 % for seeds 0-2); the check at
that radius therefore runs on the same supernet made smooth (ReLU -> Softplus, max -> average pool),
and the unmodified s0 supernet is checked at a radius (1e-6) too small to cross a kink.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods  # noqa: F401  (registers every method)
from harness.cli.main import main
from methods.base import SearchHParams, SearchMethod, build_method, method_class
from spaces.registry import build_supernet

HW, BATCH, CLASSES = 8, 4, 3


@pytest.fixture(autouse=True)
def _double() -> Iterator[None]:
    """Supernet, alpha and inputs in float64: the finite difference is then far below tolerance."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def smooth(net: nn.Module) -> nn.Module:
    """The supernet with its kinks smoothed: ReLU -> Softplus, 3x3 max pool -> 3x3 average pool."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Softplus())
            elif isinstance(child, nn.MaxPool2d):
                setattr(module, name, nn.AvgPool2d(3, child.stride, 1, count_include_pad=False))
    return net


def make(options: dict[str, Any] | None = None, hp: SearchHParams | None = None, seed: int = 0,
         name: str = "darts", smoothed: bool = False):
    torch.manual_seed(seed)
    net = build_supernet("s0", c=4, layers=2, num_classes=CLASSES).double()
    if smoothed:
        smooth(net)
    method = build_method(name, net, hp or SearchHParams(epochs=2), options)
    method.begin_epoch(0, method.hp.epochs)
    return method


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(BATCH, 3, HW, HW, generator=g, dtype=torch.float64),
            torch.randint(0, CLASSES, (BATCH,), generator=g))


def clones(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def rel_err(got: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Relative error in the 2-norm over all the tensors."""
    num = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(got, ref, strict=True)))
    den = torch.sqrt(sum((b ** 2).sum() for b in ref))
    return float(num / den)


def intercept_arch_grads(method, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[torch.Tensor]]:
    """Make ``a_opt.step`` a no-op that records alpha's gradients and the weights at that moment."""
    seen: dict[str, list[torch.Tensor]] = {}

    def spy(*args, **kwargs):
        seen["grads"] = [None if p.grad is None else p.grad.detach().clone() for p in method.arch_parameters()]
        seen["weights"] = clones(method.weight_parameters())

    monkeypatch.setattr(method.a_opt, "step", spy)
    return seen


def exact_unrolled_grad(method, train, val, xi: float, second_order: bool = True) -> list[torch.Tensor]:
    """``d/d alpha L_val(w - xi * grad_w L_train(w, alpha), alpha)`` by autograd (plain SGD step);
    with ``second_order=False`` the virtual step is held fixed (the first term of Eq. 7 only)."""
    net = method.model
    names, params = zip(*net.named_parameters(), strict=True)
    (xt, yt), (xv, yv) = train, val
    g = torch.autograd.grad(F.cross_entropy(net(xt, method.sample()), yt), params, create_graph=second_order)
    unrolled = {n: p.detach() - xi * (gi if second_order else gi.detach())
                for n, p, gi in zip(names, params, g, strict=True)}
    logits = torch.func.functional_call(net, unrolled, (xv, method.sample()))
    return list(torch.autograd.grad(F.cross_entropy(logits, yv), method.arch_parameters(), allow_unused=True))


def test_options() -> None:
    cls = method_class("darts")
    assert cls.option_defaults == {"order": 1}
    # the resolved options (recorded in every result) always state the order
    assert cls.resolve_options(None) == cls.resolve_options({"order": 1}) == {"order": 1}
    assert cls.resolve_options({"order": 2}) == {"order": 2}
    for bad in (0, 3):
        with pytest.raises(ValueError, match="valid: 1, 2"):
            cls.resolve_options({"order": bad})
    assert method_class("pcdarts").resolve_options(None) == {"partial": 4}  # PC-DARTS: first order only
    with pytest.raises(ValueError, match="has no option 'order'"):
        method_class("pcdarts").resolve_options({"order": 2})
    assert make().order == 1 and make({"order": 2}).order == 2


def test_first_order_unchanged() -> None:
    train, val = batch(1), batch(2)
    a, b = make({"order": 1}), make()
    assert all(torch.equal(p, q) for p, q in zip(a.weight_parameters(), b.weight_parameters(), strict=True))
    stats = a.step(train, val)
    ref = {**SearchMethod.arch_step(b, val), **SearchMethod.weight_step(b, train)}
    assert stats == ref
    for p, q in zip(a.arch_parameters(), b.arch_parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)  # (layers=2: both cells reduce, normal alpha unused)
        assert (p.grad is None or torch.equal(p.grad, q.grad)) and torch.equal(p, q)
    assert a.alpha["reduce"].grad is not None
    assert all(torch.equal(p, q) for p, q in zip(a.weight_parameters(), b.weight_parameters(), strict=True))


@pytest.mark.parametrize(("smoothed", "radius"), [(True, 0.01), (False, 1e-6)], ids=["smooth-darts-eps", "s0-tiny-eps"])
def test_second_order_gradient_matches_autograd(smoothed: bool, radius: float, monkeypatch: pytest.MonkeyPatch) -> None:
    hp = SearchHParams(epochs=2, w_lr=0.1, w_momentum=0.0, w_weight_decay=0.0)
    method = make({"order": 2}, hp, smoothed=smoothed)
    assert method.hvp_radius == 0.01  # DARTS's
    monkeypatch.setattr(method, "hvp_radius", radius)
    if smoothed:
        assert not any(isinstance(m, nn.ReLU | nn.MaxPool2d) for m in method.model.modules())
    train, val = batch(3), batch(4)
    xi = method.w_opt.param_groups[0]["lr"]
    assert xi == 0.1
    ref = exact_unrolled_grad(method, train, val, xi)
    first_term = exact_unrolled_grad(method, train, val, xi, second_order=False)
    weights0 = clones(method.weight_parameters())
    arch0 = clones(method.arch_parameters())
    seen = intercept_arch_grads(method, monkeypatch)

    stats = method.step(train, val)
    assert {"val_loss", "val_acc", "train_loss", "train_acc"} <= stats.keys()
    # the weights were restored exactly before the architecture update
    assert all(torch.equal(w, w0) for w, w0 in zip(seen["weights"], weights0, strict=True))
    assert all(torch.equal(a, a0) for a, a0 in zip(method.arch_parameters(), arch0, strict=True))  # (no-op step)
    # layers=2: both cells are reduction cells; the normal cell's alpha gets no gradient, as in order 1
    used = [i for i, r in enumerate(ref) if r is not None]
    assert used and all((seen["grads"][i] is None) == (ref[i] is None) for i in range(len(ref)))
    got, ref, first_term = ([g[i] for i in used] for g in (seen["grads"], ref, first_term))
    err = rel_err(got, ref)
    # the Hessian-vector term (Eq. 8) alone, relative to its exact value
    implicit = [f - g for f, g in zip(first_term, got, strict=True)]
    implicit_ref = [f - r for f, r in zip(first_term, ref, strict=True)]
    err_implicit = rel_err(implicit, implicit_ref)
    print(f"relative error: gradient {err:.2e}, second-order term {err_implicit:.2e} "
          f"(term/gradient {rel_err(first_term, ref):.2e})")
    assert err < 1e-2
    assert err_implicit < 1e-2
    assert rel_err(first_term, ref) > 10 * err  # the second-order term is not negligible here
    # then the weight step ran as usual
    assert any(not torch.equal(w, w0) for w, w0 in zip(method.weight_parameters(), weights0, strict=True))


def test_virtual_step_is_the_next_sgd_step() -> None:
    """With momentum and weight decay, ``w' = w - xi * d`` is what SGD's next step would give for the
    same (unclipped) gradient, as in DARTS's ``_compute_unrolled_model``."""
    method = make({"order": 2}, SearchHParams(epochs=2, grad_clip=0.0))
    method.weight_step(batch(5))  # fills the momentum buffers
    weights = method.weight_parameters()
    train = batch(6)
    xi = method.w_opt.param_groups[0]["lr"]
    virtual = [w.detach() - xi * d for w, d in zip(weights, method.virtual_step_direction(train), strict=True)]
    x, y = train
    with torch.no_grad():
        arch = method.sample()
    grads = torch.autograd.grad(F.cross_entropy(method.model(x, arch), y), weights)
    for w, g in zip(weights, grads, strict=True):
        w.grad = g
    method.w_opt.step()
    for v, w in zip(virtual, weights, strict=True):
        torch.testing.assert_close(v, w.detach(), rtol=1e-12, atol=1e-14)


def test_weights_restored_with_momentum(monkeypatch: pytest.MonkeyPatch) -> None:
    method = make({"order": 2})
    method.step(batch(7), batch(8))  # momentum buffers and Adam moments exist now
    weights0 = clones(method.weight_parameters())
    seen = intercept_arch_grads(method, monkeypatch)
    method.unrolled_arch_step(batch(9), batch(10))
    assert all(torch.equal(w, w0) for w, w0 in zip(seen["weights"], weights0, strict=True))
    assert all(torch.equal(w, w0) for w, w0 in zip(method.weight_parameters(), weights0, strict=True))
    grads = [g for g in seen["grads"] if g is not None]
    assert grads and all(bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in grads)


def test_second_order_step_in_float32() -> None:
    """A whole step in the default precision: alpha and the weights move, nothing is left non-finite."""
    torch.set_default_dtype(torch.float32)  # (the fixture restores the previous default)
    torch.manual_seed(0)
    net = build_supernet("s0", c=4, layers=2, num_classes=CLASSES)
    method = build_method("darts", net, SearchHParams(epochs=2), {"order": 2})
    arch0, weights0 = clones(method.arch_parameters()), clones(method.weight_parameters())
    x, y = batch(11)
    stats = method.step((x.float(), y), (batch(12)[0].float(), batch(12)[1]))
    assert all(v == v and abs(v) < float("inf") for v in stats.values())
    assert not torch.equal(method.alpha["reduce"], arch0[list(method.alpha).index("reduce")])
    assert any(not torch.equal(w, w0) for w, w0 in zip(method.weight_parameters(), weights0, strict=True))
    assert all(bool(torch.isfinite(p).all()) for p in [*method.arch_parameters(), *method.weight_parameters()])


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--method", "darts", "--order", "3"], "order must be 1"),
    (["--method", "gdas", "--order", "2"], "has no option 'order'"),
    (["--method", "pcdarts", "--order", "2"], "has no option 'order'"),
])
def test_cli_rejects_bad_order(argv: list[str], fragment: str, tmp_path, capsys) -> None:
    assert main(["run", *argv, "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and fragment in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
