"""The Stefan–Boltzmann hierarchical model: which σ do measured stellar luminosities imply?

    P(σ, α | L̂) ∝ π(σ, α) ∏_i ∫ G(L̂_i | σ · 4πR_i² · T_i⁴) δ_D[(log R_i, log T_i) − f(M_i, Z_i)]
                                  p(M_i, Z_i | α) dM_i dZ_i

(Sellentin, "Bay(e)sics for deep learning"). f is the learned stellar map, a
:class:`~astrobayes.inference.delta.DeltaMap`; the per-star latents
(log M, [Fe/H]) are integrated out by importance sampling over fixed, cached
draws inside :class:`~astrobayes.inference.hierarchical.HierarchicalModel`,
so emcee samples only σ and the population hyperparameters α (IMF slope,
metallicity mean and width), and the network never runs during the MCMC.

Two ways to do the per-star integrals:

* ``method="grid"`` (the default for a catalogue of luminosities only): exact
  quadrature on a fixed (log M, [Fe/H]) grid through the intrinsic luminosity
  function (:class:`~astrobayes.stars.grid.LuminosityGridModel`); no Monte
  Carlo noise, cost linear in N. It can marginalise over the members of a
  deep ensemble of maps (``map_uncertainty="mixture"``).
* ``method="importance"``: fixed per-star importance draws
  (:class:`~astrobayes.inference.hierarchical.HierarchicalModel`); the only
  choice when measured T_eff or R, which the catalogue may carry, enter the
  likelihood too.
* ``method="measured_mass"`` (the default when the catalogue has ``mass`` and
  ``mass_err``, as eclipsing binaries do): each star's dynamical mass is data,
  a likelihood on its mass latent, and an evolving map adds an age latent τ
  (:class:`~astrobayes.stars.measured_masses.MeasuredMassModel`); σ is the only
  free parameter and its likelihood is tabulated once, so a run on the 262
  DEBCat main-sequence stars takes seconds.

All measurement errors are log-normal: ``luminosity_err``/``luminosity`` is the
1σ error of ln L̂ (a magnitude error divided by 1.0857), and likewise for T_eff
and R.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable, Table

from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.hierarchical import HierarchicalModel
from astrobayes.inference.priors import JointPrior, LogUniform, Uniform
from astrobayes.inference.sampling import MCMCResult
from astrobayes.estimators.ensemble import DeepEnsemble
from astrobayes.stars.emulator import DEFAULT_FEH_RANGE, DEFAULT_LOG_MASS_RANGE, _check_map, stellar_delta_map
from astrobayes.stars.grid import LuminosityGridModel, log_area_term
from astrobayes.stars.measured_masses import MeasuredMassModel
from astrobayes.stars.population import StellarPopulation
from astrobayes.stars.simulate import SIGMA_UNIT, default_population

__all__ = ["FREE_PARAMETERS", "StefanBoltzmannResult", "default_priors", "infer_stefan_boltzmann",
           "stefan_boltzmann_model"]

#: hyperparameters the model can sample; anything not sampled is held at the population's fixed value
FREE_PARAMETERS = ("sigma", "imf_slope", "feh_mean", "feh_width")
_LN10 = math.log(10.0)


def default_priors(log_mass_range=DEFAULT_LOG_MASS_RANGE, feh_range=DEFAULT_FEH_RANGE) -> dict:
    """Broad priors: σ log-uniform over a factor 10 around nothing in particular (1e-8 to 1e-7 W m⁻² K⁻⁴),
    IMF slope 0.5–4, mean [Fe/H] over the map's range, [Fe/H] width 0.02–0.6 dex."""
    return {"sigma": LogUniform(1e-8, 1e-7, name="sigma", unit=SIGMA_UNIT),
            "imf_slope": Uniform(0.5, 4.0, name="imf_slope"),
            "feh_mean": Uniform(*feh_range, name="feh_mean", unit=u.dex),
            "feh_width": Uniform(0.02, 0.6, name="feh_width", unit=u.dex)}


def _map_domain(stellar_map, log_mass_range, feh_range):
    model = stellar_map.model if isinstance(stellar_map, DeltaMap) else stellar_map
    domain = getattr(model, "stellar_map_domain", None) or {}
    log_mass_range = log_mass_range or domain.get("log_mass_range") or DEFAULT_LOG_MASS_RANGE
    feh_range = feh_range or domain.get("feh_range") or DEFAULT_FEH_RANGE
    return tuple(map(float, log_mass_range)), tuple(map(float, feh_range))


