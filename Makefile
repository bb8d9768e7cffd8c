# The two commands of the README: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lock session clean setup docs

setup: $(STAMP)

# The virtual environment, installed from the hashed lock file, then the project itself.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Replays the bundled vol-spike session with the example portfolio and the default rule pack.
demo: $(STAMP)
	$(BIN)/condor-monitor run

test: $(STAMP)
	bash scripts/ensure-system-packages.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy monitor
	$(BIN)/pytest

# Speed against peers (vollib, QuantLib), medians of repeats; JSON summary on the last line.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Regenerates requirements.lock from pyproject.toml (needs network access to PyPI).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra test --extra bench --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

# Rewrites the bundled session from its seed; `git diff` then shows it is unchanged.
session: $(STAMP)
	$(BIN)/condor-monitor generate-session --seed 20260303 --out monitor/bundled/sessions/vol-spike-2026-03-03.jsonl.gz

# Rewrites the generated tables of docs/rules.md and README.md from the code's tables.
docs: $(STAMP)
	$(BIN)/python -m monitor.docs_tables

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache state
