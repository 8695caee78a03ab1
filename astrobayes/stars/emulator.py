"""The learned stellar map f: (log_mass, [Fe/H]) → (log_radius, log_teff).

The issue's model is P(σ | L̂) ∝ ∫ δ_D(L − σ A T⁴) P(A, T) G(L̂ | L), with
P(A, T) = ∫ δ_D[(A, T) − f(M, Z)] P(Z) P(M). Here f is a neural network
(:class:`~astrobayes.estimators.regression.Regressor`) trained on the
Tout et al. (1996) ZAMS fits of :mod:`astrobayes.stars.zams`, which stand in
for an expensive stellar-structure code. The network is a *deterministic*
map: it enters the hierarchical model through
:func:`stellar_delta_map` as a :class:`~astrobayes.inference.delta.DeltaMap`,
and its accuracy is checked against the exact model on a grid
(:func:`stellar_map_errors`) rather than trusted.

Working in log10 of every quantity keeps the targets smooth and of order
one, and makes a network error of Δ dex a relative error 10^Δ − 1 whatever
the size of the star.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable

from astrobayes import __version__
from astrobayes.core.serialization import load
from astrobayes.estimators.ensemble import DeepEnsemble
from astrobayes.estimators.regression import Regressor
from astrobayes.estimators.training import TrainingConfig, training_config
from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.simulations import read_sidecar, write_sidecar
from astrobayes.stars.zams import FEH_RANGE, LOG_MASS_RANGE, Z_SUN_MODEL, feh_to_metallicity, zams_log_radius_teff

__all__ = ["STELLAR_MAP_INPUTS", "STELLAR_MAP_OUTPUTS", "DEFAULT_LOG_MASS_RANGE", "DEFAULT_FEH_RANGE",
           "train_stellar_map", "save_stellar_map", "load_stellar_map", "stellar_map_errors",
           "plot_stellar_map_errors", "stellar_delta_map", "exact_stellar_delta_map"]

STELLAR_MAP_INPUTS = ("log_mass", "feh")
STELLAR_MAP_OUTPUTS = ("log_radius", "log_teff")

#: 0.5–20 M_sun: the main-sequence stars of a field survey bright enough for
#: luminosities, well inside Tout et al.'s 0.1–100 M_sun.
DEFAULT_LOG_MASS_RANGE = (math.log10(0.5), math.log10(20.0))
#: −1 ≤ [Fe/H] ≤ 0.15: thin and thick disc. Z = 0.02·10^[Fe/H] must stay in
#: Tout et al.'s 1e-4 ≤ Z ≤ 0.03, i.e. [Fe/H] ≤ log10(1.5) = 0.176, so a
#: super-solar bound of +0.3 would already be an extrapolation of the fits.
DEFAULT_FEH_RANGE = (-1.0, 0.15)

# Training options for the accurate default map (about 1e-3 median relative
# error); the test suite trains a smaller, faster one.
_DEFAULT_TRAINING = {"epochs": 300, "batch_size": 256, "learning_rate": 2e-3, "patience": 30}
_SIDECAR = "stellar_map"
_MODEL_NAME = "Tout, Pols, Eggleton & Han (1996, MNRAS 281, 257) ZAMS fits"


def _check_range(value, name: str, valid: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high, got ({low}, {high})")
    # a hair of tolerance so that the validity limits themselves are accepted
    if low < valid[0] - 1e-9 or high > valid[1] + 1e-9:
        raise ValueError(f"{name}=({low:g}, {high:g}) leaves the validity range of the Tout et al. (1996) fits, "
                         f"[{valid[0]:.4g}, {valid[1]:.4g}]")
    return low, high


def _training_box(low: float, high: float, margin: float, valid: tuple[float, float]) -> tuple[float, float]:
    # networks are least accurate at the edge of their data: train a little
    # beyond the requested domain, but never outside the fits' validity
    pad = margin * (high - low)
    return max(low - pad, valid[0]), min(high + pad, valid[1])


def train_stellar_map(n_train: int = 20000, log_mass_range: Sequence[float] = DEFAULT_LOG_MASS_RANGE,
                      feh_range: Sequence[float] = DEFAULT_FEH_RANGE, *, margin: float = 0.05,
                      hidden: Sequence[int] = (64, 64, 64), ensemble: int | None = None, seed: int = 0,
                      config: TrainingConfig | None = None, **training_options) -> Regressor | DeepEnsemble:
    """Train a network on the exact ZAMS model: (log_mass, feh) → (log_radius, log_teff).

    Parameters
    ----------
    n_train : int
        Number of training stars, drawn uniformly in (log10 M, [Fe/H]).
    log_mass_range : (float, float)
        Domain in log10(M / M_sun) where the map will be used (default 0.5–20 M_sun).
    feh_range : (float, float)
        Domain in [Fe/H] (default −1 to +0.15); Z = 0.02·10^[Fe/H] must stay
        within 1e-4..0.03.
    margin : float
        The training box extends this fraction of each range's width beyond
        both ends (clipped to the fits' validity).
    hidden : sequence of int
        Hidden-layer widths of the :class:`Regressor`.
    ensemble : int, optional
        Train a :class:`DeepEnsemble` of this many networks (≥ 2) instead of
        one; its member spread is a check on the map's own uncertainty.
    seed : int
        Seeds the training points and the network initialisation.
    config : TrainingConfig, optional
        Training options; keyword arguments (``epochs=``, ``learning_rate=``,
        ``progress=``, ``device=``, ...) override single fields. Defaults:
        300 epochs, batch 256, learning rate 2e-3, patience 30.

    Returns
    -------
    Regressor or DeepEnsemble
        The fitted map, with ``stellar_map_domain`` (a dict: the ranges, the
        training box, ``n_train``, ``seed``) recording where it is valid.

    Examples
    --------
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> stellar_map.stellar_map_domain["feh_range"]
    [-1.0, 0.15]
    """
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 100:
        raise ValueError(f"n_train must be an integer ≥ 100, got {n_train!r}")
    log_mass_range = _check_range(log_mass_range, "log_mass_range", LOG_MASS_RANGE)
    feh_range = _check_range(feh_range, "feh_range", FEH_RANGE)
    if not (isinstance(margin, (int, float)) and 0 <= margin <= 0.5):
        raise ValueError(f"margin must be a number between 0 and 0.5, got {margin!r}")
    if ensemble is not None and (isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer))
                                 or ensemble < 2):
        raise ValueError(f"ensemble must be None or an integer ≥ 2 (the number of networks), got {ensemble!r}")
    if config is None:
        options = {**_DEFAULT_TRAINING, **training_options}
    else:
        options = dict(training_options)
    config = training_config(config, seed=seed, **options)

    mass_box = _training_box(*log_mass_range, margin, LOG_MASS_RANGE)
    feh_box = _training_box(*feh_range, margin, FEH_RANGE)
    rng = np.random.default_rng(seed)
    inputs = np.column_stack([rng.uniform(*mass_box, n_train), rng.uniform(*feh_box, n_train)])
    targets = np.column_stack(zams_log_radius_teff(inputs[:, 0], inputs[:, 1], check=False))

    template = Regressor(hidden=hidden)
    model = template if ensemble is None else DeepEnsemble(template, n_members=int(ensemble))
    model.fit(inputs.astype(np.float32), targets.astype(np.float32), config)
    model.stellar_map_domain = {
        "inputs": list(STELLAR_MAP_INPUTS), "outputs": list(STELLAR_MAP_OUTPUTS),
        "log_mass_range": list(log_mass_range), "feh_range": list(feh_range),
        "training_log_mass_range": list(mass_box), "training_feh_range": list(feh_box),
        "n_train": int(n_train), "seed": int(seed), "z_sun_model": Z_SUN_MODEL, "model": _MODEL_NAME,
        "astrobayes_version": __version__,
    }
    return model


def _check_map(model, name: str = "model") -> None:
    if not isinstance(model, (Regressor, DeepEnsemble)):
        raise TypeError(f"{name} must be a stellar map from train_stellar_map (a Regressor or DeepEnsemble), "
                        f"got {type(model).__name__}")
    model._require_fitted()
    if list(model.dims.get("x_shape", [])) != [2] or model.dims.get("y_dim") != 2:
        raise ValueError(f"{name} maps x of shape {model.dims.get('x_shape')} to {model.dims.get('y_dim')} "
                         f"output(s); a stellar map maps {STELLAR_MAP_INPUTS} → {STELLAR_MAP_OUTPUTS}")


def save_stellar_map(model, path) -> None:
    """Save a stellar map: the estimator files plus ``path.stellar_map.json`` with its domain.

    Examples
    --------
    >>> import os, tempfile
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(8,), epochs=1, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "zams_map")
    >>> save_stellar_map(stellar_map, path)
    >>> load_stellar_map(path).stellar_map_domain["n_train"]
    500
    """
    _check_map(model)
    domain = getattr(model, "stellar_map_domain", None)
    if not isinstance(domain, dict):
        raise ValueError("model has no stellar_map_domain: train it with train_stellar_map or load it with "
                         "load_stellar_map")
    model.save(path)
    write_sidecar(path, _SIDECAR, domain)


def load_stellar_map(path) -> Regressor | DeepEnsemble:
    """Load a map written by :func:`save_stellar_map`, with its ``stellar_map_domain``."""
    try:
        domain = read_sidecar(path, _SIDECAR)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the stellar-map description ({_SIDECAR}.json beside the model) is "
                                "missing; was this saved with save_stellar_map?") from None
    model = load(path)
    _check_map(model, f"the model at {path}")
    model.stellar_map_domain = domain
    return model


def _grid_ranges(model, log_mass_range, feh_range) -> tuple[tuple[float, float], tuple[float, float]]:
    domain = getattr(model, "stellar_map_domain", None) or {}
    if log_mass_range is None:
        log_mass_range = domain.get("log_mass_range")
    if feh_range is None:
        feh_range = domain.get("feh_range")
    if log_mass_range is None or feh_range is None:
        raise ValueError("the model records no domain (stellar_map_domain): pass log_mass_range and feh_range")
    return (_check_range(log_mass_range, "log_mass_range", LOG_MASS_RANGE),
            _check_range(feh_range, "feh_range", FEH_RANGE))


def stellar_map_errors(model, n_grid: int = 64, *, log_mass_range=None, feh_range=None) -> QTable:
    """Relative errors of the learned R and T_eff against the exact model on a grid.

    Parameters
    ----------
    model : Regressor or DeepEnsemble
        A map from :func:`train_stellar_map` / :func:`load_stellar_map`.
    n_grid : int
        Points per axis; the grid spans the domain edges included.
    log_mass_range, feh_range : (float, float), optional
        Grid limits; by default the domain the model was trained for.

    Returns
    -------
    QTable
        One row per grid point: ``log_mass``, ``feh``, ``mass`` [solMass],
        ``metallicity``, exact ``log_radius`` and ``log_teff``, the network's
        ``log_radius_pred`` and ``log_teff_pred``, and the signed relative
        errors ``radius_rel_error`` and ``teff_rel_error`` (10^Δlog − 1).
        ``meta["summary"]`` holds the median, 95th percentile and maximum of
        the absolute relative errors of ``radius`` and ``teff``.

    Examples
    --------
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> errors = stellar_map_errors(stellar_map, n_grid=10)
    >>> len(errors), sorted(errors.meta["summary"]["radius"])
    (100, ['max', 'median', 'p95'])
    """
    _check_map(model)
    if isinstance(n_grid, bool) or not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid must be an integer ≥ 2, got {n_grid!r}")
    (mass_low, mass_high), (feh_low, feh_high) = _grid_ranges(model, log_mass_range, feh_range)
    log_mass, feh = np.meshgrid(np.linspace(mass_low, mass_high, n_grid), np.linspace(feh_low, feh_high, n_grid),
                                indexing="ij")
    log_mass, feh = log_mass.ravel(), feh.ravel()
    exact_radius, exact_teff = zams_log_radius_teff(log_mass, feh, check=False)
    predicted = np.asarray(model.predict(np.column_stack([log_mass, feh]).astype(np.float32)).mean, dtype=np.float64)

    table = QTable()
    table["log_mass"] = log_mass
    table["feh"] = feh
    table["mass"] = 10.0 ** log_mass * u.solMass
    table["metallicity"] = feh_to_metallicity(feh)
    table["log_radius"] = exact_radius
    table["log_teff"] = exact_teff
    table["log_radius_pred"] = predicted[:, 0]
    table["log_teff_pred"] = predicted[:, 1]
    table["radius_rel_error"] = 10.0 ** (predicted[:, 0] - exact_radius) - 1.0
    table["teff_rel_error"] = 10.0 ** (predicted[:, 1] - exact_teff) - 1.0
    summary = {}
    for quantity in ("radius", "teff"):
        absolute = np.abs(table[f"{quantity}_rel_error"])
        summary[quantity] = {"median": float(np.median(absolute)), "p95": float(np.percentile(absolute, 95)),
                             "max": float(absolute.max())}
    table.meta.update({"summary": summary, "n_grid": int(n_grid), "log_mass_range": [mass_low, mass_high],
                       "feh_range": [feh_low, feh_high], "model": _MODEL_NAME, "astrobayes_version": __version__})
    return table


def plot_stellar_map_errors(table: QTable):
    """Two maps over (log M, [Fe/H]): |ΔR/R| and |ΔT_eff/T_eff| of the learned map, in percent.

    Parameters
    ----------
    table : QTable
        The output of :func:`stellar_map_errors`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> figure = plot_stellar_map_errors(stellar_map_errors(stellar_map, n_grid=8))
    >>> len(figure.axes)  # two maps and their colour bars
    4
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if not isinstance(table, QTable) or "n_grid" not in table.meta:
        raise TypeError("table must be the QTable returned by stellar_map_errors")
    n = table.meta["n_grid"]
    log_mass = np.asarray(table["log_mass"]).reshape(n, n)
    feh = np.asarray(table["feh"]).reshape(n, n)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ax, quantity, label in zip(axes, ("radius", "teff"), ("|ΔR / R|", "|ΔT_eff / T_eff|")):
        # percent, floored so that a perfect point does not break the log scale
        percent = np.maximum(100 * np.abs(np.asarray(table[f"{quantity}_rel_error"])), 1e-4).reshape(n, n)
        mesh = ax.pcolormesh(log_mass, feh, percent, shading="nearest", norm=LogNorm(), cmap="viridis")
        if percent.min() < 1.0 < percent.max():
            ax.contour(log_mass, feh, percent, levels=[1.0], colors="white", linewidths=1)
        figure.colorbar(mesh, ax=ax, label=f"{label} [%]")
        stats = table.meta["summary"][quantity]
        ax.set_title(f"{label}\nmedian {100 * stats['median']:.2g} %, 95th pct {100 * stats['p95']:.2g} %, "
                     f"max {100 * stats['max']:.2g} %")
        ax.set_xlabel("log10(M / M_sun)")
    axes[0].set_ylabel("[Fe/H]")
    return figure


