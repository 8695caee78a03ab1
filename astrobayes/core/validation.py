"""Checking user arrays before they reach torch.

Every public estimator method passes its inputs through here, so that bad
input becomes a ``ValueError``/``TypeError`` naming the argument instead of a
torch traceback or, worse, a silently wrong answer.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Sequence

import astropy.units as u
import numpy as np
import torch
from astropy.table import Table

__all__ = ["Masked", "as_tensor", "as_inputs", "check_same_length", "n_rows", "index_inputs", "inputs_to",
           "numeric_columns"]


class Masked(NamedTuple):
    """Padded variable-length data: ``values`` (n, L, C) and ``mask`` (n, L).

    ``mask`` is True where an element is observed. Sequences (lightcurves) are
    left-aligned: the observed steps come first. Sets (cluster members) may
    have their padding anywhere.
    """

    values: torch.Tensor
    mask: torch.Tensor


def describe_rows(bad_rows: np.ndarray, limit: int = 10) -> str:
    """"3, 7, ... (12 more)": the first ``limit`` row indices of a problem, for error messages."""
    shown = ", ".join(str(int(i)) for i in bad_rows[:limit])
    more = f", ... ({len(bad_rows) - limit} more)" if len(bad_rows) > limit else ""
    return f"{shown}{more}"


def as_tensor(
    value,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    allow_empty: bool = False,
    allow_nonfinite: bool = False,
) -> torch.Tensor:
    """Convert ``value`` to a CPU tensor and check it.

    Parameters
    ----------
    value : array-like, torch.Tensor or pandas object
        The data. Astropy Quantities are refused: estimators are unit-free, so
        the caller converts with ``q.to_value(unit)`` and records the unit.
    name : str
        Argument name used in error messages.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    dtype : torch.dtype
        Target dtype (``torch.long`` for class labels).
    allow_empty, allow_nonfinite : bool
        Whether zero rows or NaN/inf entries are acceptable.

    Examples
    --------
    >>> as_tensor([[1.0, 2.0]], "x").shape
    torch.Size([1, 2])
    >>> as_tensor([[1.0, float("nan")]], "x")
    Traceback (most recent call last):
    ...
    ValueError: x has 1 row(s) with NaN or inf (indices 0)
    """
    if value is None:
        raise TypeError(f"{name} is required, got None")
    if hasattr(value, "unit") and hasattr(value, "value"):
        raise TypeError(
            f"{name} is an astropy Quantity with unit {value.unit}; estimators work on plain numbers, "
            f"pass {name}.to_value(unit) and keep the unit yourself"
        )
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        value = value.to_numpy()
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu")
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise TypeError(f"{name} could not be read as an array ({err})") from None
        if array.dtype == object or array.dtype.kind in "USV":
            raise TypeError(f"{name} must be numeric, got an array of dtype {array.dtype}")
        tensor = torch.from_numpy(np.array(array, order="C", copy=not array.flags.c_contiguous))
    if tensor.dtype == torch.bool and dtype != torch.bool:
        tensor = tensor.to(torch.uint8)
    if dtype.is_floating_point and not (tensor.dtype.is_floating_point or tensor.dtype in
                                        (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)):
        raise TypeError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    if dtype == torch.long:
        if tensor.dtype.is_floating_point:
            if not torch.isfinite(tensor).all() or (tensor != tensor.round()).any():
                raise ValueError(f"{name} must hold integer class labels")
        tensor = tensor.to(torch.long)
    else:
        tensor = tensor.to(dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if tensor.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {tuple(tensor.shape)}")
    if tensor.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per object, got a scalar")
    if not allow_empty and tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if not allow_nonfinite and tensor.is_floating_point():
        finite = torch.isfinite(tensor).reshape(tensor.shape[0], -1).all(dim=1)
        if not finite.all():
            bad = torch.nonzero(~finite).flatten().numpy()
            raise ValueError(f"{name} has {len(bad)} row(s) with NaN or inf (indices {describe_rows(bad)})")
    return tensor


def as_inputs(x, name: str = "x", *, ndim=None) -> torch.Tensor | Masked:
    """Check estimator inputs: an array, or ``(values, mask)`` for padded data.

    Padded entries (mask False) may hold NaN; they are zeroed so that they can
    never leak into a sum.
    """
    if isinstance(x, tuple) and len(x) == 2 and not isinstance(x, torch.Tensor):
        mask = as_tensor(x[1], f"{name} mask", dtype=torch.bool, ndim=2)
        values = as_tensor(x[0], f"{name} values", ndim=3, allow_nonfinite=True)
        if values.shape[:2] != mask.shape:
            raise ValueError(f"{name}: values have shape {tuple(values.shape)} but mask has {tuple(mask.shape)}; "
                             "expected values (n, length, channels) and mask (n, length)")
        observed = values[mask]
        if not torch.isfinite(observed).all():
            rows = torch.nonzero((~torch.isfinite(values) & mask[..., None]).any(-1).any(-1)).flatten().numpy()
            raise ValueError(f"{name} has {len(rows)} object(s) with NaN or inf in observed entries (indices {describe_rows(rows)})")
        empty = ~mask.any(dim=1)
        if empty.any():
            rows = torch.nonzero(empty).flatten().numpy()
            raise ValueError(f"{name} has {len(rows)} object(s) with no observed entries (indices {describe_rows(rows)})")
        values = torch.where(mask[..., None], values, torch.zeros((), dtype=values.dtype))
        return Masked(values, mask)
    return as_tensor(x, name, ndim=ndim)


def n_rows(inputs: torch.Tensor | Masked) -> int:
    """Number of objects in a tensor or a :class:`Masked` pair."""
    return int(inputs.values.shape[0] if isinstance(inputs, Masked) else inputs.shape[0])


def index_inputs(inputs, index):
    """Select rows of a tensor or of a :class:`Masked` pair."""
    if isinstance(inputs, Masked):
        return Masked(inputs.values[index], inputs.mask[index])
    return inputs[index]


def inputs_to(inputs, device, non_blocking: bool = False):
    """Move a tensor or a :class:`Masked` pair to ``device``."""
    if isinstance(inputs, Masked):
        return Masked(inputs.values.to(device, non_blocking=non_blocking), inputs.mask.to(device, non_blocking=non_blocking))
    return inputs.to(device, non_blocking=non_blocking)


def check_same_length(**arrays) -> int:
    """Check that every named array has the same number of rows; return it."""
    lengths = {name: n_rows(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"mismatched lengths: {described} rows")
    return next(iter(lengths.values()))


def numeric_columns(data, name: str = "data") -> tuple[dict[str, torch.Tensor], dict[str, u.UnitBase]]:
    """Numeric per-object columns of a table as float64 tensors (N,) and their units.

    ``data`` is an astropy Table/QTable, a pandas DataFrame or a dict of
    columns; Quantity columns give their values in their own unit. Text
    columns are skipped; NaN, inf or masked entries raise a ValueError naming
    the column and rows.

    Examples
    --------
    >>> columns, units = numeric_columns({"flux": [1.0, 2.0], "name": ["a", "b"]})
    >>> list(columns), columns["flux"].dtype
    (['flux'], torch.float64)
    """
    if data is None:
        return {}, {}
    if hasattr(data, "columns") and hasattr(data, "to_numpy") and not isinstance(data, Table):  # pandas
        from pandas.api.types import is_numeric_dtype
        # nullable pandas columns (Int64, Float64 with pd.NA) become floats with NaN, which is then reported
        items = [(str(key), data[key].to_numpy(dtype=float, na_value=np.nan) if is_numeric_dtype(data[key])
                  else data[key].to_numpy()) for key in data.columns]
    elif isinstance(data, Table):
        items = [(key, data[key]) for key in data.colnames]
    elif isinstance(data, Mapping):
        items = list(data.items())
    else:
        raise TypeError(f"{name} must be an astropy Table, a pandas DataFrame or a dict of columns, got "
                        f"{type(data).__name__}")
    columns, units, length = {}, {}, None
    for column_name, column in items:
        unit = getattr(column, "unit", None)
        if getattr(column, "mask", None) is not None and np.any(column.mask):
            raise ValueError(f"{name} column {column_name!r} has masked entries; drop or fill those rows first")
        values = column.value if isinstance(column, u.Quantity) else np.asarray(column)
        if values.dtype.kind not in "fiub":
            continue  # names, identifiers, flags as text: not used by the likelihood
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"{name} column {column_name!r} must be one value per object, got shape {values.shape}")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name} column {column_name!r} has {bad.size} NaN or inf value(s) (rows "
                             f"{', '.join(map(str, bad[:5]))}{' ...' if bad.size > 5 else ''})")
        if length is not None and len(values) != length:
            raise ValueError(f"{name} column {column_name!r} has {len(values)} rows, others have {length}")
        length = len(values)
        columns[str(column_name)] = torch.from_numpy(values)
        units[str(column_name)] = u.Unit(unit) if unit is not None else u.dimensionless_unscaled
    if not columns:
        raise ValueError(f"{name} has no numeric columns")
    if length == 0:
        raise ValueError(f"{name} has no rows")
    return columns, units
