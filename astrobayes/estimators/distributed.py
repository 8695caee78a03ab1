"""Data-parallel training on several processes through ``torch.distributed``.

There is still only one training loop, :func:`~astrobayes.estimators.fit_module`;
``TrainingConfig(distributed=True)`` (or ``fit(..., distributed=True)``) makes
it data-parallel across the processes of a ``torch.distributed`` group:

* every process holds all rows and draws the *same* shuffled order each epoch;
  of each global batch of ``batch_size`` rows, rank ``r`` of ``W`` takes its
  contiguous ``1/W`` share (shares differ by at most one row);
* after each backward pass the gradients are all-reduced weighted by the
  share sizes, so every rank applies the gradient of the global batch's mean
  loss — the step a single process takes with the same ``batch_size``;
* training and validation losses are summed over ranks weighted by rows, so
  the :class:`History`, the learning-rate schedule and early stopping are the
  same on every rank; only rank 0 draws a progress bar.

Batch normalisation is the exception: each process normalises with the
statistics of its own share of the batch (there is no synchronised batch
norm here), so a model with batch-norm layers trains close to, not exactly
like, one process; give every process a share of at least a few rows.

The backend is NCCL when the device is CUDA (each process then uses
``cuda:LOCAL_RANK``) and gloo on the CPU.

Gradients are averaged with one all-reduce per step rather than by wrapping
the network in ``DistributedDataParallel``: an estimator's loss function calls
its own network (``self.network(x)``), never a wrapper, and DDP only
synchronises gradients of forward passes made through the wrapper. The
arithmetic is DDP's (a share-weighted mean), without overlapping the
communication with the backward pass.

Launching with torchrun
-----------------------
Write a script that calls ``fit`` with ``distributed=True``::

    # train.py
    import numpy as np
    import astrobayes
    from astrobayes.estimators.distributed import distributed_context

    context = distributed_context()  # reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT
    rng = np.random.default_rng(0)   # every rank must see the same rows
    x = rng.normal(size=(100_000, 5)); y = x.sum(1, keepdims=True)
    model = astrobayes.Regressor(hidden=(256, 256))
    history = model.fit(x, y, batch_size=1024, epochs=50, seed=0, distributed=True)
    if context.rank == 0:
        model.save("regressor")

and run it with one process per GPU (or per group of CPU cores)::

    torchrun --nproc_per_node=4 train.py

``batch_size`` is the *global* batch: each of the 4 processes sees 256 rows
per step. Without torchrun, :func:`fit_distributed` starts local processes
itself.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..core.device import cuda_available, resolve_device
from ..core.serialization import load

__all__ = ["DistributedContext", "distributed_context", "fit_distributed"]

BACKENDS = ("gloo", "nccl")
_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a data-parallel group.

    Attributes
    ----------
    rank, world_size : int
        Index of this process and number of processes.
    device : torch.device
        Where this process trains (``cuda:LOCAL_RANK`` on GPUs).
    backend : str
        ``"nccl"`` or ``"gloo"``.
    """

    rank: int
    world_size: int
    device: torch.device
    backend: str

    def check_batch_size(self, batch_size: int) -> None:
        """A global batch must give every process at least one row."""
        _check_batch_size(batch_size, self.world_size)

    def share(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of the row indices of one global batch."""
        count = len(index)
        return index[count * self.rank // self.world_size:count * (self.rank + 1) // self.world_size]

    def shared_seed(self, seed: int | None) -> int:
        """``seed``, or (when None) a random seed drawn on rank 0 and sent to all ranks."""
        if seed is not None:
            return int(seed)
        value = torch.randint(0, 2**62, (1,), dtype=torch.int64) if self.rank == 0 else torch.zeros(1, dtype=torch.int64)
        value = value.to(self.device)
        dist.broadcast(value, src=0)
        return int(value.item())

    def seed_rank(self, seed: int) -> None:
        """Give ranks > 0 their own stream for in-loss randomness (dropout, sampling)."""
        if self.rank > 0:
            torch.manual_seed(int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0]))

    def broadcast_state(self, module: nn.Module, parameters: bool = True) -> None:
        """Copy rank 0's parameters (optional) and buffers to every rank."""
        tensors = list(module.parameters()) if parameters else []
        tensors += [b for b in module.buffers() if b.dtype != torch.bool]
        with torch.no_grad():
            for tensor in tensors:
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, loss: torch.Tensor | None, rows: int, params: Sequence[torch.Tensor]):
        """Back-propagate this rank's share and replace each gradient by the global batch's.

        Parameters
        ----------
        loss : tensor or None
            Mean loss of this rank's ``rows`` rows (None when the share is empty).
        rows : int
        params : sequence of tensors
            The optimised parameters.

        Returns
        -------
        (tensor, int)
            Mean loss of the global batch and its number of rows.
        """
        if loss is not None:
            loss.backward()
        dtype = torch.float64 if any(p.dtype == torch.float64 for p in params) else torch.float32
        pieces = [p.grad.detach().reshape(-1).to(dtype) * rows if p.grad is not None
                  else torch.zeros(p.numel(), dtype=dtype, device=p.device) for p in params]
        present = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=self.device)
        loss_sum = (loss.detach().to(dtype).reshape(1) * rows if loss is not None
                    else torch.zeros(1, dtype=dtype, device=self.device))
        buffer = torch.cat(pieces + [present, loss_sum, torch.full((1,), float(rows), dtype=dtype, device=self.device)])
        dist.all_reduce(buffer)  # one message per step
        total_rows = buffer[-1]
        offset = 0
        for p, is_present in zip(params, buffer[-2 - len(params):-2].tolist()):
            size = p.numel()
            # a parameter no rank used keeps grad None, so Adam skips it exactly as on one process
            p.grad = (buffer[offset:offset + size] / total_rows).view_as(p).to(p.dtype) if is_present else None
            offset += size
        return buffer[-2] / total_rows, round(total_rows.item())

    def sum(self, *values: float) -> list[float]:
        """Sum scalars over all ranks (float64)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()


def _check_batch_size(batch_size: int, world_size: int) -> None:
    if batch_size < world_size:
        raise ValueError(f"batch_size ({batch_size}) is the global batch and must be at least the number "
                         f"of processes (world_size={world_size})")


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def _check_backend(backend) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be 'gloo', 'nccl' or None (NCCL on CUDA, gloo on the CPU), got {backend!r}")


def _rank_device(device, local_rank: int) -> torch.device:
    if device is None or device in ("auto", "cuda"):
        if device == "cuda" or cuda_available():
            resolve_device("cuda")  # a clear error when no GPU is visible
            if local_rank >= torch.cuda.device_count():
                raise ValueError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) "
                                 "are visible: start at most one process per GPU")
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    return resolve_device(device)


def distributed_context(device="auto", backend: str | None = None) -> DistributedContext:
    """Join the ``torch.distributed`` group of this process, initialising it when needed.

    An already initialised group is used as it is. Otherwise the group is
    read from torchrun's environment variables (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and initialised.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        ``"auto"`` and ``"cuda"`` give ``cuda:LOCAL_RANK`` when GPUs are
        visible; ``"auto"`` falls back to the CPU.
    backend : {"nccl", "gloo"} or None
        None: NCCL for CUDA devices, gloo for the CPU.

    Returns
    -------
    DistributedContext

    Examples
    --------
    >>> address = f"tcp://127.0.0.1:{_free_port()}"
    >>> torch.distributed.init_process_group("gloo", init_method=address, rank=0, world_size=1)
    >>> context = distributed_context("cpu")
    >>> context.rank, context.world_size, context.backend
    (0, 1, 'gloo')
    >>> torch.distributed.destroy_process_group()
    """
    _check_backend(backend)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        active = dist.get_backend()
        if backend is not None and backend != active:
            raise ValueError(f"backend={backend!r}, but the process group already uses {active!r}")
        chosen = _rank_device(device, _env_int("LOCAL_RANK", rank))
        return DistributedContext(rank, world_size, chosen, active)
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(f"distributed training needs an initialised torch.distributed process group or torchrun's "
                           f"environment; {', '.join(missing)} not set. Launch with "
                           "`torchrun --nproc_per_node=N script.py`, or use fit_distributed(...)")
    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world_size}")
    chosen = _rank_device(device, _env_int("LOCAL_RANK", rank))
    backend = backend or ("nccl" if chosen.type == "cuda" else "gloo")
    if backend == "nccl" and chosen.type != "cuda":
        raise ValueError(f"backend='nccl' needs CUDA devices, but this process trains on {chosen}; use 'gloo'")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, chosen, backend)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_ranks_agree(context: DistributedContext, estimator) -> None:
    """Every rank must end with rank 0's loss curve and weights, bit for bit."""
    history = estimator.history
    values = [torch.tensor(history.train_loss + history.val_loss, dtype=torch.float64, device=context.device)]
    values += [t.detach().reshape(-1).to(torch.float64) for t in estimator.network.state_dict().values()
               if t.is_floating_point()]
    mine = torch.cat(values)
    reference = mine.clone()
    dist.broadcast(reference, src=0)
    differs = torch.tensor([float(not torch.equal(mine, reference))], device=context.device)
    dist.all_reduce(differs)
    if differs.item():
        raise RuntimeError(f"{int(differs.item())} rank(s) ended with a loss curve or weights other than rank 0's")


