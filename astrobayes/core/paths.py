"""Never write over an input: does an output path name a file that was read?

Every writer of the package (the ``astrobayes`` command, catalogue and
table writers, model savers) asks :func:`check_not_input` before any work.
Two paths name the same file when they do after ``~`` expansion, relative
paths, ``..`` and symbolic links (of the file or of any folder above it,
also for an output that does not exist yet), or when they are hard links to
one file (same device and inode, :func:`os.path.samefile`). An output folder
that holds an input, and an existing output inside an input folder, are the
same danger: writing the one replaces the other.

Objects read from files remember where from (:func:`remember_sources`), so
that a writer given such an object can refuse to write over its source.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["check_not_input", "remember_sources", "read_sources", "SOURCES_KEY"]

#: ``meta`` key under which readers record the absolute paths they read; writers drop it from their output
SOURCES_KEY = "astrobayes_read_from"


def _resolved(path) -> Path:
    # realpath follows every symlink it meets, also in the folders above a file that does not exist yet
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _same(output: Path, source: Path) -> bool:
    if output == source:
        return True
    try:  # hard links (and case-insensitive file systems): same device and inode
        return output.exists() and source.exists() and os.path.samefile(output, source)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return folder != path and folder in path.parents


def check_not_input(output, inputs: Iterable, *, argument: str = "output", what: str = "input") -> None:
    """Refuse (ValueError) an ``output`` path that would write over one of ``inputs``.

    Parameters
    ----------
    output : str or path
        Where something is about to be written (a file, or a folder that is
        replaced as a whole).
    inputs : iterable of str or path
        Files (or folders) that were read, or are about to be; None entries
        are skipped. A folder counts with everything in it.
    argument : str
        How the output is named in the message (``"output"``, ``"--output"``, ``"path"``).
    what : str
        What the inputs are, for the message (``"input catalogue"``, ``"model file"``).

    Raises
    ------
    ValueError
        Naming both paths, when ``output`` is the same file as an input (see
        the module notes), is an existing file inside an input folder, or is
        a folder holding an input. ``overwrite`` flags do not lift this.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp(); catalog = os.path.join(folder, "cat.ecsv")
    >>> open(catalog, "w").close()
    >>> check_not_input(os.path.join(folder, "out.ecsv"), [catalog])           # another file: fine
    >>> check_not_input(os.path.join(folder, "x", "..", "cat.ecsv"), [catalog])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: output '.../x/../cat.ecsv' is the input '.../cat.ecsv'; refusing to write over an input ...
    """
    out = _resolved(output)
    for source in inputs:
        if source is None:
            continue
        src = _resolved(source)
        if _same(out, src):
            relation = f"is the {what}"
        elif src.is_dir() and out.exists() and _inside(out, src):
            relation = f"is an existing file in the {what} folder"
        elif out.is_dir() and _inside(src, out):
            relation = f"is a folder that holds the {what}"
        else:
            continue
        raise ValueError(f"{argument} {os.fspath(output)!r} {relation} {os.fspath(source)!r}; refusing to write "
                         "over an input (with or without overwrite): write to another path")


def remember_sources(meta: dict, paths: Iterable) -> dict:
    """Record in ``meta`` (a table's ``meta``) the absolute paths of the files it was read from; return ``meta``.

    Examples
    --------
    >>> meta = remember_sources({}, ["cat.ecsv"])
    >>> read_sources(meta)[0].endswith("cat.ecsv")
    True
    """
    meta[SOURCES_KEY] = [os.fspath(_resolved(p)) for p in paths]
    return meta


def read_sources(meta) -> list[str]:
    """The paths :func:`remember_sources` recorded in ``meta`` ([] when none or ``meta`` is not a mapping)."""
    found = meta.get(SOURCES_KEY) if hasattr(meta, "get") else None
    if isinstance(found, str):
        return [found]
    return [str(p) for p in found] if isinstance(found, (list, tuple)) else []
