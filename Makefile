# Two entry points: `make run` (install and start the server) and `make test` (dev install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install dev editors test e2e-vscode run demo clean-models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e .

dev: $(BIN)/python
	$(BIN)/pip install -e '.[dev]'

# Neovim, the extension's npm packages, code-server and Chromium for the editor tests.
editors:
	editor-client/install-test-editors.sh

# Builds the tiny test models on first use (cached in .cache/test-models), checks and packages the
# VS Code extension (lint, typecheck, unit tests, .vsix), then runs every test, the real-editor ones
# (Neovim headless, VS Code in code-server) included.
test: dev editors
	cd editor-client && npm run check
	CODEGEN_LSP_VSCODE_E2E=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# Only the VS Code end-to-end tests (screenshots in bench-results/vscode-e2e/).
e2e-vscode: dev
	editor-client/e2e/run-e2e.sh

run: install
	$(BIN)/codegen-lsp serve

# The server with its embedded default model, headless: prints the inline suggestion for line 10 of
# docs/demo/steps.py (a blank line inside a loop).
demo: install
	$(BIN)/codegen-lsp complete docs/demo/steps.py --line 9 --character 12

clean-models:
	rm -rf .cache/test-models
