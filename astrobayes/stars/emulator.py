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

``train_stellar_map(model="evolving")`` learns the evolving main sequence of
:mod:`astrobayes.stars.evolution` instead, f: (log_mass, feh, tau) → (log_radius,
log_teff) with τ = t / t_MS the fractional main-sequence age
(:data:`STELLAR_MAP_INPUTS_EVOLVING`); the same save/load, error grid and
DeltaMap serve both, and ``stellar_map_domain["model_kind"]`` says which it is.
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
from astrobayes.stars.evolution import TAU_RANGE, ms_log_radius_teff
from astrobayes.stars.zams import FEH_RANGE, LOG_MASS_RANGE, Z_SUN_MODEL, feh_to_metallicity, zams_log_radius_teff

__all__ = ["STELLAR_MAP_INPUTS", "STELLAR_MAP_INPUTS_EVOLVING", "STELLAR_MAP_OUTPUTS", "STELLAR_MAP_MODELS",
           "DEFAULT_LOG_MASS_RANGE", "DEFAULT_EVOLVING_LOG_MASS_RANGE", "DEFAULT_FEH_RANGE",
           "train_stellar_map", "save_stellar_map", "load_stellar_map", "stellar_map_errors",
           "plot_stellar_map_errors", "stellar_delta_map", "exact_stellar_delta_map"]

STELLAR_MAP_INPUTS = ("log_mass", "feh")
STELLAR_MAP_OUTPUTS = ("log_radius", "log_teff")
#: the evolving map's inputs: the fractional main-sequence age τ = t / t_MS comes third
STELLAR_MAP_INPUTS_EVOLVING = ("log_mass", "feh", "tau")
#: the exact models a stellar map can learn: the zero-age or the evolving main sequence
STELLAR_MAP_MODELS = ("zams", "evolving")

#: 0.5–20 M_sun: the main-sequence stars of a field survey bright enough for
#: luminosities, well inside Tout et al.'s 0.1–100 M_sun.
DEFAULT_LOG_MASS_RANGE = (math.log10(0.5), math.log10(20.0))
#: −1 ≤ [Fe/H] ≤ 0.15: thin and thick disc. Z = 0.02·10^[Fe/H] must stay in
#: Tout et al.'s 1e-4 ≤ Z ≤ 0.03, i.e. [Fe/H] ≤ log10(1.5) = 0.176, so a
#: super-solar bound of +0.3 would already be an extrapolation of the fits.
DEFAULT_FEH_RANGE = (-1.0, 0.15)
#: 0.1–30 M_sun for the evolving map: DEBCat's main-sequence stars reach from
#: 0.1 M_sun M dwarfs to ~27 M_sun. Tout et al.'s ZAMS is fitted down to
#: 0.1 M_sun; HPT00's evolution was fitted to 0.5–50 M_sun models and is their
#: extrapolation below (as in SSE), where stars barely evolve in a Hubble time
#: (:func:`~astrobayes.stars.evolution.max_fractional_age`). Real M dwarfs are
#: larger than these models (e.g. CM Dra): a residual to report, not to hide.
DEFAULT_EVOLVING_LOG_MASS_RANGE = (math.log10(0.1), math.log10(30.0))

# Training options for the accurate default map (about 1e-3 median relative
# error); the test suite trains a smaller, faster one.
_DEFAULT_TRAINING = {"epochs": 300, "batch_size": 256, "learning_rate": 2e-3, "patience": 30}
# The evolving map has a third input and the sharp end-of-main-sequence hook
# (HPT00 eqs. 14-17): larger batches and a cosine schedule buy it more progress
# in about a minute of one CPU core (benchmarks/stars_evolving_map.py).
_DEFAULT_TRAINING_EVOLVING = {"epochs": 150, "batch_size": 512, "learning_rate": 5e-3, "patience": 30,
                              "scheduler": "cosine"}
_SIDECAR = "stellar_map"
_MODEL_NAME = "Tout, Pols, Eggleton & Han (1996, MNRAS 281, 257) ZAMS fits"
_EVOLVING_MODEL_NAME = "Hurley, Pols & Tout (2000, MNRAS 315, 543) main sequence on the Tout et al. (1996) ZAMS"


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


