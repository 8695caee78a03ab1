"""Supernova lightcurves: readers, a simulator, recurrent classifiers with calibrated probabilities, and BEAMS.

* :mod:`~astrobayes.supernovae.io` — the :class:`Lightcurves` collection, long-format tables, ECSV files;
* :mod:`~astrobayes.supernovae.snana` — SNANA text files (SNPhotCC) and truth keys;
* :mod:`~astrobayes.supernovae.simulate` — parametric (Bazin-type) multi-band lightcurves with known classes;
* :mod:`~astrobayes.supernovae.features` — sequences for recurrent networks (Charnock & Moss 2017 preprocessing);
* :mod:`~astrobayes.supernovae.model` — bidirectional GRU/LSTM classifiers, MC dropout, ensembles,
  temperature scaling, :func:`classify`;
* :mod:`~astrobayes.supernovae.evaluate` — accuracy, AUC, purity/efficiency, F1 (SNPhotCC), calibration,
  partial-lightcurve performance;
* :mod:`~astrobayes.supernovae.cosmology` — flat-wCDM distance moduli, vectorised for emcee;
* :mod:`~astrobayes.supernovae.beams` — the BEAMS mixture fit of the Hubble diagram (Kunz, Bassett & Hlozek 2007).

Real data ship in ``catalogs/supernovae/``: a 4000-object subset of the
SNPhotCC DES simulations (Kessler et al. 2010) as used by Charnock & Moss (2017)
(:data:`SPCC_CATALOG`), and twelve original SNANA files of the same release
with their truth key (:data:`SPCC_SAMPLE`, :data:`SPCC_TRUTH`). The paths point
into the source checkout (``pip install -e .``, as the README sets up). For
these data, classify with the host photo-z of every object,
``redshift_columns=HOST_PHOTOZ`` (see :class:`SequenceConfig`).
"""
from pathlib import Path

from .cosmology import distance_modulus
from .beams import BEAMSModel, fit_beams, fit_naive, plot_hubble_diagram, simulate_hubble_sample
from .evaluate import (classification_metrics, early_epoch, partial_lightcurve_performance, plot_partial_performance,
                       plot_roc, roc_curve)
from .features import SequenceConfig, Sequences, build_sequences, group_epochs
from .model import (ESTIMATORS, TASKS, SupernovaClassifier, classify, fit_temperature, load_classifier, task_labels,
                    train_classifier)
from .simulate import CLASS_MODELS, ClassModel, bazin_flux, bazin_peak_time, simulate_lightcurves, true_flux
from .io import (CLASS_NAMES, TYPE_CLASSES, Lightcurves, class_of_type, read_lightcurve_table, read_lightcurves,
                 write_lightcurves)
from .snana import read_snana, read_truth_key

_CATALOGS = Path(__file__).resolve().parents[2] / "catalogs" / "supernovae"
#: the shipped 4000-object SNPhotCC subset (observations file; its ``_meta`` file sits beside it)
SPCC_CATALOG = _CATALOGS / "spcc_des_subset.ecsv.gz"
#: a folder of twelve original SNANA ``.DAT`` files from the SNPhotCC DES simulations
SPCC_SAMPLE = _CATALOGS / "snana_sample"
#: the truth key (types of the unlabelled objects) for :data:`SPCC_SAMPLE`
SPCC_TRUTH = _CATALOGS / "snana_sample" / "TRUTH.KEY"
#: the metadata columns of the host-galaxy photo-z and its error, for every SNPhotCC object
HOST_PHOTOZ = ("host_photoz", "host_photoz_err")

__all__ = [
    "CLASS_NAMES", "TYPE_CLASSES", "Lightcurves", "class_of_type", "read_lightcurve_table", "read_lightcurves",
    "read_snana", "read_truth_key", "write_lightcurves", "SPCC_CATALOG", "SPCC_SAMPLE", "SPCC_TRUTH", "HOST_PHOTOZ",
    "classification_metrics", "early_epoch", "partial_lightcurve_performance", "plot_partial_performance", "plot_roc",
    "roc_curve", "SequenceConfig", "Sequences", "build_sequences", "group_epochs", "ESTIMATORS", "TASKS",
    "SupernovaClassifier", "classify", "fit_temperature", "load_classifier", "task_labels", "train_classifier",
    "CLASS_MODELS", "ClassModel", "bazin_flux", "bazin_peak_time", "simulate_lightcurves", "true_flux",
    "BEAMSModel", "distance_modulus", "fit_beams", "fit_naive", "plot_hubble_diagram", "simulate_hubble_sample",
]
