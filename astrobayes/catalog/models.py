"""Saved models as catalogue summarisers: what they output and how to load them.

A :class:`CatalogModel` wraps any amortized astrobayes model — an NPE
:class:`~astrobayes.inference.Posterior`, or a plain estimator loaded by
:func:`astrobayes.load` — with the names and units of what it predicts and,
where the model file records them, the catalogue columns it reads.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from astrobayes.core.serialization import ModelFileError, load, model_paths, read_model

__all__ = ["CatalogModel", "as_catalog_model", "load_catalog_model", "model_files"]

#: how each model family is summarised (see apply_estimator)
KINDS = ("posterior", "gaussian", "mixture", "sampled", "classifier")


@dataclass
class CatalogModel:
    """A model plus what a catalogue needs to know about it.

    Attributes
    ----------
    model : object
        A ``Posterior`` or a fitted estimator.
    kind : {"posterior", "gaussian", "mixture", "sampled", "classifier"}
        ``gaussian`` (Regressor) and ``mixture`` (MixtureDensityNetwork)
        are summarised exactly from their predicted densities; ``posterior``
        and ``sampled`` (ConditionalFlow, DeepEnsemble, ...) from seeded
        draws; ``classifier`` gives class probabilities.
    parameters : list of str
        Output names (``y_0, y_1, ...`` for a plain estimator; the prior's
        names for a Posterior; class names for a classifier).
    units : list of str
        Unit of each output ("" where dimensionless or unknown).
    columns : tuple of str or None
        Input columns recorded with the model, used when none are given.
    path : pathlib.Path or None
        Where it was loaded from.
    """

    model: object
    kind: str
    parameters: list[str]
    units: list[str]
    columns: tuple[str, ...] | None = None
    path: Path | None = None
    header: dict = field(default_factory=dict)
    #: serialises the per-row draws: a Posterior keeps each call's acceptance on itself
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def estimator(self):
        """The torch estimator (the posterior's density estimator for a Posterior)."""
        return self.model.estimator if self.kind == "posterior" else self.model

    @property
    def n_inputs(self) -> int | None:
        """Number of input columns the network was trained on (None when not a flat vector)."""
        shape = self.estimator.dims.get("x_shape")
        return int(shape[0]) if shape is not None and len(shape) == 1 else None


def _unit_string(unit) -> str:
    import astropy.units as u

    return "" if unit is None or unit == u.dimensionless_unscaled else unit.to_string()


def as_catalog_model(model, names=None) -> CatalogModel:
    """Wrap a Posterior or fitted estimator (or a :class:`CatalogModel`) for catalogue use.

    Parameters
    ----------
    model : Posterior, Estimator or CatalogModel
    names : sequence of str, optional
        Output names overriding the defaults (class names for a classifier).

    Raises
    ------
    TypeError
        For an object that is neither.

    Examples
    --------
    >>> import astrobayes, numpy as np
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 2), np.random.rand(64, 1), epochs=1, progress=False)
    >>> as_catalog_model(reg, names=["redshift"]).parameters
    ['redshift']
    """
    from astrobayes.estimators import Classifier, MixtureDensityNetwork, Regressor
    from astrobayes.inference.npe import Posterior

    if isinstance(model, CatalogModel):
        wrapped = dataclasses.replace(model) if names is not None else model  # never rename a cached model
    elif isinstance(model, Posterior):
        wrapped = CatalogModel(model, "posterior", list(model.prior.names),
                               [_unit_string(un) for un in model.prior.units])
    elif isinstance(model, Classifier):
        model._require_fitted()
        k = int(model.dims.get("n_classes", model.n_classes))
        wrapped = CatalogModel(model, "classifier", [str(i) for i in range(k)], [""] * k)
    elif hasattr(model, "sample") and hasattr(model, "dims") and getattr(model, "network", None) is not None:
        kind = "gaussian" if isinstance(model, Regressor) else \
            "mixture" if isinstance(model, MixtureDensityNetwork) else "sampled"
        d = int(model.dims["y_dim"])
        wrapped = CatalogModel(model, kind, [f"y_{i}" for i in range(d)], [""] * d)
    else:
        raise TypeError(f"model must be a Posterior or a fitted astrobayes estimator (or a path to one), "
                        f"got {type(model).__name__}")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(wrapped.parameters):
            raise ValueError(f"names must list {len(wrapped.parameters)} output name(s), got {names!r}")
        wrapped.parameters = names
    return wrapped


def model_files(path) -> list[Path]:
    """Every file a saved model at ``path`` consists of (estimator pair and sidecars that exist)."""
    weights, config = model_paths(path)
    stem = config.with_suffix("")
    return [weights, config] + sorted(stem.parent.glob(f"{stem.name}.*.json"))


def load_catalog_model(path, names=None) -> CatalogModel:
    """Load a saved amortized model for catalogue use.

    A ``path.prior.json`` sidecar makes it an NPE Posterior; a
    ``path.stellar_map.json`` sidecar a stellar map (inputs ``log_mass, feh``);
    otherwise it is whatever :func:`astrobayes.load` finds.

    Raises
    ------
    FileNotFoundError
        When the model files are missing.
    ModelFileError
        When the files are not a readable astrobayes model, or hold a model
        that cannot summarise catalogue rows (e.g. a generative model).

    Examples
    --------
    >>> import astrobayes, numpy as np, tempfile, os
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 2), np.random.rand(64, 1), epochs=1, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "reg"); reg.save(path)
    >>> load_catalog_model(path).kind
    'gaussian'
    """
    weights, config = model_paths(path)
    header, _ = read_model(path)  # FileNotFoundError / ModelFileError with a clear message
    stem = config.with_suffix("")
    columns = None
    try:
        if stem.with_name(stem.name + ".prior.json").exists():
            from astrobayes.inference.npe import Posterior

            model = Posterior.load(path)
        elif stem.with_name(stem.name + ".stellar_map.json").exists():
            from astrobayes.stars.emulator import STELLAR_MAP_INPUTS, STELLAR_MAP_OUTPUTS, load_stellar_map

            model = load_stellar_map(path)
            # an evolving map (train_stellar_map(model="evolving")) also takes tau
            columns = tuple(model.stellar_map_domain.get("inputs", STELLAR_MAP_INPUTS))
            names = names or list(STELLAR_MAP_OUTPUTS)
        else:
            model = load(path)
        wrapped = as_catalog_model(model, names)
    except ModelFileError:
        raise
    except (TypeError, KeyError, ValueError) as err:
        raise ModelFileError(f"{config} holds a model that cannot be applied to catalogue rows: {err}") from None
    recorded = header.get("catalog_columns")
    wrapped.columns = tuple(recorded) if recorded else columns
    wrapped.path, wrapped.header = Path(config).with_suffix("").resolve(), header
    if wrapped.n_inputs is None:
        raise ModelFileError(f"{config} holds a {type(wrapped.estimator).__name__} for inputs of shape "
                             f"{wrapped.estimator.dims.get('x_shape')} (images, sets or sequences), "
                             "not one row of catalogue columns")
    return wrapped
