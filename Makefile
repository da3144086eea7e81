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

.PHONY: setup run test gpu-wheels

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
