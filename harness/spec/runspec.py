"""The resolved run spec: every number that decides a run, composed once, validated once, then read-only.

Composition (each layer overrides the one before, by dotted name):

1. the field defaults below (the CIFAR protocol of ROME Sec. 4.1 / DARTS ``cnn/train_search.py`` and
   ``cnn/train.py``);
2. the benchmark's paper protocol (``harness.spec.benchmarks.BENCHMARKS``);
3. the budget (``harness.spec.benchmarks.BUDGETS``);
4. the method's own search hyper-parameters (``search_defaults`` of its class) and the preset's rules
   (``harness.spec.benchmarks.PRESETS``: ``default`` or ``released``);
5. the user's ``--set`` (dotted names, ``search.a_lr=6e-4``, or the old flat names, ``eval_epochs=2``)
   and method options (``--k 3``).

:func:`validate` then checks every field (type, range, finiteness, known names) and the rules between
fields, before any folder is created or any data loaded; a bad value is one :class:`SpecError` naming
the field, the value and what is valid. ``RunSpec.to_dict()`` is what ``result.json`` records as
``config`` and what the config hash covers, so changing any number changes the run id.

Plain frozen dataclasses and a small override parser rather than OmegaConf: the spec is four flat
sections, the parser is 40 lines with its own tests, and the run id must hash exactly the values used.
"""

from __future__ import annotations

import hashlib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from harness.data import datasets as data
from harness.data.datasets import DATA_PATHS
from harness.spec import benchmarks
from harness.utils.paths import slug
from methods.base import CLIP_MODES, SearchHParams, method_class, option_slug
from spaces.darts import SPACES

SEED_LIMIT = 2**32  # numpy's seeds are 32-bit
MEMORY_LIMIT_BYTES = 2**40  # a search activation estimate above 1 TiB is a typo, not a run
STEMS = ("cifar", "imagenet")
SEARCH_HEADS = ("plain", "bn_relu")  # spaces.supernet.HEADS (not imported here: the spec needs no torch)
EVAL_NETWORKS = ("cifar", "imagenet", "nasbench101")
LR_SCHEDULES = ("cosine", "linear")
#: ``search.scale``: ``none`` takes ``search.a_lr`` as given; ``arch-steps`` sets it so that a_lr x the
#: architecture steps of the run equals that of the paper protocol (:func:`arch_steps`, docs/run-spec.md "scaling rule")
SCALE_RULES = ("none", "arch-steps")
#: the fields the scaling rule records; absent from ``to_dict`` (and so from the hash) under ``none``,
#: so that every spec without the rule keeps the hash it had before the rule existed
SCALE_FIELDS = ("scale", "a_lr_ref", "arch_steps_ref", "arch_steps")

SECTIONS = ("search", "eval", "data")
FIXED = "fixed"
#: numeric modes of training (``harness.engine.evaluate.autocast``): fp32 is the paper's
PRECISIONS = ("fp32", "tf32", "bf16")
#: numpy's legacy seeding takes 32-bit seeds (``np.random.seed``)
MAX_SEED = 2**32 - 1


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a resolved config: the run id's suffix and the result's ``env``."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
"""The ``method`` of a run that trains a given genotype instead of searching (``harness eval``)."""


class SpecError(ValueError):
    """A run spec that cannot run: one line naming the field, its value and what is valid."""


@dataclass(frozen=True)
class SearchSpec(SearchHParams):
    """The search: supernet shape, data per step, and (inherited) the search hyper-parameters."""

    layers: int = 8
    channels: int = 16
    batch: int = 64
    subset: int | None = None  # cap on images per search split (None: all)
    image_size: int | None = None  # None: the dataset's size
    stem: str = "cifar"  # "imagenet": three stride-2 convs before the cells (direct ImageNet search)
    # the DARTS-space supernet's layout (spaces/supernet.py): "bn_relu" puts BN + ReLU before the global
    # pool and pool_bn=false drops the BN after pooling ops, as xautodl's GDAS search network does
    head: str = "plain"
    pool_bn: bool = True
    # the scaling rule (SCALE_RULES): under ``arch-steps`` a_lr = a_lr_ref x arch_steps_ref / arch_steps,
    # with a_lr_ref the paper protocol's a_lr (settable) and the two step counts derived (recorded only)
    scale: str = "none"
    a_lr_ref: float | None = None
    arch_steps_ref: int | None = None
    arch_steps: int | None = None


