"""Checkpoint and resume for the one training loop (:func:`~astrobayes.estimators.fit_module`).

What is saved (see :mod:`astrobayes.core.checkpoint` for the file format):
the network, the optimiser, the learning-rate scheduler, every random stream
(torch's global CPU generator, the split/batch-order generator, CUDA's on a
GPU, numpy's and Python's), the best weights so far, the early-stopping
counters and the :class:`~astrobayes.estimators.History` — at the end of an
epoch, which is the only point where the loop stops when interrupted. Beside
them, a fingerprint of the run (training options, network, data) that a
resumed run must match.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.checkpoint import (checkpoint_path, pack_state, read_checkpoint, rng_states, set_rng_states,
                               tensor_digest, unpack_state, write_checkpoint)
from ..core.serialization import ModelFileError
from ..core.validation import Masked

__all__ = ["TrainingInterrupted", "checkpointing"]

#: options that do not change what training computes (on one device type): a resumed run may change them
_NOT_COMPARED = {"checkpoint", "checkpoint_every", "resume", "progress", "device_data_fraction", "device"}


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training at the end of an epoch, after the checkpoint was written.

    Attributes
    ----------
    checkpoint : Path
        The checkpoint's JSON file.
    epoch, epochs : int
        Epochs completed, and the maximum.
    signal_name : str
        ``"SIGINT"`` or ``"SIGTERM"``.
    """

    def __init__(self, checkpoint: Path, epoch: int, epochs: int, signal_name: str):
        super().__init__(checkpoint, epoch, epochs, signal_name)
        self.checkpoint, self.epoch, self.epochs, self.signal_name = Path(checkpoint), epoch, epochs, signal_name

    def __str__(self) -> str:
        return (f"{self.signal_name} stopped training after epoch {self.epoch} of {self.epochs}; checkpoint kept at "
                f"{self.checkpoint}: fit again with the same data and options and resume=True to continue")


@dataclass
class _Folder:
    folder: Path
    resume: bool
    every: int
    count: int = 0


_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("astrobayes_checkpointing", default=None)


