"""The search-method interface and what every method shares.

A method owns its architecture parameters (``alpha`` per op decision, ``beta`` per edge when it has
them), its two optimizers and the temperature ``tau``; it knows how to sample an architecture, how to
take one search iteration and how to derive the final genotype. The run loop (``harness.runs.run``) owns
data, epochs, learning-rate schedules, checkpoints and recording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from spaces.base import CellArch, ChoiceShape
from spaces.supernet import Selection

Batch = tuple[torch.Tensor, torch.Tensor]


CLIP_MODES = ("per_sample", "summed", "off")


@dataclass(frozen=True)
class SearchHParams:
    """Search hyper-parameters shared by every method (DARTS first order, ``cnn/train_search.py`` of
    quark0/darts; tau 10 -> 0.1 as GDAS, Dong & Yang 2019, Sec. 4). A method's own values (ROME Sec. 4.1:
    SGD lr 0.05; PC-DARTS: lr 0.1, Adam 6e-4, 15 warm-up epochs of 50) are its ``search_defaults``,
    applied by the harness when it resolves a run spec (``harness.spec.runspec``).

    ``clip_mode`` says where ``grad_clip`` applies to the weight gradient of a step with K samples:
    ``per_sample`` clips each sample's gradient before Eq. 12 sums them (the sum stays a sum of K
    bounded terms, so a K-sweep measures K), ``summed`` clips the sum (rescales Eq. 12 whenever it is
    large), ``off`` never clips. With one sample the first two are the same.
    """

    epochs: int = 50
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    w_nesterov: bool = False
    grad_clip: float = 5.0
    clip_mode: str = "per_sample"
    a_lr: float = 3e-4
    a_betas: tuple[float, float] = (0.5, 0.999)
    a_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    arch_warmup: float = 0.0  # fraction of the epochs before the first architecture update
    arch_first: bool | None = None  # None: the method's own order (``SearchMethod.arch_first``)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def option(default: Any, help: str, *, label: str | None = None,
           check: Callable[[Any], str | None] | None = None, slug: bool = True) -> Any:
    """One method option, declared once: the CLI flag (``--name``), run-id slug, report label and
    profile file name all follow from it. ``check(value)`` returns what is wrong, or ``None``."""
    return field(default=default, metadata={"help": help, "label": label, "check": check, "slug": slug})


@dataclass(frozen=True)
class NoOptions:
    """A method without options."""


def option_fields(options_type: type) -> list[Field]:
    return list(fields(options_type))


METHODS: dict[str, type[SearchMethod]] = {}


def register_method(name: str) -> Callable[[type[SearchMethod]], type[SearchMethod]]:
    """Class decorator: ``@register_method("rome-v2")`` makes the method available by name."""

    def deco(cls: type[SearchMethod]) -> type[SearchMethod]:
        if name in METHODS:
            raise ValueError(f"method '{name}' registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def method_class(name: str) -> type[SearchMethod]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method '{name}'; valid: {', '.join(sorted(METHODS))}") from None


def build_method(name: str, supernet: nn.Module, hp: SearchHParams,
                 options: dict[str, Any] | None = None) -> SearchMethod:
    return method_class(name)(supernet, hp, options)


def method_hparams(name: str, **overrides: Any) -> SearchHParams:
    """The shared search hyper-parameters with the method's own ``search_defaults`` (for code that
    builds a method without a run spec: tests, ``harness profile``)."""
    return SearchHParams(**{**method_class(name).search_defaults, **overrides})


def changed_options(method: str, options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The ``(name, value)`` options that differ from the method's defaults, sorted by name (an unknown
    method: every option); only options that are part of the slug."""
    try:
        cls = method_class(method)
    except ValueError:
        return tuple(sorted((k, v) for k, v in options.items() if not isinstance(v, dict | list)))
    declared = {f.name: f for f in option_fields(cls.Options)}
    out = []
    for key, value in sorted(options.items()):
        f = declared.get(key)
        if f is not None and (not f.metadata.get("slug", True) or f.default == value):
            continue
        if f is None and isinstance(value, dict | list):
            continue
        out.append((key, value))
    return tuple(out)


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def option_slug(method: str, options: dict[str, Any]) -> str:
    """``_k3_td0``: every changed option as ``_<name><value>`` (run ids, profile file names)."""
    return "".join(f"_{k}{_text(v)}" for k, v in changed_options(method, options))


