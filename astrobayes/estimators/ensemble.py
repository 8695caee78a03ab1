"""Equal-weight mixtures of networks: deep ensembles and Monte Carlo dropout.

A single network trained by maximum likelihood reports only the noise it saw
(aleatoric uncertainty); it says nothing about how much the *weights* are
uncertain, which is what grows away from the training data (epistemic
uncertainty). Both estimators here approximate the posterior predictive
p(y | x, D) = ∫ p(y | x, w) p(w | D) dw by an equal-weight mixture over a
handful of weight settings:

* :class:`DeepEnsemble` (Lakshminarayanan, Pritzel & Blundell 2017): K
  networks trained from independent initialisations and batch orders;
* :class:`MCDropout` (Gal & Ghahramani 2016): one network trained with
  dropout, and T forward passes with dropout still active at prediction time.

The mixture maths (``mixture_log_prob``, ``mixture_moments``, ``component_choice``)
is shared with the variational and HMC networks in :mod:`.bayesian` and :mod:`.hmc`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import checkpoint_path
from ..core.seeding import make_generator
from ..core.serialization import ModelFileError, estimator_class, module_from_config, register_estimator
from .base import Estimator, Prediction
from .checkpointing import part_checkpoint
from .training import History, TrainingConfig, training_config

__all__ = ["DeepEnsemble", "MCDropout", "Uncertainty", "mixture_log_prob", "mixture_moments", "component_choice"]


class Uncertainty(NamedTuple):
    """The predictive spread split into its two sources, each (m, d).

    For regression: ``aleatoric`` = sqrt(mean of the components' variances)
    (the noise), ``epistemic`` = standard deviation of the components' means
    (the disagreement); total² = aleatoric² + epistemic². For classification
    (shape (m, 1), nats): expected entropy and mutual information (BALD).
    """

    aleatoric: object
    epistemic: object


# ---------------------------------------------------------------- mixture maths
def mixture_log_prob(component_log_probs: torch.Tensor) -> torch.Tensor:
    """log of the equal-weight mixture density: logsumexp over axis 0 − log K.

    Examples
    --------
    >>> lp = torch.log(torch.tensor([[0.2], [0.4]]))
    >>> round(float(mixture_log_prob(lp).exp()), 6)
    0.3
    """
    return torch.logsumexp(component_log_probs, dim=0) - math.log(component_log_probs.shape[0])


def mixture_moments(means: torch.Tensor, stds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, total std and epistemic std of an equal-weight mixture.

    Law of total variance: Var y = E_k[σ_k²] + Var_k[μ_k] (axis 0 is the component).

    Examples
    --------
    >>> mean, std, epistemic = mixture_moments(torch.tensor([[-1.0], [1.0]]), torch.tensor([[1.0], [1.0]]))
    >>> float(mean[0]), round(float(std[0]) ** 2, 6), float(epistemic[0])
    (0.0, 2.0, 1.0)
    """
    mean = means.mean(0)
    epistemic_var = (means - mean).pow(2).mean(0)
    total_var = stds.pow(2).mean(0) + epistemic_var
    return mean, total_var.sqrt(), epistemic_var.sqrt()


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1, keepdim=True)


