# Two commands: `make run` (set up, then benchmark) and `make test` (set up, then run the tests).
# Both create .venv on first use. TORCH selects the torch build: the default is the CPU
# build; on a CUDA machine use e.g. `make run TORCH=torch`. EXTRAS picks the optional extras
# (e.g. `make setup EXTRAS=test,sdv,ray`).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= test
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test

$(BIN)/ehrbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(BIN)/ehrbench

run: setup
	$(BIN)/ehrbench run $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)
