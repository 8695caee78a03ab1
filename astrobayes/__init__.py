"""astrobayes: from survey data to calibrated Bayesian answers with neural networks."""
__version__ = "0.1.0"

from .core import Masked, ModelFileError, load, resolve_device, seed_everything
from .estimators import History, Prediction, Regressor, TrainingConfig

__all__ = ["__version__", "Masked", "ModelFileError", "load", "resolve_device", "seed_everything",
           "History", "Prediction", "Regressor", "TrainingConfig"]
