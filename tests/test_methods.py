"""Search methods (methods/): one search step each, sampled-mode execution, GDAS's straight-through
gradients and tau schedule, ROME's topology disentanglement and gradient accumulation (Eq. 11-12),
derivation, determinism and checkpoints. Supernets are tiny (4 channels, 3 cells, 8 x 8 inputs)."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import methods  # noqa: F401  (registers every method)
from methods.base import METHODS, SearchHParams, build_method, method_hparams, tau_schedule
from methods.sampling import pairs
from spaces.base import Mixed, Sampled
from spaces.darts import EDGES, N_EDGES, NODE_EDGES, SPACES
from spaces.supernet import SearchNetwork

C, LAYERS, HW, BATCH, CLASSES = 4, 3, 8, 4, 3
ROME = ("rome-v1", "rome-v2")


def make(name: str, space: str = "s0", options: dict[str, Any] | None = None,
         hp: SearchHParams | None = None, epoch: int = 0):
    """A method on a tiny supernet (layers=3: cell 0 normal, cells 1-2 reduction); rome with K=2."""
    cls = METHODS[name]
    opts = dict(options or {})
    if name.startswith("rome"):
        opts.setdefault("k", 2)
    net = SearchNetwork(SPACES[space], c=C, num_classes=CLASSES, layers=LAYERS,
                        **cls.supernet_kwargs(cls.resolve_options(opts)))
    method = build_method(name, net, hp or SearchHParams(epochs=2), opts)
    method.begin_epoch(epoch, method.hp.epochs)
    return method


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, HW, HW, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g)


def cell_type(cell) -> str:
    return "reduce" if cell.reduction else "normal"


def clones(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def check_genotype(genotype, space: str, distinct_inputs: bool) -> None:
    names = set(SPACES[space].normal[0]) | set(SPACES[space].reduce[0])
    for cell in (genotype.normal, genotype.reduce):
        assert len(cell) == 2 * len(NODE_EDGES)  # 2 pairs per intermediate node
        for k, (op, inp) in enumerate(cell):
            node = 2 + k // 2
            assert 0 <= inp < node
            assert op in names and op != "none"
        if distinct_inputs:
            for k in range(0, len(cell), 2):
                assert cell[k][1] != cell[k + 1][1]
    assert list(genotype.normal_concat) == [2, 3, 4, 5] == list(genotype.reduce_concat)


# -- every method ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_search_step(name: str) -> None:
    method = make(name)
    weights0 = clones(method.weight_parameters())
    arch0 = clones(method.arch_parameters())
    stats = method.step(batch(1), batch(2))
    assert stats and all(math.isfinite(v) for v in stats.values())
    assert "train_loss" in stats
    assert any(not torch.equal(a, p) for a, p in zip(weights0, method.weight_parameters(), strict=True))
    if method.arch_update_enabled():
        assert "val_loss" in stats
        for p in method.arch_parameters():  # every alpha and beta got a gradient from the val loss
            assert p.grad is not None and bool(torch.isfinite(p.grad).all())
            # (but ROME-v1's first node has one pair of predecessors: softmax of one logit is constant)
            assert float(p.grad.abs().sum()) > 0 or p.numel() == 1
        assert all(not torch.equal(a, p) for a, p in zip(arch0, method.arch_parameters(), strict=True))
    else:
        assert "val_loss" not in stats
        assert all(torch.equal(a, p) for a, p in zip(arch0, method.arch_parameters(), strict=True))
    check_genotype(method.genotype(), "s0", distinct_inputs=name != "gdas")


def test_pcdarts_warmup_freezes_architecture() -> None:
    method = make("pcdarts", hp=method_hparams("pcdarts", epochs=10))  # the method's search_defaults
    assert not method.arch_update_enabled()  # first 30 % of the epochs
    arch0 = clones(method.arch_parameters())
    stats = method.step(batch(1), batch(2))
    assert "val_loss" not in stats
    assert all(torch.equal(a, p) for a, p in zip(arch0, method.arch_parameters(), strict=True))
    method.begin_epoch(3, 10)
    assert method.arch_update_enabled()
    assert "val_loss" in method.step(batch(1), batch(2))
    assert any(not torch.equal(a, p) for a, p in zip(arch0, method.arch_parameters(), strict=True))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_derivation_never_picks_none(name: str) -> None:
    method = make(name, "s3")
    none = SPACES["s3"].normal[0].index("none")
    with torch.no_grad():
        for alpha in method.alpha.values():
            alpha[:, none] = 50.0
    genotype = method.genotype()
    check_genotype(genotype, "s3", distinct_inputs=name != "gdas")
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)


# -- sampled mode: only the sampled ops run ------------------------------------------------------------

def hook_ops(net) -> tuple[list[tuple[int, int, int]], list]:
    called: list[tuple[int, int, int]] = []
    handles = []
    for ci, cell in enumerate(net.cells):
        for e, edge in enumerate(cell.edges):
            for o, op in enumerate(edge.ops):
                handles.append(op.register_forward_hook(
                    lambda mod, inp, out, key=(ci, e, o): called.append(key)))
    return called, handles


@pytest.mark.parametrize("name", ["rome-v2", "rome-v1", "gdas"])
def test_sampled_mode_runs_only_sampled_ops(name: str) -> None:
    method = make(name)
    net = method.model
    called, handles = hook_ops(net)
    x, y = batch(3)
    for _ in range(2):
        called.clear()
        net.zero_grad(set_to_none=True)
        arch = method.sample()
        F.cross_entropy(net(x, arch), y).backward()
        expected = set()
        for ci, cell in enumerate(net.cells):
            a = arch[cell_type(cell)]
            assert isinstance(a, Sampled)
            active = range(N_EDGES) if a.active is None else a.active
            expected |= {(ci, e, a.op_index[e]) for e in active}
            per_cell = [k for k in called if k[0] == ci]
            assert len(per_cell) == (14 if name == "gdas" else 8)  # edge ops run in this cell
        assert len(called) == len(set(called))  # no op runs twice
        assert set(called) == expected
        for ci, cell in enumerate(net.cells):
            for e, edge in enumerate(cell.edges):
                for o, op in enumerate(edge.ops):
                    grads = [p.grad for p in op.parameters()]
                    if (ci, e, o) in expected:
                        continue
                    assert all(g is None or not bool(g.any()) for g in grads), (ci, e, o)
        # the sampled parametric ops do learn
        assert any(p.grad is not None and bool(p.grad.any())
                   for ci, e, o in expected for p in net.cells[ci].edges[e].ops[o].parameters())
    for h in handles:
        h.remove()


@pytest.mark.parametrize("name", ROME)
def test_topology_sampling_keeps_in_degree_two(name: str) -> None:
    method = make(name)
    with torch.no_grad():
        for _ in range(50):
            for t, a in method.sample().items():
                assert len(a.active) == 8 and len(set(a.active)) == 8
                for node in NODE_EDGES:
                    kept = [e for e in node if e in a.active]
                    assert len(kept) == 2
                    assert len({EDGES[e][0] for e in kept}) == 2  # two distinct inputs
                    torch.testing.assert_close(a.edge_weight[node].sum(), torch.tensor(2.0))
                inactive = [e for e in range(N_EDGES) if e not in a.active]
                assert bool((a.edge_weight[inactive] == 0).all())
                assert t in method.shapes


def test_mixed_mode_runs_every_op() -> None:
    method = make("darts")
    called, handles = hook_ops(method.model)
    arch = method.sample()
    assert all(isinstance(a, Mixed) for a in arch.values())
    method.model(batch(3)[0], arch)
    n_ops = len(SPACES["s0"].normal[0])
    assert len(set(called)) == len(called) == LAYERS * N_EDGES * n_ops
    for h in handles:
        h.remove()


# -- GDAS ----------------------------------------------------------------------------------------------

def test_gdas_straight_through_gives_alpha_a_gradient() -> None:
    method = make("gdas")
    alpha0 = clones(method.arch_parameters())
    method.arch_step(batch(4))
    for t, alpha in method.alpha.items():
        assert alpha.grad is not None and bool(torch.isfinite(alpha.grad).all()), t
        assert float(alpha.grad.abs().sum()) > 0, t
        # one op per edge is sampled, yet every op of a sampled edge gets a gradient via the softmax
        assert bool((alpha.grad != 0).all()), t
    assert all(not torch.equal(a, p) for a, p in zip(alpha0, method.arch_parameters(), strict=True))
    assert len(method.beta) == 0


def test_tau_schedule_is_linear_from_max_to_min() -> None:
    epochs = 6
    taus = [tau_schedule(e, epochs, 10.0, 0.1) for e in range(epochs)]
    assert taus[0] == pytest.approx(10.0)
    assert taus[-1] == pytest.approx(0.1)
    steps = [a - b for a, b in itertools.pairwise(taus)]
    assert all(s == pytest.approx(9.9 / (epochs - 1)) for s in steps)
    assert tau_schedule(0, 1, 10.0, 0.1) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["gdas", "rome-v2", "rome-v1"])
def test_begin_epoch_sets_tau_and_samplers_use_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    epochs = 5
    method = make(name, hp=SearchHParams(epochs=epochs))
    seen: list[float] = []
    import methods.gdas as gdas_mod
    import methods.rome as rome_mod

    def spy(fn):
        def wrapped(*args, **kwargs):
            tau = kwargs.get("tau", args[-1] if len(args) > 1 else None)
            seen.append(float(tau))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(gdas_mod, "gumbel_softmax_st", spy(gdas_mod.gumbel_softmax_st))
    monkeypatch.setattr(rome_mod, "gumbel_topk", spy(rome_mod.gumbel_topk))
    monkeypatch.setattr(rome_mod, "gumbel_max_pairs", spy(rome_mod.gumbel_max_pairs))
    for epoch in range(epochs):
        method.begin_epoch(epoch, epochs)
        expected = tau_schedule(epoch, epochs, method.hp.tau_max, method.hp.tau_min)
        assert method.tau == pytest.approx(expected)
        seen.clear()
        with torch.no_grad():
            method.sample()
        assert seen and all(t == pytest.approx(expected) for t in seen)
    assert method.tau == pytest.approx(0.1)


# -- ROME: gradient accumulation ---------------------------------------------------------------------------

def record_samples(method, monkeypatch: pytest.MonkeyPatch):
    """Wrap ``method.sample`` to record the RNG state before each call; ``replay(i)`` rebuilds sample
    ``i`` (same architecture, fresh autograd graph)."""
    original = method.sample
    states: list[torch.Tensor] = []

    def recording():
        states.append(torch.get_rng_state())
        return original()

    def replay(i: int):
        torch.set_rng_state(states[i])
        return original()

    monkeypatch.setattr(method, "sample", recording)
    return states, replay


def arch_key(arch) -> tuple:
    return tuple((t, tuple(a.op_index), tuple(a.active or ())) for t, a in sorted(arch.items()))


def grads_of(loss: torch.Tensor, params) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params, strict=True)]


def frozen_hparams() -> SearchHParams:
    return SearchHParams(epochs=2, w_momentum=0.0, w_weight_decay=0.0, grad_clip=0.0, a_weight_decay=0.0)


@pytest.mark.parametrize("name", ROME)
def test_gradient_accumulation_mean_for_arch_sum_for_weights(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    k = 3
    method = make(name, options={"k": k}, hp=frozen_hparams())
    assert method.k_arch == method.k_weight == k
    # intercept the optimizer steps: the gradients stay as the step left them
    monkeypatch.setattr(method.w_opt, "step", lambda *a, **kw: None)
    monkeypatch.setattr(method.a_opt, "step", lambda *a, **kw: None)
    net = method.model
    states, replay = record_samples(method, monkeypatch)

    # Eq. 11: architecture gradients are the MEAN over K samples on the same validation batch
    x, y = batch(5)
    torch.manual_seed(11)
    method.arch_step((x, y))
    assert len(states) == k
    arch_params = method.arch_parameters()
    got = [p.grad.clone() for p in arch_params]
    per_sample, keys = [], set()
    for i in range(k):
        arch = replay(i)
        keys.add(arch_key(arch))
        per_sample.append(grads_of(F.cross_entropy(net(x, arch), y), arch_params))
    assert len(keys) > 1  # the K samples are different architectures
    for j, g in enumerate(got):
        mean = sum(s[j] for s in per_sample) / k
        torch.testing.assert_close(g, mean, rtol=1e-4, atol=1e-7)
        assert float(g.abs().sum()) > 0 or g.numel() == 1  # (ROME-v1: node 2 has a single pair)
    total = sum(float((sum(s[j] for s in per_sample) - got[j]).abs().sum()) for j in range(len(got)))
    assert total > 1e-6  # the sum would have been different

    # Eq. 12: weight gradients are the SUM over K new samples on the training batch
    states.clear()
    x, y = batch(6)
    torch.manual_seed(12)
    method.weight_step((x, y))
    assert len(states) == k
    weights = method.weight_parameters()
    got = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in weights]
    per_sample = []
    for i in range(k):
        arch = replay(i)
        per_sample.append(grads_of(F.cross_entropy(net(x, arch), y), weights))
    for j, g in enumerate(got):
        torch.testing.assert_close(g, sum(s[j] for s in per_sample), rtol=1e-4, atol=1e-6)
    diff_from_mean = sum(float((sum(s[j] for s in per_sample) / k - got[j]).abs().sum()) for j in range(len(got)))
    assert diff_from_mean > 1e-4
    # no weight step touched the architecture
    assert all(torch.equal(a, b) for a, b in zip(arch_params, method.arch_parameters(), strict=True))


@pytest.mark.parametrize(("td", "ga_theta", "ga_alpha"), list(itertools.product([True, False], repeat=3)))
@pytest.mark.parametrize("name", ROME)
def test_ablation_toggles(name: str, td: bool, ga_theta: bool, ga_alpha: bool,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    k = 2
    method = make(name, options={"k": k, "td": td, "ga_theta": ga_theta, "ga_alpha": ga_alpha})
    assert method.k_weight == (k if ga_theta else 1)
    assert method.k_arch == (k if ga_alpha else 1)
    assert (len(method.beta) > 0) == td
    states, _ = record_samples(method, monkeypatch)
    with torch.no_grad():
        arch = method.__class__.sample(method)
    for a in arch.values():
        if td:
            assert a.active is not None and len(a.active) == 8 and a.edge_weight is not None
        else:
            assert a.active is None and a.edge_weight is None  # every edge runs, as in GDAS
    stats = method.step(batch(1), batch(2))
    assert all(math.isfinite(v) for v in stats.values())
    assert len(states) == method.k_arch + method.k_weight
    for p in method.arch_parameters():
        assert p.grad is not None and (float(p.grad.abs().sum()) > 0 or p.numel() == 1)
    check_genotype(method.genotype(), "s0", distinct_inputs=td)


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError):
        make("rome-v2", options={"k": 0})
    with pytest.raises(ValueError):
        make("rome-v2", options={"kk": 3})
    with pytest.raises(ValueError):
        make("gdas", options={"k": 3})


# -- ROME: derivation ------------------------------------------------------------------------------------

def test_rome_v2_derivation_keeps_top2_edges_by_beta() -> None:
    method = make("rome-v2")
    with torch.no_grad():
        for p in method.arch_parameters():
            p.copy_(torch.randn_like(p) * 2)
    selection = method.selection()
    for t, shape in method.shapes.items():
        beta = method.beta[t].detach()
        alpha = method.alpha[t].detach()
        for n, edges in enumerate(shape.node_edges):
            top2 = tuple(sorted(edges[i] for i in beta[list(edges)].topk(2).indices.tolist()))
            assert method.edge_pair(t, n) == top2
            kept = selection[t][n]
            assert len(kept) == 2 and len({e for e, _ in kept}) == 2
            assert len({EDGES[e][0] for e, _ in kept}) == 2  # two distinct inputs
            assert tuple(sorted(e for e, _ in kept)) == top2
            assert all(o == int(alpha[e].argmax()) for e, o in kept)
    check_genotype(method.genotype(), "s0", distinct_inputs=True)


def test_rome_v1_derivation_picks_argmax_pair() -> None:
    method = make("rome-v1")
    with torch.no_grad():
        for p in method.arch_parameters():
            p.copy_(torch.randn_like(p) * 2)
    selection = method.selection()
    for t, shape in method.shapes.items():
        for n, edges in enumerate(shape.node_edges):
            beta = method.beta[f"{t}_{n}"].detach()
            assert beta.shape == (len(pairs(len(edges))),)
            i, k = pairs(len(edges))[int(beta.argmax())]
            assert method.edge_pair(t, n) == (edges[i], edges[k])
            assert sorted(e for e, _ in selection[t][n]) == [edges[i], edges[k]]
    check_genotype(method.genotype(), "s0", distinct_inputs=True)


# -- S3: none ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ROME)
def test_rome_never_samples_none_and_none_gets_no_gradient(name: str) -> None:
    method = make(name, "s3")
    none = SPACES["s3"].normal[0].index("none")
    with torch.no_grad():
        for alpha in method.alpha.values():
            alpha[:, none] = 3.0  # would be sampled ~90 % of the time if it were not masked
        for _ in range(200):
            for a in method.sample().values():
                assert none not in a.op_index
    method.arch_step(batch(7))
    for t, alpha in method.alpha.items():
        assert alpha.grad is not None and bool(torch.isfinite(alpha.grad).all())
        assert bool((alpha.grad[:, none] == 0).all()), t
        assert float(alpha.grad.abs().sum()) > 0


def test_gdas_may_sample_none() -> None:
    method = make("gdas", "s3")
    none = SPACES["s3"].normal[0].index("none")
    with torch.no_grad():
        seen = sum(a.op_index.count(none) for _ in range(20) for a in method.sample().values())
    assert seen > 0
    method.arch_step(batch(7))
    assert all(bool((alpha.grad[:, none] != 0).any()) for alpha in method.alpha.values())


# -- determinism and checkpoints -------------------------------------------------------------------------------

def run_search(name: str, seed: int, steps: int = 2):
    torch.manual_seed(seed)
    method = make(name)
    for i in range(steps):
        method.step(batch(20 + i), batch(40 + i))
    return method.genotype(), clones(method.arch_parameters())


@pytest.mark.parametrize("name", ["gdas", "rome-v2"])
def test_same_seed_same_search(name: str) -> None:
    geno_a, arch_a = run_search(name, 3)
    geno_b, arch_b = run_search(name, 3)
    assert geno_a == geno_b
    assert all(torch.equal(a, b) for a, b in zip(arch_a, arch_b, strict=True))
    _, arch_c = run_search(name, 4)
    assert any(not torch.equal(a, c) for a, c in zip(arch_a, arch_c, strict=True))


def assert_same_state(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("name", ["gdas", "rome-v1", "rome-v2", "pcdarts"])
def test_state_dict_round_trip(name: str) -> None:
    source = make(name)
    source.step(batch(1), batch(2))
    source.begin_epoch(1, 2)
    state = copy.deepcopy(source.state_dict())
    assert state["w_opt"]["state"] and state["a_opt"]["state"]  # momentum buffers / Adam moments exist

    torch.manual_seed(99)
    target = make(name)
    assert any(not torch.equal(a, b) for a, b in zip(source.arch_parameters(), target.arch_parameters(),
                                                         strict=True))
    target.load_state_dict(state)
    target.begin_epoch(1, 2)  # the run loop sets the epoch (and tau) after resuming
    for key in ("alpha", "beta"):
        assert_same_state(getattr(source, key).state_dict(), getattr(target, key).state_dict())
    assert target.tau == source.tau == pytest.approx(0.1)
    assert target.epoch == source.epoch == 1
    assert_same_state(source.w_opt.state_dict(), target.w_opt.state_dict())
    assert_same_state(source.a_opt.state_dict(), target.a_opt.state_dict())
    assert_same_state(source.model.state_dict(), target.model.state_dict())

    # the restored method continues exactly as the original
    for method in (source, target):
        torch.manual_seed(5)
        method.step(batch(3), batch(4))
    assert all(torch.equal(a, b) for a, b in zip(source.arch_parameters(), target.arch_parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(source.weight_parameters(), target.weight_parameters(),
                                                 strict=True))


def test_state_dict_restores_tau_without_begin_epoch() -> None:
    source = make("gdas", hp=SearchHParams(epochs=5))
    source.begin_epoch(2, 5)
    target = make("gdas", hp=SearchHParams(epochs=5))
    assert target.tau != source.tau
    target.load_state_dict(copy.deepcopy(source.state_dict()))
    assert target.tau == pytest.approx(source.tau) and target.epoch == 2
