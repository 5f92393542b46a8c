# Two entry points (see README): `make reproduce` and `make test`.
# Each creates or updates .venv from pyproject.toml first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lcmc-installed
# Caches (rendered toy world, trained toy CLIPs, features) live inside the checkout by default.
export LCMC_CACHE_DIR ?= $(CURDIR)/.cache/lcmc
PROFILE ?= toy

.PHONY: setup reproduce test benchmark clean-cache

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

test: $(STAMP)
	$(PY) -m pytest -q -ra

benchmark: $(STAMP)
	$(PY) benchmarks/toy_world.py

clean-cache:
	rm -rf $(LCMC_CACHE_DIR)
