# Two entry points (see README): `make reproduce` and `make test`.
# Each creates or updates .venv from pyproject.toml first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lcmc-installed
# Caches (rendered toy world, trained toy CLIPs, features) live inside the checkout by default.
export LCMC_CACHE_DIR ?= $(CURDIR)/.cache/lcmc
PROFILE ?= toy

.PHONY: setup reproduce study test test-fast lint benchmark clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

reproduce: $(STAMP)
	@# toy profiles: build the toy world and toy CLIPs first, printing their metrics and timings
	$(if $(filter toy smoke,$(PROFILE)),$(PY) -m lcmc_core toy-clips --size $(PROFILE) --out results/$(PROFILE)/tables)
	$(PY) -m lcmc_core reproduce --profile $(PROFILE) $(if $(ROOT),--root $(ROOT)) $(ARGS)

# the toy CLIP seed study (notebook 06): 3 seeds x 3 toy CLIP variants, about 35 minutes fresh on 2 cores
study: $(STAMP)
	$(PY) -m lcmc_core reproduce --profile study $(ARGS)

test: $(STAMP) lint
	$(PY) -m pytest -q -ra

# the inner loop: lint + every test that trains nothing and runs no notebook (< 1 minute)
test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check lcmc_core tests benchmarks scripts notebooks

benchmark: $(STAMP)
	$(PY) benchmarks/toy_world.py

clean-cache:
	rm -rf $(LCMC_CACHE_DIR)
