# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch first (a CPU build where a local wheel
# exists), then the package with its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.astrobayes-installed
TORCH  ?= torch==2.13.0

.PHONY: demo test test-all fuzz benchmark benchmark-sbi clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,plot]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astrobayes demo --output demo-output

# worksteal: an idle worker takes tests from a busy one's queue; tests/conftest.py starts the longest tests
# first, and --durations prints the slowest 25 so that a slow new test shows in the log
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist worksteal --durations=25 --doctest-modules astrobayes tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=25 --doctest-modules astrobayes tests

# the fuzz tests of every reader with 500 examples each instead of the suite's 40 (about 10 minutes)
fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz_readers.py --examples 500

benchmark: $(STAMP)
	$(BIN)/python benchmarks/estimators.py

# NPE against sbi on two_moons and slcp (about 20 minutes on 2 CPU cores); sbi is a benchmark-only extra
benchmark-sbi: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/sbi_tasks.py --threads 1 --repeats 3 --markdown sbi_tasks.md

clean:
	rm -rf $(VENV) demo-output .pytest_cache