def train_stellar_map(n_train: int = 20000, log_mass_range: Sequence[float] | None = None,
                      feh_range: Sequence[float] = DEFAULT_FEH_RANGE, *, model: str = "zams",
                      tau_range: Sequence[float] = TAU_RANGE, margin: float = 0.05,
                      hidden: Sequence[int] = (64, 64, 64), ensemble: int | None = None, seed: int = 0,
                      config: TrainingConfig | None = None, **training_options) -> Regressor | DeepEnsemble:
    """Train a network on an exact stellar model: (log_mass, feh[, tau]) → (log_radius, log_teff).

    Parameters
    ----------
    n_train : int
        Number of training stars, drawn uniformly in (log10 M, [Fe/H][, τ]).
    log_mass_range : (float, float), optional
        Domain in log10(M / M_sun) where the map will be used (default 0.5–20
        M_sun for the ZAMS map, 0.1–30 M_sun for the evolving one).
    feh_range : (float, float)
        Domain in [Fe/H] (default −1 to +0.15); Z = 0.02·10^[Fe/H] must stay
        within 1e-4..0.03.
    model : {"zams", "evolving"}
        The exact model learned: the Tout et al. (1996) ZAMS
        (:func:`~astrobayes.stars.zams.zams_log_radius_teff`), or the Hurley,
        Pols & Tout (2000) main sequence at fractional age τ
        (:func:`~astrobayes.stars.evolution.ms_log_radius_teff`), whose map
        takes τ as a third input.
    tau_range : (float, float)
        Domain in τ = t / t_MS of the evolving map (default the whole main
        sequence, [0, 1]); ignored for the ZAMS map.
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
        300 epochs, batch 256, learning rate 2e-3, patience 30 (ZAMS);
        150 epochs, batch 512, learning rate 5e-3 with a cosine schedule,
        patience 30 (evolving, about a minute on one CPU core).

    Returns
    -------
    Regressor or DeepEnsemble
        The fitted map, with ``stellar_map_domain`` (a dict: the ranges, the
        training box, ``n_train``, ``seed``) recording where it is valid, and
        ``ood``, the out-of-distribution reference of the training stars'
        inputs that :func:`~astrobayes.stars.predict.predict_stars` scores each
        star against (none below 300 training stars); :func:`save_stellar_map`
        keeps both.

    Examples
    --------
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> stellar_map.stellar_map_domain["feh_range"]
    [-1.0, 0.15]
    >>> evolving = train_stellar_map(n_train=500, model="evolving", hidden=(16,), epochs=2, progress=False)
    >>> evolving.stellar_map_domain["inputs"], evolving.stellar_map_domain["tau_range"]
    (['log_mass', 'feh', 'tau'], [0.0, 1.0])
    """
    if model not in STELLAR_MAP_MODELS:
        raise ValueError(f"model must be one of {STELLAR_MAP_MODELS} (the exact stellar model the network learns), "
                         f"got {model!r}")
    evolving = model == "evolving"
    if log_mass_range is None:
        log_mass_range = DEFAULT_EVOLVING_LOG_MASS_RANGE if evolving else DEFAULT_LOG_MASS_RANGE
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 100:
        raise ValueError(f"n_train must be an integer ≥ 100, got {n_train!r}")
    log_mass_range = _check_range(log_mass_range, "log_mass_range", LOG_MASS_RANGE)
    feh_range = _check_range(feh_range, "feh_range", FEH_RANGE)
    tau_range = _check_tau_range(tau_range) if evolving else None
    if not (isinstance(margin, (int, float)) and 0 <= margin <= 0.5):
        raise ValueError(f"margin must be a number between 0 and 0.5, got {margin!r}")
    if ensemble is not None and (isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer))
                                 or ensemble < 2):
        raise ValueError(f"ensemble must be None or an integer ≥ 2 (the number of networks), got {ensemble!r}")
    if config is None:
        options = {**(_DEFAULT_TRAINING_EVOLVING if evolving else _DEFAULT_TRAINING), **training_options}
    else:
        options = dict(training_options)
    config = training_config(config, seed=seed, **options)

    mass_box = _training_box(*log_mass_range, margin, LOG_MASS_RANGE)
    feh_box = _training_box(*feh_range, margin, FEH_RANGE)
    rng = np.random.default_rng(seed)
    columns = [rng.uniform(*mass_box, n_train), rng.uniform(*feh_box, n_train)]
    if evolving:
        tau_box = _training_box(*tau_range, margin, TAU_RANGE)
        inputs = np.column_stack(columns + [rng.uniform(*tau_box, n_train)])
        targets = np.column_stack(ms_log_radius_teff(inputs[:, 0], inputs[:, 1], inputs[:, 2], check=False))
    else:
        inputs = np.column_stack(columns)
        targets = np.column_stack(zams_log_radius_teff(inputs[:, 0], inputs[:, 1], check=False))

    template = Regressor(hidden=hidden)
    fitted = template if ensemble is None else DeepEnsemble(template, n_members=int(ensemble))
    fitted.fit(inputs.astype(np.float32), targets.astype(np.float32), config)
    fitted.stellar_map_domain = {
        "model_kind": model, "inputs": list(STELLAR_MAP_INPUTS_EVOLVING if evolving else STELLAR_MAP_INPUTS),
        "outputs": list(STELLAR_MAP_OUTPUTS),
        "log_mass_range": list(log_mass_range), "feh_range": list(feh_range),
        "training_log_mass_range": list(mass_box), "training_feh_range": list(feh_box),
        "n_train": int(n_train), "seed": int(seed), "z_sun_model": Z_SUN_MODEL,
        "model": _EVOLVING_MODEL_NAME if evolving else _MODEL_NAME, "astrobayes_version": __version__,
    }
    if evolving:
        fitted.stellar_map_domain.update({"tau_range": list(tau_range), "training_tau_range": list(tau_box)})
    for member in getattr(fitted, "members", []):  # a member used on its own keeps the ensemble's domain
        member.stellar_map_domain = fitted.stellar_map_domain
    return fitted


