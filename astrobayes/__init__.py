"""astrobayes: from survey data to calibrated Bayesian answers with neural networks."""
__version__ = "0.1.0"

from . import inference
from .core import Masked, ModelFileError, load, resolve_device, seed_everything
from .estimators import (HMCBNN, CNNEmbedding, Classifier, ConditionalFlow, DeepEnsemble, DeepSetEmbedding,
                         History, MCDropout, MixtureDensityNetwork, MLPEmbedding, Prediction, Regressor,
                         RNNEmbedding, TrainingConfig, VariationalBNN)

__all__ = [
    "__version__", "inference", "Masked", "ModelFileError", "load", "resolve_device", "seed_everything",
    "Regressor", "Classifier", "MixtureDensityNetwork", "ConditionalFlow", "DeepEnsemble", "MCDropout",
    "VariationalBNN", "HMCBNN", "MLPEmbedding", "CNNEmbedding", "RNNEmbedding", "DeepSetEmbedding",
    "History", "Prediction", "TrainingConfig",
]