@dataclass(frozen=True)
class EvalSpec:
    """Training the derived network from scratch (DARTS ``cnn/train.py``; ImageNet: ``train_imagenet.py``)."""

    network: str = "cifar"  # cifar (NetworkCIFAR), imagenet (mobile setting), nasbench101
    layers: int = 20
    channels: int = 36
    epochs: int = 600
    batch: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0  # 0: no clipping
    aux_weight: float = 0.4  # 0: no auxiliary head
    drop_path: float = 0.2
    label_smoothing: float = 0.0
    subset: int | None = None  # cap on training images (None: all)
    lr_schedule: str = "cosine"  # cosine to 0, or linear to 0 (PC-DARTS ``train_imagenet.py``)
    warmup_epochs: int = 0  # linear warm-up of the lr over the first epochs
    precision: str = "fp32"  # fp32 (the paper's numbers) | tf32 | bf16 autocast (harness.engine.evaluate.numerics)
    channels_last: bool = False  # channels_last memory format for the network and its inputs
    deterministic: bool = False  # deterministic kernels for the whole run; otherwise cudnn.benchmark


@dataclass(frozen=True)
class DataSpec:
    """Augmentation of the training images, as both data paths do it (``harness.data.datasets.split_augments``).

    The digits benchmarks' protocol turns crop, flip and cutout off; ImageNet has no padded crop.
    """

    cutout: int = 16  # 0: no cutout (evaluation training only)
    flip: bool = True  # random horizontal flip (R-DARTS ``src/utils.py`` flips SVHN too)
    crop_pad: int = 4  # random crop after zero padding (DARTS ``RandomCrop(32, padding=4)``); 0: no crop
    path: str = "device"  # device (harness.data.device_data: c10/c100/svhn/digits) | torchvision (PIL, DataLoader)


#: old flat ``--set`` names (and ``make_config`` keywords) -> dotted names
ALIASES: dict[str, str] = {
    "search_layers": "search.layers", "search_channels": "search.channels", "search_epochs": "search.epochs",
    "search_batch": "search.batch", "search_subset": "search.subset", "search_image_size": "search.image_size",
    "search_stem": "search.stem", "k": "options.k",
    "eval_network": "eval.network", "eval_layers": "eval.layers", "eval_channels": "eval.channels",
    "eval_epochs": "eval.epochs", "eval_batch": "eval.batch", "eval_lr": "eval.lr",
    "eval_momentum": "eval.momentum", "eval_weight_decay": "eval.weight_decay",
    "eval_grad_clip": "eval.grad_clip", "aux_weight": "eval.aux_weight", "drop_path": "eval.drop_path",
    "label_smoothing": "eval.label_smoothing", "eval_subset": "eval.subset", "cutout": "data.cutout",
    "precision": "eval.precision", "channels_last": "eval.channels_last", "deterministic": "eval.deterministic",
    "data_path": "data.path",
}

_SECTION_TYPES: dict[str, type] = {"search": SearchSpec, "eval": EvalSpec, "data": DataSpec}


