"""Run a recipe: check the configuration and the output path, train, write the model and its report atomically."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, changed_settings, config_json, format_config, read_config, resolve_config
from .domains import SUMMARIES, Context, recipe

__all__ = ["train_domain", "default_config", "output_paths"]


def default_config(domain: str) -> str:
    """The default configuration of ``domain`` as commented TOML.

    Examples
    --------
    >>> from astrobayes.recipes.config import tomllib  # tomli before Python 3.11
    >>> text = default_config("stars")
    >>> tomllib.loads(text)["test"]["n_grid"]
    64
    """
    rec = recipe(domain)
    summary = SUMMARIES[domain][0]
    title = (f"astrobayes train {domain}: {summary}\n"
             f"Run: astrobayes train {domain} --config THIS_FILE --output MODEL")
    return format_config(rec.sections, title)


#: the ``PATH.<kind>.json`` files a saved model may have beside ``PATH.json`` (NPE prior, NLE likelihood, cluster
#: mass model, stamp simulator, stellar map, the training report)
SIDECARS = ("prior", "likelihood", "cluster_mass", "simulator", "stellar_map", "train")


def output_paths(output) -> list[Path]:
    """Every path a trained model at ``output`` may consist of, in either layout (folder, or stem + files).

    Only this model's own names: ``other.v1.json`` beside ``other`` is another model's file, never listed.
    """
    output = Path(output)
    suffixes = [".json", ".safetensors", ".loss.png"] + [f".{kind}.json" for kind in SIDECARS]
    return [output] + [output.with_name(output.name + suffix) for suffix in suffixes]


def _plot_history(history, path: Path) -> bool:
    """Loss curves to ``path`` through matplotlib's object interface (the caller's backend is left alone)."""
    if history is None or not hasattr(history, "plot") or not getattr(history, "train_loss", None):
        return False
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.5))
    ax = history.plot(ax=figure.subplots())
    ax.set_title(f"{path.name.removesuffix('.loss.png')}: training")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def _install(staging: Path, parent: Path, existing: list[Path]) -> None:
    """Move the new model from ``staging`` into ``parent``; the old model's files go only once it is there.

    Old paths the new model does not replace (and old folders) are first moved aside into ``staging``; if
    moving the new files in fails, they are moved back.
    """
    new = sorted(p for p in staging.iterdir() if p.name != ".replaced")
    names = {p.name for p in new}
    aside = staging / ".replaced"
    aside.mkdir()
    moved = []
    try:
        for old in existing:
            if old.name not in names or old.is_dir():
                os.replace(old, aside / old.name)
                moved.append(old)
        for item in new:
            os.replace(item, parent / item.name)
    except BaseException:
        for old in moved:
            if not old.exists():
                os.replace(aside / old.name, old)
        raise


def _history_summary(history) -> dict | None:
    if history is None or not hasattr(history, "train_loss"):
        return None
    return {"epochs": history.epochs, "best_epoch": history.best_epoch + 1, "best_val_loss": history.best_val_loss,
            "final_train_loss": history.train_loss[-1] if history.train_loss else None,
            "stopped_early": history.stopped_early, "seconds": history.seconds, "device": history.device,
            "samples_per_second": history.samples_per_second}


def _plain(value):
    """numpy scalars and arrays → Python numbers and lists, for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


#: the catalogues shipped with the package, which recipes may read (e.g. the SNPhotCC lightcurves)
SHIPPED_DATA = Path(__file__).resolve().parents[2] / "catalogs"


def _check_not_inputs(output: Path, config) -> None:
    """Refuse (ConfigError) an output any of whose files would replace the configuration or shipped data."""
    from astrobayes.core.paths import check_not_input

    inputs = {"configuration": [config] if isinstance(config, (str, os.PathLike)) else [],
              "shipped data": [SHIPPED_DATA]}
    for path in output_paths(output):
        for what, files in inputs.items():
            try:
                check_not_input(path, files, argument="--output" if path == output else "--output's file",
                                what=what)
            except ValueError as err:
                raise ConfigError(str(err)) from None


def _check_checkpoint(folder, resume: bool, output: Path, config) -> Path | None:
    """The checkpoint folder, refused before any work where it would clash with the model, its folder or the
    configuration, hold another run's checkpoints (without ``resume``) or be missing (with it)."""
    if folder is None:
        if resume:
            raise ConfigError("--resume needs --checkpoint DIR, the folder of the interrupted run's checkpoints")
        return None
    try:
        os.fsencode(folder)
    except (TypeError, UnicodeError):
        raise ConfigError(f"--checkpoint {folder!r} cannot be a folder name on this system; choose another") from None
    folder = Path(folder).expanduser()
    taken = {p.resolve(): f"the model file {p}" for p in output_paths(output)}
    taken[output.parent.resolve()] = f"the model's folder {output.parent}"
    if isinstance(config, (str, os.PathLike)):
        taken[Path(config).expanduser().resolve()] = f"the configuration {config}"
    if folder.resolve() in taken:
        raise ConfigError(f"--checkpoint {folder} is {taken[folder.resolve()]}; give the checkpoints a folder of "
                          f"their own, e.g. {output}.checkpoints")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--checkpoint {folder} is a file; give a folder")
    if resume and not folder.is_dir():
        raise FileNotFoundError(f"--resume: the checkpoint folder {folder} does not exist")
    if not resume and folder.is_dir() and any(folder.glob("fit*.json")):
        raise FileExistsError(f"{folder} holds the checkpoints of an earlier run; pass --resume to continue it, "
                              "or delete them to start again")
    return folder


