"""BEAMS: the Hubble diagram of a photometrically classified, contaminated supernova sample.

A photometric classifier gives each supernova a probability P(Ia). The naive
analysis keeps the objects with P(Ia) > 0.5 and fits them as if every one were
a type Ia; the contaminants it lets through (core-collapse supernovae, fainter
at peak and more scattered) bias the cosmology. BEAMS (Bayesian Estimation
Applied to Multiple Species; Kunz, Bassett & Hlozek 2007, PRD 75, 103508)
keeps every object and fits a two-population mixture, each object's weight
being its P(Ia):

    L_i = p_i N(m_i; μ(z_i) + M, σ_Ia² + e_i²) + (1 − p_i) N(m_i; μ(z_i) + M + Δ, σ_cc² + e_i²)

with μ the distance modulus of a flat wCDM cosmology, M the Ia absolute
magnitude, Δ the mean offset of the contaminants and σ_Ia, σ_cc the intrinsic
scatters. When P(Ia) is calibrated and the two populations are as modelled,
this is, up to a factor that does not depend on the parameters, the joint
likelihood of the magnitudes and the classifier outputs: nothing is thrown
away and nothing biases the posterior.

Distances come from :func:`~astrobayes.supernovae.cosmology.distance_modulus`,
vectorised over emcee walkers and tested against ``astropy.cosmology.FlatwCDM``.

:func:`simulate_hubble_sample` makes mock samples with a calibrated P(Ia),
:class:`BEAMSModel` is the vectorised log-posterior, :func:`fit_beams` and
:func:`fit_naive` sample it with :func:`~astrobayes.inference.sampling.run_emcee`,
and :func:`plot_hubble_diagram` draws the result.
"""
from __future__ import annotations

import copy
import math

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable, Table
from scipy.optimize import minimize

from astrobayes.inference.priors import JointPrior, Uniform, _ParameterPrior
from astrobayes.inference.sampling import MCMCResult, run_emcee

from .cosmology import _DistanceGrid, distance_modulus

