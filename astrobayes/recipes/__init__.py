"""Training recipes: ``astrobayes train DOMAIN`` from a TOML configuration, as a script or from Python.

Each domain has a recipe: sections of options that are the keyword arguments
of the domain's own simulate / train functions, a held-out check, and a
model written with a JSON report and a loss plot.

>>> from astrobayes.recipes import DOMAINS, default_config
>>> DOMAINS
('supernovae', 'clusters', 'galaxies', 'shear', 'stars')
>>> print(default_config("stars").splitlines()[0])
# astrobayes train stars: the emulated stellar map (log M, [Fe/H]) → (log R, log Teff) for hierarchical models
"""
from .config import (ConfigError, Section, format_config, parse_override, read_config, resolve_config,
                     section_options)
from .domains import DOMAINS, SUMMARIES, Context, Recipe, Trained, recipe
from .run import default_config, output_paths, train_domain

__all__ = ["ConfigError", "DOMAINS", "SUMMARIES", "Context", "Recipe", "Section", "Trained", "default_config",
           "format_config", "output_paths", "parse_override", "read_config", "recipe", "resolve_config", "section_options",
           "train_domain"]
