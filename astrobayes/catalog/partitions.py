"""Catalogue-scale application with Dask (or LSDB): one model load per worker process.

``dask_apply`` adds one lazy task per partition. Each worker process loads
the model file once and keeps it in a module-level cache keyed by the
model's resolved path and the size and modification time of each of its
files, so a re-saved model is picked up while an unchanged one is never
read twice. The summaries equal :func:`~astrobayes.catalog.apply_estimator`
on the whole catalogue row for row, because every row's random stream is
derived from the seed and the row's integer index label (see
:mod:`astrobayes.catalog.apply`).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from .apply import apply_estimator, summary_columns
from .models import CatalogModel, load_catalog_model, model_files

__all__ = ["dask_apply", "cached_model", "cache_info", "clear_cache"]

_CACHE: dict[tuple, CatalogModel] = {}
_LOADS = {"count": 0}
_LOCK = threading.Lock()


def _cache_key(path) -> tuple:
    files = model_files(path)
    stamps = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists())
    return (str(files[1].with_suffix("").resolve()),) + stamps


def cached_model(path) -> CatalogModel:
    """The model saved at ``path``, loaded at most once per process while its files are unchanged.

    Examples
    --------
    >>> import astrobayes, numpy as np, tempfile, os
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 1), np.random.rand(64, 1), epochs=1, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "reg"); reg.save(path)
    >>> cached_model(path) is cached_model(path)
    True
    """
    key = _cache_key(path)
    with _LOCK:  # threads of one worker share the cache; the lock keeps them from loading it twice
        if key not in _CACHE:
            stale = [k for k in _CACHE if k[0] == key[0]]
            for k in stale:
                del _CACHE[k]
            _CACHE[key] = load_catalog_model(path)
            _LOADS["count"] += 1
        return _CACHE[key]


def cache_info() -> dict:
    """``{"loads": model files read by this process, "models": models held}``.

    On a cluster, ``client.run(cache_info)`` gives it for every worker.
    """
    return {"loads": _LOADS["count"], "models": len(_CACHE)}


def clear_cache() -> None:
    """Forget every cached model and reset the load counter."""
    with _LOCK:
        _CACHE.clear()
        _LOADS["count"] = 0


def _apply_partition(partition: pd.DataFrame, model_path: str, columns, options: dict) -> pd.DataFrame:
    if isinstance(partition.index, pd.MultiIndex) or not pd.api.types.is_integer_dtype(partition.index.dtype):
        raise ValueError("dask_apply needs an integer index (a row number or object id): each row's random stream "
                         f"is derived from it; this partition's index has dtype {partition.index.dtype}. "
                         "Use ddf.reset_index() or set an integer id column as the index")
    return apply_estimator(partition, cached_model(model_path), columns, **options)


def dask_apply(ddf, model_path, columns=None, **options):
    """Lazily apply a saved model to every partition of a Dask DataFrame or an LSDB catalogue.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame or lsdb.Catalog
        Anything with ``map_partitions(func, ..., meta=...)`` whose
        partitions are pandas DataFrames with an integer index (row number or
        object id; an LSDB catalogue's ``_healpix_29`` index qualifies).
    model_path : str or path
        A model saved with ``save(path)``; workers must be able to read it.
    columns : list of str, optional
        Input columns (default: those recorded with the model).
    **options
        ``n_draws``, ``quantiles``, ``batch_size``, ``device``, ``seed``,
        ``names``: as for :func:`~astrobayes.catalog.apply_estimator`.

    Returns
    -------
    dask.dataframe.DataFrame (or lsdb.Catalog)
        Lazy; ``.compute()`` gives the summary columns indexed like ``ddf``.

    Notes
    -----
    Dask's nanny starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``
    (to hand freed memory back to the operating system), which makes every
    temporary array above 64 KiB a fresh memory mapping; the exact MDN
    summaries then run at half their in-memory rate
    (``benchmarks/catalog_scale.py``; any value of the variable turns off
    glibc's adaptive mapping threshold). Where memory allows, start the
    workers without it; the nanny also writes it into the starting
    process's environment, where later workers inherit it, so remove it
    there too::

        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=4, threads_per_worker=1)

    Examples
    --------
    >>> import astrobayes, numpy as np, pandas as pd, tempfile, os
    >>> import dask.dataframe as dd
    >>> reg = astrobayes.Regressor(hidden=(8,))
    >>> _ = reg.fit(np.random.rand(64, 1), np.random.rand(64, 1), epochs=1, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "reg"); reg.save(path)
    >>> ddf = dd.from_pandas(pd.DataFrame({"flux": np.linspace(0, 1, 10)}), npartitions=2)
    >>> dask_apply(ddf, path, ["flux"]).compute().shape
    (10, 5)
    """
    if not hasattr(ddf, "map_partitions"):
        raise TypeError(f"ddf must be a Dask DataFrame or an LSDB catalogue (with map_partitions), "
                        f"got {type(ddf).__name__}")
    unknown = sorted(set(options) - {"n_draws", "quantiles", "batch_size", "device", "seed", "names"})
    if unknown:
        raise TypeError(f"dask_apply got unknown option(s) {unknown}")
    if getattr(ddf, "npartitions", 1) > 1 and getattr(ddf, "known_divisions", True) is False:
        raise ValueError("ddf: its index divisions are unknown (e.g. from read_parquet or read_csv, whose "
                         "partitions each count rows from 0), so two rows could share an index label and with it "
                         "a random stream; give it a unique sorted index first, e.g. ddf.set_index('objid')")
    model_path = str(Path(model_path))
    wrapped = cached_model(model_path)  # here too: checks the file early and gives the output columns
    if options.get("names") is not None:
        wrapped = load_catalog_model(model_path, options["names"])
    names = summary_columns(wrapped, options.get("quantiles", (0.16, 0.5, 0.84)))
    index = getattr(getattr(ddf, "_meta", None), "index", pd.RangeIndex(0))
    meta = pd.DataFrame({name: pd.Series(dtype=np.int64 if name == "predicted_class" else np.float64)
                         for name in names}, index=index[:0])
    columns = list(columns) if columns is not None else None
    return ddf.map_partitions(_apply_partition, model_path, columns, dict(options), meta=meta)
