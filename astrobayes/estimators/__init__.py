"""Standard neural estimators on one protocol: fit, log_prob, sample, predict, save/load.

Importing this package registers every estimator and embedding, so that
``astrobayes.load(path)`` can rebuild any of them.
"""
from .base import Estimator, FeatureNetwork, Prediction
from .bayesian import VariationalBNN
from .classifier import Classifier
from .distributed import DistributedContext, distributed_context, fit_distributed
from .embeddings import CNNEmbedding, DeepSetEmbedding, MLPEmbedding, RNNEmbedding
from .ensemble import DeepEnsemble, MCDropout, Uncertainty
from .flows import ConditionalFlow
from .generative import WGANGP, ConvVAE, GANHistory, gradient_penalty
from .healpix import ChebConv, HealpixEmbedding, healpix_laplacian, healpix_pool, to_nest
from .hmc import HMCBNN, hamiltonian_monte_carlo
from .mdn import MixtureComponents, MixtureDensityNetwork
from .ood import ContextRecorder, OODReference
from .metrics import (expected_calibration_error, plot_reliability, purity_efficiency, reliability_curve,
                      roc_auc)
from .regression import Regressor
from .training import History, TrainingConfig, TrainingInterrupted, checkpointing, fit_module, training_config

__all__ = [
    "Estimator", "FeatureNetwork", "Prediction", "Regressor", "Classifier", "MixtureDensityNetwork",
    "MixtureComponents", "ConditionalFlow", "DeepEnsemble", "MCDropout", "Uncertainty", "VariationalBNN",
    "HMCBNN", "hamiltonian_monte_carlo", "MLPEmbedding", "CNNEmbedding", "RNNEmbedding", "DeepSetEmbedding",
    "expected_calibration_error", "plot_reliability", "purity_efficiency", "reliability_curve", "roc_auc",
    "History", "TrainingConfig", "TrainingInterrupted", "checkpointing", "fit_module", "training_config",
    "ConvVAE", "WGANGP", "GANHistory",
    "gradient_penalty", "HealpixEmbedding", "ChebConv", "healpix_laplacian", "healpix_pool", "to_nest",
    "DistributedContext", "distributed_context", "fit_distributed", "ContextRecorder", "OODReference",
]
