"""``python -m astrobayes``: the ``astrobayes`` command line."""
import sys

from .cli import main

sys.exit(main())
