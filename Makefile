# Two entry points (see README): `make reproduce` and `make test`.
# Each creates or updates .venv from requirements.lock (exact versions) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lcmc-installed
LOCK := requirements.lock
# the extras `make setup` installs (the lock holds exactly these: `make lock` resolves the same set)
EXTRAS := notebooks,llm,dev
# Caches (rendered toy world, trained toy CLIPs, features) live inside the checkout by default.
export LCMC_CACHE_DIR ?= $(CURDIR)/.cache/lcmc
PROFILE ?= toy
comma := ,
# the constraints pip is configured with on this machine (if any) also bound the lock, so that the
# lock never asks for a release pip here refuses
PIP_CONSTRAINT_FILE := $(shell $(PYTHON) -m pip config get global.constraint 2>/dev/null)

.PHONY: setup lock reproduce verify study test test-fast test-latest test-openai-oldest lint benchmark environment clean-cache

setup: $(STAMP)

# exactly the lock (every package, transitive ones included), then this package without touching them
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# re-resolve the lock from pyproject.toml for every platform and Python >= 3.10 (uv pip compile
# --universal); versions already locked are kept unless pyproject.toml rules them out: pass
# LOCK_ARGS=--upgrade to move everything to the newest allowed release
lock: $(STAMP)
	$(PY) -m uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
		--universal --python-version 3.10 --no-header --quiet \
		$(if $(PIP_CONSTRAINT_FILE),-c $(PIP_CONSTRAINT_FILE)) $(LOCK_ARGS) -o $(LOCK)
	@echo "wrote $(LOCK); run make setup (or make test) to install it"

OUT ?= results/$(PROFILE)
reproduce: $(STAMP)
	@# toy profiles: build the toy world and toy CLIPs first, printing their metrics and timings
	$(if $(filter toy smoke,$(PROFILE)),$(PY) -m lcmc_core toy-clips --size $(PROFILE) --out $(OUT)/tables)
	$(PY) -m lcmc_core reproduce --profile $(PROFILE) --out $(OUT) $(if $(ROOT),--root $(ROOT)) $(ARGS)

# a reviewer's check in one step: rerun the profile into results/<profile>-rerun (the committed results stay as
# they are), then check that the rerun supports the same conclusions (numbers within the measured cross-machine
# tolerances, verdicts and rankings; python -m lcmc_core verify --help)
verify: $(STAMP)
	$(MAKE) reproduce PROFILE=$(PROFILE) OUT=results/$(PROFILE)-rerun
	$(PY) -m lcmc_core verify --profile $(PROFILE) --out results/$(PROFILE)-rerun --conclusions

# the toy CLIP seed study (notebook 06): 3 seeds x 3 toy CLIP variants, about 35 minutes fresh on 2 cores
study: $(STAMP)
	$(PY) -m lcmc_core reproduce --profile study $(ARGS)

test: $(STAMP) lint
	$(PY) -m pytest -q -ra

# the inner loop: lint + every test that trains nothing and runs no notebook (< 1 minute)
test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow"

# early warning for upstream breakage: a separate environment with the newest releases pyproject.toml
# allows (not the lock), the list of packages that differ from the lock, then the fast suite
VENV_LATEST ?= .venv-latest
test-latest:
	test -x $(VENV_LATEST)/bin/python || $(PYTHON) -m venv $(VENV_LATEST)
	$(VENV_LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[$(EXTRAS)]"
	$(VENV_LATEST)/bin/python -m pip check
	$(VENV_LATEST)/bin/python -m lcmc_core environment --lock $(LOCK)
	$(VENV_LATEST)/bin/python -m ruff check lcmc_core tests benchmarks scripts notebooks
	LCMC_ENVIRONMENT=latest $(VENV_LATEST)/bin/python -m pytest -q -m "not slow" -p no:cacheprovider

# the generator tests against the oldest openai that pyproject.toml allows (the lock has the newest):
# that release goes into its own folder, ahead of the locked one on the path
OPENAI_OLDEST_DIR := $(LCMC_CACHE_DIR)/openai-oldest
test-openai-oldest: $(STAMP)
	rm -rf $(OPENAI_OLDEST_DIR) && mkdir -p $(OPENAI_OLDEST_DIR)
	@# the oldest openai with the dependencies it asks for, every package the lock holds kept at its locked version
	grep -v '^openai==' $(LOCK) > $(OPENAI_OLDEST_DIR).constraints.txt
	$(PY) -m pip install --quiet --target $(OPENAI_OLDEST_DIR) -c $(OPENAI_OLDEST_DIR).constraints.txt \
		"$$($(PY) -m lcmc_core environment --oldest openai)"
	PYTHONPATH=$(OPENAI_OLDEST_DIR) LCMC_EXPECT_OPENAI="$$($(PY) -m lcmc_core environment --oldest openai)" \
		$(PY) -m pytest -q -p no:cacheprovider tests/text/test_generators.py tests/text/test_llm_faults.py

lint: $(STAMP)
	$(PY) -m ruff check lcmc_core tests benchmarks scripts notebooks

benchmark: $(STAMP)
	$(PY) benchmarks/toy_world.py

# which installed packages differ from the lock (what a rerun's environment changes)
environment: $(STAMP)
	$(PY) -m lcmc_core environment --lock $(LOCK)

clean-cache:
	rm -rf $(LCMC_CACHE_DIR)
