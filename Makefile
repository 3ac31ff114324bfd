# One entry point for people and CI. Every target sets itself up: a virtual environment in
# $(VENV) with the package and everything its tests need, (re)installed when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The seed scenario: a plain-HTTP registry behind a Consul name with two instances, no service needed.
PLAN_URL ?= http://docker_registry.service.dc1.consul:8080
PLAN_ARGS ?= --instance 10.244.2.6 --instance 10.244.2.7

.PHONY: plan test lint docs examples bench clean

plan: $(STAMP)
	$(BIN)/registry-config plan $(PLAN_URL) $(PLAN_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

# The Python trees; the docs' Markdown is checked by running its examples (tests/test_docs.py).
CODE := registry_config tests examples benchmarks docs/conf.py docs/_ext docs/howto docs/rendered/generate.py

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

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test,docs]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis docs/_build
