"""Standard neural estimators on one protocol: fit, log_prob, sample, predict, save/load."""
from .base import Estimator, FeatureNetwork, Prediction
from .regression import Regressor
from .training import History, TrainingConfig, fit_module, training_config

__all__ = ["Estimator", "FeatureNetwork", "Prediction", "Regressor", "History", "TrainingConfig",
           "fit_module", "training_config"]
