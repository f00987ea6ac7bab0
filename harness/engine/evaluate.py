"""Train an evaluation network from scratch and test it (the protocol of DARTS ``cnn/train.py``, quark0/darts).

SGD with momentum and weight decay, cosine annealing of the learning rate per epoch down to 0,
gradient-norm clipping, drop path scaled linearly with the epoch, and an auxiliary loss when the
network returns auxiliary logits. Networks may return ``logits`` or ``(logits, logits_aux)``.

:func:`train_and_test` composes three pieces: :func:`setup_training` (device, DDP wrapper, optimizer,
scheduler, loss, resume), :func:`train_epoch` (the drop-path schedule, the metrics, the epoch callback)
and :func:`train_step` (one batch), the step that ``harness.evidence.throughput`` times.

Numerics and layout (:func:`numerics`): ``fp32`` (default, the paper's numbers: TF32 off for
matrix products and convolutions), ``tf32`` (TF32 tensor cores on CUDA) or ``bf16`` (``torch.autocast``
to bfloat16, on CUDA and CPU); ``channels_last`` memory format for the network and its inputs;
``cudnn.benchmark`` unless deterministic kernels are asked for. Under ``torch.distributed`` the
network is wrapped in ``DistributedDataParallel`` (see :mod:`harness.utils.distributed`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from harness.engine.health import NonFiniteError
from harness.spec.runspec import PRECISIONS
from harness.utils import distributed


@contextlib.contextmanager
def numerics(precision: str = "fp32", deterministic: bool = False) -> Iterator[None]:
    """TF32 and cuDNN settings for the duration (restored afterwards); ``ValueError`` for a bad name.

    ``fp32`` turns TF32 off (PyTorch's default lets cuDNN convolutions use it); ``tf32`` turns it on
    for matrix products and convolutions; ``bf16`` is applied by :func:`autocast`. ``deterministic``
    asks for deterministic kernels (``torch.use_deterministic_algorithms``, warn-only for ops that
    have none) and turns ``cudnn.benchmark`` off; otherwise cuDNN benchmarks its algorithms.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; valid: {', '.join(PRECISIONS)}")
    b = torch.backends
    saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark, b.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = precision == "tf32"
    b.cudnn.benchmark = not deterministic
    b.cudnn.deterministic = deterministic
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark, b.cudnn.deterministic = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``bf16``; nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format

#: Signature of the per-epoch callback: ``on_epoch(epoch, info)`` with ``epoch`` counted from 0 and
#: ``info`` = ``{"epoch", "train_loss", "train_acc", "lr", "drop_path_prob"}``.
EpochCallback = Callable[[int, dict[str, float]], Any]
#: Signature of the checkpoint callback: ``checkpoint(state)`` after each epoch (after ``on_epoch``),
#: ``state`` = ``{"next_epoch", "model", "optimizer", "scheduler", "train_loss", "train_acc"}``; the
#: same dict passed back as ``resume`` continues the training from there.
CheckpointCallback = Callable[[dict[str, Any]], Any]


def _split_output(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits, logits_aux)`` from a network output that is a tensor or a tuple."""
    if isinstance(output, (tuple, list)):
        logits = output[0]
        aux = output[1] if len(output) > 1 else None
        return logits, aux
    return output, None


def evaluate_accuracy(model: nn.Module, loader: Iterable, device: torch.device, precision: str = "fp32",
                      channels_last: bool = False) -> float:
    """Top-1 accuracy in percent of ``model`` (in evaluation mode) over ``loader``.

    Parameters
    ----------
    model : nn.Module
        Network returning logits or ``(logits, logits_aux)``; its training mode is restored.
    loader : iterable of (inputs, targets)
        Test batches.
    device : torch.device
        Where to run.

    Returns
    -------
    float
        Accuracy in percent.

    Raises
    ------
    ValueError
        If the loader yields no samples.
    NonFiniteError
        If the network's logits hold NaN or infinity (its weights diverged).
    """
    was_training = model.training
    model.eval()
    correct = 0
    total = 0
    try:
        with torch.no_grad():
            for inputs, targets in loader:
                inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=memory_format(channels_last))
                targets = targets.to(device, non_blocking=True)
                with autocast(device, precision):
                    logits, _ = _split_output(model(inputs))
                if not bool(torch.isfinite(logits).all()):  # argmax of NaN logits is an arbitrary class
                    raise NonFiniteError("test logits hold NaN or inf: the trained network is broken")
                correct += int((logits.argmax(dim=1) == targets).sum().item())
                total += int(targets.numel())
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate accuracy: the loader yielded no samples")
    return 100.0 * correct / total


def lr_factor(epoch: int, epochs: int, schedule: str, warmup: int) -> float:
    """The lr of ``epoch`` as a fraction of the initial one.

    ``linear`` follows PC-DARTS ``train_imagenet.py`` ``adjust_lr``: ``(E - 5 - e) / (E - 5)`` while more
    than 5 epochs remain, then the smaller slope ``(E - e) / ((E - 5) * 5)``; a warm-up of ``w`` epochs
    scales the first ones by ``(e + 1) / w`` (there: 5 epochs when the batch exceeds 256). ``cosine`` is
    ``(1 + cos(pi e / E)) / 2`` (DARTS ``train.py``'s ``CosineAnnealingLR``), with the same warm-up.
    """
    tail = 5
    if schedule == "linear":
        if epochs <= tail:
            factor = (epochs - epoch) / epochs
        elif epochs - epoch > tail:
            factor = (epochs - tail - epoch) / (epochs - tail)
        else:
            factor = (epochs - epoch) / ((epochs - tail) * tail)
    elif schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    else:
        raise ValueError(f"unknown lr schedule '{schedule}'; valid: cosine, linear")
    if epoch < warmup:
        factor *= (epoch + 1) / warmup
    return factor


def lr_scheduler(optimizer: torch.optim.Optimizer, epochs: int, schedule: str = "cosine",
                 warmup: int = 0) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine to 0 without warm-up is torch's ``CosineAnnealingLR`` (as before); anything else a
    ``LambdaLR`` of :func:`lr_factor`, stepped once per epoch."""
    if schedule == "cosine" and warmup == 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=0.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(e, epochs, schedule, warmup))


@dataclass
class Training:
    """What the steps of one training share (made by :func:`setup_training`).

    ``net`` is the network whose state is checkpointed; ``model`` is what is called and stepped: ``net``,
    or its ``DistributedDataParallel`` wrapper when ``world`` > 1. ``start``, ``train_loss`` and
    ``train_acc`` are the next epoch and the last epoch's figures (NaN before any epoch).
    """

    net: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: nn.Module
    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    aux_weight: float = 0.0
    grad_clip: float = 0.0
    world: int = 1
    start: int = 0
    train_loss: float = math.nan
    train_acc: float = math.nan

    def state(self, next_epoch: int) -> dict[str, Any]:
        """The state given to the checkpoint callback (see :data:`CheckpointCallback`)."""
        return {"next_epoch": next_epoch, "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "train_loss": self.train_loss, "train_acc": self.train_acc}


def setup_training(
    model: nn.Module,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    grad_clip: float,
    aux_weight: float,
    device: torch.device,
    label_smoothing: float = 0.0,
    lr_schedule: str = "cosine",
    warmup_epochs: int = 0,
    precision: str = "fp32",
    channels_last: bool = False,
    resume: dict[str, Any] | None = None,
) -> Training:
    """Move ``model`` to ``device``, wrap it for DDP, make its SGD, lr schedule and loss; load ``resume``.

    DARTS ``cnn/train.py`` (quark0/darts): ``torch.optim.SGD`` with momentum and weight decay,
    ``CosineAnnealingLR`` over the epochs (:func:`lr_scheduler`), ``CrossEntropyLoss``. Under
    ``torch.distributed`` a process other than rank 0 reseeds torch (its own drop-path masks) unless it
    resumes, and the network is wrapped in ``DistributedDataParallel``. Arguments are those of
    :func:`train_and_test`; ``ValueError`` for a negative ``epochs`` or an unknown precision.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; valid: {', '.join(PRECISIONS)}")
    model.to(device, memory_format=memory_format(channels_last))
    net = model  # the module whose state is checkpointed; ``model`` may become its DDP wrapper
    world = distributed.world()
    if world > 1:
        if resume is None and distributed.rank() > 0:  # other drop-path masks than rank 0's
            torch.manual_seed(torch.initial_seed() + distributed.rank())
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = lr_scheduler(optimizer, epochs, lr_schedule, warmup_epochs)
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    training = Training(net, model, optimizer, scheduler, criterion, device, precision, channels_last,
                        aux_weight, grad_clip, world)
    if resume is not None:
        net.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        training.start = int(resume["next_epoch"])
        training.train_loss, training.train_acc = float(resume["train_loss"]), float(resume["train_acc"])
    return training


def train_step(training: Training, inputs: torch.Tensor,
               targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of DARTS ``cnn/train.py``'s ``train``: forward, loss, backward, clip, SGD step.

    The batch goes to the device (in the network's memory format); the forward pass and the loss run
    under :func:`autocast`; the loss adds ``aux_weight`` times the auxiliary head's loss when the network
    returns auxiliary logits; gradients are clipped to norm ``grad_clip`` (none when <= 0). Under DDP
    each process's loss is weighted by its share of the global batch, so that DDP's average of the
    gradients is the gradient of the global batch's mean loss. Returns ``(loss, logits, targets)``,
    on the device and not synchronised (reading them is the caller's choice).
    """
    t = training
    inputs = inputs.to(t.device, non_blocking=True).contiguous(memory_format=memory_format(t.channels_last))
    targets = targets.to(t.device, non_blocking=True)
    t.optimizer.zero_grad(set_to_none=True)
    with autocast(t.device, t.precision):
        logits, logits_aux = _split_output(t.model(inputs))
        loss = t.criterion(logits, targets)
        if logits_aux is not None and t.aux_weight > 0:
            loss = loss + t.aux_weight * t.criterion(logits_aux, targets)
    if t.world > 1:  # DDP averages gradients over processes: weight each share by its size
        n_global = distributed.all_sum([float(targets.shape[0])])[0]
        (loss * (targets.shape[0] * t.world / n_global)).backward()
    else:
        loss.backward()
    if t.grad_clip > 0:
        nn.utils.clip_grad_norm_(t.model.parameters(), t.grad_clip)
    t.optimizer.step()
    return loss, logits, targets


def train_epoch(training: Training, train_loader: Iterable, epoch: int, epochs: int, *, drop_path_prob: float,
                progress: bool = False, on_epoch: EpochCallback | None = None) -> dict[str, float]:
    """Epoch ``epoch`` (from 0) of ``epochs``: :func:`train_step` over ``train_loader``, then the lr step.

    As DARTS ``cnn/train.py``: the network's ``drop_path_prob`` (if it has one) is ``drop_path_prob *
    epoch / epochs``, the loss and accuracy are averaged over the epoch's samples (summed over the
    processes under DDP) and the scheduler steps once at the end. Sets ``training.train_loss`` and
    ``train_acc``, calls ``on_epoch(epoch, info)`` and returns ``info`` (see :data:`EpochCallback`).
    """
    t = training
    current_drop = drop_path_prob * epoch / epochs
    if hasattr(t.net, "drop_path_prob"):
        t.net.drop_path_prob = current_drop
    sampler = getattr(train_loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler: the epoch's order
        sampler.set_epoch(epoch)
    current_lr = t.optimizer.param_groups[0]["lr"]
    t.model.train()
    loss_sum = 0.0
    correct = 0
    seen = 0
    batches = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
    for inputs, targets in batches:
        loss, logits, targets = train_step(t, inputs, targets)
        n = int(targets.shape[0])
        loss_sum += float(loss.item()) * n
        correct += int((logits.detach().argmax(dim=1) == targets).sum().item())
        seen += n
        if progress:
            batches.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100.0 * correct / seen:.1f}")
    t.scheduler.step()
    if t.world > 1:
        loss_sum, correct, seen = distributed.all_sum([loss_sum, float(correct), float(seen)])
    t.train_loss = loss_sum / seen if seen else math.nan
    t.train_acc = 100.0 * correct / seen if seen else math.nan
    info = {"epoch": epoch, "train_loss": t.train_loss, "train_acc": t.train_acc, "lr": current_lr,
            "drop_path_prob": current_drop}
    if on_epoch is not None:
        on_epoch(epoch, info)
    return info


def train_and_test(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    grad_clip: float,
    aux_weight: float,
    drop_path_prob: float,
    device: torch.device,
    label_smoothing: float = 0.0,
    lr_schedule: str = "cosine",
    warmup_epochs: int = 0,
    precision: str = "fp32",
    channels_last: bool = False,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
    checkpoint: CheckpointCallback | None = None,
    resume: dict[str, Any] | None = None,
) -> dict[str, float | int]:
    """Train ``model`` from scratch, then measure its test error.

    :func:`setup_training`, then :func:`train_epoch` for each epoch (each a :func:`train_step` per
    batch) and the checkpoint, then :func:`evaluate_accuracy` on ``test_loader``.

    Parameters
    ----------
    model : nn.Module
        Evaluation network; if it has a ``drop_path_prob`` attribute it is set each epoch to
        ``drop_path_prob * epoch / epochs`` (epoch counted from 0).
    train_loader, test_loader : iterable of (inputs, targets)
        Training and test batches.
    epochs : int
        Number of training epochs (0 only tests the untrained network).
    lr, momentum, weight_decay : float
        SGD hyper-parameters; the learning rate follows a cosine schedule to 0 over ``epochs``,
        stepped once per epoch.
    grad_clip : float
        Maximum gradient norm (no clipping when <= 0).
    aux_weight : float
        Weight of the auxiliary loss, used when the model returns auxiliary logits.
    drop_path_prob : float
        Final drop-path probability.
    device : torch.device
        Where to train.
    label_smoothing : float, optional
        Label smoothing of the cross-entropy (0.1 in the DARTS ImageNet protocol).
    precision : str, optional
        ``fp32``, ``tf32`` or ``bf16`` (autocast); the TF32 switches are set by the caller with
        :func:`numerics`.
    channels_last : bool, optional
        Keep the network and its inputs in ``channels_last`` memory format.
    progress : bool, optional
        Show tqdm progress bars.
    on_epoch : callable, optional
        Called after each epoch as ``on_epoch(epoch, info)`` (see :data:`EpochCallback`).
    checkpoint : callable, optional
        Called after each epoch (after ``on_epoch``) with the training state to save (see
        :data:`CheckpointCallback`).
    resume : dict, optional
        A state given to ``checkpoint``: training continues at its ``next_epoch``. The result equals
        that of an uninterrupted training when the caller also restores the RNG states and the
        train loader's generator as they were at that checkpoint.

    Returns
    -------
    dict
        ``test_error`` and ``test_acc`` (percent), ``train_loss`` (mean over the last epoch's
        samples; NaN when ``epochs == 0``), ``train_acc`` (percent, last epoch) and ``epochs``.
    """
    t = setup_training(model, epochs=epochs, lr=lr, momentum=momentum, weight_decay=weight_decay,
                       grad_clip=grad_clip, aux_weight=aux_weight, device=device, label_smoothing=label_smoothing,
                       lr_schedule=lr_schedule, warmup_epochs=warmup_epochs, precision=precision,
                       channels_last=channels_last, resume=resume)
    for epoch in tqdm(range(t.start, epochs), desc="train", disable=not progress, leave=False, initial=t.start,
                      total=epochs):
        train_epoch(t, train_loader, epoch, epochs, drop_path_prob=drop_path_prob, progress=progress,
                    on_epoch=on_epoch)
        if checkpoint is not None:
            checkpoint(t.state(epoch + 1))
    test_acc = evaluate_accuracy(t.net, test_loader, device, precision, channels_last)
    return {"test_error": 100.0 - test_acc, "test_acc": test_acc, "train_loss": t.train_loss,
            "train_acc": t.train_acc, "epochs": epochs}


__all__ = ["CheckpointCallback", "EpochCallback", "Training", "autocast", "evaluate_accuracy", "memory_format",
           "numerics", "setup_training", "train_and_test", "train_epoch", "train_step"]
