"""Is this object like the simulations? Out-of-distribution scores and a misspecification test.

A network trained on simulations answers for any input, also for one unlike
anything it was trained on. Two checks work in a *summary space* — the
network's own embedding/context vector, or its inputs — and need only the
summaries of the training set:

- :class:`OODReference` — per object: the Mahalanobis distance to the
  training summaries, or the distance to the k-th nearest one, turned into a conformal p-value by held-out training
  rows, so that at level α at most α of in-distribution objects are flagged.
  It is defined in :mod:`astrobayes.estimators.ood`, because every estimator
  fits one after training and keeps it in its files; it is re-exported here.
- :func:`mmd_test` — per population: a kernel two-sample test (maximum mean
  discrepancy, Gretton et al. 2012, JMLR 13, 723) of an observed sample
  against simulations, with a permutation p-value; used in summary space to
  detect model misspecification as proposed by Schmitt et al. (2023,
  "Detecting model misspecification in amortized Bayesian inference with
  neural networks", GCPR).
- :func:`c2st_test` — the same question answered by a classifier
  (Lopez-Paz & Oquab 2017): its held-out accuracy and a binomial p-value.
  Slower (it trains a network per fold), sometimes more powerful in many
  dimensions.
- :func:`ood_warning` — the one-line summary the domain functions warn with.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from ...core.validation import as_tensor
from ...estimators.ood import OODReference, _scale
from ._checks import _positive_int

__all__ = ["C2STResult", "MMDResult", "OOD_ALPHA", "OOD_DESCRIPTION", "OODReference", "c2st_test", "mmd_test",
           "ood_warning", "report_ood"]

#: level at which the domain functions (``classify``, ``estimate_mass``) flag objects
OOD_ALPHA = 0.01
#: description of the ``ood_p_value`` column of the domain tables
OOD_DESCRIPTION = ("conformal p-value that the network's summary of this object (its context vector) is like those "
                   "of its training simulations, from its distance to the training summaries (Mahalanobis or "
                   "k-th nearest neighbour): small = "
                   "unlike anything the network was trained on; on average a fraction α of objects like the "
                   "simulations have ood_p_value ≤ α")


def report_ood(table, p_values, *, note: str = "", objects: str = "objects", warn: bool = True,
               stacklevel: int = 3) -> None:
    """Put a domain table's OOD p-values where a user looks: the column, its meta, and the one-line warning.

    Sets the ``ood_p_value`` column (with :data:`OOD_DESCRIPTION`; an existing
    column keeps its place), ``meta["ood_alpha"]`` (:data:`OOD_ALPHA`) and
    ``meta["ood_flagged"]`` (objects with p ≤ α), ``meta["ood_note"]`` when
    ``note`` says why there are no p-values, and warns with
    :func:`ood_warning` when ``warn`` and any object is flagged.

    Parameters
    ----------
    table : astropy.table.Table
        The domain function's output, one row per object.
    p_values : array-like (n,)
        Each object's p-value (NaN where there is none).
    note : str
        Why the model has no reference ("" when it has one).
    objects : str
        What the rows are called in the warning ("clusters", "stars").
    warn : bool
        Warn when any object is flagged.
    stacklevel : int
        Of the warning: 3 points at the caller of the domain function.
    """
    from astropy.table import Table

    if not isinstance(table, Table):
        raise TypeError(f"table must be an astropy Table, got {type(table).__name__}")
    p = _p_values(p_values)
    if p.ndim != 1 or len(p) != len(table):
        raise ValueError(f"p_values must hold one p-value per row of the table ({len(table)}), got shape {p.shape}")
    table["ood_p_value"] = p
    table["ood_p_value"].info.description = OOD_DESCRIPTION
    table.meta.update({"ood_alpha": OOD_ALPHA, "ood_flagged": int((p <= OOD_ALPHA).sum())})
    if note:
        table.meta["ood_note"] = note
    message = ood_warning(p, alpha=OOD_ALPHA, objects=objects)
    if warn and message:
        warnings.warn(message, UserWarning, stacklevel=stacklevel)


def _p_values(p_values) -> np.ndarray:
    """``p_values`` as a float array (NaN allowed); a TypeError/ValueError when they are not numbers in [0, 1]."""
    try:
        p = np.asarray(p_values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"p_values must be numbers (NaN where there is none), got {p_values!r:.80} ({err})") from None
    outside = np.isfinite(p) & ((p < 0) | (p > 1)) | np.isinf(p)
    if outside.any():
        raise ValueError(f"p_values must lie in [0, 1] (or be NaN), got {p[outside][:5].tolist()}")
    return p


def ood_warning(p_values, *, alpha: float = OOD_ALPHA, objects: str = "objects") -> str | None:
    """The one-line warning for a catalogue's OOD p-values, or None when no object is flagged.

    Objects without a p-value (NaN) are not counted; a p-value outside [0, 1] is a ValueError.

    Parameters
    ----------
    p_values : array-like (n,)
        ``ood_p_value`` of each object.
    alpha : float
        An object is flagged when its p-value is ≤ ``alpha``.
    objects : str
        What the objects are called in the message ("clusters", "supernovae").

    Examples
    --------
    >>> ood_warning([0.5, 0.004, 0.2, 0.009, float("nan")], objects="clusters")  # doctest: +ELLIPSIS
    '2 of 4 clusters are unlike the training simulations at α = 0.01 (ood_p_value ≤ 0.01; about 1 % ...)'
    >>> ood_warning([0.5, 0.2]) is None
    True
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    p = _p_values(p_values)
    known = p[np.isfinite(p)]
    flagged = int((known <= alpha).sum())
    if flagged == 0:
        return None
    verb = "is" if flagged == 1 else "are"
    return (f"{flagged} of {known.size} {objects} {verb} unlike the training simulations at α = {alpha:g} "
            f"(ood_p_value ≤ {alpha:g}; about {100 * alpha:g} % of objects like the simulations are flagged "
            "by chance)")


