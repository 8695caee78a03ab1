"""The ``astrobayes`` command: ``demo``, ``info``, ``inspect``, ``apply`` and ``train``.

Examples
--------
.. code-block:: console

    $ astrobayes info
    $ astrobayes demo --output demo-output
    $ astrobayes inspect demo-output/models/mdn
    $ astrobayes apply models/photo_z galaxies.fits photo_z.fits --columns g_r,r_i,i_z
    $ astrobayes train clusters --print-config > clusters.toml
    $ astrobayes train clusters --config clusters.toml --output models/cluster_mass

Errors go to stderr as one line each; the exit status is 0 on success, 2 for
a file that is not a readable astrobayes model, an unreadable catalogue, a
missing column, an existing output without ``--overwrite``, an output that
is one of the command's inputs (the catalogue, a model file, the
configuration; ``--overwrite`` or not, whatever the spelling: ``~``, ``..``,
symbolic or hard links), or a usage error; 130 for an interrupt (Ctrl-C,
also during start-up); 1 for any other failure (set ``ASTROBAYES_DEBUG=1`` to
see its traceback). ``python -m astrobayes`` is the same command.
"""
from __future__ import annotations

import argparse
import contextlib
import textwrap
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser"]

#: Packages whose versions ``astrobayes info`` reports.
_PACKAGES = ("astrobayes", "torch", "normflows", "emcee", "astropy", "healpy", "numpy", "matplotlib")

# ---------------------------------------------------------------------- info
def _version(package: str) -> str:
    from importlib import metadata  # not at start-up: it alone takes longer than the rest of the command's imports

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


def _summarise_ood(header: dict) -> str:
    """One line on the out-of-distribution reference stored with a model (issue 22)."""
    if "ood" not in header:
        return "no reference (saved before astrobayes kept one; fit_ood(x) and save again)"
    ood = header.get("ood")
    if ood is None:
        return f"no reference: {header.get('ood_note') or 'not recorded'}"
    method = ood.get("method", "knn") if isinstance(ood, dict) else None
    if method not in ("knn", "gaussian"):  # astrobayes.load refuses such a file: say so rather than describe it
        what = f"unknown method {method!r}" if isinstance(ood, dict) else f"a {type(ood).__name__}, not a dict"
        return f"damaged entry ({what}): loading this model will fail"
    score = "Mahalanobis distance" if method == "gaussian" else f"distance to the {ood.get('k', '?')}-th neighbour"
    quantiles = ood.get("calibration_score_quantiles")

    def level(q) -> float | None:
        try:
            return float(q) * 100
        except (TypeError, ValueError):
            return None

    shown = ", ".join(f"q{level(q):g} {v:.3g}" for q, v in (quantiles.items() if isinstance(quantiles, dict) else ())
                      if level(q) is not None and isinstance(v, (int, float)) and not isinstance(v, bool))
    return (f"{method} reference ({score}) of {ood.get('n_features', '?')}-d context vectors, fitted on "
            f"{ood.get('n_reference', '?')} training rows, p-values calibrated on {ood.get('n_calibration', '?')} "
            f"held-out rows (their scores: {shown or 'not recorded'})")


def _inspect(args) -> int:
    from .catalog.domains import DOMAIN_MODELS, domain_model_kind, model_stem, network_path
    from .core.serialization import ModelFileError, model_paths, read_model

    try:
        model_paths(args.model)  # a ValueError for "", ".", "/": no model's name
        kind = domain_model_kind(args.model)
        network = network_path(args.model, kind)
        header, tensors = read_model(network)
    except (ModelFileError, FileNotFoundError, ValueError) as err:
        print(f"astrobayes inspect: {' '.join(str(err).split())}", file=sys.stderr)  # one line, whatever the path
        return 2
    weights, config_path = model_paths(network)
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
    print(f"out of distr.  {_summarise_ood(header)}")
    print(f"weights        {weights.name}: {len(tensors)} tensors, {n_parameters} values")
    # read_model refuses a file whose SHA-256 differs, so reaching here means it matched.
    print(f"checksum       OK (sha256 {header['weights_sha256'][:16]}...)")
    if kind is not None:
        print(f"domain         {kind} model: apply reads {DOMAIN_MODELS[kind]}")
    stem = model_stem(args.model)
    report = stem.with_name(stem.name + ".train.json")
    if report.is_file():
        try:
            trained = json.loads(report.read_text())
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in trained.get("metrics", {}).items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool))
            print(f"trained by     {trained.get('command') or 'astrobayes train ' + trained.get('domain', '?')} "
                  f"(seed {trained.get('seed')}, {trained.get('n_train')} examples, {trained.get('seconds')} s)")
            print(f"held out       {metrics or 'no metrics'}")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as err:
            print(f"trained by     {report.name} unreadable ({type(err).__name__})")
    return 0


