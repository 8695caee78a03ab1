"""What NPE and NLE share: a simulation prior, a density estimator, the
simulations appended so far, and a JSON sidecar for the prior beside the
saved estimator."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from astrobayes.core.serialization import ModelFileError, model_paths, read_json
from astrobayes.core.validation import as_tensor
from astrobayes.estimators.flows import FLOW_TYPES, ConditionalFlow
from astrobayes.estimators.mdn import MixtureDensityNetwork
from astrobayes.inference.priors import JointPrior

__all__ = ["DENSITY_TYPES", "SimulationTrainer", "check_density_estimator", "read_sidecar", "sidecar_errors",
           "write_sidecar"]

DENSITY_TYPES = (*FLOW_TYPES, "mdn")


def check_density_estimator(estimator, prior: JointPrior) -> None:
    """Check the pair a Posterior / Likelihood wraps: a fitted density estimator and a JointPrior."""
    if not isinstance(prior, JointPrior):
        raise TypeError(f"prior must be a JointPrior, got {type(prior).__name__}")
    if not isinstance(estimator, (ConditionalFlow, MixtureDensityNetwork)):
        raise TypeError(f"estimator must be a ConditionalFlow or MixtureDensityNetwork, got {type(estimator).__name__}")
    estimator._require_fitted()


def _sidecar_path(path, kind: str) -> Path:
    stem = model_paths(path)[1].with_suffix("")
    return stem.with_name(f"{stem.name}.{kind}.json")


def write_sidecar(path, kind: str, content: dict) -> None:
    """Write ``path.<kind>.json`` beside the estimator files saved at ``path``."""
    _sidecar_path(path, kind).write_text(json.dumps(content, indent=2, allow_nan=True) + "\n")


def read_sidecar(path, kind: str) -> dict:
    """Read ``path.<kind>.json``; FileNotFoundError names the missing file."""
    sidecar = _sidecar_path(path, kind)
    if not sidecar.exists():
        raise FileNotFoundError(f"{sidecar} (the prior description) is missing")
    content = read_json(sidecar, f"the {kind} description of a saved model")  # bounded: size and nesting
    if not isinstance(content, dict):
        raise ModelFileError(f"{sidecar} is damaged: it must hold a JSON object, got {type(content).__name__}")
    return content


@contextlib.contextmanager
def sidecar_errors(path, kind: str):
    """Turn any failure to rebuild something from ``path.<kind>.json`` into a ModelFileError naming that file."""
    try:
        yield
    except ModelFileError:
        raise
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError) as err:
        raise ModelFileError(f"{_sidecar_path(path, kind)} is damaged: {type(err).__name__}: "
                             f"{str(err)[:300]}") from None


class SimulationTrainer:
    """Base of :class:`~astrobayes.inference.NPE` and :class:`~astrobayes.inference.NLE`.

    Holds the prior, builds the density estimator (a :class:`ConditionalFlow`
    of type ``density`` or a :class:`MixtureDensityNetwork`) and keeps the
    θ of the appended simulations; subclasses add their x and ``train``.
    """

    def __init__(self, prior: JointPrior, density: str = "nsf", **estimator_options):
        if not isinstance(prior, JointPrior):
            raise TypeError(f"prior must be a JointPrior (use JointPrior([...]) or BoxUniform), got "
                            f"{type(prior).__name__}")
        if density not in DENSITY_TYPES:
            raise ValueError(f"density must be one of {list(DENSITY_TYPES)}, got {density!r}")
        self.prior, self.density = prior, density
        if density == "mdn":
            self.estimator = MixtureDensityNetwork(**estimator_options)
        else:
            self.estimator = ConditionalFlow(density, **estimator_options)
        self._theta: list[torch.Tensor] = []
        self._x: list = []

    def _check_theta(self, theta) -> torch.Tensor:
        """θ as float64 (n, d): ``prior.ndim`` columns, every row inside the support."""
        tensor = as_tensor(theta, "theta", ndim=(1, 2), dtype=torch.float64)
        if tensor.ndim == 1:
            tensor = tensor[:, None]
        if tensor.shape[1] != self.prior.ndim:
            raise ValueError(f"theta must have {self.prior.ndim} columns ({self.prior.names}), got shape "
                             f"{tuple(tensor.shape)}")
        bad = np.flatnonzero(~np.asarray(self.prior.support_check(tensor.numpy())))
        if bad.size:
            rows = ", ".join(map(str, bad[:10])) + (" ..." if bad.size > 10 else "")
            raise ValueError(f"theta rows {rows} lie outside the prior support ({bad.size} rows in all)")
        return tensor

    @property
    def n_simulations(self) -> int:
        return sum(t.shape[0] for t in self._theta)

    def _all_theta(self) -> torch.Tensor:
        if not self._theta:
            raise RuntimeError("no simulations: call append_simulations(theta, x) or simulate_and_train first")
        return torch.cat(self._theta).to(torch.float32)

    def append_simulations(self, theta, x):
        raise NotImplementedError

    def train(self, config=None, **training_options):
        raise NotImplementedError

    def simulate_and_train(self, simulator, n_simulations: int, seed: int | None = None, config=None,
                           **training_options):
        """Draw θ from the prior, run ``simulator(theta, rng)`` → x, append and train.

        ``simulator`` takes θ as a numpy array (n, d) and a
        ``numpy.random.Generator`` and returns x with n rows. ``seed`` seeds
        the prior draws, the simulator's generator and (unless
        ``config``/``training_options`` set one) the training.
        """
        if not callable(simulator):
            raise TypeError(f"simulator must be callable, got {type(simulator).__name__}")
        if isinstance(n_simulations, bool) or not isinstance(n_simulations, (int, np.integer)) or n_simulations < 1:
            raise ValueError(f"n_simulations must be a positive integer, got {n_simulations!r}")
        theta = self.prior.sample(int(n_simulations), seed=seed).numpy()
        x = simulator(theta, np.random.default_rng(seed))
        self.append_simulations(theta, x)
        if config is None and seed is not None:
            training_options.setdefault("seed", seed)
        return self.train(config, **training_options)