@contextlib.contextmanager
def checkpointing(folder, *, resume: bool = False, every: int = 1):
    """Checkpoint every training run started inside the block, in ``folder``.

    The k-th call of :func:`~astrobayes.estimators.fit_module` in the block
    (an ensemble's members, a calibration, ...) checkpoints to
    ``folder/fitKK`` unless its options name a checkpoint of their own. A
    block that runs the same seeded code again with ``resume=True`` continues
    each run from its checkpoint: finished runs are restored without training,
    the interrupted one continues, runs with no checkpoint yet start afresh.
    This is what ``astrobayes train --checkpoint DIR [--resume]`` uses.

    Parameters
    ----------
    folder : path
        Created when missing.
    resume : bool
        Continue from the checkpoints in ``folder``; False refuses a run whose
        checkpoint already exists (FileExistsError).
    every : int
        Write a checkpoint every this many epochs (and always at the last one).

    Notes
    -----
    Code that fits the same options several times (sequential rounds, a
    cross-validation) should run inside this block, where each fit gets its own
    checkpoint, rather than pass one ``checkpoint=PATH`` to every fit.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from astrobayes.estimators import Regressor
    >>> folder = Path(tempfile.mkdtemp())
    >>> x = np.random.default_rng(0).normal(size=(50, 1))
    >>> with checkpointing(folder):
    ...     _ = Regressor(hidden=(4,)).fit(x, 2 * x, epochs=2, progress=False)
    >>> sorted(p.name for p in folder.iterdir())
    ['fit01.e00002.safetensors', 'fit01.json']
    >>> with checkpointing(folder, resume=True):  # finished: restored, not trained again
    ...     history = Regressor(hidden=(4,)).fit(x, 2 * x, epochs=2, progress=False)
    >>> history.epochs
    2
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"the checkpoint folder {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    token = _ACTIVE.set(_Folder(folder, bool(resume), every))
    try:
        yield folder
    finally:
        _ACTIVE.reset(token)


@dataclass(frozen=True)
class Plan:
    """Where one training run checkpoints, how often, and whether it resumes."""

    path: Path
    resume: bool
    every: int
    missing_ok: bool  # resume=True with no checkpoint yet: start afresh (inside checkpointing())


def checkpoint_plan(config) -> Plan | None:
    """The checkpoint of a training run with ``config``: its own option, else the active :func:`checkpointing`."""
    if config.checkpoint is not None:
        return Plan(checkpoint_path(config.checkpoint), config.resume, config.checkpoint_every, False)
    active = _ACTIVE.get()
    if active is None:
        return None
    active.count += 1
    return Plan(checkpoint_path(active.folder / f"fit{active.count:02d}"), active.resume, active.every, True)


def part_checkpoint(path, part: str) -> Path | None:
    """The checkpoint stem of one part of a run (an ensemble's member): ``runs/ens`` → ``runs/ens.member0``."""
    if path is None:
        return None
    stem = checkpoint_path(path).with_suffix("")
    return stem.with_name(f"{stem.name}.{part}")


# ------------------------------------------------------------------ what a resumed run must match
def _describe(items) -> list | None:
    if items is None:
        return None

    def one(t: torch.Tensor) -> dict:
        return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."), "sha256": tensor_digest(t)}

    return [{"values": one(d.values), "mask": one(d.mask)} if isinstance(d, Masked) else one(d) for d in items]


def fingerprint(config, device: torch.device, module: torch.nn.Module, params, data, validation_data,
                description: str) -> dict:
    """Options, network and data of a run, as JSON data (compared on resume)."""
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_COMPARED}
    options["device"] = device.type
    network = {"class": type(module).__name__,
               "tensors": [[name, list(t.shape), str(t.dtype).removeprefix("torch.")]
                           for name, t in module.state_dict().items()],
               "trained": [list(p.shape) for p in params]}
    found = {"fit": description, "options": options, "network": network, "data": _describe(data),
             "validation": _describe(validation_data)}
    return json.loads(json.dumps(pack_state(found, {}, "fingerprint")))


def _difference(saved, now, where: str = "") -> str:
    """Where two fingerprints first differ, e.g. ``data[0].shape: [300, 2] in the checkpoint, [299, 2] now``."""
    def nested(value):
        return isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, (dict, list)) for v in value))

    if isinstance(saved, dict) and isinstance(now, dict):
        for key in list(saved) + [k for k in now if k not in saved]:
            if saved.get(key) != now.get(key):
                return _difference(saved.get(key), now.get(key), f"{where}.{key}" if where else key)
    if nested(saved) and nested(now) and isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        for i, (a, b) in enumerate(zip(saved, now)):
            if a != b:
                return _difference(a, b, f"{where}[{i}]")
    if where.endswith("sha256"):
        return f"{where.removesuffix('.sha256') or 'the data'}: the same shape but other values"
    return f"{where or 'value'}: {saved!r} in the checkpoint, {now!r} now"


_PARTS = {"fit": "a different training run", "options": "other training options", "network": "another network",
          "data": "other training data", "validation": "other validation data"}


