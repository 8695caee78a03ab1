"""The ``astrobayes`` command: ``demo``, ``info`` and ``inspect``.

Examples
--------
.. code-block:: console

    $ astrobayes info
    $ astrobayes demo --output demo-output
    $ astrobayes inspect demo-output/models/mdn

Errors go to stderr as one line each; the exit status is 0 on success, 2 for
a file that is not a readable astrobayes model (or a usage error), 1 for any
other failure (set ``ASTROBAYES_DEBUG=1`` to see its traceback).
"""
from __future__ import annotations

import argparse
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astrobayes`` command line; return the exit status.

    Examples
    --------
    >>> main(["info"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits on --help and on usage errors
        return int(stop.code or 0)
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
