# voxlora: `make demo` shows the whole pipeline, `make test` proves it. Both build .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3
# Some machines keep a CPU build of torch on local disk, which `pip install torch==2.13.0` picks up.
# Prefer it there (no multi-GB CUDA download); everywhere else torch comes from the index as usual.
LOCAL_TORCH := $(firstword $(wildcard /opt/wheels/torch-2.13.0*.whl))

# VoxCPM's model code, without its dependencies (see the voxcpm extra in pyproject.toml)
VOXCPM_PIN ?= voxcpm==2.0.3

.PHONY: setup demo demo-higgs test lint bench bench-gpu clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(LOCAL_TORCH),$(PY) -m pip install -q --find-links $(dir $(LOCAL_TORCH)) "torch==2.13.0")
	$(PY) -m pip install -q -e ".[dev,demo,mlx,eval,data,voxcpm,track]"
	$(PY) -m pip install -q --no-deps "$(VOXCPM_PIN)"
	touch $(STAMP)

demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash demo.sh demo-out

# the same pipeline on a tiny Higgs Audio v2 (transformers' classes, made by code)
demo-higgs: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash demo-higgs.sh demo-higgs-out

test: setup
	$(PY) -m pytest -q tests shared

lint: setup
	$(PY) -m ruff check shared tools tests bench
	$(PY) -m ruff format --check shared tools tests bench

# make bench BENCH_ARGS="--only train --sizes small" for one part
bench: setup
	$(PY) -m bench $(BENCH_ARGS)

# one CUDA GPU, under 8 minutes: voxlora vs the transformers recipe on a random CSM-1B in bf16
# (python -m bench.gpu --smoke runs anywhere; bench/gpu_wheels.sh prepares a bare GPU image)
bench-gpu: setup
	$(PY) -m bench.gpu $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-out demo-higgs-out bench/work
