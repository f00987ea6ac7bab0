"""Memory and time of one search step (ROME Table 7).

:func:`profile_step` builds a supernet and a method directly (no run, no dataset unless asked for),
runs the forward passes of the saved-bytes distribution (below; they warm the method up), takes one
step while counting the tensors autograd saves for backward, then times ``steps`` more steps. Without
``steps``: 1 to 3, stopping once they took :data:`AUTO_SECONDS` (``timeit``'s autorange), and none
more when the counted step alone took that long - its time is then the figure (the counting hooks
cost microseconds per saved tensor). At Table 7's shape one DARTS step takes 20-30 s on two CPU
cores, so a DARTS profile there takes two forward passes and one step. Measured:

* ``saved_bytes`` - bytes of the tensors saved for backward by one forward pass (one backward graph),
  each storage counted once (keyed by ``untyped_storage().data_ptr()``), parameters excluded (they
  are ``param_bytes``). A step runs several graphs one after another - one per sample for ROME's K
  samples (Eq. 11-12), whose graph is freed by its backward before the next sample - so the peak
  is the largest graph: ``saved_bytes = max(saved_bytes_per_pass)``.
* ``param_bytes`` (supernet weights), ``arch_param_bytes`` (alpha, beta), ``grad_bytes`` and
  ``optimizer_state_bytes`` (SGD momentum, Adam moments) after the measured steps.
* ``cuda_peak_bytes`` - ``torch.cuda.max_memory_allocated`` over the counted and timed steps (``None``
  off GPU). Table 7's GB include the CUDA context and the caching allocator's slack, so compare ratios.
* ``seconds_per_step`` - median over the timed steps; ``steps`` says how many, ``counted_step_timed``
  whether the counted step is the one.
* ``subnets`` - saved bytes as a distribution over sampled subnets (:func:`saved_bytes_distribution`):
  ``N`` (default 20) subnets drawn one after another from ``torch.manual_seed(seed)``, the same generator
  for every method; per subnet the bytes saved by one architecture pass (Eq. 11 with one sample: forward
  through the sampled subnet with gradients on for the weights and ``alpha``/``beta``); mean, std, min, max, the
  Student-t 95 % interval of the mean and the 2.5-97.5 % range of the draws. One step's figure above
  depends on which subnet its sample drew; the distribution does not. The benchmark suite
  (``benchmarks/``) calls the same function. A method that samples nothing (``SearchMethod.samples``
  false: DARTS, PC-DARTS) gets one measured pass (``n = 1``, ``sampled: false``), not ``N`` equal ones.

Every shape is checked before anything is built (:func:`check_config`).

The default shape is Table 7's: batch 64, 16 channels, 8 cells, 32 x 32 inputs, 10 classes.
The step is taken in mid-search (epoch 25 of 50) so that every method updates both the
architecture and the weights (PC-DARTS only updates alpha after 30 % of the epochs).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import datasets as data
from harness.evidence import stats
from harness.runs.storage import write_json
from harness.spec import benchmarks
from harness.spec.runspec import LIMITS as SPEC_LIMITS
from harness.spec.runspec import MAX_SEED, MEMORY_LIMIT_BYTES, RunSpec, SearchSpec, search_memory_estimate
from harness.utils.device import device_name, synchronize
from harness.utils.paths import slug
from methods.base import build_method, method_class, method_hparams, option_slug
from spaces.registry import build_supernet


@dataclass(frozen=True)
class ProfileConfig:
    """What is profiled: method and options, the space of ``bench``, and the step's shape."""

    method: str
    bench: str = "s0-c10"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    channels: int = 16
    layers: int = 8
    image_size: int = 32
    num_classes: int | None = None  # None: the benchmark's dataset (10 for CIFAR-10)
    steps: int | None = None  # timed steps; None: 1 to 3, until they took AUTO_SECONDS
    seed: int = 0
    data: str = "random"  # "random" tensors or "real" batches of the benchmark's dataset
    data_root: str | None = None
    subnets: int = 20  # sampled subnets of the saved-bytes distribution (0: skip it)


