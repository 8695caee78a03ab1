"""The stars' marginal likelihood by deterministic quadrature: no Monte Carlo noise in log p(σ, α | L̂).

When stars are seen only through their luminosities, the per-star integral
of the Stefan–Boltzmann model collapses to one dimension. With
ℓ(M, Z) = ln(4π R² T⁴ / L_sun) from the stellar map f and a log-normal
measurement error r_i on L̂_i (a magnitude-like error),

    p(L̂_i | σ, α) = ∫ N(ln L̂_i; ln σ + ℓ(z), r_i) p(z | α) dz / L̂_i
                  = ∫ N(ln L̂_i − ln σ − ℓ; 0, r_i) Φ_α(ℓ) dℓ / L̂_i ,

where Φ_α is the distribution of ℓ over the population, the *intrinsic
luminosity function* in units of σ = 1 W m⁻² K⁻⁴. Φ_α is the same for every
star, so it is computed once per hyperparameter point:

1. z runs over a fixed tensor grid of (log M, [Fe/H]) cell midpoints
   covering the map's domain, fine enough that neighbouring nodes differ by
   at most 0.8 times the smallest r_i in ℓ (the midpoint rule then
   integrates a Gaussian of that width to ~10⁻¹³ relative error). The map runs on the nodes once, when
   the model is built, and never again.
2. For each α, the node masses p(z_k | α) ΔV are deposited on a fine ℓ
   histogram of bin width δ = r_min/2, each shared linearly between its two
   nearest bins ("cloud-in-cell"). That sharing convolves the nodes with a
   triangle of variance δ²/6, so the kernel summed against the histogram is
   a Gaussian of variance r_i² − δ²/6: together they have r_i² again.
3. Each star sums that histogram against its kernel over ±6 r_i.

The cost per α is (nodes + stars × window), linear in the number of stars,
and log p(σ, α | L̂) is a smooth deterministic function, so emcee sees no
Monte Carlo noise and the posterior needs no importance-sampling checks.

A deep ensemble of maps is a discrete set of candidate maps f_e; as the same
map serves every star, the likelihood is the mixture over members of the
whole-catalogue likelihood, (1/E) Σ_e ∏_i p(L̂_i | σ, α, f_e).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from astrobayes.inference.delta import DeltaMap
from astrobayes.inference.priors import JointPrior
from astrobayes.inference.sampling import MCMCResult, run_emcee

__all__ = ["LuminosityGridModel", "log_area_term"]

_LN10 = math.log(10.0)
#: kernel half-width in units of each star's r_i
_KERNEL_SIGMAS = 6.0
#: most (log M, [Fe/H]) nodes the grid may have
_MAX_NODES = 2**22


def log_area_term(log_radius: torch.Tensor, log_teff: torch.Tensor) -> torch.Tensor:
    """ℓ = ln(4π R² T⁴ / L_sun) in SI (R in R_sun, T in K, both as log10), so that ln(L/L_sun) = ln σ + ℓ."""
    import astropy.constants as const

    offset = math.log(4 * math.pi * const.R_sun.si.value**2 / const.L_sun.si.value)
    return offset + 2 * _LN10 * log_radius + 4 * _LN10 * log_teff


def _midpoints(low: float, high: float, n: int) -> torch.Tensor:
    step = (high - low) / n
    return low + step * (torch.arange(n, dtype=torch.float64) + 0.5)


class LuminosityGridModel:
    """p(σ, α | L̂) for stars with luminosities only, by quadrature on a fixed (log M, [Fe/H]) grid.

    Built by :func:`~astrobayes.stars.model.stefan_boltzmann_model`; the
    module docstring gives the method.

    Parameters
    ----------
    hyperprior : JointPrior
        Prior of the sampled hyperparameters; one must be named ``sigma``
        (W m⁻² K⁻⁴).
    population : callable
        ``population(latents, hyper) -> log p(log_mass, feh | α)``,
        elementwise, normalised on the map's domain (e.g. a
        :class:`~astrobayes.stars.population.StellarPopulation`).
    luminosity, fractional_error : array (N,)
        L̂_i in L_sun and r_i = σ(L̂_i)/L̂_i, the 1σ error of ln L̂_i.
    maps : DeltaMap or sequence of DeltaMap
        (log_mass, feh) → (log_radius, log_teff); several maps (the members
        of a deep ensemble) are marginalised as a mixture.
    log_mass_range, feh_range : (float, float)
        The map's domain: the grid covers it and nothing outside it.
    n_feh : int
        Least number of [Fe/H] cells (more when ℓ changes fast with [Fe/H]),
        each with 3 Gauss–Legendre nodes. 32 cells over the default domain are
        0.036 dex wide; a metallicity distribution 0.02 dex wide, truncated at
        the domain's edge, then integrates to 1 within ~10⁻⁴ (the midpoint
        rule on 48 cells was off by 2 % there).
    max_elements : int
        Bound on walkers × stars × window handled at once.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrobayes.inference.priors import LogUniform
    >>> from astrobayes.stars.emulator import exact_stellar_delta_map
    >>> from astrobayes.stars.simulate import default_population, simulate_field
    >>> field = simulate_field(100, seed=2)
    >>> lum = field["luminosity"].value
    >>> model = LuminosityGridModel(JointPrior([LogUniform(1e-8, 1e-7, name="sigma")]), default_population(),
    ...                             lum, field["luminosity_err"].value / lum, exact_stellar_delta_map(),
    ...                             (np.log10(0.5), np.log10(20.0)), (-1.0, 0.15))
    >>> log_p = model.log_prob(torch.tensor([[4e-8], [5.67e-8], [8e-8]]))
    >>> int(torch.argmax(log_p))  # the physical σ is the most probable of the three
    1
    """

    def __init__(self, hyperprior: JointPrior, population: Callable, luminosity, fractional_error,
                 maps: DeltaMap | Sequence[DeltaMap], log_mass_range: Sequence[float], feh_range: Sequence[float],
                 *, n_feh: int = 32, max_elements: int = 2**18):
        if not isinstance(hyperprior, JointPrior):
            raise TypeError(f"hyperprior must be a JointPrior, got {type(hyperprior).__name__}")
        if "sigma" not in hyperprior.names:
            raise ValueError(f"hyperprior must include 'sigma', it has {hyperprior.names}")
        if not callable(population):
            raise TypeError(f"population must be callable, got {type(population).__name__}")
        maps = [maps] if isinstance(maps, DeltaMap) else list(maps)
        if not maps or not all(isinstance(m, DeltaMap) for m in maps):
            raise TypeError("maps must be a DeltaMap or a non-empty list of DeltaMap")
        for arg, value, least in (("n_feh", n_feh, 4), ("max_elements", max_elements, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{arg} must be an integer >= {least}, got {value!r}")
        luminosity = torch.as_tensor(np.asarray(luminosity, dtype=np.float64))
        fractional_error = torch.as_tensor(np.asarray(fractional_error, dtype=np.float64))
        if luminosity.ndim != 1 or fractional_error.shape != luminosity.shape or len(luminosity) == 0:
            raise ValueError(f"luminosity and fractional_error must be 1-D of one length, got shapes "
                             f"{tuple(luminosity.shape)} and {tuple(fractional_error.shape)}")
        for arg, value in (("luminosity", luminosity), ("fractional_error", fractional_error)):
            bad = ~(torch.isfinite(value) & (value > 0))
            if bad.any():
                raise ValueError(f"{arg} must be finite and positive; rows {torch.nonzero(bad)[:5, 0].tolist()} "
                                 f"are not")
        self.hyperprior, self.population, self.maps = hyperprior, population, maps
        self.max_elements = int(max_elements)
        self.n_objects = len(luminosity)
        self.log_mass_range, self.feh_range = tuple(map(float, log_mass_range)), tuple(map(float, feh_range))
        # stars sorted by error, so that a block of stars shares a kernel window of about its own width
        order = torch.argsort(fractional_error)
        self._order = order
        self._ln_l, self._r = torch.log(luminosity[order]), fractional_error[order]
        self._build_grid(int(n_feh))
        self._check_reachable()

    # ------------------------------------------------------------------ grid, once
    def _ell(self, log_mass: torch.Tensor, feh: torch.Tensor) -> torch.Tensor:
        """ℓ of every map on the given nodes, (E, n)."""
        rows = []
        for delta in self.maps:
            out = delta({"log_mass": log_mass, "feh": feh})
            rows.append(log_area_term(out["log_radius"].to(torch.float64), out["log_teff"].to(torch.float64)))
        return torch.stack(rows)

    def _build_grid(self, n_feh: int) -> None:
        r_min = float(self._r[0])
        (m_lo, m_hi), (f_lo, f_hi) = self.log_mass_range, self.feh_range
        # a coarse look at how fast ℓ changes sets the node spacing: neighbours ≤ 0.8 r_min apart in ℓ
        coarse_m, coarse_f = _midpoints(m_lo, m_hi, 129), _midpoints(f_lo, f_hi, 17)
        mm, ff = torch.meshgrid(coarse_m, coarse_f, indexing="ij")
        coarse = self._ell(mm.reshape(-1), ff.reshape(-1)).reshape(len(self.maps), 129, 17)
        slope_m = float((coarse.diff(dim=1).abs() / (coarse_m[1] - coarse_m[0])).max())
        slope_f = float((coarse.diff(dim=2).abs() / (coarse_f[1] - coarse_f[0])).max())
        n_mass = max(64, math.ceil(1.25 * (m_hi - m_lo) * slope_m / (0.8 * r_min)))
        n_feh = max(n_feh, math.ceil(1.25 * (f_hi - f_lo) * slope_f / (0.8 * r_min)))
        if n_mass * n_feh > _MAX_NODES:
            raise ValueError(f"luminosity errors down to {r_min:.2%} need a {n_mass} × {n_feh} grid (more than "
                             f"{_MAX_NODES} nodes); use method='importance' for such precise luminosities")
        # mass: the midpoint rule (the IMF is smooth on the cells); [Fe/H]: 3 Gauss–Legendre nodes per cell, as a
        # narrow metallicity distribution cut at the domain's edge needs more than midpoints
        nodes, weights = np.polynomial.legendre.leggauss(3)
        half = (f_hi - f_lo) / n_feh / 2
        feh_nodes = (_midpoints(f_lo, f_hi, n_feh)[:, None] + half * torch.as_tensor(nodes)).reshape(-1)
        feh_weights = (half * torch.as_tensor(weights)).repeat(n_feh)
        log_mass, feh = torch.meshgrid(_midpoints(m_lo, m_hi, n_mass), feh_nodes, indexing="ij")
        # the population sees the axes, (1, n_mass, 1) and (1, 1, [Fe/H] nodes): a separable density
        # (IMF × metallicity) is then computed on the axes and only summed on the full grid
        self._axes = {"log_mass": log_mass[:, :1].reshape(1, -1, 1), "feh": feh[:1].reshape(1, 1, -1)}
        self._latents = {"log_mass": log_mass.reshape(1, -1), "feh": feh.reshape(1, -1)}
        log_cell = math.log((m_hi - m_lo) / n_mass) + torch.log(feh_weights)
        self._log_cell = log_cell[None].repeat(n_mass, 1).reshape(1, -1)
        self.grid_shape = (n_mass, len(feh_nodes))
        ell = self._ell(self._latents["log_mass"][0], self._latents["feh"][0])  # (E, nodes)
        self._ell_limits = torch.stack([ell.min(dim=1).values, ell.max(dim=1).values], dim=1)  # (E, 2)
        # the ℓ histogram: bins of r_min/2, with room for the widest kernel beyond the nodes
        self.bin_width = r_min / 2
        self._kernel_r = torch.sqrt(self._r**2 - self.bin_width**2 / 6)
        pad = math.ceil(_KERNEL_SIGMAS * float(self._r[-1]) / self.bin_width) + 2
        self._bin0 = float(ell.min()) - pad * self.bin_width
        self.n_bins = math.ceil((float(ell.max()) - self._bin0) / self.bin_width) + pad
        position = (ell - self._bin0) / self.bin_width
        self._left = position.floor().long()  # (E, nodes)
        self._share = position - self._left  # weight that goes to the bin on the right

    def _check_reachable(self) -> None:
        """Some σ inside the prior must let one map make every star; otherwise name the stars that stand out."""
        j = self.hyperprior.names.index("sigma")
        prior = tuple(math.log(float(torch.as_tensor(b)[j])) for b in (self.hyperprior.low, self.hyperprior.high))
        reach = _KERNEL_SIGMAS * self._r
        best = None
        for e in range(len(self.maps)):
            ell_min, ell_max = self._ell_limits[e].tolist()
            low = self._ln_l - ell_max - reach  # ln σ above which star i can be made at all
            high = self._ln_l - ell_min + reach
            lo, hi = max(float(low.max()), prior[0]), min(float(high.min()), prior[1])
            if lo < hi:
                best = (min(lo, best[0]), max(hi, best[1])) if best else (lo, hi)
        self.sigma_range = None if best is None else (math.exp(best[0]), math.exp(best[1]))
        if best is not None:
            return
        # blame: stars that no σ in the prior can make, else those outside the σ that makes the most stars
        outside = (low > prior[1]) | (high < prior[0])
        if not outside.any():
            candidates = low.clamp(*prior)
            made = (torch.searchsorted(low.sort().values, candidates, right=True)
                    - torch.searchsorted(high.sort().values, candidates))
            c = candidates[int(torch.argmax(made))]
            outside = (low > c) | (high < c)
        rows = sorted(self._order[outside].tolist())
        raise ValueError(f"no σ in the prior range [{math.exp(prior[0]):.3g}, {math.exp(prior[1]):.3g}] W m⁻² K⁻⁴ lets "
                         f"every star be a ZAMS star of the map's domain (log M {self.log_mass_range}, [Fe/H] "
                         f"{self.feh_range}); catalogue rows {rows[:10]}{' …' if len(rows) > 10 else ''} cannot be "
                         "made together with the others: remove them (giants, binaries, stars outside the mass "
                         "range) or widen the domain or the σ prior")

    @property
    def n_nodes(self) -> int:
        return self._latents["log_mass"].shape[1]

    # ------------------------------------------------------------------ per hyperparameter point
    def _theta(self, theta) -> torch.Tensor:
        return self.hyperprior.as_batch(theta)

    def node_weights(self, theta) -> torch.Tensor:
        """p(z_k | α) × cell volume on every node, (m, nodes); sums to the population mass inside the domain."""
        theta = self._theta(theta)
        hyper = {name: theta[:, j, None, None] for j, name in enumerate(self.hyperprior.names)}
        log_p = torch.as_tensor(self.population(self._axes, hyper), dtype=torch.float64)
        try:
            log_p = torch.broadcast_to(log_p, (len(theta), *self.grid_shape)).reshape(len(theta), -1)
        except RuntimeError:
            raise ValueError(f"population returned shape {tuple(log_p.shape)}, which does not broadcast to "
                             f"(walkers, log_mass, feh) = {(len(theta), *self.grid_shape)}") from None
        if torch.isnan(log_p).any():
            walker = int(torch.nonzero(torch.isnan(log_p))[0, 0])
            point = ", ".join(f"{n}={v:.6g}" for n, v in zip(self.hyperprior.names, theta[walker].tolist()))
            raise ValueError(f"population returned NaN at hyperparameters ({point})")
        return torch.exp(log_p + self._log_cell)

    def _histograms(self, weights: torch.Tensor) -> torch.Tensor:
        """Node weights deposited on the ℓ bins of each map, (E, m, bins)."""
        out = torch.zeros((len(self.maps), len(weights), self.n_bins), dtype=torch.float64)
        for e in range(len(self.maps)):
            out[e].index_add_(1, self._left[e], weights * (1 - self._share[e]))
            out[e].index_add_(1, self._left[e] + 1, weights * self._share[e])
        return out

    def member_log_likelihood(self, theta) -> torch.Tensor:
        """log p(L̂_i | σ, α, f_e) per map, star and hyperparameter point: (E, m, N), stars in catalogue order."""
        theta = self._theta(theta)
        sigma = theta[:, self.hyperprior.names.index("sigma")]
        if not (sigma > 0).all():
            raise ValueError("sigma must be positive")
        chunk = max(1, self.max_elements // self.n_nodes)
        pieces = [self._member_log_likelihood(theta[s:s + chunk], sigma[s:s + chunk])
                  for s in range(0, len(theta), chunk)]
        sorted_values = torch.cat(pieces, dim=1)
        out = torch.empty_like(sorted_values)
        out[..., self._order] = sorted_values
        return out

    def _member_log_likelihood(self, theta: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        hist = self._histograms(self.node_weights(theta))  # (E, m, bins)
        n_maps, m = hist.shape[:2]
        flat = hist.reshape(n_maps, -1)
        out = []
        start = 0
        while start < self.n_objects:
            # a block of stars (sorted by r): window from its largest error
            width = math.ceil(_KERNEL_SIGMAS * float(self._r[min(start + 1024, self.n_objects) - 1]) / self.bin_width)
            size = max(1, min(1024, self.max_elements // (m * (2 * width + 1))))
            rows = slice(start, min(start + size, self.n_objects))
            width = math.ceil(_KERNEL_SIGMAS * float(self._r[rows.stop - 1]) / self.bin_width)
            offsets = torch.arange(-width, width + 1)
            x = self._ln_l[rows][None] - torch.log(sigma)[:, None]  # (m, n_b): ln L̂ − ln σ
            centre = torch.round((x - self._bin0) / self.bin_width).long()
            index = centre[..., None] + offsets  # (m, n_b, window)
            valid = (index >= 0) & (index < self.n_bins)
            index = index.clamp(0, self.n_bins - 1)
            bin_ell = self._bin0 + index * self.bin_width
            kernel = torch.exp(-0.5 * ((x[..., None] - bin_ell) / self._kernel_r[rows][None, :, None]) ** 2) * valid
            flat_index = (index + self.n_bins * torch.arange(m)[:, None, None]).reshape(-1)
            values = flat[:, flat_index].reshape(n_maps, *index.shape)
            total = (values * kernel).sum(-1)
            # ln(r' √2π L̂) with r' the kernel width; the histogram holds masses, so no bin width enters
            norm = (torch.log(self._kernel_r[rows]) + 0.5 * math.log(2 * math.pi) + self._ln_l[rows])[None]
            out.append(torch.log(total) - norm)
            start = rows.stop
        return torch.cat(out, dim=-1)

    def object_log_likelihood(self, theta) -> torch.Tensor:
        """log p(L̂_i | σ, α) per star, (m, N); with several maps, each star's value averaged over them in
        probability. (:meth:`log_prob` averages whole catalogues instead, so with several maps it is not the
        sum of these; :meth:`member_log_likelihood` has the per-map values.)"""
        values = self.member_log_likelihood(theta)
        return torch.logsumexp(values, dim=0) - math.log(len(self.maps))

    def log_prob(self, theta) -> torch.Tensor:
        """log π(σ, α) + log p(L̂ | σ, α), (m,); -inf outside the prior. Several maps: mixture of catalogues."""
        def catalogue(inside):
            per_map = self.member_log_likelihood(inside).sum(dim=-1)  # (E, m)
            return torch.logsumexp(per_map, dim=0) - math.log(len(self.maps))

        return self.hyperprior.log_posterior(theta, catalogue)

    def population_mass(self, theta) -> torch.Tensor:
        """Fraction of p(z | α) inside the map's domain, (m,): below 1 when the population reaches beyond it."""
        return self.node_weights(theta).sum(dim=-1)

    def sample(self, *, n_walkers: int | None = None, n_steps: int = 3000, seed: int | None = 0,
               progress: bool | None = None) -> MCMCResult:
        """Sample σ and the free population parameters with emcee (:func:`~astrobayes.inference.sampling.run_emcee`).

        Warns when the population at the posterior median puts more than
        1 % of its stars outside the map's domain (they cannot be modelled).
        """
        result = run_emcee(self.log_prob, self.hyperprior, n_walkers=n_walkers, n_steps=n_steps, seed=seed,
                           progress=progress)
        median = torch.as_tensor(np.median(result.samples, axis=0))[None]
        mass = float(self.population_mass(median)[0])
        if mass < 0.99:
            warnings.warn(f"at the posterior median the population puts {1 - mass:.1%} of its stars outside the "
                          f"stellar map's domain (log M {self.log_mass_range}, [Fe/H] {self.feh_range}); those "
                          "stars are not modelled", RuntimeWarning, stacklevel=2)
        result.meta.update(method="grid", grid_shape=self.grid_shape, n_bins=self.n_bins, n_maps=len(self.maps),
                           n_objects=self.n_objects, population_mass=mass)
        return result

    def __repr__(self) -> str:
        return (f"LuminosityGridModel(hyperparameters={self.hyperprior.names}, stars={self.n_objects}, "
                f"grid={self.grid_shape[0]}×{self.grid_shape[1]}, bins={self.n_bins}, maps={len(self.maps)})")
