# One entry point for people and CI. Every target sets itself up: a virtual environment in $(VENV),
# (re)installed when pyproject.toml changes. `make plan` needs only the package and its extras
# ($(RUN_STAMP)); the other targets also need the test and docs tool chains ($(STAMP)).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PIP := $(BIN)/python -m pip --disable-pip-version-check

# The seed scenario: a plain-HTTP registry behind a Consul name with two instances, no service needed.
PLAN_URL ?= http://docker_registry.service.dc1.consul:8080
PLAN_ARGS ?= --instance 10.244.2.6 --instance 10.244.2.7

.PHONY: plan test test-load lint docs examples bench clean

plan: $(RUN_STAMP)
	$(BIN)/registry-config plan $(PLAN_URL) $(PLAN_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

# The whole suite in 4 worker processes: more workers than this machine's 2 cores, so every test runs under load.
# A test that passes alone and fails here leans on timing; none should.
test-load: $(STAMP)
	$(BIN)/python -m pytest -n 4

# The Python trees; the docs' Markdown is checked by running its examples (tests/test_docs.py).
CODE := registry_config tests examples benchmarks tools docs/conf.py docs/_ext docs/howto docs/rendered/generate.py

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy --strict registry_config

# The documentation site, warnings as errors (tests/test_docs.py builds it too, and runs its examples).
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# Every example script, as CI runs them (tests/test_examples.py).
examples: $(STAMP)
	for f in examples/*.py; do $(BIN)/python $$f >/dev/null || exit 1; done

# The benchmark table of docs/performance.md (about two minutes).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The package and its extras only: what a user of the command needs.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -e '.[all]'
	touch $(RUN_STAMP)

# Everything: the package, its extras, and the test and docs tool chains (a superset of $(RUN_STAMP)).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[all,test,docs]'
	touch $(STAMP) $(RUN_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis docs/_build

# Mutation testing, one module at a time (docs/mutation.md has the scores and the survivors): cosmic-ray
# mutates copies of the tree in $(MUTATION_DIR), never this one, one copy per worker (MUTATION_WORKERS, default
# one per core; tools/mutation.py starts the workers and stops them by their PIDs), and runs the module's own
# tests against each mutant. Not part of .ci/run: run it before a release, and after changing a module it covers.
#   make mutation MUTATE=registry_config/address.py MUTATION_TESTS="tests/test_address.py"
MUTATE ?= registry_config/redact.py
MUTATION_TESTS ?= tests/test_redact_and_files.py
MUTATION_DIR ?= $(or $(TMPDIR),/tmp)/registry-config-mutation-$(notdir $(basename $(MUTATE)))
MUTATION_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
# In these modules '|' appears only in annotations, which `from __future__ import annotations` never evaluates:
# every mutant of it is equivalent. Set MUTATION_EXCLUDE= for a module that uses '|' on values.
MUTATION_EXCLUDE ?= core/ReplaceBinaryOperator_BitOr_.*
.PHONY: mutation
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet 'cosmic-ray>=8.3'
	$(BIN)/python tools/mutation.py --module '$(MUTATE)' --tests '$(MUTATION_TESTS)' --dir '$(MUTATION_DIR)' \
	  --workers '$(MUTATION_WORKERS)' --exclude '$(MUTATION_EXCLUDE)'