def train_domain(domain: str, output, *, config=None, overrides=(), seed: int = 0, device: str = "auto",
                 overwrite: bool = False, progress: bool | None = None, log=print, command: str | None = None,
                 checkpoint=None, resume: bool = False) -> dict:
    """Train the model of one domain from a configuration; write it, a JSON report and a loss plot.

    Parameters
    ----------
    domain : {"supernovae", "clusters", "galaxies", "shear", "stars"}
    output : path
        Model path stem (a folder for ``supernovae``). Beside it go
        ``OUTPUT.train.json`` (configuration, seed, held-out metrics, timing,
        versions) and ``OUTPUT.loss.png``.
    config : path or dict, optional
        A TOML file (see :func:`default_config`) or its parsed tables.
    overrides : sequence of (section, key, value)
        Applied after the file (the command line's ``--set``).
    seed, device, progress :
        Seed of every random stream (simulations, held-out data, network);
        where to train; progress bars.
    overwrite : bool
        Replace an existing model at ``output``; otherwise a FileExistsError
        is raised before any work.
    checkpoint : path, optional
        A folder for the checkpoints of every training run of the recipe
        (:func:`~astrobayes.estimators.checkpointing`); SIGINT or SIGTERM then
        stops training at the end of an epoch with
        :class:`~astrobayes.estimators.TrainingInterrupted`, leaving them there.
    resume : bool
        Continue from the checkpoints in ``checkpoint``: with the same
        configuration, seed and device the model is bit-identical (on the CPU)
        to that of an uninterrupted run.

    Returns
    -------
    dict
        The report written to ``OUTPUT.train.json``.

    Raises
    ------
    ConfigError
        For a bad configuration: unknown key, wrong type, a value outside its
        choices (a ValueError).
    FileExistsError, FileNotFoundError
        For an existing output without ``overwrite`` or a missing output folder;
        for checkpoints of an earlier run without ``resume``, or none with it.
        All of these are raised before any work.

    Notes
    -----
    The model is written to a temporary folder beside ``output`` and moved
    into place only when complete, so a failure leaves no partial model;
    the files of a model it replaces are removed only after that.

    Examples
    --------
    >>> report = train_domain("stars", "models/zams_map", overrides=[("train", "epochs", 5)])  # doctest: +SKIP
    >>> report["metrics"]["radius_max"]  # doctest: +SKIP
    """
    rec = recipe(domain)
    tables = read_config(config) if isinstance(config, (str, os.PathLike)) else (config or {})
    resolved = resolve_config(rec.sections, tables, overrides)
    output = Path(output).expanduser()
    if output.suffix in (".json", ".safetensors"):
        raise ConfigError(f"--output is the model's path stem (e.g. models/{output.stem}), got {output}")
    if output.name in ("", ".", ".."):
        raise ConfigError(f"--output {str(output)!r} does not name the model; give it a name, e.g. {domain}_model")
    _check_not_inputs(output, config)
    if not output.parent.is_dir():
        raise FileNotFoundError(f"the output folder {output.parent} does not exist")
    existing = [p for p in output_paths(output) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the model at {output}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed!r}")
    if rec.check is not None:
        rec.check(resolved)
    checkpoint = _check_checkpoint(checkpoint, resume, output, config)

    ctx = Context(seed=seed, device=device, progress=progress, log=log)
    for line in changed_settings(rec.sections, resolved):
        log(f"setting {line}")
    start = time.perf_counter()
    if checkpoint is None:
        trained = rec.run(resolved, ctx)
    else:
        from astrobayes.estimators import checkpointing

        with checkpointing(checkpoint, resume=resume):
            trained = rec.run(resolved, ctx)
    seconds = time.perf_counter() - start

    from astrobayes import __version__
    import torch

    report = {
        "domain": domain, "model": str(output.resolve()), "usage": rec.usage,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "astrobayes_version": __version__, "torch_version": torch.__version__,
        "command": command, "seed": seed, "device": device,
        "config": config_json(resolved), "n_train": int(trained.n_train),
        "metrics": _plain(trained.metrics), "training": _history_summary(trained.history),
        "seconds": round(seconds, 2), "notes": list(trained.notes),
    }
    from astrobayes.core.serialization import json_safe

    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        trained.save(staging / output.name)
        (staging / f"{output.name}.train.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
        try:
            _plot_history(trained.history, staging / f"{output.name}.loss.png")
        except Exception as err:  # a plot is not worth the trained model
            log(f"note: no loss plot ({type(err).__name__}: {err})")
        # stale files of a replaced model (another domain's sidecars, the other layout) must not survive
        _install(staging, output.parent, existing)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
