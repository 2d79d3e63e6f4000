# corecast: two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-lowest install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,dask,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/corecast demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The fast tests on the lowest versions pyproject.toml declares (.ci/lowest_constraints.py pins
# every dependency to its bound), in a venv of their own: a bound that no longer installs or
# passes fails here. About 1-2 minutes with a warm pip cache (downloads add to it when cold).
LOWEST       ?= .venv-lowest
LOWEST_TESTS := tests/features tests/models tests/serving/test_reasons.py \
	tests/serving/test_reasons_guard.py tests/pipelines/test_deploy_cron.py tests/test_exports.py \
	tests/simulator/test_community.py tests/simulator/test_posterior.py tests/test_layers.py

test-lowest:
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python .ci/lowest_constraints.py dev > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e . pytest hypothesis
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider -m "not slow and not browser" \
		$(LOWEST_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(LOWEST) .corecast .pytest_cache .ruff_cache
