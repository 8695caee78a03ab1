"""The Stefan–Boltzmann hierarchical model: which σ do measured stellar luminosities imply?

    P(σ, α | L̂) ∝ π(σ, α) ∏_i ∫ G(L̂_i | σ · 4πR_i² · T_i⁴) δ_D[(log R_i, log T_i) − f(M_i, Z_i)]
                                  p(M_i, Z_i | α) dM_i dZ_i

(Sellentin, "Bay(e)sics for deep learning"). f is the learned stellar map, a
:class:`~astrobayes.inference.delta.DeltaMap`; the per-star latents
(log M, [Fe/H]) are integrated out by importance sampling over fixed, cached
draws inside :class:`~astrobayes.inference.hierarchical.HierarchicalModel`,
so emcee samples only σ and the population hyperparameters α (IMF slope,
metallicity mean and width), and the network never runs during the MCMC.
Measured T_eff or R, when the catalogue has them, enter the same likelihood.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.constants as const
import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable, Table
from torch.distributions import Normal

from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.hierarchical import HierarchicalModel
from astrobayes.inference.priors import JointPrior, LogUniform, Uniform
from astrobayes.inference.sampling import MCMCResult
from astrobayes.stars.emulator import DEFAULT_FEH_RANGE, DEFAULT_LOG_MASS_RANGE, stellar_delta_map
from astrobayes.stars.population import StellarPopulation
from astrobayes.stars.simulate import SIGMA_UNIT

__all__ = ["FREE_PARAMETERS", "StefanBoltzmannResult", "default_priors", "infer_stefan_boltzmann",
           "stefan_boltzmann_model"]

#: hyperparameters the model can sample; anything not sampled is held at the population's fixed value
FREE_PARAMETERS = ("sigma", "imf_slope", "feh_mean", "feh_width")
#: ln(4π R_sun² / L_sun) in SI: L/L_sun = σ · exp(this) · (R/R_sun)² · T⁴
_LOG_AREA_OVER_LSUN = math.log(4 * math.pi * const.R_sun.si.value**2 / const.L_sun.si.value)
_LN10 = math.log(10.0)


def default_priors(log_mass_range=DEFAULT_LOG_MASS_RANGE, feh_range=DEFAULT_FEH_RANGE) -> dict:
    """Broad priors: σ log-uniform over a factor 10 around nothing in particular (1e-8 to 1e-7 W m⁻² K⁻⁴),
    IMF slope 0.5–4, mean [Fe/H] over the map's range, [Fe/H] width 0.02–0.6 dex."""
    return {"sigma": LogUniform(1e-8, 1e-7, name="sigma", unit=SIGMA_UNIT),
            "imf_slope": Uniform(0.5, 4.0, name="imf_slope"),
            "feh_mean": Uniform(*feh_range, name="feh_mean", unit=u.dex),
            "feh_width": Uniform(0.02, 0.6, name="feh_width", unit=u.dex)}


def _map_domain(stellar_map, log_mass_range, feh_range):
    domain = getattr(getattr(stellar_map, "model", None), "stellar_map_domain", None) or {}
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
            data[column] = values.to_value(unit)
    return data