def open_checkpoint(plan: Plan, found: dict) -> tuple[dict, dict] | None:
    """The checkpoint to resume from, checked against the run's fingerprint ``found``; None to start afresh.

    Raises
    ------
    FileExistsError
        A checkpoint exists and ``resume`` is False (it is never overwritten by a new run).
    FileNotFoundError
        ``resume`` is True and there is no checkpoint (outside :func:`checkpointing`).
    ValueError
        The checkpoint belongs to a run with other options, network or data
        (ModelFileError, a ValueError, when it is not a readable checkpoint).
    """
    if not plan.path.exists():
        if plan.resume and not plan.missing_ok:
            raise FileNotFoundError(f"resume=True but there is no checkpoint at {plan.path}; "
                                    "fit once without resume to start one")
        return None
    if not plan.resume:
        raise FileExistsError(f"the checkpoint {plan.path} exists: pass resume=True to continue that run, or "
                              "delete it (or name another checkpoint) to start again")
    header, tensors = read_checkpoint(plan.path)
    saved = header.get("fingerprint")
    if not isinstance(saved, dict):
        raise ModelFileError(f"{plan.path} has no fingerprint of its run")
    for part, label in _PARTS.items():
        if saved.get(part) != found[part]:
            difference = _difference(saved.get(part), found[part], part if part in ("data", "validation") else "")
            raise ValueError(f"the checkpoint {plan.path} was made with {label} ({difference}); "
                             "resume with the same ones, or delete the checkpoint to start again")
    return header, tensors


# ------------------------------------------------------------------ save and restore
def _prefixed(tensors: dict, prefix: str) -> dict:
    return {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}


def save_training(plan: Plan, found: dict, *, epoch: int, finished: bool, module, optimizer, scheduler, generator,
                  device: torch.device, loop: dict, history: dict, best_state: dict | None) -> None:
    """Write the state of the loop after ``epoch`` completed epochs."""
    tensors = {f"module.{name}": t for name, t in module.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{name}": t for name, t in best_state.items()})
    state = {"optimizer": pack_state(optimizer.state_dict(), tensors, "optimizer"),
             "scheduler": pack_state(scheduler.state_dict(), tensors, "scheduler") if scheduler is not None else None,
             "rng": rng_states(generator, device, tensors),
             "loop": pack_state(loop, tensors, "loop"),
             "history": pack_state(history, tensors, "history"),
             "has_best": best_state is not None}
    write_checkpoint(plan.path, {"epoch": epoch, "finished": finished, "fingerprint": found, "state": state}, tensors)


def _same_form(saved, fresh, where: str) -> None:
    """``saved`` (from a file) has the keys, types and list lengths of ``fresh``; numbers may differ."""
    if isinstance(fresh, dict):
        if not isinstance(saved, dict) or set(saved) != set(fresh):
            raise ValueError(f"{where} has entries {sorted(map(str, saved)) if isinstance(saved, dict) else saved!r}, "
                             f"expected {sorted(map(str, fresh))}")
        for key in fresh:
            _same_form(saved[key], fresh[key], f"{where}.{key}")
    elif isinstance(fresh, (list, tuple)):
        if type(saved) is not type(fresh) or len(saved) != len(fresh):
            raise ValueError(f"{where} is {saved!r}, expected a {type(fresh).__name__} of {len(fresh)}")
        for k, (a, b) in enumerate(zip(saved, fresh)):
            _same_form(a, b, f"{where}[{k}]")
    elif isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        if saved != fresh:
            raise ValueError(f"{where} is {saved!r}, expected {fresh!r}")
    elif isinstance(fresh, (int, float)):
        if isinstance(saved, bool) or not isinstance(saved, (int, float)):
            raise ValueError(f"{where} is {saved!r}, expected a number")


def _check_optimizer(saved: dict, optimizer) -> None:
    """The optimiser state of a file fits ``optimizer``: its options, and moments shaped like its parameters."""
    fresh = optimizer.state_dict()
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    _same_form(groups, fresh["param_groups"], "optimizer.param_groups")
    for group, new in zip(groups, fresh["param_groups"]):
        if not (isinstance(group["lr"], float) and 0 < group["lr"] < float("inf")):
            raise ValueError(f"optimizer learning rate {group['lr']!r}")
        if {k: v for k, v in group.items() if k != "lr"} != {k: v for k, v in new.items() if k != "lr"}:
            raise ValueError("optimizer options differ from the run's")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = saved.get("state")
    if not isinstance(state, dict) or not set(state) <= set(range(len(params))):
        raise ValueError("optimizer.state does not match the parameters")
    moments = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if fresh["param_groups"][0]["amsgrad"] else set())
    for index, entry in state.items():
        if not isinstance(entry, dict) or set(entry) != moments | {"step"} \
                or not all(isinstance(t, torch.Tensor) for t in entry.values()):
            raise ValueError(f"optimizer.state[{index}] is not Adam's {sorted(moments | {'step'})}")
        if entry["step"].numel() != 1 or not entry["step"].is_floating_point():
            raise ValueError(f"optimizer.state[{index}].step is not a number")
        for name in moments:
            tensor = entry[name]
            if tensor.shape != params[index].shape or tensor.dtype != params[index].dtype:
                raise ValueError(f"optimizer.state[{index}].{name} has shape {list(tensor.shape)}, the parameter "
                                 f"{list(params[index].shape)}")


