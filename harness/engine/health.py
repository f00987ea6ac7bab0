"""Numerical health of a run: no ``complete`` result from non-finite weights or logits.

A divergence judged from an epoch's mean loss misses one in the last step (the loss is computed
before the update that breaks the weights), so the weights themselves are checked after every
epoch - the supernet and architecture parameters (alpha, beta; ROME Sec. 3, Eq. 3-5) during
search, the evaluation network during training - and the test logits at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class NonFiniteError(FloatingPointError):
    """Parameters or outputs hold NaN or infinity."""


def nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the tensors in ``named`` that hold a NaN or an infinity."""
    bad = []
    with torch.no_grad():
        for name, t in named:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad.append(name)
    return bad


def check_finite(named: Iterable[tuple[str, torch.Tensor]], where: str) -> None:
    """Raise :class:`NonFiniteError` naming the first tensors of ``named`` that are not finite."""
    named = list(named)
    bad = nonfinite(named)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteError(f"{where}: {len(bad)} of {len(named)} parameter tensors hold NaN or inf ({shown})")


def check_model(model: torch.nn.Module, where: str, extra: Iterable[tuple[str, torch.Tensor]] = ()) -> None:
    """Parameters and buffers (BatchNorm statistics) of ``model``, plus ``extra`` tensors."""
    check_finite([*model.named_parameters(), *model.named_buffers(), *extra], where)