def _check_tau_range(value) -> tuple[float, float]:
    low, high = _check_range(value, "tau_range", (-math.inf, math.inf))
    if low < TAU_RANGE[0] or high > TAU_RANGE[1]:
        raise ValueError(f"tau_range=({low:g}, {high:g}) must lie within [0, 1]: τ = t / t_MS runs from the ZAMS "
                         "(0) to the terminal main sequence (1)")
    return low, high


def _map_inputs(model) -> tuple[str, ...]:
    """The input names of a stellar map: (log_mass, feh), or (log_mass, feh, tau) for an evolving one."""
    return STELLAR_MAP_INPUTS_EVOLVING if list(model.dims.get("x_shape", [])) == [3] else STELLAR_MAP_INPUTS


def _check_map(model, name: str = "model") -> None:
    if not isinstance(model, (Regressor, DeepEnsemble)):
        raise TypeError(f"{name} must be a stellar map from train_stellar_map (a Regressor or DeepEnsemble), "
                        f"got {type(model).__name__}")
    model._require_fitted()
    if list(model.dims.get("x_shape", [])) not in ([2], [3]) or model.dims.get("y_dim") != 2:
        raise ValueError(f"{name} maps x of shape {model.dims.get('x_shape')} to {model.dims.get('y_dim')} "
                         f"output(s); a stellar map maps {STELLAR_MAP_INPUTS} (or, evolving, "
                         f"{STELLAR_MAP_INPUTS_EVOLVING}) → {STELLAR_MAP_OUTPUTS}")


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
    for member in getattr(model, "members", []):
        member.stellar_map_domain = domain
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


