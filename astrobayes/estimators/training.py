"""The one training loop every astrobayes estimator uses.

An estimator hands :func:`fit_module` its network, a loss function of one
mini-batch and the data; the loop owns everything else: device placement,
seeding, the validation split, Adam(W), the learning-rate schedule, gradient
clipping, early stopping with best-weights restore, optional bf16 autocast on
CUDA, a progress bar and the returned :class:`History`. With
``distributed=True`` the same loop runs data-parallel over a
``torch.distributed`` group (see :mod:`astrobayes.estimators.distributed`).
With ``checkpoint=PATH`` it saves its whole state every epoch and on SIGINT or
SIGTERM, and ``resume=True`` continues bit for bit (see
:mod:`astrobayes.estimators.checkpointing`).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import DeferredInterrupts
from ..core.device import resolve_device
from ..core.seeding import make_generator, seed_everything
from ..core.validation import Masked, index_inputs, inputs_to, n_rows
from .checkpointing import (TrainingInterrupted, checkpoint_plan, checkpointing, fingerprint, open_checkpoint,
                            restore_training, save_training)
from .distributed import distributed_context

__all__ = ["TrainingConfig", "History", "fit_module", "training_config", "show_progress", "TrainingInterrupted",
           "checkpointing"]


@dataclass
class TrainingConfig:
    """Options of the training loop (the same for every estimator).

    Attributes
    ----------
    epochs : int
        Maximum number of passes over the training set.
    batch_size : int
        Mini-batch size.
    learning_rate, weight_decay : float
        Adam(W) step size and decoupled weight decay.
    optimizer : {"adamw", "adam"}
    scheduler : {"plateau", "cosine", "none"}
        ``plateau`` halves the learning rate when the validation loss stalls
        for ``patience // 3`` epochs; ``cosine`` anneals to 1 % over ``epochs``.
    validation_fraction : float
        Fraction of rows held out for validation and early stopping (0 turns
        both off).
    patience : int or None
        Stop after this many epochs without a validation improvement larger
        than ``min_delta``; the best weights are restored. None: never stop early.
    clip_grad_norm : float or None
        Clip the global gradient norm.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    seed : int or None
        Seeds weight initialisation, the split and the batch order.
    progress : bool or None
        Show a tqdm bar; None shows it only when stderr is a terminal.
    mixed_precision : bool
        bf16 autocast on CUDA (ignored on the CPU).
    device_data_fraction : float
        Data are copied to the GPU once when they take less than this fraction
        of its free memory, otherwise batch by batch.
    distributed : bool
        Train data-parallel across the processes of a ``torch.distributed``
        group (torchrun, or :func:`~astrobayes.estimators.fit_distributed`):
        ``batch_size`` is then the global batch, split among the processes.
    checkpoint : path or None
        Save the state of training under this path stem (``PATH.json`` +
        ``PATH.eNNNNN.safetensors``, see :mod:`astrobayes.core.checkpoint`)
        every ``checkpoint_every`` epochs, at the last epoch, and when SIGINT or
        SIGTERM arrives: training then stops at the end of the current epoch,
        saves, and raises :class:`~astrobayes.estimators.TrainingInterrupted`
        (a KeyboardInterrupt); a second signal stops at once, leaving the last
        good checkpoint. An existing checkpoint is never overwritten by a new
        run (FileExistsError): resume it or delete it. Not with ``distributed``.
    checkpoint_every : int
        Epochs between checkpoints.
    resume : bool
        Continue the run saved at ``checkpoint`` (FileNotFoundError when there
        is none). The run must have the same data, network and options
        (``progress``, ``device_data_fraction`` and ``device`` on the same kind
        of device may differ): otherwise a ValueError says what differs. A
        finished run is restored without training. **Guarantee:** on the CPU
        with a seed, a run interrupted and resumed (any number of times) ends
        with weights and history bit-identical to an uninterrupted run.

    Notes
    -----
    Too little data: a fit needs at least 2 training rows (ValueError). With
    fewer than 10 rows and no ``validation`` data, no validation split is
    made, so early stopping and best-weights restore are off; a warning says so.
    """

    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "plateau"
    validation_fraction: float = 0.1
    patience: int | None = 20
    min_delta: float = 0.0
    clip_grad_norm: float | None = 5.0
    device: str = "auto"
    seed: int | None = 0
    progress: bool | None = None
    mixed_precision: bool = False
    device_data_fraction: float = 0.5
    distributed: bool = False
    checkpoint: str | None = None
    checkpoint_every: int = 1
    resume: bool = False

    def __post_init__(self):
        positive_ints = {"epochs": self.epochs, "batch_size": self.batch_size,
                         "checkpoint_every": self.checkpoint_every}
        for name, value in positive_ints.items():
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(f"scheduler must be 'plateau', 'cosine' or 'none', got {self.scheduler!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be a positive integer or None, got {self.patience!r}")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ValueError(f"clip_grad_norm must be positive or None, got {self.clip_grad_norm!r}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path or None, got {type(self.checkpoint).__name__}")
        if not isinstance(self.resume, bool):
            raise TypeError(f"resume must be True or False, got {self.resume!r}")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH, the checkpoint to continue from")
        if self.checkpoint is not None and self.distributed:
            raise ValueError("checkpoint cannot be combined with distributed=True yet; train on one process")


def training_config(config: TrainingConfig | None = None, **changes) -> TrainingConfig:
    """A :class:`TrainingConfig` with ``changes`` applied; unknown names are a TypeError."""
    config = TrainingConfig() if config is None else config
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(config, **changes)


@dataclass
class History:
    """What happened during training; ``plot()`` draws the loss curves."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.nan
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    n_train: int = 0
    n_val: int = 0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def samples_per_second(self) -> float:
        """Training throughput: rows processed per second of wall time."""
        return self.n_train * self.epochs / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, entry: dict | None) -> "History | None":
        """Inverse of :meth:`to_dict`, also for headers where NaN was stored as None."""
        if not entry:
            return None
        entry = dict(entry)
        if entry.get("best_val_loss") is None:
            entry["best_val_loss"] = math.nan
        return cls(**entry)

    def plot(self, ax=None):
        """Plot training and validation loss against epoch; return the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        epochs = np.arange(1, self.epochs + 1)
        ax.plot(epochs, self.train_loss, label="training")
        if self.val_loss:
            ax.plot(epochs, self.val_loss, label="validation")
        if self.best_epoch >= 0:
            ax.axvline(self.best_epoch + 1, color="0.5", ls=":", label=f"best (epoch {self.best_epoch + 1})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
        return ax


def _nbytes(items: Sequence) -> int:
    total = 0
    for item in items:
        tensors = item if isinstance(item, Masked) else (item,)
        total += sum(t.element_size() * t.nelement() for t in tensors)
    return total


def _split(data: Sequence, validation_data: Sequence | None, config: TrainingConfig, generator: torch.Generator,
           description: str) -> tuple[list, list | None, torch.Tensor | None]:
    """Training and validation rows: the given validation data, or a random ``validation_fraction`` of ``data``.

    The third item is the indices of the held-out rows of ``data`` (None
    when the validation data were given or there are none).

    Too little data is refused (fewer than 2 training rows, empty validation
    data) or explained (fewer than 10 rows: no split, with a warning).
    """
    n = n_rows(data[0])
    if n < 2:
        raise ValueError(f"{description}: the training data have {n} row{'s' * (n != 1)}; a fit needs at least 2 "
                         "(and at least 10 for a validation split and early stopping)")
    if validation_data is not None:
        if n_rows(validation_data[0]) == 0:
            raise ValueError(f"{description}: the validation data have no rows; give some, or none to hold out "
                             f"validation_fraction ({config.validation_fraction}) of the training rows")
        return list(data), list(validation_data), None
    if config.validation_fraction == 0:
        return list(data), None, None
    if n < 10:
        warnings.warn(f"{description}: only {n} rows, too few to hold out validation_fraction="
                      f"{config.validation_fraction}: training on all of them with no validation, so early stopping "
                      "and best-weights restore are off (pass validation data, or validation_fraction=0 to silence "
                      "this)", UserWarning, stacklevel=4)
        return list(data), None, None
    n_val = max(1, int(round(config.validation_fraction * n)))
    if n - n_val < 2:
        raise ValueError(f"{description}: validation_fraction={config.validation_fraction} of {n} rows leaves "
                         f"{n - n_val} for training; lower validation_fraction or give more rows")
    order = torch.randperm(n, generator=generator)
    val_index, train_index = order[:n_val], order[n_val:]
    return [index_inputs(d, train_index) for d in data], [index_inputs(d, val_index) for d in data], val_index


def show_progress(flag: bool | None) -> bool:
    if flag is None:
        return sys.stderr.isatty()
    return bool(flag)


def fit_module(
    module: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    data: Sequence,
    config: TrainingConfig,
    *,
    validation_data: Sequence | None = None,
    parameters=None,
    description: str = "training",
) -> History:
    """Train ``module`` by minimising ``loss_fn`` over mini-batches of ``data``.

    Parameters
    ----------
    module : nn.Module
        The network; moved to the chosen device and left there.
    loss_fn : callable
        ``loss_fn(*batch) -> scalar tensor``, the mean loss of one mini-batch,
        where ``batch`` holds the rows of each element of ``data``.
    data : sequence of tensors or :class:`~astrobayes.core.Masked`
        Checked training arrays, all with the same number of rows.
    config : TrainingConfig
    validation_data : sequence, optional
        Explicit validation rows; otherwise ``config.validation_fraction`` of
        ``data`` is held out at random.
    parameters : iterable of tensors, optional
        What to optimise (default: all of ``module``'s parameters).

    Returns
    -------
    History
    """
    # one process of a data-parallel group: same rows, same seed, 1/W of each batch
    context = distributed_context(config.device) if config.distributed else None
    device = context.device if context is not None else resolve_device(config.device)
    seed_everything(config.seed)
    if context is not None:
        context.check_batch_size(config.batch_size)
        seed = context.shared_seed(config.seed)  # the same split and batch order on every rank
        context.seed_rank(seed)
        generator = make_generator(seed)
    else:
        generator = make_generator(config.seed)
    train, val, validation_rows = _split(data, validation_data, config, generator, description)
    n_train = n_rows(train[0])

    module.to(device)
    if context is not None:
        context.broadcast_state(module)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        on_device = _nbytes(train) + (_nbytes(val) if val else 0) < config.device_data_fraction * free
    else:
        on_device = True
    if on_device:  # copy once; batches are then slices on the device
        train = [inputs_to(d, device) for d in train]
        val = [inputs_to(d, device) for d in val] if val else None
    elif device.type == "cuda":
        train = [Masked(d.values.pin_memory(), d.mask.pin_memory()) if isinstance(d, Masked) else d.pin_memory()
                 for d in train]

    params = [p for p in (module.parameters() if parameters is None else parameters) if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, (config.patience or 30) // 3))
    elif config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs, eta_min=0.01 * config.learning_rate)
    else:
        scheduler = None
    autocast = device.type == "cuda" and config.mixed_precision

    def batches(items, shuffle: bool):
        count = n_rows(items[0])
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        for start in range(0, count, config.batch_size):
            index = order[start:start + config.batch_size]
            if context is not None:
                index = context.share(index)
            if on_device:
                index = index.to(device)
            batch = [index_inputs(d, index) for d in items]
            if not on_device:
                batch = [inputs_to(b, device, non_blocking=True) for b in batch]
            yield len(index), batch

    def run_loss(batch):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            return loss_fn(*batch)

    history = History(device=str(device), n_train=n_train, n_val=n_rows(val[0]) if val else 0)
    best_state, best_score, stale = None, math.inf, 0
    first_epoch, finished, seconds_before = 0, False, 0.0
    plan = checkpoint_plan(config)
    if plan is not None:  # (TrainingConfig already refuses a checkpoint with distributed=True)
        found = fingerprint(config, device, module, params, data, validation_data, description)
        saved = open_checkpoint(plan, found)
        objects = dict(module=module, optimizer=optimizer, scheduler=scheduler, generator=generator, device=device)
        if saved is not None:
            first_epoch, finished, best_score, stale, history, best_state = restore_training(
                plan, *saved, make_history=lambda entry: History(**{**entry, "device": str(device)}),
                epochs=config.epochs, **objects)
            seconds_before = history.seconds
    from tqdm.auto import tqdm

    quiet = not show_progress(config.progress) or (context is not None and context.rank != 0)
    bar = tqdm(range(first_epoch, first_epoch if finished else config.epochs), desc=description, disable=quiet,
               leave=False, unit="epoch", initial=first_epoch, total=config.epochs)
    interrupts = DeferredInterrupts() if plan is not None else contextlib.nullcontext()
    start_time = time.perf_counter()
    with interrupts, contextlib.closing(bar):
        for epoch in bar:
            module.train()
            total, count = 0.0, 0
            for size, batch in batches(train, shuffle=True):
                optimizer.zero_grad(set_to_none=True)
                loss = run_loss(batch) if size else None
                if context is not None:  # backward, then the global batch's mean gradient and loss
                    loss, size = context.average_gradients(loss, size, params)
                if not torch.isfinite(loss):
                    raise RuntimeError(
                        f"{description}: the loss became {loss.item()} at epoch {epoch + 1}; "
                        f"try a smaller learning_rate (now {optimizer.param_groups[0]['lr']:.3g}) or check the data")
                if context is None:
                    loss.backward()
                if config.clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
                optimizer.step()
                total += loss.detach().float().item() * size
                count += size
            history.train_loss.append(total / count)
            if context is not None:  # e.g. batch-norm statistics: keep rank 0's, as DDP does
                context.broadcast_state(module, parameters=False)
            history.learning_rate.append(optimizer.param_groups[0]["lr"])

            if val:
                module.eval()
                total, count = 0.0, 0
                with torch.no_grad():
                    for size, batch in batches(val, shuffle=False):
                        total += run_loss(batch).float().item() * size if size else 0.0
                        count += size
                if context is not None:
                    total, count = context.sum(total, count)
                score = total / count
                history.val_loss.append(score)
            else:
                score = history.train_loss[-1]
            if scheduler is not None:
                scheduler.step(score) if config.scheduler == "plateau" else scheduler.step()

            if score < best_score - config.min_delta:
                best_score, stale, history.best_epoch = score, 0, epoch
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
            bar.set_postfix(train=f"{history.train_loss[-1]:.4g}",
                            **({"val": f"{history.val_loss[-1]:.4g}"} if val else {}))
            stop = bool(val) and config.patience is not None and stale >= config.patience
            history.stopped_early = stop
            if plan is not None:
                last = stop or epoch + 1 == config.epochs
                if last or interrupts.received or (epoch + 1) % plan.every == 0:
                    history.seconds = seconds_before + time.perf_counter() - start_time
                    save_training(plan, found, epoch=epoch + 1, finished=last, loop=dict(best_score=best_score,
                                  stale=stale), history=history.to_dict(), best_state=best_state, **objects)
                if interrupts.received:
                    raise TrainingInterrupted(plan.path, epoch + 1, config.epochs, interrupts.received)
            if stop:
                break
    history.seconds = seconds_before + time.perf_counter() - start_time
    history.best_val_loss = best_score if val else math.nan
    if best_state is not None and val:
        module.load_state_dict(best_state)
    module.eval()
    # which rows of ``data`` were held out (None: explicit validation data or none): the estimators calibrate
    # their out-of-distribution p-values on rows the network was not trained on; not saved with the history
    history.validation_rows = validation_rows
    return history
