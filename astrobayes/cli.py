"""The ``astrobayes`` command: ``demo``, ``info``, ``inspect`` and ``apply``.

Examples
--------
.. code-block:: console

    $ astrobayes info
    $ astrobayes demo --output demo-output
    $ astrobayes inspect demo-output/models/mdn
    $ astrobayes apply models/photo_z galaxies.fits photo_z.fits --columns g_r,r_i,i_z

Errors go to stderr as one line each; the exit status is 0 on success, 2 for
a file that is not a readable astrobayes model, an unreadable catalogue, a
missing column, an existing output without ``--overwrite`` (or a usage
error), 1 for any other failure (set ``ASTROBAYES_DEBUG=1`` to see its
traceback). ``python -m astrobayes`` is the same command.
"""
from __future__ import annotations

import argparse
import textwrap
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser"]

#: Packages whose versions ``astrobayes info`` reports.
_PACKAGES = ("astrobayes", "torch", "normflows", "emcee", "astropy", "healpy", "numpy", "matplotlib")

# ---------------------------------------------------------------------- info
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _info(args) -> int:
    import torch

    from .core.device import cuda_available, resolve_device

    width = max(len(p) for p in _PACKAGES)
    print("astrobayes environment")
    for package in _PACKAGES:
        print(f"  {package:<{width}}  {_version(package)}")
    print(f"  {'python':<{width}}  {sys.version.split()[0]}")
    print(f"device 'auto' picks: {resolve_device('auto')}")
    print(f"torch CPU threads:   {torch.get_num_threads()}")
    print(f"torch built with CUDA: {torch.version.cuda or 'no (CPU-only build)'}")
    if cuda_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            print(f"  cuda:{index}  {props.name}, {props.total_memory / 2**30:.1f} GiB")
    else:
        print("CUDA visible: no GPU visible to torch")
    return 0


# ---------------------------------------------------------------------- inspect
def _summarise_history(history: dict | None) -> str:
    if not history:
        return "none recorded"
    epochs = len(history.get("train_loss", []))
    parts = [f"{epochs} epoch(s)"]
    if history.get("best_epoch", -1) >= 0:
        parts.append(f"best epoch {history['best_epoch'] + 1}")
    if history.get("best_val_loss") is not None:
        parts.append(f"best validation loss {history['best_val_loss']:.4g}")
    if history.get("seconds"):
        parts.append(f"{history['seconds']:.1f} s on {history.get('device', '?')}")
    if history.get("stopped_early"):
        parts.append("stopped early")
    return ", ".join(parts)


def _inspect(args) -> int:
    from .core.serialization import ModelFileError, model_paths, read_model

    try:
        header, tensors = read_model(args.model)
    except (ModelFileError, FileNotFoundError) as err:
        print(f"astrobayes inspect: {err}", file=sys.stderr)
        return 2
    weights, config_path = model_paths(args.model)
    n_parameters = sum(int(t.numel()) for t in tensors.values())
    print(f"model          {config_path.with_suffix('')}")
    print(f"class          {header['class']}")
    print(f"format         {header['format']} v{header['format_version']}, saved by astrobayes "
          f"{header.get('astrobayes_version', '?')} / torch {header.get('torch_version', '?')} "
          f"on {header.get('created', '?')}")
    print(f"config         {json.dumps(header.get('config', {}), sort_keys=True)}")
    print(f"dims           {json.dumps(header.get('dims', {}), sort_keys=True)}")
    standardization = header.get("standardization") or {}
    print(f"standardized   {', '.join(sorted(standardization)) or 'nothing'}")
    print(f"training       {_summarise_history(header.get('history'))}")
    print(f"weights        {weights.name}: {len(tensors)} tensors, {n_parameters} values")
    # read_model refuses a file whose SHA-256 differs, so reaching here means it matched.
    print(f"checksum       OK (sha256 {header['weights_sha256'][:16]}...)")
    return 0