def stellar_map_errors(model, n_grid: int = 64, *, log_mass_range=None, feh_range=None, tau=None) -> QTable:
    """Relative errors of the learned R and T_eff against the exact model on a grid.

    Parameters
    ----------
    model : Regressor or DeepEnsemble
        A map from :func:`train_stellar_map` / :func:`load_stellar_map`.
    n_grid : int
        Points per axis in (log M, [Fe/H]); the grid spans the domain edges included.
    log_mass_range, feh_range : (float, float), optional
        Grid limits; by default the domain the model was trained for.
    tau : float or sequence of float, optional
        Evolving maps only: the fractional ages of the grid (default 21 values
        spanning the map's ``tau_range``); the grid is then
        n_grid × n_grid × len(tau), against the exact evolving model.

    Returns
    -------
    QTable
        One row per grid point: ``log_mass``, ``feh``, ``mass`` [solMass],
        ``metallicity`` (and ``tau`` for an evolving map), exact ``log_radius``
        and ``log_teff``, the network's ``log_radius_pred`` and
        ``log_teff_pred``, and the signed relative errors ``radius_rel_error``
        and ``teff_rel_error`` (10^Δlog − 1). ``meta["summary"]`` holds the
        median, 95th and 99th percentiles and maximum of the absolute relative
        errors of ``radius`` and ``teff``.

    Examples
    --------
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> errors = stellar_map_errors(stellar_map, n_grid=10)
    >>> len(errors), sorted(errors.meta["summary"]["radius"])
    (100, ['max', 'median', 'p95', 'p99'])
    >>> evolving = train_stellar_map(n_train=500, model="evolving", hidden=(16,), epochs=2, progress=False)
    >>> len(stellar_map_errors(evolving, n_grid=10, tau=[0.0, 0.5, 1.0]))
    300
    """
    _check_map(model)
    if isinstance(n_grid, bool) or not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid must be an integer ≥ 2, got {n_grid!r}")
    (mass_low, mass_high), (feh_low, feh_high) = _grid_ranges(model, log_mass_range, feh_range)
    axes = [np.linspace(mass_low, mass_high, n_grid), np.linspace(feh_low, feh_high, n_grid)]
    evolving = len(_map_inputs(model)) == 3
    if evolving:
        taus = _tau_grid(model, tau)
        log_mass, feh, tau_values = (grid.ravel() for grid in np.meshgrid(*axes, taus, indexing="ij"))
        exact_radius, exact_teff = ms_log_radius_teff(log_mass, feh, tau_values, check=False)
        inputs = np.column_stack([log_mass, feh, tau_values])
    else:
        if tau is not None:
            raise ValueError("tau applies to an evolving map (train_stellar_map(model='evolving')); this one is "
                             "the zero-age map")
        log_mass, feh = (grid.ravel() for grid in np.meshgrid(*axes, indexing="ij"))
        exact_radius, exact_teff = zams_log_radius_teff(log_mass, feh, check=False)
        inputs = np.column_stack([log_mass, feh])
    predicted = np.asarray(model.predict(inputs.astype(np.float32)).mean, dtype=np.float64)

    table = QTable()
    table["log_mass"] = log_mass
    table["feh"] = feh
    if evolving:
        table["tau"] = tau_values
        table["tau"].info.description = "fractional main-sequence age t / t_MS"
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
                             "p99": float(np.percentile(absolute, 99)), "max": float(absolute.max())}
    table.meta.update({"summary": summary, "n_grid": int(n_grid), "log_mass_range": [mass_low, mass_high],
                       "feh_range": [feh_low, feh_high], "model": _EVOLVING_MODEL_NAME if evolving else _MODEL_NAME,
                       "n_tau": len(taus) if evolving else 1, "astrobayes_version": __version__})
    if evolving:
        table.meta["tau"] = [float(t) for t in taus]
    return table


def _tau_grid(model, tau) -> np.ndarray:
    if tau is None:
        tau_range = (getattr(model, "stellar_map_domain", None) or {}).get("tau_range", TAU_RANGE)
        return np.linspace(*_check_tau_range(tau_range), 21)
    taus = np.atleast_1d(np.asarray(tau, dtype=np.float64)).ravel()
    if taus.size == 0 or not np.all(np.isfinite(taus)) or taus.min() < 0 or taus.max() > 1:
        raise ValueError(f"tau must be one or more fractional ages within [0, 1], got {tau!r}")
    return taus


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
    n, n_tau = table.meta["n_grid"], table.meta.get("n_tau", 1)
    # an evolving map's grid has a τ axis: show the worst error over τ at each (M, [Fe/H])
    log_mass = np.asarray(table["log_mass"]).reshape(n, n, n_tau)[:, :, 0]
    feh = np.asarray(table["feh"]).reshape(n, n, n_tau)[:, :, 0]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ax, quantity, label in zip(axes, ("radius", "teff"), ("|ΔR / R|", "|ΔT_eff / T_eff|")):
        # percent, floored so that a perfect point does not break the log scale
        percent = np.maximum(100 * np.abs(np.asarray(table[f"{quantity}_rel_error"])), 1e-4)
        percent = percent.reshape(n, n, n_tau).max(axis=2)
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


