"""Galaxy clusters: dynamical masses from member galaxies, prior reweighting and mass–observable relations.

* :mod:`~astrobayes.clusters.io` — member-galaxy catalogs with units (ECSV/FITS/CSV/pandas);
* :mod:`~astrobayes.clusters.fields` — redshift fields (NED pipe tables) and the shipped Coma field;
* :mod:`~astrobayes.clusters.membership` — cylinder selection and interloper rejection (shifting gapper, 3σ clipping);
* :mod:`~astrobayes.clusters.halos` — mass function, R200c, concentration, σ–M and richness–mass relations;
* :mod:`~astrobayes.clusters.simulate` — mock member catalogs with known masses;
* :mod:`~astrobayes.clusters.features` — dispersions, radius statistics, phase-space images, member sets;
* :mod:`~astrobayes.clusters.model` — mass networks (MDN, MSE regressor, flow + DeepSet, ensembles, MC dropout)
  and the σ–M power-law baseline;
* :mod:`~astrobayes.clusters.massgrid` — densities of log M on a grid: normalisation, CDF, quantiles;
* :mod:`~astrobayes.clusters.reweight` — prior reweighting, per-cluster likelihoods and :func:`estimate_mass`;
* :mod:`~astrobayes.clusters.hierarchical` — the richness–mass relation from many clusters, with emcee;
* :mod:`~astrobayes.clusters.plotting` — phase-space plots, predicted against true masses, posteriors.

Networks are trained and tested on :func:`simulate_clusters`; a real member
catalog is read with :func:`read_member_catalog`, and a real redshift field —
such as the NED field around the Coma cluster shipped as :data:`COMA_FIELD` —
with :func:`read_redshift_field`, whose members :func:`members_from_field`
selects (cylinder and interloper rejection, :mod:`~astrobayes.clusters.membership`).
Distances to real clusters use :data:`COSMOLOGY` (flat ΛCDM, h = 0.7, Ω_m = 0.3),
the h of the mocks; masses are M200c in M_sun at h = 0.7 (:func:`to_h_inverse`
converts to h⁻¹ M_sun).
"""
from .features import (DEFAULT_MIN_MEMBERS, FEATURE_NAMES, MAX_CLUSTER_RADIUS, MAX_CLUSTER_VELOCITY,
                       MIN_CLUSTER_VELOCITY, cluster_features, feature_matrix, gapper_dispersion, match_clusters,
                       member_sets, phase_space_images)
from .halos import (COSMOLOGY, DEFAULT_LOG_MASS_RANGE, MassFunction, RichnessMassRelation, concentration_duffy08,
                    describe_cosmology, from_h_inverse, r200c, to_h_inverse, velocity_dispersion_evrard08)
from .io import MEMBER_COLUMNS, check_unique_galaxies, projected_radius, read_member_catalog, velocity_from_redshift, write_member_catalog
from .fields import COMA_CENTRE, COMA_FIELD, read_redshift_field
from .membership import DEFAULT_REJECTION, REJECTION_METHODS, members_from_field, reject_interlopers
from .model import ESTIMATORS, INPUTS, ClusterMassModel, SigmaMassBaseline, load_mass_model, train_mass_model
from .model import DEFAULT_TRAINING_CLUSTERS
from .hierarchical import RichnessMassModel, infer_richness_mass
from .plotting import plot_mass_posteriors, plot_mass_predictions, plot_phase_space
from .massgrid import grid_cdf, grid_quantiles
from .reweight import dynamical_log_likelihoods, estimate_mass, log_likelihood_grid, quoting_range, reweight
from .simulate import DEFAULT_APERTURE, DEFAULT_V_CUT, sample_nfw_radii, simulate_clusters
from .simulate import DEFAULT_INTERLOPER_RATIO, DEFAULT_N_REDSHIFTS, SAMPLINGS, TRAINING_MASS_FUNCTION
from .features import interloper_rejection

__all__ = [
    "ESTIMATORS", "INPUTS", "ClusterMassModel", "SigmaMassBaseline", "load_mass_model", "train_mass_model",
    "estimate_mass", "grid_cdf", "grid_quantiles", "log_likelihood_grid", "reweight", "dynamical_log_likelihoods",
    "quoting_range", "RichnessMassModel", "infer_richness_mass", "plot_mass_posteriors", "plot_mass_predictions",
    "plot_phase_space",
    "DEFAULT_TRAINING_CLUSTERS", "DEFAULT_INTERLOPER_RATIO", "DEFAULT_N_REDSHIFTS", "SAMPLINGS",
    "TRAINING_MASS_FUNCTION", "interloper_rejection",
    "DEFAULT_APERTURE", "DEFAULT_LOG_MASS_RANGE", "DEFAULT_MIN_MEMBERS", "DEFAULT_V_CUT", "FEATURE_NAMES",
    "MEMBER_COLUMNS", "check_unique_galaxies", "MassFunction", "RichnessMassRelation", "cluster_features", "concentration_duffy08",
    "feature_matrix", "match_clusters", "MAX_CLUSTER_VELOCITY", "gapper_dispersion", "member_sets", "phase_space_images", "projected_radius", "r200c",
    "MAX_CLUSTER_RADIUS", "MIN_CLUSTER_VELOCITY",
    "read_member_catalog", "sample_nfw_radii", "simulate_clusters", "velocity_dispersion_evrard08",
    "velocity_from_redshift", "write_member_catalog",
    "COMA_CENTRE", "COMA_FIELD", "COSMOLOGY", "DEFAULT_REJECTION", "REJECTION_METHODS", "describe_cosmology",
    "from_h_inverse", "members_from_field", "read_redshift_field", "reject_interlopers", "to_h_inverse",
]
