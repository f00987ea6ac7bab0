"""NAS-Bench-1Shot1 spaces (spaces/nasbench.py): space definitions, mixed and sampled supernet modes,
every method's search step and derivation with ops on nodes, the NAS-Bench-101 form (matrix, ops, hash)
and its evaluation network, the table lookup, and tiny end-to-end runs on the digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import methods  # noqa: F401  (registers every method)
from harness.runs.layout import validate_result
from harness.runs.run import run
from harness.spec import benchmarks
from harness.spec.runspec import make_config
from methods.base import METHODS, SearchHParams, build_method
from spaces import nasbench
from spaces.base import Mixed, Sampled
from spaces.evalnet import count_params
from spaces.nasbench import CELL, SPACES, NASBenchGenotype
from spaces.registry import SUPERNETS, build_supernet

# nasbench-1shot1 search_space_{1,2,3}.py: parents of nodes 1..n, then of the output
PARENTS = {"nb1s1": (1, 2, 2, 2, 2), "nb1s2": (1, 1, 2, 2, 3), "nb1s3": (1, 1, 1, 2, 2, 2)}
NB_SPACES = sorted(PARENTS)
NB101_CANONICAL = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
C, LAYERS, HW, BATCH, CLASSES = 4, 3, 8, 4, 3


def make(name: str, space: str, options: dict | None = None):
    cls = METHODS[name]
    opts = dict(options or {})
    if name.startswith("rome"):
        opts.setdefault("k", 2)
    net = build_supernet(space, c=C, layers=LAYERS, num_classes=CLASSES,
                         **cls.supernet_kwargs(cls.resolve_options(opts)))
    method = build_method(name, net, SearchHParams(epochs=2), opts)
    method.begin_epoch(0, 2)
    return method


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, HW, HW, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g)


def raw_in_degrees(matrix: list[list[int]], n_nodes: int) -> list[int]:
    """In-degree of nodes 1..n and the output, skipping the dummy node of spaces 1-2."""
    mat = np.asarray(matrix)
    cols = list(range(1, n_nodes + 1)) + [mat.shape[0] - 1]
    if n_nodes == 4:
        assert not mat[5].any() and not mat[:, 5].any()  # the dummy node is unconnected
    return [int(mat[:, c].sum()) for c in cols]


def check_nb101_form(d: dict, space: str) -> None:
    """A recorded genotype: 7 x 7 upper-triangular matrix with the space's parent counts, at most 9
    edges, and the hash nasbench-pytorch gives for the same spec."""
    from nasbench_pytorch.model import ModelSpec
    from nasbench_pytorch.model.graph_util import hash_module

    base = space.removesuffix("-orig")
    mat = np.asarray(d["matrix"])
    assert mat.shape == (7, 7) and not np.tril(mat).any()
    assert raw_in_degrees(d["matrix"], len(PARENTS[base]) - 1) == list(PARENTS[base])
    assert mat.sum() <= 9
    assert d["ops"][0] == "input" and d["ops"][-1] == "output" and len(d["ops"]) == 7
    spec = ModelSpec(mat, list(d["ops"]))
    spec.matrix = np.asarray(spec.matrix)  # nasbench-pytorch's hash_spec needs numpy
    assert d["pruned_ops"] == spec.ops and d["pruned_matrix"] == spec.matrix.tolist()
    if "skip-connect" in spec.ops:
        labels = [-1] + [(NB101_CANONICAL + ["skip-connect"]).index(o) for o in spec.ops[1:-1]]
        assert d["hash"] == hash_module(spec.matrix, labels + [-2])
        assert not d["in_nasbench101"]
    else:
        assert d["hash"] == spec.hash_spec(NB101_CANONICAL)
        assert d["in_nasbench101"]


# -- spaces and benchmarks -----------------------------------------------------------------------------

@pytest.mark.parametrize("bench_id", [f"{s}-{d}" for s in NB_SPACES for d in ("c10", "digits")])
def test_benchmarks_resolve(bench_id: str) -> None:
    bench = benchmarks.get(bench_id)
    assert bench.space in SUPERNETS and bench.space in PARENTS
    p = make_config("gdas", bench_id, "paper", 0).search  # nasbench-1shot1's search protocol
    assert (p.batch, p.epochs, p.channels, p.layers) == (96, 50, 16, 9)
    assert benchmarks.expand("nasbench") == [f"{s}-c10" for s in NB_SPACES]
    assert benchmarks.get(bench_id.replace("-", "-orig-", 1)).space == f"{bench.space}-orig"


@pytest.mark.parametrize("space", sorted(SPACES))
def test_space_choices(space: str) -> None:
    shape = build_supernet(space, c=C, layers=1, num_classes=2).shapes[CELL]
    base = space.removesuffix("-orig")
    n = len(PARENTS[base]) - 1
    assert shape.in_degree == PARENTS[base] and sum(shape.in_degree) <= 9
    assert not shape.ops_on_edges and len(shape.ops) == n
    expected_ops = {"maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu" if space.endswith("orig") else "skip-connect"}
    assert all(set(ops) == expected_ops for ops in shape.ops)
    for node, edges in enumerate(shape.node_edges, start=1):  # every earlier node is a candidate parent
        assert [shape.edge_src[e] for e in edges] == list(range(node))
    assert shape.in_degree[0] == len(shape.node_edges[0]) == 1  # node 1: parent fixed to the input
    if base == "nb1s1":  # node 2: parents fixed to [0, 1]
        assert shape.in_degree[1] == len(shape.node_edges[1]) == 2


# -- supernet modes ------------------------------------------------------------------------------------

def _record_calls(net) -> list[tuple[str, int, int]]:
    calls: list[tuple[str, int, int]] = []
    cell = net.cells[0]
    for d, node in enumerate(cell.nodes):
        for o, op in enumerate(node.ops):
            op.register_forward_hook(lambda *_, d=d, o=o: calls.append(("op", d, o)))
    for j, proj in enumerate(cell.proj):
        proj.register_forward_hook(lambda *_, j=j: calls.append(("proj", j, 0)))
    cell.proj_out.register_forward_hook(lambda *_: calls.append(("proj_out", 0, 0)))
    return calls


@pytest.mark.parametrize("space", NB_SPACES)
def test_sampled_mode_runs_only_sampled_ops_and_edges(space: str) -> None:
    net = build_supernet(space, c=C, layers=1, num_classes=CLASSES)
    shape = net.shapes[CELL]
    n = len(shape.ops)
    calls = _record_calls(net)
    # every node takes its lowest candidate parents, the output skipping the input: the last nodes are
    # loose ends, the output's input projection idle
    parents = [list(range(k)) for k in shape.in_degree[:-1]] + [list(range(1, shape.in_degree[-1] + 1))]
    active = [e for node, ps in enumerate(parents) for e in shape.node_edges[node] if shape.edge_src[e] in ps]
    op_index = [(d + 1) % 3 for d in range(n)]
    needed, frontier = set(), [n + 1]
    while frontier:
        for p in parents[frontier.pop() - 1]:
            if p and p not in needed:
                needed.add(p)
                frontier.append(p)
    assert needed != set(range(1, n + 1))  # the test has a loose end to skip
    arch = Sampled(op_index, torch.ones(n), active, torch.ones(shape.n_edges))
    out = net(torch.randn(2, 3, HW, HW), {CELL: arch})
    assert out.shape == (2, CLASSES)
    expected = {("op", j - 1, op_index[j - 1]) for j in needed}
    expected |= {("proj", j - 1, 0) for j in needed if 0 in parents[j - 1]}
    expected |= {("proj_out", 0, 0)} if 0 in parents[-1] else set()
    assert set(calls) == expected and len(calls) == len(expected)


@pytest.mark.parametrize("space", NB_SPACES)
def test_mixed_mode_runs_every_op_and_weights_inputs(space: str) -> None:
    net = build_supernet(space, c=C, layers=1, num_classes=CLASSES)
    shape = net.shapes[CELL]
    calls = _record_calls(net)
    weights = torch.full((len(shape.ops), 3), 1 / 3)
    x = torch.randn(2, 3, HW, HW)
    net.eval()
    out = net(x, {CELL: Mixed(weights)})
    assert {c for c in calls if c[0] == "op"} == {("op", d, o) for d in range(len(shape.ops)) for o in range(3)}
    # edge weights are used: zero weight on every edge into the output leaves only the bias
    edge_w = torch.ones(shape.n_edges)
    edge_w[list(shape.node_edges[-1])] = 0.0
    zeroed = net(x, {CELL: Mixed(weights, edge_w)})
    assert torch.allclose(zeroed, net.classifier.bias.expand_as(zeroed))
    assert not torch.allclose(out, zeroed)


# -- methods ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("space", NB_SPACES)
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_searches_and_derives(name: str, space: str) -> None:
    method = make(name, space)
    arch0 = [p.detach().clone() for p in method.arch_parameters()]
    stats = method.step(batch(1), batch(2))
    assert "train_loss" in stats and all(np.isfinite(list(stats.values())))
    if method.arch_update_enabled():
        assert any(not torch.equal(a, p) for a, p in zip(arch0, method.arch_parameters(), strict=True))
    sample = method.sample()[CELL]
    shape = method.shapes[CELL]
    if isinstance(sample, Sampled) and sample.active is not None:  # topology sampling: in_degree per node
        for edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
            assert len(set(edges) & set(sample.active)) == k
    genotype = method.genotype()  # NASBenchGenotype checks parent counts and ops itself
    assert isinstance(genotype, NASBenchGenotype)
    check_nb101_form(genotype.to_dict(), space)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_derivation_follows_alpha_and_beta(name: str) -> None:
    """Per node the argmax op and the in_degree parents of largest edge weight."""
    method = make(name, "nb1s2")
    shape = method.shapes[CELL]
    want_ops = ("skip-connect", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu")
    want_parents = ((0,), (1,), (0, 2), (1, 3), (2, 3, 4))
    with torch.no_grad():
        ops = shape.ops[0]
        method.alpha[CELL].copy_(torch.tensor([[3.0 if o == w else 0.0 for o in ops] for w in want_ops]))
        for node, (edges, ps) in enumerate(zip(shape.node_edges, want_parents, strict=True)):
            scores = torch.tensor([3.0 if shape.edge_src[e] in ps else 0.0 for e in edges])
            if CELL in method.beta:
                method.beta[CELL][list(edges)] = scores
            else:  # ROME-v1: one parameter per k-subset of the node's inputs
                from methods.rome import subsets

                subs = subsets(len(edges), shape.in_degree[node])
                method.beta[f"{CELL}_{node}"].copy_(torch.tensor([3.0 if s == ps else 0.0 for s in subs]))
    g = method.genotype()
    assert g.ops == want_ops and g.parents == want_parents
    assert g.skip_normal() == 1 and g.parameterless_normal() == 2


# -- NAS-Bench-101 form -------------------------------------------------------------------------------

def test_hash_is_nasbench101s_and_isomorphism_invariant() -> None:
    a = NASBenchGenotype("nb1s2-orig", ("conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu"),
                         ((0,), (0,), (1, 2), (0, 3), (0, 3, 4)))
    b = NASBenchGenotype("nb1s2-orig", ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu", "conv3x3-bn-relu"),
                         ((0,), (0,), (1, 2), (0, 3), (0, 3, 4)))  # nodes 1 and 2 swapped
    c = NASBenchGenotype("nb1s2-orig", ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"),
                         ((0,), (0,), (1, 2), (0, 3), (0, 3, 4)))
    for g in (a, b, c):
        check_nb101_form(g.to_dict(), g.space)
    assert a.hash == b.hash != c.hash
    assert NASBenchGenotype.from_dict(a.to_dict()) == a


def test_loose_ends_are_pruned_and_bad_cells_refused() -> None:
    # node 4 does not reach the output: pruned, so its skip-connect leaves the cell in NAS-Bench-101
    g = NASBenchGenotype("nb1s1", ("conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "skip-connect"),
                         ((0,), (0, 1), (1, 2), (0, 3), (2, 3)))
    d = g.to_dict()
    assert "skip-connect" not in d["pruned_ops"] and d["in_nasbench101"] and len(d["pruned_ops"]) == 5
    assert g.skip_normal() == 1  # the collapse indicator counts every node of the derived cell
    with pytest.raises(ValueError, match="needs 2 distinct earlier parents"):
        NASBenchGenotype("nb1s1", g.ops, ((0,), (0, 1), (1, 2), (0, 3), (2,)))
    with pytest.raises(ValueError, match="not in nb1s1-orig"):
        NASBenchGenotype("nb1s1-orig", g.ops, g.parents)


def test_eval_network_has_skip_connect_without_touching_nasbench_pytorch() -> None:
    import nasbench_pytorch.model.model as nb_model

    g = NASBenchGenotype("nb1s3", ("skip-connect", "conv3x3-bn-relu", "skip-connect", "maxpool3x3", "skip-connect"),
                         ((0,), (1,), (2,), (1, 3), (0, 4), (4, 5)))
    net = g.build_network(c=4, layers=3, num_classes=CLASSES)
    assert "skip-connect" not in nb_model.OP_MAP  # the op map was swapped for the construction only
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, CLASSES)
    assert not any(isinstance(m, nb_model.Placeholder) for m in net.modules())
    # skip-connect carries no parameters, like maxpool3x3: the same graph with max-pools in nasbench-pytorch's
    # own Network has as many, besides the unused scalars of its Placeholder modules
    pools = NASBenchGenotype("nb1s3", tuple(op.replace("skip-connect", "maxpool3x3") for op in g.ops), g.parents)
    ref = nb_model.Network(pools.spec(), num_labels=CLASSES, stem_out_channels=4, num_stacks=3,
                           num_modules_per_stack=1)
    placeholders = sum(p.numel() for m in ref.modules() if isinstance(m, nb_model.Placeholder) for p in m.parameters())
    assert placeholders > 0 and count_params(net) == count_params(ref) - placeholders


def test_nasbench101_table_lookup(tmp_path, monkeypatch) -> None:
    orig = NASBenchGenotype("nb1s1-orig", ("conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu"),
                            ((0,), (0, 1), (1, 2), (0, 3), (3, 4)))
    skip = NASBenchGenotype("nb1s1", ("conv3x3-bn-relu", "skip-connect", "conv3x3-bn-relu", "conv3x3-bn-relu"),
                            ((0,), (0, 1), (1, 2), (0, 3), (3, 4)))
    monkeypatch.delenv(nasbench.NB101_TABLE_ENV, raising=False)
    found, note = orig.tabulated_eval()
    assert found is None and nasbench.NB101_TABLE_ENV in note
    table = tmp_path / "nb101.json"
    table.write_text(f'{{"{orig.hash}": 0.9375, "bad": 93.75}}')
    assert nasbench.lookup(orig.hash, table) == 0.9375 and nasbench.lookup(skip.hash, table) is None
    with pytest.raises(ValueError, match="fraction"):
        nasbench.lookup("bad", table)
    monkeypatch.setenv(nasbench.NB101_TABLE_ENV, str(table))
    found, note = orig.tabulated_eval()
    assert found["test_error"] == pytest.approx(6.25) and "looked up" in note
    found, note = skip.tabulated_eval()
    assert found is None and "skip-connect" in note


# -- end to end ---------------------------------------------------------------------------------------

TINY = dict(search_epochs=1, search_subset=64, search_batch=16, search_layers=3, search_channels=4,
            eval_epochs=1, eval_subset=64, eval_batch=32, eval_channels=4, eval_layers=3)


@pytest.mark.parametrize("space", NB_SPACES)
@pytest.mark.parametrize("name", ["gdas", "rome-v2"])
def test_runs_end_to_end_on_digits(name: str, space: str, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(nasbench.NB101_TABLE_ENV, raising=False)
    extra = {"k": 2} if name.startswith("rome") else {}
    result = run(make_config(name, f"{space}-digits", "smoke", **TINY, **extra), tmp_path)
    assert result["status"] == "complete", result.get("reason")
    validate_result(result)
    d = result["genotype"]
    assert d["space"] == space
    check_nb101_form(d, space)
    assert "trained" in result["eval"]["note"]
    (entry,) = result["search"]["history"]
    ops = entry["genotype"]["ops"][1:len(PARENTS[space])]
    assert entry["skip_connect_normal"] == ops.count("skip-connect")
    assert entry["parameterless_normal"] == ops.count("skip-connect") + ops.count("maxpool3x3")


def test_run_looks_up_original_op_set_cells(tmp_path, monkeypatch) -> None:
    seen = []
    monkeypatch.setenv(nasbench.NB101_TABLE_ENV, str(tmp_path / "table.json"))
    monkeypatch.setattr(nasbench, "lookup", lambda h, path: seen.append(h) or 0.9)
    result = run(make_config("gdas", "nb1s1-orig-digits", "smoke", **TINY), tmp_path)
    assert result["status"] == "complete", result.get("reason")
    assert seen == [result["genotype"]["hash"]]
    assert result["eval"]["test_error"] == pytest.approx(10.0) and result["eval"]["source"] == "nasbench101-table"
    assert result["eval"]["params"] > 0 and "looked up" in result["eval"]["note"]
