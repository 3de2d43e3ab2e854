# Two entry points: `make run` (install and start the server) and `make test` (dev install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install dev test run demo clean-models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e .

dev: $(BIN)/python
	$(BIN)/pip install -e '.[dev]'

# Builds the tiny test models on first use (cached in .cache/test-models), then runs every test.
test: dev
	$(BIN)/python -m pytest -q -p no:cacheprovider

run: install
	$(BIN)/codegen-lsp serve

# The server with its embedded default model, headless: prints the inline suggestion for line 10 of
# docs/demo/steps.py (a blank line inside a loop).
demo: install
	$(BIN)/codegen-lsp complete docs/demo/steps.py --line 9 --character 12

clean-models:
	rm -rf .cache/test-models
