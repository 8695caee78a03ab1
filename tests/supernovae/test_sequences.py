"""Tests of lightcurves → recurrent-network sequences (astrobayes.supernovae.features)."""
import numpy as np
import pytest
import torch
from astropy.table import Table

from astrobayes.supernovae import SPCC_SAMPLE, SPCC_TRUTH
from astrobayes.supernovae.features import SequenceConfig, Sequences, build_sequences, group_epochs
from astrobayes.supernovae.io import Lightcurves
from astrobayes.supernovae.snana import read_snana


def _lightcurves(rows, meta=None, bands=None):
    table = Table(rows=rows, names=("object_id", "time", "band", "flux", "flux_err"))
    table["object_id"] = table["object_id"].astype(str)
    return Lightcurves(table, meta, bands=bands)


@pytest.fixture(scope="module")
def sample():
    return read_snana(SPCC_SAMPLE, truth=SPCC_TRUTH)


@pytest.fixture(scope="module")
def sample_sequences(sample):
    return build_sequences(sample, SequenceConfig(bands=sample.bands))


# two bands; g missing from the middle epoch (t = 5), which lies 4.95 of 10.05 days between its neighbours
GAP = [("a", 0.0, "g", 10.0, 1.0), ("a", 0.1, "r", 20.0, 1.0), ("a", 5.0, "r", 40.0, 1.0),
       ("a", 10.0, "g", 30.0, 1.0), ("a", 10.2, "r", 50.0, 2.0)]


# ---------------------------------------------------------------------- group_epochs
@pytest.mark.parametrize("time, band, window, expected", [
    ([0.0, 0.01, 0.02, 3.0, 3.01, 3.02], [0, 1, 1, 0, 1, 2], 1.0, [0, 0, 1, 2, 2, 2]),  # a repeated band splits
    ([0.0, 0.5, 0.99, 1.0, 1.2], [0, 1, 2, 3, 0], 1.0, [0, 0, 0, 1, 1]),  # 1.0 days after the first: a new group
    ([0.0, 0.6, 1.2, 1.8], [0, 1, 2, 3], 1.0, [0, 0, 1, 1]),  # the window counts from the group's first, not the last
    ([0.0, 0.6, 1.2, 1.8], [0, 1, 2, 3], 2.0, [0, 0, 0, 0]),
    ([0.0, 0.6, 1.2, 1.8], [0, 1, 2, 3], 0.5, [0, 1, 2, 3]),
    ([0.0, 0.1, 0.2], [2, 2, 2], 10.0, [0, 1, 2]),  # one band: one observation per group
    ([0.0, 0.1, 0.2, 0.3], [0, 1, 0, 1], 10.0, [0, 0, 1, 1]),  # the repeat starts a group that then fills up
    ([5.0], [3], 1.0, [0]),
])
def test_group_epochs(time, band, window, expected):
    assert group_epochs(np.array(time), np.array(band), window).tolist() == expected


def test_group_epochs_empty():
    assert group_epochs(np.array([]), np.array([], dtype=int), 1.0).tolist() == []


# ---------------------------------------------------------------------- configuration
def test_config_validation_and_dict_round_trip():
    config = SequenceConfig(bands="gri", group_window=0.5, normalise="band", use_redshift=False, time_scale=50.0,
                            max_length=7, extra={"note": 1})
    assert config.bands == ("g", "r", "i")
    assert SequenceConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["bands"] == ["g", "r", "i"]
    for bad in (dict(bands=()), dict(group_window=0.0), dict(group_window=np.nan), dict(normalise="max"),
                dict(time_scale=-1.0), dict(max_length=0)):
        with pytest.raises(ValueError):
            SequenceConfig(**bad)


@pytest.mark.parametrize("normalise, use_redshift, n_scale", [("object", True, 1), ("band", False, 4),
                                                              ("none", True, 0)])
