"""Benchmarks (space x dataset) with the paper's protocol, budgets that scale it, and presets (declarative tables).

Each table is a mapping of dotted run-spec names (``harness.spec.runspec``) to values, applied in the order
benchmark -> budget -> method defaults -> preset -> ``--set``.

``paper`` is the protocol of ROME Sec. 4.1: search with an 8-cell, 16-channel supernet for 50 epochs at
batch 64 (K = 7 for ROME); evaluate S0 and S1-S4 on CIFAR-10 with 20 cells and 36 channels, S1-S4 on
CIFAR-100 and SVHN with 8 cells and 16 channels (R-DARTS, Zela et al. 2020, Sec. 4), 600 epochs at
batch 96 with cutout 16, drop path 0.2 and an auxiliary head (weight 0.4). ImageNet (ROME Table 4):
direct search on 10 % + 10 % of the training images, 30 epochs, K = 3, batch 256; evaluation in the
mobile setting (14 cells, 48 channels, 250 epochs, batch 1024, lr 0.5, label smoothing 0.1).
NAS-Bench-1Shot1 (``nb1s1``-``nb1s3``, ROME Fig. 4-5; ``-orig``: the original op set): nasbench-1shot1's
search (9 cells, 16 channels, 50 epochs, batch 96); evaluation trains nasbench-pytorch's ``Network``
at NAS-Bench-101's scale (128 stem channels, 3 stacks of 3 cells, 108 epochs, batch 256, weight decay
1e-4, no auxiliary head, drop path or cutout) with the harness's SGD (nasbench-pytorch's SGD setting:
lr 0.025, momentum 0.9; NAS-Bench-101 itself used RMSProp). Cells of the original op set are looked
up by hash instead when ``HARNESS_NB101_TABLE`` names a NAS-Bench-101 table (``spaces/nasbench.py``).
``smoke`` shrinks everything to minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

Sets = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    id: str
    space: str
    dataset: str
    paper: Sets
    note: str = ""


CIFAR_S0: Sets = {}  # the run spec's field defaults are the CIFAR protocol
RDARTS_SMALL: Sets = {"eval.layers": 8, "eval.channels": 16}  # CIFAR-100 / SVHN in S1-S4
IMAGENET: Sets = {"search.epochs": 30, "search.batch": 256, "options.k": 3, "search.image_size": 224,
                  "search.stem": "imagenet", "eval.network": "imagenet", "eval.layers": 14, "eval.channels": 48,
                  "eval.epochs": 250, "eval.batch": 1024, "eval.lr": 0.5, "eval.weight_decay": 3e-5,
                  "eval.drop_path": 0.0, "data.cutout": 0, "eval.label_smoothing": 0.1,
                  "data.path": "torchvision", "data.crop_pad": 0}  # RandomResizedCrop: no padded crop
#: stand-in protocol for the embedded digits (16 x 16): the CIFAR protocol without augmentation (no crop,
#: flip or cutout: a mirrored or cut digit is not always a digit of its class; what digits runs always did)
DIGITS: Sets = {"data.flip": False, "data.crop_pad": 0, "data.cutout": 0}
NASBENCH: Sets = {"search.layers": 9, "search.channels": 16, "search.epochs": 50, "search.batch": 96,
                  "eval.network": "nasbench101", "eval.layers": 9, "eval.channels": 128, "eval.epochs": 108,
                  "eval.batch": 256, "eval.lr": 0.025, "eval.weight_decay": 1e-4, "eval.aux_weight": 0.0,
                  "eval.drop_path": 0.0, "data.cutout": 0}
NASBENCH_SPACES = ("nb1s1", "nb1s2", "nb1s3")


def _table() -> dict[str, Benchmark]:
    rows = [Benchmark("s0-c10", "s0", "c10", CIFAR_S0, "Table 2"),
            Benchmark("s0-c100", "s0", "c100", CIFAR_S0, "Table 3"),
            Benchmark("s0-imagenet", "s0", "imagenet", IMAGENET, "Table 4, direct search")]
    for s in ("s1", "s2", "s3", "s4"):
        rows += [Benchmark(f"{s}-c10", s, "c10", CIFAR_S0, "Table 1"),
                 Benchmark(f"{s}-c100", s, "c100", RDARTS_SMALL, "Table 1"),
                 Benchmark(f"{s}-svhn", s, "svhn", RDARTS_SMALL, "Table 1")]
    for s in ("s0", "s1", "s2", "s3", "s4"):
        rows.append(Benchmark(f"{s}-digits", s, "digits", DIGITS, "offline stand-in"))
    for s in NASBENCH_SPACES:
        rows += [Benchmark(f"{s}-c10", s, "c10", NASBENCH, "Fig. 4-5, with skip-connect"),
                 Benchmark(f"{s}-digits", s, "digits", {**NASBENCH, **DIGITS}, "offline stand-in"),
                 Benchmark(f"{s}-orig-c10", f"{s}-orig", "c10", NASBENCH, "original op set, NAS-Bench-101 lookup"),
                 Benchmark(f"{s}-orig-digits", f"{s}-orig", "digits", {**NASBENCH, **DIGITS},
                           "offline stand-in")]
    return {b.id: b for b in rows}


BENCHMARKS: dict[str, Benchmark] = _table()

#: the paper's 15 benchmarks, in the order of its tables
PAPER_15 = ["s0-c10", "s0-c100", "s0-imagenet"] + [f"{s}-{d}" for s in ("s1", "s2", "s3", "s4")
                                                    for d in ("c10", "c100", "svhn")]
GROUPS: dict[str, list[str]] = {
    "all": PAPER_15,
    "s0": ["s0-c10", "s0-c100", "s0-imagenet"],
    "rdarts": PAPER_15[3:],
    "digits": [f"{s}-digits" for s in ("s0", "s1", "s2", "s3", "s4")],
    "nasbench": [f"{s}-c10" for s in NASBENCH_SPACES],
    "nasbench-orig": [f"{s}-orig-c10" for s in NASBENCH_SPACES],
    "nasbench-digits": [f"{s}-digits" for s in NASBENCH_SPACES],
}

_SMALL: Sets = {"search.image_size": 16, "search.stem": "cifar", "eval.network": "cifar", "eval.weight_decay": 3e-4,
                "eval.lr": 0.05, "eval.aux_weight": 0.0, "eval.drop_path": 0.0, "data.cutout": 0,
                "eval.label_smoothing": 0.0}
#: budget name -> overrides of the paper protocol (empty: the paper exactly)
BUDGETS: dict[str, Sets] = {
    "paper": {},
    "smoke": {**_SMALL, "search.layers": 5, "search.channels": 8, "search.epochs": 4, "search.batch": 64,
              "search.subset": 1400, "eval.layers": 5, "eval.channels": 8, "eval.epochs": 8, "eval.batch": 64,
              "eval.subset": 1400},
    # the claims budget (docs/run-spec.md "The cpu budget"): the search supernet trains on the digits
    # (search val acc >= 75 % for GDAS and ROME-v2 in S2 after 20 epochs), a run in minutes on one core;
    # the evaluation is small and short (200 training images) so that derived cells differ in test error.
    # search.scale=arch-steps: 20 epochs of 11 architecture steps move alpha as far as the paper's 50 of
    # 391 (a_lr x arch steps as the paper protocol's; runspec.arch_steps, docs/run-spec.md "scaling rule")
    "cpu": {**_SMALL, "search.layers": 5, "search.channels": 8, "search.epochs": 20, "search.batch": 64,
            "search.subset": None, "search.scale": "arch-steps", "options.k": 3, "eval.layers": 5,
            "eval.channels": 8, "eval.epochs": 10, "eval.batch": 32, "eval.subset": 200},
    # `harness check`'s distribution suite (16 runs on the digits, 15-30 s each on one core): a supernet that
    # learns (search val acc ~75 % after 10 epochs) and an architecture that moves under the cpu budget's
    # rule (search.scale=arch-steps: 10 epochs of 8 architecture steps move alpha as far as the paper's 50
    # of 391); the evaluation stays small and short (docs/check-power.md)
    "check": {**_SMALL, "search.layers": 3, "search.channels": 8, "search.epochs": 10, "search.batch": 32,
              "search.subset": 256, "search.scale": "arch-steps", "options.k": 3, "eval.layers": 3,
              "eval.channels": 8, "eval.epochs": 4, "eval.batch": 32, "eval.subset": 512},
}


#: images per search split (each half of the training set; ImageNet: 10 % of its 1,281,167 training
#: images, ROME Table 4), from which the architecture steps per epoch follow (a split of n images at
#: batch b is ceil(n / b) steps; harness.data.datasets)
SEARCH_SPLIT_IMAGES: dict[str, int] = {"digits": 700, "c10": 25_000, "c100": 25_000, "svhn": 73_257 // 2,
                                       "imagenet": 128_116}
#: the dataset whose paper protocol a stand-in's runs scale to (the digits stand in for CIFAR-10)
STANDS_IN_FOR: dict[str, str] = {"digits": "c10"}


def paper_dataset(bench_id: str) -> str:
    """The dataset of the paper's protocol for ``bench_id`` (``s3-digits``: ``c10``)."""
    dataset = get(bench_id).dataset
    return STANDS_IN_FOR.get(dataset, dataset)


