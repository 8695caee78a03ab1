"""Apply a saved amortized model to every row of a catalogue.

One call turns a table of measurements into a table of posterior summaries:
per output parameter its mean, standard deviation and quantiles.

Reproducibility
---------------
Draws are made per row, from a random stream derived from ``seed`` and the
row's *key*: its integer index label for a pandas DataFrame with an integer
index (the row position for the default ``RangeIndex``), else its position in
the catalogue. A row's summary therefore depends only on the model, its
inputs, its key and the seed, not on how the catalogue is split into batches
or Dask partitions — up to the float32 rounding of batched network calls
(about 10⁻⁷ relative), which can also, rarely, move a draw lying within that
rounding of a prior bound across it. Regressors and mixture density networks
need no draws at all: their means, standard deviations and quantiles are
computed exactly from the predicted Gaussian / Gaussian mixture.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..core.validation import index_inputs
from ..inference.diagnostics.ood import ood_warning
from .models import CatalogModel, as_catalog_model, load_catalog_model

__all__ = ["apply_estimator", "posterior_draws", "summary_columns", "quantile_label", "catalog_inputs"]


def quantile_label(q: float) -> str:
    """Column suffix of quantile ``q``: 0.16 → ``"q16"``, 0.025 → ``"q2.5"``.

    Examples
    --------
    >>> quantile_label(0.16), quantile_label(0.5), quantile_label(0.025)
    ('q16', 'q50', 'q2.5')
    """
    return f"q{round(100 * float(q), 6):g}"


def _check_quantiles(quantiles) -> tuple[float, ...]:
    values = tuple(float(q) for q in np.atleast_1d(np.asarray(quantiles, dtype=float)))
    if not values:
        raise ValueError("quantiles is empty; give at least one, e.g. (0.16, 0.5, 0.84)")
    if not all(0.0 < q < 1.0 for q in values):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {quantiles!r}")
    labels = [quantile_label(q) for q in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"quantiles has duplicate entries: {quantiles!r}")
    return values


def summary_columns(model, quantiles=(0.16, 0.5, 0.84)) -> list[str]:
    """Names of the columns :func:`apply_estimator` returns for ``model``, in order.

    Examples
    --------
    >>> import astrobayes, numpy as np
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 2), np.random.rand(64, 1), epochs=1, progress=False)
    >>> summary_columns(reg)
    ['y_0_mean', 'y_0_std', 'y_0_q16', 'y_0_q50', 'y_0_q84']
    """
    wrapped = _wrap(model)
    ood = ["ood_p_value"] if getattr(wrapped.estimator, "ood", None) is not None else []
    if wrapped.kind == "classifier":
        return [f"prob_{name}" for name in wrapped.parameters] + ["predicted_class"] + ood
    labels = ["mean", "std"] + [quantile_label(q) for q in _check_quantiles(quantiles)]
    names = [f"{p}_{label}" for p in wrapped.parameters for label in labels]
    return names + (["acceptance"] if wrapped.kind == "posterior" else []) + ood


def _wrap(model, names=None) -> CatalogModel:
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return load_catalog_model(model, names)
    return as_catalog_model(model, names)


# ---------------------------------------------------------------------- inputs
def catalog_inputs(catalog, columns: Sequence[str]) -> np.ndarray:
    """The named columns of a DataFrame or astropy Table as a float64 (m, k) array.

    Masked entries become NaN; Quantity columns give their values in their
    own unit (no conversion is made: supply the units the model was trained on).

    Raises
    ------
    ValueError
        Naming a column the catalogue does not have.
    TypeError
        Naming a column that is not numeric or not one number per row.

    Examples
    --------
    >>> import pandas as pd
    >>> catalog_inputs(pd.DataFrame({"g": [20.1, 21.0], "r": [19.5, 20.2]}), ["r", "g"])
    array([[19.5, 20.1],
           [20.2, 21. ]])
    """
    import astropy.units as u
    from astropy.table import Table

    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise TypeError(f"columns must be a non-empty list of column names, got {columns!r}")
    if isinstance(catalog, Table):
        available = list(catalog.colnames)
    elif isinstance(catalog, pd.DataFrame):
        available = [str(c) for c in catalog.columns]
    else:
        raise TypeError(f"catalog must be a pandas DataFrame or an astropy Table, got {type(catalog).__name__}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(f"catalog has no column {missing[0]!r} (needed: {list(columns)}; "
                         f"available: {available[:20]}{' ...' if len(available) > 20 else ''})")
    out = np.empty((len(catalog), len(columns)))
    for j, name in enumerate(columns):
        raw = catalog[name]
        try:
            if isinstance(catalog, Table):
                raw = raw.value if isinstance(raw, u.Quantity) else raw
                mask = np.ma.getmaskarray(raw)
                values = np.array(np.ma.getdata(raw), dtype=float)
                values[mask] = np.nan
            else:
                values = raw.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise TypeError(f"column {name!r} is not numeric (dtype {raw.dtype})") from None
        if values.ndim != 1:
            raise TypeError(f"column {name!r} holds {values.shape[1:]} values per row; one number per row is needed")
        out[:, j] = values
    return out


def _row_keys(catalog, m: int) -> np.ndarray:
    if isinstance(catalog, pd.DataFrame) and pd.api.types.is_integer_dtype(catalog.index.dtype):
        if not catalog.index.is_unique:
            raise ValueError("catalog: its integer index has repeated labels, and each row's random stream is "
                             "derived from its label; use catalog.reset_index(drop=True) or a unique id index")
        return catalog.index.to_numpy()
    return np.arange(m)


def _row_seed(entropy: int, key) -> int:
    # one independent stream per (seed, row key): SeedSequence's spawn_key is the documented way to derive them
    state = np.random.SeedSequence(entropy, spawn_key=(int(key) % 2**64,)).generate_state(1, np.uint64)[0]
    return int(state) >> 1


# ---------------------------------------------------------------------- summaries
def _gaussian(wrapped, x, quantiles):
    from scipy.special import ndtri

    prediction = wrapped.model.predict(x)
    mean, std = np.asarray(prediction.mean, float), np.asarray(prediction.std, float)
    return mean, std, np.stack([mean + std * ndtri(q) for q in quantiles], axis=-1)


def _mixture(wrapped, x, quantiles):
    from scipy.special import ndtr

    model = wrapped.model
    prediction = model.predict(x)
    with torch.no_grad():
        dist = model.distribution(x)
        weights = dist.mixture_distribution.probs.double().cpu().numpy()  # (m, K)
        loc = dist.component_distribution.loc.double().cpu().numpy()  # (m, K, d)
        scale = np.sqrt(np.diagonal(dist.component_distribution.covariance_matrix.double().cpu().numpy(),
                                    axis1=-2, axis2=-1))  # (m, K, d): each marginal is a 1-D Gaussian mixture
    out = np.empty(loc.shape[:1] + loc.shape[2:] + (len(quantiles),))
    low, high = (loc - 12 * scale).min(axis=1), (loc + 12 * scale).max(axis=1)  # (m, d)
    for iq, q in enumerate(quantiles):
        a, b = low.copy(), high.copy()
        for _ in range(64):  # bisection of the monotone mixture CDF: 2⁻⁶⁴ of the bracket, below float64 spacing
            mid = 0.5 * (a + b)
            cdf = (weights[:, :, None] * ndtr((mid[:, None, :] - loc) / scale)).sum(axis=1)
            below = cdf < q
            a, b = np.where(below, mid, a), np.where(below, b, mid)
        out[..., iq] = 0.5 * (a + b)
    return np.asarray(prediction.mean, float), np.asarray(prediction.std, float), out


def _draws_one(wrapped, row, n, seed):
    """(n, d) draws for one catalogue row; the posterior also reports its acceptance."""
    if wrapped.kind == "posterior":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # summarised once per call instead of once per row
            draws = wrapped.model.sample(n, row[None], seed=seed)[0]
        return draws, float(wrapped.model.object_acceptance[0])
    draws = wrapped.model.sample(n, row[None], seed=seed)
    draws = draws.numpy() if isinstance(draws, torch.Tensor) else draws
    return np.asarray(draws, dtype=float)[0], np.nan


#: noise rows per network call in :func:`_stream_draws` (whole catalogue rows; results depend on it only
#: through float32 rounding)
CALL_SIZE = 65536
#: proposals (noise rows) held in memory at once in one round of :func:`_stream_draws`
MAX_PROPOSALS = 4_000_000


def _noise_sampler(wrapped):
    """(noise columns, transform) for models whose draws are a function of supplied noise; None otherwise.

    ``transform(inputs, noise, counts)`` maps standard-normal noise (N, c) to
    draws (N, d), ``counts[i]`` consecutive noise rows per input row. Flows
    push d columns through the flow; a Gaussian mixture (MDN density) turns
    the first column into a uniform that picks the component, Φ(z₀), and the
    other d into that component's Gaussian draw.
    """
    from ..core.validation import inputs_to
    from ..estimators import MixtureDensityNetwork

    estimator, d = wrapped.estimator, len(wrapped.parameters)
    network = getattr(estimator, "network", None)
    if hasattr(network, "transform_noise"):
        def flow(inputs, noise, counts):
            with torch.no_grad():
                y = network.transform_noise(inputs_to(inputs, estimator.device),
                                            torch.as_tensor(noise, dtype=torch.float32), counts)
            return y.double().cpu().numpy()
        return d, flow
    if isinstance(estimator, MixtureDensityNetwork):
        from scipy.special import ndtr

        def mixture(inputs, noise, counts):
            with torch.no_grad():
                weights, means, factor = (t.double().cpu().numpy() for t in estimator._packed_components(inputs))
            owner = np.repeat(np.arange(len(weights)), counts)
            cumulative = np.cumsum(weights, axis=1)
            which = np.minimum((ndtr(noise[:, :1]) > cumulative[owner]).sum(axis=1), weights.shape[1] - 1)
            return means[owner, which] + np.einsum("nij,nj->ni", factor[owner, which], noise[:, 1:])
        return d + 1, mixture
    return None


def _row_groups(counts, budget: int):
    """(first, last, start, stop) of consecutive whole rows whose ``counts`` sum to at most ``budget``.

    A row whose count alone exceeds the budget forms its own group; ``start:stop`` are the rows' span in
    the concatenated per-row items.
    """
    ends = np.cumsum(counts)
    first, start = 0, 0
    while first < len(ends):
        last = max(first + 1, int(np.searchsorted(ends, start + budget, side="right")))
        stop = int(ends[last - 1])
        yield first, last, start, stop
        first, start = last, stop


def _stream_draws(wrapped, sampler, x, keys, n, entropy):
    """(m, n, d) draws and (m,) acceptance, many rows per network call, each row from its own stream.

    Row i's noise comes from the stream of (seed, row key), so its draws do
    not depend on which rows share a call. A
    :class:`~astrobayes.inference.Posterior` keeps only draws inside the
    prior support (finite draws, for an unbounded prior): each round
    proposes, per unfinished row, 1.2 × (draws still needed) / (that row's
    acceptance so far) + 1, at most 20 n, for at most ``max_rounds`` rounds
    (then the row's missing draws are NaN). At most :data:`MAX_PROPOSALS`
    proposals are held at once.
    """
    columns, transform = sampler
    posterior = wrapped.kind == "posterior"
    bounded = posterior and wrapped.model._bounded
    rounds = wrapped.model.max_rounds if posterior else 1
    m, d = len(x), len(wrapped.parameters)
    out = np.full((m, n, d), np.nan)
    filled, proposed, accepted = np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m)
    streams = [np.random.default_rng(_row_seed(entropy, key)) for key in keys]
    inputs = wrapped.estimator._check_x(x)

    def fill(rows, need, k):
        """One round for ``rows``: k[j] proposals for row rows[j], the accepted ones into its next free slots."""
        noise = np.concatenate([streams[i].standard_normal((kk, columns)) for i, kk in zip(rows, k)])
        draws = np.empty((len(noise), d))
        for first, last, start, stop in _row_groups(k, CALL_SIZE):  # whole rows per network call
            chunk = index_inputs(inputs, torch.as_tensor(rows[first:last]))
            draws[start:stop] = transform(chunk, noise[start:stop], k[first:last])
        ends = np.cumsum(k)
        ok = np.asarray(wrapped.model.prior.support_check(draws)) if bounded else np.isfinite(draws).all(axis=1)
        owner = np.repeat(np.arange(rows.size), k)
        total = np.cumsum(ok)
        rank = total - np.repeat(np.concatenate([[0], total[ends[:-1] - 1]]), k)  # 1, 2, ... within each row
        take = ok & (rank <= need[owner])
        out[rows[owner[take]], filled[rows[owner[take]]] + rank[take] - 1] = draws[take]
        filled[rows] += np.bincount(owner[take], minlength=rows.size)
        proposed[rows] += k
        accepted[rows] += np.bincount(owner[ok], minlength=rows.size)

    for _ in range(rounds):
        todo = np.flatnonzero(filled < n)
        if todo.size == 0:
            break
        need = n - filled[todo]
        k = need
        if posterior:
            rate = np.where(proposed[todo] > 0, accepted[todo] / np.maximum(proposed[todo], 1), 1.0)
            k = np.minimum(np.ceil(1.2 * need / np.maximum(rate, 1e-3)).astype(np.int64) + 1, 20 * n)
            k = np.maximum(k, need)
        # groups of whole rows holding at most MAX_PROPOSALS proposals (a row's draws depend on its stream only)
        for first, last, _, _ in _row_groups(k, MAX_PROPOSALS // columns):
            fill(todo[first:last], need[first:last], k[first:last])
    return out, (accepted / np.maximum(proposed, 1) if posterior else np.full(m, np.nan))


def _row_draws(wrapped, x, keys, n, entropy):
    """(m, n, d) draws and (m,) acceptance for catalogue rows, each row from its own (seed, row key) stream."""
    sampler = _noise_sampler(wrapped)
    with wrapped.lock:  # threads sharing one cached model (Dask's threaded workers)
        if sampler is not None:
            return _stream_draws(wrapped, sampler, x, keys, n, entropy)
        # other samplers (ensembles, MC dropout, ...): one network call per row
        draws, acceptance = np.empty((len(x), n, len(wrapped.parameters))), np.empty(len(x))
        for i in range(len(x)):
            draws[i], acceptance[i] = _draws_one(wrapped, x[i], n, _row_seed(entropy, keys[i]))
        return draws, acceptance


def _sampled(wrapped, x, keys, n_draws, quantiles, entropy):
    draws, acceptance = _row_draws(wrapped, x, keys, n_draws, entropy)
    return (draws.mean(axis=1), draws.std(axis=1, ddof=1), np.moveaxis(np.quantile(draws, quantiles, axis=1), 0, -1),
            acceptance)


# ---------------------------------------------------------------------- public
def apply_estimator(catalog, model, columns: Sequence[str] | None = None, *, n_draws: int = 1000,
                    quantiles=(0.16, 0.5, 0.84), batch_size: int = 4096, device="auto", seed: int | None = 0,
                    names: Sequence[str] | None = None) -> pd.DataFrame:
    """Posterior summaries for every row of a catalogue.

    Parameters
    ----------
    catalog : pandas.DataFrame or astropy.table.Table
        One object per row.
    model : Posterior, estimator, CatalogModel, str or path
        An NPE :class:`~astrobayes.inference.Posterior`, a fitted Regressor,
        MixtureDensityNetwork, ConditionalFlow, DeepEnsemble or Classifier,
        or the path it was saved under.
    columns : list of str, optional
        Input columns in the order the model was trained on; defaults to the
        columns recorded with the model (e.g. ``log_mass, feh`` for a saved
        stellar map). A missing column raises a ValueError naming it.
    n_draws : int
        Draws per row for models summarised from draws (Posterior,
        ConditionalFlow, DeepEnsemble). The Monte Carlo error of a mean is
        std / sqrt(n_draws). Regressor and MDN summaries are exact. Draws that
        would not fit in memory (``batch_size`` rows at once) raise a ValueError
        before any is made.
    quantiles : sequence of float
        Quantiles to report, each a column ``{param}_q{100 q}``.
    batch_size : int
        Rows handled together (memory bound): per network call for the
        exactly summarised models; flows and mixture posteriors put about
        65,536 draws in one call and hold at most 4·10⁶ proposals at once.
    device : {"auto", "cpu", "cuda"}
        Where the network runs; the model is moved there.
    seed : int or None
        Seed of the per-row random streams (see the module notes): the same
        seed gives the same numbers however the rows are batched or
        partitioned. None draws fresh entropy.
    names : list of str, optional
        Output names replacing the defaults (the prior's parameter names for a
        Posterior, ``y_0, y_1, ...`` for an estimator, ``0, 1, ...`` for
        classes).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``catalog`` (a pandas input) or 0..m-1 (a Table), with
        float64 columns ``{param}_mean``, ``{param}_std`` and one per quantile;
        a Posterior adds ``acceptance`` (fraction of its draws inside the prior
        support); a classifier gives ``prob_{class}`` and ``predicted_class``
        instead. Rows with any NaN or infinite input (or one beyond float32's
        range, ~3.4e38, such as a 1e99 sentinel) get NaN summaries (and
        ``predicted_class`` −1); the other rows are unaffected. A model
        that keeps an out-of-distribution reference (every estimator fitted
        by this version) adds ``ood_p_value``: the conformal p-value that
        the row's context vector is like those of the training inputs
        (:meth:`~astrobayes.estimators.Estimator.ood_p_value`; NaN for rows
        with bad inputs), and a one-line warning counts the rows with
        ``ood_p_value`` ≤ 0.01.

    Examples
    --------
    >>> import astrobayes, numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 2)); y = x[:, :1] + 0.1 * rng.normal(size=(256, 1))
    >>> reg = astrobayes.Regressor(hidden=(16,)); _ = reg.fit(x, y, epochs=2, progress=False)
    >>> catalog = pd.DataFrame({"g_r": [0.3, np.nan], "r_i": [0.1, 0.2]})
    >>> table = apply_estimator(catalog, reg, ["g_r", "r_i"], names=["redshift"])
    >>> list(table.columns)
    ['redshift_mean', 'redshift_std', 'redshift_q16', 'redshift_q50', 'redshift_q84']
    >>> bool(table["redshift_mean"].isna().iloc[1])
    True
    """
    wrapped = _wrap(model, names)
    quantiles = _check_quantiles(quantiles)
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ValueError(f"n_draws must be an integer >= 2, got {n_draws!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    columns = _resolve_columns(wrapped, columns)
    if wrapped.kind not in ("gaussian", "mixture", "classifier"):  # summarised from draws, batch_size rows at once
        _check_draw_memory(min(int(batch_size), max(len(catalog), 1)), int(n_draws), len(wrapped.parameters),
                           "n_draws (--draws)", copies=3)
    x = catalog_inputs(catalog, columns)
    keys = _row_keys(catalog, len(x))
    index = catalog.index if isinstance(catalog, pd.DataFrame) else pd.RangeIndex(len(x))
    wrapped.estimator.to(device)
    entropy = np.random.SeedSequence(seed).entropy
    good = _readable_rows(x)
    d = len(wrapped.parameters)
    estimator = wrapped.estimator
    reference = getattr(estimator, "ood", None)
    ood = np.full(len(x), np.nan)
    # the exactly summarised kinds run the feature network first on exactly the batch's rows: their context
    # vectors are kept from that pass; the draws of the others repeat rows, so their contexts are computed once more
    recorded = reference is not None and wrapped.kind in ("gaussian", "mixture", "classifier")

    def with_ood(rows, summarise):
        if recorded:
            with estimator.recording_context(limit=len(rows)) as recorder:
                out = summarise()
            ood[rows] = recorder.p_value()
            return out
        out = summarise()
        if reference is not None:
            ood[rows] = np.asarray(estimator.ood_p_value(x[rows]), dtype=float)
        return out

    def finish(data: dict) -> pd.DataFrame:
        if reference is not None:
            data["ood_p_value"] = ood
            message = ood_warning(ood, objects="rows")
            if message:
                warnings.warn(message, UserWarning, stacklevel=3)
        return pd.DataFrame(data, index=index)

    if wrapped.kind == "classifier":
        probs = np.full((len(x), d), np.nan)
        for start in range(0, len(good), batch_size):
            rows = good[start:start + batch_size]
            probs[rows] = with_ood(rows, lambda: np.asarray(wrapped.model.predict_proba(x[rows]), dtype=float))
        data = {f"prob_{name}": probs[:, j] for j, name in enumerate(wrapped.parameters)}
        predicted = np.full(len(x), -1, dtype=np.int64)
        predicted[good] = probs[good].argmax(axis=1)
        data["predicted_class"] = predicted
        return finish(data)
    mean, std = np.full((len(x), d), np.nan), np.full((len(x), d), np.nan)
    qs, acceptance = np.full((len(x), d, len(quantiles)), np.nan), np.full(len(x), np.nan)
    from tqdm.auto import tqdm

    from ..estimators.training import show_progress

    slow = wrapped.kind not in ("gaussian", "mixture")
    bar = tqdm(total=len(good), desc="posterior summaries", unit="row",
               disable=len(good) < (1_000 if slow else 200_000) or not show_progress(None))
    for start in range(0, len(good), batch_size):
        rows = good[start:start + batch_size]
        bar.update(len(rows))
        if wrapped.kind in ("gaussian", "mixture"):
            summarise = _gaussian if wrapped.kind == "gaussian" else _mixture
            mean[rows], std[rows], qs[rows] = with_ood(rows, lambda: summarise(wrapped, x[rows], quantiles))
        else:
            mean[rows], std[rows], qs[rows], acceptance[rows] = with_ood(
                rows, lambda: _sampled(wrapped, x[rows], keys[rows], int(n_draws), quantiles, entropy))
    bar.close()
    data = {}
    for j, param in enumerate(wrapped.parameters):
        data[f"{param}_mean"], data[f"{param}_std"] = mean[:, j], std[:, j]
        for iq, q in enumerate(quantiles):
            data[f"{param}_{quantile_label(q)}"] = qs[:, j, iq]
    if wrapped.kind == "posterior":
        data["acceptance"] = acceptance
        low = acceptance < wrapped.model.min_acceptance
        if low.any():
            warnings.warn(f"{int(low.sum())} of {len(good)} row(s) had fewer than {wrapped.model.min_acceptance:.0%} "
                          "of their posterior draws inside the prior support (see the 'acceptance' column); such "
                          "rows may lie outside the training simulations", UserWarning, stacklevel=2)
    return finish(data)


def posterior_draws(catalog, model, columns: Sequence[str] | None = None, *, n: int = 100, seed: int | None = 0,
                    device="auto") -> np.ndarray:
    """``n`` draws per row, shape (m, n, d), from the same kind of per-row streams as :func:`apply_estimator`.

    Rows with non-finite inputs (or beyond float32's range) get NaN draws. Not for classifiers.

    Examples
    --------
    >>> import astrobayes, numpy as np, pandas as pd
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 1), np.random.rand(64, 1), epochs=1, progress=False)
    >>> posterior_draws(pd.DataFrame({"flux": [1.0, 2.0]}), reg, ["flux"], n=5).shape
    (2, 5, 1)
    """
    wrapped = _wrap(model)
    if wrapped.kind == "classifier":
        raise TypeError("posterior_draws needs a density model; a classifier's class probabilities are its summary")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    columns = _resolve_columns(wrapped, columns)
    _check_draw_memory(max(len(catalog), 1), int(n), len(wrapped.parameters), "n (--samples)", copies=1)  # the returned array
    x = catalog_inputs(catalog, columns)
    keys = _row_keys(catalog, len(x))
    wrapped.estimator.to(device)
    # a stream apart from the summaries' (spawn key offset) so that the draws are not the summaries' first draws
    entropy = np.random.SeedSequence(None if seed is None else seed + 2**32).entropy
    out = np.full((len(x), int(n), len(wrapped.parameters)), np.nan)
    good = _readable_rows(x)
    for start in range(0, len(good), 4096):
        rows = good[start:start + 4096]
        out[rows] = _row_draws(wrapped, x[rows], keys[rows], int(n), entropy)[0]
    return out


def _readable_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the rows the float32 network can read: finite, and within float32's range (a sentinel such as
    1e99 would become inf inside the network, and must give that row NaN, not fail the catalogue)."""
    return np.flatnonzero((np.abs(x) <= np.finfo(np.float32).max).all(axis=1))


