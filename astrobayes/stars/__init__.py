"""Stellar luminosities: the Stefan–Boltzmann hierarchical model with a learned stellar map.

* :mod:`~astrobayes.stars.zams` — the exact Tout et al. (1996) zero-age main-sequence fits (the "expensive model");
* :mod:`~astrobayes.stars.evolution` — the Hurley, Pols & Tout (2000) main sequence: the stars at a fractional age τ;
* :mod:`~astrobayes.stars.emulator` — the network trained on them, its error map, and its DeltaMap;
* :mod:`~astrobayes.stars.population` — IMFs and metallicity distributions, p(log M, [Fe/H] | α);
* :mod:`~astrobayes.stars.io` — reading and validating stellar catalogues with units;
* :mod:`~astrobayes.stars.debcat` — DEBCat, the eclipsing binaries with dynamical masses, shipped and read;
* :mod:`~astrobayes.stars.predict` — the map applied to real stars, with flags where it cannot be trusted;
* :mod:`~astrobayes.stars.residuals` — measured against predicted R and T_eff, and each star's best age τ;
* :mod:`~astrobayes.stars.simulate` — mock fields with a known σ;
* :mod:`~astrobayes.stars.grid` — the per-star integrals by exact quadrature (luminosities only);
* :mod:`~astrobayes.stars.measured_masses` — σ from stars with dynamical masses (:class:`MeasuredMassModel`);
* :mod:`~astrobayes.stars.model` — the hierarchical model and :func:`infer_stefan_boltzmann`.
"""
from .evolution import (AGE_OF_UNIVERSE, TAU_RANGE, fractional_age, main_sequence_lifetime, max_fractional_age,
                        ms_log_radius_teff, ms_luminosity, ms_radius, ms_table, ms_teff)
from .emulator import (DEFAULT_EVOLVING_LOG_MASS_RANGE, DEFAULT_FEH_RANGE, DEFAULT_LOG_MASS_RANGE, STELLAR_MAP_INPUTS,
                       STELLAR_MAP_INPUTS_EVOLVING, STELLAR_MAP_MODELS, STELLAR_MAP_OUTPUTS,
                       exact_stellar_delta_map, load_stellar_map, plot_stellar_map_errors, save_stellar_map,
                       stellar_delta_map, stellar_map_errors, train_stellar_map)
from .grid import LuminosityGridModel
from .measured_masses import TAU_PRIORS, MeasuredMassModel
from .io import read_stellar_catalog, write_stellar_catalog
from .debcat import DEBCAT_CITATION, DEBCAT_PATH, read_debcat
from .predict import DOMAIN_FLAGS, predict_stars
from .residuals import fit_fractional_age, plot_residuals, summarize_residuals
from .model import StefanBoltzmannResult, default_priors, infer_stefan_boltzmann, stefan_boltzmann_model
from .population import (StellarPopulation, kroupa_imf_log_prob, metallicity_log_prob, powerlaw_imf_log_prob,
                         sample_kroupa_imf, sample_metallicity, sample_powerlaw_imf)
from .simulate import SIGMA_UNIT, default_population, luminosity_from_sigma, simulate_field
from .zams import Z_SUN_MODEL, feh_to_metallicity, zams_log_radius_teff, zams_luminosity, zams_radius, zams_table, zams_teff

__all__ = [
    "DEBCAT_CITATION", "DEBCAT_PATH", "DOMAIN_FLAGS", "fit_fractional_age", "plot_residuals", "predict_stars",
    "read_debcat", "summarize_residuals",
    "AGE_OF_UNIVERSE", "TAU_RANGE", "DEFAULT_EVOLVING_LOG_MASS_RANGE", "STELLAR_MAP_INPUTS_EVOLVING",
    "STELLAR_MAP_MODELS", "fractional_age", "main_sequence_lifetime", "max_fractional_age",
    "ms_log_radius_teff", "ms_luminosity", "ms_radius", "ms_table", "ms_teff",
    "DEFAULT_FEH_RANGE", "DEFAULT_LOG_MASS_RANGE", "STELLAR_MAP_INPUTS", "STELLAR_MAP_OUTPUTS", "SIGMA_UNIT",
    "Z_SUN_MODEL", "LuminosityGridModel", "StefanBoltzmannResult", "StellarPopulation", "default_population", "default_priors",
    "MeasuredMassModel", "TAU_PRIORS",
    "exact_stellar_delta_map", "feh_to_metallicity", "infer_stefan_boltzmann", "kroupa_imf_log_prob",
    "load_stellar_map", "luminosity_from_sigma", "metallicity_log_prob", "plot_stellar_map_errors",
    "powerlaw_imf_log_prob", "read_stellar_catalog", "sample_kroupa_imf", "sample_metallicity", "sample_powerlaw_imf",
    "save_stellar_map", "simulate_field", "stefan_boltzmann_model", "stellar_delta_map", "stellar_map_errors",
    "train_stellar_map", "write_stellar_catalog", "zams_log_radius_teff", "zams_luminosity", "zams_radius",
    "zams_table", "zams_teff",
]
