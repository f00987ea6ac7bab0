"""DARTS: every op on every edge, weighted by ``softmax(alpha)`` (Liu et al., 2019).

Where ops sit on nodes (NAS-Bench-1Shot1) each node's inputs are weighted by ``softmax(beta)`` over
its candidate edges (nasbench-1shot1's DARTS), and derivation keeps per node the ``in_degree`` inputs
of largest ``beta`` and the argmax op.

Option ``order``: 1 (default) is first-order DARTS, the architecture gradient taken at the current
weights; 2 is second-order ("unrolled") DARTS, the gradient taken through one virtual weight step
(DARTS Eq. 6-8, see :meth:`DARTS.unrolled_arch_step`). PC-DARTS, a subclass, stays first order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from methods.base import Batch, SearchMethod, best_ops, node_edge_weights, option, register_method, select_top_edges
from spaces.base import CellArch, Mixed
from spaces.supernet import Selection

ORDERS = (1, 2)


@register_method("darts")
class DARTS(SearchMethod):
    """Mixed mode; derivation keeps per node the 2 edges whose best non-``none`` op weighs most."""

    @dataclass(frozen=True)
    class Options:
        order: int = option(1, "DARTS: 1 first order (default), 2 second order (unrolled, DARTS Eq. 6-8)",
                            label="order", check=lambda v: None if v in ORDERS else
                            "DARTS order must be 1 (first order) or 2 (second order, unrolled); valid: 1, 2")

    samples = False  # the mixing weights softmax(alpha): every sample() is the same relaxation

    #: second order: the finite-difference radius of Eq. 8, ``eps = hvp_radius / ||grad_w' L_val||`` (DARTS: 0.01)
    hvp_radius: ClassVar[float] = 0.01

    @property
    def order(self) -> int:
        return int(self.options.get("order", 1))  # PC-DARTS has no order option: first order

    def op_weights(self, cell_type: str):
        return F.softmax(self.op_logits(cell_type), dim=-1)

    def edge_weights(self, cell_type: str):
        if cell_type not in self.beta:
            return None
        return node_edge_weights(self.beta[cell_type], self.shapes[cell_type], lambda b: F.softmax(b, dim=-1))

    def edge_probabilities(self, cell_type: str) -> torch.Tensor | None:
        """The edge weights the forward uses (PC-DARTS: ``softmax(beta)`` over each node's incoming edges,
        summing to 1 per node); ``None`` where DARTS has no edge parameters (DARTS spaces)."""
        return self.edge_weights(cell_type)

    def sample(self) -> dict[str, CellArch]:
        return {t: Mixed(self.op_weights(t), self.edge_weights(t)) for t in self.shapes}

    def selection(self) -> Selection:
        out = {}
        for t, shape in self.shapes.items():
            weights = self.op_weights(t).detach()
            score, index = best_ops(weights, shape)
            edge_w = self.edge_weights(t)
            if edge_w is not None:  # ops on nodes: an edge carries no op, so its own weight ranks it
                score = score * edge_w.detach() if shape.ops_on_edges else edge_w.detach()
            out[t] = select_top_edges(score, index, shape)
        return out

    # -- second order ------------------------------------------------------------------------------
    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """First order: the base class's step. Second order: the unrolled architecture step (which
        needs the training batch too), then the weight step as before."""
        if self.order == 1:
            return super().step(train_batch, val_batch)
        stats = self.unrolled_arch_step(train_batch, val_batch) if self.arch_update_enabled() else {}
        return {**stats, **self.weight_step(train_batch)}

    def virtual_step_direction(self, batch: Batch) -> list[torch.Tensor]:
        """Per weight, ``d = grad_w L_train(w, alpha) + momentum * buf + weight_decay * w``: the virtual
        step ``w' = w - xi * d`` of DARTS Eq. 6 as DARTS takes it (``_compute_unrolled_model``: the
        SGD optimizer's momentum and weight decay, gradient unclipped, no Nesterov)."""
        x, y = batch
        weights = self.weight_parameters()
        with torch.no_grad():
            arch = self.sample()  # only grad_w is needed: no graph through alpha
        loss = F.cross_entropy(self.model(x, arch), y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        group_of = {p: g for g in self.w_opt.param_groups for p in g["params"]}
        out = []
        for p, g in zip(weights, grads, strict=True):
            group = group_of[p]
            d = torch.zeros_like(p) if g is None else g.detach()
            if group["weight_decay"]:
                d = d + group["weight_decay"] * p.detach()
            buf = self.w_opt.state.get(p, {}).get("momentum_buffer")
            if group["momentum"] and buf is not None:
                d = d + group["momentum"] * buf
            out.append(d)
        return out

    def arch_grads(self, batch: Batch) -> list[torch.Tensor]:
        """``grad_alpha L(w, alpha)`` on ``batch`` at the current weights (``None`` where unused)."""
        x, y = batch
        loss = F.cross_entropy(self.model(x, self.sample()), y)
        return list(torch.autograd.grad(loss, self.arch_parameters(), allow_unused=True))

    def unrolled_arch_step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """Second-order DARTS (Liu et al., 2019, Eq. 6-8; quark0/darts ``cnn/architect.py``).

        Eq. 6-7: the architecture gradient is that of ``L_val(w', alpha)`` with the virtual step
        ``w' = w - xi * grad_w L_train(w, alpha)`` (plus the momentum and weight-decay terms, see
        :meth:`virtual_step_direction`), ``xi`` the weight optimizer's current learning rate:
        ``grad_alpha L_val(w', alpha) - xi * grad^2_{alpha,w} L_train(w, alpha) grad_w' L_val(w', alpha)``.
        Eq. 8: the second-order term is a central finite difference,
        ``[grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)] / (2 eps)`` with
        ``w+- = w +- eps * grad_w' L_val(w', alpha)`` and ``eps = 0.01 / ||grad_w' L_val(w', alpha)||``.

        The difference is exact to ``O(eps^2)`` only where the losses are smooth: ReLU and max-pool kinks
        crossed between ``w-`` and ``w+`` add ``O(1/eps)`` errors (on a tiny supernet the term can be off by
        100 % or more at DARTS's radius), as in DARTS itself; :attr:`hvp_radius` sets the radius.

        The weights are moved in place (no copy of the supernet) and restored exactly afterwards.
        The extra forwards (train batch at ``w``, ``w+``, ``w-``; validation batch at ``w'``) run in
        the model's current mode, so in training mode they update BatchNorm's running statistics, as
        DARTS's do (its forward at ``w'`` runs on a copy of the network; the three others, as here, on
        the network itself). The reported ``val_loss``/``val_acc`` are those at ``w'``.
        """
        xi = float(self.w_opt.param_groups[0]["lr"])
        weights = self.weight_parameters()
        arch_params = self.arch_parameters()
        self.a_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            backup = [p.detach().clone() for p in weights]
        try:
            direction = self.virtual_step_direction(train_batch)
            with torch.no_grad():  # w -> w'
                for p, d in zip(weights, direction, strict=True):
                    p.sub_(d, alpha=xi)
            del direction
            x, y = val_batch
            logits = self.model(x, self.sample())
            loss = F.cross_entropy(logits, y)
            stats = {"val_loss": loss.item(), "val_acc": 100.0 * int((logits.argmax(1) == y).sum()) / len(y)}
            grads = torch.autograd.grad(loss, [*arch_params, *weights], allow_unused=True)
            del loss, logits
            # alpha/beta no forward used keep no gradient (Adam skips them), as in the first-order step
            dalpha = list(grads[:len(arch_params)])
            v = [torch.zeros_like(p) if g is None else g for p, g in zip(weights, grads[len(arch_params):],
                                                                           strict=True)]
            del grads
            norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in v)))
            if norm > 0:  # (a zero gradient has no second-order term)
                eps = self.hvp_radius / norm
                with torch.no_grad():  # w+ = w + eps v
                    for p, b, g in zip(weights, backup, v, strict=True):
                        p.copy_(b).add_(g, alpha=eps)
                grads_pos = self.arch_grads(train_batch)
                with torch.no_grad():  # w- = w - eps v
                    for p, b, g in zip(weights, backup, v, strict=True):
                        p.copy_(b).sub_(g, alpha=eps)
                grads_neg = self.arch_grads(train_batch)
                for i, (gp, gn) in enumerate(zip(grads_pos, grads_neg, strict=True)):
                    if gp is not None and gn is not None:  # (mixed mode: the same ones every forward)
                        term = (gp - gn) * (xi / (2 * eps))
                        dalpha[i] = -term if dalpha[i] is None else dalpha[i] - term
        finally:
            with torch.no_grad():
                for p, b in zip(weights, backup, strict=True):
                    p.copy_(b)
        for p, g in zip(arch_params, dalpha, strict=True):
            p.grad = g
        self.a_opt.step()
        return stats