def stefan_boltzmann_model(catalog, stellar_map, *, free=FREE_PARAMETERS, priors: dict | None = None,
                           population: StellarPopulation | None = None, log_mass_range=None, feh_range=None,
                           n_draws: int = 256, seed: int = 0) -> HierarchicalModel:
    """Build the hierarchical model for a catalogue with ``luminosity``/``luminosity_err`` [L_sun] columns.

    Parameters
    ----------
    catalog : QTable
        From :func:`~astrobayes.stars.io.read_stellar_catalog` or
        :func:`~astrobayes.stars.simulate.simulate_field`. Optional
        ``teff``/``teff_err`` [K] and ``radius``/``radius_err`` [R_sun]
        columns are used when present.
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        The learned map (log_mass, feh) → (log_radius, log_teff), or a
        DeltaMap such as :func:`~astrobayes.stars.emulator.exact_stellar_delta_map`.
    free : sequence of str
        Hyperparameters to sample, from :data:`FREE_PARAMETERS`; ``sigma``
        must be one of them. The others stay at ``population``'s values.
    priors : dict, optional
        Replacements for :func:`default_priors` entries (name → Uniform/LogUniform/Normal with that name).
    population : StellarPopulation, optional
        Fixed population values and the IMF family; default a power law
        normalised on the map's mass and [Fe/H] domain.
    n_draws, seed
        Importance draws per star, and their seed.
    """
    delta = stellar_map if isinstance(stellar_map, DeltaMap) else stellar_delta_map(stellar_map)
    log_mass_range, feh_range = _map_domain(delta, log_mass_range, feh_range)
    free = list(free)
    unknown = sorted(set(free) - set(FREE_PARAMETERS))
    if unknown or "sigma" not in free or len(set(free)) != len(free):
        raise ValueError(f"free must list distinct names from {FREE_PARAMETERS} including 'sigma', got {free}")
    chosen = default_priors(log_mass_range, feh_range) | (priors or {})
    hyperprior = JointPrior([chosen[name] for name in free])
    if hyperprior.names != free:
        raise ValueError(f"priors must be named after their parameter: got names {hyperprior.names} for {free}")
    if population is None:
        population = StellarPopulation("powerlaw", imf_slope=2.35, m_min=10 ** log_mass_range[0],
                                       m_max=10 ** log_mass_range[1], feh_mean=-0.2, feh_width=0.2,
                                       feh_range=feh_range)
    data = _catalog_columns(catalog)

    def measurement(observed, predicted, hyper):
        log_l = (torch.log(hyper["sigma"]) + _LOG_AREA_OVER_LSUN + 2 * _LN10 * predicted["log_radius"]
                 + 4 * _LN10 * predicted["log_teff"])
        total = Normal(torch.exp(log_l), observed["luminosity_err"]).log_prob(observed["luminosity"])
        if "teff" in observed:
            total = total + Normal(10 ** predicted["log_teff"], observed["teff_err"]).log_prob(observed["teff"])
        if "radius" in observed:
            total = total + Normal(10 ** predicted["log_radius"], observed["radius_err"]).log_prob(observed["radius"])
        return total

    proposal = JointPrior([Uniform(*log_mass_range, name="log_mass"), Uniform(*feh_range, name="feh")])
    return HierarchicalModel(hyperprior, population, measurement, data, proposal, delta, n_draws=n_draws,
                             seed=seed)


@dataclass
class StefanBoltzmannResult:
    """What :func:`infer_stefan_boltzmann` returns.

    Attributes
    ----------
    mcmc : MCMCResult
        The emcee run over σ and the free population parameters.
    model : HierarchicalModel
    sigma : Quantity
        Posterior draws of σ in W m⁻² K⁻⁴.
    """

    mcmc: MCMCResult
    model: HierarchicalModel

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

    def __repr__(self) -> str:
        low, median, high = np.percentile(self.sigma.value, [16, 50, 84])
        return (f"StefanBoltzmannResult(sigma = {median:.4e} +{high - median:.2e} -{median - low:.2e} W m^-2 K^-4, "
                f"stars={self.model.n_objects}, parameters={self.mcmc.names})")


def infer_stefan_boltzmann(catalog: QTable, stellar_map, *, n_steps: int = 3000, n_walkers: int | None = None,
                           seed: int = 0, progress: bool | None = None, **model_options) -> StefanBoltzmannResult:
    """Infer σ (and the stellar population) from a catalogue of measured luminosities.

    Parameters
    ----------
    catalog : QTable
        ``luminosity``/``luminosity_err`` in L_sun (see :func:`~astrobayes.stars.io.read_stellar_catalog`).
    stellar_map : Regressor, DeepEnsemble or DeltaMap
        See :func:`stefan_boltzmann_model`; train one with
        :func:`~astrobayes.stars.emulator.train_stellar_map`.
    n_steps, n_walkers, seed, progress
        Passed to emcee through :meth:`HierarchicalModel.sample`.
    **model_options
        ``free``, ``priors``, ``population``, ``n_draws``, ... of :func:`stefan_boltzmann_model`.

    Examples
    --------
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.simulate import simulate_field
    >>> field = simulate_field(200, seed=3)
    >>> result = infer_stefan_boltzmann(field, exact_stellar_delta_map(), free=["sigma"], n_draws=64,
    ...                                 n_steps=600, progress=False)  # doctest: +SKIP
    >>> result.summary()["name"].tolist()  # doctest: +SKIP
    ['sigma']
    """
    model = stefan_boltzmann_model(catalog, stellar_map, seed=seed, **model_options)
    mcmc = model.sample(n_walkers=n_walkers, n_steps=n_steps, seed=seed, progress=progress)
    return StefanBoltzmannResult(mcmc, model)
