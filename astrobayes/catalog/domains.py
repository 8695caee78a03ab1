"""Domain models that read more than one catalogue row per object: lightcurves, member catalogues, stamps.

``astrobayes apply`` runs row-wise estimators through
:func:`~astrobayes.catalog.apply_estimator`; the models written by
``astrobayes train supernovae | clusters | galaxies`` read a whole
lightcurve, a cluster's member galaxies or an image stamp per object, and
go through their domain's own function here instead.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DOMAIN_MODELS", "domain_model_kind", "apply_domain_model", "model_stem", "network_path", "apply_inputs"]

#: kind → what it reads and the function that runs it
DOMAIN_MODELS = {
    "supernovae": "lightcurves (a file of write_lightcurves, or a folder of SNANA .DAT files) → "
                  "astrobayes.supernovae.classify",
    "clusters": "a member-galaxy catalogue (cluster_id, R_proj, v_los) → astrobayes.clusters.estimate_mass",
    "galaxies": "image stamps in FITS (a cube, or a file of write_stamps) → "
                "astrobayes.galaxies.StructurePosterior.summary",
}


def domain_model_kind(path) -> str | None:
    """Which domain model is saved at ``path`` (None for a row-wise estimator or no model).

    Examples
    --------
    >>> domain_model_kind("no/such/model") is None
    True
    """
    path, stem = Path(path), model_stem(path)
    if (path / "classifier.json").is_file():
        return "supernovae"
    if stem.with_name(stem.name + ".cluster_mass.json").is_file():
        return "clusters"
    if stem.with_name(stem.name + ".simulator.json").is_file():
        return "galaxies"
    return None


def model_stem(path) -> Path:
    """A model path without the ``.json`` / ``.safetensors`` a user may have typed."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def network_path(path, kind: str | None) -> Path:
    """Where the network's safetensors + JSON of the model at ``path`` are: inside a supernova folder, else there."""
    return Path(path) / "network" if kind == "supernovae" else model_stem(path)


def apply_inputs(kind: str | None, model_path, catalog_path) -> tuple[list[Path], list[Path]]:
    """Every file ``astrobayes apply`` reads: (catalogue files, model files), for :func:`~astrobayes.core.paths.check_not_input`.

    A lightcurve file comes with its ``_meta`` file; a folder (of SNANA
    files, or a supernova classifier) stands for everything in it; a model
    with the ``.json`` / ``.safetensors`` pair and every ``PATH.*.json`` sidecar.

    Examples
    --------
    >>> [p.name for p in apply_inputs("supernovae", "models/sn", "lcs.ecsv")[0]]
    ['lcs.ecsv', 'lcs_meta.ecsv']
    """
    from .models import model_files

    catalog_path, stem = Path(catalog_path), model_stem(model_path)
    catalogs = [catalog_path]
    if kind == "supernovae" and not catalog_path.is_dir():
        from astrobayes.supernovae.io import _meta_path  # the one place that names a lightcurve file's partner

        try:
            catalogs.append(_meta_path(catalog_path))
        except ValueError:  # not a lightcurve file name: reading it will say so
            pass
    return catalogs, [Path(model_path)] + model_files(stem)


def apply_domain_model(kind: str, model_path, catalog_path, *, n_draws: int = 1000, seed: int = 0):
    """Run a saved domain model on a catalogue file; return an astropy table, one row per object.

    Parameters
    ----------
    kind : {"supernovae", "clusters", "galaxies"}
        From :func:`domain_model_kind`.
    model_path, catalog_path : path
    n_draws, seed :
        Posterior draws per stamp and their seed (``galaxies``).

    Returns
    -------
    astropy.table.Table or QTable
        ``classify``'s table (object_id, class probabilities); ``estimate_mass``'s
        (cluster_id, mass percentiles, flags); for stamps, the stamp ``id`` (and
        ``ra``, ``dec``, ``x``, ``y`` where the file has them) then the posterior summary
        and ``ood_p_value`` (:meth:`~astrobayes.galaxies.StructurePosterior.summary`).

    Raises
    ------
    ValueError
        For a catalogue the model cannot read (missing columns, wrong stamp size).
    """
    model_path, catalog_path, stem = Path(model_path), Path(catalog_path), model_stem(model_path)
    if kind == "supernovae":
        from astrobayes.supernovae import classify, load_classifier, read_lightcurves, read_snana

        model = load_classifier(model_path)
        lcs = read_snana(catalog_path) if catalog_path.is_dir() else read_lightcurves(catalog_path)
        return classify(lcs, model)
    if kind == "clusters":
        from astrobayes.clusters import estimate_mass, load_mass_model, read_member_catalog

        return estimate_mass(read_member_catalog(catalog_path), load_mass_model(stem))
    if kind == "galaxies":
        from astrobayes.galaxies import read_stamps
        from astrobayes.galaxies.structure import StructurePosterior

        from astropy.table import hstack

        stamps = read_stamps(catalog_path)
        summary = StructurePosterior.load(stem).summary(stamps, n_samples=n_draws, seed=seed)
        ids = stamps.meta[[c for c in ("id", "ra", "dec", "x", "y") if c in stamps.meta.colnames]]
        return hstack([ids, summary], metadata_conflicts="silent")
    raise ValueError(f"kind must be one of {', '.join(DOMAIN_MODELS)}, got {kind!r}")