def test_channel_names(normalise, use_redshift, n_scale):
    config = SequenceConfig(bands=("g", "r", "i", "z"), normalise=normalise, use_redshift=use_redshift)
    channels = config.channels
    assert channels[:2] == ["t", "dt"]
    assert channels[2:6] == ["flux_g", "flux_r", "flux_i", "flux_z"]
    assert channels[6:10] == ["flux_err_g", "flux_err_r", "flux_err_i", "flux_err_z"]
    assert channels[10:14] == ["observed_g", "observed_r", "observed_i", "observed_z"]
    assert len(channels) == 14 + n_scale + 2 * use_redshift
    assert (channels[-2:] == ["redshift", "redshift_err"]) == use_redshift
    assert len(set(channels)) == len(channels)


# ---------------------------------------------------------------------- shapes and masks
def test_shapes_and_left_aligned_masks(sample, sample_sequences):
    seq = sample_sequences
    config = SequenceConfig(bands=sample.bands)
    assert isinstance(seq, Sequences)
    assert seq.channels == config.channels
    n, length, n_channels = seq.values.shape
    assert n == len(sample) and n_channels == len(config.channels) == 17
    assert seq.values.dtype == np.float32 and seq.mask.dtype == bool
    assert seq.object_id.tolist() == sample.ids.tolist()
    offsets, time, band, *_ = sample.arrays()
    lengths = []
    for i in range(n):
        t, b = time[offsets[i]:offsets[i + 1]], band[offsets[i]:offsets[i + 1]]
        lengths.append(group_epochs(t - t[0], b, 1.0).max() + 1)
    assert seq.lengths.tolist() == lengths
    assert length == max(lengths)
    for i, k in enumerate(lengths):
        assert seq.mask[i, :k].all() and not seq.mask[i, k:].any()
        assert (seq.values[i, k:] == 0).all()
    assert np.isfinite(seq.values).all()
    masked = seq.masked()
    assert isinstance(masked.values if hasattr(masked, "values") else masked[0], torch.Tensor)
    assert tuple(masked[0].shape) == seq.values.shape and tuple(masked[1].shape) == seq.mask.shape


def test_max_length(sample):
    seq = build_sequences(sample, SequenceConfig(bands=sample.bands, max_length=5))
    full = build_sequences(sample, SequenceConfig(bands=sample.bands))
    assert seq.values.shape[1] == 5 and (seq.lengths == np.minimum(full.lengths, 5)).all()
    assert np.array_equal(seq.values, full.values[:, :5])


# ---------------------------------------------------------------------- values
def test_time_channels(sample, sample_sequences):
    seq, channels = sample_sequences, sample_sequences.channels
    i = sample.ids.tolist().index("185754")
    t = seq.values[i, :, channels.index("t")] * 100.0  # time_scale 100 d
    dt = seq.values[i, :, channels.index("dt")] * 100.0
    k = seq.lengths[i]
    # first epoch: g r i at 56178.234/.250/.266 and z at 56179.211, all within a day of the first
    assert t[0] == pytest.approx((0.0 + 0.016 + 0.032 + 0.977) / 4, abs=1e-4)
    assert t[1] == pytest.approx(56180.219 + 0.015 / 3 + 0.031 / 3 - 56178.234, abs=1e-4)  # g r i at .219/.234/.250
    assert dt[0] == 0 and np.allclose(dt[1:k], np.diff(t[:k]), atol=1e-4)
    assert (dt[1:k] > 0).all()


def test_observed_flags_by_hand(sample, sample_sequences):
    """DES_SN185754: the first OBS rows of the file, grouped by hand with a 1-day window."""
    seq, channels = sample_sequences, sample_sequences.channels
    i = sample.ids.tolist().index("185754")
    flags = seq.values[i, :8, [channels.index(f"observed_{b}") for b in "griz"]].T
    expected = [[1, 1, 1, 1],  # 56178.234 g, .250 r, .266 i, 56179.211 z (0.977 d after the first)
                [1, 1, 1, 0],  # 56180.219 g, .234 r, .250 i
                [1, 1, 0, 1],  # 56188.191 z, .340 g, .355 r
                [0, 0, 1, 0],  # 56189.195 i (1.004 d after 56188.191)
                [1, 1, 0, 1],  # 56194.215 g, .223 r, .227 z
                [0, 0, 1, 0],  # 56200.234 i
                [1, 1, 0, 1],  # 56208.160 g, .176 r, .191 z
                [0, 0, 1, 0]]  # 56210.156 i
    assert flags.tolist() == expected
    # observed flux values are the file's FLUXCAL over the object's scale
    scale = 10 ** seq.values[i, 0, channels.index("log10_scale")]
    assert seq.values[i, 0, channels.index("flux_z")] * scale == pytest.approx(46.99, rel=1e-5)
    assert seq.values[i, 2, channels.index("flux_err_z")] * scale == pytest.approx(27.35, rel=1e-5)


