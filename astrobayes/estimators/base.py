"""The protocol every astrobayes estimator follows.

``fit(x, y)``, ``log_prob(y, x)``, ``sample(n, x)``, ``predict(x)`` and
``save(path)`` / ``astrobayes.load(path)``. Standardisation of x (and of y for
regression and density estimation) lives inside the network, so a saved model
works on raw data. Arrays in give arrays out: numpy inputs return numpy,
torch inputs return (CPU) torch tensors.

After training, ``fit`` also fits an out-of-distribution reference
(:class:`~astrobayes.estimators.ood.OODReference`) on the context vectors of
the training inputs — the output of ``network.features`` — and saves it in
the same files: ``ood_p_value(x)`` then says, per object, whether x is like
anything the network was trained on, and ``recording_context()`` gives the
same p-values from the pass that computes a prediction.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn

from ..core.device import resolve_device
from ..core.limits import network_size_guard
from ..core.seeding import seed_everything
from ..core.paths import check_not_input
from ..core.serialization import model_paths, module_config, module_from_config, write_model
from ..core.standardize import Standardizer
from ..core.validation import Masked, as_inputs, as_tensor, check_same_length, index_inputs, inputs_to, n_rows
from .layers import reset_parameters
from .ood import (MAX_OOD_ROWS, METHODS, MIN_CALIBRATION, MIN_HELD_OUT, MIN_OOD_ROWS, MIN_REFERENCE, OOD_METHOD,
                  ContextRecorder, OODReference, _positive_int, reference_p_values)
from .training import History, TrainingConfig, fit_module, training_config

__all__ = ["Estimator", "Prediction", "FeatureNetwork"]


class Prediction(NamedTuple):
    """Point estimate and spread per object: ``mean`` and ``std``, each (m, d)."""

    mean: Any
    std: Any


class FeatureNetwork(nn.Module):
    """Raw x → standardised x → embedding → feature vector (the context)."""

    def __init__(self, x_features: int, embedding: nn.Module | None, standardize: bool = True):
        super().__init__()
        self.x_scaler = Standardizer(x_features, enabled=standardize)
        self.embedding = embedding if embedding is not None else nn.Identity()

    def forward(self, x):
        return self.embedding(self.x_scaler(x))


_NOT_FITTED = "the model has not been fitted yet: call fit(x, y) or astrobayes.load(path)"
#: why a model read from a file written before out-of-distribution references has none
_OLD_FILE = ("this model was saved by an astrobayes without out-of-distribution references: call "
             "fit_ood(x) with in-distribution inputs (e.g. its training simulations) and save it again")


#: why a model read from a file whose header records no reference and no (readable) reason has none
_NO_NOTE = ("the model file holds no out-of-distribution reference and does not say why: call fit_ood(x) with "
            "in-distribution inputs (e.g. its training simulations) and save it again")


def _ood_option(ood) -> str | None:
    """The OOD score method an ``ood=`` argument asks for (None: no reference)."""
    if isinstance(ood, bool):
        return OOD_METHOD if ood else None
    if isinstance(ood, str) and ood in METHODS:
        return ood
    raise TypeError(f"ood must be True, False or one of {', '.join(repr(m) for m in METHODS)}, got {ood!r}")


def _is_torch(value) -> bool:
    if isinstance(value, tuple) and len(value) == 2:
        return isinstance(value[0], torch.Tensor)
    return isinstance(value, torch.Tensor)


class Estimator:
    """Base class: input checks, fitting through the one training loop, batching, files.

    Subclasses implement ``get_config``, ``_build``, ``_loss`` and the
    density/prediction methods they support.
    """

    #: targets are class labels (long) rather than real vectors
    _label_targets = False
    #: default mini-batch size for prediction
    prediction_batch_size = 4096

    def __init__(self, embedding: nn.Module | None = None):
        if embedding is not None and not isinstance(embedding, nn.Module):
            raise TypeError(f"embedding must be a torch.nn.Module or None, got {type(embedding).__name__}")
        if embedding is not None and not hasattr(embedding, "output_dim"):
            raise TypeError(f"embedding {type(embedding).__name__} needs an output_dim attribute")
        self.embedding = embedding
        self.network: nn.Module | None = None
        self.history: History | None = None
        self.dims: dict = {}
        self._ood: OODReference | None = None
        self._ood_note = _NOT_FITTED

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        """JSON-able constructor arguments (the embedding as a nested spec)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "embedding")
        emb = f", embedding={type(self.embedding).__name__}" if self.embedding is not None else ""
        return f"{type(self).__name__}({items}{emb})"

    # ------------------------------------------------------------------ checks
    def _check_x(self, x, name: str = "x"):
        inputs = as_inputs(x, name)
        if not isinstance(inputs, Masked) and inputs.ndim == 1:
            if self.embedding is not None:
                raise ValueError(f"{name} must have one row per object, got shape {tuple(inputs.shape)}")
            inputs = inputs[:, None]
        if self.dims:
            expected = tuple(self.dims["x_shape"])
            got = (inputs.values.shape[-1],) if isinstance(inputs, Masked) else tuple(inputs.shape[1:])
            if isinstance(inputs, Masked) != bool(self.dims.get("x_masked")):
                kind = "(values, mask) pairs" if self.dims.get("x_masked") else "plain arrays"
                raise TypeError(f"{name}: this model was trained on {kind}")
            if got != expected:
                raise ValueError(f"{name} has per-object shape {got}, but the model was trained on {expected}")
        elif isinstance(inputs, Masked) or inputs.ndim > 2:
            if self.embedding is None:
                raise ValueError(f"{name} has shape {tuple(inputs.values.shape if isinstance(inputs, Masked) else inputs.shape)}: "
                                 "sequences, sets and images need an embedding network")
        return inputs

    def _check_y(self, y, name: str = "y") -> torch.Tensor:
        if self._label_targets:
            return as_tensor(y, name, ndim=1, dtype=torch.long)
        target = as_tensor(y, name, ndim=(1, 2))
        if target.ndim == 1:
            target = target[:, None]
        if self.dims and target.shape[1] != self.dims["y_dim"]:
            raise ValueError(f"{name} has {target.shape[1]} column(s), but the model was trained on {self.dims['y_dim']}")
        return target

    def _require_fitted(self):
        if self.network is None:
            raise RuntimeError(f"this {type(self).__name__} has not been fitted yet: call fit(x, y) or astrobayes.load(path)")

    @property
    def device(self) -> torch.device:
        self._require_fitted()
        return next(self.network.buffers()).device

    def to(self, device) -> "Estimator":
        """Move the fitted model to ``device`` ("auto", "cpu", "cuda")."""
        self._require_fitted()
        self.network.to(resolve_device(device))
        return self

    # ------------------------------------------------------------------ fitting
    def _infer_dims(self, x, y) -> dict:
        if isinstance(x, Masked):
            x_shape, channels = (int(x.values.shape[-1]),), int(x.values.shape[-1])
        else:
            x_shape = tuple(int(s) for s in x.shape[1:])
            channels = x_shape[0]
        dims = {"x_shape": list(x_shape), "x_features": channels, "x_masked": isinstance(x, Masked)}
        if not self._label_targets:
            dims["y_dim"] = int(y.shape[1])
        return dims

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _fresh_embedding(self) -> nn.Module | None:
        """A copy of the user's embedding with newly drawn initial weights."""
        if self.embedding is None:
            return None
        return reset_parameters(copy.deepcopy(self.embedding))

    def _context_dim(self) -> int:
        return int(self.embedding.output_dim) if self.embedding is not None else int(np.prod(self.dims["x_shape"]))

    def _loss(self, x, y) -> torch.Tensor:
        raise NotImplementedError

    def _after_fit(self, x, y, config: TrainingConfig) -> None:
        """Hook run after training (e.g. residual scale, temperature)."""

    def fit(self, x, y, config: TrainingConfig | None = None, validation=None, *, ood: bool | str = True,
            **changes) -> History:
        """Train on inputs ``x`` and targets ``y``, then fit the out-of-distribution reference on ``x``.

        Parameters
        ----------
        x : array-like (n, d), (n, C, ...) or a ``(values, mask)`` pair
            Inputs; sequences, sets and images need an ``embedding``.
        y : array-like (n,) or (n, k)
            Targets (class labels for a classifier).
        config : TrainingConfig, optional
            Training options; keyword arguments override single fields
            (``epochs=50, learning_rate=3e-4, device="cuda", progress=False``).
        validation : (x_val, y_val), optional
            Explicit validation rows for early stopping, instead of a random
            ``config.validation_fraction`` of ``x``. Use it when rows of ``x``
            are not independent (augmented copies of one object), so that no
            copy of a validation object is trained on.
        ood : bool or {"gaussian", "knn"}
            After training, fit :attr:`ood` on the context vectors of ``x``
            (:meth:`fit_ood`; nothing with fewer than ``MIN_OOD_ROWS`` = 300
            rows). Its p-values are calibrated on the validation rows (the
            network never trained on them) when there are at least
            ``MIN_HELD_OUT`` = 300, else on 20 % of ``x`` held out of the
            reference. True
            uses ``OOD_METHOD`` = "gaussian" (the Mahalanobis
            distance, O(d²) per object); "knn" the k-th nearest-neighbour
            distance (follows any shape of the training summaries; 8–175 µs
            per object in ``benchmarks/ood_power.py`` and ``ood_cost.py``). False skips it — e.g. when ``x`` holds augmented copies
            unlike the inputs the model will see: then call :meth:`fit_ood`
            on inputs made as those will be.

        Returns
        -------
        History
            Train/validation loss per epoch; also kept as ``self.history``.
        """
        config = training_config(config, **changes)
        ood_method = _ood_option(ood)
        previous = self.dims, self._ood, self._ood_note
        self.dims = {}  # a refit may use data of another shape: forget the previous fit's
        try:  # bad inputs are refused before anything of a previous fit (network, reference) is replaced
            x = self._check_x(x)
            y = self._check_y(y)
            check_same_length(x=x, y=y)
            self.dims = self._infer_dims(x, y)
            validation_data = None
            if validation is not None:
                if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                    raise TypeError("validation must be a pair (x_val, y_val)")
                x_val = self._check_x(validation[0], "validation x")
                y_val = self._check_y(validation[1], "validation y")
                check_same_length(x_val=x_val, y_val=y_val)
                validation_data = (x_val, y_val)
        except (TypeError, ValueError):
            self.dims, self._ood, self._ood_note = previous
            raise
        self._set_ood(None, _NOT_FITTED)
        seed_everything(config.seed)
        with network_size_guard(repr(self)):  # refused before torch allocates an absurd network
            self.network = self._build()
        with torch.no_grad():
            self.network.features.x_scaler.fit(x)
            if hasattr(self.network, "y_scaler"):
                self.network.y_scaler.fit(y)
        self.history = fit_module(self.network, self._loss, (x, y), config, validation_data=validation_data,
                                  description=f"fit {type(self).__name__}")
        self._after_fit(x, y, config)
        if ood_method is not None:
            held_out = self.history.validation_rows  # rows of x the network was not trained on
            if validation_data is not None and n_rows(validation_data[0]) >= MIN_HELD_OUT:
                self._fit_ood(x, MAX_OOD_ROWS, config.seed, ood_method, calibration=validation_data[0])
            elif held_out is not None and len(held_out) >= MIN_HELD_OUT:
                kept = torch.ones(n_rows(x), dtype=torch.bool)
                kept[held_out] = False
                self._fit_ood(index_inputs(x, torch.nonzero(kept)[:, 0]), MAX_OOD_ROWS, config.seed, ood_method,
                              calibration=index_inputs(x, held_out))
            else:
                self._fit_ood(x, MAX_OOD_ROWS, config.seed, ood_method)
        else:
            self._set_ood(None, "the model was fitted with ood=False: call fit_ood(x) with in-distribution inputs")
        return self.history

    # ------------------------------------------------------------------ out of distribution
    def _ood_owner(self) -> "Estimator":
        """The estimator whose feature network and reference the OOD checks use (a mixture: one member)."""
        return self

    def _set_ood(self, reference: OODReference | None, note: str = "") -> None:
        self._ood, self._ood_note = reference, ("" if reference is not None else note)

    @property
    def ood(self) -> OODReference | None:
        """The out-of-distribution reference of the training inputs' context vectors, or None (:attr:`ood_note`)."""
        return self._ood_owner()._ood

    @property
    def ood_note(self) -> str:
        """Why :attr:`ood` is None ("" when there is a reference)."""
        return self._ood_owner()._ood_note

    def fit_ood(self, x, *, calibration=None, method: str = OOD_METHOD, max_rows: int = MAX_OOD_ROWS,
                seed: int | None = 0) -> OODReference | None:
        """Fit :attr:`ood` on the context vectors of in-distribution inputs ``x``.

        :meth:`fit` calls it on the training inputs. Call it yourself when the
        model will be applied to inputs made otherwise than its training rows
        (augmented copies, several copies of one object): give one row per
        object, made as the model's real inputs will be. The context vector is
        the output of ``network.features`` (standardised x, then the
        embedding), the network's own summary of an object. At most
        ``max_rows`` rows are used (a ``seed``-ed subsample); of them the
        reference keeps 80 % and calibrates its p-values on the other 20 %
        (:meth:`OODReference.fit`). Rows the network was trained on calibrate
        as well as fresh ones unless it has memorised them; a strongly
        over-fitted network flags too many fresh in-distribution objects.

        Parameters
        ----------
        x : array-like or ``(values, mask)``
            In-distribution inputs, as for :meth:`predict`.
        calibration : array-like or ``(values, mask)``, optional
            In-distribution inputs the network was *not* trained on (its
            validation rows), at least 100 (fewer: a ValueError): they
            calibrate the p-values and ``x`` is the reference
            (:meth:`OODReference.fit`). :meth:`fit` passes its validation rows.
        method : {"gaussian", "knn"}
            The score (see :meth:`OODReference.fit`).
        max_rows : int
            Use at most this many rows.
        seed : int or None
            Seeds the subsample and the reference/calibration split (None: 0).

        Returns
        -------
        OODReference or None
            None (and :attr:`ood_note` says why) for fewer than ``MIN_OOD_ROWS``
            = 300 rows, or when a context vector is not finite.
        """
        owner = self._ood_owner()
        owner._require_fitted()
        max_rows = _positive_int(max_rows, "max_rows", MIN_OOD_ROWS)
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS)}, got {method!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        held_out = None if calibration is None else owner._check_x(calibration, "calibration")
        if held_out is not None and n_rows(held_out) < MIN_CALIBRATION:
            raise ValueError(f"calibration has {n_rows(held_out)} row(s); at least {MIN_CALIBRATION} are needed to "
                             "calibrate the p-values on them alone (or leave calibration out: then 20 % of x is "
                             "held out)")
        return owner._fit_ood(owner._check_x(x), int(max_rows), seed, method, calibration=held_out)

    def _fit_ood(self, inputs, max_rows: int, seed: int | None, method: str = OOD_METHOD,
                 calibration=None) -> OODReference | None:
        if calibration is not None and (n_rows(calibration) < MIN_CALIBRATION or n_rows(inputs) < MIN_REFERENCE):
            calibration = None  # too few held-out rows to calibrate on alone: hold out part of the inputs instead
        n = n_rows(inputs) + (n_rows(calibration) if calibration is not None else 0)
        if n < MIN_OOD_ROWS:
            self._set_ood(None, f"no out-of-distribution reference: it was to be fitted on {n} row(s), fewer than "
                                f"the {MIN_OOD_ROWS} it needs (fit on more simulations, or call fit_ood(x) with more)")
            return None
        seed = 0 if seed is None else int(seed)
        rng = np.random.default_rng(seed)

        def contexts_of(rows_in):
            if n_rows(rows_in) > max_rows:
                chosen = np.sort(rng.choice(n_rows(rows_in), max_rows, replace=False))
                rows_in = index_inputs(rows_in, torch.from_numpy(chosen))
            return self._batched(self.network.features, rows_in)

        contexts = contexts_of(inputs)
        held_out = contexts_of(calibration) if calibration is not None else None
        bad = int((~torch.isfinite(contexts).all(dim=1)).sum())
        if held_out is not None:
            bad += int((~torch.isfinite(held_out).all(dim=1)).sum())
        if bad:
            self._set_ood(None, f"no out-of-distribution reference: {bad} training row(s) have a context vector "
                                "with NaN or inf (the network diverged?)")
            return None
        self._set_ood(OODReference.fit(contexts, calibration=held_out, method=method, seed=seed))
        return self._ood

    def _require_ood(self) -> OODReference:
        owner = self._ood_owner()
        owner._require_fitted()
        if owner._ood is None:
            raise RuntimeError(f"ood_p_value is not available: {owner._ood_note}")
        return owner._ood

    def ood_p_value(self, x):
        """Conformal p-value per row of ``x``: is its context vector like those of the training inputs?

        Small values mean unlike anything the network was trained on: at most a
        fraction α of objects drawn like the training rows get p ≤ α (see
        :class:`~astrobayes.estimators.ood.OODReference`). One pass of the
        feature network; to get a prediction and its p-values from one pass,
        predict inside :meth:`recording_context`. A mixture (DeepEnsemble,
        MCDropout) uses its first member's, or its one network's, features.

        Returns
        -------
        array (m,)
            float64; NaN for a row whose context vector is not finite.

        Raises
        ------
        RuntimeError
            When the model has no reference (:attr:`ood_note` says why).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(1000, 2))
        >>> from astrobayes.estimators import Regressor
        >>> model = Regressor(hidden=(8,))
        >>> _ = model.fit(x, x[:, :1], epochs=2, progress=False)
        >>> p = model.ood_p_value(np.array([[0.0, 0.0], [30.0, 0.0]]))
        >>> bool(p[0] > 0.1), bool(p[1] < 0.01)
        (True, True)
        """
        reference = self._require_ood()
        owner = self._ood_owner()
        inputs = owner._check_x(x)
        contexts = owner._batched(owner.network.features, inputs)
        return self._output(torch.from_numpy(reference_p_values(reference, contexts, owner.device)), x)

    @contextlib.contextmanager
    def recording_context(self, *, every: int = 1, limit: int | None = None) -> Iterator[ContextRecorder]:
        """Keep the context vectors the predictions inside the block compute, for their OOD p-values.

        The feature network runs once per input row as usual; its outputs are
        kept on the side (d numbers per row), so the p-values need no second
        pass over the data::

            with model.recording_context() as recorded:
                probs = model.predict_proba(x)
            p = recorded.p_value()

        Parameters
        ----------
        every : int
            Keep every ``every``-th row of what the network sees (inputs repeated
            ``every`` times in a row, e.g. once per point of a grid of y).
        limit : int, optional
            Keep at most this many rows: pass the number of objects when the
            network runs more than once over them (MC dropout's passes).

        Yields
        ------
        ContextRecorder
            ``.p_value()`` after the block; ``.reference`` is None (and
            ``.note`` says why) when the model has no reference.
        """
        owner = self._ood_owner()
        owner._require_fitted()
        recorder = ContextRecorder(owner._ood, owner._ood_note, every=every, limit=limit, device=owner.device)
        handle = owner.network.features.register_forward_hook(recorder._hook)
        try:
            yield recorder
        finally:
            handle.remove()

    # ------------------------------------------------------------------ batching
    def _batched(self, fn, *arrays, batch_size: int | None = None) -> torch.Tensor:
        """Apply ``fn`` to row-aligned chunks on the model's device; concatenate on the CPU."""
        size = batch_size or self.prediction_batch_size
        device = self.device
        n = n_rows(arrays[0])
        out = []
        with torch.no_grad():
            for start in range(0, n, size):
                chunk = [inputs_to(index_inputs(a, slice(start, start + size)), device) for a in arrays]
                out.append(fn(*chunk).to("cpu"))
        return torch.cat(out, dim=0)

    @staticmethod
    def _broadcast(y: torch.Tensor, x):
        """Pair y and x row by row, repeating a single row of either."""
        ny, nx = n_rows(y), n_rows(x)
        if ny == nx:
            return y, x
        if nx == 1:
            return y, index_inputs(x, torch.zeros(ny, dtype=torch.long))
        if ny == 1:
            return y.expand(nx, *y.shape[1:]), x
        raise ValueError(f"y has {ny} rows and x has {nx}; they must match or one of them must have 1 row")

    @staticmethod
    def _output(tensor: torch.Tensor, like) -> Any:
        return tensor if _is_torch(like) else tensor.numpy()

    # ------------------------------------------------------------------ protocol
    def log_prob(self, y, x):
        """log q(y | x) per row, in the units of raw y (Jacobian of the standardisation included)."""
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def sample(self, n: int, x, seed: int | None = None):
        """``n`` draws from q(y | x) for each row of x: shape (m, n, d)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def predict(self, x) -> Prediction:
        """Point estimate and spread per row of x."""
        raise NotImplementedError

    @staticmethod
    def _check_n(n) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return int(n)

    # ------------------------------------------------------------------ files
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = dict(self.network.state_dict())
        if self._ood is not None:  # beside the weights, under a prefix no network module has
            tensors.update({f"ood.{name}": t for name, t in self._ood.state_dict().items()})
        return tensors

    def _extra_header(self) -> dict:
        scalers = {}
        for name in ("features.x_scaler", "y_scaler"):
            module = self.network.get_submodule(name) if self._has_submodule(name) else None
            if module is not None and module.enabled:
                scalers[name] = {"shift": module.shift.tolist(), "scale": module.scale.tolist()}
        header = {"dims": self.dims, "standardization": scalers,
                  "history": self.history.to_dict() if self.history is not None else None,
                  "ood": self._ood.get_config() if self._ood is not None else None}
        if self._ood is None:
            header["ood_note"] = self._ood_note
        return header

    def _has_submodule(self, name: str) -> bool:
        try:
            self.network.get_submodule(name)
            return True
        except AttributeError:
            return False

    def save(self, path) -> None:
        """Write ``path.safetensors`` (weights) and ``path.json`` (configuration).

        Load it back with ``astrobayes.load(path)``. The files a model was
        loaded from are not written over (a ValueError): save it under a new path.
        """
        self._require_fitted()
        for target in model_paths(path):
            check_not_input(target, getattr(self, "_read_from", ()), argument="path",
                            what="model file this model was loaded from")
        write_model(path, type(self).__name__, self.get_config(), self._state_tensors(), self._extra_header())

    @classmethod
    def _from_state(cls, header: dict, tensors: dict):
        config = dict(header["config"])
        if "embedding" in config:
            config["embedding"] = module_from_config(config["embedding"])
        model = cls(**config)
        model.dims = header["dims"]
        model.network = model._build()
        weights = {name: t for name, t in tensors.items() if not name.startswith("ood.")}
        missing, unexpected = model.network.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ValueError(f"weights do not fit the architecture (missing {missing[:5]}, unexpected {unexpected[:5]})")
        model.network.eval()
        model.history = History.from_dict(header.get("history"))
        model._restore_ood(header, {name[4:]: t for name, t in tensors.items() if name.startswith("ood.")})
        return model

    def _restore_ood(self, header: dict, tensors: dict) -> None:
        """The reference stored with the weights; a file from before references has none (and says so)."""
        spec = header.get("ood")
        if spec is None:
            if tensors:
                raise ValueError("the weights file holds an out-of-distribution reference that the header does not "
                                 "describe")
            note = header.get("ood_note") if "ood" in header else _OLD_FILE
            self._set_ood(None, note if isinstance(note, str) and note.strip() else _NO_NOTE)
            return
        if not isinstance(spec, dict):
            raise ValueError(f"the header's 'ood' entry must be a dict describing the out-of-distribution "
                             f"reference (or null), got {type(spec).__name__}")
        reference = OODReference.from_state(spec, tensors)
        if reference.n_features != self._context_dim():
            raise ValueError(f"the out-of-distribution reference has {reference.n_features} features but the "
                             f"network's context vector has {self._context_dim()}")
        self._set_ood(reference)

    @classmethod
    def load(cls, path):
        """Load a model saved with :meth:`save` (same as ``astrobayes.load``)."""
        from ..core.serialization import load_as

        return load_as(cls, path)

    def _embedding_config(self):
        return module_config(self.embedding)