class _TrainedBoxDeltaMap(DeltaMap):
    """A learned map that refuses inputs outside the box it was trained on instead of extrapolating."""

    def __init__(self, model, inputs, outputs, box: dict):
        super().__init__(model, inputs=inputs, outputs=outputs)
        self.training_box = box  # input name → (low, high)

    def __call__(self, values):
        for name, (low, high) in self.training_box.items():
            if name not in values:
                continue
            given = torch.as_tensor(values[name], dtype=torch.float64)
            outside = (given < low - 1e-6) | (given > high + 1e-6)  # float32 round-off at the box's edge
            if bool(outside.any()):
                raise ValueError(
                    f"the stellar map was trained on {name} in [{low:.4g}, {high:.4g}] and would extrapolate for "
                    f"{int(outside.sum())} value(s) outside it (from {float(given.min()):.4g} to "
                    f"{float(given.max()):.4g}): keep log_mass_range/feh_range within the map's domain, leave out the "
                    "stars outside it (predict_stars flags them), or train a map that covers them")
        return super().__call__(values)


def stellar_delta_map(model) -> DeltaMap:
    """The learned map as a :class:`DeltaMap` from (log_mass, feh[, tau]) to (log_radius, log_teff).

    An evolving map (``train_stellar_map(model="evolving")``) takes ``tau``
    as a third named input.

    A map that records its training box (``stellar_map_domain``, as
    :func:`train_stellar_map` and :func:`load_stellar_map` give it) refuses,
    with a ValueError, any input outside that box: a network's answer there is
    an extrapolation, and inside a hierarchical model it would be a silent one.

    Examples
    --------
    >>> import torch
    >>> stellar_map = train_stellar_map(n_train=500, hidden=(16,), epochs=2, progress=False)
    >>> delta = stellar_delta_map(stellar_map)
    >>> sorted(delta({"log_mass": torch.zeros(3), "feh": torch.zeros(3)}))
    ['log_radius', 'log_teff']
    >>> delta({"log_mass": torch.tensor([-0.9]), "feh": torch.zeros(1)})  # 0.13 M_sun # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the stellar map was trained on log_mass in [-0.3811, 1.381] and would extrapolate for 1 value(s) ...
    """
    _check_map(model)
    domain = getattr(model, "stellar_map_domain", None) or {}
    # every input with a recorded training range (an evolving map's tau too, if it records one)
    box = {name: tuple(map(float, domain[f"training_{name}_range"])) for name in domain.get("inputs", [])
           if f"training_{name}_range" in domain}
    return _TrainedBoxDeltaMap(model, list(_map_inputs(model)), list(STELLAR_MAP_OUTPUTS), box)


def exact_stellar_delta_map(check: bool = True, *, model: str = "zams") -> DeltaMap:
    """The exact stellar model as a :class:`DeltaMap` (for ablations against the network).

    Parameters
    ----------
    check : bool
        Raise a ValueError when a latent (log_mass, feh) leaves the fits'
        validity range; False extrapolates the polynomials.
    model : {"zams", "evolving"}
        The Tout et al. ZAMS, inputs (log_mass, feh); or the Hurley, Pols &
        Tout (2000) main sequence, inputs (log_mass, feh, tau).

    Examples
    --------
    >>> import torch
    >>> exact = exact_stellar_delta_map()
    >>> exact({"log_mass": torch.tensor([0.0]), "feh": torch.tensor([0.0])})["log_radius"]
    tensor([-0.0515], dtype=torch.float64)
    >>> evolving = exact_stellar_delta_map(model="evolving")
    >>> sun = {"log_mass": torch.tensor([0.0]), "feh": torch.tensor([0.0]), "tau": torch.tensor([1.0])}
    >>> evolving(sun)["log_radius"]  # the terminal main sequence
    tensor([0.2106], dtype=torch.float64)
    """
    if model not in STELLAR_MAP_MODELS:
        raise ValueError(f"model must be one of {STELLAR_MAP_MODELS}, got {model!r}")
    evolving = model == "evolving"

    def evaluate(rows: torch.Tensor) -> torch.Tensor:
        if evolving:
            log_radius, log_teff = ms_log_radius_teff(rows[:, 0], rows[:, 1], rows[:, 2], check=check)
        else:
            log_radius, log_teff = zams_log_radius_teff(rows[:, 0], rows[:, 1], check=check)
        return torch.stack([log_radius, log_teff], dim=1)

    inputs = STELLAR_MAP_INPUTS_EVOLVING if evolving else STELLAR_MAP_INPUTS
    return DeltaMap(evaluate, inputs=list(inputs), outputs=list(STELLAR_MAP_OUTPUTS))