def _catalog_columns(catalog) -> dict:
    if not isinstance(catalog, Table):
        raise TypeError(f"catalog must be an astropy Table/QTable (see read_stellar_catalog), got "
                        f"{type(catalog).__name__}")
    if "luminosity" not in catalog.colnames or "luminosity_err" not in catalog.colnames:
        raise ValueError(f"catalog needs columns 'luminosity' and 'luminosity_err' (read it with "
                         f"read_stellar_catalog); it has {catalog.colnames}")
    units = {"luminosity": u.L_sun, "teff": u.K, "radius": u.R_sun}
    data = {}
    for name, unit in units.items():
        if name not in catalog.colnames:
            continue
        if f"{name}_err" not in catalog.colnames:
            raise ValueError(f"catalog column {name!r} has no {name + '_err'!r} column beside it")
        for column in (name, f"{name}_err"):
            values = catalog[column]
            if not isinstance(values, u.Quantity):
                raise ValueError(f"catalog column {column!r} has no unit; expected {unit}")
            values = np.asarray(values.to_value(unit), dtype=np.float64)
            bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
            if bad.size:
                raise ValueError(f"catalog column {column!r} has {bad.size} non-positive or NaN values (rows "
                                 f"{bad[:5].tolist()}); read the catalogue with read_stellar_catalog(..., "
                                 "drop_nan=True) to drop NaN rows")
            data[column] = values
    return data


def _maps(stellar_map, map_uncertainty: str) -> list[DeltaMap]:
    """The stellar map as one DeltaMap, or one per deep-ensemble member."""
    if map_uncertainty not in ("mixture", "mean"):
        raise ValueError(f"map_uncertainty must be 'mixture' or 'mean' here, got {map_uncertainty!r}")
    if isinstance(stellar_map, DeltaMap):
        return [stellar_map]
    if isinstance(stellar_map, DeepEnsemble) and map_uncertainty == "mixture":
        _check_map(stellar_map)
        return [stellar_delta_map(member) for member in stellar_map.members]
    return [stellar_delta_map(stellar_map)]