def _check_history(history, epoch: int) -> None:
    numbers = (int, float)
    if not isinstance(history, dict):
        raise ValueError("history is not a table")
    for name in ("train_loss", "learning_rate", "val_loss"):
        values = history.get(name)
        if not isinstance(values, list) or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in values):
            raise ValueError(f"history.{name} is not a list of numbers")
        if len(values) != epoch and not (name == "val_loss" and not values):
            raise ValueError(f"history.{name} has {len(values)} entries for {epoch} epochs")
    best = history.get("best_epoch")
    if isinstance(best, bool) or not isinstance(best, int) or not -1 <= best < epoch:
        raise ValueError(f"history.best_epoch {best!r}")
    _same_form({k: history.get(k) for k in ("best_val_loss", "seconds", "n_train", "n_val")},
               {"best_val_loss": 0.0, "seconds": 0.0, "n_train": 0, "n_val": 0}, "history")
    if not isinstance(history.get("stopped_early"), bool):
        raise ValueError(f"history.stopped_early {history.get('stopped_early')!r}")


def restore_training(plan: Plan, header: dict, tensors: dict, *, module, optimizer, scheduler, generator,
                     device: torch.device, make_history, epochs: int) -> tuple:
    """Load a checkpoint into the loop's objects, checking that each piece fits them.

    Returns ``(epoch, finished, best_score, stale, history, best_state)``, the
    history made by ``make_history(dict)``; a ModelFileError naming the file
    for anything in it that does not fit (a damaged or hand-edited JSON file).
    """
    try:
        state = header["state"]
        epoch, finished = header["epoch"], header["finished"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs \
                or not isinstance(finished, bool):
            raise ValueError(f"epoch {epoch!r} of {epochs}, finished {finished!r}")
        shapes = {name: t.shape for name, t in module.state_dict().items()}
        best_state = _prefixed(tensors, "best.") if state["has_best"] is True else None
        if best_state is not None and {k: t.shape for k, t in best_state.items()} != shapes:
            raise ValueError("the best weights do not fit the network")
        history = unpack_state(state["history"], tensors)
        _check_history(history, epoch)
        loop = unpack_state(state["loop"], tensors)
        _same_form(loop, {"best_score": 0.0, "stale": 0}, "loop")
        best_score, stale = float(loop["best_score"]), int(loop["stale"])
        saved_optimizer = unpack_state(state["optimizer"], tensors)
        _check_optimizer(saved_optimizer, optimizer)
        saved_scheduler = unpack_state(state["scheduler"], tensors)
        if scheduler is not None:
            _same_form(saved_scheduler, scheduler.state_dict(), "scheduler")
        module.load_state_dict(_prefixed(tensors, "module."))
        optimizer.load_state_dict(saved_optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(saved_scheduler)
        set_rng_states(state["rng"], generator, device, tensors)
        return epoch, finished, best_score, stale, make_history(history), best_state
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError, OverflowError) as err:
        raise ModelFileError(f"{plan.path} could not be restored ({type(err).__name__}: {err})") from None
