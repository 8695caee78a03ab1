"""astrobayes: from survey data to calibrated Bayesian answers with neural networks."""
__version__ = "0.1.0"

import importlib

# The public names are imported on first use (PEP 562), so that ``import astrobayes`` does not wait for torch:
# the ``astrobayes`` command starts at once and an interrupt during its start-up is its own to report.
_PUBLIC = {
    **dict.fromkeys(("Masked", "ModelFileError", "load", "resolve_device", "seed_everything"), ".core"),
    **dict.fromkeys(("HMCBNN", "CNNEmbedding", "Classifier", "ConditionalFlow", "DeepEnsemble", "DeepSetEmbedding",
                     "History", "MCDropout", "MixtureDensityNetwork", "MLPEmbedding", "Prediction", "Regressor",
                     "RNNEmbedding", "TrainingConfig", "VariationalBNN"), ".estimators"),
}
_SUBPACKAGES = ("catalog", "cli", "clusters", "core", "demo", "estimators", "galaxies", "inference", "recipes",
                "shear", "stars", "supernovae")


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'astrobayes' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))

__all__ = [
    "__version__", "inference", "Masked", "ModelFileError", "load", "resolve_device", "seed_everything",
    "Regressor", "Classifier", "MixtureDensityNetwork", "ConditionalFlow", "DeepEnsemble", "MCDropout",
    "VariationalBNN", "HMCBNN", "MLPEmbedding", "CNNEmbedding", "RNNEmbedding", "DeepSetEmbedding",
    "History", "Prediction", "TrainingConfig",
]