def _check_draw_memory(rows: int, n: int, d: int, argument: str, copies: int) -> None:
    """Refuse (ValueError) draws that could not fit in this machine's memory, before any is made.

    ``rows`` × ``n`` × ``d`` float64 draws are held at once, ``copies`` times (sorting for quantiles copies them).
    """
    from ..core.limits import memory_bytes

    needed = float(rows) * float(n) * float(d) * 8.0 * copies
    available = memory_bytes() or 2**36  # unknown: assume 64 GiB
    if needed > available:
        raise ValueError(f"{argument} = {n:,} would hold {needed / 2**30:,.1f} GiB of draws at once ({rows:,} row(s) × "
                         f"{n:,} draws × {d} parameter(s) as float64) on a machine with {available / 2**30:,.1f} GiB; "
                         f"ask for fewer draws" + (", or fewer rows per batch (batch_size, --batch-size)"
                                                   if argument.startswith("n_draws") and rows > 1 else ""))


def _resolve_columns(wrapped: CatalogModel, columns) -> list[str]:
    if columns is None:
        if wrapped.columns is None:
            raise ValueError("columns: this model records no input column names; pass the catalogue columns "
                             "in the order the model was trained on")
        columns = wrapped.columns
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of column names, got the string {columns!r}")
    columns = list(columns)
    expected = wrapped.n_inputs
    if expected is not None and len(columns) != expected:
        raise ValueError(f"columns names {len(columns)} column(s) {columns}, but the model was trained on "
                         f"{expected} input(s)")
    return columns
