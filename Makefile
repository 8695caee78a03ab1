# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch first (a CPU build where a local wheel
# exists), then the package with its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.astrobayes-installed
TORCH  ?= torch==2.13.0

.PHONY: demo test test-all benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,plot]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astrobayes demo --output demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 --doctest-modules astrobayes tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules astrobayes tests

benchmark: $(STAMP)
	$(BIN)/python benchmarks/estimators.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