def test_observed_flags_match_data_for_every_step(sample, sample_sequences):
    seq, channels = sample_sequences, sample_sequences.channels
    offsets, time, band, *_ = sample.arrays()
    observed = seq.values[:, :, [channels.index(f"observed_{b}") for b in sample.bands]]
    for i in range(len(sample)):
        t, b = time[offsets[i]:offsets[i + 1]], band[offsets[i]:offsets[i + 1]]
        groups = group_epochs(t - t[0], b, 1.0)
        expected = np.zeros((groups.max() + 1, len(sample.bands)))
        expected[groups, b] = 1
        assert np.array_equal(observed[i, : len(expected)], expected)
        assert observed[i].sum() == len(t)  # every observation lands in exactly one step


def test_object_normalisation(sample, sample_sequences):
    seq, channels = sample_sequences, sample_sequences.channels
    flux_ch = [channels.index(f"flux_{b}") for b in sample.bands]
    obs_ch = [channels.index(f"observed_{b}") for b in sample.bands]
    offsets, _, _, flux, flux_err = sample.arrays()
    checked = 0
    for i in range(len(sample)):
        f, e = flux[offsets[i]:offsets[i + 1]], flux_err[offsets[i]:offsets[i + 1]]
        k = seq.lengths[i]
        normalised = seq.values[i, :k][:, flux_ch]
        observed = seq.values[i, :k][:, obs_ch] == 1
        log_scale = seq.values[i, :k, channels.index("log10_scale")]
        assert np.all(log_scale == log_scale[0])
        if f.max() > np.median(e):
            checked += 1
            assert normalised[observed].max() == pytest.approx(1.0, abs=1e-6)
            assert log_scale[0] == pytest.approx(np.log10(f.max()), abs=1e-6)
            # colours are kept: every observed flux is divided by the same scale
            assert np.allclose(np.sort(normalised[observed]), np.sort(f / f.max()), atol=1e-6)
    assert checked == len(sample)


def test_band_normalisation_and_none():
    lcs = _lightcurves(GAP)
    band = build_sequences(lcs, SequenceConfig(bands=("g", "r"), normalise="band", use_redshift=False))
    ch = band.channels
    assert band.values[0, :, ch.index("flux_g")].max() == pytest.approx(1.0)
    assert band.values[0, :, ch.index("flux_r")].max() == pytest.approx(1.0)
    assert band.values[0, 0, ch.index("log10_scale_g")] == pytest.approx(np.log10(30.0))
    assert band.values[0, 0, ch.index("log10_scale_r")] == pytest.approx(np.log10(50.0))
    raw = build_sequences(lcs, SequenceConfig(bands=("g", "r"), normalise="none", use_redshift=False))
    ch = raw.channels
    assert raw.values[0, :, ch.index("flux_r")].tolist() == [20.0, 40.0, 50.0]
    assert raw.values[0, :, ch.index("flux_err_r")].tolist() == [1.0, 1.0, 2.0]
    assert not any(c.startswith("log10_scale") for c in ch)


def test_interpolation_of_a_missing_band_is_linear():
    seq = build_sequences(_lightcurves(GAP), SequenceConfig(bands=("g", "r"), normalise="none", use_redshift=False))
    ch = seq.channels
    g = seq.values[0, :, ch.index("flux_g")]
    step_time = np.array([0.05, 5.0, 10.1])  # mean time of each epoch
    assert seq.values[0, :, ch.index("t")] * 100 == pytest.approx(step_time, abs=1e-5)
    assert seq.values[0, :, ch.index("observed_g")].tolist() == [1.0, 0.0, 1.0]
    assert g[0] == 10.0 and g[2] == 30.0
    assert g[1] == pytest.approx(10.0 + 20.0 * (5.0 - 0.05) / (10.1 - 0.05), rel=1e-6)
    assert seq.values[0, 1, ch.index("flux_err_g")] == pytest.approx(1.0)


