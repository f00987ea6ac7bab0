"""Machine-independent checks of `harness check` (part a): numbers that any CPU must reproduce.

Every check computes a JSON-ready value that is compared with the committed one in
``harness/evidence/baselines/check.json`` (``"exact"``) by :func:`compare`:

* ``counts`` - parameters and multiply-adds of the evaluation network of known genotypes (DARTS_V1/V2,
  PC_DARTS, GDAS_V1) at the paper's CIFAR shape (ROME Table 2's "Params"; 20 cells, 36 channels);
  integers, equal.
* ``samplers`` - draws of the samplers of ROME Sec. 3.3-3.5 from a seeded ``torch.Generator`` against
  their closed forms: Gumbel-softmax frequencies vs ``softmax(logits)`` (Eq. 2-3), Gumbel-Top2 pair and
  inclusion frequencies vs :func:`~methods.sampling.topk_pair_probability` and
  :func:`~methods.sampling.top2_inclusion_probability` (Eq. 7-8, Sec. 3.5), Gumbel-Max over pairs vs
  ``softmax(beta)`` (Eq. 4-6). The largest |z| of a frequency against its closed form must stay below
  :data:`Z_MAX` (a false alarm per frequency has probability below 1e-6).
* ``method_samples`` - :meth:`sample` of every method on a small S3 supernet (``none`` among the ops)
  with fixed ``alpha``/``beta``: ROME with TD never runs ``none`` and gives every node exactly two
  distinct incoming edges (Eq. 1); op frequencies on each edge match the masked softmax of ``alpha``
  (largest |z| below :data:`Z_MAX`).
* ``derivation`` - the genotype each method derives from fixed architecture parameters in S0 and S3:
  equal.
* ``steps`` - three iterations of each method (``harness run``'s ``method.step``) on fixed float64
  tensors of a tiny supernet: losses, the Adam step count of the architecture (one per iteration,
  Algorithm 1) and three seeded projections of ``alpha``/``beta`` and of the weights after each
  iteration, within relative tolerance :data:`STEP_RTOL` (float64 rounding across instruction sets is
  ~1e-15; a wrong sample, a skipped or extra update moves them by orders of magnitude more).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from methods.base import build_method, method_class, method_hparams
from methods.sampling import (
    gumbel_max_pairs,
    gumbel_softmax_st,
    gumbel_topk,
    pairs,
    top2_inclusion_probability,
    topk_pair_probability,
)
from spaces.evalnet import count_macs, count_params
from spaces.genotype import KNOWN
from spaces.registry import build_eval_network, build_supernet

Z_MAX = 5.0  # |z| of an empirical frequency against its closed form (two-sided p ~ 6e-7 per frequency)
STEP_RTOL = 1e-6
STEP_ATOL = 1e-9
DRAWS = 4000
#: (method, options) of the step and derivation checks: every method and DARTS's second order
STEP_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("darts", {}), ("darts", {"order": 2}), ("gdas", {}), ("pcdarts", {"partial": 2}),
    ("rome-v1", {"k": 2}), ("rome-v2", {"k": 2}), ("rome-v2", {"k": 2, "td": False}),
]
COUNT_GENOTYPES = ("DARTS_V1", "DARTS_V2", "PC_DARTS", "GDAS_V1")


def _label(method: str, options: dict[str, Any]) -> str:
    return method + "".join(f" {k}={v}" for k, v in sorted(options.items()))


@contextmanager
def _float64() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _fixed(shape: tuple[int, ...], salt: float) -> torch.Tensor:
    """Deterministic, distinct values in [-1, 1] (no RNG: the same on every machine)."""
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.float64)
    return torch.sin(idx * 1.6180339887 + salt).reshape(shape)


# -- counts -------------------------------------------------------------------------------------------

def counts() -> dict[str, list[int]]:
    """Params and MACs of known genotypes' CIFAR evaluation networks (20 cells, 36 channels, 32 x 32)."""
    out = {}
    for name in COUNT_GENOTYPES:
        net = build_eval_network(KNOWN[name], network="cifar", c=36, layers=20, num_classes=10, auxiliary=False)
        out[name] = [count_params(net), count_macs(net, (1, 3, 32, 32))]
    return out


# -- samplers against closed forms ------------------------------------------------------------------------

def _max_z(freq: torch.Tensor, prob: torch.Tensor, n: int) -> float:
    se = torch.sqrt(prob * (1 - prob) / n).clamp_min(1e-12)
    return float(((freq - prob).abs() / se).max())


