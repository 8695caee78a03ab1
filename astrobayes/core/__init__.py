"""Device choice, seeding, input checks, standardisation and model files."""
from .device import cuda_available, resolve_device
from .seeding import make_generator, seed_everything
from .serialization import (ModelFileError, estimator_class, json_safe, load, module_config, module_from_config, read_model,
                            register_estimator, register_module, write_model)
from .standardize import Standardizer
from .validation import Masked, as_inputs, as_tensor, check_same_length, index_inputs, inputs_to, n_rows

__all__ = [
    "cuda_available", "resolve_device", "make_generator", "seed_everything", "ModelFileError", "estimator_class", "json_safe", "load",
    "module_config", "module_from_config", "read_model", "register_estimator", "register_module",
    "write_model", "Standardizer", "Masked", "as_inputs", "as_tensor", "check_same_length",
    "index_inputs", "inputs_to", "n_rows",
]