class SavedTensorCounter:
    """Count bytes of tensors saved for backward, per backward graph.

    A graph starts with the first tensor packed after the previous graph's saved tensors were
    unpacked (its backward ran). Storages are keyed by ``data_ptr`` so views of one storage count
    once; storages in ``exclude`` (parameters) are not counted.
    """

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
        self.graphs: list[dict[int, int]] = []
        self._consumed = True

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        if self._consumed:
            self.graphs.append({})
            self._consumed = False
        try:
            storage = t.untyped_storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            return t
        if ptr not in self.exclude:
            self.graphs[-1][ptr] = nbytes
        # detached: a saved output returned as itself would hold its own grad_fn, a reference cycle that
        # keeps the whole graph alive when no backward frees it (a forward-only pass); autograd rebuilds
        # the variable from these data on unpack
        return t.detach()

    def unpack(self, t: torch.Tensor) -> torch.Tensor:
        self._consumed = True
        return t

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)

    @property
    def per_graph(self) -> list[int]:
        return [sum(g.values()) for g in self.graphs]


def saved_bytes_distribution(method: Any, batch: tuple[torch.Tensor, torch.Tensor], n: int = 20,
                             seed: int = 0) -> dict[str, Any]:
    """Saved bytes of one architecture pass for each of ``n`` subnets sampled from ``torch.manual_seed(seed)``.

    Per draw: ``method.sample()`` and the forward pass on ``batch`` to the cross-entropy loss, gradients on
    for the weights and architecture parameters, while :class:`SavedTensorCounter` counts the tensors it
    saves for backward (parameters excluded). A forward saves all its graph will hold; the backward saves
    nothing and would only free it (and cost twice the forward), so it is not run: dropping the loss frees
    the graph. Nothing is updated. One uncounted pass comes first, so that a cold and a warm method give
    the same values.

    A method that samples nothing (``method.samples`` false: DARTS and PC-DARTS, whose every ``sample()``
    is the same continuous relaxation) has a degenerate distribution: every draw runs the same full
    supernet pass, so one pass is measured and reported as ``n = 1`` (``sampled: false``), with the same
    fields (``std`` 0, intervals of zero width) - 20 identical passes cost minutes at Table 7's shape.
    """
    if n < 2:
        raise ValueError(f"the saved-bytes distribution needs at least 2 subnets, got {n}")
    sampled = bool(method.samples)
    draws = n if sampled else 1
    x, y = batch
    exclude = {p.untyped_storage().data_ptr() for p in [*method.weight_parameters(), *method.arch_parameters()]}
    # one uncounted pass first: constants cached on first use (masks, incidence matrices) are not activations
    torch.nn.functional.cross_entropy(method.model(x, method.sample()), y)
    torch.manual_seed(seed)
    values = []
    for _ in range(draws):
        counter = SavedTensorCounter(exclude)
        with counter.hooks():
            loss = torch.nn.functional.cross_entropy(method.model(x, method.sample()), y)
        del loss  # frees the graph and what it saved
        values.append(max(counter.per_graph, default=0))
    if not sampled:
        v = values[0]
        return {"n": 1, "seed": seed, "sampled": False, "values": values, "mean": float(v), "std": 0.0,
                "min": v, "max": v, "mean_ci95": [float(v), float(v)], "range95": [float(v), float(v)]}
    mean, lo, hi = stats.t_interval(values)
    ordered = sorted(values)
    return {"n": n, "seed": seed, "sampled": True, "values": values, "mean": mean, "std": statistics.pstdev(values),
            "min": ordered[0], "max": ordered[-1], "mean_ci95": [lo, hi],
            "range95": [float(np.percentile(ordered, 2.5)), float(np.percentile(ordered, 97.5))]}