# ---------------------------------------------------------------- population test
class MMDResult(NamedTuple):
    """Kernel two-sample test result.

    ``statistic`` is the unbiased MMD² estimate, ``p_value`` its permutation
    p-value, ``bandwidth`` the Gaussian kernel's width in pooled standardised
    units, ``n_observed``/``n_simulated`` the rows used after subsampling.
    """

    statistic: float
    p_value: float
    bandwidth: float
    n_observed: int
    n_simulated: int
    n_permutations: int


def _sample(value, name: str) -> torch.Tensor:
    data = as_tensor(value, name, ndim=(1, 2), dtype=torch.float64)
    data = data[:, None] if data.ndim == 1 else data
    if len(data) < 2:
        raise ValueError(f"{name} needs at least 2 rows for an unbiased MMD, got {len(data)}")
    return data


def mmd_test(observed, simulated, *, n_permutations: int = 500, bandwidth: float | str = "median",
             max_rows: int = 2000, seed: int = 0) -> MMDResult:
    """Kernel two-sample test: is ``observed`` distributed like ``simulated``?

    The unbiased estimate of the squared maximum mean discrepancy (Gretton
    et al. 2012, JMLR 13, 723, their eq. 3) with a Gaussian kernel
    exp(−|a − b|² / 2h²), and a permutation p-value
    (1 + #{permuted MMD² ≥ observed MMD²}) / (n_permutations + 1). Both
    samples are pooled and each column standardised by the pooled mean and
    standard deviation; with ``bandwidth="median"`` h is the median distance
    between distinct pooled rows (the median heuristic). Standardisation and
    bandwidth do not depend on the labels, so the test is exact: at level α
    it rejects at most a fraction α of samples drawn from one distribution.

    Applied to network summaries of a real catalogue and of simulations, a
    small p-value says the simulator is misspecified for these data
    (Schmitt et al. 2023, "Detecting model misspecification in amortized
    Bayesian inference with neural networks").

    Cost: each side is first subsampled (with ``seed``, without replacement)
    to at most ``max_rows`` rows; with n pooled rows the test takes O(n² d)
    for the kernel and O(n² · n_permutations) for the permutations — about
    a second at the defaults (n = 4000, 500 permutations) on one core.

    Parameters
    ----------
    observed : array-like (m, d) or (m,)
        Summaries of the observed objects.
    simulated : array-like (n, d) or (n,)
        Summaries of simulated objects.
    n_permutations : int
        Random relabellings; the smallest p-value is 1 / (n_permutations + 1).
    bandwidth : "median" or float
        Kernel width h in standardised units.
    max_rows : int
        Subsample each side to at most this many rows.
    seed : int or None
        Seeds the subsampling and the permutations (None: fresh entropy).

    Returns
    -------
    MMDResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> simulated = rng.normal(size=(200, 2))
    >>> round(mmd_test(rng.normal(size=(200, 2)), simulated, n_permutations=200).p_value, 2)
    0.86
    >>> shifted = mmd_test(rng.normal(size=(200, 2)) + [1.0, 0.0], simulated, n_permutations=200)
    >>> shifted.p_value == 1 / 201  # no relabelling reached the observed MMD²
    True
    """
    x, y = _sample(observed, "observed"), _sample(simulated, "simulated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"observed has {x.shape[1]} feature(s) per row but simulated has {y.shape[1]}")
    n_permutations = _positive_int(n_permutations, "n_permutations")
    max_rows = _positive_int(max_rows, "max_rows", 2)
    if not (bandwidth == "median" if isinstance(bandwidth, str) else
            isinstance(bandwidth, (int, float, np.integer, np.floating)) and not isinstance(bandwidth, bool)
            and math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be 'median' or a positive number, got {bandwidth!r}")
    if seed is not None:
        seed = _positive_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        x = x[torch.from_numpy(np.sort(rng.choice(len(x), max_rows, replace=False)))]
    if len(y) > max_rows:
        y = y[torch.from_numpy(np.sort(rng.choice(len(y), max_rows, replace=False)))]
    m, n = len(x), len(y)
    pooled = torch.cat([x, y])
    location, scale = pooled.mean(dim=0), _scale(pooled)
    if not (torch.isfinite(location).all() and torch.isfinite(scale).all()):
        raise ValueError("observed and simulated hold values too large to standardise in float64 (their pooled mean "
                         "or standard deviation overflows): rescale them (e.g. take a logarithm)")
    pooled = (pooled - location) / scale
    squared = torch.cdist(pooled, pooled).square_()
    squared.fill_diagonal_(0.0)
    if bandwidth == "median":
        upper = squared[torch.triu_indices(m + n, m + n, offset=1).unbind()]
        positive = upper[upper > 0]
        if len(positive) == 0:  # every row identical: nothing can tell the samples apart
            return MMDResult(0.0, 1.0, float("nan"), m, n, n_permutations)
        h = float(torch.median(upper).sqrt())
        if h == 0:  # more than half the pairs tie: take the median of the non-zero distances instead
            h = float(torch.median(positive).sqrt())
    else:
        h = float(bandwidth)
    kernel = torch.exp_(squared.div_(h).div_(h).mul_(-0.5))  # not / h**2: h**2 under- or overflows for extreme h
    row_sums = kernel.sum(dim=1)
    total = float(row_sums.sum())
    # column 0 is the observed labelling, the others random relabellings: all go through one formula
    statistics = []
    for start in range(0, n_permutations + 1, 256):
        columns = range(start, min(start + 256, n_permutations + 1))
        members = torch.zeros(m + n, len(columns), dtype=torch.float64)
        for j, column in enumerate(columns):
            chosen = np.arange(m) if column == 0 else rng.permutation(m + n)[:m]
            members[torch.from_numpy(chosen), j] = 1.0
        within_x = (members * (kernel @ members)).sum(dim=0)  # s_x' K s_x
        cross = row_sums @ members - within_x                 # s_x' K s_y
        within_y = total - 2 * (row_sums @ members) + within_x  # s_y' K s_y
        statistics.append((within_x - m) / (m * (m - 1)) + (within_y - n) / (n * (n - 1)) - 2 * cross / (m * n))
    statistics = torch.cat(statistics).numpy()
    observed_statistic = float(statistics[0])
    p_value = (1.0 + np.sum(statistics[1:] >= observed_statistic)) / (n_permutations + 1.0)
    return MMDResult(observed_statistic, float(p_value), h, m, n, n_permutations)


class C2STResult(NamedTuple):
    """Classifier two-sample test result.

    ``accuracy`` is the cross-validated held-out accuracy of telling the two
    (equal-sized) samples apart, ``p_value`` the one-sided binomial p-value
    of that many correct labels out of ``n_observed + n_simulated`` coin
    flips, ``n_observed``/``n_simulated`` the rows used.
    """

    accuracy: float
    p_value: float
    n_observed: int
    n_simulated: int


def c2st_test(observed, simulated, *, max_rows: int = 1000, n_folds: int = 5, seed: int = 0,
              **training) -> C2STResult:
    """Classifier two-sample test: can a network tell ``observed`` from ``simulated``?

    The larger side is subsampled (with ``seed``) to the size of the smaller,
    and both to at most ``max_rows``, so that chance accuracy is exactly 1/2.
    :func:`~astrobayes.inference.diagnostics.c2st` trains a classifier on
    ``n_folds`` − 1 folds and labels the held-out one, so that every row is
    labelled once by a network that never saw it. Under the null hypothesis
    each label is right with probability 1/2, and the number right out of N
    rows is close to Binomial(N, 1/2) (Lopez-Paz & Oquab 2017, "Revisiting
    classifier two-sample tests", ICLR, sec. 2); the p-value is its upper
    tail. Use :func:`mmd_test` first: it is exact and faster; this one
    trains ``n_folds`` networks.

    Parameters
    ----------
    observed, simulated : array-like (m, d) or (m,)
        Summaries of the observed objects and of simulated ones.
    max_rows : int
        At most this many rows from each side.
    n_folds : int
        Cross-validation folds.
    seed : int
        Seeds the subsampling, the folds and the training.
    **training
        Training options of the classifiers (``epochs``, ``patience``, ...).

    Returns
    -------
    C2STResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> result = c2st_test(rng.normal(size=(300, 2)) + [1.5, 0.0], rng.normal(size=(300, 2)), epochs=30)
    >>> bool(result.accuracy > 0.7), bool(result.p_value < 1e-6)
    (True, True)
    """
    from scipy.stats import binom

    from .c2st import c2st

    x, y = _sample(observed, "observed"), _sample(simulated, "simulated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"observed has {x.shape[1]} feature(s) per row but simulated has {y.shape[1]}")
    max_rows = _positive_int(max_rows, "max_rows", 2)
    n_folds = _positive_int(n_folds, "n_folds", 2)
    seed = _positive_int(seed, "seed", 0)
    rows = min(len(x), len(y), max_rows)
    if rows < 2 * n_folds:
        raise ValueError(f"c2st_test with {n_folds} folds needs at least {2 * n_folds} rows on each side, got "
                         f"{len(x)} observed and {len(y)} simulated")
    rng = np.random.default_rng(seed)
    x = x[torch.from_numpy(np.sort(rng.choice(len(x), rows, replace=False)))].numpy()
    y = y[torch.from_numpy(np.sort(rng.choice(len(y), rows, replace=False)))].numpy()
    accuracy = c2st(y, x, seed=seed, n_folds=n_folds, **training)
    total = 2 * rows
    correct = int(round(accuracy * total))
    return C2STResult(float(accuracy), float(binom.sf(correct - 1, total, 0.5)), rows, rows)