def component_choice(n_components: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform component index for each of ``n`` draws.

    Draw j of *every* object uses the same component (one setting of the
    weights), so the draws are joint predictive draws across objects; per
    object they are independent draws from the mixture.

    Examples
    --------
    >>> component_choice(5, 3, torch.Generator().manual_seed(0)).shape
    torch.Size([3])
    """
    return torch.randint(n_components, (n,), generator=generator)


# ---------------------------------------------------------------- helpers for files
def _template_spec(estimator: Estimator) -> dict:
    return {"class": type(estimator).__name__, "config": estimator.get_config()}


def _unfitted_copy(spec: dict) -> Estimator:
    """A new, unfitted estimator from ``{"class", "config"}``; the embedding is rebuilt from its config."""
    config = dict(spec["config"])
    if "embedding" in config:
        config["embedding"] = module_from_config(config["embedding"])
    return estimator_class(spec["class"])(**config)


def _restore_member(spec: dict, member_header: dict, tensors: dict) -> Estimator:
    header = {"config": spec["config"], **member_header}
    history = header.pop("history", None)
    member = estimator_class(spec["class"])._from_state(header, tensors)
    member.history = History.from_dict(history)
    return member


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------- shared base
class _MemberMixture(Estimator):
    """Equal-weight mixture whose components are fitted astrobayes estimators.

    Subclasses define :meth:`_components`, which yields one estimator per
    mixture component (possibly the same object in different states).
    """

    def __init__(self, estimator: Estimator):
        super().__init__(None)
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an astrobayes estimator (e.g. Regressor()), got {type(estimator).__name__}")
        if isinstance(estimator, _MemberMixture):
            raise TypeError("estimator must be a single estimator, not another ensemble")
        try:
            estimator_class(type(estimator).__name__)
        except ModelFileError:
            raise TypeError(f"{type(estimator).__name__} is not registered with register_estimator, "
                            "so it cannot be copied") from None
        self.estimator = estimator
        self._template = _template_spec(estimator)  # validates that the template can be saved
        # labels in, probabilities out when the members are classifiers
        self._label_targets = bool(estimator._label_targets)

    def _first(self) -> Estimator:
        raise NotImplementedError

    def _ood_owner(self) -> Estimator:
        """The first member (DeepEnsemble) or the one network (MCDropout): its features and reference serve all."""
        return self._first() if self.network is not None else self

    @property
    def n_components(self) -> int:
        raise NotImplementedError

    def _components(self, seed: int | None) -> Iterator[Estimator]:
        raise NotImplementedError

    def _each(self, fn: Callable[[Estimator], torch.Tensor], seed: int | None) -> torch.Tensor:
        return torch.stack([fn(member) for member in self._components(seed)], 0)

    def _checked(self, x, y=None):
        first = self._first()
        inputs = first._check_x(x)
        return inputs if y is None else (inputs, first._check_y(y))

    def log_prob(self, y, x):
        """log of the mixture density, (m,): log (1/K) Σ_k q_k(y | x)."""
        self._require_fitted()
        inputs, target = self._checked(x, y)
        log_probs = self._each(lambda member: member.log_prob(target, inputs), self._prediction_seed())
        return self._output(mixture_log_prob(log_probs), x)

    def _predictions(self, inputs):
        preds = [member.predict(inputs) for member in self._components(self._prediction_seed())]
        return torch.stack([p.mean for p in preds]), torch.stack([p.std for p in preds])

    def predict(self, x) -> Prediction:
        """Mixture mean and std (law of total variance); classifiers: mean probabilities and sqrt(p(1 − p))."""
        self._require_fitted()
        inputs = self._checked(x)
        means, stds = self._predictions(inputs)
        if self._label_targets:
            probs = means.mean(0)
            return Prediction(self._output(probs, x), self._output((probs * (1 - probs)).sqrt(), x))
        mean, std, _ = mixture_moments(means, stds)
        return Prediction(self._output(mean, x), self._output(std, x))

    def member_predictions(self, x) -> Prediction:
        """Every component's own prediction, stacked on a first axis of length ``n_components``.

        Means and stds have shape (components, m, d); for classifiers the
        means are each component's class probabilities (components, m, K).
        MC dropout uses its seeded masks, so repeated calls agree.
        """
        self._require_fitted()
        means, stds = self._predictions(self._checked(x))
        return Prediction(self._output(means, x), self._output(stds, x))

    def uncertainty(self, x) -> Uncertainty:
        """Aleatoric and epistemic parts of the predictive spread (see :class:`Uncertainty`)."""
        self._require_fitted()
        inputs = self._checked(x)
        means, stds = self._predictions(inputs)
        if self._label_targets:
            expected = _entropy(means).mean(0)
            return Uncertainty(self._output(expected, x), self._output(_entropy(means.mean(0)) - expected, x))
        _, _, epistemic = mixture_moments(means, stds)
        return Uncertainty(self._output(stds.pow(2).mean(0).sqrt(), x), self._output(epistemic, x))

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` draws per row of x, each from a uniformly chosen component: (m, n, d), or (m, n) labels."""
        self._require_fitted()
        n = self._check_n(n)
        inputs = self._checked(x)
        generator = make_generator(seed)
        choice = component_choice(self.n_components, n, generator)
        # one seed per component for its own noise, one for the components' shared randomness (dropout masks)
        *member_seeds, stream_seed = torch.randint(2**62, (self.n_components + 1,), generator=generator).tolist()
        out = None
        for k, member in enumerate(self._components(stream_seed)):
            columns = (choice == k).nonzero().flatten()
            if len(columns) == 0:
                continue
            draws = member.sample(len(columns), inputs, seed=member_seeds[k])
            if out is None:
                out = draws.new_empty((draws.shape[0], n) + tuple(draws.shape[2:]))
            out[:, columns] = draws
        return self._output(out, x)

    def _prediction_seed(self) -> int | None:
        """Seed of the components' randomness in predict/log_prob (None: deterministic members)."""
        return None

    # ------------------------------------------------------------ files
    def _rebuild(self, member_header: dict, tensors: dict) -> Estimator:
        return _restore_member(self._template, member_header, tensors)

    @staticmethod
    def _member_header(member: Estimator) -> dict:
        return member._extra_header()


@register_estimator
class DeepEnsemble(_MemberMixture):
    """K independently trained copies of an estimator, combined as an equal-weight mixture.

    Parameters
    ----------
    estimator : Estimator
        Unfitted template, e.g. ``Regressor(heteroscedastic=True)``,
        ``MixtureDensityNetwork()`` or a ``Classifier``; it is copied from its
        configuration (a user embedding is rebuilt with fresh weights).
    n_members : int
        Number of networks K. Member i trains with seed ``config.seed + i``:
        different initial weights and batch orders.

    Attributes
    ----------
    members : list of Estimator
        The fitted networks.
    history : list of History
        One training history per member.

    Notes
    -----
    The out-of-distribution checks (``ood``, ``ood_p_value``,
    ``recording_context``) use the first member's context vectors and
    reference: the members share inputs and training rows, and one
    reference keeps the cost and the file small.

    Examples
    --------
    >>> import numpy as np
    >>> from astrobayes.estimators.regression import Regressor
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (500, 1)); y = x + 0.1 * rng.normal(size=x.shape)
    >>> ensemble = DeepEnsemble(Regressor(hidden=(16,)), n_members=3)
    >>> _ = ensemble.fit(x, y, epochs=20, progress=False)
    >>> len(ensemble.members), ensemble.predict(np.array([[0.0], [4.0]])).std.shape
    (3, (2, 1))
    """

    def __init__(self, estimator: Estimator, n_members: int = 5):
        super().__init__(estimator)
        self.n_members = _check_count(n_members, "n_members")
        self.members: list[Estimator] = []

    def get_config(self) -> dict:
        return {"estimator": self._template, "n_members": self.n_members}

    def __repr__(self) -> str:
        return f"DeepEnsemble({self.estimator!r}, n_members={self.n_members})"

    @property
    def n_components(self) -> int:
        return self.n_members

    def _first(self) -> Estimator:
        return self.members[0]

    def _components(self, seed):
        return iter(self.members)

    def fit(self, x, y, config: TrainingConfig | None = None, validation=None, *, ood: bool | str = True,
            **changes) -> list[History]:
        """Train every member through its own ``fit`` (seeds ``seed``, ``seed + 1``, ...).

        ``validation=(x_val, y_val)`` gives explicit early-stopping rows (see :meth:`Estimator.fit`);
        ``ood`` fits the out-of-distribution reference, on the first member only.
        With ``checkpoint=PATH`` member k checkpoints to ``PATH.memberk``; ``resume=True``
        continues each (the members after the interrupted one start afresh).

        Returns
        -------
        list of History
            One per member; also ``self.history``.
        """
        config = training_config(config, **changes)
        members = []
        for i in range(self.n_members):
            member = _unfitted_copy(self._template)
            seed = None if config.seed is None else config.seed + i
            checkpoint = part_checkpoint(config.checkpoint, f"member{i}")
            # resuming, the members after the interrupted one have no checkpoint yet: they start afresh
            resume = config.resume and (i == 0 or checkpoint_path(checkpoint).exists())
            member.fit(x, y, training_config(config, seed=seed, checkpoint=checkpoint, resume=resume),
                       validation=validation, ood=ood if i == 0 else False)
            members.append(member)
        self._set_members(members)
        return self.history

    def _set_members(self, members: list[Estimator]) -> None:
        self.members = members
        self.dims = members[0].dims
        # one module holding all members: .to(device), .device and the file work on it
        self.network = nn.ModuleList([m.network for m in members])
        self.history = [m.history for m in members]

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"member{i}.{name}": t for i, m in enumerate(self.members) for name, t in m._state_tensors().items()}

    def _extra_header(self) -> dict:
        return {"dims": self.dims, "members": [self._member_header(m) for m in self.members]}

    @classmethod
    def _from_state(cls, header: dict, tensors: dict):
        config = header["config"]
        model = cls(_unfitted_copy(config["estimator"]), config["n_members"])
        if len(header["members"]) != model.n_members:
            raise ValueError(f"{len(header['members'])} members stored, config says {model.n_members}")
        members = []
        for i, member_header in enumerate(header["members"]):
            prefix = f"member{i}."
            own = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
            members.append(model._rebuild(member_header, own))
        model._set_members(members)
        return model