def test_band_missing_at_the_ends_and_never_observed():
    rows = [("a", 0.0, "r", 5.0, 1.0), ("a", 3.0, "g", 7.0, 1.0), ("a", 3.1, "r", 6.0, 1.0),
            ("a", 6.0, "g", 9.0, 1.0), ("a", 9.0, "r", 8.0, 3.0)]
    with pytest.warns(UserWarning, match=r"no observation .* band\(s\) \['i'\]"):
        seq = build_sequences(_lightcurves(rows), SequenceConfig(bands=("g", "r", "i"), normalise="none",
                                                                 use_redshift=False))
    ch = seq.channels
    assert seq.values[0, :, ch.index("flux_g")].tolist() == [7.0, 7.0, 9.0, 9.0]  # nearest value at the ends
    assert seq.values[0, :, ch.index("flux_i")].tolist() == [0.0] * 4  # never observed: 0 ...
    assert seq.values[0, :, ch.index("observed_i")].tolist() == [0.0] * 4  # ... flagged as not observed
    assert seq.values[0, :, ch.index("flux_err_i")].tolist() == [3.0] * 4  # with the largest error


def test_random_fill_between_neighbours():
    rows = [("a", 0.0, "g", 10.0, 1.0), ("a", 0.1, "r", 20.0, 1.0)]
    rows += [("a", float(t), "r", 20.0 + t, 1.0) for t in range(2, 40, 2)]  # g missing in 19 epochs
    rows += [("a", 40.0, "g", 30.0, 2.0), ("a", 40.1, "r", 60.0, 1.0)]
    lcs = _lightcurves(rows)
    config = SequenceConfig(bands=("g", "r"), normalise="none", use_redshift=False)
    draws = build_sequences(lcs, config, fill="random", seed=3)
    ch = draws.channels
    g = draws.values[0, :, ch.index("flux_g")]
    e = draws.values[0, :, ch.index("flux_err_g")]
    assert g[0] == 10.0 and g[-1] == 30.0 and e[0] == 1.0 and e[-1] == 2.0
    assert ((g[1:-1] >= 10.0) & (g[1:-1] <= 30.0)).all() and ((e[1:-1] >= 1.0) & (e[1:-1] <= 2.0)).all()
    assert len(np.unique(g[1:-1])) == 19  # independent draws, not the interpolation
    interpolated = build_sequences(lcs, config).values[0, :, ch.index("flux_g")]
    assert not np.allclose(g, interpolated)
    # observed values are never touched
    r = draws.values[0, :, ch.index("flux_r")]
    assert np.array_equal(r, build_sequences(lcs, config).values[0, :, ch.index("flux_r")])
    # same seed, same draws; another seed, other draws
    assert np.array_equal(build_sequences(lcs, config, fill="random", seed=3).values, draws.values)
    assert not np.array_equal(build_sequences(lcs, config, fill="random", seed=4).values, draws.values)


def test_noise_is_seeded(sample):
    config = SequenceConfig(bands=sample.bands, normalise="none")
    clean = build_sequences(sample, config)
    a = build_sequences(sample, config, noise=True, seed=11)
    b = build_sequences(sample, config, noise=True, seed=11)
    c = build_sequences(sample, config, noise=True, seed=12)
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    ch = clean.channels
    flux_ch = [ch.index(f"flux_{x}") for x in sample.bands]
    obs = clean.values[:, :, [ch.index(f"observed_{x}") for x in sample.bands]] == 1
    err = clean.values[:, :, [ch.index(f"flux_err_{x}") for x in sample.bands]]
    pull = (a.values[:, :, flux_ch] - clean.values[:, :, flux_ch])[obs] / err[obs]
    assert len(pull) == len(sample.observations)
    # N(0, 1) pulls: mean and standard deviation within ~5 standard errors
    assert abs(pull.mean()) < 5 / np.sqrt(len(pull))
    assert abs(pull.std() - 1) < 5 / np.sqrt(2 * len(pull))
    # the deterministic build needs no seed and repeats exactly
    assert np.array_equal(build_sequences(sample, config).values, clean.values)