def samplers(draws: int = DRAWS, seed: int = 0) -> dict[str, Any]:
    """Largest |z| of sampled frequencies against closed forms, and structural counts (exact)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.tensor([0.6, -0.3, 1.1, 0.0, -1.2], dtype=torch.float64).expand(draws, 5).contiguous()
    p = F.softmax(logits[0], -1)
    hard, index = gumbel_softmax_st(logits, tau=1.0, generator=gen)
    freq = torch.bincount(index, minlength=5).double() / draws
    out: dict[str, Any] = {"gumbel_softmax_z": _max_z(freq, p, draws),
                           "gumbel_softmax_one_hot": bool((hard.detach().sum(-1) == 1).all())}
    mask = gumbel_topk(logits, 2, tau=1.0, generator=gen).detach()
    ones = (mask > 0.5)
    out["top2_exactly_two"] = bool((ones.sum(-1) == 2).all())
    out["top2_inclusion_z"] = _max_z(ones.double().mean(0), top2_inclusion_probability(p), draws)
    pair_ids = {pr: i for i, pr in enumerate(pairs(5))}
    got = torch.tensor([pair_ids[tuple(r.nonzero().flatten().tolist())] if int(r.sum()) == 2 else 0 for r in ones])
    out["top2_pair_z"] = _max_z(torch.bincount(got, minlength=len(pair_ids)).double() / draws,
                                topk_pair_probability(p), draws)
    beta = torch.tensor([0.3, -0.5, 0.9], dtype=torch.float64).expand(draws, 3).contiguous()
    edges = torch.stack([gumbel_max_pairs(b, 3, tau=1.0, generator=gen) for b in beta]).detach()
    out["max_pairs_exactly_two"] = bool(((edges > 0.5).sum(-1) == 2).all())
    pair_freq = torch.stack([((edges[:, i] > 0.5) & (edges[:, k] > 0.5)).double().mean() for i, k in pairs(3)])
    out["max_pairs_z"] = _max_z(pair_freq, F.softmax(beta[0], -1), draws)
    return out


# -- a method's own samples -------------------------------------------------------------------------------

def _method(method: str, options: dict[str, Any], space: str, seed: int = 0, c: int = 4, layers: int = 3):
    cls = method_class(method)
    opts = cls.resolve_options(options)
    torch.manual_seed(seed)
    net = build_supernet(space, c=c, layers=layers, num_classes=10, **cls.supernet_kwargs(opts))
    m = build_method(method, net, method_hparams(method), opts)
    m.begin_epoch(25, 50)  # mid-search, as harness profile (PC-DARTS updates alpha after 30 %)
    return m


def _set_arch(m: Any, scale: float = 1.5) -> None:
    with torch.no_grad():
        for i, p in enumerate(m.arch_parameters()):
            p.copy_(scale * _fixed(tuple(p.shape), salt=0.37 * (i + 1)).to(p.dtype))


def method_samples(draws: int = 400, seed: int = 0) -> dict[str, Any]:
    """Per method on S3: does any sample run ``none`` under TD, how many nodes lack two distinct edges,
    and the largest |z| of op frequencies against the masked softmax of alpha."""
    out: dict[str, Any] = {}
    for method in ("gdas", "rome-v1", "rome-v2"):
        m = _method(method, {"k": 1} if method.startswith("rome") else {}, "s3")
        _set_arch(m)
        td = method.startswith("rome")
        torch.manual_seed(seed)
        none_runs, bad_nodes = 0, 0
        freq = {t: torch.zeros(len(s.ops), s.n_ops, dtype=torch.float64) for t, s in m.shapes.items()}
        with torch.no_grad():
            for _ in range(draws):
                arch = m.sample()
                for t, shape in m.shapes.items():
                    a = arch[t]
                    active = a.active if a.active is not None else list(range(shape.n_edges))
                    for e in active:
                        freq[t][e, a.op_index[e]] += 1
                        none_runs += shape.ops[e][a.op_index[e]] == "none"
                    if td:
                        for edges in shape.node_edges:
                            bad_nodes += len({e for e in active if e in edges}) != 2
        zs = []
        for t in m.shapes:
            prob = F.softmax(m.op_logits(t).detach().double(), -1)
            counts_t = freq[t].sum(-1, keepdim=True).clamp_min(1)
            se = torch.sqrt(prob * (1 - prob) / counts_t).clamp_min(1e-12)
            zs.append(float(((freq[t] / counts_t - prob).abs() / se).max()))
        out[method] = {"none_run_under_td": none_runs if td else 0, "nodes_without_two_edges": bad_nodes,
                       "op_freq_z": max(zs)}
    return out


# -- derivation ---------------------------------------------------------------------------------------

def derivation() -> dict[str, Any]:
    """The genotype derived from fixed architecture parameters, per method and space (S0, S3)."""
    out = {}
    for method, options in STEP_METHODS:
        for space in ("s0", "s3"):
            m = _method(method, options, space)
            _set_arch(m)
            out[f"{_label(method, options)} {space}"] = m.genotype().to_dict()
    return out


# -- one method step on fixed tensors ----------------------------------------------------------------------

def _projections(vec: torch.Tensor, seed: int) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(3, vec.numel(), generator=gen, dtype=torch.float64)
    return (proj @ vec.double()).tolist()


def steps(iterations: int = 3, seed: int = 0) -> dict[str, Any]:
    """Per method: for each of ``iterations`` steps on fixed float64 batches, the losses, the number of
    Adam steps the architecture took so far and projections of the architecture and weights."""
    out = {}
    with _float64():
        for method, options in STEP_METHODS:
            m = _method(method, options, "s3", seed=seed, c=4, layers=3)
            gen = torch.Generator().manual_seed(seed + 1)
            x = torch.randn(2, 4, 3, 8, 8, generator=gen, dtype=torch.float64)
            y = torch.randint(0, 10, (2, 4), generator=gen)
            torch.manual_seed(seed + 2)  # the methods' own Gumbel draws
            trace = []
            for it in range(iterations):
                stats = m.step((x[0], y[0]), (x[1], y[1]))
                arch = torch.cat([p.detach().flatten() for p in m.arch_parameters()])
                weights = torch.cat([p.detach().flatten() for p in m.weight_parameters()])
                adam = [int(s["step"]) for s in m.a_opt.state.values() if "step" in s]
                trace.append({"iteration": it, "train_loss": stats.get("train_loss"),
                              "val_loss": stats.get("val_loss"), "arch_steps": max(adam, default=0),
                              "arch": _projections(arch, 7), "weights": _projections(weights, 11)})
            out[_label(method, options)] = trace
    return out


#: name -> computation of the exact part, in report order
CHECKS: dict[str, Callable[[], Any]] = {
    "counts": counts, "samplers": samplers, "method_samples": method_samples, "derivation": derivation,
    "steps": steps,
}


def compute(names: list[str] | None = None) -> dict[str, Any]:
    return {name: fn() for name, fn in CHECKS.items() if names is None or name in names}


# -- comparing -------------------------------------------------------------------------------------------

def _close(a: Any, b: Any, path: str, diffs: list[str]) -> None:
    """Collect where ``a`` (now) differs from ``b`` (committed): floats by rtol/atol, the rest equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                diffs.append(f"{path}/{k}: {'missing now' if k not in a else 'not committed'}")
            else:
                _close(a[k], b[k], f"{path}/{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _close(u, v, f"{path}[{i}]", diffs)
    elif isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=STEP_RTOL, abs_tol=STEP_ATOL):
            diffs.append(f"{path}: {b:.10g} -> {a:.10g}")
    elif a != b:
        diffs.append(f"{path}: {b} -> {a}")


