"""The inference layer: priors, the emcee glue and calibration diagnostics.

Turns trained estimators into Bayesian answers. This layer imports
``astrobayes.estimators`` and ``astrobayes.core``, never the reverse.
"""
from . import diagnostics
from .priors import BoxUniform, JointPrior, LogUniform, Normal, Uniform
from .sampling import MCMCResult, run_emcee

__all__ = ["diagnostics", "BoxUniform", "JointPrior", "LogUniform", "Normal", "Uniform", "MCMCResult", "run_emcee"]