#: ``(smallest, largest)`` of each shape option of ``harness profile``. The smallest image must survive
#: the supernet's two reduction cells (DARTS Sec. 3.1: cells at 1/3 and 2/3 of the depth halve the
#: resolution) with at least 2 x 2 pixels left. The largest are far above any network in use (Table 7:
#: batch 64, 16 channels, 8 cells, 32 x 32, 10 classes; DARTS's evaluation network: 36 channels, 20 cells;
#: ImageNet-21k: 21,841 classes), so they refuse typos only; they keep every size within int64 and keep
#: building the supernet (one module per cell, edge and op) and the timed loop short. Shapes that are each
#: in range but together huge meet the run spec's activation bound (:func:`check_config`).
#: bounds of a profile's shape: the supernet's batch, channels and cells as a run's (``runspec.LIMITS``), so a
#: profile refuses what a run refuses; the image, classes and timed steps of its own
LIMITS: dict[str, tuple[int, int]] = {"batch_size": (1, int(SPEC_LIMITS["search.batch"])),
                                      "channels": (1, int(SPEC_LIMITS["search.channels"])),
                                      "layers": (1, int(SPEC_LIMITS["search.layers"])),
                                      "image_size": (8, 512), "num_classes": (2, 100_000), "steps": (1, 1000)}