def stellar_delta_map(model) -> DeltaMap:
    """The learned map as a :class:`DeltaMap` from (log_mass, feh) to (log_radius, log_teff).

    Examples
    --------
    >>> import torch
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> delta = stellar_delta_map(stellar_map)
    >>> sorted(delta({"log_mass": torch.zeros(3), "feh": torch.zeros(3)}))
    ['log_radius', 'log_teff']
    """
    _check_map(model)
    return DeltaMap(model, inputs=list(STELLAR_MAP_INPUTS), outputs=list(STELLAR_MAP_OUTPUTS))


def exact_stellar_delta_map(check: bool = True) -> DeltaMap:
    """The exact Tout et al. ZAMS model as a :class:`DeltaMap` (for ablations against the network).

    Parameters
    ----------
    check : bool
        Raise a ValueError when a latent (log_mass, feh) leaves the fits'
        validity range; False extrapolates the polynomials.

    Examples
    --------
    >>> import torch
    >>> exact = exact_stellar_delta_map()
    >>> exact({"log_mass": torch.tensor([0.0]), "feh": torch.tensor([0.0])})["log_radius"]
    tensor([-0.0515], dtype=torch.float64)
    """
    def evaluate(rows: torch.Tensor) -> torch.Tensor:
        log_radius, log_teff = zams_log_radius_teff(rows[:, 0], rows[:, 1], check=check)
        return torch.stack([log_radius, log_teff], dim=1)

    return DeltaMap(evaluate, inputs=list(STELLAR_MAP_INPUTS), outputs=list(STELLAR_MAP_OUTPUTS))