def test_band_order_follows_the_configuration():
    lcs = _lightcurves(GAP)
    with pytest.warns(UserWarning, match="no observation"):
        seq = build_sequences(lcs, SequenceConfig(bands=("r", "i", "g"), normalise="none", use_redshift=False))
    ch = seq.channels
    assert ch[2:5] == ["flux_r", "flux_i", "flux_g"]
    assert seq.values[0, :, ch.index("flux_r")].tolist() == [20.0, 40.0, 50.0]
    assert seq.values[0, :, ch.index("observed_i")].tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------------- redshift
def test_redshift_channels_equal_meta(sample, sample_sequences):
    seq, ch = sample_sequences, sample_sequences.channels
    z = seq.values[:, :, ch.index("redshift")]
    z_err = seq.values[:, :, ch.index("redshift_err")]
    for i in range(len(sample)):
        k = seq.lengths[i]
        assert np.allclose(z[i, :k], sample.meta["redshift"][i], rtol=1e-6)
        assert np.allclose(z_err[i, :k], sample.meta["redshift_err"][i], rtol=1e-6)
    no_z = build_sequences(sample, SequenceConfig(bands=sample.bands, use_redshift=False))
    assert no_z.values.shape[2] == seq.values.shape[2] - 2
    assert np.array_equal(no_z.values, seq.values[:, :, :-2])


@pytest.mark.parametrize("z", [np.nan, -0.1])
def test_missing_redshift(z):
    meta = Table({"object_id": ["a"], "redshift": [z], "redshift_err": [0.01]})
    lcs = _lightcurves(GAP, meta=meta)
    with pytest.raises(ValueError, match="'redshift'"):
        build_sequences(lcs, SequenceConfig(bands=("g", "r"), use_redshift=True))
    assert build_sequences(lcs, SequenceConfig(bands=("g", "r"), use_redshift=False)).values.shape == (1, 3, 9)


def test_unknown_redshift_error_becomes_zero():
    meta = Table({"object_id": ["a"], "redshift": [0.3], "redshift_err": [np.nan]})
    seq = build_sequences(_lightcurves(GAP, meta=meta), SequenceConfig(bands=("g", "r")))
    assert (seq.values[0, :, seq.channels.index("redshift_err")] == 0).all()
    assert np.allclose(seq.values[0, :, seq.channels.index("redshift")], 0.3)


# ---------------------------------------------------------------------- errors
def test_configuration_lacking_a_band_of_the_data(sample):
    with pytest.raises(ValueError, match=r"\['z'\]"):
        build_sequences(sample, SequenceConfig(bands=("g", "r", "i")))
    with pytest.raises(ValueError, match="fill"):
        build_sequences(sample, fill="nearest")
    with pytest.raises(TypeError):
        build_sequences(sample.observations)


def test_default_configuration_uses_the_collection_bands(sample):
    seq = build_sequences(sample)
    assert seq.channels == SequenceConfig(bands=("g", "r", "i", "z")).channels


def test_time_can_count_from_the_peak():
    lcs = _lightcurves(GAP)
    first = build_sequences(lcs, SequenceConfig(bands=lcs.bands, use_redshift=False))
    peak = build_sequences(lcs, SequenceConfig(bands=lcs.bands, use_redshift=False, time_origin="peak"))
    t_first, t_peak = first.values[0, :, 0], peak.values[0, :, 0]
    shift = t_first - t_peak
    assert np.allclose(shift, shift[0]) and shift[0] > 0  # the same times, moved so that the peak is at 0
    brightest = np.argmax(first.values[0, :, 2:2 + len(lcs.bands)].max(axis=1))
    assert t_peak[brightest] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="time_origin"):
        SequenceConfig(time_origin="explosion")
