"""The inference layer: priors, NPE/NLE, the emcee glue and calibration diagnostics.

Turns trained estimators into Bayesian answers. This layer imports
``astrobayes.estimators`` and ``astrobayes.core``, never the reverse.
"""
from . import diagnostics
from .nle import NLE, Likelihood
from .npe import NPE, Posterior
from .priors import BoxUniform, JointPrior, LogUniform, Normal, Uniform
from .sampling import MCMCResult, run_emcee

__all__ = [
    "diagnostics", "NPE", "Posterior", "NLE", "Likelihood", "BoxUniform", "JointPrior", "LogUniform", "Normal",
    "Uniform", "MCMCResult", "run_emcee",
]