def stefan_boltzmann_model(catalog, stellar_map, *, free=None, priors: dict | None = None,
                           population: StellarPopulation | None = None, log_mass_range=None, feh_range=None,
                           method: str = "auto", map_uncertainty: str | None = None, n_draws: int = 256,
                           seed: int = 0, outside_domain: str = "raise", tau_prior: str = "age_of_universe",
                           off_main_sequence: str = "drop", min_log_g: float = 4.0):
    """Build the hierarchical model for a catalogue with ``luminosity``/``luminosity_err`` [L_sun] columns.

    Parameters
    ----------
    catalog : QTable
        From :func:`~astrobayes.stars.io.read_stellar_catalog` or
        :func:`~astrobayes.stars.simulate.simulate_field`. Optional
        ``teff``/``teff_err`` [K] and ``radius``/``radius_err`` [R_sun]
        columns are used when present. Errors are read as log-normal
        (``*_err``/value is the 1σ error of the logarithm). With ``mass`` and
        ``mass_err`` [M_sun] (dynamical masses, e.g.
        :func:`~astrobayes.stars.debcat.read_debcat`) the masses are data
        (``method="measured_mass"``), with ``feh``/``feh_err`` [dex] where
        measured (NaN elsewhere); ``teff`` and ``radius`` are then not used.
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        The learned map (log_mass, feh) → (log_radius, log_teff), or a
        DeltaMap such as :func:`~astrobayes.stars.emulator.exact_stellar_delta_map`;
        a map with a third input ``tau`` (an evolving main sequence) needs
        measured masses.
    free : sequence of str, optional
        Hyperparameters to sample, from :data:`FREE_PARAMETERS`; ``sigma``
        must be one of them. The others stay at ``population``'s values.
        Default: all of them, or ``["sigma"]`` alone with measured masses
        (the only choice there).
    priors : dict, optional
        Replacements for :func:`default_priors` entries (name → Uniform/LogUniform/Normal with that name).
    population : StellarPopulation, optional
        Fixed population values and the IMF family; default a power law
        normalised on the map's mass and [Fe/H] domain.
    method : {"auto", "grid", "importance", "measured_mass"}
        "grid": exact quadrature (luminosities only); "importance":
        importance sampling with ``n_draws`` fixed draws per star (any
        observables); "measured_mass": masses as data, σ alone, quadrature
        tabulated in σ. "auto" takes "measured_mass" when the catalogue has
        ``mass`` and ``mass_err``, else the grid when it can.
    map_uncertainty : {"mixture", "mean"} or None
        For a DeepEnsemble map. None: "mixture" with the grid, "mean" with
        importance sampling (which takes one map). "mixture" (grid only) marginalises
        over the members, (1/E) Σ_e p(L̂ | σ, α, f_e) for the whole
        catalogue; "mean" uses the ensemble mean as if it were exact. (The
        mixture weighs members by how well they fit, which for thousands of
        stars lets one member win; :func:`infer_stefan_boltzmann`'s default
        "pool" gives each member equal weight instead.)
    n_draws, seed
        Importance draws per star, and their seed (``method="importance"``).
    outside_domain : {"raise", "drop"}
        ``method="measured_mass"``: stars whose mass or measured [Fe/H] lies
        outside the map's domain are refused, naming them, or ("drop") left
        out with a warning (``model.dropped`` lists them).
    tau_prior : {"age_of_universe", "uniform"}
        ``method="measured_mass"`` with an evolving map: the prior of the
        fractional age τ (see :class:`~astrobayes.stars.measured_masses.MeasuredMassModel`).
    off_main_sequence : {"drop", "raise", "keep"}
        ``method="measured_mass"``: stars flagged ``not_main_sequence`` (log g
        below ``min_log_g``, from the ``log_g`` column or ``mass`` and
        ``radius``, or a radius above twice the map's; see
        :meth:`~astrobayes.stars.measured_masses.MeasuredMassModel.from_catalog`)
        are left out with a warning (``model.dropped`` lists them), refused,
        or fitted anyway.
    min_log_g : float
        log10(g / cm s⁻²) below which a star is ``not_main_sequence`` (4.0,
        as :func:`~astrobayes.stars.debcat.read_debcat`'s ``main_sequence`` cut).

    Returns
    -------
    LuminosityGridModel, HierarchicalModel or MeasuredMassModel
        All have ``log_prob``, ``object_log_likelihood`` and ``sample``.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> binaries = QTable({"luminosity": [0.7, 1.5] * u.L_sun, "luminosity_err": [0.035, 0.075] * u.L_sun,
    ...                    "mass": [1.0, 1.2] * u.M_sun, "mass_err": [0.01, 0.012] * u.M_sun})
    >>> stefan_boltzmann_model(binaries, exact_stellar_delta_map())  # doctest: +ELLIPSIS
    MeasuredMassModel(stars=2, tau_latent=False, ...)
    """
    if method not in ("auto", "grid", "importance", "measured_mass"):
        raise ValueError(f"method must be 'auto', 'grid', 'importance' or 'measured_mass', got {method!r}")
    log_mass_range, feh_range = _map_domain(stellar_map, log_mass_range, feh_range)
    if method == "auto" and isinstance(catalog, Table) and {"mass", "mass_err"} <= set(catalog.colnames):
        method = "measured_mass"
    if free is None:
        free = ["sigma"] if method == "measured_mass" else FREE_PARAMETERS
    if method == "measured_mass" and list(free) != ["sigma"]:
        raise ValueError(f"with measured masses σ is the only free parameter (free=['sigma']), got free={list(free)}; "
                         "use method='grid' to fit the population from luminosities alone")
    free = list(free)
    unknown = sorted(set(free) - set(FREE_PARAMETERS))
    if unknown or "sigma" not in free or len(set(free)) != len(free):
        raise ValueError(f"free must list distinct names from {FREE_PARAMETERS} including 'sigma', got {free}")
    chosen = default_priors(log_mass_range, feh_range) | (priors or {})
    hyperprior = JointPrior([chosen[name] for name in free])
    if hyperprior.names != free:
        raise ValueError(f"priors must be named after their parameter: got names {hyperprior.names} for {free}")
    if population is None:
        population = default_population(log_mass_range=log_mass_range, feh_range=feh_range)
    if method == "measured_mass":
        if isinstance(stellar_map, DeepEnsemble) and map_uncertainty == "mixture":
            raise ValueError("method='measured_mass' takes one map: pass map_uncertainty='mean' for a deep ensemble, "
                             "or pool the members' posteriors with infer_stefan_boltzmann")
        return MeasuredMassModel.from_catalog(catalog, _maps(stellar_map, "mean")[0], hyperprior, population,
                                              log_mass_range, feh_range, outside_domain=outside_domain,
                                              tau_prior=tau_prior, off_main_sequence=off_main_sequence,
                                              min_log_g=min_log_g)
    data = _catalog_columns(catalog)
    extra = sorted({"teff", "radius"} & set(data))
    if method == "auto":
        method = "importance" if extra else "grid"
    if map_uncertainty is None:
        map_uncertainty = "mixture" if method == "grid" else "mean"
    maps = _maps(stellar_map, map_uncertainty)
    if any("tau" in delta.inputs for delta in maps):
        raise ValueError("an evolving map (with a 'tau' input) needs each star's measured mass: give the catalogue "
                         "'mass' and 'mass_err' columns (method='measured_mass')")
    if method == "grid":
        if extra:
            raise ValueError(f"method='grid' uses luminosities only, but the catalogue has {extra}; use "
                             "method='importance' (or drop those columns)")
        return LuminosityGridModel(hyperprior, population, data["luminosity"],
                                   data["luminosity_err"] / data["luminosity"], maps, log_mass_range, feh_range)
    if len(maps) > 1:
        raise ValueError("method='importance' takes one map: pass map_uncertainty='mean' for a deep ensemble, or "
                         "pool the members' posteriors with infer_stefan_boltzmann")
    errors = {name: data[f"{name}_err"] / data[name] for name in ("luminosity", *extra)}
    log_data = {name: np.log(data[name]) for name in ("luminosity", *extra)}
    columns = {**{f"ln_{k}": v for k, v in log_data.items()}, **{f"r_{k}": v for k, v in errors.items()}}

    def measurement(observed, predicted, hyper):
        # log-normal errors: ln(value) ~ N(ln(model), r); the Jacobian 1/value makes it a density in the value
        def term(name, ln_model):
            r, ln_obs = observed[f"r_{name}"], observed[f"ln_{name}"]
            return -0.5 * ((ln_obs - ln_model) / r) ** 2 - torch.log(r) - ln_obs - 0.5 * math.log(2 * math.pi)

        total = term("luminosity", torch.log(hyper["sigma"]) + log_area_term(predicted["log_radius"],
                                                                             predicted["log_teff"]))
        if "teff" in extra:
            total = total + term("teff", _LN10 * predicted["log_teff"])
        if "radius" in extra:
            total = total + term("radius", _LN10 * predicted["log_radius"])
        return total

    proposal = JointPrior([Uniform(*log_mass_range, name="log_mass"), Uniform(*feh_range, name="feh")])
    return HierarchicalModel(hyperprior, population, measurement, columns, proposal, maps[0], n_draws=n_draws,
                             seed=seed)