# -- constraints, one per field ------------------------------------------------------------------------
def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _nonneg(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _unit(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must be in [0, 1]"


def _unit_open(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


def _one_of(*valid: str):
    return lambda v: None if v in valid else f"valid: {', '.join(valid)}"


def _image(v: Any) -> str | None:
    return None if v is None or v >= 8 else "must be >= 8 pixels (the supernet halves it twice), or none"


def _betas(v: Any) -> str | None:
    return None if len(v) == 2 and all(0 <= b < 1 for b in v) else "takes two numbers in [0, 1), e.g. 0.5,0.999"


#: the smallest Gumbel-softmax temperature: logits / tau must stay finite in float32 (tau = 1e-308 is
#: 0 there, and the run failed at its first step); GDAS anneals to 0.1, nothing anneals below 1e-3
TAU_MIN = 1e-3


def _tau(v: Any) -> str | None:
    return None if v >= TAU_MIN else f"must be >= {TAU_MIN:g} (a smaller tau overflows the Gumbel softmax)"


#: inclusive upper bounds that no real experiment exceeds (the paper's values in brackets), so that a
#: typo such as ``eval.lr=1e300`` or ``eval.layers=10**9`` is refused before the run instead of failing
#: or hanging hours into it. Shapes are further bounded together by the activation estimates below,
#: and ``data.cutout`` by the image size.
LIMITS: dict[str, float] = {
    "search.epochs": 10_000, "eval.epochs": 10_000,  # [50; 600]
    "search.w_lr": 10.0, "search.w_lr_min": 10.0, "search.a_lr": 10.0, "eval.lr": 10.0,  # [0.025-0.5]
    "search.a_lr_ref": 10.0,  # [3e-4-6e-4]
    "search.w_weight_decay": 1.0, "search.a_weight_decay": 1.0, "eval.weight_decay": 1.0,  # [3e-5-1e-3]
    "search.grad_clip": 1000.0, "eval.grad_clip": 1000.0,  # [5]
    "search.tau_max": 1000.0, "search.tau_min": 1000.0,  # [10 -> 0.1]
    "eval.aux_weight": 10.0,  # [0.4]
    "search.layers": 100, "eval.layers": 100,  # [5-9; 8-20]
    "search.channels": 1024, "eval.channels": 1024,  # [16; 16-128]
    "search.batch": 65_536, "eval.batch": 65_536,  # [64-256; 96-1024]
}


RULES: dict[str, Any] = {
    "search.epochs": _positive, "search.w_lr": _positive, "search.w_lr_min": _nonneg,
    "search.w_momentum": _unit_open, "search.w_weight_decay": _nonneg, "search.grad_clip": _nonneg,
    "search.clip_mode": _one_of(*CLIP_MODES), "search.a_lr": _positive, "search.a_betas": _betas,
    "search.a_weight_decay": _nonneg, "search.tau_max": _tau, "search.tau_min": _tau,
    "search.arch_warmup": _unit_open, "search.layers": _positive, "search.channels": _positive,
    "search.batch": _positive, "search.subset": _positive, "search.image_size": _image,
    "search.stem": _one_of(*STEMS), "search.head": _one_of(*SEARCH_HEADS), "search.scale": _one_of(*SCALE_RULES),
    "search.a_lr_ref": _positive, "search.arch_steps_ref": _positive, "search.arch_steps": _positive,
    "eval.network": _one_of(*EVAL_NETWORKS), "eval.layers": _positive, "eval.channels": _positive,
    "eval.epochs": _positive, "eval.batch": _positive, "eval.lr": _positive, "eval.momentum": _unit_open,
    "eval.weight_decay": _nonneg, "eval.grad_clip": _nonneg, "eval.aux_weight": _nonneg,
    "eval.drop_path": _unit_open, "eval.label_smoothing": _unit_open, "eval.subset": _positive,
    "eval.lr_schedule": _one_of(*LR_SCHEDULES), "eval.warmup_epochs": _nonneg,
    "eval.precision": _one_of(*PRECISIONS), "data.cutout": _nonneg, "data.crop_pad": _nonneg,
    "data.path": _one_of(*DATA_PATHS),
}


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides a run's result (the device and paths do not). ``search`` is ``None`` for a
    run that trains a given ``genotype`` (``harness eval``): nothing is searched, so nothing of a search
    is part of its record or hash."""

    method: str
    bench: str
    budget: str
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    search: SearchSpec | None = field(default_factory=SearchSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    data: DataSpec = field(default_factory=DataSpec)
    preset: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "options": self.options, "bench": self.bench, "budget": self.budget,
                "seed": self.seed, "preset": self.preset,
                "search": None if self.search is None else _search_dict(self.search),
                "eval": asdict(self.eval), "data": asdict(self.data)}

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())

    @property
    def run_id(self) -> str:
        if self.search is None:
            variant = f"-{slug(str(self.options.get('genotype', 'genotype')))}"
        else:
            variant = option_slug(self.method, self.options)
        preset = "" if self.preset == "default" else f"_{slug(self.preset)}"
        head = f"{slug(self.bench)}_{slug(self.method)}{variant}{preset}"
        return f"{head}_{slug(self.budget)}_s{self.seed}_{self.hash[:8]}"

    @property
    def protocol(self) -> types.SimpleNamespace:
        """The old flat view (``cfg.protocol.search_epochs``), read-only, for callers of the old names."""
        flat = {}
        for old, dotted in ALIASES.items():
            flat[old] = self.get(dotted)
        return types.SimpleNamespace(**flat)

    def get(self, dotted: str) -> Any:
        section, _, name = dotted.partition(".")
        if section == "options":
            return self.options.get(name)
        part = getattr(self, section)
        return None if part is None else getattr(part, name)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _search_dict(search: SearchSpec) -> dict[str, Any]:
    """The recorded search section: the scaling fields only where a rule applies (:data:`SCALE_FIELDS`)."""
    out = _jsonable(asdict(search))
    if search.scale == "none":
        for name in SCALE_FIELDS:
            out.pop(name)
    return out


# -- parsing ----------------------------------------------------------------------------------------------
@cache
def _hints(section: str) -> dict[str, Any]:
    return typing.get_type_hints(_SECTION_TYPES[section])


def valid_keys(method: str | None = None) -> list[str]:
    keys = [f"{s}.{f.name}" for s in SECTIONS for f in fields(_SECTION_TYPES[s])]
    if method is not None and method != FIXED:
        keys += [f"options.{k}" for k in method_class(method).option_defaults]
    return keys


def canonical(key: str) -> str:
    key = key.strip()
    return ALIASES.get(key.replace("-", "_"), key)


def parse_value(key: str, text: Any, kind: Any) -> Any:
    """``text`` as a value of type ``kind`` (int, float, bool, str, optional, tuple of floats)."""
    if not isinstance(text, str):
        return text
    raw = text.strip()
    args = typing.get_args(kind)
    if type(None) in args:
        if raw.lower() in ("none", "null"):
            return None
        kind = next(a for a in args if a is not type(None))
    try:
        if kind is bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if typing.get_origin(kind) is tuple:
            return tuple(float(x) for x in raw.strip("()[] ").split(","))
        return raw
    except ValueError:
        name = "a bool (true/false)" if kind is bool else f"a {getattr(kind, '__name__', str(kind))}"
        raise SpecError(f"{key}={text!r}: takes {name}") from None


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """``["search.a_lr=6e-4", "eval_epochs=2"]`` -> ``{dotted name: text}`` (types follow at resolve time).

    A name given twice, also as an alias and its dotted name (``eval_lr=0.1`` and ``eval.lr=0.2``), is
    an error: the last one used to win without a word, and which one was meant cannot be known."""
    out: dict[str, str] = {}
    given: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"bad --set '{item}': expected NAME=VALUE, e.g. search.a_lr=6e-4 or eval.epochs=20")
        name = canonical(key)
        if name in out:
            raise SpecError(f"--set {name} given twice ('{given[name]}' and '{item}'); give each name once")
        out[name], given[name] = text, item
    return out


# -- composition ----------------------------------------------------------------------------------------
def _apply(tree: dict[str, dict[str, Any]], key: str, value: Any, *, method: str | None, strict: bool) -> None:
    """Set dotted ``key`` in ``tree``; an unknown key raises when ``strict`` (the user's), else a table's
    ``options.k`` for a method without K is skipped."""
    section, _, name = key.partition(".")
    if section == "options":
        if method is None or name not in tree["options"]:
            if strict:
                raise SpecError(f"unknown name '{key}'; valid: {', '.join(valid_keys(method))}")
            return
        tree["options"][name] = value
        return
    if section not in SECTIONS or tree.get(section) is None or name not in tree[section]:
        raise SpecError(f"unknown name '{key}'; valid: {', '.join(valid_keys(method))}")
    tree[section][name] = parse_value(key, value, _hints(section)[name])


def resolve(method: str, bench: str, budget: str = "smoke", seed: int = 0, *,
            options: Mapping[str, Any] | None = None, sets: Mapping[str, Any] | None = None,
            preset: str = "default") -> RunSpec:
    """Compose, type-check and :func:`validate` the spec of one search run (see the module docstring).

    ``sets`` maps dotted or flat names to values (strings are parsed by the field's type).
    """
    bench_id = _check_names(bench, budget, preset)
    try:
        cls = method_class(method)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    tree = _compose(bench_id, budget, method, preset, cls, {"search": asdict(SearchSpec()),
                                                          "options": dict(cls.option_defaults)})
    budget_epochs = tree["search"]["epochs"]
    for given, value in (sets or {}).items():
        if value is None:
            continue
        if given.strip() == "k" and "k" not in cls.option_defaults:
            continue  # the old flat ``k``: K where the method samples K (a sweep over GDAS and ROME)
        _apply(tree, canonical(given), value, method=method, strict=True)
    given = {canonical(k) for k, v in (sets or {}).items() if v is not None}
    _scale(tree["search"], given, budget_epochs, lambda: _paper_search(method, bench_id, preset), bench_id)
    typed = {k: parse_value(f"options.{k}", v, type(cls.option_defaults[k])) for k, v in tree["options"].items()}
    try:
        opts = cls.resolve_options({**typed, **{k: v for k, v in (options or {}).items() if v is not None}})
    except SpecError:
        raise
    except ValueError as exc:  # the method's own check of an option
        raise SpecError(str(exc)) from None
    if tree["search"]["arch_first"] is None:
        tree["search"]["arch_first"] = cls.arch_first  # record the order used, not "the method's"
    spec = RunSpec(method, bench_id, budget, _seed(seed), opts, SearchSpec(**_floats("search", tree["search"])),
                   EvalSpec(**_floats("eval", tree["eval"])), DataSpec(**_floats("data", tree["data"])), preset)
    validate(spec)
    return spec


def resolve_fixed(label: str, cells: Mapping[str, Any], bench: str, budget: str = "paper", seed: int = 0, *,
                  sets: Mapping[str, Any] | None = None, preset: str = "default") -> RunSpec:
    """The spec of a ``fixed`` run: the genotype ``cells`` (named ``label``) evaluated at the benchmark's
    protocol, nothing searched. Search fields and options, of the tables or of ``sets``, do not apply."""
    bench_id = _check_names(bench, budget, preset)
    tree = _compose(bench_id, budget, FIXED, preset, None, {})
    for given, value in (sets or {}).items():
        key = canonical(given)
        # a budget-wide --set of search fields does not apply, nor the old flat ``k`` of a sweep
        if value is not None and not key.startswith("search.") and given.strip() != "k":
            _apply(tree, key, value, method=None, strict=True)
    opts = {"genotype": str(label), "cells": dict(cells)}
    spec = RunSpec(FIXED, bench_id, budget, _seed(seed), opts, None, EvalSpec(**_floats("eval", tree["eval"])),
                   DataSpec(**_floats("data", tree["data"])), preset)
    validate(spec)
    return spec


def _check_names(bench: str, budget: str, preset: str) -> str:
    """The one benchmark id ``bench`` names; :class:`SpecError` for an unknown benchmark, budget or preset."""
    try:
        bench_ids = benchmarks.expand(bench)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    if len(bench_ids) != 1:
        raise SpecError(f"'{bench}' names {len(bench_ids)} benchmarks; a run takes one")
    if budget not in benchmarks.BUDGETS:
        raise SpecError(f"unknown budget '{budget}'; valid: {', '.join(benchmarks.BUDGETS)}")
    if preset not in benchmarks.PRESETS:
        raise SpecError(f"unknown preset '{preset}'; valid: {', '.join(benchmarks.PRESETS)}")
    return bench_ids[0]


def _compose(bench_id: str, budget: str, method: str, preset: str, cls: Any, sections: dict[str, Any]
             ) -> dict[str, Any]:
    """Layers 1-4: the defaults (``sections`` plus eval and data), then the benchmark, budget, method and
    preset tables; a run without ``search``/``options`` sections skips their keys."""
    tree: dict[str, Any] = {"search": None, "options": {}, "eval": asdict(EvalSpec()), "data": asdict(DataSpec()),
                            **sections}
    for table in _tables(bench_id, budget, method, preset, cls):
        for key, value in table.items():
            if cls is None and key.startswith(("search.", "options.")):
                continue
            _apply(tree, canonical(key), value, method=None if cls is None else method, strict=False)
    return tree


def _tables(bench_id: str, budget: str, method: str, preset: str, cls: Any) -> list[Mapping[str, Any]]:
    """The override tables of layers 2-4 (benchmark, budget, method defaults, preset rules), in order."""
    return [benchmarks.get(bench_id).paper, benchmarks.BUDGETS[budget],
            {} if cls is None else {f"search.{k}": v for k, v in cls.search_defaults.items()},
            *(rule.sets for rule in benchmarks.PRESETS[preset] if rule.matches(method, bench_id, budget))]


def _paper_search(method: str, bench_id: str, preset: str) -> dict[str, Any]:
    """The search section of ``method`` on ``bench_id`` at budget ``paper`` (no ``--set``): the protocol
    that a scaled budget's architecture steps are matched to."""
    cls = method_class(method)
    tree: dict[str, Any] = {"search": asdict(SearchSpec()), "eval": asdict(EvalSpec()), "data": asdict(DataSpec()),
                            "options": dict(cls.option_defaults)}
    for table in _tables(bench_id, "paper", method, preset, cls):
        for key, value in table.items():
            _apply(tree, canonical(key), value, method=method, strict=False)
    return tree["search"]


def arch_steps(epochs: float, batch: int, images: int, subset: int | None, warmup: float) -> float:
    """Architecture updates of a search: ``ceil(min(images, subset) / batch)`` steps in each epoch after
    the first ``int(warmup * epochs)`` (``SearchMethod.arch_update_enabled``; PC-DARTS: 35 of 50 epochs)."""
    per_epoch = math.ceil(min(images, subset or images) / batch)
    return (epochs - int(warmup * epochs)) * per_epoch


def _scale(s: dict[str, Any], given: set[str], budget_epochs: int | None,
           paper_search: Any, bench_id: str) -> None:
    """``search.scale=arch-steps``: set ``a_lr = a_lr_ref x arch_steps_ref / arch_steps`` in ``s`` (in place).

    Under Adam each architecture step moves a logit by about ``a_lr`` whatever the gradient's size, so
    ``a_lr x steps`` is how far the architecture can move; the rule gives a short search the paper's
    reach. ``a_lr_ref`` is the paper protocol's a_lr (the method's, e.g. PC-DARTS 6e-4) unless set;
    ``arch_steps_ref`` counts the paper protocol's steps (its dataset, batch, epochs) with this run's
    warm-up fraction. This run's epochs map onto the paper's in the ratio of the budget's epochs to the
    paper's (``--epochs 40`` at ``cpu`` stands for 100 paper epochs; Table 5's K sweep keeps its
    ``7 / K`` epochs), so a_lr depends on the budget's shape, not on a run's length.

    A user's ``search.a_lr`` wins: the rule then does not apply and the spec records ``scale=none``
    (giving it together with ``search.scale`` or ``search.a_lr_ref`` is an error: which one is meant
    cannot be known). Invalid inputs are left to :func:`validate`, which names them.
    """
    for key in ("search.arch_steps", "search.arch_steps_ref"):
        if key in given:
            raise SpecError(f"{key}: derived by search.scale, not set; set search.scale, search.a_lr_ref "
                            "or search.a_lr instead")
    if s["scale"] == "arch-steps" and "search.a_lr" in given:
        if given & {"search.scale", "search.a_lr_ref"}:
            raise SpecError("search.a_lr: set by the rule search.scale=arch-steps from search.a_lr_ref; give "
                            "search.a_lr alone (the rule then does not apply) or search.a_lr_ref, not both")
        s["scale"] = "none"
    ref = s["a_lr"] if s["a_lr_ref"] is None else s["a_lr_ref"]
    sane = (isinstance(s["epochs"], int) and s["epochs"] > 0 and s["batch"] > 0 and (s["subset"] is None
            or s["subset"] > 0) and 0 <= s["arch_warmup"] < 1 and isinstance(ref, int | float)
            and math.isfinite(ref) and ref > 0)
    if s["scale"] != "arch-steps" or not sane or budget_epochs is None:
        return
    paper = paper_search()
    dataset = benchmarks.get(bench_id).dataset
    steps = arch_steps(s["epochs"], s["batch"], benchmarks.SEARCH_SPLIT_IMAGES[dataset], s["subset"],
                       s["arch_warmup"])
    steps_ref = arch_steps(paper["epochs"] * s["epochs"] / budget_epochs, paper["batch"],
                           benchmarks.SEARCH_SPLIT_IMAGES[benchmarks.paper_dataset(bench_id)], paper["subset"],
                           s["arch_warmup"])
    s.update(a_lr_ref=float(ref), arch_steps=int(steps), arch_steps_ref=round(steps_ref),
             a_lr=float(f"{ref * round(steps_ref) / steps:.4g}"))


def _floats(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """Integers given for float fields become floats (``1`` and ``1.0`` must hash the same)."""
    hints = _hints(section)
    return {k: float(v) if hints[k] is float and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in values.items()}


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise SpecError(f"seed={seed!r}: must be an integer with 0 <= seed < 2**32 (seed must be >= 0)")
    return seed


# -- validation ---------------------------------------------------------------------------------------------
def _type_ok(value: Any, kind: Any) -> bool:
    args = typing.get_args(kind)
    if type(None) in args:
        if value is None:
            return True
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if typing.get_origin(kind) is tuple:
        return isinstance(value, tuple) and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    return isinstance(value, kind)


def validate(spec: RunSpec) -> None:
    """Every field's type, finiteness and range, known names, and the rules between fields; raises
    :class:`SpecError` with one line naming the field, its value and what is valid."""
    _seed(spec.seed)
    for section in SECTIONS:
        part = getattr(spec, section)
        if part is None:
            continue
        hints = _hints(section)
        for f in fields(part):
            key, value = f"{section}.{f.name}", getattr(part, f.name)
            if not _type_ok(value, hints[f.name]):
                what = "a finite number" if hints[f.name] is float else str(hints[f.name])
                raise SpecError(f"{key}={value!r}: takes {what}")
            rule = RULES.get(key)
            problem = None if rule is None or (value is None and key != "search.image_size") else rule(value)
            if problem:
                raise SpecError(f"{key}={value!r}: {problem}")
            high = LIMITS.get(key)
            if high is not None and value is not None and value > high:
                raise SpecError(f"{key}={value!r}: must be <= {high:g} (no real experiment goes beyond; "
                                "`harness list --fields` lists the limits)")
    s, e = spec.search, spec.eval
    if spec.data.path == "device" and benchmarks.get(spec.bench).dataset == "imagenet":
        raise SpecError("data.path='device': covers c10, c100, svhn and digits; ImageNet takes data.path=torchvision")
    _check_crop(spec)
    if e.warmup_epochs > e.epochs:
        raise SpecError(f"eval.warmup_epochs={e.warmup_epochs}: must be <= eval.epochs ({e.epochs})")
    native = _image_size(spec.bench)
    if spec.data.cutout > native:  # a square wider than the image erases most of it (at twice its size, all)
        raise SpecError(f"data.cutout={spec.data.cutout}: must be <= the image size ({native})")
    need = eval_memory_estimate(spec, native)
    if need > MEMORY_LIMIT_BYTES:
        raise SpecError(f"eval.layers={e.layers}, eval.channels={e.channels}, eval.batch={e.batch}: about "
                        f"{need / 2**40:.0f} TiB of activations and weights; valid: shapes under 1 TiB")
    if s is None:
        return
    if s.tau_min > s.tau_max:
        raise SpecError(f"search.tau_min={s.tau_min}: must be <= search.tau_max ({s.tau_max})")
    _check_scale(s)
    if s.w_lr_min > s.w_lr:
        raise SpecError(f"search.w_lr_min={s.w_lr_min}: must be <= search.w_lr ({s.w_lr})")
    if s.stem == "imagenet" and s.image_size is not None and s.image_size < 32:
        raise SpecError(f"search.image_size={s.image_size}: the imagenet stem needs >= 32 pixels")
    _check_layout(spec)
    problem = method_class(spec.method).check_spec(spec.options, s.channels)
    if problem:
        raise SpecError(problem)
    need = search_memory_estimate(spec, _image_size(spec.bench))
    if need > MEMORY_LIMIT_BYTES:
        raise SpecError(f"search.image_size={s.image_size}, search.batch={s.batch}, search.channels={s.channels}: "
                        f"about {need / 2**40:.0f} TiB of activations; valid: shapes under 1 TiB")


def _check_scale(s: SearchSpec) -> None:
    """The recorded rule and its values agree: ``none`` records nothing; ``arch-steps`` records all three
    and the a_lr they give (a spec built by hand or by :func:`with_sets` must not claim a rule it broke)."""
    derived = {"search.a_lr_ref": s.a_lr_ref, "search.arch_steps_ref": s.arch_steps_ref,
               "search.arch_steps": s.arch_steps}
    if s.scale == "none":
        for key, value in derived.items():
            if value is not None:
                raise SpecError(f"{key}={value!r}: only with search.scale=arch-steps (the rule it belongs to)")
        return
    if s.a_lr_ref is None or s.arch_steps_ref is None or s.arch_steps is None:
        raise SpecError(f"search.scale={s.scale}: its values were not derived; resolve the spec with the rule")
    want = s.a_lr_ref * s.arch_steps_ref / s.arch_steps
    if not math.isclose(s.a_lr, want, rel_tol=1e-3):
        raise SpecError(f"search.a_lr={s.a_lr:g}: search.scale={s.scale} gives a_lr_ref x arch_steps_ref / "
                        f"arch_steps = {want:.4g}; set search.a_lr alone (no rule) or search.a_lr_ref")


def _check_crop(spec: RunSpec) -> None:
    """The data layer's rule on the padded crop (:func:`harness.data.datasets.crop_pad_problem`)."""
    problem = data.crop_pad_problem(benchmarks.get(spec.bench).dataset, spec.data.crop_pad)
    if problem:
        raise SpecError(f"data.{problem}")


def _check_layout(spec: RunSpec) -> None:
    """``search.head`` and ``search.pool_bn`` shape the DARTS-space supernet only; elsewhere (NAS-Bench-1Shot1)
    they would be recorded but not done, which a result must never claim."""
    s = spec.search
    assert s is not None
    space = benchmarks.get(spec.bench).space
    if space in SPACES:
        return
    if s.head != "plain":
        raise SpecError(f"search.head={s.head!r}: the {space} supernet has its own head; "
                        f"valid there: plain (the option is for the DARTS spaces {', '.join(SPACES)})")
    if not s.pool_bn:
        raise SpecError(f"search.pool_bn=False: the {space} supernet has its own pooling ops; "
                        f"valid there: true (the option is for the DARTS spaces {', '.join(SPACES)})")


def _image_size(bench: str) -> int:
    return data.DATASETS[benchmarks.get(bench).dataset].image_size


def search_memory_estimate(spec: RunSpec, native_size: int = 32) -> float:
    """A loose upper bound of a search step's activations: float32 maps of ``3 C`` channels for each of
    14 edges x 8 ops of every cell, K samples (DARTS-sized; used only to refuse shapes no one means:
    the paper's largest search, ROME K = 7 on CIFAR, is about 80 GB by this bound)."""
    s = spec.search
    assert s is not None
    size = s.image_size or native_size
    if s.stem == "imagenet":
        size = max(1, size // 8)
    k = int(spec.options.get("k", 1) or 1)
    return 4.0 * s.batch * 3 * s.channels * size * size * s.layers * 14 * 8 * k


def eval_memory_estimate(spec: RunSpec, native_size: int = 32) -> float:
    """A loose upper bound of an evaluation step's memory: float32 activations of 8 ops x 8 saved maps per
    cell at the first cells' ``C x H x W`` (a reduction cell doubles C and halves H and W, so later cells
    hold less), plus weights, gradients and momentum of 16 pointwise convolutions per cell at the last
    cells' ``4 C`` channels. Used only to refuse shapes no one means: DARTS's CIFAR evaluation (20 cells,
    36 channels, batch 96) is about 17 GiB by this bound, the ImageNet mobile setting (batch 1024,
    224 pixels, 28 x 28 after its stride-8 stem) about 130 GiB."""
    e = spec.eval
    size = max(1, native_size // 8) if e.network == "imagenet" else native_size
    activations = 4.0 * e.batch * e.channels * size * size * e.layers * 8 * 8
    weights = 3 * 4.0 * e.layers * 16 * (4 * e.channels) ** 2
    return activations + weights


def with_sets(spec: RunSpec, **sections: Mapping[str, Any]) -> RunSpec:
    """``spec`` with some fields replaced (``search={"epochs": 3}``), validated again."""
    parts = {name: replace(getattr(spec, name), **values) for name, values in sections.items()}
    out = replace(spec, **parts)
    validate(out)
    return out


def make_config(method: str, bench: str, budget: str = "smoke", seed: int = 0,
                options: dict[str, Any] | None = None, *, preset: str = "default",
                sets: dict[str, Any] | None = None, **flat: Any) -> RunSpec:
    """:func:`harness.spec.runspec.resolve` with the old keywords: ``flat`` takes the old flat names
    (``search_epochs=2``, ``k=3``); ``sets`` dotted ones. ``ValueError`` says what is valid."""
    return resolve(method, bench, budget, seed, options=options, sets={**flat, **(sets or {})}, preset=preset)


def fixed_config(genotype: Any, label: str, bench: str, budget: str = "paper", seed: int = 0, *,
                 preset: str = "default", **sets: Any) -> RunSpec:
    """A run that evaluates ``genotype`` (named ``label``) at the benchmark's protocol, without search.

    The genotype itself is part of the config (and so of its hash): two files of one name differ.
    """
    name = Path(label).name  # a file's name, never its folders
    label = slug(Path(name).stem if Path(name).suffix == ".json" else name)
    return resolve_fixed(label, genotype.to_dict(), bench, budget, seed, sets=sets, preset=preset)
