"""Galaxy stamps: FITS I/O, a differentiable Sérsic forward model, structural inference and generative models.

* :mod:`~astrobayes.galaxies.io` — the :class:`Stamps` collection (masks, noise maps, WCS), FITS cutouts and
  cubes, :func:`cut_stamps` around catalog positions, reversible :class:`StampScaler` normalisation;
* :mod:`~astrobayes.galaxies.data` — the real data shipped in ``catalogs/galaxies/``: Hubble Deep Field stamps,
  the GalSim COSMOS sample with its Sérsic fits and PSFs;
* :mod:`~astrobayes.galaxies.render` — a batched torch renderer of PSF-convolved Sérsic profiles;
* :mod:`~astrobayes.galaxies.simulate` — observing set-ups (:class:`StampSimulator`), priors, mock stamps;
* :mod:`~astrobayes.galaxies.structure` — amortized NPE of Sérsic parameters, per-galaxy emcee with the
  renderer as a delta map, and a size–luminosity population model;
* :mod:`~astrobayes.galaxies.morphology` — model-free statistics (flux, r50, ellipticity, concentration,
  asymmetry) and their distribution distances, to judge generated galaxies against real ones.

The generative models themselves (:class:`~astrobayes.estimators.ConvVAE`,
:class:`~astrobayes.estimators.WGANGP`) are general estimators in
:mod:`astrobayes.estimators.generative`; :func:`train_generative` fits them
to stamps through a reversible scaling.
"""
from .data import (COSMOS_CATALOG, COSMOS_FITS, COSMOS_GALAXY, COSMOS_GALAXY_PSF, COSMOS_PIXEL_SCALE, COSMOS_PSFS,
                   HDF_IMAGE, cosmos_galaxy, detect_sources, hubble_deep_field, read_cosmos_catalog, read_cosmos_psfs,
                   sersic_total_flux)
from .io import Stamps, StampScaler, cut_stamps, read_stamps, write_stamps
from .morphology import (DEFAULT_STATISTICS, MORPHOLOGY_STATISTICS, compare_morphology, ks_critical_value,
                         measure_morphology, plot_morphology, shuffled_baseline)
from .render import (PARAMETERS, SersicRenderer, add_noise, axis_ratio_angle, ellipticity_components, gaussian_psf,
                     moffat_psf, render_sersic, sersic_b)
from .simulate import StampSimulator, signal_to_noise, simulate_stamps, stamp_features, structural_prior, truth_table
from .structure import (SizeLuminosityModel, StructurePosterior, find_map, fit_size_luminosity, fit_stamp_mcmc,
                        posterior_table, simulate_size_luminosity, stamp_log_posterior, train_structure_posterior)

__all__ = [
    "Stamps", "StampScaler", "cut_stamps", "read_stamps", "write_stamps",
    "COSMOS_CATALOG", "COSMOS_FITS", "COSMOS_GALAXY", "COSMOS_GALAXY_PSF", "COSMOS_PIXEL_SCALE", "COSMOS_PSFS",
    "HDF_IMAGE", "cosmos_galaxy", "detect_sources", "hubble_deep_field", "read_cosmos_catalog", "read_cosmos_psfs",
    "sersic_total_flux",
    "DEFAULT_STATISTICS", "MORPHOLOGY_STATISTICS", "compare_morphology", "ks_critical_value", "measure_morphology",
    "plot_morphology", "shuffled_baseline",
    "PARAMETERS", "SersicRenderer", "add_noise", "axis_ratio_angle", "ellipticity_components", "gaussian_psf",
    "moffat_psf", "render_sersic", "sersic_b",
    "StampSimulator", "signal_to_noise", "simulate_stamps", "stamp_features", "structural_prior", "truth_table",
    "SizeLuminosityModel", "StructurePosterior", "find_map", "fit_size_luminosity", "fit_stamp_mcmc",
    "posterior_table", "simulate_size_luminosity", "stamp_log_posterior", "train_structure_posterior",
]
