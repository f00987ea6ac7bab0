"""The search loop: epochs of bi-level steps on the two search splits (ROME Alg. 1; DARTS
``cnn/train_search.py``), knowing nothing of files; :class:`harness.runs.run.Run` gives it the state to resume
from and a ``save`` callback that writes the checkpoint after each epoch.

Hooks for what an epoch reports: ``on_epoch(entry, method)`` sees each history entry (loss, accuracy,
tau, lr, the derived genotype, the architecture weights and their entropy) and the method before it is
saved (the TensorBoard logger of :mod:`harness.runs.tblog`); :func:`epoch_entry` builds the entry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from harness.data import datasets as data
from harness.engine import health
from harness.spec.runspec import RunSpec
from harness.utils.rng import set_rng_state
from methods.base import SearchMethod, build_method, method_class
from spaces.registry import build_supernet

EpochHook = Callable[[dict[str, Any], SearchMethod], None]


def build_search_method(spec: RunSpec, space: str, num_classes: int, in_channels: int,
                        device: torch.device) -> SearchMethod:
    """The supernet of ``spec.search`` and the method on it; the search spec is the method's hyper-parameters."""
    s = spec.search
    assert s is not None
    cls = method_class(spec.method)
    extra: dict[str, Any] = {} if s.stem == "cifar" else {"stem": s.stem}
    if (s.head, s.pool_bn) != ("plain", True):  # DARTS spaces only (validated): other builders take neither
        extra.update(head=s.head, pool_bn=s.pool_bn)
    net = build_supernet(space, c=s.channels, layers=s.layers, num_classes=num_classes, in_channels=in_channels,
                         **extra, **cls.supernet_kwargs(spec.options)).to(device)
    return build_method(spec.method, net, s, spec.options)


#: decimals of the recorded entropies (nats)
ENTROPY_DECIMALS = 4


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """``-sum p log p`` over the last dimension, in nats (``0 log 0 = 0``: ops a method never samples)."""
    return torch.special.entr(p).sum(-1)


def _edge_distributions(method: SearchMethod, cell_type: str) -> list[torch.Tensor]:
    """Per node that keeps fewer inputs than it has candidates, the distribution its inputs are chosen
    from: ``softmax(beta)`` over its candidate edges (PC-DARTS's edge normalisation, ROME-v2's
    Gumbel-Top-2, every method's ``beta`` where ops sit on nodes), or ROME-v1's softmax over the node's
    input subsets (``beta['<cell>_<node>']``, Eq. 4-5). Empty where the method has no edge parameters."""
    shape, beta = method.shapes[cell_type], method.beta
    out = []
    for node, (edges, k) in enumerate(zip(shape.node_edges, shape.in_degree, strict=True)):
        if k >= len(edges):
            continue  # nothing to choose: every input is kept
        if cell_type in beta:
            out.append(F.softmax(beta[cell_type][list(edges)], dim=-1))
        elif f"{cell_type}_{node}" in beta:
            out.append(F.softmax(beta[f"{cell_type}_{node}"], dim=-1))
    return out


def arch_entropy(method: SearchMethod) -> dict[str, dict[str, float]]:
    """Per cell type, how far the architecture distribution is from uniform (a search whose entropy
    stays at its start has not learnt an architecture, whatever it derives):

    * ``ops``: the mean over op decisions of the entropy of ``softmax(alpha)`` over the ops the method
      may sample (uniform: ``log 7`` in S0, ``log 3`` in S3, ``log 2`` for ROME in S3, which never samples ``none``);
    * ``edges``: the mean over choosing nodes of the entropy of their input distribution
      (:func:`_edge_distributions`); absent where the method has no edge parameters (DARTS and GDAS
      in the DARTS spaces rank a node's inputs by op weights, which are no distribution over them).
    """
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for t in method.shapes:
            entry = {"ops": round(float(_entropy(method.op_probabilities(t)).mean()), ENTROPY_DECIMALS)}
            dists = _edge_distributions(method, t)
            if dists:
                entry["edges"] = round(sum(float(_entropy(d)) for d in dists) / len(dists), ENTROPY_DECIMALS)
            out[t] = entry
    return out


def epoch_entry(method: SearchMethod, epoch: int, lr: float, steps: int, sums: dict[str, float],
                seconds: float) -> dict[str, Any]:
    """One epoch of ``result.json``'s search history."""
    genotype = method.genotype()
    entropy = arch_entropy(method)
    normal = entropy.get("normal") or next(iter(entropy.values()))  # NAS-Bench-1Shot1: its one cell
    return {"epoch": epoch, "tau": method.tau, "lr": lr, "steps": steps,
            **{k: v / max(steps, 1) for k, v in sums.items()},
            "skip_connect_normal": genotype.skip_normal(), "parameterless_normal": genotype.parameterless_normal(),
            "op_entropy_normal": normal["ops"], "entropy": entropy,
            "genotype": genotype.to_dict(), "arch_weights": method.arch_weights(), "seconds": seconds}


def search_loop(spec: RunSpec, bundle: data.DataBundle, space: str, device: torch.device, *,
                resume: dict[str, Any] | None = None, save: Callable[[dict[str, Any]], None] | None = None,
                progress: bool = False, on_epoch: EpochHook | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Search ``spec.search.epochs`` epochs (from ``resume``'s next epoch); returns the derived genotype
    and the history. The weight lr follows a cosine schedule from ``w_lr`` to ``w_lr_min`` (DARTS).

    The data order of an epoch depends only on the seed and the epoch, so a resumed search sees the
    same batches as an uninterrupted one.
    """
    s = spec.search
    assert s is not None
    method = build_search_method(spec, space, bundle.num_classes, bundle.in_channels, device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(method.w_opt, s.epochs, eta_min=s.w_lr_min)
    history: list[dict[str, Any]] = []
    start = 0
    if resume is not None:
        method.load_state_dict(resume["method"])
        sched.load_state_dict(resume["scheduler"])
        history, start = resume["history"], int(resume["next_epoch"])
        set_rng_state(resume["rng"])  # after building: the state of an uninterrupted run at this epoch
    bar = tqdm(range(start, s.epochs), desc=f"search {spec.run_id}", disable=not progress, initial=start,
               total=s.epochs)
    for epoch in bar:
        method.model.train()
        method.begin_epoch(epoch, s.epochs)
        order = spec.seed * 100_003 + epoch
        loaders = zip(*(data.split_loader(bundle, split, s.batch, shuffle=True, seed=seed, path=spec.data.path,
                                          device=device, cap=s.subset, distribute=False)
                        for split, seed in (("search_train", order), ("search_val", order + 50_000))), strict=False)
        sums: dict[str, float] = {}
        steps = 0
        t0 = time.time()
        for (xt, yt), (xv, yv) in loaders:
            stats = method.step((xt.to(device), yt.to(device)), (xv.to(device), yv.to(device)))
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"search diverged at epoch {epoch}: {stats}")
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        sched.step()
        health.check_model(method.model, f"search epoch {epoch}",  # a NaN of the last step too
                           extra=[(f"arch[{i}]", p) for i, p in enumerate(method.arch_parameters())])
        entry = epoch_entry(method, epoch, sched.get_last_lr()[0], steps, sums, time.time() - t0)
        history.append(entry)
        if on_epoch is not None:
            on_epoch(entry, method)
        bar.set_postfix(skip=entry["skip_connect_normal"], loss=f"{entry.get('train_loss', 0):.3f}")
        if save is not None:
            save({"method": method.state_dict(), "scheduler": sched.state_dict(), "history": history,
                  "next_epoch": epoch + 1})
    return method.genotype(), history