# ---------------------------------------------------------------------- apply
def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _named(option: str, text: str | None) -> list[str] | None:
    """The names listed by ``--option a,b,c`` (None when not given); ValueError for an empty or repeating list."""
    names = _split(text)
    if names is not None and not names:
        raise ValueError(f"{option} {text!r} names nothing; give names separated by commas, or leave {option} out")
    repeated = sorted({name for name in names or () if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{option} names {', '.join(map(repr, repeated))} more than once")
    return names


def _output_problem(args, kind: str | None) -> str | None:
    """Why ``args.output`` cannot be written (None when it can), decided before any work."""
    from .catalog.domains import apply_inputs
    from .core.paths import check_not_input

    output = Path(args.output)
    catalogs, model_files = apply_inputs(kind, args.model, args.catalog)
    try:  # first: an input must never be overwritten, and --overwrite must not be suggested for it
        check_not_input(output, catalogs, what="input catalogue")
        check_not_input(output, model_files, what="model" if kind == "supernovae" else "model file")
    except ValueError as err:
        return str(err)
    if output.is_dir():
        return f"the output {output} is a folder; name a file in it, e.g. {output / 'summaries.ecsv'}"
    if output.exists() and not args.overwrite:
        return f"{output} exists; pass --overwrite to replace it"
    if not output.parent.is_dir():
        return f"the output folder {output.parent} does not exist"
    if not os.access(output.parent, os.W_OK | os.X_OK):
        return f"the output folder {output.parent} is not writable"
    return None


def _columns_problem(catalog_path, names: list[str], wanted: list[str], by: str) -> str | None:
    """A message naming the first of ``wanted`` the catalogue lacks, with close matches (None when all exist)."""
    from .core.tables import did_you_mean

    for name in wanted:
        if name not in names:
            shown = ", ".join(names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
            return (f"the catalogue {catalog_path} has no column {name!r}, {by}{did_you_mean(name, names)}; "
                    f"its columns: {shown}")
    return None


def _provenance(args, model_path, model_class: str, sha256: str) -> dict:
    """What an output catalogue records about how it was made."""
    import datetime as dt
    import shlex

    from . import __version__

    return {"astrobayes_version": __version__, "model": str(Path(model_path).resolve()), "model_class": model_class,
            "model_sha256": sha256, "catalog": str(Path(args.catalog).resolve()),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "astrobayes " + shlex.join(args.argv), "seed": args.seed, "n_draws": args.draws}


def _apply_domain(args, kind: str, output: Path, out_format: str, usage) -> int:
    """``apply`` for a supernova classifier, cluster mass model or galaxy structure posterior."""
    import pandas as pd
    from astropy.table import Table

    from .catalog.domains import DOMAIN_MODELS, apply_domain_model, network_path
    from .catalog.io import write_catalog
    from .core.serialization import ModelFileError

    defaults = build_parser().parse_args(["apply", "m", "c", "o"])
    for name in ("columns", "names", "samples", "keep_columns", "id_columns", "quantiles", "batch_size", "device") \
            + (("draws", "seed") if kind != "galaxies" else ()):
        if getattr(args, name) != getattr(defaults, name):
            return usage(f"--{name.replace('_', '-')} does not apply to a {kind} model, which reads "
                         f"{DOMAIN_MODELS[kind]}")
    if args.draws < 1:
        return usage(f"--draws must be a positive number of draws, got {args.draws}")
    try:
        table = apply_domain_model(kind, args.model, args.catalog, n_draws=args.draws, seed=args.seed)
    except (ModelFileError, FileNotFoundError, KeyError, ValueError, TypeError) as err:
        return usage(f"cannot apply the {kind} model {args.model} to {args.catalog}: {err}")
    table = Table(table)
    ood_facts = {key: table.meta[key] for key in ("ood_alpha", "ood_flagged", "ood_note") if key in table.meta}
    table.meta = {}  # the provenance below replaces the domain table's own (nested) metadata
    from .core.serialization import read_model

    header, _ = read_model(network_path(args.model, kind))
    provenance = _provenance(args, args.model, f"{kind} model", header.get("weights_sha256", ""))
    provenance["domain"] = kind
    provenance.update(ood_facts)  # flat facts: how many rows the out-of-distribution check flagged, at which α
    if kind != "galaxies":  # no random draws: classify and estimate_mass are deterministic
        del provenance["seed"], provenance["n_draws"]
    empty = pd.DataFrame(index=range(len(table)))  # every column is the domain table's (keeps units and types)
    write_catalog(output, empty, table, out_format, provenance, {})
    print(f"Wrote {len(table)} rows ({kind}: {', '.join(table.colnames[:6])}, ...) to {output}")
    return 0


def _apply(args) -> int:
    from .catalog import (apply_estimator, as_catalog_model, load_catalog_model, posterior_draws, quantile_label,
                          summary_columns)
    from .catalog.domains import domain_model_kind
    from .catalog.io import catalog_format, id_columns, read_catalog, write_catalog
    from .core.serialization import ModelFileError, model_paths

    def usage(message: str) -> int:
        one_line = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        print(f"astrobayes apply: {one_line}", file=sys.stderr)
        return 2

    for name in ("model", "catalog", "output"):
        if not getattr(args, name).strip():
            return usage(f"the {name} path is empty")
        setattr(args, name, os.path.expanduser(getattr(args, name)))
    try:
        model_paths(args.model)  # a ValueError for ".", "/", "..": a folder, not a model's name
    except ValueError as err:
        return usage(str(err))
    output = Path(args.output)
    kind = domain_model_kind(args.model)
    problem = _output_problem(args, kind)
    if problem is not None:
        return usage(problem)
    try:
        out_format = catalog_format(output, args.format)
    except ValueError as err:
        return usage(str(err))
    if Path(args.catalog).is_file() and Path(args.catalog).stat().st_size == 0:
        return usage(f"the catalogue {args.catalog} is an empty file (0 bytes)")
    if kind is not None:  # reads lightcurves / members / stamps in its domain's formats
        return _apply_domain(args, kind, output, out_format, usage)
    try:
        in_format = catalog_format(args.catalog)
        columns, output_names, id_names = (_named(option, text) for option, text in (
            ("--columns", args.columns), ("--names", args.names), ("--id-columns", args.id_columns)))
    except ValueError as err:
        return usage(str(err))
    for option, value, least, what in (("--draws", args.draws, 2, "posterior draws per object"),
                                       ("--samples", args.samples, 0, "stored draws per object"),
                                       ("--batch-size", args.batch_size, 1, "objects per network call"),
                                       ("--seed", args.seed, 0, "a seed")):
        if value < least:
            return usage(f"{option} must be at least {least} ({what}), got {value}")
    if args.keep_columns and id_names is not None:
        return usage("--keep-columns copies every input column and --id-columns only those named: give one of them")
    if args.samples and out_format == "csv":
        return usage("a CSV file cannot hold per-object draws (--samples); write ECSV, FITS or Parquet")
    try:
        model = load_catalog_model(args.model)
    except (ModelFileError, FileNotFoundError, TypeError, ValueError) as err:
        return usage(f"cannot use {args.model} as a model: {err}")
    if output_names is not None:
        unwritable = [n for n in output_names if not n.isprintable() or (out_format == "fits" and not n.isascii())]
        if unwritable:
            return usage(f"--names {unwritable[0]!r}: output names must be printable text"
                         + (" in ASCII (all a FITS header holds)" if out_format == "fits" else ""))
        try:
            model = as_catalog_model(model, output_names)
        except ValueError as err:
            return usage(f"--names: {err}")
    try:
        catalog = read_catalog(args.catalog, in_format)
    except Exception as err:  # any reader failure means: not a catalogue we can read
        return usage(f"cannot read the catalogue {args.catalog}: {type(err).__name__}: {err}")
    if len(catalog) == 0:
        return usage(f"the catalogue {args.catalog} has no rows: nothing to apply the model to")
    names = list(catalog.colnames) if hasattr(catalog, "colnames") else [str(c) for c in catalog.columns]
    if columns is None and not model.columns:
        return usage(f"{args.model} records no input columns; name them with --columns a,b,c "
                     "in the order the model was trained on")
    problem = _columns_problem(args.catalog, names, columns or list(model.columns),
                               "named by --columns" if columns else f"an input recorded with the model {args.model}")
    columns = columns or list(model.columns)
    if problem is None and model.n_inputs is not None and len(columns) != model.n_inputs:
        problem = f"--columns names {len(columns)} column(s) but the model was trained on {model.n_inputs}"
    keep = names if args.keep_columns else (id_names or id_columns(names))
    problem = problem or _columns_problem(args.catalog, names, keep, "named by --id-columns")
    if problem is not None:
        return usage(problem)
    try:
        quantiles = [float(q) for q in _named("--quantiles", args.quantiles)]
    except ValueError as err:
        return usage(str(err) if "--quantiles" in str(err) else
                     f"--quantiles must be numbers separated by commas, got {args.quantiles!r}")
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
        try:
            draws = posterior_draws(catalog, model, columns, n=args.samples, seed=args.seed, device=args.device)
        except (ValueError, TypeError) as err:  # e.g. more draws than memory: still before any output exists
            return usage(str(err))
        for j, (param, unit) in enumerate(zip(model.parameters, model.units)):
            samples[f"{param}_samples"] = draws[:, :, j]
            units[f"{param}_samples"] = unit
    provenance = _provenance(args, model.path, type(model.model).__name__, model.header.get("weights_sha256", ""))
    provenance["columns"] = ",".join(columns)
    passed = catalog[keep] if keep else None
    write_catalog(output, summaries, passed, out_format, provenance, units, samples)
    print(f"Wrote {len(summaries)} rows ({', '.join(model.parameters)}) to {output}")
    return 0


# ---------------------------------------------------------------------- train
@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block (main thread), SIGTERM raises KeyboardInterrupt like Ctrl-C, so that clean-up runs."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _train(args) -> int:
    from .recipes import ConfigError, default_config, parse_override, train_domain

    def usage(message: str) -> int:
        one_line = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        print(f"astrobayes train {args.domain}: {one_line}", file=sys.stderr)
        return 2

    if args.print_config:
        sys.stdout.write(default_config(args.domain))
        return 0
    if args.output is None:
        return usage("--output is required (the path of the model to write)")
    for name in ("output", "config", "checkpoint"):  # "--output=~/models/x" reaches us unexpanded
        if getattr(args, name, None) is not None:
            if not getattr(args, name).strip():
                return usage(f"--{name} is an empty path")
            setattr(args, name, os.path.expanduser(getattr(args, name)))
    try:
        overrides = [parse_override(text) for text in args.set]
    except ValueError as err:
        return usage(str(err))
    import shlex

    try:
        with _sigterm_as_interrupt():  # SIGTERM too stops cleanly: no partial model, checkpoints kept
            report = train_domain(args.domain, args.output, config=args.config, overrides=overrides,
                                  seed=args.seed, device=args.device, overwrite=args.overwrite,
                                  log=lambda text: print(text, flush=True),
                                  command="astrobayes " + shlex.join(args.argv),
                                  checkpoint=args.checkpoint, resume=args.resume)
    except (ConfigError, FileExistsError, FileNotFoundError, ValueError, TypeError) as err:
        # bad settings found only once the work has started (a count out of range, a damaged or
        # mismatched checkpoint: ModelFileError is a ValueError) are bad input too: exit 2
        return usage(str(err))
    except MemoryError as err:
        return usage(f"not enough memory for these settings ({err}); use fewer simulations or smaller networks")
    except KeyboardInterrupt as stop:
        if args.checkpoint is None:
            raise
        if not Path(args.checkpoint).exists():
            print(f"astrobayes train {args.domain}: interrupted before the first checkpoint was written; "
                  "nothing to resume, rerun without --resume", file=sys.stderr)
            return 130
        from .estimators import TrainingInterrupted

        where = (f" by {stop.signal_name} after epoch {stop.epoch} of {stop.epochs}"
                 if isinstance(stop, TrainingInterrupted) else "")
        print(f"astrobayes train {args.domain}: interrupted{where}; checkpoints kept in {args.checkpoint}; "
              "rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    print(f"Wrote the {args.domain} model to {args.output} in {report['seconds']:.1f} s "
          f"({report['n_train']} training examples)")
    for key, value in report["metrics"].items():
        shown = f"{value:.4g}" if isinstance(value, float) else \
            "[" + ", ".join(f"{v:.3g}" for v in value) + "]" if isinstance(value, list) else value
        print(f"  {key:<28} {shown}")
    print(f"Report: {args.output}.train.json   use it with: {report['usage']}")
    return 0


# ---------------------------------------------------------------------- demo
def _demo(args) -> int:
    from .demo import run_demo

    start = time.perf_counter()
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
    print(f"astrobayes demo finished in {time.perf_counter() - start:.0f} s")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the command's error convention: one line on stderr, exit status 2 (no usage block)."""

    def error(self, message: str):
        one_line = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: {one_line} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``astrobayes`` command."""
    parser = _Parser(prog="astrobayes", description="Neural estimators and Bayesian inference for astronomy.")
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
                    "NaN summaries. The same --seed gives the same numbers on every run.", 79) + "\n\n" +
        textwrap.fill("Models written by 'astrobayes train supernovae | clusters | galaxies' read a whole object "
                      "instead of a row: lightcurves (a write_lightcurves file or a folder of SNANA files), a "
                      "member-galaxy catalogue (cluster_id, R_proj, v_los), or FITS stamps; the output is one row "
                      "per object (class probabilities; mass percentiles; Sérsic parameter intervals).", 79),
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

    from .recipes.domains import DOMAINS, SUMMARIES

    train = commands.add_parser(
        "train", help="train a domain model from a configuration file (simulations or shipped data)",
        description=textwrap.fill("Train the model of one domain from a TOML configuration and write it with a "
                                  "JSON report (held-out metrics, configuration, seed, timing) and a loss plot. "
                                  "Start from the defaults: astrobayes train DOMAIN --print-config > DOMAIN.toml",
                                  79),
        epilog="example:\n  astrobayes train clusters --print-config > clusters.toml\n"
               "  astrobayes train clusters --config clusters.toml --output models/cluster_mass",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    domains = train.add_subparsers(dest="domain", metavar="DOMAIN")
    domains.required = True
    for domain in DOMAINS:
        summary, description = SUMMARIES[domain]
        sub = domains.add_parser(
            domain, help=summary, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=textwrap.fill(description, 79) + "\n\n" + textwrap.fill(
                "Options come from the tables of a TOML file (--config) and --set; every key is a keyword "
                "argument of the domain's own functions. --print-config writes the defaults with comments.", 79),
            epilog=f"example:\n  astrobayes train {domain} --print-config > {domain}.toml\n"
                   f"  astrobayes train {domain} --config {domain}.toml --output models/{domain}")
        sub.add_argument("--config", metavar="FILE.toml", help="configuration file (default: the defaults)")
        sub.add_argument("--output", metavar="PATH", help="where to write the model (path stem"
                         + (", a folder" if domain == "supernovae" else "") + "); required unless --print-config")
        sub.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                         help="change one option, after the file (repeatable), e.g. --set train.epochs=20")
        sub.add_argument("--seed", type=int, default=0, help="seed of every random stream (default: 0)")
        sub.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                         help="where to train (default: auto = CUDA when present)")
        sub.add_argument("--overwrite", action="store_true", help="replace an existing model at --output")
        sub.add_argument("--checkpoint", metavar="DIR",
                         help="save the training state in this folder every epoch and on Ctrl-C / SIGTERM "
                              "(which then stop at the end of the epoch)")
        sub.add_argument("--resume", action="store_true",
                         help="continue the interrupted run whose checkpoints are in --checkpoint DIR (same "
                              "configuration, seed and device: the same model, bit for bit on the CPU)")
        sub.add_argument("--print-config", action="store_true", help="write the default configuration and exit")
        sub.set_defaults(handler=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astrobayes`` command line; return the exit status.

    An interrupt (Ctrl-C, or SIGTERM where the command turns it into one)
    at any point, start-up included, prints one line and returns 130.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with _sigterm_as_interrupt():  # SIGTERM (a batch system's stop) ends any command like Ctrl-C
            return _run(argv)
    except KeyboardInterrupt as stop:
        command = f"astrobayes {argv[0]}" if argv and not argv[0].startswith("-") else "astrobayes"
        said = " ".join(str(stop).split())  # e.g. where the checkpoints of an interrupted training run are
        if not said.lower().startswith("interrupted"):
            said = "interrupted" + (f" ({said})" if said else "")
        print(f"{command}: {said}", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
