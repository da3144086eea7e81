# Two commands: `make run` (set up, then benchmark) and `make test` (set up, then run the tests).
# Both create .venv on first use: the CPU build of torch first, then ehrbench (editable). TORCH
# selects the torch build; on a CUDA machine use e.g. `make run TORCH=torch`.
# `make test` installs TEST_EXTRAS, every extra the default test suite tests, so the README's
# command tests everything; tests/test_setup.py fails when a test needs an extra it leaves out.
# `make setup EXTRAS=sdv` installs other extras for a run (default: none, what `ehrbench run` needs).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?=
TEST_EXTRAS := test,sdv,ray,dp
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

comma := ,
# One stamp per set of extras installed (.venv/.installed-base, .venv/.installed-test+sdv+ray), remade
# when pyproject.toml changes; the editable install is the same, the extras add packages.
stamp = $(VENV)/.installed-$(if $(1),$(subst $(comma),+,$(1)),base)

.PHONY: setup run test gpu-wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".$(if $(filter-out base,$*),[$(subst +,$(comma),$*)])"
	touch $@

setup: $(call stamp,$(EXTRAS))

run: setup
	$(BIN)/ehrbench run $(ARGS)

# EHRBENCH_TEST_EXTRAS tells the suite what was installed: a test skipped for want of one of them fails.
test: $(call stamp,$(TEST_EXTRAS))
	EHRBENCH_TEST_EXTRAS=$(TEST_EXTRAS) $(BIN)/python -m pytest $(PYTEST_ARGS)

# What the GPU machine lacks (it has torch, numpy, scipy, pandas, scikit-learn, pluggy, click,
# rich, matplotlib, pytest): torchsde and its one missing dependency, both pure Python. Exactly
# one version of each is kept, so `pip install .whl/*.whl` there never sees two.
GPU_WHEELS ?= torchsde==0.2.6 trampoline==0.1.2
GPU_PLATFORMS := $(foreach n,2_28 2_27 2_17 2014 1,--platform manylinux$(if $(filter 2014 1,$(n)),$(n),_$(n))_x86_64)

gpu-wheels:
	mkdir -p .whl
	rm -f $(foreach w,$(GPU_WHEELS),.whl/$(firstword $(subst ==, ,$(w)))-*.whl)
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(GPU_PLATFORMS) -d .whl $(GPU_WHEELS)
	ls -l .whl
