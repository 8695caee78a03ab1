"""The inference layer: priors, NPE/NLE, delta maps in hierarchical models, the emcee glue and diagnostics.

Turns trained estimators into Bayesian answers. This layer imports
``astrobayes.estimators`` and ``astrobayes.core``, never the reverse.
"""
from . import diagnostics
from .delta import DeltaMap
from .hierarchical import HierarchicalModel
from .importance import defensive_proposal
from .nle import NLE, Likelihood
from .npe import NPE, Posterior
from .npe_importance import ImportanceResult, importance_sample
from .priors import BoxUniform, JointPrior, LogUniform, Normal, Uniform
from .sampling import MCMCResult, run_emcee
from .sequential import TruncatedPrior, truncated_sequential_npe

__all__ = [
    "diagnostics", "NPE", "Posterior", "NLE", "Likelihood", "BoxUniform", "JointPrior", "LogUniform", "Normal",
    "Uniform", "MCMCResult", "run_emcee", "DeltaMap", "HierarchicalModel", "defensive_proposal",
    "TruncatedPrior", "truncated_sequential_npe", "ImportanceResult", "importance_sample",
]
