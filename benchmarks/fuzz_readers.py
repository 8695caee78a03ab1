"""How many hostile inputs each reader survives: a longer run of the fuzz tests.

The property-based tests in ``tests/fuzz/`` run in the normal suite with a
small, fixed example count. This script runs them again with
``ASTROBAYES_FUZZ_EXAMPLES`` examples each (default 500), asks hypothesis for
its statistics and prints, per reader, how many examples were run and how
many failed (an exception that is not one of the package's documented ones,
or a message that does not name the file, column or argument).

.. code-block:: console

    $ .venv/bin/python benchmarks/fuzz_readers.py                     # the default count
    $ .venv/bin/python benchmarks/fuzz_readers.py --examples 40       # what the suite runs
    $ .venv/bin/python benchmarks/fuzz_readers.py --markdown benchmarks/results/fuzz_readers.md

The examples are derandomised (fixed), so a rerun with the same count runs
the same inputs. Exit status: 0 when every fuzz test passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "tests" / "fuzz"
# "- 30 passing, 0 failing, and 0 invalid test cases" (older hypothesis: "30 passing examples, 0 failing …")
_COUNTS = re.compile(r"(\d+) passing(?: examples?)?, (\d+) failing(?: examples?)?,(?: and)? (\d+) invalid")
_TEST = re.compile(r"^(tests/fuzz/\S+\.py)::(\S+?):\s*$")


def run(examples: int) -> tuple[dict, int, float]:
    """Run the fuzz tests; return per-test ``(passing, failing, invalid)``, pytest's exit code and seconds."""
    env = dict(os.environ, ASTROBAYES_FUZZ_EXAMPLES=str(examples), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "--hypothesis-show-statistics", str(FUZZ.relative_to(ROOT))],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    per_test, current = {}, None
    for line in done.stdout.splitlines():
        header = _TEST.match(line.strip())
        if header:
            current = f"{header.group(1)}::{header.group(2)}"
            per_test.setdefault(current, [0, 0, 0])
            continue
        counts = _COUNTS.search(line)
        if counts and current is not None:  # hypothesis reports each phase (reuse, generate, shrink) separately
            for k in range(3):
                per_test[current][k] += int(counts.group(k + 1))
    if done.returncode not in (0, 1) or not per_test:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
    return per_test, done.returncode, seconds


def table(per_test: dict) -> list[str]:
    """One row per fuzz file (a reader area) and one per test inside it."""
    by_file = defaultdict(list)
    for name, counts in per_test.items():
        path, test = name.split("::", 1)
        by_file[Path(path).stem.removeprefix("test_fuzz_")].append((test, counts))
    lines = ["| area | fuzz test | examples run | failing | invalid (discarded) |",
             "|---|---|---:|---:|---:|"]
    total = [0, 0, 0]
    for area in sorted(by_file):
        for test, (passing, failing, invalid) in sorted(by_file[area]):
            lines.append(f"| {area} | `{test}` | {passing + failing} | {failing} | {invalid} |")
            total = [total[0] + passing, total[1] + failing, total[2] + invalid]
    lines.append(f"| **all** | {len(per_test)} tests | **{total[0] + total[1]}** | {total[1]} | {total[2]} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="hypothesis examples per fuzz test (default 500)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be a positive integer")
    per_test, code, seconds = run(args.examples)
    lines = [f"Fuzz tests with up to {args.examples} examples each (`tests/fuzz/`, derandomised); "
             f"pytest exit status {code}, {seconds:.0f} s on this machine.", ""] + table(per_test)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("# Fuzz campaign\n\nCommand: `.venv/bin/python benchmarks/fuzz_readers.py "
                                 f"--examples {args.examples}`\n\n" + "\n".join(lines) + "\n")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