# ---------------------------------------------------------------------- apply
def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _apply(args) -> int:
    import datetime as dt
    import shlex

    from . import __version__
    from .catalog import apply_estimator, load_catalog_model, posterior_draws, quantile_label, summary_columns
    from .catalog.io import catalog_format, id_columns, read_catalog, write_catalog
    from .core.serialization import ModelFileError

    def usage(message: str) -> int:
        print(f"astrobayes apply: {message}", file=sys.stderr)
        return 2

    output = Path(args.output)
    if output.exists() and not args.overwrite:
        return usage(f"{output} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        return usage(f"the output folder {output.parent} does not exist")
    try:
        out_format = catalog_format(output, args.format)
        in_format = catalog_format(args.catalog)
    except ValueError as err:
        return usage(str(err))
    if args.samples and out_format == "csv":
        return usage("a CSV file cannot hold per-object draws (--samples); write ECSV, FITS or Parquet")
    try:
        model = load_catalog_model(args.model, _split(args.names))
    except (ModelFileError, FileNotFoundError, TypeError, ValueError) as err:
        return usage(f"cannot use {args.model} as a model: {err}")
    try:
        catalog = read_catalog(args.catalog, in_format)
    except Exception as err:  # any reader failure means: not a catalogue we can read
        return usage(f"cannot read the catalogue {args.catalog}: {type(err).__name__}: {err}")
    names = list(catalog.colnames) if hasattr(catalog, "colnames") else [str(c) for c in catalog.columns]
    columns = _split(args.columns) or (list(model.columns) if model.columns else None)
    if columns is None:
        return usage(f"{args.model} records no input columns; name them with --columns a,b,c "
                     "in the order the model was trained on")
    missing = [c for c in columns if c not in names]
    if missing:
        return usage(f"the catalogue {args.catalog} has no column {missing[0]!r} (columns: {', '.join(names)})")
    if model.n_inputs is not None and len(columns) != model.n_inputs:
        return usage(f"--columns names {len(columns)} column(s) but the model was trained on {model.n_inputs}")
    keep = names if args.keep_columns else (_split(args.id_columns) or id_columns(names))
    unknown = [c for c in keep if c not in names]
    if unknown:
        return usage(f"the catalogue {args.catalog} has no column {unknown[0]!r} (--id-columns)")
    try:
        quantiles = [float(q) for q in _split(args.quantiles)]
    except ValueError:
        return usage(f"--quantiles must be numbers separated by commas, got {args.quantiles!r}")
    if args.samples < 0:
        return usage(f"--samples must be 0 or a positive number of draws, got {args.samples}")
    if args.samples and model.kind == "classifier":
        return usage("--samples needs a density model; a classifier's output is its class probabilities")
    try:
        clash = sorted(set(summary_columns(model, quantiles)) & set(keep))
    except ValueError as err:
        return usage(f"--quantiles: {err}")
    if clash:
        return usage(f"the catalogue already has the output column(s) {', '.join(clash)}; leave them out of "
                     "--id-columns / --keep-columns or rename the outputs with --names")
    if not hasattr(catalog, "colnames"):
        catalog = catalog.reset_index(drop=True)  # row position = row key: the seed's per-row streams
    try:
        summaries = apply_estimator(catalog, model, columns, n_draws=args.draws, quantiles=quantiles,
                                    batch_size=args.batch_size, device=args.device, seed=args.seed)
    except (ValueError, TypeError) as err:  # option values and column contents, before any output exists
        return usage(str(err))
    units = {}
    if model.kind != "classifier":
        labels = ["mean", "std"] + [quantile_label(q) for q in quantiles]
        units = {f"{param}_{label}": unit for param, unit in zip(model.parameters, model.units) for label in labels}
    samples = {}
    if args.samples:
        draws = posterior_draws(catalog, model, columns, n=args.samples, seed=args.seed, device=args.device)
        for j, (param, unit) in enumerate(zip(model.parameters, model.units)):
            samples[f"{param}_samples"] = draws[:, :, j]
            units[f"{param}_samples"] = unit
    provenance = {
        "astrobayes_version": __version__,
        "model": str(model.path),
        "model_class": type(model.model).__name__,
        "model_sha256": model.header.get("weights_sha256", ""),
        "catalog": str(Path(args.catalog).resolve()),
        "columns": ",".join(columns),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "astrobayes " + shlex.join(args.argv),
        "seed": args.seed,
        "n_draws": args.draws,
    }
    passed = catalog[keep] if keep else None
    write_catalog(output, summaries, passed, out_format, provenance, units, samples)
    print(f"Wrote {len(summaries)} rows ({', '.join(model.parameters)}) to {output}")
    return 0


# ---------------------------------------------------------------------- demo
def _demo(args) -> int:
    from .demo import run_demo

    if args.part in ("all", "bimodal"):
        table = run_demo(args.output, quick=args.quick, device=args.device, seed=args.seed)
        print()
        print(f"Wrote {len(table)} rows, plots and models to {Path(args.output).resolve()}")
    if args.part in ("all", "supernovae"):
        from .demo import run_supernova_demo

        print()
        run_supernova_demo(args.output, quick=args.quick, device=args.device, seed=args.seed)
        print(f"Wrote the supernova classification, metrics, plots and model to "
              f"{(Path(args.output) / 'supernovae').resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``astrobayes`` command."""
    parser = argparse.ArgumentParser(
        prog="astrobayes", description="Neural estimators and Bayesian inference for astronomy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo", help="density estimators on a bimodal toy problem; supernova classification on shipped data",
        description="Fit four estimators to a simulated bimodal p(y|x), then classify the SNPhotCC supernova "
                    "lightcurves shipped in catalogs/supernovae/; write tables, plots and models.")
    demo.add_argument("--part", default="all", choices=("all", "bimodal", "supernovae"),
                      help="which part to run (default: all)")
    demo.add_argument("--output", default="demo-output", help="output folder (default: demo-output)")
    demo.add_argument("--quick", action="store_true", help="small data and short training (~1 min)")
    demo.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                      help="where to train (default: auto = CUDA when present)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(handler=_demo)

    info = commands.add_parser("info", help="versions, device and GPU visibility")
    info.set_defaults(handler=_info)

    inspect = commands.add_parser("inspect", help="summarise a saved model file and verify its checksum")
    inspect.add_argument("model", help="model path (stem, .json or .safetensors)")
    inspect.set_defaults(handler=_inspect)

    apply = commands.add_parser(
        "apply", help="posterior summaries for every object of a catalogue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill("Run a saved model (an NPE posterior, regressor, mixture density network, flow or "
                    "classifier) on every row of a catalogue and write, per parameter, the posterior mean, "
                    "standard deviation and quantiles (16th, 50th, 84th percentile by default) as "
                    "columns NAME_mean, NAME_std, NAME_q16, NAME_q50, NAME_q84, with units where the model's "
                    "prior has them. Catalogues are read and written by suffix: .ecsv, .fits, .csv, .parquet. "
                    "The output keeps the catalogue's id columns (id, *_id, objid, snid, name, ...) or "
                    "every input column with --keep-columns, and records the astrobayes version, model, "
                    "checksum, date, command and seed in its metadata. Rows with a missing (NaN) input get "
                    "NaN summaries. The same --seed gives the same numbers on every run.", 79),
        epilog="example:\n  astrobayes apply models/photo_z galaxies.fits photo_z.fits --columns g_r,r_i,i_z")
    apply.add_argument("model", help="saved model (path stem, .json or .safetensors)")
    apply.add_argument("catalog", help="input catalogue: .ecsv, .fits, .csv or .parquet")
    apply.add_argument("output", help="output catalogue; its suffix sets the format unless --format is given")
    apply.add_argument("--columns", metavar="A,B,C",
                       help="input columns in the order the model was trained on (default: those recorded "
                            "with the model)")
    apply.add_argument("--names", metavar="P,Q", help="output parameter names (default: from the model's prior, "
                                                      "else y_0, y_1, ...)")
    apply.add_argument("--draws", type=int, default=1000, metavar="N",
                       help="posterior draws per object for the summaries (default: 1000; regressors and "
                            "mixture density networks are summarised exactly)")
    apply.add_argument("--samples", type=int, default=0, metavar="K",
                       help="also store K posterior draws per object in a NAME_samples column (not for CSV)")
    apply.add_argument("--quantiles", default="0.16,0.5,0.84", metavar="Q1,Q2",
                       help="quantiles to report (default: 0.16,0.5,0.84, the median and the 68%% interval)")
    apply.add_argument("--batch-size", type=int, default=4096, help="objects per network call (default: 4096)")
    apply.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                       help="where the network runs (default: auto = CUDA when present)")
    apply.add_argument("--seed", type=int, default=0, help="random seed of the posterior draws (default: 0)")
    apply.add_argument("--keep-columns", action="store_true", help="copy every input column to the output")
    apply.add_argument("--id-columns", metavar="A,B", help="input columns to copy (default: the id-like ones)")
    apply.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    apply.add_argument("--format", choices=("ecsv", "fits", "csv", "parquet"),
                       help="output format (default: from the output's suffix)")
    apply.set_defaults(handler=_apply)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astrobayes`` command line; return the exit status.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits on --help and on usage errors
        return int(stop.code or 0)
    args.argv = argv
    try:
        return args.handler(args)
    except (ValueError, TypeError, RuntimeError, OSError) as err:
        # A one-line message for the user; ASTROBAYES_DEBUG=1 shows the traceback.
        if os.environ.get("ASTROBAYES_DEBUG"):
            raise
        print(f"astrobayes {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"astrobayes {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