#: most sampled subnets of the saved-bytes distribution (0 skips it; 1 is not a distribution)
MAX_SUBNETS = 1000
#: without ``steps``: time at most :data:`AUTO_STEPS` steps, stopping once they took ``AUTO_SECONDS``
AUTO_STEPS = 3
AUTO_SECONDS = 10.0


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_config(cfg: ProfileConfig) -> None:
    """``ValueError`` with one line naming the first thing wrong with ``cfg``, before anything is built.

    Each shape in :data:`LIMITS` (an unset ``num_classes`` is the dataset's), the seed (numpy's 32-bit
    range: ``--data real`` seeds numpy), ``subnets``, the method, its options and the benchmark, the
    method's own rule on the channels (PC-DARTS: ``M`` divides them) and the activation bound of runs
    (:func:`harness.spec.runspec.search_memory_estimate` over 1 TiB): a profile refuses what a run refuses.
    """
    for key, (low, high) in LIMITS.items():
        value = getattr(cfg, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{_option(key)} takes an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{_option(key)} must be >= {low}, got {value}")
        if value > high:
            raise ValueError(f"{_option(key)} must be <= {high}, got {value}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ValueError(f"--seed must be in 0..{MAX_SEED} (numpy's seed range), got {cfg.seed}")
    if cfg.subnets != 0 and not 2 <= cfg.subnets <= MAX_SUBNETS:
        raise ValueError(f"--subnets must be 0 (no distribution) or 2..{MAX_SUBNETS}, got {cfg.subnets}")
    cls = method_class(cfg.method)
    options = cls.resolve_options(cfg.options)
    benchmarks.get(cfg.bench)
    problem = cls.check_spec(options, cfg.channels)
    if problem:
        raise ValueError(problem)
    spec = RunSpec(cfg.method, cfg.bench, "profile", cfg.seed, options,
                   search=SearchSpec(batch=cfg.batch_size, channels=cfg.channels, layers=cfg.layers,
                                     image_size=cfg.image_size))
    need = search_memory_estimate(spec, cfg.image_size)
    if need > MEMORY_LIMIT_BYTES:
        raise ValueError(f"--batch-size {cfg.batch_size}, --channels {cfg.channels}, --layers {cfg.layers}, "
                         f"--image-size {cfg.image_size}: about {need / 2**40:.0f} TiB of activations "
                         f"(the bound of runs); valid: shapes under 1 TiB")


def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _optimizer_state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for state in opt.state.values() for v in state.values()
               if isinstance(v, torch.Tensor))


def _batches(cfg: ProfileConfig, num_classes: int, device: torch.device):
    """Two batches (weights, architecture) of the configured shape."""
    if cfg.data == "random":
        def make():
            x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, device=device)
            return x, torch.randint(0, num_classes, (cfg.batch_size,), device=device)

        return make(), make()
    if cfg.data != "real":
        raise ValueError(f"unknown profile data '{cfg.data}'; valid: random, real")
    bench = benchmarks.get(cfg.bench)
    bundle = data.load(bench.dataset, cfg.data_root, search_image_size=cfg.image_size, seed=cfg.seed)
    out = []
    for split in (bundle.search_train, bundle.search_val):
        x, y = next(iter(data.make_loader(split, cfg.batch_size, shuffle=True, seed=cfg.seed)))
        out.append((x.to(device), y.to(device)))
    return out[0], out[1]


def profile_step(cfg: ProfileConfig, device: str | torch.device | None = None) -> dict[str, Any]:
    """Profile one search step of ``cfg``; returns one JSON-ready dict (see the module docstring)."""
    check_config(cfg)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cls = method_class(cfg.method)
    options = cls.resolve_options(cfg.options)
    bench = benchmarks.get(cfg.bench)
    num_classes = cfg.num_classes or data.DATASETS[bench.dataset].num_classes
    torch.manual_seed(cfg.seed)
    net = build_supernet(bench.space, c=cfg.channels, layers=cfg.layers, num_classes=num_classes,
                         **cls.supernet_kwargs(options)).to(dev)
    hp = method_hparams(cfg.method)
    method = build_method(cfg.method, net, hp, options)
    method.begin_epoch(hp.epochs // 2, hp.epochs)
    method.model.train()
    train_batch, val_batch = _batches(cfg, num_classes, dev)
    weights, arch = method.weight_parameters(), method.arch_parameters()

    # warm-up: forward passes (the distribution's, or one uncounted), so no first use is counted or timed
    if cfg.subnets:
        subnets = saved_bytes_distribution(method, train_batch, cfg.subnets, cfg.seed)
    else:
        subnets = None
        torch.nn.functional.cross_entropy(method.model(train_batch[0], method.sample()), train_batch[1])
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        cuda_before = torch.cuda.memory_allocated(dev)
    counter = SavedTensorCounter({p.untyped_storage().data_ptr() for p in [*weights, *arch]})
    synchronize(dev)
    t0 = time.perf_counter()
    with counter.hooks():
        method.step(train_batch, val_batch)  # counted
    synchronize(dev)
    counted_seconds = time.perf_counter() - t0
    per_pass = counter.per_graph
    # a step this long is its own figure (the hooks cost microseconds per saved tensor): not repeated
    counted_timed = cfg.steps is None and counted_seconds >= AUTO_SECONDS
    seconds: list[float] = [counted_seconds] if counted_timed else []
    while len(seconds) < (cfg.steps or AUTO_STEPS) and not counted_timed:
        synchronize(dev)
        t0 = time.perf_counter()
        method.step(train_batch, val_batch)
        synchronize(dev)
        seconds.append(time.perf_counter() - t0)
        if cfg.steps is None and sum(seconds) >= AUTO_SECONDS:
            break

    out: dict[str, Any] = {
        "method": cfg.method, "options": options, "bench": bench.id, "space": bench.space,
        "device": device_name(dev),
        "shape": {"batch_size": cfg.batch_size, "channels": cfg.channels, "layers": cfg.layers,
                  "image_size": cfg.image_size, "num_classes": num_classes},
        "data": cfg.data, "seed": cfg.seed,
        "forward_passes": len(per_pass),
        "saved_bytes": max(per_pass, default=0),
        "saved_bytes_per_pass": per_pass,
        "subnets": subnets,
        "param_bytes": _bytes(weights),
        "arch_param_bytes": _bytes(arch),
        "grad_bytes": _bytes(p.grad for p in [*weights, *arch]),
        "optimizer_state_bytes": _optimizer_state_bytes(method.w_opt) + _optimizer_state_bytes(method.a_opt),
        "cuda_peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
        "cuda_allocated_before_bytes": cuda_before if dev.type == "cuda" else None,
        "steps": len(seconds),
        "counted_step_timed": counted_timed,
        "seconds_per_step": statistics.median(seconds),
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "config": asdict(cfg),
    }
    return out


def profile_filename(result: dict[str, Any]) -> str:
    """``profile_<method><slug>.json``: the run-id slug of the options that differ from the method's
    defaults (``_k3_td0``), so profiles of variants do not overwrite each other."""
    return slug(f"profile_{result['method']}{option_slug(result['method'], result.get('options') or {})}") + ".json"


def write_profile(result: dict[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / profile_filename(result)
    write_json(path, result)
    return path