@dataclass
class StefanBoltzmannResult:
    """What :func:`infer_stefan_boltzmann` returns.

    Attributes
    ----------
    mcmc : MCMCResult
        The emcee run over σ and the free population parameters (for a
        pooled deep ensemble, every member's draws in equal numbers).
    model : LuminosityGridModel, HierarchicalModel or MeasuredMassModel
        The model (the first member's, for a pooled ensemble).
    members : list of MCMCResult
        One run per ensemble member when their posteriors were pooled, else empty.
    sigma : Quantity
        Posterior draws of σ in W m⁻² K⁻⁴.
    """

    mcmc: MCMCResult
    model: LuminosityGridModel | HierarchicalModel | MeasuredMassModel
    members: list[MCMCResult] = field(default_factory=list)

    @property
    def sigma(self) -> u.Quantity:
        return self.mcmc["sigma"]

    def summary(self) -> Table:
        """Median, 16/84 and 2.5/97.5 percentiles per parameter, with units."""
        return self.mcmc.summary()

    def corner(self, truths: dict | None = None, **kwargs):
        """Corner plot; ``truths`` as {name: value} (e.g. {"sigma": 5.670374419e-8})."""
        values = None if truths is None else [truths.get(name) for name in self.mcmc.names]
        return self.mcmc.corner(truths=values, **kwargs)

    def predictive_check(self, *, alpha: float = 0.01) -> QTable:
        """Per-star posterior predictive check of the luminosities (measured masses only).

        See :meth:`~astrobayes.stars.measured_masses.MeasuredMassModel.predictive_check`:
        one row per star with its p-value, flagged "brighter"/"fainter" below
        ``alpha``. For a pooled deep ensemble the first member's map predicts.
        """
        if not isinstance(self.model, MeasuredMassModel):
            raise ValueError("the per-star predictive check needs measured masses (a catalogue with 'mass' and "
                             f"'mass_err', method='measured_mass'); this result is from {type(self.model).__name__}")
        return self.model.predictive_check(self.sigma, alpha=alpha)

    def __repr__(self) -> str:
        low, median, high = np.percentile(self.sigma.value, [16, 50, 84])
        pooled = f", pooled over {len(self.members)} maps" if self.members else ""
        return (f"StefanBoltzmannResult(sigma = {median:.4e} +{high - median:.2e} -{median - low:.2e} W m^-2 K^-4, "
                f"stars={self.model.n_objects}, parameters={self.mcmc.names}{pooled})")


