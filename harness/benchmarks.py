"""Benchmarks (space x dataset) with the paper's protocol, and budgets that scale it (declarative tables).

``paper`` is the protocol of ROME Sec. 4.1 and REFERENCE.md: search with an 8-cell, 16-channel
supernet for 50 epochs at batch 64 (K = 7 for ROME); evaluate S0 and S1-S4 on CIFAR-10 with 20 cells
and 36 channels, S1-S4 on CIFAR-100 and SVHN with 8 cells and 16 channels (R-DARTS), 600 epochs at
batch 96 with cutout 16, drop path 0.2 and an auxiliary head (weight 0.4). ImageNet: direct search on
10 % + 10 % of the training images, 30 epochs, K = 3, batch 256; evaluation in the mobile setting
(14 cells, 48 channels, 250 epochs, batch 1024, lr 0.5, label smoothing 0.1).
NAS-Bench-1Shot1 (``nb1s1``-``nb1s3``, ROME Fig. 4-5; ``-orig``: the original op set): nasbench-1shot1's
search (9 cells, 16 channels, 50 epochs, batch 96); evaluation trains nasbench-pytorch's ``Network``
at NAS-Bench-101's scale (128 stem channels, 3 stacks of 3 cells, 108 epochs, batch 256, weight decay
1e-4, no auxiliary head, drop path or cutout) with the harness's SGD (nasbench-pytorch's SGD setting:
lr 0.025, momentum 0.9; NAS-Bench-101 itself used RMSProp). Cells of the original op set are looked
up by hash instead when ``HARNESS_NB101_TABLE`` names a NAS-Bench-101 table (``spaces/nasbench.py``).
``smoke`` shrinks everything to minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Protocol:
    """Every number that decides a run, besides the method and its options."""

    search_layers: int = 8
    search_channels: int = 16
    search_epochs: int = 50
    search_batch: int = 64
    k: int | None = None  # None: the method's default (ROME: 7)
    search_subset: int | None = None  # cap on images per search split (None: all)
    search_image_size: int | None = None  # None: the dataset's size
    search_stem: str = "cifar"  # "imagenet": three stride-2 convs before the cells (direct ImageNet search)
    eval_network: str = "cifar"  # "cifar" (NetworkCIFAR) or "imagenet" (mobile setting)
    eval_layers: int = 20
    eval_channels: int = 36
    eval_epochs: int = 600
    eval_batch: int = 96
    eval_lr: float = 0.025
    eval_momentum: float = 0.9
    eval_weight_decay: float = 3e-4
    eval_grad_clip: float = 5.0
    aux_weight: float = 0.4
    drop_path: float = 0.2
    cutout: int = 16
    label_smoothing: float = 0.0
    eval_subset: int | None = None  # cap on evaluation training images (None: all)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Benchmark:
    id: str
    space: str
    dataset: str
    paper: Protocol
    note: str = ""


CIFAR_S0 = Protocol()
RDARTS_SMALL = Protocol(eval_layers=8, eval_channels=16)  # CIFAR-100 / SVHN in S1-S4
IMAGENET = Protocol(search_epochs=30, search_batch=256, k=3, search_image_size=224, search_stem="imagenet",
                    eval_network="imagenet",
                    eval_layers=14, eval_channels=48, eval_epochs=250, eval_batch=1024, eval_lr=0.5,
                    eval_weight_decay=3e-5, drop_path=0.0, cutout=0, label_smoothing=0.1)
#: stand-in protocol for the embedded digits (16 x 16): the CIFAR protocol
DIGITS = Protocol()
NASBENCH = Protocol(search_layers=9, search_channels=16, search_epochs=50, search_batch=96,
                    eval_network="nasbench101", eval_layers=9, eval_channels=128, eval_epochs=108, eval_batch=256,
                    eval_lr=0.025, eval_weight_decay=1e-4, aux_weight=0.0, drop_path=0.0, cutout=0)
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
                 Benchmark(f"{s}-digits", s, "digits", NASBENCH, "offline stand-in"),
                 Benchmark(f"{s}-orig-c10", f"{s}-orig", "c10", NASBENCH, "original op set, NAS-Bench-101 lookup"),
                 Benchmark(f"{s}-orig-digits", f"{s}-orig", "digits", NASBENCH, "offline stand-in")]
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

#: budget name -> overrides of the paper protocol (empty: the paper exactly)
BUDGETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": dict(search_layers=5, search_channels=8, search_epochs=4, search_batch=64, search_subset=1400,
                  search_image_size=16, search_stem="cifar", eval_network="cifar", eval_layers=5, eval_channels=8,
                  eval_epochs=8, eval_batch=64, eval_lr=0.05, eval_weight_decay=3e-4, aux_weight=0.0, drop_path=0.0,
                  cutout=0, label_smoothing=0.0, eval_subset=1400),
    # the claims budget (README "What the cpu budget shows"): the search supernet trains on the digits
    # (search val acc >= 75 % for GDAS and ROME-v2 in S0 and S2 after 20 epochs), a run in minutes on one core;
    # the evaluation is small and short (200 training images) so that derived cells differ in test error
    "cpu": dict(search_layers=5, search_channels=8, search_epochs=20, search_batch=64, search_subset=None,
                search_image_size=16, k=3, search_stem="cifar", eval_network="cifar", eval_layers=5,
                eval_channels=8, eval_epochs=10, eval_batch=32, eval_lr=0.05, eval_weight_decay=3e-4,
                aux_weight=0.0, drop_path=0.0, cutout=0, label_smoothing=0.0, eval_subset=200),
    # `harness check`: the fixed reproduction suite (15 runs on the digits), seconds per run on 2 cores
    "check": dict(search_layers=3, search_channels=4, search_epochs=3, search_batch=32, search_subset=256,
                  search_image_size=16, k=3, eval_network="cifar", eval_layers=3, eval_channels=8,
                  eval_epochs=4, eval_batch=32, eval_lr=0.05, eval_weight_decay=3e-4, aux_weight=0.0,
                  drop_path=0.0, cutout=0, label_smoothing=0.0, eval_subset=512),
}


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["eval_epochs=2", "k=3"]`` -> typed protocol overrides; ``ValueError`` names what is wrong."""
    kinds = {f.name: f.type for f in fields(Protocol)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in kinds:
            raise ValueError(f"bad override '{item}': expected FIELD=VALUE with FIELD one of {', '.join(kinds)}")
        kind = str(kinds[key])
        try:
            if text.lower() in ("none", "null") and "None" in kind:
                out[key] = None
            elif kind.startswith("int"):
                out[key] = int(text)
            elif kind.startswith("float"):
                out[key] = float(text)
            else:
                out[key] = text
        except ValueError:
            raise ValueError(f"bad override '{item}': {key} takes a {kind.split(' ')[0]}") from None
    return out


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
    return out


def get(bench_id: str) -> Benchmark:
    return BENCHMARKS[expand(bench_id)[0]]


def resolve_protocol(bench_id: str, budget: str, **overrides: Any) -> Protocol:
    """The benchmark's paper protocol with the budget's overrides, then explicit ones."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget '{budget}'; valid: {', '.join(BUDGETS)}")
    names = {f.name for f in fields(Protocol)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown protocol field(s) {', '.join(bad)}; valid: {', '.join(sorted(names))}")
    proto = replace(get(bench_id).paper, **BUDGETS[budget])
    proto = replace(proto, **{k: v for k, v in overrides.items() if v is not None})
    for name in ("search_epochs", "search_batch", "eval_epochs", "eval_batch", "search_layers", "eval_layers"):
        if getattr(proto, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(proto, name)}")
    if proto.k is not None and proto.k < 1:
        raise ValueError(f"K must be >= 1, got {proto.k}")
    return proto