def invariants(now: dict[str, Any]) -> list[str]:
    """Closed-form and structural violations in ``now`` (independent of any committed value)."""
    bad = []
    s = now.get("samplers", {})
    for key, value in s.items():
        if key.endswith("_z") and value > Z_MAX:
            bad.append(f"samplers/{key}: |z| {value:.1f} > {Z_MAX:g} against the closed form")
        elif isinstance(value, bool) and not value:
            bad.append(f"samplers/{key}: violated")
    for method, r in now.get("method_samples", {}).items():
        if r["none_run_under_td"]:
            bad.append(f"method_samples/{method}: 'none' ran {r['none_run_under_td']} times under TD")
        if r["nodes_without_two_edges"]:
            bad.append(f"method_samples/{method}: {r['nodes_without_two_edges']} node samples without two "
                       "distinct incoming edges (Eq. 1)")
        if r["op_freq_z"] > Z_MAX:
            bad.append(f"method_samples/{method}: op frequencies |z| {r['op_freq_z']:.1f} > {Z_MAX:g} "
                       "against softmax(alpha)")
    for label, trace in now.get("steps", {}).items():
        for t in trace:
            if t["arch_steps"] != t["iteration"] + 1:
                bad.append(f"steps/{label}: {t['arch_steps']} architecture steps after iteration "
                           f"{t['iteration'] + 1} (Algorithm 1: one per iteration)")
                break
    return bad


def compare(now: dict[str, Any], committed: dict[str, Any]) -> dict[str, list[str]]:
    """Per check name, what is wrong: invariant violations, then differences from the committed values
    (``z`` statistics are compared by :data:`Z_MAX` only, not with the committed value)."""
    out: dict[str, list[str]] = {}
    violated = invariants(now)
    for name in now:
        diffs = [v for v in violated if v.startswith(name + "/")]
        if name not in committed:
            diffs.append("not in the baseline file: run `harness check --update`")
        elif name not in ("samplers", "method_samples"):
            _close(now[name], committed[name], name, diffs)
        out[name] = diffs
    return out


__all__ = ["CHECKS", "COUNT_GENOTYPES", "STEP_METHODS", "Z_MAX", "compare", "compute", "counts", "derivation",
           "invariants", "method_samples", "samplers", "steps"]