def _worker(rank, world_size, port, backend, threads, estimator, x, y, config, validation, path):
    """One spawned process: join the group, fit, and (rank 0) write the model."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    if threads is not None:
        torch.set_num_threads(threads)
    context = distributed_context(config.device, backend)
    try:
        estimator.fit(x, y, config=config, validation=validation)
        _check_ranks_agree(context, estimator)
        if rank == 0:
            estimator.save(path)
    finally:
        dist.destroy_process_group()


def fit_distributed(estimator, x, y, *, world_size: int = 2, backend: str | None = None,
                    threads: int | None = None, config=None, validation=None, **changes):
    """Fit ``estimator`` data-parallel on ``world_size`` local processes.

    For machines without torchrun: starts the processes with
    ``torch.multiprocessing.spawn``, each runs ``estimator.fit(x, y,
    distributed=True)`` on its share of every batch, and rank 0's trained
    model is written with ``save`` and read back with ``astrobayes.load``
    into ``estimator`` (its previous state is replaced; the network is on
    the CPU, move it with ``estimator.to(device)``). Every rank must end
    with rank 0's loss curve and weights, or a RuntimeError is raised.

    Parameters
    ----------
    estimator : Estimator
        An astrobayes estimator (fitted or not).
    x, y : array-like
        As for ``estimator.fit``; copied to every process.
    world_size : int
        Number of processes (at most one per GPU on CUDA).
    backend : {"gloo", "nccl"} or None
        None: NCCL on CUDA, gloo on the CPU.
    threads : int, optional
        torch CPU threads per process (default: the cores shared evenly).
    config : TrainingConfig, optional
    validation : (x_val, y_val), optional
    **changes
        Training options, as for ``fit``; ``batch_size`` is the global batch.

    Returns
    -------
    History
        Rank 0's history (the same on every rank); also ``estimator.history``.

    Examples
    --------
    >>> import numpy as np
    >>> from astrobayes.estimators import Regressor
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 2)); y = x[:, :1] - x[:, 1:]
    >>> model = Regressor(hidden=(8,))
    >>> history = fit_distributed(model, x, y, world_size=2, epochs=2, batch_size=64, progress=False)  # doctest: +SKIP
    >>> history.epochs  # doctest: +SKIP
    2
    """
    from .base import Estimator
    from .training import training_config

    if not isinstance(estimator, Estimator):
        raise TypeError(f"estimator must be an astrobayes Estimator, got {type(estimator).__name__}")
    if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    world_size = int(world_size)
    _check_backend(backend)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    config = dataclasses.replace(training_config(config, **changes), distributed=True)
    _check_batch_size(config.batch_size, world_size)
    if backend == "nccl" and (config.device == "cpu" or not cuda_available()):
        raise ValueError(f"backend='nccl' needs CUDA devices (device={config.device!r}, "
                         f"{torch.cuda.device_count()} GPU(s) visible); use backend='gloo'")
    on_cuda = backend == "nccl" or (config.device in ("auto", "cuda") and cuda_available())
    if on_cuda and world_size > torch.cuda.device_count():
        raise ValueError(f"world_size={world_size} CUDA processes, but only {torch.cuda.device_count()} GPU(s) are visible")
    if threads is None and not on_cuda:
        threads = max(1, (os.cpu_count() or 1) // world_size)

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model"
        mp.spawn(_worker, args=(world_size, _free_port(), backend, threads, estimator, x, y, config, validation,
                                str(path)),
                 nprocs=world_size, join=True, start_method="spawn")
        fitted = load(path)
    estimator.__dict__.update(fitted.__dict__)
    return estimator.history
