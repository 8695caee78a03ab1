"""Apply saved amortized models to whole catalogues, in memory or with Dask / LSDB.

>>> from astrobayes.catalog import apply_estimator, dask_apply   # doctest: +SKIP
>>> summaries = apply_estimator(table, "models/photo_z", ["g_r", "r_i"])  # doctest: +SKIP
"""
from .apply import apply_estimator, catalog_inputs, posterior_draws, quantile_label, summary_columns
from .models import CatalogModel, as_catalog_model, load_catalog_model
from .partitions import cache_info, cached_model, clear_cache, dask_apply

__all__ = ["apply_estimator", "posterior_draws", "summary_columns", "quantile_label", "catalog_inputs",
           "CatalogModel", "as_catalog_model", "load_catalog_model", "dask_apply", "cached_model", "cache_info",
           "clear_cache"]