__all__ = ["distance_modulus", "simulate_hubble_sample", "BEAMSModel", "fit_beams", "fit_naive",
           "plot_hubble_diagram"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
#: default chain lengths: ~75 τ at τ ≈ 55 steps (w = −1), ~65 τ at τ ≈ 150 steps along the Ω_m–w degeneracy
_DEFAULT_STEPS = 4000
_DEFAULT_STEPS_FREE_W = 10000


# ------------------------------------------------------------------ mock samples
def simulate_hubble_sample(n: int, *, omega_m: float = 0.3, w: float = -1.0, abs_mag: float = -19.3,
                           sigma_ia: float = 0.12, ia_fraction: float = 0.6, contaminant_offset: float = 1.5,
                           sigma_contaminant: float = 0.8, z_range: tuple[float, float] = (0.02, 1.0),
                           mag_err_floor: float = 0.03, mag_err_slope: float = 0.1,
                           classifier_separation: float = 4.0, seed: int | None = None) -> QTable:
    """Mock photometric supernova sample: Ia and contaminants with a calibrated P(Ia).

    Each object gets a redshift uniform on ``z_range``, a type (Ia with
    probability ``ia_fraction``), a peak magnitude μ(z) + M + N(0, σ_Ia²) for
    a Ia, μ(z) + M + Δ + N(0, σ_cc²) for a contaminant, and photometric noise
    e(z) = ``mag_err_floor`` + ``mag_err_slope`` · z. A classifier score
    s ~ N(±a, 1) (+ for Ia) gives P(Ia) = sigmoid(2 a s + logit f), the exact
    posterior type probability (calibrated by construction). The separation
    a = ``classifier_separation`` · ``mag_err_floor`` / e(z) falls with the
    signal-to-noise, so, as in real surveys, classification gets harder with
    redshift; a P > 0.5 cut is then contaminated more at high z, where the
    fainter contaminants mimic extra acceleration and pull Ω_m down.

    Defaults: σ_Ia = 0.12 mag is the usual scatter of standardised Ia; the
    contaminants are 1.5 mag fainter with 0.8 mag scatter, roughly the
    core-collapse supernovae that survive a magnitude limit (volume-limited
    luminosity functions put them ~2 mag fainter with ~1 mag scatter, e.g.
    Richardson et al. 2014), the kind of toy set-up used by Kunz et al. (2007)
    and Hlozek et al. (2012). The redshift distribution
    is flat and there is no selection (no Malmquist bias): the mixture model
    is then exactly right, which is what a calibration test needs. With these
    defaults a P(Ia) > 0.5 cut keeps ~6.5 % contaminants (~0 at z = 0, 15 % at z = 1).

    Parameters
    ----------
    n : int
        Number of supernovae.
    omega_m, w : float
        Flat wCDM cosmology (H0 = 70 km/s/Mpc; see :func:`distance_modulus`).
    abs_mag, sigma_ia : float
        Ia absolute magnitude M and intrinsic scatter [mag].
    ia_fraction : float
        Prior fraction f of type Ia, in (0, 1).
    contaminant_offset, sigma_contaminant : float
        Mean offset Δ of the contaminants from the Ia relation (positive:
        fainter) and their scatter [mag].
    z_range : (float, float)
        Redshift interval, 0 < low < high.
    mag_err_floor, mag_err_slope : float
        Photometric error e(z) = floor + slope · z [mag]; floor > 0.
    classifier_separation : float
        Separation a (in units of the score's width) at e = ``mag_err_floor``;
        0 gives an uninformative P(Ia) = f.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    QTable
        Columns ``z``, ``mag`` [mag], ``mag_err`` [mag], ``p_ia``, ``is_ia``
        (the truth); ``meta["simulation"]`` records every parameter and the seed.

    Examples
    --------
    >>> sample = simulate_hubble_sample(500, seed=1)
    >>> sample.colnames
    ['z', 'mag', 'mag_err', 'p_ia', 'is_ia']
    >>> kept = sample[sample["p_ia"] > 0.5]
    >>> bool(0.0 < 1 - kept["is_ia"].mean() < 0.2)  # the contamination of a naive cut
    True
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    numbers = {"omega_m": omega_m, "w": w, "abs_mag": abs_mag, "sigma_ia": sigma_ia, "ia_fraction": ia_fraction,
               "contaminant_offset": contaminant_offset, "sigma_contaminant": sigma_contaminant,
               "mag_err_floor": mag_err_floor, "mag_err_slope": mag_err_slope,
               "classifier_separation": classifier_separation}
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    for name in ("sigma_ia", "sigma_contaminant", "mag_err_slope", "classifier_separation"):
        if numbers[name] < 0:
            raise ValueError(f"{name} must be non-negative, got {numbers[name]}")
    if not 0 < ia_fraction < 1:
        raise ValueError(f"ia_fraction must be in (0, 1), got {ia_fraction}")
    if not mag_err_floor > 0:
        raise ValueError(f"mag_err_floor must be positive, got {mag_err_floor}")
    if not 0 <= omega_m <= 1:
        raise ValueError(f"omega_m must be in [0, 1], got {omega_m}")
    if np.shape(z_range) != (2,) or not 0 < z_range[0] < z_range[1] or not math.isfinite(z_range[1]):
        raise ValueError(f"z_range must be (low, high) with 0 < low < high, got {z_range!r}")

    rng = np.random.default_rng(seed)
    z = rng.uniform(z_range[0], z_range[1], n)
    is_ia = rng.random(n) < ia_fraction
    mu = distance_modulus(z, omega_m, w)
    intrinsic = np.where(is_ia, sigma_ia, sigma_contaminant) * rng.standard_normal(n)
    mag_err = mag_err_floor + mag_err_slope * z
    mag = mu + abs_mag + np.where(is_ia, 0.0, contaminant_offset) + intrinsic + mag_err * rng.standard_normal(n)
    # Calibrated P(Ia): with s | Ia ~ N(+a, 1) and s | non-Ia ~ N(-a, 1), the likelihood ratio is
    # N(s; a, 1) / N(s; -a, 1) = exp([(s + a)² - (s - a)²] / 2) = exp(2 a s), so by Bayes' theorem the
    # posterior log-odds are logit P(Ia | s) = 2 a s + logit f: exactly the probability the object is a Ia.
    separation = classifier_separation * mag_err_floor / mag_err
    score = np.where(is_ia, separation, -separation) + rng.standard_normal(n)
    log_odds = 2 * separation * score + math.log(ia_fraction / (1 - ia_fraction))
    p_ia = 0.5 * (1 + np.tanh(0.5 * log_odds))  # sigmoid without overflow

    table = QTable()
    table["z"] = z
    table["mag"] = mag * u.mag
    table["mag_err"] = mag_err * u.mag
    table["p_ia"] = p_ia
    table["is_ia"] = is_ia
    table["mag"].info.description = "peak apparent magnitude"
    table["p_ia"].info.description = "calibrated classifier probability of being a type Ia"
    table["is_ia"].info.description = "true type (simulation truth)"
    table.meta["simulation"] = {**{k: float(v) for k, v in numbers.items()}, "z_range": list(map(float, z_range)),
                                "h0": 70.0, "n": int(n), "seed": seed}
    return table


# ------------------------------------------------------------------ the model
def _default_priors(free_w: bool, contaminants: bool) -> list[_ParameterPrior]:
    priors = [Uniform(0.0, 1.0, name="omega_m")]
    if free_w:
        priors.append(Uniform(-2.5, -0.3, name="w"))
    priors += [Uniform(-21.0, -17.0, name="abs_mag", unit="mag"), Uniform(0.0, 2.0, name="sigma_ia", unit="mag")]
    if contaminants:
        priors += [Uniform(-2.0, 5.0, name="contaminant_offset", unit="mag"),
                   Uniform(0.0, 3.0, name="sigma_contaminant", unit="mag")]
    return priors


def _read_sample(sample, mag, mag_err, p_ia, need_p: bool) -> dict[str, np.ndarray]:
    if isinstance(sample, Table):
        if any(v is not None for v in (mag, mag_err, p_ia)):
            raise ValueError("give either a table (sample) or arrays (z, mag, mag_err, p_ia), not both")
        wanted = ["z", "mag", "mag_err"] + (["p_ia"] if need_p else [])
        missing = [c for c in wanted if c not in sample.colnames]
        if missing:
            raise ValueError(f"sample has no column(s) {missing}; it needs {wanted}")
        columns = {c: sample[c] for c in wanted}
    else:
        columns = {"z": sample, "mag": mag, "mag_err": mag_err}
        if need_p:
            columns["p_ia"] = p_ia
        absent = [name for name, value in columns.items() if value is None]
        if absent:
            raise ValueError(f"{', '.join(absent)} must be given (or pass a table with those columns)")
    arrays = {}
    for name, value in columns.items():
        unit = getattr(value, "unit", None)
        if name in ("mag", "mag_err") and unit is not None:
            try:
                value = u.Quantity(value).to_value(u.mag)
            except u.UnitConversionError:
                raise ValueError(f"{name} must be in magnitudes, got unit {unit}") from None
        elif unit is not None and u.Unit(unit) != u.dimensionless_unscaled:
            raise ValueError(f"{name} must be dimensionless, got unit {unit}")
        array = np.asarray(getattr(value, "value", value), dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} has {int((~np.isfinite(array)).sum())} NaN or inf value(s)")
        arrays[name] = array
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"z, mag, mag_err and p_ia must have the same length, got {lengths}")
    if (arrays["z"] <= 0).any():
        raise ValueError("z must be positive for every object")
    if (arrays["mag_err"] <= 0).any():
        raise ValueError("mag_err must be positive for every object")
    if need_p and ((arrays["p_ia"] < 0) | (arrays["p_ia"] > 1)).any():
        raise ValueError("p_ia must be in [0, 1] for every object")
    return arrays


class BEAMSModel:
    """Log-posterior of the BEAMS mixture for a supernova Hubble diagram.

    Parameters, in order: ``omega_m``, ``w`` (if ``free_w``), ``abs_mag`` M
    [mag], ``sigma_ia`` [mag], and with ``contaminants`` ``contaminant_offset``
    Δ [mag] (contaminant mean μ + M + Δ) and ``sigma_contaminant`` [mag].
    H0 is fixed at 70 km/s/Mpc and absorbed by M. Each object contributes
    log[p N(m; μ+M, σ_Ia²+e²) + (1−p) N(m; μ+M+Δ, σ_cc²+e²)].

    Parameters
    ----------
    sample : Table, or array (n,) of redshifts
        A table with columns ``z``, ``mag``, ``mag_err``, ``p_ia`` (as made by
        :func:`simulate_hubble_sample`), or the redshifts with the other three
        given as arrays.
    mag, mag_err : array (n,) or Quantity, optional
        Peak apparent magnitudes and their errors [mag], when ``sample`` is an array.
    p_ia : array (n,), optional
        Probability of each object being a Ia, in [0, 1].
    free_w : bool
        Fit the dark-energy equation of state w (else w = −1).
    contaminants : bool
        False: every object is a Ia (p forced to 1, ``p_ia`` not needed) and
        Δ, σ_cc are dropped; this is the naive fit.
    priors : JointPrior or dict, optional
        A JointPrior over exactly the parameters above, or a dict name → 1-D
        prior replacing some defaults: uniform on omega_m (0, 1), w (−2.5, −0.3),
        abs_mag (−21, −17), sigma_ia (0, 2), contaminant_offset (−2, 5),
        sigma_contaminant (0, 3).

    Examples
    --------
    >>> sample = simulate_hubble_sample(200, seed=0)
    >>> model = BEAMSModel(sample)
    >>> model.names
    ['omega_m', 'abs_mag', 'sigma_ia', 'contaminant_offset', 'sigma_contaminant']
    >>> theta = np.array([[0.3, -19.3, 0.12, 1.5, 0.8], [1.5, -19.3, 0.12, 1.5, 0.8]])
    >>> log_post = model.log_prob(theta)
    >>> bool(np.isfinite(log_post[0])), float(log_post[1])  # Ω_m = 1.5 is outside the prior
    (True, -inf)
    """

    def __init__(self, sample, mag=None, mag_err=None, p_ia=None, *, free_w: bool = False,
                 contaminants: bool = True, priors: JointPrior | dict | None = None):
        data = _read_sample(sample, mag, mag_err, p_ia, need_p=contaminants)
        self.free_w, self.contaminants = bool(free_w), bool(contaminants)
        self.z, self.mag, self.mag_err = data["z"], data["mag"], data["mag_err"]
        self.p_ia = data["p_ia"] if contaminants else np.ones_like(self.z)
        self.prior = self._build_prior(priors)
        self._grid = _DistanceGrid(self.z)
        self._mag = torch.as_tensor(self.mag)
        self._var = torch.as_tensor(self.mag_err**2)
        with np.errstate(divide="ignore"):  # p = 0 or 1 gives a -inf weight, which logsumexp handles
            self._log_weights = torch.as_tensor(np.stack([np.log(self.p_ia), np.log1p(-self.p_ia)]))

    def _build_prior(self, priors) -> JointPrior:
        defaults = _default_priors(self.free_w, self.contaminants)
        names = [p.name for p in defaults]
        if priors is None:
            return JointPrior(defaults)
        if isinstance(priors, JointPrior):
            if priors.names != names:
                raise ValueError(f"priors must be a JointPrior over {names}, got one over {priors.names}")
            return priors
        if not isinstance(priors, dict):
            raise TypeError(f"priors must be a JointPrior or a dict name → prior, got {type(priors).__name__}")
        unknown = sorted(set(priors) - set(names))
        if unknown:
            raise ValueError(f"priors has unknown parameter(s) {unknown}; the parameters are {names}")
        components = []
        for default in defaults:
            given = priors.get(default.name, default)
            if not isinstance(given, _ParameterPrior):
                raise TypeError(f"priors[{default.name!r}] must be a Uniform, LogUniform or Normal prior")
            if given.name not in (None, default.name):
                raise ValueError(f"priors[{default.name!r}] is named {given.name!r}")
            given = copy.copy(given)
            given.name = default.name
            components.append(given)
        return JointPrior(components)

    @property
    def names(self) -> list[str]:
        return self.prior.names

    @property
    def ndim(self) -> int:
        return self.prior.ndim

    def __len__(self) -> int:
        return len(self.z)

    def _log_likelihood(self, theta: torch.Tensor) -> torch.Tensor:
        columns = dict(zip(self.names, theta.T.unsqueeze(-1)))  # name → (m, 1)
        w = columns.get("w", torch.full_like(columns["omega_m"], -1.0))
        mean_ia = self._grid.distance_modulus(columns["omega_m"], w) + columns["abs_mag"]
        populations = [(mean_ia, columns["sigma_ia"])]
        if self.contaminants:
            populations.append((mean_ia + columns["contaminant_offset"], columns["sigma_contaminant"]))
        terms = []
        for log_weight, (mean, sigma) in zip(self._log_weights, populations):
            var = sigma**2 + self._var
            terms.append(log_weight - 0.5 * ((self._mag - mean) ** 2 / var + torch.log(var)))
        per_object = terms[0] if len(terms) == 1 else torch.logaddexp(*terms)
        return per_object.sum(dim=1) - len(self) * _HALF_LOG_2PI

    def log_prob(self, theta):
        """Log-posterior (prior included, emcee's convention) of a batch of parameters.

        Parameters
        ----------
        theta : array or tensor (m, ndim) or (ndim,)
            Parameters in the order of ``names``.

        Returns
        -------
        (m,) float64, numpy or torch like ``theta``; ``-inf`` outside the prior.
        """
        batch = self.prior.as_batch(theta)
        out = self.prior.log_posterior(batch, self._log_likelihood)
        return out if isinstance(theta, torch.Tensor) else out.numpy()

    def _starting_guess(self) -> np.ndarray:
        guesses = {"omega_m": 0.3, "w": -1.0, "sigma_ia": 0.15, "contaminant_offset": 1.0, "sigma_contaminant": 0.5}
        likely = self.p_ia >= 0.5 if (self.p_ia >= 0.5).any() else np.ones(len(self), bool)
        guesses["abs_mag"] = float(np.median((self.mag - distance_modulus(self.z, 0.3))[likely]))
        point = np.array([guesses[name] for name in self.names])
        low, high = self.prior.low, self.prior.high
        inner = np.where(np.isfinite(low) & np.isfinite(high), low + 0.05 * (high - low), point)
        outer = np.where(np.isfinite(low) & np.isfinite(high), high - 0.05 * (high - low), point)
        return np.clip(point, inner, outer)


# ------------------------------------------------------------------ fitting
def _start_near_mode(model: BEAMSModel, n_walkers: int, rng: np.random.Generator) -> np.ndarray:
    """Walkers drawn from the Laplace approximation at the posterior mode.

    Starting from prior draws, part of the burn-in transient can survive run_emcee's 2τ cut; starting in
    the posterior's bulk leaves nothing to burn in.
    """
    def negative(point):
        value = float(model.log_prob(point[None])[0])
        return -value if math.isfinite(value) else 1e300

    bounds = [(lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)
              for lo, hi in zip(model.prior.low, model.prior.high)]
    mode = minimize(negative, model._starting_guess(), method="L-BFGS-B", bounds=bounds).x
    ndim = len(mode)
    step = 1e-3 * np.maximum(np.abs(mode), 0.1)
    # central-difference Hessian, every point in one batched call
    signs = np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)])
    points = [mode + s_i * step[i] * np.eye(ndim)[i] + s_j * step[j] * np.eye(ndim)[j]
              for i in range(ndim) for j in range(ndim) for s_i, s_j in signs]
    values = model.log_prob(np.array(points)).reshape(ndim, ndim, 4)
    hessian = (values @ np.array([1.0, -1.0, -1.0, 1.0])) / (4 * np.outer(step, step))
    try:
        cov = np.linalg.inv(-0.5 * (hessian + hessian.T))
        np.linalg.cholesky(cov)
        ok = np.isfinite(cov).all()
    except np.linalg.LinAlgError:
        ok = False
    if not ok:  # mode on a prior edge: a small ball
        cov = np.diag((10 * step) ** 2)
    walkers = np.empty((0, ndim))
    for _ in range(100):
        draws = rng.multivariate_normal(mode, cov, size=n_walkers)
        walkers = np.concatenate([walkers, draws[np.isfinite(model.log_prob(draws))]])
        if len(walkers) >= n_walkers:
            return walkers[:n_walkers]
    raise RuntimeError("could not place the walkers inside the prior near the posterior mode")


def _fit(model: BEAMSModel, n_walkers: int, n_steps: int | None, seed: int | None,
         progress: bool | None) -> MCMCResult:
    if isinstance(n_walkers, bool) or not isinstance(n_walkers, (int, np.integer)) or n_walkers < 2 * model.ndim:
        raise ValueError(f"n_walkers must be an integer >= {2 * model.ndim} (2 × parameters), got {n_walkers!r}")
    if n_steps is None:
        n_steps = _DEFAULT_STEPS_FREE_W if model.free_w else _DEFAULT_STEPS
    start = _start_near_mode(model, int(n_walkers), np.random.default_rng(seed))
    return run_emcee(model.log_prob, start, n_steps=n_steps, seed=seed, progress=progress,
                     names=model.prior.names, units=model.prior.units)


def fit_beams(sample, *, free_w: bool = False, priors: JointPrior | dict | None = None, n_walkers: int = 32,
              n_steps: int | None = None, seed: int | None = 0, progress: bool | None = None) -> MCMCResult:
    """Sample the BEAMS posterior of a contaminated Hubble diagram, every object weighted by its P(Ia).

    Walkers start from the Laplace approximation at the posterior mode, then
    :func:`~astrobayes.inference.sampling.run_emcee` runs ``n_steps``.

    Parameters
    ----------
    sample : Table
        Columns ``z``, ``mag``, ``mag_err`` [mag] and ``p_ia``.
    free_w, priors
        As for :class:`BEAMSModel`.
    n_steps : int, optional
        Steps per walker; default 4000, or 10000 with ``free_w`` (the Ω_m–w
        degeneracy makes the autocorrelation time ~150 steps instead of ~55).
    n_walkers, seed, progress
        As for :func:`~astrobayes.inference.sampling.run_emcee`.

    Returns
    -------
    MCMCResult
        Parameters ``omega_m``, [``w``], ``abs_mag``, ``sigma_ia``,
        ``contaminant_offset``, ``sigma_contaminant``; ``meta`` records the model.

    Examples
    --------
    >>> sample = simulate_hubble_sample(300, seed=2)
    >>> result = fit_beams(sample, n_steps=200, progress=False)  # a short chain: it warns
    >>> result.names
    ['omega_m', 'abs_mag', 'sigma_ia', 'contaminant_offset', 'sigma_contaminant']
    >>> table = result.summary()  # median, 68 % and 95 % intervals, τ per parameter
    """
    model = BEAMSModel(sample, free_w=free_w, priors=priors)
    result = _fit(model, n_walkers, n_steps, seed, progress)
    result.meta.update({"model": "BEAMS mixture (Kunz, Bassett & Hlozek 2007), flat wCDM, H0 = 70 absorbed by M",
                        "n_objects": len(model)})
    return result


def fit_naive(sample, *, threshold: float = 0.5, free_w: bool = False, priors: JointPrior | dict | None = None,
              n_walkers: int = 32, n_steps: int | None = None, seed: int | None = 0,
              progress: bool | None = None) -> MCMCResult:
    """The naive fit: keep objects with P(Ia) > ``threshold`` and fit them all as type Ia.

    The same :class:`BEAMSModel` with ``contaminants=False`` (parameters
    ``omega_m``, [``w``], ``abs_mag``, ``sigma_ia``). It is biased whenever the
    kept sample is contaminated; it is here as the baseline BEAMS improves on.

    Parameters
    ----------
    sample : Table
        Columns ``z``, ``mag``, ``mag_err`` [mag] and ``p_ia``.
    threshold : float
        The P(Ia) cut, in [0, 1).
    free_w, priors, n_walkers, n_steps, seed, progress
        As for :func:`fit_beams`.

    Returns
    -------
    MCMCResult
        ``meta`` has ``n_kept`` and ``threshold``.

    Examples
    --------
    >>> sample = simulate_hubble_sample(300, seed=2)
    >>> result = fit_naive(sample, n_steps=200, progress=False)  # a short chain: it warns
    >>> result.names, result.meta["n_kept"] == int((sample["p_ia"] > 0.5).sum())
    (['omega_m', 'abs_mag', 'sigma_ia'], True)
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a number in [0, 1), got {threshold!r}")
    if not isinstance(sample, Table) or "p_ia" not in sample.colnames:
        raise ValueError("sample must be a table with a p_ia column")
    kept = sample[np.asarray(sample["p_ia"], dtype=float) > threshold]
    if len(kept) < 3:
        raise ValueError(f"only {len(kept)} object(s) have p_ia > {threshold}; the naive fit needs at least 3")
    model = BEAMSModel(kept, free_w=free_w, contaminants=False, priors=priors)
    result = _fit(model, n_walkers, n_steps, seed, progress)
    result.meta.update({"model": f"naive: objects with P(Ia) > {threshold} fitted as Ia, flat wCDM, H0 = 70 "
                                 "absorbed by M", "n_objects": len(sample), "n_kept": len(kept),
                        "threshold": threshold})
    return result


# ------------------------------------------------------------------ plotting
def plot_hubble_diagram(sample, result: MCMCResult | None = None, ax=None):
    """Hubble diagram: peak magnitude against redshift, coloured by P(Ia), with the fitted relation.

    Parameters
    ----------
    sample : Table
        Columns ``z``, ``mag``, ``mag_err`` and ``p_ia``.
    result : MCMCResult, optional
        From :func:`fit_beams` or :func:`fit_naive`: the Ia relation μ(z) + M at the
        posterior medians is drawn (and the contaminants' μ(z) + M + Δ, dashed, for BEAMS).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_hubble_diagram(simulate_hubble_sample(100, seed=0))
    >>> ax.get_xlabel()
    'redshift z'
    """
    import matplotlib.pyplot as plt

    data = _read_sample(sample, None, None, None, need_p=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.errorbar(data["z"], data["mag"], yerr=data["mag_err"], fmt="none", ecolor="0.8", lw=0.6, zorder=1)
    points = ax.scatter(data["z"], data["mag"], c=data["p_ia"], cmap="coolwarm_r", vmin=0, vmax=1, s=8, zorder=2)
    ax.figure.colorbar(points, ax=ax, label="P(Ia)")
    if result is not None:
        median = dict(zip(result.names, np.median(result.samples, axis=0)))
        curve_z = np.linspace(data["z"].min(), data["z"].max(), 200)
        curve = distance_modulus(curve_z, median["omega_m"], median.get("w", -1.0)) + median["abs_mag"]
        label = f"Ia: Ω_m = {median['omega_m']:.3f}" + (f", w = {median['w']:.2f}" if "w" in median else "")
        ax.plot(curve_z, curve, color="k", lw=1.5, label=label, zorder=3)
        if "contaminant_offset" in median:
            ax.plot(curve_z, curve + median["contaminant_offset"], color="k", ls="--", lw=1,
                    label=f"contaminants: Δ = {median['contaminant_offset']:.2f} mag", zorder=3)
        ax.legend(loc="lower right")
    ax.set_xlabel("redshift z")
    ax.set_ylabel("peak apparent magnitude [mag]")
    return ax
