"""Property-based ("fuzz") tests of every reader: shared hypothesis settings.

Each fuzz test feeds a reader damaged or hostile input (truncation, byte
flips, wrong dtypes, empty files, huge and tiny values, unicode names) and
checks that the only exceptions escaping are the package's documented ones,
each naming the file, column or argument.

The example count is bounded so that the normal suite stays fast; it is
deterministic (``derandomize=True``), so CI sees the same examples each run.
``ASTROBAYES_FUZZ_EXAMPLES=N`` raises the count (``benchmarks/fuzz_readers.py``
runs a longer campaign and prints the examples run per reader).
"""
import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("ASTROBAYES_FUZZ_EXAMPLES", "40"))

settings.register_profile(
    "astrobayes-fuzz",
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)
settings.load_profile("astrobayes-fuzz")
