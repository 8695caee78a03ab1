"""Reading FITS files that may be damaged: every failure becomes a ValueError that names the file.

A FITS file cut short, with a flipped byte or a header card rewritten by hand
makes astropy (and healpy, and numpy under them) raise almost anything: a
reshape ``ValueError``, ``VerifyError`` for a card it cannot parse,
``KeyError`` for a missing keyword, ``TypeError`` ("buffer is too small"),
``IndexError``, ``AssertionError`` (astropy checks some column definitions
with ``assert``), and a truncated file is only *warned* about. Readers wrap
their work in :func:`reading_fits`, so that what reaches the user is one
``ValueError`` that says which file and what went wrong.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.fits"
>>> _ = path.write_bytes(b"")
>>> from astropy.io import fits
>>> with reading_fits(str(path)):
...     fits.getdata(path)
Traceback (most recent call last):
...
ValueError: .../empty.fits is not a readable FITS file or is damaged (OSError: Empty or corrupt FITS file)
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["DAMAGED_FITS", "reading_fits"]

#: what astropy, healpy or numpy raise on a damaged FITS file: a card they cannot parse, a keyword missing,
#: data shorter than the header says, a column format they do not know (astropy checks some with assert)
DAMAGED_FITS = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError,
                AssertionError, fits.VerifyError, AstropyUserWarning)


def _named(err: BaseException, name: str, what: str) -> ValueError:
    """A ValueError naming the file for an exception raised while reading it (the reader's own already do)."""
    message = str(err)
    if isinstance(err, ValueError) and not isinstance(err, fits.VerifyError) and name in message:
        return err
    if isinstance(err, AstropyUserWarning) and "truncated" in message:
        return ValueError(f"{name} is truncated ({message}); copy or download it again")
    said = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return ValueError(f"{name} is not a readable {what} or is damaged ({said})")


@contextmanager
def reading_fits(name: str, what: str = "FITS file"):
    """Read a FITS file inside this block: damage is a ValueError naming ``name``; truncation is an error.

    Parameters
    ----------
    name : str
        The file (or "the HDUList") as the message should name it; an error
        whose message already contains it passes unchanged.
    what : str
        What the file should have been, for the message ("HEALPix FITS file").
    """
    with warnings.catch_warnings():
        # astropy only warns when the data end before the header says they do; a short read is an error here
        warnings.filterwarnings("error", message="File may have been truncated", category=AstropyUserWarning)
        try:
            yield
        except DAMAGED_FITS as err:
            raise _named(err, name, what) from None