@register_estimator
class MCDropout(_MemberMixture):
    """Monte Carlo dropout: dropout stays on at prediction time, T passes form a mixture.

    Gal & Ghahramani (2016) show that a network trained with dropout is an
    approximate variational posterior over its weights; each stochastic
    forward pass is one draw of the weights.

    Parameters
    ----------
    estimator : Estimator
        Unfitted template with ``dropout > 0``, e.g. ``Regressor(dropout=0.1)``.
    n_passes : int
        Number T of stochastic forward passes (mixture components).
    seed : int or None
        Seeds the dropout masks of ``predict``, ``log_prob`` and
        ``uncertainty`` so that they are deterministic (emcee needs a fixed
        log-probability); None draws new masks on every call. The masks come
        from the random stream of the model's device, so the same seed gives
        other (equally valid) masks on a GPU than on the CPU.

    Notes
    -----
    The out-of-distribution checks use the network's context vectors with
    dropout off (the reference is fitted in eval mode). The astrobayes
    embeddings have no dropout, so every pass computes the same context and
    ``recording_context(limit=n_objects)`` keeps the first pass's.

    Examples
    --------
    >>> import numpy as np
    >>> from astrobayes.estimators.regression import Regressor
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (500, 1)); y = x + 0.1 * rng.normal(size=x.shape)
    >>> model = MCDropout(Regressor(hidden=(32, 32), dropout=0.1), n_passes=50)
    >>> _ = model.fit(x, y, epochs=20, progress=False)
    >>> model.predict(np.array([[0.0], [4.0]])).std.shape
    (2, 1)
    """

    def __init__(self, estimator: Estimator, n_passes: int = 100, seed: int | None = 0):
        super().__init__(estimator)
        if not (getattr(estimator, "dropout", 0) or 0) > 0:
            raise ValueError(f"MCDropout needs an estimator built with dropout > 0 (e.g. dropout=0.1), "
                             f"got dropout={getattr(estimator, 'dropout', None)!r}")
        self.n_passes = _check_count(n_passes, "n_passes")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = None if seed is None else int(seed)
        self.model: Estimator | None = None

    def get_config(self) -> dict:
        return {"estimator": self._template, "n_passes": self.n_passes, "seed": self.seed}

    def __repr__(self) -> str:
        return f"MCDropout({self.estimator!r}, n_passes={self.n_passes}, seed={self.seed})"

    @property
    def n_components(self) -> int:
        return self.n_passes

    def _first(self) -> Estimator:
        return self.model

    def _prediction_seed(self) -> int | None:
        return self.seed

    def fit(self, x, y, config: TrainingConfig | None = None, validation=None, *, ood: bool | str = True,
            **changes) -> History:
        """Train the single network (dropout active, as usual) through its own ``fit``; ``validation`` and
        ``ood`` as in :meth:`Estimator.fit`."""
        model = _unfitted_copy(self._template)
        model.fit(x, y, training_config(config, **changes), validation=validation, ood=ood)
        self._set_model(model)
        return self.history

    def _set_model(self, model: Estimator) -> None:
        if not any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.network.modules()):
            raise ValueError(f"{type(model).__name__} was built without dropout layers; set dropout > 0")
        self.model, self.network, self.dims, self.history = model, model.network, model.dims, model.history

    def _components(self, seed) -> Iterator[Estimator]:
        """Yield the network T times with dropout active, under a private seeded random stream."""
        device = self.device
        devices = [device] if device.type == "cuda" else []
        dropouts = [m for m in self.network.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        with contextlib.ExitStack() as stack:
            # fork_rng: the masks come from torch's global stream; forking leaves the user's stream untouched
            stack.enter_context(torch.random.fork_rng(devices=devices))
            if seed is not None:
                torch.manual_seed(seed)
            self.network.eval()
            for module in dropouts:
                module.train()
            try:
                for _ in range(self.n_passes):
                    yield self.model
            finally:
                self.network.eval()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return self.model._state_tensors()

    def _extra_header(self) -> dict:
        return {"dims": self.dims, "members": [self._member_header(self.model)]}

    @classmethod
    def _from_state(cls, header: dict, tensors: dict):
        config = header["config"]
        model = cls(_unfitted_copy(config["estimator"]), config["n_passes"], config["seed"])
        model._set_model(model._rebuild(header["members"][0], tensors))
        return model