@dataclass(frozen=True)
class PresetRule:
    """Dotted overrides for the runs whose method, benchmark and budget match (``None``: any; benchmark
    names are glob patterns)."""

    sets: Sets
    methods: tuple[str, ...] | None = None
    benches: tuple[str, ...] | None = None
    budgets: tuple[str, ...] | None = None
    source: str = ""

    def matches(self, method: str, bench: str, budget: str | None = None) -> bool:
        return ((self.methods is None or method in self.methods)
                and (self.benches is None or any(fnmatch(bench, p) for p in self.benches))
                and (self.budgets is None or budget is None or budget in self.budgets))


#: ``default``: the harness's shared protocol above. ``released``: where the paper ran released code,
#: that code's settings (docs/run-spec.md "Presets" lists each with its source file).
PRESETS: dict[str, list[PresetRule]] = {
    "default": [],
    "released": [
        # GDAS in S0 (ROME Table 2, footnote: GDAS searched 250 epochs): xautodl
        # configs/search-opts/GDAS-NASNet-CIFAR.config (SGD lr 0.025 -> 0.001 cosine, decay 5e-4, Nesterov,
        # batch 256, 250 epochs)
        PresetRule({"search.w_weight_decay": 5e-4, "search.w_nesterov": True, "search.w_lr": 0.025,
                    "search.w_lr_min": 0.001}, ("gdas",), ("s0-c10", "s0-c100", "s0-digits"),
                   source="D-X-Y/AutoDL-Projects configs/search-opts/GDAS-NASNet-CIFAR.config"),
        PresetRule({"search.epochs": 250, "search.batch": 256}, ("gdas",), ("s0-c10", "s0-c100"), ("paper",),
                   source="D-X-Y/AutoDL-Projects configs/search-opts/GDAS-NASNet-CIFAR.config"),
        # GDAS in the DARTS spaces S0-S4 (every dataset): xautodl's NASNet-space search network, a BN + ReLU
        # before the global pool and pooling ops without a BN (its op set is any DARTS-like space's)
        PresetRule({"search.head": "bn_relu", "search.pool_bn": False}, ("gdas",), ("s[0-4]-*",),
                   source="D-X-Y/AutoDL-Projects xautodl/models/cell_searchs/search_model_gdas_nasnet.py "
                          "(lastact), xautodl/models/cell_operations.py (POOLING)"),
        # GDAS on NAS-Bench-1Shot1: nasbench-1shot1 optimizers/gdas/ (its search script; tau 10 -> 1, the
        # architecture step before the weight step)
        PresetRule({"search.tau_max": 10.0, "search.tau_min": 1.0, "search.arch_first": True}, ("gdas",),
                   ("nb1s*",), source="automl/nasbench-1shot1 optimizers/gdas/ (search script, architect.py)"),
        # ImageNet evaluation: PC-DARTS train_imagenet.py (linear decay; 5 warm-up epochs when batch > 256)
        PresetRule({"eval.lr_schedule": "linear"}, None, ("*-imagenet",),
                   source="yuhuixu1993/PC-DARTS train_imagenet.py"),
        PresetRule({"eval.warmup_epochs": 5}, None, ("*-imagenet",), ("paper",),
                   source="yuhuixu1993/PC-DARTS train_imagenet.py"),
    ],
}


def register_benchmark(bench: Benchmark) -> None:
    BENCHMARKS[bench.id] = bench


def expand(names: str | list[str]) -> list[str]:
    """Benchmark ids from ids and group names (comma separated or a list), validated."""
    items = names.split(",") if isinstance(names, str) else names
    out: list[str] = []
    for item in (i.strip() for i in items if i.strip()):
        for bench_id in GROUPS.get(item, [item]):
            if bench_id not in BENCHMARKS:
                valid = ", ".join([*GROUPS, *BENCHMARKS])
                raise ValueError(f"unknown benchmark '{bench_id}'; valid: {valid}")
            if bench_id not in out:
                out.append(bench_id)
    if not out:
        raise ValueError(f"no benchmark named in '{names}'; valid: {', '.join([*GROUPS, *BENCHMARKS])}")
    return out


def get(bench_id: str) -> Benchmark:
    """The benchmark of one id or one-benchmark group (``ValueError`` lists the valid ones)."""
    return BENCHMARKS[expand(bench_id)[0]]
