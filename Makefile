# Rekindle: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SYSTEM_DEPS := $(VENV)/.system-deps

.PHONY: dev system-deps lint test test-fast demo bench bench-trainer bench-disk bench-tfdata bench-operator bench-progress bench-gang soak gpu-check e2e-kind e2e-cluster emulated-cluster clean

## dev: create .venv and install rekindle[dev] (a second run with nothing changed takes seconds)
dev: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=24'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## system-deps: Debian packages the tests need (prometheus, promtool), when root on Debian
system-deps: $(SYSTEM_DEPS)

$(SYSTEM_DEPS): scripts/install-system-deps.sh | $(INSTALLED)
	bash scripts/install-system-deps.sh
	touch $@

## lint: ruff, mypy, import contracts, hadolint
lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/hadolint_all.py

## test: lint, then every test (slow end-to-end ones included)
test: dev system-deps lint
	$(BIN)/python -m pytest

## test-fast: the tests not marked slow
test-fast: dev system-deps
	$(BIN)/python -m pytest -m 'not slow'

## demo: run examples/digits.yaml locally with injected faults, then print a summary
demo: dev
	$(BIN)/rekindle run examples/digits.yaml --workdir .rekindle/demo --fresh \
		--inject sigkill@epoch=3 --inject sigterm@epoch=6

## bench: every benchmark; each writes bench/results/<name>.json and prints a table
bench: bench-trainer bench-disk bench-tfdata bench-operator bench-progress bench-gang

bench-trainer: dev
	$(BIN)/python -m bench.trainer

bench-disk: dev
	$(BIN)/python -m bench.disk_speed

## bench-tfdata: a TFRecord pipeline resumed at 0/10/50/90 % of an epoch (iterator vs skip)
bench-tfdata: dev
	$(BIN)/python -m bench.tfdata

bench-operator: dev
	$(BIN)/python -m bench.operator

bench-progress: dev
	$(BIN)/python -m bench.progress

bench-gang: dev
	$(BIN)/python -m bench.gang

## soak: 20 jobs, 100 random faults on the emulated cluster (SEED=n replays one); not in CI.
## Prints the seed and a row per job, writes bench/results/soak.json (docs/benchmarks.md)
SOAK_ARGS ?= $(if $(SEED),--seed $(SEED))
soak: dev
	$(BIN)/python -m tests.soak --jobs 20 --faults 100 $(SOAK_ARGS)

## gpu-check: MirroredStrategy and mixed precision over every GPU, killed and resumed
## (2 logical CPUs without a GPU). GPU_PYTHON: an interpreter with TensorFlow's GPU build.
GPU_PYTHON ?= $(BIN)/python
gpu-check:
	PYTHONPATH=trainer_image $(GPU_PYTHON) scripts/gpu_check.py bench/results/gpu_check.json

## e2e-kind: build both images and install the chart on a kind or k3s cluster (needs Docker)
e2e-kind:
	bash scripts/e2e-kind-up.sh

## e2e-cluster: the end-to-end scenarios against REKINDLE_E2E_KUBECONFIG's cluster
e2e-cluster: dev
	$(BIN)/python -m pytest tests/e2e -m cluster

## emulated-cluster: serve the tests' emulated API, one process node and the operator until
## Ctrl-C; prints a kubeconfig for kubectl (docs/emulated-cluster.md)
emulated-cluster: dev
	$(BIN)/python -m tests.kube serve --operator

clean:
	rm -rf $(VENV) .rekindle .pytest_cache .mypy_cache .ruff_cache