def _pooled(runs: list[MCMCResult]) -> MCMCResult:
    """Equal-weight pool of several runs over the same parameters (one per map)."""
    n = min(len(r.samples) for r in runs)
    steps = min(len(r.chain) for r in runs)
    first = runs[0]
    return MCMCResult(chain=np.concatenate([r.chain[:steps] for r in runs], axis=1),
                      log_prob=np.concatenate([r.log_prob[:steps] for r in runs], axis=1),
                      samples=np.concatenate([r.samples[len(r.samples) - n:] for r in runs]),
                      names=first.names, units=first.units,
                      acceptance_fraction=np.concatenate([r.acceptance_fraction for r in runs]),
                      autocorr_time=np.max([r.autocorr_time for r in runs], axis=0),
                      burn_in=max(r.burn_in for r in runs), thin=max(r.thin for r in runs),
                      seconds=sum(r.seconds for r in runs),
                      meta=first.meta | {"map_uncertainty": "pool", "n_maps": len(runs), "pooled_runs": len(runs)})


def infer_stefan_boltzmann(catalog: QTable, stellar_map, *, n_steps: int = 3000, n_walkers: int | None = None,
                           seed: int = 0, progress: bool | None = None, map_uncertainty: str = "pool",
                           **model_options) -> StefanBoltzmannResult:
    """Infer σ (and the stellar population) from a catalogue of measured luminosities.

    Parameters
    ----------
    catalog : QTable
        ``luminosity``/``luminosity_err`` in L_sun (see :func:`~astrobayes.stars.io.read_stellar_catalog`).
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        See :func:`stefan_boltzmann_model`; train one with
        :func:`~astrobayes.stars.emulator.train_stellar_map`.
    n_steps, n_walkers, seed, progress
        Passed to emcee.
    map_uncertainty : {"pool", "mixture", "mean"}
        For a DeepEnsemble: "pool" (default) samples the posterior with each
        member as the map and pools the draws with equal weights, so the
        spread between members — the network's own uncertainty — widens the
        posterior; "mixture" and "mean" as in :func:`stefan_boltzmann_model`.
        Ignored for a single network or DeltaMap.
    **model_options
        ``free``, ``priors``, ``population``, ``method``, ``n_draws``, ... of
        :func:`stefan_boltzmann_model`.

    Examples
    --------
    A short chain, to show the call (it warns that 200 steps are too few to trust the error bars):

    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.simulate import simulate_field
    >>> field = simulate_field(200, seed=3)
    >>> result = infer_stefan_boltzmann(field, exact_stellar_delta_map(), free=["sigma"], n_walkers=8,
    ...                                 n_steps=200, progress=False)
    >>> result.summary()["name"].tolist(), str(result.sigma.unit)
    (['sigma'], 'W / (m2 K4)')
    """
    if map_uncertainty not in ("pool", "mixture", "mean"):
        raise ValueError(f"map_uncertainty must be 'pool', 'mixture' or 'mean', got {map_uncertainty!r}")
    sample = {"n_walkers": n_walkers, "n_steps": n_steps, "seed": seed, "progress": progress}
    if map_uncertainty == "pool" and isinstance(stellar_map, DeepEnsemble):
        # the members carry no domain of their own: take the ensemble's
        model_options["log_mass_range"], model_options["feh_range"] = _map_domain(
            stellar_map, model_options.get("log_mass_range"), model_options.get("feh_range"))
        models = [stefan_boltzmann_model(catalog, stellar_delta_map(member), seed=seed, **model_options)
                  for member in stellar_map.members]
        runs = [model.sample(**sample) for model in models]
        return StefanBoltzmannResult(_pooled(runs), models[0], runs)
    model = stefan_boltzmann_model(catalog, stellar_map, seed=seed,
                                   map_uncertainty="mixture" if map_uncertainty == "pool" else map_uncertainty,
                                   **model_options)
    return StefanBoltzmannResult(model.sample(**sample), model)
