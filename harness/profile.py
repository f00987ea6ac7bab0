"""Memory and time of one search step (ROME Table 7).

:func:`profile_step` builds a supernet and a method directly (no run, no dataset unless asked for),
takes one warm-up step while counting the tensors autograd saves for backward, then times ``steps``
more steps. Measured:

* ``saved_bytes`` - bytes of the tensors saved for backward by one forward pass (one backward graph),
  each storage counted once (keyed by ``untyped_storage().data_ptr()``), parameters excluded (they
  are ``param_bytes``). A step runs several graphs one after another - one per sample for ROME's K
  samples (Eq. 11-12), whose graph is freed by its backward before the next sample - so the peak
  is the largest graph: ``saved_bytes = max(saved_bytes_per_pass)``.
* ``param_bytes`` (supernet weights), ``arch_param_bytes`` (alpha, beta), ``grad_bytes`` and
  ``optimizer_state_bytes`` (SGD momentum, Adam moments) after the measured steps.
* ``cuda_peak_bytes`` - ``torch.cuda.max_memory_allocated`` over the timed steps (``None`` off GPU).
  Table 7's GB include the CUDA context and the caching allocator's slack, so compare ratios.
* ``seconds_per_step`` - median over the timed steps (after the warm-up).
* ``subnets`` - saved bytes as a distribution over sampled subnets (:func:`saved_bytes_distribution`):
  ``N`` (default 20) subnets drawn one after another from ``torch.manual_seed(seed)``, the same generator
  for every method; per subnet the bytes saved by one architecture pass (Eq. 11 with one sample: forward
  through the sampled subnet, backward to the weights and ``alpha``/``beta``); mean, std, min, max, the
  Student-t 95 % interval of the mean and the 2.5-97.5 % range of the draws. One step's figure above
  depends on which subnet its sample drew; the distribution does not. The benchmark suite
  (``benchmarks/``) calls the same function.

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

from harness import benchmarks, data
from harness.results import write_json
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
    steps: int = 3
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
        return t

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

    Per draw: ``method.sample()`` (DARTS and PC-DARTS: the continuous relaxation, the same each time),
    the forward pass on ``batch``, its cross-entropy backward to the weights and architecture parameters
    while :class:`SavedTensorCounter` counts the saved tensors (parameters excluded). Nothing is updated.
    One uncounted pass comes first, so that a cold and a warm method give the same values.
    """
    from harness import stats

    if n < 2:
        raise ValueError(f"the saved-bytes distribution needs at least 2 subnets, got {n}")
    x, y = batch
    params = [*method.weight_parameters(), *method.arch_parameters()]
    exclude = {p.untyped_storage().data_ptr() for p in params}
    # one uncounted pass first: constants cached on first use (masks, incidence matrices) are not activations
    torch.nn.functional.cross_entropy(method.model(x, method.sample()), y).backward(inputs=params)
    torch.manual_seed(seed)
    values = []
    for _ in range(n):
        counter = SavedTensorCounter(exclude)
        with counter.hooks():
            loss = torch.nn.functional.cross_entropy(method.model(x, method.sample()), y)
        loss.backward(inputs=params)
        values.append(max(counter.per_graph, default=0))
    for p in params:
        p.grad = None
    mean, lo, hi = stats.t_interval(values)
    ordered = sorted(values)
    return {"n": n, "seed": seed, "values": values, "mean": mean, "std": statistics.pstdev(values),
            "min": ordered[0], "max": ordered[-1], "mean_ci95": [lo, hi],
            "range95": [float(np.percentile(ordered, 2.5)), float(np.percentile(ordered, 97.5))]}


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_step(cfg: ProfileConfig, device: str | torch.device | None = None) -> dict[str, Any]:
    """Profile one search step of ``cfg``; returns one JSON-ready dict (see the module docstring)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError("steps and batch size must be >= 1")
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

    counter = SavedTensorCounter({p.untyped_storage().data_ptr() for p in [*weights, *arch]})
    with counter.hooks():
        method.step(train_batch, val_batch)  # warm-up, counted
    _sync(dev)
    per_pass = counter.per_graph
    subnets = saved_bytes_distribution(method, train_batch, cfg.subnets, cfg.seed) if cfg.subnets else None

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        cuda_before = torch.cuda.memory_allocated(dev)
    seconds = []
    for _ in range(cfg.steps):
        _sync(dev)
        t0 = time.perf_counter()
        method.step(train_batch, val_batch)
        _sync(dev)
        seconds.append(time.perf_counter() - t0)

    out: dict[str, Any] = {
        "method": cfg.method, "options": options, "bench": bench.id, "space": bench.space,
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
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
        "steps": cfg.steps,
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
    from harness.paths import slug

    return slug(f"profile_{result['method']}{option_slug(result['method'], result.get('options') or {})}") + ".json"


def write_profile(result: dict[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / profile_filename(result)
    write_json(path, result)
    return path
