"""Calibration diagnostics for posteriors, whatever produced them.

Every function works on plain arrays — true parameters ``prior_samples``
(N, d) drawn from the prior, and for each of them ``posterior_samples``
(N, L, d) drawn from the posterior given the data simulated at that
parameter — so an NPE, an MCMC run or an analytic posterior are checked
the same way.

- :mod:`.ranks` — simulation-based calibration (Talts et al. 2018,
  arXiv:1804.06788): the rank of the true θ among L posterior draws is
  uniform on 0..L when the posterior is exact.
- :mod:`.coverage` — expected coverage of per-parameter credible intervals.
- :mod:`.tarp` — TARP (Lemos et al. 2023, "Sampling-Based Accuracy Testing
  of Posterior Estimators for General Inference", ICML): joint coverage of
  distance balls around random reference points.
- :mod:`.c2st` — C2ST (Lopez-Paz & Oquab 2017; as in sbibm, Lueckmann et al.
  2021): accuracy of a classifier telling two sample sets apart.
- :mod:`.ppc` — posterior predictive checks (Gelman, Meng & Stern 1996).
- :mod:`.ood` — is an object, or a whole sample, like the training
  simulations? Per-object conformal p-values from k-nearest-neighbour
  distances in a summary space (:class:`OODReference`) and a kernel (MMD)
  two-sample test for model misspecification (Gretton et al. 2012; Schmitt
  et al. 2023). These take summaries (N, d) rather than posterior draws;
  every fitted estimator keeps an :class:`OODReference` of its own
  (``estimator.ood``, ``estimator.ood_p_value(x)``).

The functions ``c2st`` and ``tarp`` share their names with the submodules
that define them; the package attribute is the function.
"""
from .c2st import c2st
from .coverage import CoverageResult, expected_coverage, plot_coverage
from .ood import OOD_ALPHA, C2STResult, MMDResult, OODReference, c2st_test, mmd_test, ood_warning
from .ppc import PPCResult, plot_ppc, posterior_predictive_check
from .ranks import SBCResult, plot_sbc_ranks, sbc_ranks, sbc_uniformity
from .tarp import TARPResult, plot_tarp, tarp, tarp_distance

__all__ = ["C2STResult", "CoverageResult", "MMDResult", "OOD_ALPHA", "OODReference", "PPCResult", "SBCResult",
           "TARPResult", "c2st", "c2st_test", "expected_coverage", "mmd_test", "plot_coverage", "plot_ppc", "plot_sbc_ranks", "plot_tarp",
           "ood_warning", "posterior_predictive_check", "sbc_ranks", "sbc_uniformity", "tarp", "tarp_distance"]