def option_label(method: str, options: dict[str, Any]) -> str:
    """``rome-v2 (K=2, TD off)``: the method and each changed option by its declared label."""
    try:
        declared = {f.name: f for f in option_fields(method_class(method).Options)}
    except ValueError:
        declared = {}
    parts = []
    for key, value in changed_options(method, options):
        f = declared.get(key)
        label = (f.metadata.get("label") if f is not None else None) or key
        parts.append(f"{label} {'on' if value else 'off'}" if isinstance(value, bool) else f"{label}={value}")
    return f"{method} ({', '.join(parts)})" if parts else method


def tau_schedule(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """GDAS's linear decay: ``tau = tau_max - (tau_max - tau_min) * epoch / (epochs - 1)``."""
    if epochs <= 1:
        return tau_min
    return tau_max - (tau_max - tau_min) * epoch / (epochs - 1)


class SearchMethod:
    """Base of every method; subclasses override :meth:`sample` and :meth:`selection`.

    One :meth:`step` is one iteration of a bi-level first-order search: an architecture update on the
    validation batch with the gradients of ``k_arch`` samples averaged (Eq. 11), and a weight update on
    the training batch with the gradients of ``k_weight`` samples summed (Eq. 12). With one sample
    both reduce to the usual alternating update of DARTS and GDAS.
    """

    name: ClassVar[str] = "?"
    #: search hyper-parameters (:class:`SearchHParams` fields) this method's paper sets differently
    search_defaults: ClassVar[dict[str, Any]] = {}
    #: the method's options: a frozen dataclass of :func:`option` fields, declared once
    Options: ClassVar[type] = NoOptions
    #: ``{name: default}`` of :attr:`Options` (derived)
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: update the architecture before the weights in each iteration (DARTS, ROME) or after (GDAS)
    arch_first: ClassVar[bool] = True
    #: methods that sample topology never sample ``none`` (S3): the in-degree must stay 2
    allow_none: ClassVar[bool] = True
    #: whether :meth:`sample` draws at random. ``False`` where every call returns the same architecture
    #: (the continuous relaxation of DARTS and PC-DARTS): one pass then measures what any number of
    #: draws would, so ``harness profile`` takes one pass instead of a distribution over draws
    samples: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.option_defaults = {f.name: f.default for f in option_fields(cls.Options)}

    def __init__(self, supernet: nn.Module, hp: SearchHParams, options: dict[str, Any] | None = None):
        self.options = self.resolve_options(options)
        self.hp = hp
        if hp.arch_first is not None:
            self.arch_first = hp.arch_first
        self.model = supernet
        self.shapes: dict[str, ChoiceShape] = supernet.shapes
        device = next(supernet.parameters()).device
        self.alpha = nn.ParameterDict({
            t: nn.Parameter(1e-3 * torch.randn(len(s.ops), s.n_ops, device=device))
            for t, s in self.shapes.items()
        })
        self.beta = nn.ParameterDict(self.init_beta(device))
        self.op_mask = {t: self._op_mask(s, device) for t, s in self.shapes.items()}
        self.tau = self.hp.tau_max
        self.epoch = 0
        self.epochs = self.hp.epochs
        self.k_arch = 1
        self.k_weight = 1
        self.w_opt = torch.optim.SGD(self.model.parameters(), lr=self.hp.w_lr, momentum=self.hp.w_momentum,
                                     weight_decay=self.hp.w_weight_decay, nesterov=self.hp.w_nesterov)
        self.a_opt = torch.optim.Adam(self.arch_parameters(), lr=self.hp.a_lr, betas=self.hp.a_betas,
                                      weight_decay=self.hp.a_weight_decay)

    # -- options -------------------------------------------------------------------------------
    @classmethod
    def resolve_options(cls, options: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``options``; unknown or ill-typed options raise ``ValueError``."""
        declared = {f.name: f for f in option_fields(cls.Options)}
        out = dict(cls.option_defaults)
        for key, value in (options or {}).items():
            if value is None:
                continue
            if key not in out:
                valid = ", ".join(sorted(out)) or "none"
                raise ValueError(f"method '{cls.name}' has no option '{key}' (its options: {valid})")
            out[key] = _coerce(key, value, type(declared[key].default))
        for key, f in declared.items():
            problem = f.metadata.get("check") and f.metadata["check"](out[key])
            if problem:
                raise ValueError(f"options.{key}={out[key]!r}: {problem}")
        return out

    @classmethod
    def supernet_kwargs(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Extra arguments of the supernet this method needs (PC-DARTS: the partial ratio)."""
        return {}

    @classmethod
    def disentangles_topology(cls, options: dict[str, Any]) -> bool:
        """Whether the method samples each node's inputs apart from its ops (ROME Sec. 3.3, Eq. 1), so
        that every derived node keeps two distinct inputs and never ``none``."""
        return False

    @classmethod
    def check_spec(cls, options: dict[str, Any], channels: int) -> str | None:
        """What is wrong with these options for a supernet of ``channels`` channels, or ``None``."""
        return None

    # -- parameters ------------------------------------------------------------------------------
    def init_beta(self, device: torch.device) -> dict[str, nn.Parameter]:
        """No edge parameters in the DARTS spaces. Where ops sit on nodes (NAS-Bench-1Shot1) the op
        weights cannot rank a node's inputs, so every method gets one ``beta`` per edge to choose
        parents with, as nasbench-1shot1 gives DARTS and GDAS weights on each node's inputs."""
        return {t: nn.Parameter(1e-3 * torch.randn(s.n_edges, device=device))
                for t, s in self.shapes.items() if not s.ops_on_edges}

    def _op_mask(self, shape: ChoiceShape, device: torch.device) -> torch.Tensor:
        allowed = [[self.allow_none or name != "none" for name in ops] for ops in shape.ops]
        return torch.tensor(allowed, device=device)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alpha.values(), *self.beta.values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def op_logits(self, cell_type: str) -> torch.Tensor:
        """``alpha`` with ops this method may not sample masked to ``-inf``."""
        return self.alpha[cell_type].masked_fill(~self.op_mask[cell_type], float("-inf"))

    # -- the interface -----------------------------------------------------------------------------
    def begin_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch, self.epochs = epoch, epochs
        self.tau = tau_schedule(epoch, epochs, self.hp.tau_max, self.hp.tau_min)

    def sample(self) -> dict[str, CellArch]:
        """One architecture to run, per cell type (differentiable w.r.t. alpha/beta)."""
        raise NotImplementedError

    def selection(self) -> Selection:
        """The derived architecture: per cell type, per node, the kept ``(edge, op)`` pairs."""
        raise NotImplementedError

    def genotype(self) -> Any:
        return self.model.genotype(self.selection())

    # -- recorded architecture weights -------------------------------------------------------------
    #: decimals the recorded weights are rounded to (a few KB per epoch on S0)
    weight_decimals: ClassVar[int] = 4

    def op_probabilities(self, cell_type: str) -> torch.Tensor:
        """Per op decision, the probability of each op: ``softmax(alpha)`` over the ops this method may
        sample (DARTS: the mixing weights; GDAS/ROME: the sampling distribution of Eq. 2)."""
        return F.softmax(self.op_logits(cell_type), dim=-1)

    def edge_probabilities(self, cell_type: str) -> torch.Tensor | None:
        """Per edge, its weight or inclusion probability; ``None`` where edges have no parameters."""
        return None

    def arch_weights(self) -> dict[str, dict[str, list]]:
        """The architecture weights as plain lists for the search history, per cell type:
        ``ops`` (decisions x ops, each row sums to 1) and, where the method has edge parameters,
        ``edges`` (one value per edge). Rounded to :attr:`weight_decimals`."""
        out: dict[str, dict[str, list]] = {}
        with torch.no_grad():
            for t in self.shapes:
                entry = {"ops": _rounded(self.op_probabilities(t), self.weight_decimals)}
                edges = self.edge_probabilities(t)
                if edges is not None:
                    entry["edges"] = _rounded(edges, self.weight_decimals)
                out[t] = entry
        return out

    def arch_update_enabled(self) -> bool:
        """No architecture update in the first ``arch_warmup`` fraction of the epochs (PC-DARTS)."""
        return self.epoch >= int(self.hp.arch_warmup * self.epochs)

    def step(self, train_batch: Batch, val_batch: Batch) -> dict[str, float]:
        """One iteration of Algorithm 1 (or its one-sample special case)."""
        if self.arch_first:
            stats = self.arch_step(val_batch) if self.arch_update_enabled() else {}
            return {**stats, **self.weight_step(train_batch)}
        stats = self.weight_step(train_batch)
        return {**stats, **(self.arch_step(val_batch) if self.arch_update_enabled() else {})}

    def arch_step(self, batch: Batch) -> dict[str, float]:
        """Eq. 11: ``alpha <- alpha - lr * (1/K) sum_k grad_alpha L_val(theta, z_k)`` (Adam)."""
        x, y = batch
        params = self.arch_parameters()
        self.a_opt.zero_grad(set_to_none=True)
        loss_sum, correct = 0.0, 0
        for _ in range(self.k_arch):
            logits = self.model(x, self.sample())
            loss = F.cross_entropy(logits, y)
            (loss / self.k_arch).backward(inputs=params)
            loss_sum += loss.item()
            correct += int((logits.argmax(1) == y).sum())
        self.a_opt.step()
        return {"val_loss": loss_sum / self.k_arch, "val_acc": 100.0 * correct / (len(y) * self.k_arch)}

    def weight_step(self, batch: Batch) -> dict[str, float]:
        """Eq. 12: ``theta <- theta - lr * sum_k grad_theta L_train(theta, z'_k)`` (SGD, clipped)."""
        x, y = batch
        params = self.weight_parameters()
        self.w_opt.zero_grad(set_to_none=True)
        clip = self.hp.grad_clip if self.hp.clip_mode != "off" else 0.0
        per_sample = clip > 0 and self.hp.clip_mode == "per_sample" and self.k_weight > 1
        total: list[torch.Tensor | None] = [None] * len(params)
        loss_sum, correct = 0.0, 0
        for _ in range(self.k_weight):
            with torch.no_grad():
                arch = self.sample()
            logits = self.model(x, arch)
            loss = F.cross_entropy(logits, y)
            loss.backward(inputs=params)
            if per_sample:  # clip this sample's gradient, then add it to the sum of Eq. 12
                nn.utils.clip_grad_norm_(params, clip)
                for i, p in enumerate(params):
                    if p.grad is not None:
                        total[i] = p.grad if total[i] is None else total[i] + p.grad
                        p.grad = None
            loss_sum += loss.item()
            correct += int((logits.argmax(1) == y).sum())
        if per_sample:
            for p, g in zip(params, total, strict=True):
                p.grad = g
        elif clip > 0:
            nn.utils.clip_grad_norm_(params, clip)
        self.w_opt.step()
        return {"train_loss": loss_sum / self.k_weight,
                "train_acc": 100.0 * correct / (len(y) * self.k_weight)}

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "alpha": self.alpha.state_dict(),
                "beta": self.beta.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "tau": self.tau, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.alpha.load_state_dict(state["alpha"])
        self.beta.load_state_dict(state["beta"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.tau, self.epoch = float(state["tau"]), int(state["epoch"])


def _rounded(x: torch.Tensor, decimals: int) -> list:
    return torch.round(x.detach().double().cpu(), decimals=decimals).tolist()


# -- derivation rules shared by the methods ---------------------------------------------------------

def best_ops(op_weights: torch.Tensor, shape: ChoiceShape) -> tuple[torch.Tensor, torch.Tensor]:
    """Per decision, the largest weight over non-``none`` ops and its index (``none`` never derived)."""
    is_none = torch.tensor([[n == "none" for n in ops] for ops in shape.ops], device=op_weights.device)
    return op_weights.masked_fill(is_none, float("-inf")).max(dim=-1)


def select_top_edges(edge_scores: torch.Tensor, op_index: torch.Tensor | list[int], shape: ChoiceShape
                     ) -> list[list[tuple[int, int]]]:
    """Per node keep the ``in_degree`` incoming edges with the largest score (DARTS rule)."""
    out = []
    for node, (edges, k) in enumerate(zip(shape.node_edges, shape.in_degree, strict=True)):
        idx = torch.tensor(edges)
        top = idx[edge_scores.detach().cpu()[idx].topk(k).indices].tolist()
        out.append(kept(shape, node, sorted(top), op_index))
    return out


def kept(shape: ChoiceShape, node: int, edges: list[int] | tuple[int, ...], op_index: torch.Tensor | list[int]
         ) -> list[tuple[int, int]]:
    """The ``(edge, op)`` pairs of a node's kept edges: the op of each edge (DARTS spaces) or, where ops
    sit on nodes, the node's own op (decision ``node``; -1 for the output node, which has none)."""
    if shape.ops_on_edges:
        return [(e, int(op_index[e])) for e in edges]
    op = int(op_index[node]) if node < len(shape.ops) else -1
    return [(e, op) for e in edges]


def node_edge_weights(beta: torch.Tensor, shape: ChoiceShape,
                      normalize: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Per node, ``normalize`` over its candidate edges' ``beta`` (ops on nodes: the weights on a node's
    inputs). A node whose parents are fixed (``in_degree`` = its candidates) weighs each input 1."""
    out = torch.ones_like(beta)
    for edges, k in zip(shape.node_edges, shape.in_degree, strict=True):
        if k < len(edges):
            idx = torch.tensor(edges, device=beta.device)
            out = out.index_copy(0, idx, normalize(beta[idx]))
    return out


def _coerce(key: str, value: Any, kind: type) -> Any:
    """``value`` as the option's type; bools accept 0/1 only, ints no fractions."""
    ok = True
    if kind is bool:
        ok = isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
    elif kind is int:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
    elif kind is float:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
    if not ok:
        raise ValueError(f"options.{key}={value!r}: takes a {kind.__name__}")
    return kind(value)
