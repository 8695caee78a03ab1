"""Is this object like the simulations? Out-of-distribution scores and a misspecification test.

A network trained on simulations answers for any input, also for one unlike
anything it was trained on. Two checks work in a *summary space* — the
network's own embedding/context vector, or its inputs — and need only the
summaries of the training set:

- :class:`OODReference` — per object: the distance to the k-th nearest
  training summary, turned into a conformal p-value by held-out training
  rows, so that at level α at most α of in-distribution objects are flagged.
- :func:`mmd_test` — per population: a kernel two-sample test (maximum mean
  discrepancy, Gretton et al. 2012, JMLR 13, 723) of an observed sample
  against simulations, with a permutation p-value; used in summary space to
  detect model misspecification as proposed by Schmitt et al. (2023,
  "Detecting model misspecification in amortized Bayesian inference with
  neural networks", GCPR).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ...core.paths import check_not_input
from ...core.serialization import load_as, model_paths, register_estimator, write_model
from ...core.validation import as_tensor
from ._checks import _positive_int

__all__ = ["MMDResult", "OODReference", "mmd_test"]

#: calibration rows always held out (p-values reach down to 1/101 < 0.01)
MIN_CALIBRATION = 100
#: fewest reference rows a k-NN score is computed against
MIN_REFERENCE = 100
#: squared distances held at once while scoring (64 MB of float32)
_CHUNK_ELEMENTS = 1 << 24


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _scale(data: torch.Tensor) -> torch.Tensor:
    """Per-column standard deviation; a constant column keeps unit scale (its raw offsets still count)."""
    std = data.std(dim=0, unbiased=False)
    return torch.where(std > 0, std, torch.ones_like(std))


@register_estimator
class OODReference:
    """Out-of-distribution p-values from k-nearest-neighbour distances in a summary space.

    Built with :meth:`fit` from the summaries of the training objects (the
    network's embedding/context vectors, or its inputs). Each column is
    standardised by the mean and standard deviation of the fit set. The
    *score* of an object is its Euclidean distance to the ``k``-th nearest
    row of a *reference* subset of the training rows; rows held out of the
    reference (the *calibration* set) give the score's distribution for
    in-distribution objects, and the p-value of an object with score s is

        p = (1 + #{calibration scores ≥ s}) / (n_calibration + 1),

    the conformal p-value (Vovk, Gammerman & Shafer 2005): for an object
    exchangeable with the training rows, P(p ≤ α) ≤ α, and equals α up to
    1/(n_calibration + 1) when scores do not tie. A training row that is
    itself in the reference finds itself at distance 0, so scoring the
    training set looks better than it is; score fresh objects.

    Parameters
    ----------
    mean, scale : torch.Tensor (d,)
        Standardisation of each summary column (``scale`` > 0).
    reference : torch.Tensor (n_reference, d)
        Standardised reference rows.
    calibration_scores : torch.Tensor (n_calibration,)
        Scores of the held-out rows.
    k : int
        Which neighbour's distance is the score.
    meta : dict, optional
        JSON-able facts about the fit (rows, seed), kept in :meth:`get_config`.

    Use :meth:`fit` (or :meth:`load`, :meth:`from_state`) rather than the constructor.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reference = OODReference.fit(rng.normal(size=(2000, 3)), seed=0)
    >>> reference
    OODReference(n_features=3, k=10, n_reference=1600, n_calibration=400)
    >>> reference.flag([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0]], alpha=0.05)
    array([False,  True])
    """

    def __init__(self, mean, scale, reference, calibration_scores, k: int, meta: dict | None = None):
        self.k = _positive_int(k, "k")
        self.mean = torch.as_tensor(mean, dtype=torch.float64).cpu()
        self.scale = torch.as_tensor(scale, dtype=torch.float64).cpu()
        self.reference = torch.as_tensor(reference, dtype=torch.float32)
        calibration = torch.as_tensor(calibration_scores, dtype=torch.float32).cpu()
        if self.mean.ndim != 1 or self.scale.shape != self.mean.shape:
            raise ValueError(f"mean and scale must be 1-D of equal length, got shapes {tuple(self.mean.shape)} "
                             f"and {tuple(self.scale.shape)}")
        if not (torch.isfinite(self.scale).all() and (self.scale > 0).all() and torch.isfinite(self.mean).all()):
            raise ValueError("scale must be finite and positive and mean finite in every column")
        if self.reference.ndim != 2 or self.reference.shape[1] != len(self.mean):
            raise ValueError(f"reference must have shape (n_reference, {len(self.mean)}), "
                             f"got {tuple(self.reference.shape)}")
        if not torch.isfinite(self.reference).all():
            raise ValueError("reference holds NaN or inf")
        if self.k > len(self.reference):
            raise ValueError(f"k={self.k} exceeds the {len(self.reference)} reference rows")
        if calibration.ndim != 1 or len(calibration) == 0 or not torch.isfinite(calibration).all():
            raise ValueError("calibration_scores must be a non-empty 1-D array of finite scores")
        self.calibration_scores = torch.sort(calibration).values
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, summaries, *, k: int = 10, calibration_fraction: float = 0.2, max_reference: int = 20_000,
            max_calibration: int = 20_000, seed: int = 0) -> OODReference:
        """Fit the reference on the summaries of the training (in-distribution) objects.

        The rows are shuffled with ``seed``; the first ``calibration_fraction``
        of them (at least 100, at most ``max_calibration``) are held out for
        calibration, the next ones (at most ``max_reference``) form the
        reference; any others only enter the standardisation. Scoring costs
        O(n_reference · d) per object, so ``max_reference`` bounds it.

        Parameters
        ----------
        summaries : array-like (N, d)
            One summary vector per training object; NaN/inf rows are refused.
        k : int
            The score is the distance to the k-th nearest reference row.
        calibration_fraction : float
            Share of the rows held out to calibrate p-values.
        max_reference, max_calibration : int
            Caps on the two subsets.
        seed : int
            Seeds the split.

        Returns
        -------
        OODReference

        Raises
        ------
        ValueError
            For NaN/inf rows, or fewer rows than 100 calibration rows plus
            max(k, 100) reference rows.
        """
        data = as_tensor(summaries, "summaries", ndim=2, dtype=torch.float64)
        k = _positive_int(k, "k")
        fraction = _fraction(calibration_fraction, "calibration_fraction")
        max_reference = _positive_int(max_reference, "max_reference", max(k, MIN_REFERENCE))
        max_calibration = _positive_int(max_calibration, "max_calibration", MIN_CALIBRATION)
        n = len(data)
        needed = MIN_CALIBRATION + max(k, MIN_REFERENCE)
        if n < needed:
            raise ValueError(f"summaries has {n} row(s); OODReference needs at least {needed}: {MIN_CALIBRATION} "
                             f"held out to calibrate the p-values and {max(k, MIN_REFERENCE)} as the reference")
        n_calibration = min(max(math.ceil(fraction * n), MIN_CALIBRATION), max_calibration, n - max(k, MIN_REFERENCE))
        n_reference = min(n - n_calibration, max_reference)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
        mean, scale = data.mean(dim=0), _scale(data)
        reference = ((data[order[n_calibration:n_calibration + n_reference]] - mean) / scale).float()
        meta = {"n_fit": n, "seed": int(seed), "calibration_fraction": fraction}
        # the calibration rows are scored exactly as later queries will be
        placeholder = torch.zeros(1)
        model = cls(mean, scale, reference, placeholder, k, meta)
        model.calibration_scores = torch.sort(model._scores(data[order[:n_calibration]])).values
        return model

    # ------------------------------------------------------------------ scoring
    @property
    def n_features(self) -> int:
        """Length d of a summary vector."""
        return len(self.mean)

    @property
    def n_reference(self) -> int:
        return len(self.reference)

    @property
    def n_calibration(self) -> int:
        return len(self.calibration_scores)

    def to(self, device) -> OODReference:
        """Score on ``device`` (e.g. ``"cuda"``); inputs and results stay on the CPU."""
        self.reference = self.reference.to(device)
        return self

    def _queries(self, x, name: str) -> torch.Tensor:
        queries = as_tensor(x, name, ndim=(1, 2), dtype=torch.float64)
        if queries.ndim == 1:  # one object
            queries = queries[None, :]
        if queries.shape[1] != self.n_features:
            raise ValueError(f"{name} has {queries.shape[1]} feature(s) per row but this OODReference was fitted "
                             f"on summaries with {self.n_features}")
        return queries

    def _scores(self, queries: torch.Tensor) -> torch.Tensor:
        """k-th nearest-neighbour distances (float32, CPU) of raw (n, d) float64 rows, in chunks."""
        reference = self.reference
        reference_sq = (reference * reference).sum(dim=1)[None, :]
        rows = max(1, _CHUNK_ELEMENTS // len(reference))
        out = torch.empty(len(queries), dtype=torch.float32)
        with torch.no_grad():
            for start in range(0, len(queries), rows):
                chunk = ((queries[start:start + rows] - self.mean) / self.scale).float().to(reference.device)
                # |q - r|² = |q|² + |r|² - 2 q·r: one matrix product per chunk; |q|² is the same for every r
                # of a row, so it is added after the k nearest are found (topk is ~10x faster than kthvalue)
                partial = torch.addmm(reference_sq, chunk, reference.T, alpha=-2.0)
                nearest = torch.topk(partial, self.k, dim=1, largest=False, sorted=False).values
                kth = nearest.max(dim=1).values + (chunk * chunk).sum(dim=1)
                out[start:start + rows] = kth.clamp_min(0.0).sqrt().cpu()
        return out

    def score(self, x) -> np.ndarray:
        """Distance to the k-th nearest reference summary, in standardised units (larger = more unusual).

        Parameters
        ----------
        x : array-like (n, d) or (d,)
            Summaries of the objects to check.

        Returns
        -------
        numpy.ndarray (n,)
        """
        return self._scores(self._queries(x, "x")).numpy().astype(np.float64)

    def _p_values(self, scores: np.ndarray) -> np.ndarray:
        calibration = self.calibration_scores.numpy().astype(np.float64)
        at_least = len(calibration) - np.searchsorted(calibration, scores, side="left")
        return (1.0 + at_least) / (len(calibration) + 1.0)

    def p_value(self, x) -> np.ndarray:
        """Conformal p-value of each object: small when it is unlike the training summaries.

        Parameters
        ----------
        x : array-like (n, d) or (d,)

        Returns
        -------
        numpy.ndarray (n,)
            Values in [1 / (n_calibration + 1), 1].
        """
        return self._p_values(self.score(x))

    def flag(self, x, alpha: float = 0.05) -> np.ndarray:
        """True for objects whose p-value is ≤ ``alpha`` (at most a fraction α of in-distribution objects).

        Raises
        ------
        ValueError
            When ``alpha`` is below 1 / (n_calibration + 1), the smallest p-value this reference can give.
        """
        alpha = _fraction(alpha, "alpha")
        if alpha < 1.0 / (self.n_calibration + 1):
            raise ValueError(f"alpha={alpha} is below 1/(n_calibration + 1) = {1 / (self.n_calibration + 1):.3g}, "
                             "the smallest p-value this reference can give: fit it on more rows")
        return self.p_value(x) <= alpha

    # ------------------------------------------------------------------ files
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors to store (CPU): ``mean``, ``scale``, ``reference``, ``calibration_scores``."""
        return {"mean": self.mean.clone(), "scale": self.scale.clone(), "reference": self.reference.cpu().clone(),
                "calibration_scores": self.calibration_scores.clone()}

    def get_config(self) -> dict:
        """JSON-able description: ``k``, the fit facts and readable reference statistics.

        Together with :meth:`state_dict` it rebuilds the reference through
        :meth:`from_state` — the way a domain model stores one inside its own files.
        """
        calibration = self.calibration_scores.numpy().astype(np.float64)
        quantiles = {f"{q:g}": float(np.quantile(calibration, q)) for q in (0.5, 0.95, 0.99)}
        return {"k": self.k, "n_features": self.n_features, "n_reference": self.n_reference,
                "n_calibration": self.n_calibration, "calibration_score_quantiles": quantiles, **self.meta}

    @classmethod
    def from_state(cls, config: dict, tensors: dict) -> OODReference:
        """Rebuild from :meth:`get_config` and :meth:`state_dict` output."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        missing = [name for name in ("mean", "scale", "reference", "calibration_scores") if name not in tensors]
        if missing:
            raise ValueError(f"tensors lack {missing}")
        meta = {key: config[key] for key in ("n_fit", "seed", "calibration_fraction") if key in config}
        return cls(tensors["mean"], tensors["scale"], tensors["reference"], tensors["calibration_scores"],
                   config.get("k"), meta)

    @classmethod
    def _from_state(cls, header: dict, tensors: dict) -> OODReference:  # used by astrobayes.load
        return cls.from_state(header["config"], tensors)

    def save(self, path) -> None:
        """Write ``path.safetensors`` (tensors) and ``path.json`` (configuration and statistics)."""
        for target in model_paths(path):
            check_not_input(target, getattr(self, "_read_from", ()), argument="path",
                            what="file this reference was loaded from")
        write_model(path, type(self).__name__, self.get_config(), self.state_dict())

    @classmethod
    def load(cls, path) -> OODReference:
        """Load a reference written by :meth:`save` (checksum-verified, no pickle)."""
        return load_as(cls, path)

    def __repr__(self) -> str:
        return (f"OODReference(n_features={self.n_features}, k={self.k}, n_reference={self.n_reference}, "
                f"n_calibration={self.n_calibration})")


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
    seed : int
        Seeds the subsampling and the permutations.

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
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        x = x[torch.from_numpy(np.sort(rng.choice(len(x), max_rows, replace=False)))]
    if len(y) > max_rows:
        y = y[torch.from_numpy(np.sort(rng.choice(len(y), max_rows, replace=False)))]
    m, n = len(x), len(y)
    pooled = torch.cat([x, y])
    pooled = (pooled - pooled.mean(dim=0)) / _scale(pooled)
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
    kernel = torch.exp_(squared.mul_(-0.5 / h**2))
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
