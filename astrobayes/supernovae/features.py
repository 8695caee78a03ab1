"""Lightcurves → padded sequences for recurrent networks, following Charnock & Moss (2017).

Charnock & Moss (2017, ApJL 837, L28; Sect. 2) feed a recurrent network one
vector per *epoch*: observations in different bands taken close together (the
same night) are grouped into one step whose time is the mean of theirs; a band
missing from a step is filled from that band's neighbouring observations; time
counts from the first observation; the host-galaxy photo-z may be appended to
every step; and the training set is augmented by repeating the random filling
of missing values. :func:`build_sequences` does this, with three additions:

* each step also carries the time since the previous step and one 0/1 flag per
  band saying whether that band was *observed* there or filled in, so the
  network can tell data from interpolation;
* fluxes and errors are divided by one scale per object (``normalise="object"``,
  the largest flux in any band: colours are kept) or per band
  (``normalise="band"``), and log₁₀ of that scale is a channel, so the
  apparent brightness is not lost; ``normalise="none"`` keeps FLUXCAL;
* ``noise=True`` (augmentation) first redraws every flux from N(flux, flux_err).

Channels, in order: ``t`` (days since the first observation, or since the
brightest point with ``time_origin="peak"``) and ``dt`` (both / ``time_scale``), ``flux_<b>`` and
``flux_err_<b>`` for each band, ``observed_<b>``, ``log10_scale`` (or one per
band), and ``redshift``, ``redshift_err`` when ``use_redshift``.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from astrobayes.core.tables import column_values
from astrobayes.core.validation import Masked

from .io import Lightcurves

__all__ = ["MAX_REDSHIFT", "SequenceConfig", "Sequences", "build_sequences", "group_epochs"]

#: a metadata redshift above this is taken for a mislabelled velocity (no supernova is observed beyond z ≈ 10)
MAX_REDSHIFT = 20.0

_NORMALISE = ("object", "band", "none")
_FILL = ("interpolate", "random")


@dataclass(frozen=True)
class SequenceConfig:
    """How lightcurves become sequences (kept with a trained model, so that new data are treated alike).

    Attributes
    ----------
    bands : tuple of str
        Band channels, in order.
    group_window : float
        Observations less than this many days after the first of a group, in
        bands not yet in it, join that group (Charnock & Moss used ~1 day bins).
    normalise : {"object", "band", "none"}
    use_redshift : bool
        Append a redshift and its error from the metadata to every step.
    redshift_columns : (str, str)
        The metadata columns of that redshift and its error. For the SNPhotCC
        data use ``("host_photoz", "host_photoz_err")``, as Charnock & Moss
        did: there ``redshift`` is the spectroscopic redshift (error exactly
        0.005) for the typed objects and the photo-z otherwise, so its error
        would tell the network which objects were typed — a sample with many
        more Ia than the rest.
    time_scale : float
        Days per unit of the ``t``/``dt`` channels.
    time_origin : {"first", "peak"}
        Count ``t`` from the first observation (Charnock & Moss; the only
        choice that works for partial lightcurves) or from the epoch of the
        largest flux in any band (negative before it).
    max_length : int or None
        Keep at most this many steps (the first ones) — a memory cap. The
        flux scale is still taken from the whole lightcurve, so this is *not*
        a way to mimic partial lightcurves: use :meth:`Lightcurves.truncate`.
    """

    bands: tuple = ("g", "r", "i", "z")
    group_window: float = 1.0
    normalise: str = "object"
    use_redshift: bool = True
    redshift_columns: tuple = ("redshift", "redshift_err")
    time_scale: float = 100.0
    time_origin: str = "first"
    max_length: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "bands", tuple(str(b) for b in self.bands))
        columns = tuple(self.redshift_columns)
        if len(columns) != 2 or not all(isinstance(c, str) for c in columns):
            raise ValueError(f"redshift_columns must be two column names (redshift, error), got {self.redshift_columns!r}")
        object.__setattr__(self, "redshift_columns", columns)
        if not self.bands:
            raise ValueError("bands must name at least one band")
        if not (np.isfinite(self.group_window) and self.group_window > 0):
            raise ValueError(f"group_window must be a positive number of days, got {self.group_window}")
        if self.normalise not in _NORMALISE:
            raise ValueError(f"normalise must be one of {_NORMALISE}, got {self.normalise!r}")
        if self.time_origin not in ("first", "peak"):
            raise ValueError(f"time_origin must be 'first' or 'peak', got {self.time_origin!r}")
        if not (np.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(f"time_scale must be positive, got {self.time_scale}")
        if self.max_length is not None and int(self.max_length) < 1:
            raise ValueError(f"max_length must be >= 1 or None, got {self.max_length}")

    @property
    def channels(self) -> list[str]:
        names = ["t", "dt"] + [f"flux_{b}" for b in self.bands] + [f"flux_err_{b}" for b in self.bands]
        names += [f"observed_{b}" for b in self.bands]
        names += ([f"log10_scale_{b}" for b in self.bands] if self.normalise == "band" else
                  ["log10_scale"] if self.normalise == "object" else [])
        if self.use_redshift:
            names += ["redshift", "redshift_err"]
        return names

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bands"] = list(self.bands)
        out["redshift_columns"] = list(self.redshift_columns)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> SequenceConfig:
        return cls(**{**values, "bands": tuple(values["bands"]),
                      "redshift_columns": tuple(values.get("redshift_columns", ("redshift", "redshift_err")))})


class Sequences(NamedTuple):
    """Padded sequences: ``values`` (n, L, C) float32, ``mask`` (n, L) bool, object ids and channel names."""

    values: np.ndarray
    mask: np.ndarray
    object_id: np.ndarray
    channels: list

    def masked(self) -> Masked:
        """The torch ``Masked`` pair an estimator with an :class:`~astrobayes.estimators.RNNEmbedding` takes."""
        return Masked(torch.from_numpy(self.values), torch.from_numpy(self.mask))

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(axis=1)


def group_epochs(time: np.ndarray, band: np.ndarray, window: float) -> np.ndarray:
    """Group index of each observation (times sorted): a new group starts after ``window`` days or at a repeated band.

    Examples
    --------
    >>> group_epochs(np.array([0.0, 0.01, 0.02, 3.0, 3.01, 3.02]), np.array([0, 1, 1, 0, 1, 2]), 1.0).tolist()
    [0, 0, 1, 2, 2, 2]
    """
    groups = np.empty(len(time), dtype=np.int64)
    g, start, used = 0, time[0] if len(time) else 0.0, 0
    for k in range(len(time)):
        bit = 1 << int(band[k])
        if time[k] - start >= window or used & bit:
            g += 1
            start, used = time[k], 0
        used |= bit
        groups[k] = g
    return groups


def _fill_band(values: np.ndarray, observed: np.ndarray, step_time: np.ndarray, fill: str,
               rng: np.random.Generator | None) -> np.ndarray:
    """Fill the unobserved steps of one band column: linear interpolation, or uniform between the neighbours."""
    if observed.all():
        return values
    if not observed.any():
        return np.zeros_like(values)
    known_t, known_v = step_time[observed], values[observed]
    if fill == "interpolate":
        out = values.copy()
        out[~observed] = np.interp(step_time[~observed], known_t, known_v)  # ends: nearest observed value
        return out
    idx = np.flatnonzero(observed)
    missing = np.flatnonzero(~observed)
    after = np.searchsorted(idx, missing)
    prev = known_v[np.clip(after - 1, 0, len(idx) - 1)]
    nxt = known_v[np.clip(after, 0, len(idx) - 1)]
    out = values.copy()
    out[missing] = prev + (nxt - prev) * rng.uniform(size=len(missing))
    return out


def build_sequences(lightcurves: Lightcurves, config: SequenceConfig | None = None, *, fill: str = "interpolate",
                    noise: bool = False, seed=None) -> Sequences:
    """Turn lightcurves into padded, left-aligned sequences with one step per epoch.

    Parameters
    ----------
    lightcurves : Lightcurves
    config : SequenceConfig, optional
        Default: the collection's bands and the defaults of :class:`SequenceConfig`.
    fill : {"interpolate", "random"}
        Missing band values: linear interpolation in time between that band's
        neighbouring observed steps (deterministic, for prediction), or a
        uniform draw between them (Charnock & Moss's augmentation, for training).
        Before a band's first or after its last observation the nearest value
        is used; a band never observed is 0 with its ``observed`` flag 0.
    noise : bool
        Redraw each flux from N(flux, flux_err) first (augmentation).
    seed : int or numpy Generator, optional
        For ``fill="random"`` and ``noise``.

    Returns
    -------
    Sequences

    Examples
    --------
    >>> from astrobayes.supernovae import read_snana, SPCC_SAMPLE
    >>> lcs = read_snana(SPCC_SAMPLE)
    >>> seq = build_sequences(lcs)
    >>> seq.values.shape[0] == len(lcs), seq.values.shape[2] == len(seq.channels)
    (True, True)
    >>> seq.channels[:4]
    ['t', 'dt', 'flux_g', 'flux_r']
    """
    if not isinstance(lightcurves, Lightcurves):
        raise TypeError(f"lightcurves must be a Lightcurves collection, got {type(lightcurves).__name__}")
    config = config or SequenceConfig(bands=lightcurves.bands)
    if fill not in _FILL:
        raise ValueError(f"fill must be one of {_FILL}, got {fill!r}")
    unknown = sorted(set(lightcurves.bands) - set(config.bands))
    if unknown:
        raise ValueError(f"the lightcurves have band(s) {unknown} that this configuration (bands {list(config.bands)}) "
                         "does not know; select those observations out or train with these bands")
    absent = [b for b in config.bands if b not in lightcurves.bands]
    if absent:
        warnings.warn(f"no observation of the lightcurves is in band(s) {absent}, which this configuration expects: "
                      "those channels are zero with their 'observed' flag 0 for every object; a network trained "
                      "with them will see unusual input", UserWarning, stacklevel=2)
    rng = np.random.default_rng(seed) if (fill == "random" or noise) else None
    offsets, time, band_local, flux, flux_err = lightcurves.arrays()
    # map the collection's band indices onto the configuration's channel order
    band = np.array([config.bands.index(b) for b in lightcurves.bands], dtype=np.int64)[band_local]
    if noise:
        flux = flux + flux_err * rng.standard_normal(len(flux))
    n_obj, n_bands = len(lightcurves), len(config.bands)
    if config.use_redshift:
        z_name, err_name = config.redshift_columns
        absent = [c for c in (z_name, err_name) if c not in lightcurves.meta.colnames]
        if absent:
            raise ValueError(f"the metadata has no column(s) {absent}, which this configuration reads as the "
                             f"redshift and its error (redshift_columns={list(config.redshift_columns)})")
        z, z_unit = column_values(lightcurves.meta, z_name, "object")  # NaN where masked; names a text column
        z_err, _ = column_values(lightcurves.meta, err_name, "object")
        bad = ~np.isfinite(z) | (z < 0)
        if bad.any():
            raise ValueError(f"column {z_name!r} of the metadata is missing or negative for {int(bad.sum())} object(s) "
                             f"(e.g. {lightcurves.ids[bad][:3].tolist()}); use a configuration with "
                             "use_redshift=False, or give the objects (host) redshifts")
        z_unit = z_unit if z_unit is not None and z_unit.physical_type != "redshift" else None
        if z_unit is not None or z.max() > MAX_REDSHIFT:
            # a velocity (cz in km/s) labelled as a redshift: the network would see numbers 10⁴ times too large
            said = f"has unit {z_unit}" if z_unit is not None else f"reaches {z.max():.6g}"
            raise ValueError(f"column {z_name!r} of the metadata {said}, which is not a redshift (a plain number, "
                             f"below {MAX_REDSHIFT:g}); if these are recession velocities cz in km/s, divide them by "
                             "c = 299792.458 km/s")
        z_err = np.where(np.isfinite(z_err) & (z_err >= 0), z_err, 0.0)

    per_object = []
    for i in range(n_obj):
        lo, hi = offsets[i], offsets[i + 1]
        t, b, f, e = time[lo:hi], band[lo:hi], flux[lo:hi], flux_err[lo:hi]
        t = t - t[0]
        groups = group_epochs(t, b, config.group_window)
        n_steps = groups[-1] + 1
        counts = np.bincount(groups, minlength=n_steps)
        step_time = np.bincount(groups, weights=t, minlength=n_steps) / counts
        values = np.zeros((n_steps, n_bands))
        errors = np.zeros((n_steps, n_bands))
        observed = np.zeros((n_steps, n_bands), dtype=bool)
        values[groups, b] = f
        errors[groups, b] = e
        observed[groups, b] = True
        if config.normalise == "object":
            scale = np.full(n_bands, max(f.max(), np.median(e), 1e-12))
        elif config.normalise == "band":
            scale = np.array([max(f[b == k].max(), np.median(e[b == k]), 1e-12) if (b == k).any() else 1.0
                              for k in range(n_bands)])
        else:
            scale = np.ones(n_bands)
        for k in range(n_bands):
            values[:, k] = _fill_band(values[:, k], observed[:, k], step_time, fill, rng)
            err_k = _fill_band(errors[:, k], observed[:, k], step_time, fill, rng)
            errors[:, k] = err_k if observed[:, k].any() else e.max()  # a band never observed: a large error
        dt = np.diff(step_time, prepend=step_time[0])
        origin = step_time[groups[np.argmax(f)]] if config.time_origin == "peak" else 0.0
        parts = [(step_time[:, None] - origin) / config.time_scale, dt[:, None] / config.time_scale, values / scale,
                 errors / scale, observed.astype(float)]
        if config.normalise == "object":
            parts.append(np.full((n_steps, 1), np.log10(scale[0])))
        elif config.normalise == "band":
            parts.append(np.broadcast_to(np.log10(scale), (n_steps, n_bands)))
        if config.use_redshift:
            parts.append(np.broadcast_to([z[i], z_err[i]], (n_steps, 2)))
        steps = np.concatenate(parts, axis=1)
        if config.max_length is not None:
            steps = steps[: int(config.max_length)]
        per_object.append(steps)

    length = max(len(s) for s in per_object)
    n_channels = per_object[0].shape[1]
    out = np.zeros((n_obj, length, n_channels), dtype=np.float32)
    mask = np.zeros((n_obj, length), dtype=bool)
    for i, steps in enumerate(per_object):
        out[i, : len(steps)] = steps
        mask[i, : len(steps)] = True
    finite = np.isfinite(out)
    if not finite.all():
        # a time span, flux or redshift beyond float32's range (~3e38): a unit mistake, never a usable input
        objects = lightcurves.ids[~finite.all(axis=(1, 2))]
        channels = [config.channels[k] for k in np.flatnonzero(~finite.all(axis=(0, 1)))]
        raise ValueError(f"the sequences of {objects.size} object(s) (e.g. {objects[:3].tolist()}) overflow float32 "
                         f"in channel(s) {channels}: check the units and size of their times, fluxes and "
                         "redshift errors")
    return Sequences(out, mask, lightcurves.ids.copy(), config.channels)
