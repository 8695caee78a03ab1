"""Is an input like the training inputs? The out-of-distribution reference every estimator keeps.

A network trained on simulations answers for any input, also for one unlike
anything it was trained on. :class:`OODReference` scores an object by the
distance of its *summary* — the network's own context vector (the output of
``network.features``: standardised x through the embedding), or any other
vector — to the training summaries (the Mahalanobis distance under their
mean and covariance, or the distance to the k-th nearest one), and turns
that distance into a conformal p-value with rows held out of the reference
(best: rows the network was not trained on), so that at level α at most α
of in-distribution objects are flagged, on average over calibration sets.

:meth:`Estimator.fit <astrobayes.estimators.Estimator.fit>` fits one on the
context vectors of (a seeded subsample of) the training inputs and saves it
in the model's own files; :class:`ContextRecorder` keeps the context vectors
a prediction computes anyway, so that the p-values of a catalogue need no
second pass of the feature network. The population-level test
(:func:`~astrobayes.inference.diagnostics.mmd_test`) lives with the other
diagnostics.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import numpy as np
import torch

from ..core.paths import check_not_input
from ..core.serialization import load_as, model_paths, register_estimator, write_model
from ..core.validation import as_tensor

__all__ = ["MAX_OOD_ROWS", "METHODS", "MIN_HELD_OUT", "MIN_OOD_ROWS", "OOD_METHOD", "ContextRecorder", "OODReference",
           "reference_p_values"]

#: fewest training rows :meth:`Estimator.fit` builds an OOD reference from (fewer: none, and the model says why)
MIN_OOD_ROWS = 300
#: most training rows whose context vectors go into it (a seeded subsample beyond)
MAX_OOD_ROWS = 20_000
#: the score :meth:`Estimator.fit` uses: the Mahalanobis distance, O(d²) per object (a catalogue of 10⁶
#: rows pays ~2 µs per object for d = 64; the k-NN score ~100 µs)
OOD_METHOD = "gaussian"


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


#: calibration rows always held out (p-values reach down to 1/101 < 0.01)
MIN_CALIBRATION = 100
#: fewest validation rows (never trained on) that Estimator.fit calibrates on alone: with fewer, a flag at
#: α = 0.01 would need a score above all but one or two of them, and one odd validation row decides it
MIN_HELD_OUT = 300
#: fewest reference rows a k-NN score is computed against
MIN_REFERENCE = 100
#: squared distances held at once while scoring (64 MB of float32)
_CHUNK_ELEMENTS = 1 << 24


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


#: the scores :class:`OODReference` can compute
METHODS = ("knn", "gaussian")
#: added to every eigenvalue of the standardised covariance before whitening (a dead ReLU unit has variance 0)
_RIDGE = 1e-3


def _method(value) -> str:
    if value not in METHODS:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS)}, got {value!r}")
    return value


def _whitener(rows: torch.Tensor) -> torch.Tensor:
    """W (d, d) with |z W| the Mahalanobis distance of standardised z under the rows' covariance (+ ridge)."""
    centred = rows - rows.mean(dim=0)
    covariance = centred.T @ centred / len(rows)
    values, vectors = torch.linalg.eigh(covariance)
    return vectors / torch.sqrt(values.clamp_min(0.0) + _RIDGE)


def _scale(data: torch.Tensor) -> torch.Tensor:
    """Per-column standard deviation; a constant column keeps unit scale (its raw offsets still count)."""
    std = data.std(dim=0, unbiased=False)
    return torch.where(std > 0, std, torch.ones_like(std))


