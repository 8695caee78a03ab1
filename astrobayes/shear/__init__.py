"""Cosmic shear on the HEALPix sphere: convergence and shear maps, their summaries and simulations."""
from .summaries import (BandPowers, MinkowskiFunctionals, Summaries, ell_bins, find_peaks, gaussian_minkowski,
                        minkowski_functionals, peak_counts, pseudo_cl, summary_statistics)
from .background import comoving_distance, growth_factor
from .cosmology import ICOSMO_REFERENCE, convergence_cl, read_icosmo_reference, smail_nz
from .halofit import nonlinear_power
from .power import eisenstein_hu_transfer, linear_power
from .inference import (PARAMETERS, BandPowerLikelihood, ShearSurvey, estimate_cosmology, fit_band_powers, s8,
                        shear_prior, train_band_power_emulator, train_shear_posterior)
from .maps import MAP_FIELDS, PIXEL_FIELDS, ShearMap, catalog_to_maps, read_maps, write_maps
from .simulate import (DEFAULT_SHIFT, ShearSimulator, gaussian_alm, gaussian_kappa_map, gaussian_to_lognormal_cl,
                       kappa_to_shear, lognormal_kappa_map, lognormal_to_gaussian_cl, shape_noise_sigma,
                       shear_to_kappa, simulate_maps, survey_mask)

__all__ = [
    "BandPowers", "MinkowskiFunctionals", "Summaries", "ell_bins", "pseudo_cl", "find_peaks", "peak_counts",
    "minkowski_functionals", "gaussian_minkowski", "summary_statistics",
    "convergence_cl", "linear_power", "nonlinear_power", "smail_nz", "comoving_distance", "growth_factor",
    "eisenstein_hu_transfer", "ICOSMO_REFERENCE", "read_icosmo_reference",
    "ShearMap", "read_maps", "write_maps", "catalog_to_maps", "MAP_FIELDS", "PIXEL_FIELDS",
    "ShearSimulator", "simulate_maps", "gaussian_alm", "gaussian_kappa_map", "lognormal_kappa_map",
    "lognormal_to_gaussian_cl", "gaussian_to_lognormal_cl", "kappa_to_shear", "shear_to_kappa",
    "shape_noise_sigma", "survey_mask", "DEFAULT_SHIFT",
    "PARAMETERS", "ShearSurvey", "shear_prior", "s8", "train_band_power_emulator", "BandPowerLikelihood",
    "fit_band_powers", "train_shear_posterior", "estimate_cosmology",
]
