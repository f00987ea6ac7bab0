"""Recorded architecture weights (``SearchMethod.arch_weights``): shapes per space, op rows summing to 1,
edge inclusion probabilities summing to each node's in-degree (ROME Sec. 3.5), and the search history."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from methods.base import METHODS, SearchHParams, build_method
from methods.sampling import pairs, top2_inclusion_probability, topk_inclusion_probability
from spaces.registry import build_supernet

ALL = ("darts", "pcdarts", "gdas", "rome-v1", "rome-v2")
SPACES = ("s0", "s1", "s2", "s3", "nb1s1", "nb1s2")
TOL = 5e-4  # values are rounded to 4 decimals


def make(name: str, space: str, options: dict | None = None):
    cls = METHODS[name]
    opts = dict(options or {})
    if name.startswith("rome"):
        opts.setdefault("k", 2)
    net = build_supernet(space, c=4, layers=3, num_classes=3, **cls.supernet_kwargs(cls.resolve_options(opts)))
    method = build_method(name, net, SearchHParams(epochs=2), opts)
    method.begin_epoch(0, 2)
    with torch.no_grad():  # weights far from uniform, so that the sums are a real check
        for p in method.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 2)
    return method


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", ALL)
def test_arch_weights_shapes_and_sums(name: str, space: str) -> None:
    method = make(name, space)
    w = method.arch_weights()
    json.dumps(w)  # plain lists: goes into result.json
    assert set(w) == set(method.shapes)
    for t, shape in method.shapes.items():
        ops = torch.tensor(w[t]["ops"])
        assert ops.shape == (len(shape.ops), shape.n_ops)
        assert torch.allclose(ops.sum(-1), torch.ones(len(shape.ops)), atol=TOL * shape.n_ops)
        assert (ops >= 0).all()
        if name.startswith("rome") and not method.allow_none:  # TD: none is never sampled
            for e, names in enumerate(shape.ops):
                assert all(ops[e, o] == 0 for o, n in enumerate(names) if n == "none")
        has_edges = name in ("pcdarts", "rome-v1", "rome-v2") or not shape.ops_on_edges
        assert ("edges" in w[t]) == has_edges
        if not has_edges:
            continue
        edges = torch.tensor(w[t]["edges"])
        assert edges.shape == (shape.n_edges,)
        for node_edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
            total = float(edges[list(node_edges)].sum())
            if name.startswith("rome"):  # inclusion probabilities: the node keeps k edges
                assert total == pytest.approx(k, abs=TOL * len(node_edges))
            elif k < len(node_edges):  # softmax over the node's inputs
                assert total == pytest.approx(1.0, abs=TOL * len(node_edges))


def test_arch_weights_are_compact() -> None:
    """A few KB per epoch on S0 (14 edges x 8 ops x 2 cell types, plus edges)."""
    size = len(json.dumps(make("rome-v2", "s0").arch_weights()))
    assert size < 4000


def test_rome_v2_edges_are_the_top2_marginal() -> None:
    """v2: per node ``p_i + sum_{j != i} p_j p_i / (1 - p_j)`` with ``p = softmax(beta)`` (Sec. 3.5)."""
    method = make("rome-v2", "s0")
    shape = method.shapes["normal"]
    got = torch.tensor(method.arch_weights()["normal"]["edges"])
    for edges in shape.node_edges:
        p = torch.softmax(method.beta["normal"].detach()[list(edges)], -1)
        expected = torch.stack([p[i] + sum(p[j] * p[i] / (1 - p[j]) for j in range(len(p)) if j != i)
                                for i in range(len(p))])
        assert torch.allclose(got[list(edges)], expected, atol=TOL)


def test_rome_v1_edges_sum_the_pair_softmax() -> None:
    method = make("rome-v1", "s0")
    shape = method.shapes["reduce"]
    got = torch.tensor(method.arch_weights()["reduce"]["edges"])
    for n, edges in enumerate(shape.node_edges):
        q = torch.softmax(method.beta[f"reduce_{n}"].detach(), -1)
        expected = [sum(float(q[s]) for s, pair in enumerate(pairs(len(edges))) if i in pair)
                    for i in range(len(edges))]
        assert got[list(edges)].tolist() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_topk_inclusion_matches_enumeration_and_sampling(k: int) -> None:
    """Against the probability of every ordered draw without replacement and against Gumbel-Top-k draws."""
    p = torch.softmax(torch.tensor([0.3, -1.0, 1.2, 0.0, 0.5], dtype=torch.float64), -1)
    expected = torch.zeros(5, dtype=torch.float64)
    for order in itertools.permutations(range(5), k):
        prob, left = 1.0, 1.0
        for i in order:
            prob, left = prob * float(p[i]) / left, left - float(p[i])
        expected[list(order)] += prob
    got = topk_inclusion_probability(p, k)
    assert torch.allclose(got, expected, atol=1e-12)
    assert float(got.sum()) == pytest.approx(k)
    if k == 2:
        assert torch.allclose(top2_inclusion_probability(p), expected, atol=1e-12)
    g = torch.Generator().manual_seed(0)
    noise = -torch.log(-torch.log(torch.rand(200_000, 5, generator=g, dtype=torch.float64)))
    top = (p.log() + noise).topk(k, dim=-1).indices
    freq = torch.zeros(5, dtype=torch.float64).scatter_add_(0, top.flatten(), torch.ones(top.numel(),
                                                                                            dtype=torch.float64))
    assert torch.allclose(freq / 200_000, expected, atol=5e-3)