def _standardisation(rows: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and :func:`_scale` of the reference rows; a ValueError naming ``name`` when they overflow float64."""
    mean, scale = rows.mean(dim=0), _scale(rows)
    if not (torch.isfinite(mean).all() and torch.isfinite(scale).all()):
        columns = torch.nonzero(~(torch.isfinite(mean) & torch.isfinite(scale))).flatten().tolist()
        raise ValueError(f"{name} has values too large to standardise in float64 (column(s) {columns[:10]}: their "
                         "mean or standard deviation overflows); rescale them (e.g. take a logarithm)")
    # a column that varies but whose variance underflows to 0 would be taken for a constant one
    lost = (rows.std(dim=0, unbiased=False) == 0) & (rows.amax(dim=0) > rows.amin(dim=0))
    if lost.any():
        columns = torch.nonzero(lost).flatten().tolist()
        raise ValueError(f"{name} has values too small to standardise in float64 (column(s) {columns[:10]}: their "
                         "variance underflows to 0); rescale them")
    return mean, scale


@register_estimator
class OODReference:
    """Out-of-distribution p-values from a distance in a summary space (k-NN or Mahalanobis).

    Built with :meth:`fit` from the summaries of the training objects (the
    network's embedding/context vectors, or its inputs). Each column is
    standardised by the mean and standard deviation of a *reference* subset
    of the training rows. The *score* of an object is, with ``method="knn"``,
    its Euclidean distance to the ``k``-th nearest reference row, or, with
    ``method="gaussian"``, its Mahalanobis distance under the reference
    rows' mean and covariance. Rows held out of the
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
    reference : torch.Tensor (n_reference, d) or (d, d)
        ``"knn"``: the standardised reference rows; ``"gaussian"``: the
        whitening matrix W, the score being the length of z W for standardised z.
    calibration_scores : torch.Tensor (n_calibration,)
        Scores of the held-out rows.
    k : int
        Which neighbour's distance is the score (``"knn"`` only).
    meta : dict, optional
        JSON-able facts about the fit (rows, seed), kept in :meth:`get_config`.
    method : {"knn", "gaussian"}
        The score (see :meth:`fit`).

    Use :meth:`fit` (or :meth:`load`, :meth:`from_state`) rather than the constructor.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> reference = OODReference.fit(rng.normal(size=(2000, 3)), seed=0)
    >>> reference
    OODReference(method='knn', n_features=3, k=10, n_reference=1600, n_calibration=400)
    >>> reference.flag([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0]], alpha=0.05)
    array([False,  True])
    """

    def __init__(self, mean, scale, reference, calibration_scores, k: int = 10, meta: dict | None = None, *,
                 method: str = "knn"):
        self.method = _method(method)
        self.k = _positive_int(k, "k")
        self.mean = torch.as_tensor(mean, dtype=torch.float64).cpu()
        self.scale = torch.as_tensor(scale, dtype=torch.float64).cpu()
        self.reference = torch.as_tensor(reference, dtype=torch.float32)
        calibration = torch.as_tensor(calibration_scores, dtype=torch.float32).cpu()
        if self.mean.ndim != 1 or self.scale.shape != self.mean.shape or len(self.mean) == 0:
            raise ValueError(f"mean and scale must be 1-D of equal length >= 1, got shapes {tuple(self.mean.shape)} "
                             f"and {tuple(self.scale.shape)}")
        if not (torch.isfinite(self.scale).all() and (self.scale > 0).all() and torch.isfinite(self.mean).all()):
            raise ValueError("scale must be finite and positive and mean finite in every column")
        if self.reference.ndim != 2 or self.reference.shape[1] != len(self.mean) \
                or (self.method == "gaussian" and self.reference.shape[0] != len(self.mean)):
            rows = len(self.mean) if self.method == "gaussian" else "n_reference"
            raise ValueError(f"reference must have shape ({rows}, {len(self.mean)}) with method={self.method!r}, "
                             f"got {tuple(self.reference.shape)}")
        if not torch.isfinite(self.reference).all():
            raise ValueError("reference holds NaN or inf")
        if self.method == "knn" and self.k > len(self.reference):
            raise ValueError(f"k={self.k} exceeds the {len(self.reference)} reference rows")
        if calibration.ndim != 1 or len(calibration) == 0 or not torch.isfinite(calibration).all():
            raise ValueError("calibration_scores must be a non-empty 1-D array of finite scores")
        self.calibration_scores = torch.sort(calibration).values
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, summaries, *, calibration=None, method: str = "knn", k: int = 10, calibration_fraction: float = 0.2,
            max_reference: int = 20_000, max_calibration: int = 20_000, seed: int = 0) -> OODReference:
        """Fit the reference on the summaries of the training (in-distribution) objects.

        The rows are shuffled with ``seed``; the first ``calibration_fraction``
        of them (at least 100, at most ``max_calibration``) are held out for
        calibration, the next ones (at most ``max_reference``) form the
        reference, which alone fixes the standardisation and the score (so
        that calibration rows are scored exactly as fresh objects are).

        Parameters
        ----------
        summaries : array-like (N, d)
            One summary vector per training object; NaN/inf rows are refused.
        calibration : array-like (M, d), optional
            Summaries of in-distribution objects *not used to train the
            network* (its validation rows), M ≥ 100: then they alone
            calibrate the p-values and ``summaries`` alone are the
            reference. Rows a network was trained on can lie closer to the
            others than fresh objects do, so calibrating on them flags fresh
            objects too often; held-out rows are exchangeable with fresh ones.
            Without it, ``calibration_fraction`` of ``summaries`` is held out.
        method : {"knn", "gaussian"}
            The score. ``"knn"``: distance to the ``k``-th nearest reference
            row, O(n_reference · d) per object — follows any shape of the
            training summaries. ``"gaussian"``: the Mahalanobis distance
            under one Gaussian fitted to the reference rows (Lee et al. 2018),
            O(d²) per object — hundreds of times cheaper on a catalogue, blind
            to holes inside the training cloud (e.g. between two classes).
        k : int
            With ``method="knn"``: the score is the distance to the k-th nearest reference row.
        calibration_fraction : float
            Share of the rows held out to calibrate p-values.
        max_reference, max_calibration : int
            Caps on the two subsets.
        seed : int
            Seeds the split (>= 0).

        Returns
        -------
        OODReference

        Raises
        ------
        ValueError
            For NaN/inf rows, no columns, values whose spread over- or
            underflows float64, or fewer rows than 100 calibration rows plus
            max(k, 100) reference rows.
        """
        data = as_tensor(summaries, "summaries", ndim=2, dtype=torch.float64)
        if data.shape[1] == 0:
            raise ValueError("summaries has 0 columns: give at least one number per object")
        method = _method(method)
        k = _positive_int(k, "k")
        seed = _positive_int(seed, "seed", 0)
        fraction = _fraction(calibration_fraction, "calibration_fraction")
        max_reference = _positive_int(max_reference, "max_reference", max(k, MIN_REFERENCE))
        max_calibration = _positive_int(max_calibration, "max_calibration", MIN_CALIBRATION)
        if calibration is not None:
            return cls._fit_held_out(data, calibration, method, k, max_reference, max_calibration, seed)
        n = len(data)
        needed = MIN_CALIBRATION + max(k, MIN_REFERENCE)
        if n < needed:
            raise ValueError(f"summaries has {n} row(s); OODReference needs at least {needed}: {MIN_CALIBRATION} "
                             f"held out to calibrate the p-values and {max(k, MIN_REFERENCE)} as the reference")
        n_calibration = min(max(math.ceil(fraction * n), MIN_CALIBRATION), max_calibration, n - max(k, MIN_REFERENCE))
        n_reference = min(n - n_calibration, max_reference)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
        rows = data[order[n_calibration:n_calibration + n_reference]]
        mean, scale = _standardisation(rows, "summaries")
        reference = ((rows - mean) / scale)
        meta = {"n_fit": n, "seed": seed, "calibration_fraction": fraction}
        if method == "gaussian":
            reference = _whitener(reference)
            meta["n_reference"] = n_reference
        # the calibration rows are scored exactly as later queries will be
        placeholder = torch.zeros(1)
        model = cls(mean, scale, reference.float(), placeholder, k, meta, method=method)
        model.calibration_scores = torch.sort(model._scores(data[order[:n_calibration]])).values
        return model

    @classmethod
    def _fit_held_out(cls, data, calibration, method, k, max_reference, max_calibration, seed) -> OODReference:
        """:meth:`fit` with separate calibration rows (the network's held-out validation rows)."""
        held_out = as_tensor(calibration, "calibration", ndim=2, dtype=torch.float64)
        if held_out.shape[1] != data.shape[1]:
            raise ValueError(f"calibration has {held_out.shape[1]} feature(s) per row but summaries has "
                             f"{data.shape[1]}")
        if len(held_out) < MIN_CALIBRATION or len(data) < max(k, MIN_REFERENCE):
            raise ValueError(f"OODReference needs at least {MIN_CALIBRATION} calibration rows and "
                             f"{max(k, MIN_REFERENCE)} summaries, got {len(held_out)} and {len(data)}")
        rng = np.random.default_rng(seed)
        if len(data) > max_reference:
            data = data[torch.from_numpy(np.sort(rng.choice(len(data), max_reference, replace=False)))]
        if len(held_out) > max_calibration:
            held_out = held_out[torch.from_numpy(np.sort(rng.choice(len(held_out), max_calibration, replace=False)))]
        mean, scale = _standardisation(data, "summaries")
        reference = (data - mean) / scale
        meta = {"n_fit": len(data) + len(held_out), "seed": seed, "calibration": "held out"}
        if method == "gaussian":
            reference = _whitener(reference)
            meta["n_reference"] = len(data)
        model = cls(mean, scale, reference.float(), torch.zeros(1), k, meta, method=method)
        model.calibration_scores = torch.sort(model._scores(held_out)).values
        return model

    # ------------------------------------------------------------------ scoring
    @property
    def n_features(self) -> int:
        """Length d of a summary vector."""
        return len(self.mean)

    @property
    def n_reference(self) -> int:
        """Rows the score was fitted on (with ``method="gaussian"`` only their mean and covariance are kept)."""
        if self.method == "gaussian":
            return int(self.meta.get("n_reference", 0))
        return len(self.reference)

    @property
    def n_calibration(self) -> int:
        return len(self.calibration_scores)

    def to(self, device) -> OODReference:
        """Score on ``device`` (e.g. ``"cuda"``); inputs and results stay on the CPU."""
        self.reference = self.reference.to(device)
        return self

    def _queries(self, x, name: str) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dtype == torch.float32 and not x.requires_grad:
            queries = as_tensor(x, name, ndim=(1, 2))  # context vectors from a network: no float64 copy
        else:
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
        if self.method == "gaussian":  # Mahalanobis distance |z W|, z = (q - mean) / scale, the product in float32
            with torch.no_grad():
                # standardised in the queries' own precision: raw float64 summaries with a large offset
                # (60000 ± 0.001) or a tiny scale (1e-40) would lose their spread to float32 if cast first
                z = (queries - self.mean.to(queries.dtype)) / self.scale.to(queries.dtype)
                return (z.to(device=reference.device, dtype=torch.float32) @ reference).norm(dim=1).cpu()
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
        """The score: Mahalanobis distance, or distance to the k-th nearest reference row (larger = more unusual).

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
        return {"method": self.method, "k": self.k, "n_features": self.n_features, "n_reference": self.n_reference,
                "n_calibration": self.n_calibration, "calibration_score_quantiles": quantiles, **self.meta}

    @classmethod
    def from_state(cls, config: dict, tensors: dict) -> OODReference:
        """Rebuild from :meth:`get_config` and :meth:`state_dict` output."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        if not isinstance(tensors, Mapping):
            raise TypeError(f"tensors must be a dict of tensors, got {type(tensors).__name__}")
        missing = [name for name in ("mean", "scale", "reference", "calibration_scores") if name not in tensors]
        if missing:
            raise ValueError(f"tensors lack {missing}")
        meta = {key: config[key] for key in ("n_fit", "seed", "calibration_fraction", "calibration") if key in config}
        method = config.get("method", "knn")  # files written before "gaussian" existed hold k-NN references
        if method == "gaussian":
            meta["n_reference"] = _positive_int(config.get("n_reference", 0), "config['n_reference']", 0)
        return cls(tensors["mean"], tensors["scale"], tensors["reference"], tensors["calibration_scores"],
                   config.get("k"), meta, method=method)

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
        k = f", k={self.k}" if self.method == "knn" else ""
        return (f"OODReference(method={self.method!r}, n_features={self.n_features}{k}, "
                f"n_reference={self.n_reference}, n_calibration={self.n_calibration})")


def reference_p_values(reference: OODReference, contexts: torch.Tensor, device=None) -> np.ndarray:
    """P-values of context vectors (n, d), scored on ``device``; a row holding NaN or inf gets NaN, not an error.

    A domain function scoring a whole catalogue must not fail on one odd row: its
    p-value is NaN, and the row's answer (computed from the same context) is as
    suspect as its score.
    """
    p = np.full(len(contexts), np.nan)
    if len(contexts) == 0:
        return p
    finite = torch.isfinite(contexts).all(dim=1).cpu().numpy()
    if device is not None:
        reference.to(device)
    if finite.any():
        p[finite] = reference.p_value(contexts[torch.from_numpy(finite)])
    return p


class ContextRecorder:
    """The context vectors a feature network computes inside a ``with`` block: OOD p-values from the same pass.

    Made by :meth:`Estimator.recording_context <astrobayes.estimators.Estimator.recording_context>`,
    which hooks it on ``network.features`` for the block. Of the stream of rows the
    network sees it keeps rows 0, ``every``, 2·``every``, ... (inputs repeated
    ``every`` times in a row, e.g. once per grid point of a posterior) and at
    most ``limit`` of them (a mixture that runs the same network T times over the
    objects: the first pass).

    Attributes
    ----------
    reference : OODReference or None
        The model's reference; None when it has none (``note`` says why).
    note : str
        Why there is no reference ("" when there is one).
    """

    def __init__(self, reference: OODReference | None, note: str, *, every: int = 1, limit: int | None = None,
                 device=None):
        self.reference, self.note, self.device = reference, note, device
        self.every = _positive_int(every, "every")
        self.limit = None if limit is None else _positive_int(limit, "limit", 0)
        self._seen = 0
        self._kept = 0
        self._parts: list[torch.Tensor] = []
        # a model shared by threads (Dask's threaded workers) runs other threads' batches through the same
        # module while this block is open: only this thread's calls are its rows
        self._thread = threading.get_ident()

    def _hook(self, module, inputs, output) -> None:
        if threading.get_ident() != self._thread:
            return
        rows = int(output.shape[0])
        first = (-self._seen) % self.every  # the first row of this chunk at a multiple of `every` in the stream
        self._seen += rows
        if self.limit is not None and self._kept >= self.limit:
            return
        kept = output[first::self.every]
        if self.limit is not None:
            kept = kept[:self.limit - self._kept]
        if len(kept):
            self._parts.append(kept.detach().float().cpu())
            self._kept += len(kept)

    @property
    def contexts(self) -> torch.Tensor:
        """The kept context vectors, (n, d) float32 on the CPU."""
        return torch.cat(self._parts) if self._parts else torch.empty(0, 0)

    def p_value(self) -> np.ndarray:
        """Conformal p-value of each kept row (NaN for a row whose context is not finite).

        Raises
        ------
        RuntimeError
            When the model has no reference; the message says why.
        """
        if self.reference is None:
            raise RuntimeError(self.note)
        return reference_p_values(self.reference, self.contexts, self.device)
